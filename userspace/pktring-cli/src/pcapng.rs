//! The pcapng sink: a section header, one interface description, an enhanced packet block per
//! packet with the producing CPU and RX queue, and the kernel's counters in an interface
//! statistics block at the end.
//!
//! Blocks are written in the host's byte order, which the section header's byte-order magic
//! tells readers. What each packet carries beyond its bytes:
//!
//! - `epb_flags`: the direction: outbound for a packet this host sends (`sll_pkttype`
//!   `PACKET_OUTGOING`, at the egress hooks), inbound otherwise;
//! - `epb_queue`: the RX queue, when the device recorded one (tshark: `frame.interface_queue`);
//! - `opt_comment`: `cpu N` or `cpu N, rx queue M`, which every pcapng reader shows (tshark:
//!   `frame.comment`), since pcapng has no standard option for the CPU.
//!
//! The interface description has the capture filter, as dumpcap writes it (`if_filter`, a
//! libpcap filter string), when there is one.
//!
//! The statistics block follows dumpcap: `isb_ifrecv` is what the ring's selection took
//! (delivered, dropped and filtered: the packets "received by the interface", before any
//! filter), `isb_ifdrop` what it dropped for want of a free frame, `isb_filteraccept` what the
//! capture filter accepted (`isb_ifrecv` less the filtered; only with a filter), `isb_usrdeliv`
//! what this file holds; with the capture's start and end times.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::capture::FILE_BUFFER;
use crate::sink::Record;

/// Block types.
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const ISB: u32 = 5;
const EPB: u32 = 6;
/// The section header's byte-order magic.
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// Option codes, common to every block and per block type.
const OPT_ENDOFOPT: u16 = 0;
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const IF_FILTER: u16 = 11;
const EPB_FLAGS: u16 = 2;
const EPB_QUEUE: u16 = 6;
const ISB_STARTTIME: u16 = 2;
const ISB_ENDTIME: u16 = 3;
const ISB_IFRECV: u16 = 4;
const ISB_IFDROP: u16 = 5;
const ISB_FILTERACCEPT: u16 = 6;
const ISB_USRDELIV: u16 = 8;

/// `epb_flags`: bits 0-1 are the direction, 1 inbound, 2 outbound.
const EPB_FLAGS_INBOUND: u32 = 1;
const EPB_FLAGS_OUTBOUND: u32 = 2;
/// `if_filter`'s first byte: a libpcap filter string follows.
const IF_FILTER_LIBPCAP: u8 = 0;
/// `if_tsresol` 9: timestamps count nanoseconds.
const TSRESOL_NANOS: u8 = 9;

/// The interface the capture describes.
pub(crate) struct Interface<'a> {
    /// Its name, or `any`.
    pub(crate) name: &'a str,
    /// The pcap link type of the packets' first byte.
    pub(crate) link_type: u16,
    /// The most bytes of a packet a record holds.
    pub(crate) snaplen: u32,
    /// The capture filter's expression, if there is one.
    pub(crate) filter: Option<&'a str>,
}

/// What the interface statistics block says at the end of a capture.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Counters {
    /// When the capture started and ended, since the Unix epoch.
    pub(crate) start: Duration,
    pub(crate) end: Duration,
    /// Packets the ring's selection took: delivered, dropped and filtered.
    pub(crate) received: u64,
    /// Packets the hook dropped because the ring had no free frame.
    pub(crate) dropped: u64,
    /// Packets the capture filter rejected, with a filter (`None`: none).
    pub(crate) filtered: Option<u64>,
    /// Packets written to the file.
    pub(crate) delivered: u64,
}

/// One block under construction: its body and options, then its lengths around them.
struct Block {
    bytes: Vec<u8>,
}

impl Block {
    /// Starts a block of type `kind`, clearing `bytes` for it (its capacity is kept).
    fn start(mut bytes: Vec<u8>, kind: u32) -> Self {
        bytes.clear();
        bytes.extend_from_slice(&kind.to_ne_bytes());
        // The total length, filled in by `finish`.
        bytes.extend_from_slice(&0u32.to_ne_bytes());
        Self { bytes }
    }

    fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_ne_bytes());
        self
    }

    fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_ne_bytes());
        self
    }

    /// A 64-bit value as pcapng stores timestamps and counters: two 32-bit words, high first.
    fn u64(&mut self, value: u64) -> &mut Self {
        self.u32((value >> 32) as u32).u32(value as u32)
    }

    /// Bytes padded with zeroes to a multiple of four.
    fn padded(&mut self, data: &[u8]) -> &mut Self {
        self.padded_parts(&[], data)
    }

    /// `head` and `data` together, padded with zeroes to a multiple of four.
    fn padded_parts(&mut self, head: &[u8], data: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(head);
        self.bytes.extend_from_slice(data);
        let pad = (4 - (head.len() + data.len()) % 4) % 4;
        self.bytes.extend_from_slice(&[0; 3][..pad]);
        self
    }

    /// An option: code, length, value padded to a multiple of four. A value is at most a
    /// comment or a name, far below the 64 KiB an option can hold.
    fn option(&mut self, code: u16, value: &[u8]) -> &mut Self {
        self.u16(code).u16(value.len() as u16).padded(value)
    }

    /// A timestamp option, in the two-word form of [`u64`](Self::u64).
    fn option_time(&mut self, code: u16, value: u64) -> &mut Self {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&((value >> 32) as u32).to_ne_bytes());
        bytes[4..].copy_from_slice(&(value as u32).to_ne_bytes());
        self.option(code, &bytes)
    }

    /// Ends the options and the block, writes its length at both ends, and returns its bytes.
    fn finish(mut self, with_options: bool) -> Vec<u8> {
        if with_options {
            self.u16(OPT_ENDOFOPT).u16(0);
        }
        let total = self.bytes.len() as u32 + 4;
        self.u32(total);
        self.bytes[4..8].copy_from_slice(&total.to_ne_bytes());
        self.bytes
    }
}

/// Nanoseconds since the Unix epoch, as an enhanced packet block's timestamp counts them with
/// `if_tsresol` 9 (a `u64` lasts until the year 2554).
fn nanos(time: Duration) -> u64 {
    time.as_secs() * 1_000_000_000 + u64::from(time.subsec_nanos())
}

/// Writes packets to a pcapng file: one section, one interface.
pub(crate) struct PcapngSink<W: Write> {
    out: W,
    /// The block being built, kept between packets for its allocation.
    scratch: Vec<u8>,
}

impl PcapngSink<BufWriter<File>> {
    /// Creates the file `path`.
    pub(crate) fn create(path: &Path, interface: &Interface<'_>) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("{}", path.display()))?;
        Self::new(BufWriter::with_capacity(FILE_BUFFER, file), interface)
    }
}

impl<W: Write> PcapngSink<W> {
    /// Writes the section header and the interface description to `out`.
    pub(crate) fn new(mut out: W, interface: &Interface<'_>) -> Result<Self> {
        let mut shb = Block::start(Vec::new(), SHB);
        shb.u32(BYTE_ORDER_MAGIC).u16(1).u16(0);
        // The section's length: not known in advance.
        shb.u64(u64::MAX);
        let application = concat!("pktring ", env!("CARGO_PKG_VERSION"));
        shb.option(SHB_USERAPPL, application.as_bytes());
        let shb = shb.finish(true);

        let mut idb = Block::start(Vec::new(), IDB);
        idb.u16(interface.link_type).u16(0).u32(interface.snaplen);
        idb.option(IF_NAME, interface.name.as_bytes())
            .option(IF_TSRESOL, &[TSRESOL_NANOS]);
        if let Some(filter) = interface.filter {
            let mut value = vec![IF_FILTER_LIBPCAP];
            value.extend_from_slice(filter.as_bytes());
            value.truncate(u16::MAX.into());
            idb.option(IF_FILTER, &value);
        }
        let idb = idb.finish(true);

        out.write_all(&shb)
            .and_then(|()| out.write_all(&idb))
            .context("writing the pcapng header")?;
        Ok(Self {
            out,
            scratch: Vec::with_capacity(256),
        })
    }

    /// Writes one packet as an enhanced packet block on interface 0.
    pub(crate) fn write(&mut self, record: &Record<'_>) -> Result<()> {
        let mut epb = Block::start(std::mem::take(&mut self.scratch), EPB);
        epb.u32(0)
            .u64(nanos(record.timestamp))
            .u32(record.caplen() as u32)
            .u32(record.wire_len)
            .padded_parts(record.header_bytes(), record.data);
        let direction = if record.outbound {
            EPB_FLAGS_OUTBOUND
        } else {
            EPB_FLAGS_INBOUND
        };
        epb.option(EPB_FLAGS, &direction.to_ne_bytes());
        let mut comment = [0u8; 32];
        let comment = match record.rx_queue {
            Some(queue) => {
                epb.option(EPB_QUEUE, &u32::from(queue).to_ne_bytes());
                format_into(
                    &mut comment,
                    format_args!("cpu {}, rx queue {queue}", record.cpu),
                )
            }
            None => format_into(&mut comment, format_args!("cpu {}", record.cpu)),
        };
        epb.option(OPT_COMMENT, comment);
        let epb = epb.finish(true);
        let written = self
            .out
            .write_all(&epb)
            .context("writing a packet to the pcapng");
        self.scratch = epb;
        written
    }

    /// Writes the interface statistics block, flushes the output and returns it.
    pub(crate) fn finish(mut self, counters: &Counters) -> Result<W> {
        let mut isb = Block::start(Vec::new(), ISB);
        isb.u32(0).u64(nanos(counters.end));
        // Timestamps are two words, high first; counters are plain 64-bit values.
        isb.option_time(ISB_STARTTIME, nanos(counters.start))
            .option_time(ISB_ENDTIME, nanos(counters.end))
            .option(ISB_IFRECV, &counters.received.to_ne_bytes())
            .option(ISB_IFDROP, &counters.dropped.to_ne_bytes());
        if let Some(filtered) = counters.filtered {
            let accepted = counters.received.saturating_sub(filtered);
            isb.option(ISB_FILTERACCEPT, &accepted.to_ne_bytes());
        }
        isb.option(ISB_USRDELIV, &counters.delivered.to_ne_bytes());
        let isb = isb.finish(true);
        self.out
            .write_all(&isb)
            .and_then(|()| self.out.flush())
            .context("writing the pcapng statistics")?;
        Ok(self.out)
    }
}

/// Formats into `buffer` without allocating; returns the bytes written (cut at its end).
fn format_into<'b>(buffer: &'b mut [u8], args: std::fmt::Arguments<'_>) -> &'b [u8] {
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    // A full buffer only cuts the text short: the comment is informative.
    let _ = cursor.write_fmt(args);
    let len = cursor.position() as usize;
    &buffer[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block as read back: its type and body, after checking both lengths.
    fn blocks(mut file: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let word =
            |bytes: &[u8], at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
        let mut blocks = Vec::new();
        while !file.is_empty() {
            let (kind, len) = (word(file, 0), word(file, 4) as usize);
            assert_eq!(len % 4, 0, "block lengths are multiples of four");
            assert_eq!(word(file, len - 4) as usize, len, "the trailing length");
            blocks.push((kind, file[8..len - 4].to_vec()));
            file = &file[len..];
        }
        blocks
    }

    /// The options of a block body from `at`: code and value, up to `opt_endofopt`.
    fn options(body: &[u8], mut at: usize) -> Vec<(u16, Vec<u8>)> {
        let half = |at: usize| u16::from_ne_bytes(body[at..at + 2].try_into().unwrap());
        let mut options = Vec::new();
        loop {
            let (code, len) = (half(at), usize::from(half(at + 2)));
            if code == OPT_ENDOFOPT {
                assert_eq!(at + 4, body.len(), "opt_endofopt ends the block");
                return options;
            }
            options.push((code, body[at + 4..at + 4 + len].to_vec()));
            at += 4 + len.div_ceil(4) * 4;
        }
    }

    #[test]
    fn a_capture_is_a_section_an_interface_packets_and_statistics() {
        let interface = Interface {
            name: "eth0",
            link_type: 1,
            snaplen: 1500,
            filter: None,
        };
        let mut sink = PcapngSink::new(Vec::new(), &interface).unwrap();
        let data = [0xabu8; 61];
        let timestamp = Duration::new(1_700_000_000, 123_456_789);
        for (cpu, rx_queue) in [(3, Some(1)), (0, None)] {
            sink.write(&Record {
                timestamp,
                wire_len: 1000,
                cpu,
                rx_queue,
                outbound: false,
                link_header: None,
                data: &data,
            })
            .unwrap();
        }
        let counters = Counters {
            start: Duration::from_secs(1_700_000_000),
            end: Duration::from_secs(1_700_000_002),
            received: 7,
            dropped: 5,
            filtered: None,
            delivered: 2,
        };
        let file = sink.finish(&counters).unwrap();
        let blocks = blocks(&file);
        let kinds: Vec<u32> = blocks.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds, [SHB, IDB, EPB, EPB, ISB]);

        let shb = &blocks[0].1;
        assert_eq!(&shb[..4], &BYTE_ORDER_MAGIC.to_ne_bytes());
        assert_eq!(shb[4..8], [1u16.to_ne_bytes(), 0u16.to_ne_bytes()].concat());
        assert_eq!(options(shb, 16)[0].0, SHB_USERAPPL);

        let idb = &blocks[1].1;
        assert_eq!(idb[..2], 1u16.to_ne_bytes());
        assert_eq!(idb[4..8], 1500u32.to_ne_bytes());
        assert_eq!(
            options(idb, 8),
            [(IF_NAME, b"eth0".to_vec()), (IF_TSRESOL, vec![9])]
        );

        for (epb, (queue, comment)) in blocks[2..4]
            .iter()
            .map(|(_, body)| body)
            .zip([(Some(1u32), "cpu 3, rx queue 1"), (None, "cpu 0")])
        {
            let word = |at: usize| u32::from_ne_bytes(epb[at..at + 4].try_into().unwrap());
            assert_eq!(word(0), 0, "interface 0");
            let ts = u64::from(word(4)) << 32 | u64::from(word(8));
            assert_eq!(ts, 1_700_000_000_123_456_789);
            assert_eq!((word(12), word(16)), (61, 1000));
            assert_eq!(&epb[20..81], &data);
            let mut expected = vec![(EPB_FLAGS, EPB_FLAGS_INBOUND.to_ne_bytes().to_vec())];
            if let Some(queue) = queue {
                expected.push((EPB_QUEUE, queue.to_ne_bytes().to_vec()));
            }
            expected.push((OPT_COMMENT, comment.as_bytes().to_vec()));
            assert_eq!(options(epb, 84), expected, "61 bytes padded to 64");
        }

        let isb = &blocks[4].1;
        let two_words = |value: u64| {
            [
                ((value >> 32) as u32).to_ne_bytes(),
                (value as u32).to_ne_bytes(),
            ]
            .concat()
        };
        assert_eq!(isb[..4], 0u32.to_ne_bytes());
        assert_eq!(
            options(isb, 12),
            [
                (ISB_STARTTIME, two_words(1_700_000_000_000_000_000)),
                (ISB_ENDTIME, two_words(1_700_000_002_000_000_000)),
                (ISB_IFRECV, 7u64.to_ne_bytes().to_vec()),
                (ISB_IFDROP, 5u64.to_ne_bytes().to_vec()),
                (ISB_USRDELIV, 2u64.to_ne_bytes().to_vec()),
            ]
        );
    }

    #[test]
    fn a_filtered_capture_says_its_filter_direction_and_what_it_accepted() {
        let interface = Interface {
            name: "any",
            link_type: 1,
            snaplen: 128,
            filter: Some("icmp"),
        };
        let mut sink = PcapngSink::new(Vec::new(), &interface).unwrap();
        let data = [0x45u8; 5];
        sink.write(&Record {
            timestamp: Duration::from_secs(1),
            wire_len: 98,
            cpu: 1,
            rx_queue: None,
            outbound: true,
            link_header: Some(crate::filter::synthetic_ethernet(0x0800u16.to_be())),
            data: &data,
        })
        .unwrap();
        let counters = Counters {
            received: 10,
            dropped: 1,
            filtered: Some(6),
            delivered: 3,
            ..Counters::default()
        };
        let blocks = blocks(&sink.finish(&counters).unwrap());
        let idb = &blocks[1].1;
        assert_eq!(
            options(idb, 8)[2],
            (IF_FILTER, [&[IF_FILTER_LIBPCAP][..], b"icmp"].concat())
        );
        let epb = &blocks[2].1;
        let word = |at: usize| u32::from_ne_bytes(epb[at..at + 4].try_into().unwrap());
        assert_eq!((word(12), word(16)), (19, 98), "the made-up header counts");
        assert_eq!(&epb[20..32], &[0; 12]);
        assert_eq!(&epb[32..39], &[8, 0, 0x45, 0x45, 0x45, 0x45, 0x45]);
        assert_eq!(
            options(epb, 40)[0],
            (EPB_FLAGS, EPB_FLAGS_OUTBOUND.to_ne_bytes().to_vec()),
            "19 bytes padded to 20"
        );
        let isb = options(&blocks[3].1, 12);
        let codes: Vec<u16> = isb.iter().map(|(code, _)| *code).collect();
        assert_eq!(
            codes,
            [
                ISB_STARTTIME,
                ISB_ENDTIME,
                ISB_IFRECV,
                ISB_IFDROP,
                ISB_FILTERACCEPT,
                ISB_USRDELIV
            ]
        );
        assert_eq!(isb[4].1, 4u64.to_ne_bytes(), "10 received, 6 filtered");
    }
}
