//! `pktring list`: every open ring the caller can see, from `/proc/PID/fdinfo/FD` of each file
//! descriptor that points at `/dev/pktring`, where the module prints a ring's state after the
//! kernel's own lines (a tab after each colon, shown as a space here):
//!
//! ```text
//! pktring-state: idle|capturing|ended ENETDOWN
//! pktring-netns: 4026531840
//! pktring-hook: pre-routing|local-in|ingress|local-out|post-routing|egress
//! pktring-family: ipv4|ipv6|both|all|0xNNNN
//! pktring-ifindex: 2
//! pktring-ring: block_size=65536 block_nr=4 frame_size=2048 frame_nr=128 snaplen=1984
//! pktring-counters: packets=10 delivered=8 drops=1 filtered=1
//! pktring-filter: none|6 instructions
//! ```
//!
//! The lines after `pktring-state` other than netns and filter are there only once a ring is
//! set up; the counters are totals since set-up.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::Result;

/// The device node whose open files are rings.
const DEVICE: &str = "/dev/pktring";

/// The ring of one open file, as its fdinfo says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RingState {
    /// `idle`, `capturing`, or `ended ERRNO`.
    pub(crate) state: String,
    pub(crate) netns: Option<u64>,
    pub(crate) hook: Option<String>,
    pub(crate) family: Option<String>,
    pub(crate) ifindex: Option<u32>,
    pub(crate) geometry: Option<Geometry>,
    pub(crate) counters: Option<Counters>,
    /// Instructions of the capture filter; `Some(0)`: none.
    pub(crate) filter: Option<u32>,
}

/// `pktring-ring:`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) block_size: u64,
    pub(crate) block_nr: u64,
    pub(crate) frame_size: u64,
    pub(crate) frame_nr: u64,
    pub(crate) snaplen: u64,
}

/// `pktring-counters:`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) packets: u64,
    pub(crate) delivered: u64,
    pub(crate) drops: u64,
    pub(crate) filtered: u64,
}

/// The value of `key` in a line of `key=value` words.
fn field(words: &str, key: &str) -> Option<u64> {
    words.split_whitespace().find_map(|word| {
        let (k, v) = word.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

/// Parses the `pktring-*` lines of an fdinfo file; `None` if it has no `pktring-state` (not a
/// ring, or a module that prints none). Lines it does not know are skipped, values it cannot
/// read left out.
pub(crate) fn parse_fdinfo(text: &str) -> Option<RingState> {
    let mut ring = RingState::default();
    let mut seen = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "pktring-state" => {
                ring.state = value.split_whitespace().collect::<Vec<_>>().join(" ");
                seen = true;
            }
            "pktring-netns" => ring.netns = value.parse().ok(),
            "pktring-hook" => ring.hook = Some(value.to_string()),
            "pktring-family" => ring.family = Some(value.to_string()),
            "pktring-ifindex" => ring.ifindex = value.parse().ok(),
            "pktring-ring" => {
                ring.geometry = (|| {
                    Some(Geometry {
                        block_size: field(value, "block_size")?,
                        block_nr: field(value, "block_nr")?,
                        frame_size: field(value, "frame_size")?,
                        frame_nr: field(value, "frame_nr")?,
                        snaplen: field(value, "snaplen")?,
                    })
                })()
            }
            "pktring-counters" => {
                ring.counters = (|| {
                    Some(Counters {
                        packets: field(value, "packets")?,
                        delivered: field(value, "delivered")?,
                        drops: field(value, "drops")?,
                        filtered: field(value, "filtered")?,
                    })
                })()
            }
            "pktring-filter" => {
                ring.filter = match value {
                    "none" => Some(0),
                    _ => value
                        .strip_suffix("instructions")
                        .or_else(|| value.strip_suffix("instruction"))
                        .and_then(|n| n.trim().parse().ok()),
                }
            }
            _ => {}
        }
    }
    seen.then_some(ring)
}

/// One open ring: who holds it, and its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) pid: u32,
    pub(crate) command: String,
    pub(crate) fd: u32,
    pub(crate) ring: RingState,
    /// The name of `ring.ifindex`, if the ring is in the caller's namespace.
    pub(crate) ifname: Option<String>,
}

/// The inode of a namespace link's target, `net:[N]`.
fn ns_inode(link: &Path) -> Option<u64> {
    let target = fs::read_link(link).ok()?;
    let target = target.to_str()?;
    target
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The name of interface `ifindex` in the caller's namespace.
pub(crate) fn ifname(ifindex: u32) -> Option<String> {
    fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .find_map(|dev| {
            let index: u32 = fs::read_to_string(dev.path().join("ifindex"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            (index == ifindex).then(|| dev.file_name().to_string_lossy().into_owned())
        })
}

/// Every ring open in a process under `proc` (normally `/proc`) that the caller may look at,
/// by PID and fd. Processes and files that go away, or that the caller may not read, are
/// skipped.
pub(crate) fn scan(proc: &Path) -> Vec<Entry> {
    let own_netns = ns_inode(&proc.join("self/ns/net"));
    let mut entries = Vec::new();
    let Ok(processes) = fs::read_dir(proc) else {
        return entries;
    };
    for process in processes.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let dir = process.path();
        let Ok(fds) = fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Some(fd_nr) = fd.file_name().to_str().and_then(|f| f.parse().ok()) else {
                continue;
            };
            if fs::read_link(fd.path()).ok().as_deref() != Some(Path::new(DEVICE)) {
                continue;
            }
            let Some(ring) = fs::read_to_string(dir.join(format!("fdinfo/{fd_nr}")))
                .ok()
                .and_then(|text| parse_fdinfo(&text))
            else {
                continue;
            };
            let command = fs::read_to_string(dir.join("comm"))
                .map(|comm| comm.trim_end().to_string())
                .unwrap_or_default();
            let ifname = match (ring.ifindex, ring.netns) {
                (Some(ifindex @ 1..), Some(netns)) if Some(netns) == own_netns => ifname(ifindex),
                _ => None,
            };
            entries.push(Entry {
                pid,
                command,
                fd: fd_nr,
                ring,
                ifname,
            });
        }
    }
    entries.sort_by_key(|entry| (entry.pid, entry.fd));
    entries
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |value| value.to_string())
}

impl Entry {
    fn interface(&self) -> String {
        match (self.ring.ifindex, &self.ifname) {
            (Some(0), _) => "any".into(),
            (Some(ifindex), Some(name)) => format!("{ifindex} ({name})"),
            (ifindex, _) => or_dash(ifindex),
        }
    }

    fn filter(&self) -> String {
        match self.ring.filter {
            Some(0) => "none".into(),
            Some(n) => format!("{n} insns"),
            None => "-".into(),
        }
    }
}

/// The table `pktring list` prints: a header and one row per ring.
pub(crate) fn table(entries: &[Entry]) -> String {
    let header = [
        "PID", "COMMAND", "FD", "STATE", "NETNS", "HOOK", "FAMILY", "IFINDEX", "FRAMES", "PACKETS",
        "DROPS", "FILTERED", "FILTER",
    ];
    let rows: Vec<[String; 13]> = entries
        .iter()
        .map(|e| {
            let counters = e.ring.counters;
            [
                e.pid.to_string(),
                e.command.clone(),
                e.fd.to_string(),
                e.ring.state.clone(),
                or_dash(e.ring.netns),
                or_dash(e.ring.hook.clone()),
                or_dash(e.ring.family.clone()),
                e.interface(),
                or_dash(e.ring.geometry.map(|g| g.frame_nr)),
                or_dash(counters.map(|c| c.packets)),
                or_dash(counters.map(|c| c.drops)),
                or_dash(counters.map(|c| c.filtered)),
                e.filter(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// A JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "null".into(), |value| value.to_string())
}

/// `pktring list --json`: an array with an object per ring.
pub(crate) fn json(entries: &[Entry]) -> String {
    let objects: Vec<String> = entries
        .iter()
        .map(|e| {
            let r = &e.ring;
            let geometry = r.geometry.map(|g| {
                format!(
                    "{{\"block_size\":{},\"block_nr\":{},\"frame_size\":{},\"frame_nr\":{},\
                     \"snaplen\":{}}}",
                    g.block_size, g.block_nr, g.frame_size, g.frame_nr, g.snaplen
                )
            });
            let counters = r.counters.map(|c| {
                format!(
                    "{{\"packets\":{},\"delivered\":{},\"drops\":{},\"filtered\":{}}}",
                    c.packets, c.delivered, c.drops, c.filtered
                )
            });
            format!(
                "{{\"pid\":{},\"command\":{},\"fd\":{},\"state\":{},\"netns\":{},\"hook\":{},\
                 \"family\":{},\"ifindex\":{},\"ifname\":{},\"ring\":{},\"counters\":{},\
                 \"filter_instructions\":{}}}",
                e.pid,
                json_string(&e.command),
                e.fd,
                json_string(&r.state),
                json_opt(r.netns),
                json_opt(r.hook.as_deref().map(json_string)),
                json_opt(r.family.as_deref().map(json_string)),
                json_opt(r.ifindex),
                json_opt(e.ifname.as_deref().map(json_string)),
                json_opt(geometry),
                json_opt(counters),
                json_opt(r.filter),
            )
        })
        .collect();
    format!("[{}]\n", objects.join(",\n "))
}

/// `pktring list`.
pub(crate) fn run(json_output: bool) -> Result<()> {
    let entries = scan(Path::new("/proc"));
    print!(
        "{}",
        if json_output {
            json(&entries)
        } else {
            table(&entries)
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURING: &str = "pos:\t0\nflags:\t02000002\nmnt_id:\t25\nino:\t5\n\
        pktring-state:\tcapturing\n\
        pktring-netns:\t4026531840\n\
        pktring-hook:\tingress\n\
        pktring-family:\t0x0806\n\
        pktring-ifindex:\t2\n\
        pktring-ring:\tblock_size=65536 block_nr=4 frame_size=2048 frame_nr=128 snaplen=1984\n\
        pktring-counters:\tpackets=10 delivered=8 drops=1 filtered=1\n\
        pktring-filter:\t6 instructions\n";

    fn capturing() -> RingState {
        RingState {
            state: "capturing".into(),
            netns: Some(4_026_531_840),
            hook: Some("ingress".into()),
            family: Some("0x0806".into()),
            ifindex: Some(2),
            geometry: Some(Geometry {
                block_size: 65536,
                block_nr: 4,
                frame_size: 2048,
                frame_nr: 128,
                snaplen: 1984,
            }),
            counters: Some(Counters {
                packets: 10,
                delivered: 8,
                drops: 1,
                filtered: 1,
            }),
            filter: Some(6),
        }
    }

    #[test]
    fn fdinfo_of_a_capturing_ring() {
        assert_eq!(parse_fdinfo(CAPTURING), Some(capturing()));
    }

    #[test]
    fn fdinfo_of_idle_ended_and_foreign_files() {
        let idle = "pos:\t0\nflags:\t02\nmnt_id:\t25\nino:\t5\npktring-state:\tidle\n\
                    pktring-netns:\t4026532000\npktring-filter:\tnone\n";
        assert_eq!(
            parse_fdinfo(idle),
            Some(RingState {
                state: "idle".into(),
                netns: Some(4_026_532_000),
                filter: Some(0),
                ..RingState::default()
            })
        );
        let ended = CAPTURING.replace("\tcapturing", "\tended ENETDOWN");
        let ring = parse_fdinfo(&ended).unwrap();
        assert_eq!(ring.state, "ended ENETDOWN");
        assert_eq!(ring.counters, capturing().counters);
        assert_eq!(
            parse_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t25\nino:\t5\n"),
            None
        );
        // A line it cannot read is left out, the rest kept.
        let odd = CAPTURING.replace("frame_nr=128", "frame_nr=lots") + "pktring-new:\tx\n";
        let ring = parse_fdinfo(&odd).unwrap();
        assert_eq!(
            (ring.geometry, ring.hook.as_deref()),
            (None, Some("ingress"))
        );
        assert_eq!(
            parse_fdinfo("pktring-state:\tidle\npktring-filter:\t1 instruction\n")
                .unwrap()
                .filter,
            Some(1)
        );
    }

    #[test]
    fn the_table_and_json_show_each_ring() {
        let entries = [
            Entry {
                pid: 42,
                command: "pktring".into(),
                fd: 3,
                ring: capturing(),
                ifname: Some("eth0".into()),
            },
            Entry {
                pid: 7,
                command: "a \"b\"".into(),
                fd: 10,
                ring: parse_fdinfo("pktring-state:\tidle\npktring-filter:\tnone\n").unwrap(),
                ifname: None,
            },
        ];
        let table = table(&entries);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        let words = |line: &str| {
            line.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            words(lines[0]),
            [
                "PID", "COMMAND", "FD", "STATE", "NETNS", "HOOK", "FAMILY", "IFINDEX", "FRAMES",
                "PACKETS", "DROPS", "FILTERED", "FILTER"
            ]
        );
        assert_eq!(
            words(lines[1]),
            [
                "42",
                "pktring",
                "3",
                "capturing",
                "4026531840",
                "ingress",
                "0x0806",
                "2",
                "(eth0)",
                "128",
                "10",
                "1",
                "1",
                "6",
                "insns"
            ]
        );
        assert!(lines[2].starts_with("7 "), "{table}");
        assert!(lines[2].ends_with("none"), "{table}");
        let json = json(&entries);
        assert!(json.starts_with("[{\"pid\":42,\"command\":\"pktring\",\"fd\":3,"));
        assert!(json
            .contains("\"counters\":{\"packets\":10,\"delivered\":8,\"drops\":1,\"filtered\":1}"));
        assert!(json.contains("\"command\":\"a \\\"b\\\"\""));
        assert!(json.contains("\"hook\":null"));
        assert_eq!(json_string("a\nb"), "\"a\\u000ab\"");
    }

    #[test]
    fn a_scan_of_proc_finds_no_ring_without_the_device() {
        // The host has no module: nothing, and no error.
        if !Path::new(DEVICE).exists() {
            assert_eq!(scan(Path::new("/proc")), []);
        }
        assert_eq!(scan(Path::new("/nonexistent")), []);
    }
}
