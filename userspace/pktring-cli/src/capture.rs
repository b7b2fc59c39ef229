//! The capture loop: frames from a ring into a sink, counted, until a limit or a signal; and the
//! pcap sink.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pktring::uapi::PktringStats;
use pktring::{Frame, Ring};

use crate::sink::Record;

/// How often the progress line, and the kernel's counters it shows, are refreshed.
pub(crate) const TICK: Duration = Duration::from_millis(250);

/// How long the consumer waits at most without a progress line (it reads the counters only at
/// the end then): the latency of a signal that lands just before a wait, which does not end it.
const QUIET_TICK: Duration = Duration::from_secs(1);

/// When a capture stops, besides a signal.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    /// After this many packets.
    pub(crate) count: Option<u64>,
    /// After this long.
    pub(crate) duration: Option<Duration>,
}

/// What to print.
#[derive(Clone, Copy)]
pub(crate) struct Output {
    /// Nothing but errors.
    pub(crate) quiet: bool,
    /// A live progress line on stderr.
    pub(crate) progress: bool,
}

/// How many frames the capture loop takes without looking at the clock, the limits or a signal.
const DRAIN_BATCH: u32 = 256;

/// Where frames come from: the device's ring, or a ring in memory in the tests.
pub(crate) trait FrameSource {
    /// Returns the next frame if it is ready, without waiting.
    fn try_next(&mut self) -> Result<Option<Frame<'_>>, pktring::Error>;
    /// Returns the next frame, waiting up to `timeout`; `None` on timeout or signal.
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame<'_>>, pktring::Error>;
    /// Returns the kernel's counters since the last call, and clears them.
    fn take_stats(&mut self) -> Result<PktringStats, pktring::Error>;

    /// Returns how many times the consumer was woken while waiting for frames.
    fn wakeups(&self) -> u64;

    /// Stops the ring from capturing while its frames stay readable, at the end of a capture;
    /// returns `true` if it did, and the frames left are then taken (drained) before the end.
    /// A lone ring does not: it captures until it is closed, and what it holds then is lost.
    fn leave(&mut self) -> Result<bool> {
        Ok(false)
    }
}

/// The packets a capture may still write (`-c COUNT`), shared by the consumers of a fanout
/// group: a consumer takes one for each frame before it writes it, so that the files hold
/// COUNT packets in all.
#[derive(Debug)]
pub(crate) struct Budget {
    count: Option<u64>,
    taken: AtomicU64,
}

impl Budget {
    /// `count` packets (`None`: no limit).
    pub(crate) fn new(count: Option<u64>) -> Self {
        Self {
            count,
            taken: AtomicU64::new(0),
        }
    }

    /// Returns `true` once every packet of the budget is taken.
    fn exhausted(&self) -> bool {
        self.count
            .is_some_and(|count| self.taken.load(Ordering::Relaxed) >= count)
    }

    /// Takes one packet; `false` if none was left (another consumer took the last one).
    fn take(&self) -> bool {
        match self.count {
            None => true,
            Some(count) => self.taken.fetch_add(1, Ordering::Relaxed) < count,
        }
    }
}

impl FrameSource for Ring {
    fn try_next(&mut self) -> Result<Option<Frame<'_>>, pktring::Error> {
        Ok(Ring::try_next(self)?)
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame<'_>>, pktring::Error> {
        Ring::next_frame(self, Some(timeout))
    }

    fn take_stats(&mut self) -> Result<PktringStats, pktring::Error> {
        Ring::take_stats(self)
    }

    fn wakeups(&self) -> u64 {
        Ring::wakeups(self)
    }
}

/// What a capture saw.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Frames taken from the ring and given to the sink.
    pub(crate) packets: u64,
    /// Frames refused as corrupt.
    pub(crate) corrupt: u64,
    /// The kernel's counters, summed over the run.
    pub(crate) kernel: PktringStats,
    /// Frames by the CPU that produced them.
    pub(crate) per_cpu: BTreeMap<u16, u64>,
    /// Frames by RX queue (`None`: the device recorded none).
    pub(crate) per_queue: BTreeMap<Option<u16>, u64>,
    pub(crate) elapsed: Duration,
    /// Why the capture ended before its limits (`info.error`), if it did.
    pub(crate) ended: Option<i32>,
    /// What the capture cost this process, where it could be measured.
    pub(crate) cost: Option<Cost>,
    /// A capture filter was set: the kernel line says how many packets it rejected.
    pub(crate) filter: bool,
}

/// What a capture cost the consumer: its wake-ups, its CPU time and its context switches.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Cost {
    /// Times the consumer was woken while waiting for frames.
    pub(crate) wakeups: u64,
    /// CPU time in user space and in the kernel.
    pub(crate) user: Duration,
    pub(crate) system: Duration,
    /// Context switches, voluntary (mostly sleeps) and not.
    pub(crate) voluntary: u64,
    pub(crate) involuntary: u64,
}

impl Cost {
    /// The process's CPU time and context switches so far, from `/proc/self` (`None` without
    /// `/proc`).
    pub(crate) fn of_self() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of proc(5), 12 and 13 after the name.
        let ticks = rustix::param::clock_ticks_per_second().max(1);
        let time = |field: &str| {
            let ticks_used: u64 = field.parse().ok()?;
            Some(Duration::from_nanos(ticks_used * 1_000_000_000 / ticks))
        };
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let switches = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().parse().ok())
        };
        Some(Self {
            wakeups: 0,
            user: time(fields.get(11)?)?,
            system: time(fields.get(12)?)?,
            voluntary: switches("voluntary_ctxt_switches:")?,
            involuntary: switches("nonvoluntary_ctxt_switches:")?,
        })
    }

    /// What was spent from `start` to `self`.
    pub(crate) fn since(self, start: Self) -> Self {
        Self {
            wakeups: self.wakeups.saturating_sub(start.wakeups),
            user: self.user.saturating_sub(start.user),
            system: self.system.saturating_sub(start.system),
            voluntary: self.voluntary.saturating_sub(start.voluntary),
            involuntary: self.involuntary.saturating_sub(start.involuntary),
        }
    }
}

/// Frames counted by the CPU that produced them and the RX queue they came through, in arrays
/// indexed by CPU and queue while the capture runs (a map per frame costs too much at speed).
#[derive(Default)]
struct Spread {
    per_cpu: Vec<u64>,
    per_queue: Vec<u64>,
    no_queue: u64,
}

impl Spread {
    fn count(&mut self, frame: &Frame<'_>) {
        bump(&mut self.per_cpu, frame.cpu());
        match frame.rx_queue() {
            Some(queue) => bump(&mut self.per_queue, queue),
            None => self.no_queue += 1,
        }
    }

    /// Adds the counts to the summary's maps.
    fn into_summary(self, summary: &mut Summary) {
        let used = |counts: Vec<u64>| {
            counts
                .into_iter()
                .enumerate()
                .filter(|&(_, n)| n != 0)
                .map(|(i, n)| (i as u16, n))
                .collect::<Vec<_>>()
        };
        for (cpu, n) in used(self.per_cpu) {
            *summary.per_cpu.entry(cpu).or_default() += n;
        }
        for (queue, n) in used(self.per_queue) {
            *summary.per_queue.entry(Some(queue)).or_default() += n;
        }
        if self.no_queue != 0 {
            *summary.per_queue.entry(None).or_default() += self.no_queue;
        }
    }
}

/// Adds one to `counts[index]`, growing the array as needed (a CPU or queue number is a `u16`).
fn bump(counts: &mut Vec<u64>, index: u16) {
    let index = usize::from(index);
    if index >= counts.len() {
        counts.resize(index + 1, 0);
    }
    counts[index] += 1;
}

impl Summary {
    fn add_kernel(&mut self, stats: PktringStats) {
        self.kernel.packets += stats.packets;
        self.kernel.drops += stats.drops;
        self.kernel.filtered += stats.filtered;
    }

    /// Adds what another consumer of the same capture saw (a member of its fanout group): its
    /// counts, its spread; the longest elapsed time; the first reason to have ended. (Not the
    /// cost, which is the process's.)
    pub(crate) fn merge(&mut self, other: &Summary) {
        self.packets += other.packets;
        self.corrupt += other.corrupt;
        self.add_kernel(other.kernel);
        for (&cpu, &n) in &other.per_cpu {
            *self.per_cpu.entry(cpu).or_default() += n;
        }
        for (&queue, &n) in &other.per_queue {
            *self.per_queue.entry(queue).or_default() += n;
        }
        self.elapsed = self.elapsed.max(other.elapsed);
        self.ended = self.ended.or(other.ended);
        self.filter |= other.filter;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "packets:   {} in {secs:.2} s ({:.0}/s), {} corrupt frames",
            self.packets,
            self.packets as f64 / secs.max(1e-9),
            self.corrupt
        )?;
        write!(
            f,
            "kernel:    {} packets, {} drops",
            self.kernel.packets, self.kernel.drops
        )?;
        if self.filter {
            write!(f, ", {} filtered", self.kernel.filtered)?;
        }
        writeln!(f)?;
        let cpus = self.per_cpu.iter().map(|(cpu, n)| format!("cpu{cpu} {n}"));
        let queues = self.per_queue.iter().map(|(queue, n)| match queue {
            Some(queue) => format!("rx{queue} {n}"),
            None => format!("none {n}"),
        });
        writeln!(f, "per CPU:   {}", spread(cpus))?;
        write!(f, "per queue: {}", spread(queues))?;
        if let Some(cost) = &self.cost {
            let per_k = |n: u64| n as f64 * 1000.0 / (self.packets.max(1) as f64);
            write!(
                f,
                "\nconsumer:  {} wake-ups ({:.1} per 1000 packets), CPU {:.3} s user + {:.3} s \
                 system, {} context switches ({:.1} per 1000 packets)",
                cost.wakeups,
                per_k(cost.wakeups),
                cost.user.as_secs_f64(),
                cost.system.as_secs_f64(),
                cost.voluntary + cost.involuntary,
                per_k(cost.voluntary + cost.involuntary)
            )?;
        }
        Ok(())
    }
}

/// Joins counts with spaces; `-` for none.
fn spread(counts: impl Iterator<Item = String>) -> String {
    let line = counts.collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "-".into()
    } else {
        line
    }
}

/// The live progress line.
pub(crate) struct Progress {
    since: Instant,
    packets: u64,
}

impl Progress {
    /// The line of a capture that starts at `start`.
    pub(crate) fn new(start: Instant) -> Self {
        Self {
            since: start,
            packets: 0,
        }
    }

    /// Shows `packets` written and `drops` so far.
    pub(crate) fn show(&mut self, packets: u64, drops: u64, now: Instant) {
        let rate = packets.saturating_sub(self.packets) as f64
            / (now - self.since).as_secs_f64().max(1e-9);
        eprint!("\r{packets} packets, {drops} drops, {rate:.0} packets/s\x1b[K");
        (self.since, self.packets) = (now, packets);
    }
}

/// A consumer's counts so far, for another thread's progress line: what a member of a fanout
/// group has written, and its kernel drops, published every [`TICK`].
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) packets: AtomicU64,
    pub(crate) drops: AtomicU64,
}

/// How one consumer runs: when it stops, and what it shows.
pub(crate) struct Run<'a> {
    /// The packets it may write, shared with the other members of its group.
    pub(crate) budget: &'a Budget,
    /// When it stops (`--duration`), shared with the other members of its group.
    pub(crate) deadline: Option<Instant>,
    /// A signal, or another member that took the last packet of the budget or failed.
    pub(crate) stop: &'a AtomicBool,
    /// Its own progress line (a lone ring).
    pub(crate) progress: bool,
    /// Where to publish its counts every [`TICK`] for a progress line of the whole group.
    pub(crate) live: Option<&'a Live>,
    /// Measure what the capture costs the process (a lone ring: for a group, the caller does).
    pub(crate) cost: bool,
}

/// Takes frames from `source` and hands each to `sink` until `limits` or `stop`; returns what
/// it saw, with the kernel's counters read at the end, and every [`TICK`] for a progress line.
/// (The caller sets [`Summary::filter`].)
pub(crate) fn consume(
    source: &mut impl FrameSource,
    limits: &Limits,
    stop: &AtomicBool,
    output: &Output,
    sink: impl FnMut(&Frame<'_>) -> Result<()>,
) -> Result<Summary> {
    let budget = Budget::new(limits.count);
    let run = Run {
        budget: &budget,
        deadline: limits.duration.map(|duration| Instant::now() + duration),
        stop,
        progress: output.progress,
        live: None,
        cost: true,
    };
    consume_run(source, &run, sink)
}

/// [`consume`] as `run` says: until its budget, its deadline or its stop flag. Once it stops,
/// a source that [leaves](FrameSource::leave) its group is drained: every frame it holds is
/// taken (as long as the budget lasts). Taking the last packet of the budget sets the stop
/// flag, for the other members of a group.
pub(crate) fn consume_run(
    source: &mut impl FrameSource,
    run: &Run<'_>,
    mut sink: impl FnMut(&Frame<'_>) -> Result<()>,
) -> Result<Summary> {
    let start = Instant::now();
    let (budget, deadline, stop) = (run.budget, run.deadline, run.stop);
    let mut summary = Summary::default();
    let mut progress = run.progress.then(|| Progress::new(start));
    let interval = if progress.is_some() || run.live.is_some() {
        TICK
    } else {
        QUIET_TICK
    };
    let mut tick = start + interval;
    let cost_at_start = run.cost.then(Cost::of_self).flatten().map(|cost| Cost {
        wakeups: source.wakeups(),
        ..cost
    });
    let mut spread = Spread::default();
    // A frame taken from the ring: written if the budget has a packet left for it.
    let mut deliver = |frame: &Frame<'_>, summary: &mut Summary, spread: &mut Spread| {
        if budget.take() {
            sink(frame)?;
            summary.packets += 1;
            spread.count(frame);
        }
        Ok::<_, anyhow::Error>(())
    };
    'capture: while !stop.load(Ordering::Relaxed) {
        // Every frame that is ready, in a row: no clock, no system call between them.
        for _ in 0..DRAIN_BATCH {
            if budget.exhausted() {
                break 'capture;
            }
            match source.try_next() {
                Ok(Some(frame)) => deliver(&frame, &mut summary, &mut spread)?,
                Ok(None) => break,
                Err(pktring::Error::Corrupt(_)) => summary.corrupt += 1,
                Err(err) => return Err(err.into()),
            }
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            break;
        }
        if now >= tick {
            if progress.is_some() || run.live.is_some() {
                summary.add_kernel(source.take_stats()?);
            }
            if let Some(progress) = &mut progress {
                progress.show(summary.packets, summary.kernel.drops, now);
            }
            if let Some(live) = run.live {
                live.packets.store(summary.packets, Ordering::Relaxed);
                live.drops.store(summary.kernel.drops, Ordering::Relaxed);
            }
            tick = now + interval;
        }
        if budget.exhausted() {
            break;
        }
        let wake = deadline.map_or(tick, |deadline| deadline.min(tick));
        match source.next_frame(wake - now) {
            Ok(Some(frame)) => deliver(&frame, &mut summary, &mut spread)?,
            Ok(None) => {}
            Err(pktring::Error::Corrupt(_)) => summary.corrupt += 1,
            Err(pktring::Error::Ended { errno }) => {
                summary.ended = Some(errno);
                break;
            }
            Err(err) => return Err(err.into()),
        }
    }
    if budget.exhausted() {
        // The other members of the group stop too.
        stop.store(true, Ordering::Relaxed);
    }
    if source.leave()? {
        // Nothing fills the ring any more: what it holds is the capture's too.
        while !budget.exhausted() {
            match source.try_next() {
                Ok(Some(frame)) => deliver(&frame, &mut summary, &mut spread)?,
                Ok(None) => break,
                Err(pktring::Error::Corrupt(_)) => summary.corrupt += 1,
                Err(err) => return Err(err.into()),
            }
        }
    }
    spread.into_summary(&mut summary);
    summary.elapsed = start.elapsed();
    summary.add_kernel(source.take_stats()?);
    if let Some(live) = run.live {
        live.packets.store(summary.packets, Ordering::Relaxed);
        live.drops.store(summary.kernel.drops, Ordering::Relaxed);
    }
    summary.cost = cost_at_start.and_then(|at_start| {
        let now = Cost {
            wakeups: source.wakeups(),
            ..Cost::of_self()?
        };
        Some(now.since(at_start))
    });
    if progress.is_some() {
        eprintln!();
    }
    Ok(summary)
}

/// Writes frames to a pcap file: the capture's link type, nanosecond timestamps, the ring's
/// snaplen.
///
/// The records are written straight into a large buffer: a 16-byte header and the bytes, with
/// no per-packet allocation or check beyond what the frame was checked for already.
pub(crate) struct PcapSink<W: Write> {
    out: W,
}

/// The buffer in front of a capture file (pcap or pcapng): large writes, few system calls.
pub(crate) const FILE_BUFFER: usize = 1 << 20;

/// The magic number of a pcap file with nanosecond timestamps, in the writer's byte order.
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;

impl PcapSink<BufWriter<File>> {
    /// Creates the file `path`.
    pub(crate) fn create(path: &Path, snaplen: u32, link_type: u16) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("{}", path.display()))?;
        Self::new(
            BufWriter::with_capacity(FILE_BUFFER, file),
            snaplen,
            link_type,
        )
    }
}

impl<W: Write> PcapSink<W> {
    /// Writes the pcap header to `out`, for packets of `link_type` (`LINKTYPE_*`).
    pub(crate) fn new(mut out: W, snaplen: u32, link_type: u16) -> Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&PCAP_MAGIC_NANOS.to_ne_bytes());
        header[4..6].copy_from_slice(&2u16.to_ne_bytes());
        header[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone and sigfigs stay 0.
        header[16..20].copy_from_slice(&snaplen.to_ne_bytes());
        header[20..24].copy_from_slice(&u32::from(link_type).to_ne_bytes());
        out.write_all(&header).context("writing the pcap header")?;
        Ok(Self { out })
    }

    /// Writes one packet: the captured bytes, with the packet's length on the wire.
    pub(crate) fn write(&mut self, packet: &Record<'_>) -> Result<()> {
        let ts = packet.timestamp;
        let mut record = [0u8; 16];
        // A pcap's seconds are 32 bits: the timestamps of a capture fit until 2106.
        record[0..4].copy_from_slice(&(ts.as_secs() as u32).to_ne_bytes());
        record[4..8].copy_from_slice(&ts.subsec_nanos().to_ne_bytes());
        record[8..12].copy_from_slice(&(packet.caplen() as u32).to_ne_bytes());
        record[12..16].copy_from_slice(&packet.wire_len.to_ne_bytes());
        self.out
            .write_all(&record)
            .and_then(|()| self.out.write_all(packet.header_bytes()))
            .and_then(|()| self.out.write_all(packet.data))
            .context("writing a packet to the pcap")
    }

    /// Flushes the output and returns it.
    pub(crate) fn finish(mut self) -> Result<W> {
        self.out.flush().context("flushing the pcap")?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::LinkType;
    use pcap_file::pcap::PcapReader;
    use pcap_file::DataLink;
    use pcap_file::TsResolution;
    use pktring::fake::{FakePacket, FakeRing};
    use pktring::uapi::{PktringFrame, PKTRING_NO_RX_QUEUE, TP_STATUS_USER};
    use pktring::{Geometry, RingReader};
    use std::thread;

    impl FrameSource for RingReader<'_> {
        fn try_next(&mut self) -> Result<Option<Frame<'_>>, pktring::Error> {
            Ok(RingReader::try_next(self)?)
        }

        fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame<'_>>, pktring::Error> {
            RingReader::next_frame(self, Some(timeout), |left| {
                thread::sleep(left.unwrap_or(Duration::MAX).min(Duration::from_millis(1)));
                Ok(true)
            })
        }

        fn take_stats(&mut self) -> Result<PktringStats, pktring::Error> {
            Ok(PktringStats {
                packets: 1,
                drops: 0,
                filtered: 0,
            })
        }

        fn wakeups(&self) -> u64 {
            RingReader::wakeups(self)
        }
    }

    const QUIET: Output = Output {
        quiet: true,
        progress: false,
    };

    fn packet(len: usize, seq: u8) -> Vec<u8> {
        let mut p = vec![seq; len];
        p[12..14].copy_from_slice(&[0x86, 0xdd]);
        p
    }

    #[test]
    fn frames_become_pcap_packets() {
        let geometry = Geometry {
            block_size: 4096,
            block_nr: 2,
            frame_size: 2048,
        };
        let mut ring = FakeRing::new(geometry, 100).unwrap();
        let (mut reader, producer) = ring.split();
        let sent = [
            (packet(60, 1), 0, 0),
            (packet(150, 2), 1, 3),
            (packet(1500, 3), 3, PKTRING_NO_RX_QUEUE),
        ];
        for (i, (data, cpu, rx_queue)) in sent.iter().enumerate() {
            let mut claim = producer.claim().unwrap();
            claim.fill(&FakePacket {
                data,
                timestamp: Duration::new(1_700_000_000, i as u32 * 1000 + 7),
                cpu: *cpu,
                rx_queue: *rx_queue,
                ifindex: 2,
                ..FakePacket::default()
            });
            claim.release(TP_STATUS_USER);
            if i == 0 {
                // A corrupt frame after the first: counted, skipped.
                let mut claim = producer.claim().unwrap();
                claim.write_header(&PktringFrame {
                    tp_mac: u16::MAX,
                    ..PktringFrame::default()
                });
                claim.release(TP_STATUS_USER);
            }
        }

        let mut sink = PcapSink::new(Vec::new(), 100, 1).unwrap();
        let limits = Limits {
            count: Some(3),
            duration: Some(Duration::from_secs(10)),
        };
        let stop = AtomicBool::new(false);
        let summary = consume(&mut reader, &limits, &stop, &QUIET, |frame| {
            sink.write(&Record::of(frame, LinkType::Ethernet))
        })
        .unwrap();
        assert_eq!((summary.packets, summary.corrupt), (3, 1));
        assert_eq!(
            summary.kernel.packets, 1,
            "the counters are read at the end"
        );
        assert_eq!(summary.per_cpu, BTreeMap::from([(0, 1), (1, 1), (3, 1)]));
        assert_eq!(
            summary.per_queue,
            BTreeMap::from([(None, 1), (Some(0), 1), (Some(3), 1)])
        );

        let pcap = sink.finish().unwrap();
        let mut pcap = PcapReader::new(&pcap[..]).unwrap();
        let header = pcap.header();
        assert_eq!(header.datalink, DataLink::ETHERNET);
        assert_eq!(header.ts_resolution, TsResolution::NanoSecond);
        assert_eq!(header.snaplen, 100);
        // Raw packets: pcap-file 2.0's `next_packet` refuses an orig_len above the snaplen
        // (courvoif/pcap-file#36, fixed after 2.0.0), which libpcap and Wireshark read.
        for (i, (data, _, _)) in sent.iter().enumerate() {
            let packet = pcap.next_raw_packet().unwrap().unwrap();
            assert_eq!(
                (packet.ts_sec, packet.ts_frac),
                (1_700_000_000, i as u32 * 1000 + 7)
            );
            assert_eq!(packet.orig_len as usize, data.len());
            assert_eq!(packet.incl_len as usize, data.len().min(100));
            assert_eq!(packet.data, &data[..data.len().min(100)]);
        }
        assert!(pcap.next_raw_packet().is_none());
    }

    #[test]
    fn frames_take_the_file_s_link_type() {
        let mut ring = FakeRing::new(Geometry::default(), 0).unwrap();
        let (mut reader, producer) = ring.split();
        let ip = {
            let mut ip = vec![0u8; 40];
            ip[0] = 0x60;
            ip
        };
        let ether = packet(54, 9);
        for (data, raw, pkttype) in [(&ip, true, 4), (&ether, false, 0)] {
            let mut claim = producer.claim().unwrap();
            claim.fill(&FakePacket {
                data,
                raw,
                pkttype,
                ..FakePacket::default()
            });
            claim.release(TP_STATUS_USER);
        }
        // A frame without a link-layer header, in an Ethernet file: a made-up header.
        let frame = reader.try_next().unwrap().unwrap();
        assert_eq!(frame.link_header_len(), 0);
        let record = Record::of(&frame, LinkType::Ethernet);
        assert_eq!(
            (record.caplen(), record.wire_len, record.outbound),
            (54, 54, true)
        );
        assert_eq!(
            record.header_bytes(),
            [&[0; 12][..], &[0x86, 0xdd]].concat()
        );
        assert_eq!(record.data, &ip[..]);
        // ... as it is in a raw one.
        let record = Record::of(&frame, LinkType::Raw);
        assert_eq!(
            (record.caplen(), record.wire_len, record.link_header),
            (40, 40, None)
        );
        drop(frame);
        // An Ethernet frame in a raw file: from its network header.
        let frame = reader.try_next().unwrap().unwrap();
        let record = Record::of(&frame, LinkType::Raw);
        assert_eq!(
            (record.caplen(), record.wire_len, record.outbound),
            (40, 40, false)
        );
        assert_eq!(record.data, &ether[14..]);
        let record = Record::of(&frame, LinkType::Ethernet);
        assert_eq!((record.caplen(), record.link_header), (54, None));

        let mut sink = PcapSink::new(Vec::new(), 64, 101).unwrap();
        sink.write(&record).unwrap();
        let pcap = sink.finish().unwrap();
        let pcap = PcapReader::new(&pcap[..]).unwrap();
        assert_eq!(pcap.header().datalink, DataLink::RAW);
    }

    #[test]
    fn a_capture_stops_at_its_duration_or_on_a_signal() {
        let mut ring = FakeRing::new(Geometry::default(), 0).unwrap();
        let (mut reader, _producer) = ring.split();
        let limits = Limits {
            count: None,
            duration: Some(Duration::from_millis(600)),
        };
        let stop = AtomicBool::new(false);
        let summary = consume(&mut reader, &limits, &stop, &QUIET, |_| Ok(())).unwrap();
        assert!(summary.elapsed >= Duration::from_millis(600));
        assert_eq!(
            summary.kernel.packets, 1,
            "without a progress line, read once at the end"
        );

        // With a progress line (on stderr), the counters it shows are read every tick.
        let progress = Output {
            quiet: false,
            progress: true,
        };
        let summary = consume(&mut reader, &limits, &stop, &progress, |_| Ok(())).unwrap();
        assert!(
            summary.kernel.packets >= 3,
            "read every tick and at the end"
        );

        stop.store(true, Ordering::Relaxed);
        let summary = consume(&mut reader, &limits, &stop, &QUIET, |_| Ok(())).unwrap();
        assert!(summary.elapsed < Duration::from_millis(600));
    }

    /// A source whose capture has ended, as a ring reports it once `poll()` says `POLLERR`.
    struct Ended;

    impl FrameSource for Ended {
        fn try_next(&mut self) -> Result<Option<Frame<'_>>, pktring::Error> {
            Ok(None)
        }

        fn next_frame(&mut self, _timeout: Duration) -> Result<Option<Frame<'_>>, pktring::Error> {
            Err(pktring::Error::Ended {
                errno: rustix::io::Errno::NETDOWN.raw_os_error(),
            })
        }

        fn take_stats(&mut self) -> Result<PktringStats, pktring::Error> {
            Ok(PktringStats::default())
        }

        fn wakeups(&self) -> u64 {
            0
        }
    }

    #[test]
    fn an_ended_capture_stops_and_says_why() {
        let limits = Limits {
            count: None,
            duration: Some(Duration::from_secs(60)),
        };
        let stop = AtomicBool::new(false);
        let summary = consume(&mut Ended, &limits, &stop, &QUIET, |_| Ok(())).unwrap();
        assert_eq!(
            summary.ended,
            Some(rustix::io::Errno::NETDOWN.raw_os_error())
        );
        assert!(summary.elapsed < Duration::from_secs(5));
    }

    /// A member of a fanout group over a ring in memory: it leaves its group at the end.
    struct Member<'a>(RingReader<'a>);

    impl FrameSource for Member<'_> {
        fn try_next(&mut self) -> Result<Option<Frame<'_>>, pktring::Error> {
            FrameSource::try_next(&mut self.0)
        }

        fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame<'_>>, pktring::Error> {
            FrameSource::next_frame(&mut self.0, timeout)
        }

        fn take_stats(&mut self) -> Result<PktringStats, pktring::Error> {
            FrameSource::take_stats(&mut self.0)
        }

        fn wakeups(&self) -> u64 {
            self.0.wakeups()
        }

        fn leave(&mut self) -> Result<bool> {
            Ok(true)
        }
    }

    /// Fills `n` frames of `producer`'s ring, the first byte of each its number from `first`.
    fn fill(producer: &pktring::fake::Producer<'_>, first: u8, n: u8) {
        for seq in first..first + n {
            let mut claim = producer.claim().unwrap();
            claim.fill(&FakePacket {
                data: &packet(60, seq),
                ..FakePacket::default()
            });
            claim.release(TP_STATUS_USER);
        }
    }

    #[test]
    fn a_member_drains_its_ring_once_it_has_left() {
        let mut ring = FakeRing::new(Geometry::default(), 0).unwrap();
        let (reader, producer) = ring.split();
        fill(&producer, 0, 5);
        // Stopped before it took a frame: a member still takes the five its ring holds...
        let stop = AtomicBool::new(true);
        let budget = Budget::new(None);
        let run = Run {
            budget: &budget,
            deadline: None,
            stop: &stop,
            progress: false,
            live: None,
            cost: false,
        };
        let mut member = Member(reader);
        let mut seen = Vec::new();
        let summary = consume_run(&mut member, &run, |frame| {
            seen.push(frame.data()[0]);
            Ok(())
        })
        .unwrap();
        assert_eq!((summary.packets, seen), (5, vec![0, 1, 2, 3, 4]));
        assert_eq!(summary.cost, None, "a member does not measure the process");
        // ... as many as the budget lets it.
        fill(&producer, 5, 5);
        let budget = Budget::new(Some(3));
        let run = Run {
            budget: &budget,
            ..run
        };
        let summary = consume_run(&mut member, &run, |_| Ok(())).unwrap();
        assert_eq!(summary.packets, 3);
        // A lone ring does not leave: stopped, it takes nothing more.
        let mut reader = member.0;
        let limits = Limits {
            count: None,
            duration: None,
        };
        let summary = consume(&mut reader, &limits, &stop, &QUIET, |_| Ok(())).unwrap();
        assert_eq!(summary.packets, 0);
    }

    #[test]
    fn members_share_the_count() {
        let (mut one, mut two) = (
            FakeRing::new(Geometry::default(), 0).unwrap(),
            FakeRing::new(Geometry::default(), 0).unwrap(),
        );
        let (one, two) = (one.split(), two.split());
        fill(&one.1, 0, 10);
        fill(&two.1, 100, 10);
        let stop = AtomicBool::new(false);
        let budget = Budget::new(Some(15));
        let live = [Live::default(), Live::default()];
        let start = Instant::now();
        let summaries: Vec<Summary> = thread::scope(|scope| {
            let threads: Vec<_> = [one.0, two.0]
                .into_iter()
                .zip(&live)
                .map(|(reader, live)| {
                    let run = Run {
                        budget: &budget,
                        deadline: Some(start + Duration::from_secs(30)),
                        stop: &stop,
                        progress: false,
                        live: Some(live),
                        cost: false,
                    };
                    scope.spawn(move || consume_run(&mut Member(reader), &run, |_| Ok(())))
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().unwrap().unwrap())
                .collect()
        });
        let mut total = Summary::default();
        for summary in &summaries {
            total.merge(summary);
        }
        assert_eq!(total.packets, 15, "COUNT in all: {summaries:?}");
        assert!(summaries.iter().all(|summary| summary.packets >= 5));
        assert!(
            stop.load(Ordering::Relaxed),
            "the last packet stops the others"
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not the deadline"
        );
        let published: u64 = live
            .iter()
            .map(|live| live.packets.load(Ordering::Relaxed))
            .sum();
        assert_eq!(published, 15, "the final counts are published");
        assert_eq!(total.kernel.packets, 2, "both members' counters");
        assert_eq!(total.per_cpu, BTreeMap::from([(0, 15)]));
    }

    #[test]
    fn the_summary_shows_the_spread() {
        let summary = Summary {
            packets: 4,
            corrupt: 0,
            kernel: PktringStats {
                packets: 9,
                drops: 1,
                filtered: 4,
            },
            per_cpu: BTreeMap::from([(0, 3), (2, 1)]),
            per_queue: BTreeMap::from([(None, 1), (Some(1), 3)]),
            elapsed: Duration::from_secs(2),
            ended: None,
            cost: None,
            filter: true,
        };
        assert_eq!(
            summary.to_string(),
            "packets:   4 in 2.00 s (2/s), 0 corrupt frames\n\
             kernel:    9 packets, 1 drops, 4 filtered\n\
             per CPU:   cpu0 3 cpu2 1\n\
             per queue: none 1 rx1 3"
        );
        assert!(Summary::default()
            .to_string()
            .ends_with("0 drops\nper CPU:   -\nper queue: -"));
    }
}
