// SPDX-License-Identifier: GPL-2.0

//! `pktring`: capture packets from the rust_pktring ring into a pcap or pcapng file, or take a
//! quick look at what a ring would see.
//!
//! ```text
//! pktring capture -w FILE.pcap|FILE.pcapng [--format F] [--sort-window N] [-c COUNT]
//!                 [-d DURATION] [-q] [RING OPTIONS]
//! pktring stats [-d DURATION] [RING OPTIONS]
//! ```
//!
//! `capture` reports on stderr: a progress line while stderr is a terminal, the summary at the
//! end. `stats` prints its summary on stdout. Errors are one line on stderr and exit status 1;
//! bad options exit with status 2.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use pktring::{Family, Geometry, Hook, Op, RingBuilder, DEFAULT_DEVICE};
use rustix::io::Errno;
use signal_hook::consts::{SIGINT, SIGTERM};

mod capture;
mod pcapng;
mod sink;

use capture::{Limits, Output};
use sink::{Format, Record, Sink};

#[derive(Debug, Parser)]
#[command(
    name = "pktring",
    version,
    about = "Capture packets through the rust_pktring ring"
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
}

#[derive(Debug, Args)]
struct CaptureArgs {
    /// Write the packets to this file (Ethernet, nanosecond timestamps): pcapng if its name
    /// ends in .pcapng, pcap otherwise.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    file: PathBuf,
    /// The file format, whatever the file's name: pcapng records each packet's CPU and RX
    /// queue, and the kernel's received and dropped counts at the end.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Hold up to N packets and write them in timestamp order (CPUs interleave in the ring,
    /// so timestamps otherwise step back now and then); 0: as they come. The window holds
    /// copies: up to N captured packets of memory.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=65536))]
    sort_window: u32,
    /// Stop after COUNT packets.
    #[arg(short = 'c', long, value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after DURATION (e.g. 10s, 500ms, 2m).
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Print nothing but errors.
    #[arg(short = 'q', long)]
    quiet: bool,
    #[command(flatten)]
    ring: RingArgs,
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// How long to look.
    #[arg(short = 'd', long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
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
    /// Netfilter hook to capture at (ingress needs an interface).
    #[arg(long, value_enum, default_value_t = HookArg::PreRouting)]
    hook: HookArg,
    /// Capture only packets arriving on this interface.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        conflicts_with = "ifindex"
    )]
    interface: Option<String>,
    /// Capture only packets arriving on the interface with this index.
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
}

impl RingArgs {
    /// Returns the interface captured on as the user named it, if one was.
    fn interface_name(&self) -> Option<String> {
        match (&self.interface, self.ifindex) {
            (Some(name), _) => Some(name.clone()),
            (None, Some(ifindex)) => Some(format!("ifindex {ifindex}")),
            (None, None) => None,
        }
    }

    /// Returns the ring builder, after every check that needs no device.
    fn builder(&self) -> Result<RingBuilder> {
        let hook = match self.hook {
            HookArg::PreRouting => Hook::PreRouting,
            HookArg::LocalIn => Hook::LocalIn,
            HookArg::Ingress => Hook::Ingress,
        };
        let ifindex = match (&self.interface, self.ifindex) {
            (Some(name), _) => pktring::ifindex(name)?,
            (None, Some(ifindex)) => ifindex,
            (None, None) if hook == Hook::Ingress => {
                bail!("--hook ingress needs an interface: -i IFACE or --ifindex N")
            }
            (None, None) => 0,
        };
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pktring: {}", explain(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let (ring_args, limits, output) = match &cli.command {
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
    let builder = ring_args.builder()?;
    // Ctrl-C and SIGTERM end the capture cleanly: the wait in `poll()` returns at once.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let mut ring = builder.open()?;
    // As tcpdump's "listening on": capture has started, traffic may come.
    if !output.quiet {
        let info = ring.layout().info();
        let on = ring_args
            .interface_name()
            .unwrap_or_else(|| "any interface".into());
        let family = match ring_args.family {
            FamilyArg::Ipv4 => "IPv4",
            FamilyArg::Ipv6 => "IPv6",
            FamilyArg::Both => "IPv4 and IPv6",
        };
        eprintln!(
            "pktring: capturing {family} at {} on {on}: {} frames of {} bytes, snaplen {}",
            arg_name(&ring_args.hook),
            info.frame_nr,
            info.frame_size,
            info.snaplen
        );
    }
    match &cli.command {
        Command::Capture(args) => {
            let format = args.format.unwrap_or_else(|| Format::of_path(&args.file));
            let name = ring_args.interface_name().unwrap_or_else(|| "any".into());
            let interface = pcapng::Interface {
                name: &name,
                link_type: u32::from(pcap_file::DataLink::ETHERNET) as u16,
                snaplen: ring.layout().info().snaplen,
            };
            let window = args.sort_window as usize;
            let mut sink = Sink::create(&args.file, format, &interface, window)?;
            let start = SystemTime::now();
            let summary = capture::consume(&mut ring, &limits, &stop, &output, |frame| {
                sink.write(&Record::of(frame))
            })?;
            let since_epoch =
                |time: SystemTime| time.duration_since(UNIX_EPOCH).unwrap_or_default();
            let order = sink.finish(&pcapng::Counters {
                start: since_epoch(start),
                end: since_epoch(SystemTime::now()),
                received: summary.kernel.packets,
                dropped: summary.kernel.drops,
                delivered: summary.packets,
            })?;
            // On stderr, as tcpdump does: the capture's output is the file.
            if !output.quiet {
                eprintln!(
                    "file:      {} ({}), {} timestamps earlier than the one before{}\n{summary}",
                    args.file.display(),
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
            let summary = capture::consume(&mut ring, &limits, &stop, &output, |_| Ok(()))?;
            println!("{summary}");
            ended(&summary)
        }
    }
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
            Command::Capture(_) => unreachable!(),
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
            "-d",
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
        assert_eq!(args.file, Path::new("out.pcap"));
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
            Command::Stats(_) => unreachable!(),
        };
        let args = capture(&["-w", "out.pcapng"]);
        assert_eq!(args.format, None);
        assert_eq!(Format::of_path(&args.file), Format::Pcapng);
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
            &["capture", "-w", "x", "-d", "soon"],
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
        ] {
            let err = ring_args(args).builder().unwrap_err();
            assert!(explain(&err).contains(why), "{args:?}: {}", explain(&err));
        }
        assert!(ring_args(&["--hook", "ingress", "-i", "lo"])
            .builder()
            .is_ok());
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
