// SPDX-License-Identifier: GPL-2.0

//! `pktring`: capture packets from the rust_pktring ring into a pcap or pcapng file, or take a
//! quick look at what a ring would see.
//!
//! ```text
//! pktring capture -w FILE.pcap|FILE.pcapng [--format F] [--sort-window N] [-c COUNT]
//!                 [--duration DURATION] [-q] [RING OPTIONS] [EXPRESSION...]
//! pktring capture --fanout MODE [--threads N] [--fanout-id ID] [--rollover] -w FILE-%d.pcap
//!                 [the same options]
//! pktring capture -d|-dd|-ddd [RING OPTIONS] [EXPRESSION...]
//! pktring stats [--duration DURATION] [RING OPTIONS] [EXPRESSION...]
//! pktring list [--json]
//! ```
//!
//! EXPRESSION is a tcpdump filter expression (its words joined by spaces, as tcpdump joins
//! them), compiled by libpcap for the capture's link type and attached to the ring before it
//! starts capturing; `-d` prints the compiled program as `tcpdump -d` does, and exits.
//!
//! `capture --fanout` sets up N rings in one fanout group, each packet in one of them, and a
//! thread per ring writes its own file (`%d` in the name: the ring's index).
//!
//! `capture` reports on stderr: a progress line while stderr is a terminal, the summary at the
//! end. `stats` prints its summary on stdout. Errors are one line on stderr and exit status 1;
//! bad options and bad filter expressions exit with status 2.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use pktring::uapi::{
    SockFilter, PKTRING_ETH_P_ALL, PKTRING_FANOUT_MAX_MEMBERS, PKTRING_MAX_SNAPLEN,
};
use pktring::{Family, Fanout, Geometry, Hook, Op, RingBuilder, DEFAULT_DEVICE};
use rustix::io::Errno;
use signal_hook::consts::{SIGINT, SIGTERM};

mod capture;
mod fanout;
mod filter;
mod list;
mod pcapng;
mod sink;

use capture::{Budget, Cost, FrameSource, Limits, Live, Output, Progress, Run, Summary};
use fanout::Member;
use filter::LinkType;
use sink::{Format, Order, Record, Sink};

#[derive(Debug, Parser)]
#[command(
    name = "pktring",
    version,
    about = "Capture packets through the rust_pktring ring",
    after_help = "-d is tcpdump's: `pktring capture -d EXPRESSION` prints the compiled filter. \
                  The duration of a capture or of stats is --duration."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture packets into a pcap or pcapng file, until COUNT packets, DURATION or Ctrl-C.
    Capture(CaptureArgs),
    /// Set up a ring, discard what it captures for DURATION, and print the counters.
    Stats(StatsArgs),
    /// List the open rings of this network namespace, whoever opened them (from /proc/pktring).
    List(ListArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print a JSON array, an object per ring.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Link type: Ethernet (LINKTYPE_ETHERNET) on Ethernet and loopback devices and on any device \
(a packet of a device without a link-layer header gets a made-up Ethernet header: zero \
addresses, its EtherType); raw IP (LINKTYPE_RAW) at --hook local-out and post-routing, and on \
devices without a link-layer header (tun, WireGuard, tunnels). The filter is compiled for the \
same link type (tcpdump's -y EN10MB or -y RAW). With a filter on any device, a packet of a \
device without a link-layer header meets the filter from its IP header: name the device (-i).

-d prints the compiled filter as tcpdump -d does (-dd: as C, -ddd: in decimal) and exits; the \
duration is --duration.

Fanout: --fanout MODE sets up --threads N rings (default 1) as one fanout group, which puts each \
packet the capture selects in one of them: by the CPU that captures it (cpu), by a symmetric \
flow hash (hash: both directions of a flow in one ring), by RX queue (queue) or in turn (lb); \
with --rollover, a packet whose ring is full goes to the next ring with room. Each ring gets \
the filter expression, and a thread of its own, which writes its own file: -w names it, with \
%d replaced by the ring's index, 0 to N-1 (-w out-%d.pcap: out-0.pcap, out-1.pcap...; with \
N > 1, -w must have %d). -c COUNT is the packets of all the files together. At the end each \
ring leaves the group and its thread writes what the ring still holds, so that nothing \
captured is lost; the summary has a line per ring (packets written; the kernel's packets, \
drops, filtered and rollover) and the totals. The group's id is --fanout-id (default: the \
process's pid, so that two captures never share a group). To merge the files into one, in \
timestamp order: mergecap -w all.pcap out-*.pcap")]
struct CaptureArgs {
    /// Write the packets to this file (nanosecond timestamps): pcapng if its name ends in
    /// .pcapng, pcap otherwise. With --fanout, %d in the name is each ring's index
    /// (-w out-%d.pcap).
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        required_unless_present = "dump"
    )]
    file: Option<PathBuf>,
    /// Print the compiled filter program in tcpdump -d's form and exit (-dd: as a C array,
    /// -ddd: as decimal numbers), as tcpdump does. (The duration is --duration.)
    #[arg(short = 'd', action = clap::ArgAction::Count, conflicts_with = "file")]
    dump: u8,
    /// The file format, whatever the file's name: pcapng records each packet's CPU and RX
    /// queue, and the kernel's received and dropped counts at the end.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Hold up to N packets and write them in timestamp order (CPUs interleave in the ring,
    /// so timestamps otherwise step back now and then); 0: as they come. The window holds
    /// copies: up to N captured packets of memory.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=65536))]
    sort_window: u32,
    /// Stop after COUNT packets (with --fanout: in all the files together).
    #[arg(short = 'c', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after DURATION (e.g. 10s, 500ms, 2m). Long option only: -d is tcpdump's.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Print nothing but errors.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Capture with --threads rings in one fanout group, which puts each packet in one of them
    /// as MODE says, a thread and a file per ring (see below).
    #[arg(long, value_enum, value_name = "MODE", conflicts_with = "dump")]
    fanout: Option<fanout::Mode>,
    /// The rings of the fanout group: as many threads and files (-w with %d).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=PKTRING_FANOUT_MAX_MEMBERS as i64))]
    threads: u32,
    /// The fanout group's id in the network namespace (default: this process's pid).
    #[arg(long, value_name = "ID", requires = "fanout")]
    fanout_id: Option<u32>,
    /// In a fanout group, a packet whose ring has no free frame goes to the next ring with one
    /// (counted in its rollover), rather than being dropped.
    #[arg(long, requires = "fanout")]
    rollover: bool,
    #[command(flatten)]
    ring: RingArgs,
}

/// The fanout group of a capture: what its rings join, and how many there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Group {
    join: Fanout,
    members: usize,
    /// The id is the default, this process's: no other capture may be in the group.
    own_id: bool,
}

impl CaptureArgs {
    /// Returns the fanout group, if the capture has one, once the options agree; a
    /// [`UsageError`] if they do not.
    fn group(&self) -> Result<Option<Group>, UsageError> {
        let threads = self.threads;
        let Some(mode) = self.fanout else {
            if threads > 1 {
                return Err(UsageError(format!(
                    "--threads {threads} needs --fanout MODE (cpu, hash, queue or lb): the \
                     threads read the rings of a fanout group"
                )));
            }
            return Ok(None);
        };
        if let Some(file) = &self.file {
            if threads > 1 && !fanout::has_index(file) {
                let example = example_pattern(file);
                return Err(UsageError(format!(
                    "-w {} has no %d: with --threads {threads} each ring writes its own file, \
                     named by -w with %d replaced by its index (-w {} makes {})",
                    fanout::pattern_name(file),
                    fanout::pattern_name(&example),
                    fanout::file_range(&example, threads as usize)
                )));
            }
        }
        Ok(Some(Group {
            join: Fanout {
                id: self.fanout_id.unwrap_or_else(std::process::id),
                mode: mode.into(),
                rollover: self.rollover,
            },
            members: threads as usize,
            own_id: self.fanout_id.is_none(),
        }))
    }
}

/// `file` with `-%d` before its extension: the pattern to suggest for it.
fn example_pattern(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned());
    let name = match (stem, file.extension()) {
        (Some(stem), Some(ext)) => format!("{stem}-%d.{}", ext.to_string_lossy()),
        (Some(stem), None) => format!("{stem}-%d"),
        (None, _) => "out-%d.pcap".into(),
    };
    file.with_file_name(name)
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// How long to look.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    #[command(flatten)]
    ring: RingArgs,
}

/// The ring to set up.
#[derive(Debug, Args)]
struct RingArgs {
    /// Most bytes of each packet to capture (0: as many as fit in a frame).
    #[arg(short = 's', long, value_name = "SNAPLEN", default_value_t = 0)]
    snaplen: u32,
    /// Protocol family to capture.
    #[arg(long, value_enum, default_value_t = FamilyArg::Both)]
    family: FamilyArg,
    /// Netfilter hook to capture at: received (pre-routing, local-in), sent (local-out,
    /// post-routing), or a device's (ingress, egress: need an interface).
    #[arg(long, value_enum, default_value_t = HookArg::PreRouting)]
    hook: HookArg,
    /// At a device hook (ingress, egress), capture packets of this EtherType rather than IP:
    /// all, arp, lldp, vlan, ipv4, ipv6 or a number (0x88cc).
    #[arg(long, value_name = "TYPE", value_parser = parse_ethertype, conflicts_with = "family")]
    ethertype: Option<u16>,
    /// Capture only packets arriving on (leaving through, at local-out and post-routing) this
    /// interface; the interface of a device hook.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        conflicts_with = "ifindex"
    )]
    interface: Option<String>,
    /// As -i, by interface index.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    ifindex: Option<u32>,
    /// Bytes per frame: a multiple of 16, at least 52.
    #[arg(long, value_name = "BYTES", default_value_t = Geometry::default().frame_size)]
    frame_size: u32,
    /// Bytes per block: a multiple of the page size.
    #[arg(long, value_name = "BYTES", default_value_t = Geometry::default().block_size)]
    block_size: u32,
    /// Number of blocks.
    #[arg(long = "blocks", value_name = "N", default_value_t = Geometry::default().block_nr)]
    block_nr: u32,
    /// Netfilter hook priority.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    priority: i32,
    /// The device node.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DEVICE)]
    device: PathBuf,
    /// Wake up for every packet, as soon as it is in the ring (as tcpdump's --immediate-mode),
    /// rather than for batches.
    #[arg(long, conflicts_with_all = ["batch", "batch_timeout"])]
    immediate_mode: bool,
    /// Wake up once this many packets are ready (default: half the ring's frames).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..))]
    batch: Option<u32>,
    /// ... or this long after the first packet not woken for, whichever comes first.
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = humantime::parse_duration)]
    batch_timeout: Duration,
    /// A tcpdump filter expression (e.g. 'tcp port 80 or icmp'), its words joined by spaces;
    /// packets it rejects are counted as filtered.
    #[arg(value_name = "EXPRESSION")]
    expression: Vec<String>,
}

/// Parses an `--ethertype`: a name, or a number (decimal, or hexadecimal with 0x).
fn parse_ethertype(text: &str) -> Result<u16, String> {
    let value = match text.to_ascii_lowercase().as_str() {
        "all" => PKTRING_ETH_P_ALL as u16,
        "arp" => 0x0806,
        "lldp" => 0x88cc,
        "vlan" | "8021q" => 0x8100,
        "ip" | "ipv4" => 0x0800,
        "ipv6" => 0x86dd,
        number => match number.strip_prefix("0x") {
            Some(hex) => u16::from_str_radix(hex, 16),
            None => number.parse(),
        }
        .map_err(|_| {
            format!("'{text}' is not all, arp, lldp, vlan, ipv4, ipv6 or a number like 0x88cc")
        })?,
    };
    if value == 0 {
        return Err("EtherType 0 is IP by --family: leave --ethertype out".into());
    }
    Ok(value)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FamilyArg {
    Ipv4,
    Ipv6,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum HookArg {
    PreRouting,
    LocalIn,
    Ingress,
    LocalOut,
    PostRouting,
    Egress,
}

impl HookArg {
    fn hook(self) -> Hook {
        match self {
            HookArg::PreRouting => Hook::PreRouting,
            HookArg::LocalIn => Hook::LocalIn,
            HookArg::Ingress => Hook::Ingress,
            HookArg::LocalOut => Hook::LocalOut,
            HookArg::PostRouting => Hook::PostRouting,
            HookArg::Egress => Hook::Egress,
        }
    }
}

/// An error of the command line found after clap's checks (a bad filter expression, an old
/// `-d DURATION`): one line, exit status 2.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl RingArgs {
    /// Says what the capture selects, where: `IPv4 at pre-routing on eth0`.
    fn selection(&self) -> String {
        let on = self
            .interface_name()
            .unwrap_or_else(|| "any interface".into());
        let family = match (self.ethertype, self.family) {
            (Some(ethertype), _) if u32::from(ethertype) == PKTRING_ETH_P_ALL => {
                "every packet".into()
            }
            (Some(ethertype), _) => format!("EtherType {ethertype:#06x}"),
            (None, FamilyArg::Ipv4) => "IPv4".into(),
            (None, FamilyArg::Ipv6) => "IPv6".into(),
            (None, FamilyArg::Both) => "IPv4 and IPv6".into(),
        };
        format!("{family} at {} on {on}", arg_name(&self.hook))
    }

    /// `, filter 'EXPRESSION'` for the "capturing" line, if there is a filter expression.
    fn filter_words(&self) -> String {
        self.expression()
            .map_or_else(String::new, |expression| format!(", filter '{expression}'"))
    }

    /// Returns the interface captured on as the user named it, if one was.
    fn interface_name(&self) -> Option<String> {
        match (&self.interface, self.ifindex) {
            (Some(name), _) => Some(name.clone()),
            (None, Some(ifindex)) => Some(format!("ifindex {ifindex}")),
            (None, None) => None,
        }
    }

    /// Returns the filter expression, its words joined by spaces; `None` without one.
    fn expression(&self) -> Option<String> {
        let expression = self.expression.join(" ");
        (!expression.trim().is_empty()).then_some(expression)
    }

    /// Returns the link type of the capture: of the hook, and of the interface's device type.
    fn link_type(&self) -> LinkType {
        let name = match (&self.interface, self.ifindex) {
            (Some(name), _) => Some(name.clone()),
            (None, Some(ifindex)) => list::ifname(ifindex),
            (None, None) => None,
        };
        LinkType::choose(
            self.hook.hook().starts_at_network_header(),
            name.as_deref().and_then(filter::interface_type),
        )
    }

    /// Compiles the filter expression, if there is one, for `link`; a bad one is a
    /// [`UsageError`].
    fn compile(&self, link: LinkType) -> Result<Option<Vec<SockFilter>>> {
        let Some(expression) = self.expression() else {
            return Ok(None);
        };
        filter::compile(&expression, link, self.filter_snaplen())
            .map(Some)
            .map_err(|why| UsageError(format!("bad filter expression: {why}")).into())
    }

    /// The snaplen a filter returns for a packet it accepts: the ring's (0: the largest).
    fn filter_snaplen(&self) -> u32 {
        match self.snaplen {
            0 => PKTRING_MAX_SNAPLEN,
            snaplen => snaplen,
        }
    }

    /// Returns the ring builder, after every check that needs no device.
    fn builder(&self) -> Result<RingBuilder> {
        let hook = self.hook.hook();
        let ifindex = match (&self.interface, self.ifindex) {
            (Some(name), _) => pktring::ifindex(name)?,
            (None, Some(ifindex)) => ifindex,
            (None, None) if hook.is_device() => bail!(
                "--hook {} needs an interface: -i IFACE or --ifindex N",
                arg_name(&self.hook)
            ),
            (None, None) => 0,
        };
        if self.ethertype.is_some() && !hook.is_device() {
            bail!("--ethertype is for the device hooks: --hook ingress or --hook egress");
        }
        let builder = RingBuilder::new()
            .device(&self.device)
            .geometry(Geometry {
                block_size: self.block_size,
                block_nr: self.block_nr,
                frame_size: self.frame_size,
            })
            .snaplen(self.snaplen)
            .family(match self.family {
                FamilyArg::Ipv4 => Family::Ipv4,
                FamilyArg::Ipv6 => Family::Ipv6,
                FamilyArg::Both => Family::Both,
            })
            .hook(hook)
            .ifindex(ifindex)
            .ethertype(self.ethertype.unwrap_or(0))
            .priority(self.priority);
        let batch = if self.immediate_mode {
            None
        } else {
            let frames = match self.batch {
                Some(frames) => frames,
                None => (builder.request()?.frame_nr / 2).max(2),
            };
            Some((frames, self.batch_timeout))
        };
        let builder = builder.batch(batch);
        builder.request()?;
        Ok(builder)
    }
}

/// Returns the message for an old `-d DURATION` (`-d 10s`, `-d10s`; `-d` at all for `stats`),
/// which now is tcpdump's `-d`, if `args` (the command line, program name first) has one.
fn old_duration_option(args: &[String]) -> Option<String> {
    let looks_like_duration = |word: &str| word.starts_with(|c: char| c.is_ascii_digit());
    let command = args.iter().skip(1).find(|arg| !arg.starts_with('-'))?;
    let stats = command == "stats";
    if command != "capture" && !stats {
        return None;
    }
    let mut words = args.iter().skip_while(|arg| *arg != command).skip(1);
    while let Some(arg) = words.next() {
        if arg == "--" {
            break;
        }
        let operand = match arg.strip_prefix("-d") {
            Some("") => words.clone().next().cloned(),
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => Some(rest.into()),
            Some(rest) if stats && rest.chars().all(|c| c == 'd') => None,
            _ => continue,
        };
        match operand {
            Some(duration) if looks_like_duration(&duration) => {
                return Some(format!(
                    "-d prints the compiled filter now, as tcpdump's -d: for a duration, use \
                     --duration {duration}"
                ))
            }
            _ if stats => return Some("for a duration, use --duration DURATION".into()),
            _ => {}
        }
    }
    None
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    if let Some(why) = old_duration_option(&args) {
        eprintln!("pktring: {why}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    let name = match cli.command {
        Command::List(_) => "pktring list",
        _ => "pktring",
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {}", explain(&err));
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let (ring_args, limits, output) = match &cli.command {
        Command::List(args) => return list::run(args.json),
        Command::Capture(args) => (
            &args.ring,
            Limits {
                count: args.count,
                duration: args.duration,
            },
            Output {
                quiet: args.quiet,
                progress: !args.quiet && io::stderr().is_terminal(),
            },
        ),
        Command::Stats(args) => (
            &args.ring,
            Limits {
                count: None,
                duration: Some(args.duration),
            },
            Output {
                quiet: false,
                progress: io::stderr().is_terminal(),
            },
        ),
    };
    let group = match &cli.command {
        Command::Capture(args) => args.group()?,
        _ => None,
    };
    let link = ring_args.link_type();
    let program = ring_args.compile(link)?;
    let builder = ring_args.builder()?;
    if let Command::Capture(CaptureArgs { dump: 1.., .. }) = &cli.command {
        // As tcpdump -d: the program for the expression (accept all without one).
        let program = match program {
            Some(program) => program,
            None => filter::compile("", link, ring_args.filter_snaplen())
                .map_err(|why| UsageError(format!("bad filter expression: {why}")))?,
        };
        let Command::Capture(args) = &cli.command else {
            unreachable!()
        };
        print!("{}", filter::dump(&program, args.dump));
        return Ok(());
    }
    let filtered = program.is_some();
    // Ctrl-C and SIGTERM end the capture cleanly: the wait in `poll()` returns at once.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    if let (Command::Capture(args), Some(group)) = (&cli.command, group) {
        let capture = GroupCapture {
            args,
            group,
            link,
            filtered,
            builder: builder.filter(program).fanout(Some(group.join)),
        };
        return capture.run(limits, output, &stop);
    }
    let builder = builder.filter(program);
    let mut ring = builder.open()?;
    // As tcpdump's "listening on": capture has started, traffic may come.
    if !output.quiet {
        let info = ring.layout().info();
        eprintln!(
            "pktring: capturing {}: {} frames of {} bytes, snaplen {}, link type {}{}",
            ring_args.selection(),
            info.frame_nr,
            info.frame_size,
            info.snaplen,
            link.name(),
            ring_args.filter_words()
        );
    }
    match &cli.command {
        Command::Capture(args) => {
            // PANIC: clap requires -w unless -d, which returned above.
            let file = args.file.as_ref().expect("-w FILE");
            let format = args.format.unwrap_or_else(|| Format::of_path(file));
            let name = ring_args.interface_name().unwrap_or_else(|| "any".into());
            let expression = ring_args.expression();
            let interface = pcapng::Interface {
                name: &name,
                link_type: link.linktype(),
                snaplen: ring.layout().info().snaplen,
                filter: expression.as_deref(),
            };
            let window = args.sort_window as usize;
            let mut sink = Sink::create(file, format, &interface, window)?;
            let start = SystemTime::now();
            let mut summary = capture::consume(&mut ring, &limits, &stop, &output, |frame| {
                sink.write(&Record::of(frame, link))
            })?;
            summary.filter = filtered;
            let since_epoch =
                |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap_or_default();
            let order = sink.finish(&pcapng::Counters {
                start: since_epoch(start),
                end: since_epoch(SystemTime::now()),
                received: summary.kernel.packets,
                dropped: summary.kernel.drops,
                filtered: filtered.then_some(summary.kernel.filtered),
                delivered: summary.packets,
            })?;
            // On stderr, as tcpdump does: the capture's output is the file.
            if !output.quiet {
                eprintln!(
                    "file:      {} ({}), {} timestamps earlier than the one before{}\n{summary}",
                    file.display(),
                    arg_name(&format),
                    order.backwards,
                    match window {
                        0 => String::new(),
                        _ => format!(" (sort window {window})"),
                    }
                );
            }
            ended(&summary)
        }
        Command::Stats(_) => {
            let mut summary = capture::consume(&mut ring, &limits, &stop, &output, |_| Ok(()))?;
            summary.filter = filtered;
            println!("{summary}");
            ended(&summary)
        }
        Command::List(_) => unreachable!("listed above"),
    }
}

/// A capture into the rings of a fanout group: a thread and a file per ring.
struct GroupCapture<'a> {
    args: &'a CaptureArgs,
    group: Group,
    link: LinkType,
    /// The rings have a capture filter.
    filtered: bool,
    /// Every ring's: its request, the capture filter and the group.
    builder: RingBuilder,
}

/// What a member of the group captured, once its thread is done.
struct MemberReport {
    path: PathBuf,
    summary: Summary,
    order: Order,
    rollover: u64,
    wakeups: u64,
}

impl GroupCapture<'_> {
    /// Sets up the rings, one after the other (each joins, gets the filter, is set up: it is
    /// member `index` of the group from then on), creates their files, and runs a consumer
    /// thread per ring until the limits, a signal or an error; then prints the summary.
    fn run(&self, limits: Limits, output: Output, stop: &AtomicBool) -> Result<()> {
        let (args, group) = (self.args, &self.group);
        let ring_args = &args.ring;
        // PANIC: clap requires -w unless -d, which conflicts with --fanout.
        let pattern = args.file.as_ref().expect("-w FILE");
        let join = group.join;
        let mut members = Vec::with_capacity(group.members);
        for _ in 0..group.members {
            members.push(Member::open(&self.builder)?);
        }
        let in_group = members[0].fanout()?.members as usize;
        if in_group > group.members && group.own_id {
            bail!(
                "fanout group {} (this process's pid, the default --fanout-id) has {} members \
                 of another capture: name another group with --fanout-id",
                join.id,
                in_group - group.members
            );
        }
        let info = *members[0].layout().info();
        if !output.quiet {
            eprintln!(
                "pktring: capturing {}: {} ring{} in fanout group {} ({}{}{}), {} frames of {} \
                 bytes each, snaplen {}, link type {}{}",
                ring_args.selection(),
                group.members,
                if group.members == 1 { "" } else { "s" },
                join.id,
                arg_name(&fanout::Mode::from(join.mode)),
                if join.rollover { ", rollover" } else { "" },
                match in_group - group.members.min(in_group) {
                    0 => String::new(),
                    others => format!(", with {others} rings of other captures"),
                },
                info.frame_nr,
                info.frame_size,
                info.snaplen,
                self.link.name(),
                ring_args.filter_words()
            );
        }
        let format = args.format.unwrap_or_else(|| Format::of_path(pattern));
        let name = ring_args.interface_name().unwrap_or_else(|| "any".into());
        let expression = ring_args.expression();
        let interface = pcapng::Interface {
            name: &name,
            link_type: self.link.linktype(),
            snaplen: info.snaplen,
            filter: expression.as_deref(),
        };
        let window = args.sort_window as usize;
        let mut sinks = Vec::with_capacity(group.members);
        for index in 0..group.members {
            let path = fanout::member_path(pattern, index);
            sinks.push((Sink::create(&path, format, &interface, window)?, path));
        }

        let start = Instant::now();
        let wall_start = SystemTime::now();
        let cost_at_start = Cost::of_self();
        let budget = Budget::new(limits.count);
        let deadline = limits.duration.map(|duration| start + duration);
        let live: Vec<Live> = (0..group.members).map(|_| Live::default()).collect();
        let reports = thread::scope(|scope| -> Result<Vec<Result<MemberReport>>> {
            let mut threads = Vec::with_capacity(group.members);
            for (index, ((member, (sink, path)), live)) in
                members.into_iter().zip(sinks).zip(&live).enumerate()
            {
                let run = Run {
                    budget: &budget,
                    deadline,
                    stop,
                    progress: false,
                    live: output.progress.then_some(live),
                    cost: false,
                };
                let thread = thread::Builder::new()
                    .name(format!("pktring-{index}"))
                    .spawn_scoped(scope, move || {
                        let report = self.member(member, sink, path, &run, wall_start);
                        if report.is_err() {
                            // The other members stop too: the capture has failed.
                            stop.store(true, Ordering::Relaxed);
                        }
                        report
                    });
                match thread {
                    Ok(thread) => threads.push(thread),
                    Err(err) => {
                        stop.store(true, Ordering::Relaxed);
                        return Err(anyhow::Error::from(err).context("starting a capture thread"));
                    }
                }
            }
            if output.progress {
                let mut progress = Progress::new(start);
                while !threads.iter().all(|thread| thread.is_finished()) {
                    thread::sleep(capture::TICK);
                    let sum = |count: fn(&Live) -> &std::sync::atomic::AtomicU64| {
                        live.iter()
                            .map(|live| count(live).load(Ordering::Relaxed))
                            .sum::<u64>()
                    };
                    progress.show(sum(|l| &l.packets), sum(|l| &l.drops), Instant::now());
                }
                eprintln!();
            }
            Ok(threads
                .into_iter()
                .map(|thread| thread.join().expect("a capture thread panicked"))
                .collect())
        })?;
        let reports = reports.into_iter().collect::<Result<Vec<_>>>()?;

        let mut total = Summary::default();
        for report in &reports {
            total.merge(&report.summary);
        }
        total.filter = self.filtered;
        total.cost = cost_at_start.and_then(|at_start| {
            Some(Cost {
                wakeups: reports.iter().map(|report| report.wakeups).sum(),
                ..Cost::of_self()?.since(Cost {
                    wakeups: 0,
                    ..at_start
                })
            })
        });
        if !output.quiet {
            // On stderr, as tcpdump does: the capture's output is the files.
            eprintln!(
                "{}",
                group_summary(&join, pattern, format, window, &reports, &total)
            );
        }
        ended(&total)
    }

    /// The thread of one member: takes its frames into its file until the capture stops, then
    /// leaves the group, drains the ring, and writes the end of the file.
    fn member(
        &self,
        mut member: Member,
        mut sink: Sink,
        path: PathBuf,
        run: &Run<'_>,
        wall_start: SystemTime,
    ) -> Result<MemberReport> {
        let link = self.link;
        let mut summary = capture::consume_run(&mut member, run, |frame| {
            sink.write(&Record::of(frame, link))
        })?;
        let filtered = self.filtered;
        summary.filter = filtered;
        let rollover = member.fanout()?.rollover;
        let wakeups = member.wakeups();
        // The ring has left the group and is drained: close it.
        drop(member);
        let since_epoch = |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let order = sink
            .finish(&pcapng::Counters {
                start: since_epoch(wall_start),
                end: since_epoch(SystemTime::now()),
                received: summary.kernel.packets,
                dropped: summary.kernel.drops,
                filtered: filtered.then_some(summary.kernel.filtered),
                delivered: summary.packets,
            })
            .with_context(|| format!("{}", path.display()))?;
        Ok(MemberReport {
            path,
            summary,
            order,
            rollover,
            wakeups,
        })
    }
}

/// The summary of a fanout group's capture: the group, a line per member (its packets
/// written, its kernel counters and rollover, its file), the files, and the totals as a lone
/// ring's summary has them.
fn group_summary(
    join: &Fanout,
    pattern: &Path,
    format: Format,
    window: usize,
    reports: &[MemberReport],
    total: &Summary,
) -> String {
    let rings = reports.len();
    let plural = if rings == 1 { "" } else { "s" };
    let rollover: u64 = reports.iter().map(|report| report.rollover).sum();
    let mut text = format!(
        "fanout:    group {} ({}{}), {rings} ring{plural}, {rollover} rollover\n",
        join.id,
        arg_name(&fanout::Mode::from(join.mode)),
        if join.rollover { ", rollover" } else { "" },
    );
    for (index, report) in reports.iter().enumerate() {
        let kernel = &report.summary.kernel;
        let label = format!("member {index}:");
        text += &format!(
            "{label:<10} {} packets (kernel: {} packets, {} drops, {} filtered, {} rollover) in \
             {}\n",
            report.summary.packets,
            kernel.packets,
            kernel.drops,
            kernel.filtered,
            report.rollover,
            report.path.display(),
        );
    }
    let backwards: u64 = reports.iter().map(|report| report.order.backwards).sum();
    text += &format!(
        "file:      {} ({}, {rings} file{plural}), {backwards} timestamps earlier than the one \
         before{}\n{total}",
        pattern.display(),
        arg_name(&format),
        match window {
            0 => String::new(),
            _ => format!(" (sort window {window})"),
        }
    );
    text
}

/// Fails, after the summary, if the capture ended before its limits because the kernel ended
/// it (as tcpdump does when the interface goes away).
fn ended(summary: &capture::Summary) -> Result<()> {
    match summary.ended {
        Some(errno) => Err(pktring::Error::Ended { errno }.into()),
        None => Ok(()),
    }
}

/// Returns the name of an option's value, as given on the command line.
fn arg_name(value: &impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |value| value.get_name().to_owned())
}

/// Says what went wrong in one line, with what to do about it where we know.
fn explain(err: &anyhow::Error) -> String {
    let Some(pktring_err) = err.downcast_ref::<pktring::Error>() else {
        return format!("{err:#}");
    };
    match pktring_err {
        pktring::Error::Open { path, source } => {
            let path = path.display();
            match source.kind() {
                io::ErrorKind::NotFound if !Path::new("/sys/module/rust_pktring").exists() => {
                    format!("{path}: module not loaded: insmod rust_pktring.ko")
                }
                io::ErrorKind::NotFound => {
                    format!("{path}: device node missing (rust_pktring is loaded: is devtmpfs mounted?)")
                }
                io::ErrorKind::PermissionDenied => {
                    format!("{path}: permission denied: run as root")
                }
                _ => format!("{path}: {source}"),
            }
        }
        pktring::Error::Io {
            op: Op::SetRing,
            source,
        } => match Errno::from_io_error(source) {
            Some(Errno::INVAL) => "the module refused the ring request (EINVAL): is it built from \
                                   the same rust_pktring_uapi.h as this tool?"
                .into(),
            Some(Errno::BUSY) => "the ring is already set up (EBUSY)".into(),
            Some(Errno::PERM) => "capturing needs CAP_NET_RAW in the user namespace that owns \
                                  this network namespace (EPERM): run as root, or grant the \
                                  opener CAP_NET_RAW"
                .into(),
            Some(Errno::NONET) => "the network namespace is going away (ENONET)".into(),
            Some(Errno::NODEV) => "no such interface (ENODEV)".into(),
            Some(Errno::TOOBIG) => {
                "no room for another netfilter hook at this hook point (E2BIG)".into()
            }
            Some(Errno::NOMEM) => {
                "not enough memory for the ring (ENOMEM): try fewer or smaller blocks".into()
            }
            _ => pktring_err.to_string(),
        },
        pktring::Error::Io {
            op: Op::SetFilter,
            source,
        } => match Errno::from_io_error(source) {
            Some(Errno::INVAL) => "the module refused the capture filter (EINVAL)".into(),
            Some(Errno::NOTTY) => "this rust_pktring has no capture filters (ENOTTY): \
                                   load one built from the same rust_pktring_uapi.h as this tool"
                .into(),
            _ => pktring_err.to_string(),
        },
        pktring::Error::Fanout { id, op, source } => fanout::explain(*id, *op, source),
        _ => pktring_err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use pktring::uapi::PktringReq;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("pktring").chain(args.iter().copied()))
    }

    fn ring_args(args: &[&str]) -> RingArgs {
        match parse(&[&["stats"], args].concat()).unwrap().command {
            Command::Stats(stats) => stats.ring,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn capture_options_parse() {
        let cli = parse(&[
            "capture",
            "-w",
            "out.pcap",
            "-c",
            "100",
            "--duration",
            "500ms",
            "-s",
            "128",
            "--family",
            "ipv6",
            "--hook",
            "local-in",
            "--ifindex",
            "3",
            "--frame-size",
            "4096",
            "--block-size",
            "8192",
            "--blocks",
            "4",
            "--priority",
            "-100",
            "--device",
            "/tmp/dev",
            "-q",
        ])
        .unwrap();
        let Command::Capture(args) = cli.command else {
            panic!("not a capture");
        };
        assert_eq!(args.file.as_deref(), Some(Path::new("out.pcap")));
        assert_eq!((args.dump, args.ring.expression()), (0, None));
        assert_eq!(args.count, Some(100));
        assert_eq!(args.duration, Some(Duration::from_millis(500)));
        assert!(args.quiet);
        let req = args.ring.builder().unwrap().request().unwrap();
        assert_eq!(
            (req.snaplen, req.family, req.hook, req.ifindex, req.priority),
            (128, 2, 1, 3, -100)
        );
        assert_eq!(
            (req.frame_size, req.block_size, req.block_nr, req.frame_nr),
            (4096, 8192, 4, 8)
        );
        assert_eq!(args.ring.device, Path::new("/tmp/dev"));
    }

    #[test]
    fn defaults_are_the_library_defaults() {
        // The library's defaults, with batched wake-ups: half the ring, or 200 ms.
        let req = ring_args(&[]).builder().unwrap().request().unwrap();
        let lib = RingBuilder::new().request().unwrap();
        assert_eq!(
            (req.wake_frames, req.wake_usecs),
            (lib.frame_nr / 2, 200_000)
        );
        assert_eq!(
            PktringReq {
                wake_frames: 0,
                wake_usecs: 0,
                ..req
            },
            lib
        );
        // --immediate-mode is the library's default: a wake-up per frame.
        let immediate = ring_args(&["--immediate-mode"]).builder().unwrap();
        assert_eq!(immediate.request().unwrap(), lib);
        let req = ring_args(&["--batch", "16", "--batch-timeout", "2ms"])
            .builder()
            .unwrap()
            .request()
            .unwrap();
        assert_eq!((req.wake_frames, req.wake_usecs), (16, 2000));
        assert!(parse(&["stats", "--immediate-mode", "--batch", "4"]).is_err());
        assert!(parse(&["stats", "--batch", "1"]).is_err());
        let Command::Stats(stats) = parse(&["stats"]).unwrap().command else {
            panic!("not stats");
        };
        assert_eq!(stats.duration, Duration::from_secs(5));
    }

    #[test]
    fn the_format_is_the_file_name_s_unless_asked() {
        let capture = |args: &[&str]| match parse(&[&["capture"], args].concat()).unwrap().command {
            Command::Capture(capture) => capture,
            _ => unreachable!(),
        };
        let args = capture(&["-w", "out.pcapng"]);
        assert_eq!(args.format, None);
        assert_eq!(Format::of_path(args.file.as_ref().unwrap()), Format::Pcapng);
        assert_eq!(args.sort_window, 0);
        let args = capture(&[
            "-w",
            "out.pcapng",
            "--format",
            "pcap",
            "--sort-window",
            "512",
        ]);
        assert_eq!((args.format, args.sort_window), (Some(Format::Pcap), 512));
        assert!(parse(&["capture", "-w", "x", "--format", "erf"]).is_err());
        assert!(parse(&["capture", "-w", "x", "--sort-window", "65537"]).is_err());
    }

    #[test]
    fn bad_options_are_refused_by_clap() {
        for args in [
            &["capture"][..],
            &["capture", "-w", "x", "-c", "0"],
            &["capture", "-w", "x", "--duration", "soon"],
            &["capture", "-w", "x", "-d", "icmp"],
            &["capture", "-w", "x", "--ethertype", "ipx"],
            &["capture", "-w", "x", "--ethertype", "0"],
            &[
                "capture",
                "-w",
                "x",
                "--ethertype",
                "arp",
                "--family",
                "ipv4",
            ],
            &["stats", "-d"],
            &["list", "-i", "eth0"],
            &["capture", "-w", "x", "--family", "ipx"],
            &["capture", "-w", "x", "--hook", "forward"],
            &["capture", "-w", "x", "-i", "eth0", "--ifindex", "2"],
            &["capture", "-w", "x", "--ifindex", "0"],
            &["stats", "--frame-size", "-1"],
            &["dump"],
        ] {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn semantic_checks_say_what_is_wrong() {
        for (args, why) in [
            (
                &["--hook", "ingress"][..],
                "--hook ingress needs an interface",
            ),
            (&["--frame-size", "100"], "frame size 100"),
            (
                &["--frame-size", "8192", "--block-size", "4096"],
                "larger than the block size",
            ),
            (&["--block-size", "1000"], "multiple of the page size"),
            (&["--blocks", "0"], "at least one block"),
            (&["--blocks", "5000"], "PKTRING_MAX_RING_BYTES"),
            (&["-s", "300000"], "PKTRING_MAX_SNAPLEN"),
            (
                &["-i", "no-such-if0"],
                "no network interface named \"no-such-if0\"",
            ),
            (&["--hook", "egress"], "--hook egress needs an interface"),
            (
                &["--ethertype", "arp"],
                "--ethertype is for the device hooks",
            ),
        ] {
            let err = ring_args(args).builder().unwrap_err();
            assert!(explain(&err).contains(why), "{args:?}: {}", explain(&err));
        }
        assert!(ring_args(&["--hook", "ingress", "-i", "lo"])
            .builder()
            .is_ok());
    }

    #[test]
    fn expressions_hooks_and_ethertypes_parse() {
        let cli = parse(&[
            "capture", "-w", "f.pcap", "-i", "lo", "tcp", "port", "80", "-c", "5", "or", "icmp",
        ])
        .unwrap();
        let Command::Capture(args) = cli.command else {
            panic!("not a capture");
        };
        assert_eq!(args.count, Some(5));
        assert_eq!(
            args.ring.expression().as_deref(),
            Some("tcp port 80 or icmp")
        );
        assert_eq!(args.ring.link_type(), LinkType::Ethernet, "lo is loopback");
        let program = args.ring.compile(LinkType::Ethernet).unwrap().unwrap();
        assert_eq!(
            program,
            filter::compile("tcp port 80 or icmp", LinkType::Ethernet, 262_144).unwrap()
        );
        assert_eq!(ring_args(&["''"]).expression().as_deref(), Some("''"));
        assert_eq!(ring_args(&[" "]).expression(), None);

        for (hook, value, link) in [
            ("pre-routing", 0, LinkType::Ethernet),
            ("local-in", 1, LinkType::Ethernet),
            ("local-out", 3, LinkType::Raw),
            ("post-routing", 4, LinkType::Raw),
        ] {
            let args = ring_args(&["--hook", hook]);
            assert_eq!(args.builder().unwrap().request().unwrap().hook, value);
            assert_eq!(args.link_type(), link, "{hook}");
        }
        let args = ring_args(&["--hook", "egress", "-i", "lo", "--ethertype", "all"]);
        let req = args.builder().unwrap().request().unwrap();
        assert_eq!((req.hook, req.ethertype, req.family), (5, 3, 0));
        assert_eq!(args.link_type(), LinkType::Ethernet);
        for (name, value) in [
            ("arp", 0x0806),
            ("LLDP", 0x88cc),
            ("vlan", 0x8100),
            ("ipv6", 0x86dd),
            ("0x88F7", 0x88f7),
            ("2048", 0x0800),
        ] {
            assert_eq!(parse_ethertype(name), Ok(value), "{name}");
        }
        let args = ring_args(&["--hook", "ingress", "--ifindex", "1", "--ethertype", "arp"]);
        let req = args.builder().unwrap().request().unwrap();
        assert_eq!((req.hook, req.ethertype, req.family), (2, 0x0806, 0));
    }

    #[test]
    fn dash_d_is_tcpdump_s() {
        let Command::Capture(args) = parse(&["capture", "-ddd", "icmp"]).unwrap().command else {
            panic!("not a capture");
        };
        assert_eq!((args.dump, args.file), (3, None));
        let Command::Capture(args) = parse(&["capture", "-d", "-d", "icmp"]).unwrap().command
        else {
            panic!("not a capture");
        };
        assert_eq!(args.dump, 2);
        assert!(parse(&["capture", "icmp"]).is_err(), "-w or -d");
        assert!(parse(&["capture", "-d", "-w", "x", "icmp"]).is_err());

        let old = |args: &[&str]| {
            let args: Vec<String> = std::iter::once("pktring")
                .chain(args.iter().copied())
                .map(String::from)
                .collect();
            old_duration_option(&args)
        };
        let hint = old(&["capture", "-w", "x", "-d", "10s"]).unwrap();
        assert!(
            hint.contains("--duration 10s") && hint.contains("tcpdump"),
            "{hint}"
        );
        assert!(old(&["capture", "-w", "x", "-d10s"])
            .unwrap()
            .contains("--duration 10s"));
        assert!(old(&["capture", "-w", "x", "-d", "500"]).is_some());
        assert!(old(&["stats", "-d", "5s"])
            .unwrap()
            .contains("--duration 5s"));
        assert!(old(&["stats", "-d"]).unwrap().contains("--duration"));
        for fine in [
            &["capture", "-d", "icmp"][..],
            &["capture", "-dd", "-i", "lo"],
            &["capture", "-w", "x", "--duration", "10s"],
            &["stats", "--duration", "5s"],
            &["list"],
            &[],
        ] {
            assert_eq!(old(fine), None, "{fine:?}");
        }
    }

    #[test]
    fn a_bad_expression_is_a_usage_error() {
        let err = ring_args(&["tcp", "port"])
            .compile(LinkType::Ethernet)
            .unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        let text = explain(&err);
        assert!(text.starts_with("bad filter expression: "), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    fn capture_args(args: &[&str]) -> CaptureArgs {
        match parse(&[&["capture"], args].concat()).unwrap().command {
            Command::Capture(capture) => capture,
            _ => unreachable!(),
        }
    }

    #[test]
    fn fanout_options_make_a_group() {
        let args = capture_args(&[
            "-w",
            "out-%d.pcap",
            "--fanout",
            "hash",
            "--threads",
            "3",
            "--fanout-id",
            "77",
            "--rollover",
        ]);
        assert_eq!(
            args.group().unwrap(),
            Some(Group {
                join: Fanout {
                    id: 77,
                    mode: pktring::FanoutMode::Hash,
                    rollover: true
                },
                members: 3,
                own_id: false,
            })
        );
        // --fanout alone: one ring, in a group of this process's id; any file name.
        let group = capture_args(&["-w", "out.pcap", "--fanout", "lb"])
            .group()
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                group.members,
                group.join.id,
                group.own_id,
                group.join.rollover
            ),
            (1, std::process::id(), true, false)
        );
        for (mode, value) in [("cpu", 0), ("hash", 1), ("queue", 2), ("lb", 3)] {
            let group = capture_args(&["-w", "x-%d", "--fanout", mode, "--threads", "2"])
                .group()
                .unwrap()
                .unwrap();
            assert_eq!(group.join.uapi().mode, value, "{mode}");
        }
        // No fanout: no group, whatever the file's name.
        assert_eq!(capture_args(&["-w", "out-%d.pcap"]).group().unwrap(), None);
        assert_eq!(
            capture_args(&["-w", "x", "--threads", "1"])
                .group()
                .unwrap(),
            None
        );
    }

    #[test]
    fn fanout_usage_errors_say_what_to_do() {
        let threads = capture_args(&["-w", "out-%d.pcap", "--threads", "2"])
            .group()
            .unwrap_err()
            .to_string();
        assert!(
            threads.starts_with("--threads 2 needs --fanout MODE"),
            "{threads}"
        );
        let pattern = capture_args(&[
            "-w",
            "/tmp/out.pcapng",
            "--fanout",
            "hash",
            "--threads",
            "3",
        ])
        .group()
        .unwrap_err()
        .to_string();
        assert_eq!(
            pattern,
            "-w /tmp/out.pcapng has no %d: with --threads 3 each ring writes its own file, named \
             by -w with %d replaced by its index (-w /tmp/out-%d.pcapng makes /tmp/out-0.pcapng \
             to /tmp/out-2.pcapng)"
        );
        // Usage errors: exit status 2, one line.
        let err = anyhow::Error::from(UsageError(pattern));
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(!explain(&err).contains('\n'));
        assert_eq!(example_pattern(Path::new("cap")), Path::new("cap-%d"));
        for args in [
            &["capture", "-w", "x", "--fanout", "rss"][..],
            &["capture", "-w", "x", "--fanout-id", "5"],
            &["capture", "-w", "x", "--rollover"],
            &["capture", "-w", "x-%d", "--fanout", "lb", "--threads", "0"],
            &[
                "capture",
                "-w",
                "x-%d",
                "--fanout",
                "lb",
                "--threads",
                "257",
            ],
            &["capture", "-d", "--fanout", "hash", "icmp"],
            &["stats", "--fanout", "hash"],
        ] {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
    }

    #[test]
    fn a_group_s_summary_has_a_line_per_member_and_the_totals() {
        let report = |index: usize, packets, drops, rollover| {
            let summary = Summary {
                packets,
                kernel: pktring::uapi::PktringStats {
                    packets: packets + drops + 3,
                    drops,
                    filtered: 3,
                },
                per_cpu: [(index as u16, packets)].into(),
                elapsed: Duration::from_secs(2),
                filter: true,
                ..Summary::default()
            };
            MemberReport {
                path: fanout::member_path(Path::new("/tmp/fo-%d.pcap"), index),
                summary,
                order: Order {
                    written: packets,
                    backwards: 1,
                },
                rollover,
                wakeups: 0,
            }
        };
        let reports = [report(0, 500, 0, 0), report(1, 480, 20, 7)];
        let mut total = Summary::default();
        for report in &reports {
            total.merge(&report.summary);
        }
        let join = Fanout {
            id: 4242,
            mode: pktring::FanoutMode::Hash,
            rollover: true,
        };
        let text = group_summary(
            &join,
            Path::new("/tmp/fo-%d.pcap"),
            Format::Pcap,
            0,
            &reports,
            &total,
        );
        assert_eq!(
            text,
            "fanout:    group 4242 (hash, rollover), 2 rings, 7 rollover\n\
             member 0:  500 packets (kernel: 503 packets, 0 drops, 3 filtered, 0 rollover) in \
             /tmp/fo-0.pcap\n\
             member 1:  480 packets (kernel: 503 packets, 20 drops, 3 filtered, 7 rollover) in \
             /tmp/fo-1.pcap\n\
             file:      /tmp/fo-%d.pcap (pcap, 2 files), 2 timestamps earlier than the one before\n\
             packets:   980 in 2.00 s (490/s), 0 corrupt frames\n\
             kernel:    1006 packets, 20 drops, 6 filtered\n\
             per CPU:   cpu0 500 cpu1 480\n\
             per queue: -"
        );
    }

    #[test]
    fn list_parses() {
        let Command::List(args) = parse(&["list", "--json"]).unwrap().command else {
            panic!("not list");
        };
        assert!(args.json);
    }

    #[test]
    fn device_errors_explain_themselves() {
        let open = |kind: io::ErrorKind| {
            anyhow::Error::from(pktring::Error::Open {
                path: "/dev/pktring".into(),
                source: kind.into(),
            })
        };
        let missing = explain(&open(io::ErrorKind::NotFound));
        assert!(
            missing.contains("insmod rust_pktring.ko") || missing.contains("device node missing"),
            "{missing}"
        );
        assert!(explain(&open(io::ErrorKind::PermissionDenied)).contains("run as root"));
        let set_ring = |errno: Errno| {
            anyhow::Error::from(pktring::Error::Io {
                op: Op::SetRing,
                source: errno.into(),
            })
        };
        assert!(explain(&set_ring(Errno::BUSY)).contains("EBUSY"));
        assert!(explain(&set_ring(Errno::INVAL)).contains("EINVAL"));
        assert!(explain(&set_ring(Errno::NODEV)).contains("ENODEV"));
        assert!(explain(&set_ring(Errno::PERM)).contains("CAP_NET_RAW"));
        let ended = |errno: Errno| {
            explain(&anyhow::Error::from(pktring::Error::Ended {
                errno: errno.raw_os_error(),
            }))
        };
        assert!(ended(Errno::NETDOWN).contains("interface went away"));
        assert!(ended(Errno::NONET).contains("namespace was dismantled"));
    }
}
