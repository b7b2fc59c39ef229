//! Where captured packets go: a pcap or a pcapng file, optionally through a window that puts
//! them back in timestamp order.
//!
//! The ring holds packets in the order the producing CPUs claimed their slots, and each CPU
//! stamps its packet a little before it claims: between CPUs, timestamps step back now and
//! then. `--sort-window N` holds up to N packets and always writes the earliest, so a packet
//! that arrives at most N packets late is written in order; one later than that is written
//! as it comes, and counted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use pktring::Frame;

use crate::capture::PcapSink;
use crate::filter::{synthetic_ethernet, LinkType};
use crate::pcapng::{Counters, Interface, PcapngSink};

/// One packet, as a file records it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record<'a> {
    pub(crate) timestamp: Duration,
    /// The packet's length from the file's link type's header (the made-up Ethernet header
    /// included); `link_header` and `data` hold the first bytes of it.
    pub(crate) wire_len: u32,
    pub(crate) cpu: u16,
    pub(crate) rx_queue: Option<u16>,
    /// Sent by this host (an egress hook), rather than received.
    pub(crate) outbound: bool,
    /// A made-up Ethernet header, written in front of `data`: see [`Record::of`].
    pub(crate) link_header: Option<[u8; 14]>,
    pub(crate) data: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record of a frame in a file of link type `link`, borrowing its bytes from the ring.
    ///
    /// Raw: the packet from its network header, whatever the frame had in front of it.
    /// Ethernet: the frame as it is, but for a frame without a link-layer header (an inet hook
    /// on any device sees packets of devices without one), which gets a made-up Ethernet header
    /// in front: zero addresses and the EtherType of its `sll_protocol`, so that readers still
    /// parse it.
    pub(crate) fn of(frame: &'a Frame<'_>, link: LinkType) -> Self {
        let hlen = frame.link_header_len();
        let (link_header, data, wire_len) = match link {
            LinkType::Raw if hlen > 0 => (
                None,
                frame.network().unwrap_or_default(),
                frame.wire_len().saturating_sub(hlen as u32),
            ),
            LinkType::Ethernet if hlen == 0 => (
                Some(synthetic_ethernet(frame.link().sll_protocol)),
                frame.data(),
                frame.wire_len() + 14,
            ),
            _ => (None, frame.data(), frame.wire_len()),
        };
        Self {
            timestamp: frame.timestamp(),
            wire_len,
            cpu: frame.cpu(),
            rx_queue: frame.rx_queue(),
            outbound: frame.is_outgoing(),
            link_header,
            data,
        }
    }

    /// The bytes the file holds of the packet.
    pub(crate) fn caplen(&self) -> usize {
        self.link_header.map_or(0, |header| header.len()) + self.data.len()
    }

    /// The made-up link-layer header, if there is one, as bytes.
    pub(crate) fn header_bytes(&self) -> &[u8] {
        self.link_header.as_ref().map_or(&[], |header| &header[..])
    }
}

/// The file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// pcap, nanosecond timestamps.
    Pcap,
    /// pcapng, with each packet's CPU and RX queue and the kernel's counters.
    Pcapng,
}

impl Format {
    /// The format a file name asks for: pcapng for `.pcapng` and `.ntar`, pcap otherwise (as
    /// dumpcap and editcap choose by name).
    pub(crate) fn of_path(path: &Path) -> Self {
        match path.extension().and_then(|ext| ext.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("pcapng") || ext.eq_ignore_ascii_case("ntar") => {
                Self::Pcapng
            }
            _ => Self::Pcap,
        }
    }
}

/// A file being written, in either format, and the order of what it was given.
struct Writer {
    file: WriterFile,
    order: Order,
    last: Duration,
}

enum WriterFile {
    Pcap(PcapSink<BufWriter<File>>),
    Pcapng(PcapngSink<BufWriter<File>>),
}

impl Writer {
    fn write(&mut self, record: &Record<'_>) -> Result<()> {
        self.order.written += 1;
        if record.timestamp < self.last {
            self.order.backwards += 1;
        }
        self.last = record.timestamp;
        match &mut self.file {
            WriterFile::Pcap(sink) => sink.write(record),
            WriterFile::Pcapng(sink) => sink.write(record),
        }
    }
}

/// What a file says of its packets' order once written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Order {
    /// Packets written.
    pub(crate) written: u64,
    /// Packets whose timestamp is earlier than the one written before it.
    pub(crate) backwards: u64,
}

/// The capture's file, behind its sort window if it has one.
pub(crate) struct Sink {
    writer: Writer,
    window: Option<SortWindow>,
}

impl Sink {
    /// Creates the file `path` in `format`, with a sort window of `window` packets (0: none).
    pub(crate) fn create(
        path: &Path,
        format: Format,
        interface: &Interface<'_>,
        window: usize,
    ) -> Result<Self> {
        let file = match format {
            Format::Pcap => WriterFile::Pcap(PcapSink::create(
                path,
                interface.snaplen,
                interface.link_type,
            )?),
            Format::Pcapng => WriterFile::Pcapng(PcapngSink::create(path, interface)?),
        };
        Ok(Self {
            writer: Writer {
                file,
                order: Order::default(),
                last: Duration::ZERO,
            },
            window: (window > 0).then(|| SortWindow::new(window)),
        })
    }

    /// Takes one packet: written now, or held in the window.
    pub(crate) fn write(&mut self, record: &Record<'_>) -> Result<()> {
        match &mut self.window {
            Some(window) => window.push(record, &mut |record| self.writer.write(record)),
            None => self.writer.write(record),
        }
    }

    /// Writes what the window holds and the file's trailer (pcapng: `counters`), and flushes.
    pub(crate) fn finish(mut self, counters: &Counters) -> Result<Order> {
        if let Some(window) = &mut self.window {
            window.drain(&mut |record| self.writer.write(record))?;
        }
        match self.writer.file {
            WriterFile::Pcap(sink) => drop(sink.finish()?),
            WriterFile::Pcapng(sink) => drop(sink.finish(counters)?),
        }
        Ok(self.writer.order)
    }
}

/// A packet held in the window: its own copy of the bytes, and its arrival number, which keeps
/// packets with equal timestamps in ring order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    timestamp: Duration,
    arrival: u64,
    wire_len: u32,
    cpu: u16,
    rx_queue: Option<u16>,
    outbound: bool,
    /// The made-up link-layer header and the bytes.
    data: Vec<u8>,
}

impl Held {
    fn record(&self) -> Record<'_> {
        Record {
            timestamp: self.timestamp,
            wire_len: self.wire_len,
            cpu: self.cpu,
            rx_queue: self.rx_queue,
            outbound: self.outbound,
            link_header: None,
            data: &self.data,
        }
    }
}

/// Up to `size` packets, written earliest first.
struct SortWindow {
    size: usize,
    held: BinaryHeap<Reverse<Held>>,
    arrivals: u64,
    /// Buffers of packets written, for the next ones to be copied into.
    spare: Vec<Vec<u8>>,
}

impl SortWindow {
    fn new(size: usize) -> Self {
        Self {
            size,
            held: BinaryHeap::with_capacity(size + 1),
            arrivals: 0,
            spare: Vec::new(),
        }
    }

    /// Holds a copy of `record`; once more than `size` are held, writes the earliest.
    fn push(
        &mut self,
        record: &Record<'_>,
        emit: &mut impl FnMut(&Record<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut data = self.spare.pop().unwrap_or_default();
        data.clear();
        data.extend_from_slice(record.header_bytes());
        data.extend_from_slice(record.data);
        self.held.push(Reverse(Held {
            timestamp: record.timestamp,
            arrival: self.arrivals,
            wire_len: record.wire_len,
            cpu: record.cpu,
            rx_queue: record.rx_queue,
            outbound: record.outbound,
            data,
        }));
        self.arrivals += 1;
        if self.held.len() > self.size {
            self.pop(emit)?;
        }
        Ok(())
    }

    /// Writes the earliest packet held.
    fn pop(&mut self, emit: &mut impl FnMut(&Record<'_>) -> Result<()>) -> Result<()> {
        if let Some(Reverse(held)) = self.held.pop() {
            emit(&held.record())?;
            self.spare.push(held.data);
        }
        Ok(())
    }

    /// Writes every packet held, earliest first.
    fn drain(&mut self, emit: &mut impl FnMut(&Record<'_>) -> Result<()>) -> Result<()> {
        while !self.held.is_empty() {
            self.pop(emit)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(nanos: u32, data: &[u8]) -> Record<'_> {
        Record {
            timestamp: Duration::new(1, nanos),
            wire_len: data.len() as u32,
            cpu: 0,
            rx_queue: None,
            outbound: false,
            link_header: None,
            data,
        }
    }

    /// Pushes packets stamped `stamps` through a window of `size`; returns the order written.
    fn through_window(size: usize, stamps: &[u32]) -> Vec<u32> {
        let mut window = SortWindow::new(size);
        let mut written = Vec::new();
        let mut emit = |record: &Record<'_>| {
            assert_eq!(record.data, record.timestamp.subsec_nanos().to_ne_bytes());
            written.push(record.timestamp.subsec_nanos());
            Ok(())
        };
        for &stamp in stamps {
            window
                .push(&record(stamp, &stamp.to_ne_bytes()), &mut emit)
                .unwrap();
            assert!(window.held.len() <= size, "the window is bounded");
        }
        window.drain(&mut emit).unwrap();
        written
    }

    #[test]
    fn a_window_sorts_packets_that_are_at_most_its_size_late() {
        // 5 arrives three packets late: a window of 3 puts it in order.
        assert_eq!(
            through_window(3, &[1, 2, 6, 7, 8, 5, 9]),
            [1, 2, 5, 6, 7, 8, 9]
        );
        // A window of 2 cannot: 6 is written before 5 arrives.
        assert_eq!(
            through_window(2, &[1, 2, 6, 7, 8, 5, 9]),
            [1, 2, 6, 5, 7, 8, 9]
        );
        // Equal timestamps keep ring order (the data tell them apart here by arrival only).
        let mut window = SortWindow::new(4);
        let mut cpus = Vec::new();
        for cpu in [3, 1, 2] {
            let mut r = record(10, &[]);
            r.cpu = cpu;
            window.push(&r, &mut |_: &Record<'_>| Ok(())).unwrap();
        }
        window
            .drain(&mut |r: &Record<'_>| {
                cpus.push(r.cpu);
                Ok(())
            })
            .unwrap();
        assert_eq!(cpus, [3, 1, 2]);
    }

    #[test]
    fn a_window_keeps_a_made_up_header() {
        let mut window = SortWindow::new(2);
        let mut r = record(5, &[0x45, 0, 0, 20]);
        r.link_header = Some(synthetic_ethernet(0x0800u16.to_be()));
        r.wire_len = 24;
        r.outbound = true;
        window.push(&r, &mut |_: &Record<'_>| Ok(())).unwrap();
        let mut seen = Vec::new();
        window
            .drain(&mut |r: &Record<'_>| {
                seen.push((r.caplen(), r.wire_len, r.outbound, r.data.to_vec()));
                Ok(())
            })
            .unwrap();
        let mut data = vec![0; 12];
        data.extend_from_slice(&[8, 0, 0x45, 0, 0, 20]);
        assert_eq!(seen, [(18, 24, true, data)]);
    }

    #[test]
    fn the_format_follows_the_file_name() {
        assert_eq!(Format::of_path(Path::new("a.pcapng")), Format::Pcapng);
        assert_eq!(Format::of_path(Path::new("/x/A.PCAPNG")), Format::Pcapng);
        assert_eq!(Format::of_path(Path::new("a.ntar")), Format::Pcapng);
        assert_eq!(Format::of_path(Path::new("a.pcap")), Format::Pcap);
        assert_eq!(Format::of_path(Path::new("capture")), Format::Pcap);
    }

    #[test]
    fn the_sink_counts_what_steps_back() {
        let dir = std::env::temp_dir().join(format!("pktring-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let interface = Interface {
            name: "any",
            link_type: 1,
            snaplen: 64,
            filter: None,
        };
        for (window, backwards) in [(0, 2), (2, 0)] {
            let path = dir.join(format!("w{window}.pcapng"));
            let mut sink = Sink::create(&path, Format::Pcapng, &interface, window).unwrap();
            for stamp in [1, 3, 2, 5, 4, 6] {
                sink.write(&record(stamp, &[0; 20])).unwrap();
            }
            let order = sink.finish(&Counters::default()).unwrap();
            assert_eq!(
                order,
                Order {
                    written: 6,
                    backwards
                },
                "window {window}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
