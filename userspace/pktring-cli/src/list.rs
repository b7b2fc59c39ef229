//! `pktring list`: every open ring in the caller's network namespace, whoever opened it, from
//! the module's listing `/proc/pktring` (as `/proc/net/packet` lists every socket): a header
//! line, then a line per open file of `/dev/pktring`, oldest first, in columns separated by
//! spaces:
//!
//! ```text
//! pid      state      hook         family ifindex frames   size    packets  delivered    drops   filtered filter fanout
//! 684      capturing  pre-routing  ipv4         2    512   2048        100        100        0          0     12 684:hash
//! 702      idle       -            -            0      0      0          0          0        0          0      0 -
//! ```
//!
//! `pid` is the opener's (its thread group id); `state` is `idle`, `capturing`, `ENETDOWN`,
//! `ENONET` or `ended`; hook and family are `-` while idle, when the numbers are 0 (the table
//! shows `-` for them). The counters are totals since set-up; `filter` is the number of
//! instructions of the capture filter, 0 for none; `fanout` is the fanout group the file
//! joined (or asked to join before its ring was set up) as `ID:MODE`, with `,rollover` for the
//! flag, or `-`, and is read when the header has it (modules before it had no such column).
//! Columns are found by their names in the header, so that a column added later is passed over;
//! a line with another number of fields,
//! a value that is not a number, or a hook without a family (or the other way round), is
//! skipped with a warning on stderr, the other lines shown.
//!
//! To each line `pktring list` adds the opener's command (`/proc/PID/comm`, `?` when it has
//! exited or cannot be read), the interface's name (`/sys/class/net`) and the opener's file
//! descriptor of the ring (FD), found by its fdinfo: of the opener's descriptors that point at
//! `/dev/pktring`, the line gets the one whose fdinfo, read just after the listing, is in this
//! namespace and has the same state, hook, family, ifindex, frames, frame size and filter, and
//! counters no smaller, if that descriptor is the only one to match and matches no other line.
//! Otherwise FD is `-`: the opener has exited or passed the file on, the caller may not look at
//! its descriptors (another user's, without root), two rings look alike (two idle ones), or one
//! changed state in between.
//!
//! The module prints a ring's state in `/proc/PID/fdinfo/FD` after the kernel's own lines (a
//! tab after each colon, shown as a space here):
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
//! pktring-fanout: id=684 mode=hash rollover=0 members=3 rolled=0
//! ```
//!
//! The lines after `pktring-state` other than netns and filter are there only once a ring is
//! set up.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

/// The device node whose open files are rings.
const DEVICE: &str = "/dev/pktring";

/// The module's listing of the open rings, under `/proc`.
const LISTING: &str = "pktring";

/// The columns of the listing that `pktring list` reads, by their names in its header.
const COLUMNS: [&str; 12] = [
    "pid",
    "state",
    "hook",
    "family",
    "ifindex",
    "frames",
    "size",
    "packets",
    "delivered",
    "drops",
    "filtered",
    "filter",
];

/// The column of the listing that names the file's fanout group, if the listing has it.
const FANOUT_COLUMN: &str = "fanout";

/// The error when there is no listing: the module is not loaded.
#[derive(Debug)]
pub(crate) struct Missing(PathBuf);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is missing: is rust_pktring loaded?",
            self.0.display()
        )
    }
}

impl std::error::Error for Missing {}

/// One line of the listing: an open file of the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// The opener's thread group id.
    pub(crate) pid: u32,
    /// `idle`, `capturing`, `ENETDOWN`, `ENONET` or `ended`.
    pub(crate) state: String,
    /// The ring; `None` while idle.
    pub(crate) ring: Option<Ring>,
    /// Instructions of the capture filter; 0: none.
    pub(crate) filter: u32,
    /// The fanout group, `ID:MODE[,rollover]`; `None`: none, or a listing without the column.
    pub(crate) fanout: Option<String>,
}

/// The ring of a line of the listing that has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ring {
    pub(crate) hook: String,
    pub(crate) family: String,
    pub(crate) ifindex: u32,
    pub(crate) frames: u64,
    pub(crate) frame_size: u64,
    pub(crate) counters: Counters,
}

/// The listing: the lines it could read, and the ones it could not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Listing {
    pub(crate) rows: Vec<Row>,
    pub(crate) skipped: Vec<String>,
}

/// Parses the listing. Fails only without a header that names every column of [`COLUMNS`];
/// a line it cannot read goes to `skipped`.
pub(crate) fn parse_listing(text: &str) -> Result<Listing> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let mut index = [0; COLUMNS.len()];
    for (index, name) in index.iter_mut().zip(COLUMNS) {
        *index = header
            .iter()
            .position(|column| *column == name)
            .ok_or_else(|| {
                anyhow!(
                    "/proc/{LISTING}: no column '{name}' in its header '{}'",
                    header.join(" ")
                )
            })?;
    }
    let fanout = header.iter().position(|column| *column == FANOUT_COLUMN);
    let mut listing = Listing::default();
    for line in lines.filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match (fields.len() == header.len())
            .then(|| parse_row(&fields, &index, fanout))
            .flatten()
        {
            Some(row) => listing.rows.push(row),
            None => listing.skipped.push(line.to_string()),
        }
    }
    Ok(listing)
}

/// A line of the listing, its fields at the places `index` gives, in the order of [`COLUMNS`],
/// and its fanout group at `fanout`, if the listing has the column.
fn parse_row(
    fields: &[&str],
    index: &[usize; COLUMNS.len()],
    fanout: Option<usize>,
) -> Option<Row> {
    let field = |column: usize| fields[index[column]];
    let number = |column: usize| field(column).parse::<u64>().ok();
    let ifindex = field(4).parse().ok()?;
    let frames = number(5)?;
    let frame_size = number(6)?;
    let counters = Counters {
        packets: number(7)?,
        delivered: number(8)?,
        drops: number(9)?,
        filtered: number(10)?,
    };
    let ring = match (field(2), field(3)) {
        ("-", "-") => None,
        ("-", _) | (_, "-") => return None,
        (hook, family) => Some(Ring {
            hook: hook.to_string(),
            family: family.to_string(),
            ifindex,
            frames,
            frame_size,
            counters,
        }),
    };
    Some(Row {
        pid: field(0).parse().ok()?,
        state: field(1).to_string(),
        ring,
        filter: field(11).parse().ok()?,
        fanout: fanout
            .map(|i| fields[i])
            .filter(|group| *group != "-")
            .map(String::from),
    })
}

/// Reads the listing at `path`; [`Missing`] if there is none.
fn read_listing(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => Missing(path.to_path_buf()).into(),
        _ => anyhow!("{}: {err}", path.display()),
    })
}

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

/// Whether the fdinfo of a descriptor, read after the listing, can be the file of `row`.
fn same_ring(row: &Row, fdinfo: &RingState) -> bool {
    // fdinfo says `ended ENETDOWN` where the listing says `ENETDOWN`.
    let state = fdinfo.state.split_whitespace().last().unwrap_or_default();
    if state != row.state || fdinfo.filter != Some(row.filter) {
        return false;
    }
    let Some(ring) = &row.ring else {
        return fdinfo.hook.is_none();
    };
    let (Some(geometry), Some(counters)) = (fdinfo.geometry, fdinfo.counters) else {
        return false;
    };
    fdinfo.hook.as_deref() == Some(ring.hook.as_str())
        && fdinfo.family.as_deref() == Some(ring.family.as_str())
        && fdinfo.ifindex == Some(ring.ifindex)
        && geometry.frame_nr == ring.frames
        && geometry.frame_size == ring.frame_size
        && counters.packets >= ring.counters.packets
        && counters.delivered >= ring.counters.delivered
        && counters.drops >= ring.counters.drops
        && counters.filtered >= ring.counters.filtered
}

/// An open descriptor of the device: its process, number, and fdinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Descriptor {
    pub(crate) pid: u32,
    pub(crate) fd: u32,
    pub(crate) ring: RingState,
}

/// The descriptor of each row: the one descriptor of the row's pid that matches it, if it
/// matches no other row.
pub(crate) fn match_fds(rows: &[Row], descriptors: &[Descriptor]) -> Vec<Option<u32>> {
    let candidates: Vec<Vec<usize>> = rows
        .iter()
        .map(|row| {
            (0..descriptors.len())
                .filter(|&i| descriptors[i].pid == row.pid && same_ring(row, &descriptors[i].ring))
                .collect()
        })
        .collect();
    candidates
        .iter()
        .map(|candidates_of_row| match candidates_of_row[..] {
            [i] if candidates.iter().filter(|c| c.contains(&i)).count() == 1 => {
                Some(descriptors[i].fd)
            }
            _ => None,
        })
        .collect()
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

/// The descriptors of process `pid` under `proc` that point at the device, with an fdinfo
/// that has a ring in namespace `netns` (when both are known). None if the caller may not
/// look.
fn descriptors(proc: &Path, pid: u32, netns: Option<u64>) -> Vec<Descriptor> {
    let dir = proc.join(pid.to_string());
    let Ok(fds) = fs::read_dir(dir.join("fd")) else {
        return Vec::new();
    };
    let mut descriptors: Vec<Descriptor> = fds
        .flatten()
        .filter_map(|fd| {
            let fd_nr: u32 = fd.file_name().to_str()?.parse().ok()?;
            if fs::read_link(fd.path()).ok()? != Path::new(DEVICE) {
                return None;
            }
            let ring =
                parse_fdinfo(&fs::read_to_string(dir.join(format!("fdinfo/{fd_nr}"))).ok()?)?;
            let elsewhere = matches!((ring.netns, netns), (Some(a), Some(b)) if a != b);
            (!elsewhere).then_some(Descriptor {
                pid,
                fd: fd_nr,
                ring,
            })
        })
        .collect();
    descriptors.sort_by_key(|descriptor| descriptor.fd);
    descriptors
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

/// A line of the listing with what `pktring list` adds to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) row: Row,
    /// The opener's command; `None` if it has exited or the caller may not read it.
    pub(crate) command: Option<String>,
    /// The opener's descriptor of the file, if found (see the module documentation).
    pub(crate) fd: Option<u32>,
    /// The name of the ring's interface.
    pub(crate) ifname: Option<String>,
}

/// The entries of `rows`, with their openers looked up under `proc` (normally `/proc`).
pub(crate) fn entries(proc: &Path, rows: Vec<Row>) -> Vec<Entry> {
    let netns = ns_inode(&proc.join("self/ns/net"));
    let mut pids: Vec<u32> = rows.iter().map(|row| row.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let all: Vec<Descriptor> = pids
        .iter()
        .flat_map(|&pid| descriptors(proc, pid, netns))
        .collect();
    let fds = match_fds(&rows, &all);
    rows.into_iter()
        .zip(fds)
        .map(|(row, fd)| {
            let command = fs::read_to_string(proc.join(format!("{}/comm", row.pid)))
                .ok()
                .map(|comm| comm.trim_end().to_string());
            let ifname = row
                .ring
                .as_ref()
                .filter(|ring| ring.ifindex > 0)
                .and_then(|ring| ifname(ring.ifindex));
            Entry {
                row,
                command,
                fd,
                ifname,
            }
        })
        .collect()
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".into(), |value| value.to_string())
}

impl Entry {
    fn interface(&self) -> String {
        match (&self.row.ring, &self.ifname) {
            (None, _) => "-".into(),
            (Some(ring), _) if ring.ifindex == 0 => "any".into(),
            (Some(ring), Some(name)) => format!("{} ({name})", ring.ifindex),
            (Some(ring), None) => ring.ifindex.to_string(),
        }
    }

    fn filter(&self) -> String {
        match self.row.filter {
            0 => "none".into(),
            n => format!("{n} insns"),
        }
    }
}

/// The table `pktring list` prints: a header and one row per ring.
pub(crate) fn table(entries: &[Entry]) -> String {
    let header = [
        "PID", "COMMAND", "FD", "STATE", "HOOK", "FAMILY", "IFINDEX", "FRAMES", "PACKETS", "DROPS",
        "FILTERED", "FILTER", "FANOUT",
    ];
    let rows: Vec<[String; 13]> = entries
        .iter()
        .map(|e| {
            let ring = e.row.ring.as_ref();
            [
                e.row.pid.to_string(),
                e.command.clone().unwrap_or_else(|| "?".into()),
                or_dash(e.fd),
                e.row.state.clone(),
                or_dash(ring.map(|r| &r.hook)),
                or_dash(ring.map(|r| &r.family)),
                e.interface(),
                or_dash(ring.map(|r| r.frames)),
                or_dash(ring.map(|r| r.counters.packets)),
                or_dash(ring.map(|r| r.counters.drops)),
                or_dash(ring.map(|r| r.counters.filtered)),
                e.filter(),
                or_dash(e.row.fanout.as_ref()),
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

/// `pktring list --json`: an array with an object per ring; what the table shows as `-` or
/// `?` is `null`.
pub(crate) fn json(entries: &[Entry]) -> String {
    let objects: Vec<String> = entries
        .iter()
        .map(|e| {
            let ring = e.row.ring.as_ref();
            let counters = ring.map(|r| {
                let c = r.counters;
                format!(
                    "{{\"packets\":{},\"delivered\":{},\"drops\":{},\"filtered\":{}}}",
                    c.packets, c.delivered, c.drops, c.filtered
                )
            });
            format!(
                "{{\"pid\":{},\"command\":{},\"fd\":{},\"state\":{},\"hook\":{},\"family\":{},\
                 \"ifindex\":{},\"ifname\":{},\"frames\":{},\"frame_size\":{},\"counters\":{},\
                 \"filter_instructions\":{},\"fanout\":{}}}",
                e.row.pid,
                json_opt(e.command.as_deref().map(json_string)),
                json_opt(e.fd),
                json_string(&e.row.state),
                json_opt(ring.map(|r| json_string(&r.hook))),
                json_opt(ring.map(|r| json_string(&r.family))),
                json_opt(ring.map(|r| r.ifindex)),
                json_opt(e.ifname.as_deref().map(json_string)),
                json_opt(ring.map(|r| r.frames)),
                json_opt(ring.map(|r| r.frame_size)),
                json_opt(counters),
                e.row.filter,
                json_opt(e.row.fanout.as_deref().map(json_string)),
            )
        })
        .collect();
    format!("[{}]\n", objects.join(",\n "))
}

/// `pktring list`.
pub(crate) fn run(json_output: bool) -> Result<()> {
    let proc = Path::new("/proc");
    let listing = parse_listing(&read_listing(&proc.join(LISTING))?)?;
    for line in &listing.skipped {
        eprintln!("pktring list: skipped a line of /proc/{LISTING} it cannot read: {line:?}");
    }
    let entries = entries(proc, listing.rows);
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

    /// As the module prints it (its format string), with lines it must skip: the columns of
    /// [`COLUMNS`], then the fanout group.
    fn line(fields: [&str; 12], fanout: &str) -> String {
        let [pid, state, hook, family, ifindex, frames, size, packets, delivered, drops, filtered, filter] =
            fields;
        format!(
            "{pid:<8} {state:<10} {hook:<12} {family:<6} {ifindex:>7} {frames:>6} {size:>6} \
             {packets:>10} {delivered:>10} {drops:>8} {filtered:>10} {filter:>6} {fanout}\n"
        )
    }

    fn sample() -> String {
        [
            line(COLUMNS, FANOUT_COLUMN),
            line(
                [
                    "684",
                    "capturing",
                    "pre-routing",
                    "ipv4",
                    "2",
                    "512",
                    "2048",
                    "100",
                    "100",
                    "0",
                    "0",
                    "12",
                ],
                "684:hash",
            ),
            line(
                [
                    "702", "idle", "-", "-", "0", "0", "0", "0", "0", "0", "0", "0",
                ],
                "-",
            ),
            // Too few fields, a count that is not a number, a hook without a family.
            "703      idle       -            -            0      0      0\n".into(),
            line(
                [
                    "704", "ENETDOWN", "ingress", "all", "3", "64", "2048", "x", "0", "0", "0", "0",
                ],
                "-",
            ),
            line(
                [
                    "705", "idle", "-", "ipv4", "0", "0", "0", "0", "0", "0", "0", "0",
                ],
                "-",
            ),
            "\n".into(),
            line(
                [
                    "706", "ENETDOWN", "ingress", "0x0806", "3", "64", "2048", "10", "8", "1", "1",
                    "0",
                ],
                "9:cpu,rollover",
            ),
        ]
        .concat()
    }

    fn row_684() -> Row {
        Row {
            pid: 684,
            state: "capturing".into(),
            ring: Some(Ring {
                hook: "pre-routing".into(),
                family: "ipv4".into(),
                ifindex: 2,
                frames: 512,
                frame_size: 2048,
                counters: Counters {
                    packets: 100,
                    delivered: 100,
                    drops: 0,
                    filtered: 0,
                },
            }),
            filter: 12,
            fanout: Some("684:hash".into()),
        }
    }

    fn row_702() -> Row {
        Row {
            pid: 702,
            state: "idle".into(),
            ring: None,
            filter: 0,
            fanout: None,
        }
    }

    #[test]
    fn the_listing_gives_a_row_per_line_and_skips_malformed_ones() {
        let text = sample();
        // The example of the module's documentation.
        let example = concat!(
            "pid      state      hook         family ifindex frames   size    packets  delivered",
            "    drops   filtered filter fanout\n",
            "684      capturing  pre-routing  ipv4         2    512   2048        100        100",
            "        0          0     12 684:hash\n",
            "702      idle       -            -            0      0      0          0          0",
            "        0          0      0 -\n",
        );
        assert!(text.starts_with(example), "{text}");
        let listing = parse_listing(&text).unwrap();
        assert_eq!(listing.rows.len(), 3, "{listing:?}");
        assert_eq!(listing.rows[0], row_684());
        assert_eq!(listing.rows[1], row_702());
        let ended = &listing.rows[2];
        assert_eq!((ended.pid, ended.state.as_str()), (706, "ENETDOWN"));
        let ring = ended.ring.as_ref().unwrap();
        assert_eq!(
            (ring.hook.as_str(), ring.family.as_str()),
            ("ingress", "0x0806")
        );
        assert_eq!(ring.counters.drops, 1);
        assert_eq!(ended.fanout.as_deref(), Some("9:cpu,rollover"));
        let skipped: Vec<&str> = listing
            .skipped
            .iter()
            .map(|line| line.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(skipped, ["703", "704", "705"]);
    }

    #[test]
    fn the_listing_header_names_the_columns() {
        // An idle listing; a column added later, and moved ones, are fine, as is a listing
        // without a fanout column (a module from before it): no row has a group then.
        assert_eq!(
            parse_listing(&line(COLUMNS, FANOUT_COLUMN)).unwrap(),
            Listing::default()
        );
        let text = "state pid hook family ifindex frames size packets delivered drops filtered \
                    filter netns\nidle 7 - - 0 0 0 0 0 0 0 3 4026531840\n";
        assert_eq!(
            parse_listing(text).unwrap().rows,
            [Row {
                pid: 7,
                filter: 3,
                ..row_702()
            }]
        );
        let text = "state fanout pid hook family ifindex frames size packets delivered drops \
                    filtered filter\nidle 3:lb 7 - - 0 0 0 0 0 0 0 3\n";
        assert_eq!(
            parse_listing(text).unwrap().rows,
            [Row {
                pid: 7,
                filter: 3,
                fanout: Some("3:lb".into()),
                ..row_702()
            }]
        );
        for bad in ["", "\n702 idle\n", "pid state hook\n"] {
            let err = parse_listing(bad).unwrap_err().to_string();
            assert!(err.starts_with("/proc/pktring: no column '"), "{err}");
        }
    }

    #[test]
    fn a_missing_listing_says_to_load_the_module() {
        let err = read_listing(Path::new("/nonexistent/pktring")).unwrap_err();
        assert!(err.downcast_ref::<Missing>().is_some());
        assert_eq!(
            err.to_string(),
            "/nonexistent/pktring is missing: is rust_pktring loaded?"
        );
        assert_eq!(
            Missing(Path::new("/proc").join(LISTING)).to_string(),
            "/proc/pktring is missing: is rust_pktring loaded?"
        );
        // Some other failure is shown as it is.
        let err = read_listing(Path::new("/")).unwrap_err();
        assert!(err.downcast_ref::<Missing>().is_none());
        assert!(err.to_string().starts_with("/: "), "{err}");
    }

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

    /// The row the listing has of [`capturing`].
    fn capturing_row(pid: u32) -> Row {
        Row {
            pid,
            state: "capturing".into(),
            ring: Some(Ring {
                hook: "ingress".into(),
                family: "0x0806".into(),
                ifindex: 2,
                frames: 128,
                frame_size: 2048,
                counters: Counters {
                    packets: 9,
                    delivered: 8,
                    drops: 1,
                    filtered: 0,
                },
            }),
            filter: 6,
            fanout: None,
        }
    }

    #[test]
    fn a_row_gets_the_one_descriptor_that_matches_it() {
        let descriptor = |pid, fd, text: &str| Descriptor {
            pid,
            fd,
            ring: parse_fdinfo(text).unwrap(),
        };
        let idle = "pktring-state:\tidle\npktring-filter:\tnone\n";
        let descriptors = [
            descriptor(42, 3, CAPTURING),
            descriptor(42, 4, idle),
            descriptor(50, 3, &CAPTURING.replace("\tcapturing", "\tended ENETDOWN")),
            descriptor(60, 5, idle),
            descriptor(60, 6, idle),
            descriptor(70, 3, CAPTURING),
        ];
        let rows = [
            capturing_row(42),
            Row {
                pid: 42,
                ..row_702()
            },
            Row {
                state: "ENETDOWN".into(),
                ..capturing_row(50)
            },
            // Two idle rings alike; a pid without readable descriptors.
            Row {
                pid: 60,
                ..row_702()
            },
            Row {
                pid: 60,
                ..row_702()
            },
            Row {
                pid: 61,
                ..row_702()
            },
            // More packets than fdinfo, read later, says: another ring.
            Row {
                ring: capturing_row(70).ring.map(|ring| Ring {
                    counters: Counters {
                        packets: 11,
                        ..ring.counters
                    },
                    ..ring
                }),
                ..capturing_row(70)
            },
        ];
        assert_eq!(
            match_fds(&rows, &descriptors),
            [Some(3), Some(4), Some(3), None, None, None, None]
        );
        // Another hook, family, geometry or filter, or a ring that has come since.
        for other in [
            CAPTURING.replace("\tingress", "\tegress"),
            CAPTURING.replace("\t0x0806", "\tall"),
            CAPTURING.replace("frame_nr=128", "frame_nr=64"),
            CAPTURING.replace("\t6 instructions", "\tnone"),
            CAPTURING.replace("\tcapturing", "\tended ENONET"),
        ] {
            assert_eq!(
                match_fds(&[capturing_row(42)], &[descriptor(42, 3, &other)]),
                [None],
                "{other}"
            );
        }
        assert_eq!(
            match_fds(&[row_702()], &[descriptor(702, 3, CAPTURING)]),
            [None]
        );
    }

    #[test]
    fn entries_look_up_the_opener_under_proc() {
        use std::os::unix::fs::symlink;
        let proc = std::env::temp_dir().join(format!("pktring-list-test.{}", std::process::id()));
        let _ = fs::remove_dir_all(&proc);
        for dir in ["self/ns", "42/fd", "42/fdinfo", "43/fd", "43/fdinfo"] {
            fs::create_dir_all(proc.join(dir)).unwrap();
        }
        symlink("net:[4026531840]", proc.join("self/ns/net")).unwrap();
        fs::write(proc.join("42/comm"), "pktring\n").unwrap();
        symlink("/dev/null", proc.join("42/fd/0")).unwrap();
        symlink(DEVICE, proc.join("42/fd/7")).unwrap();
        fs::write(proc.join("42/fdinfo/7"), CAPTURING).unwrap();
        // A ring of another namespace, which the listing does not show.
        symlink(DEVICE, proc.join("43/fd/3")).unwrap();
        fs::write(
            proc.join("43/fdinfo/3"),
            CAPTURING.replace("4026531840", "4026532000"),
        )
        .unwrap();
        let entries = entries(&proc, vec![capturing_row(42), capturing_row(43)]);
        fs::remove_dir_all(&proc).unwrap();
        assert_eq!(
            entries
                .iter()
                .map(|e| (e.row.pid, e.command.as_deref(), e.fd))
                .collect::<Vec<_>>(),
            [(42, Some("pktring"), Some(7)), (43, None, None)]
        );
    }

    #[test]
    fn entries_without_a_proc_have_no_command_or_fd() {
        let entries = entries(Path::new("/nonexistent"), vec![row_702()]);
        assert_eq!(
            entries,
            [Entry {
                row: row_702(),
                command: None,
                fd: None,
                ifname: None,
            }]
        );
        assert_eq!(table(&entries).lines().nth(1).unwrap(), {
            "702  ?        -   idle   -     -       -        -       -        -      -         none    -"
        });
    }

    #[test]
    fn the_table_and_json_show_each_ring() {
        let entries = [
            Entry {
                row: row_684(),
                command: Some("pktring".into()),
                fd: Some(3),
                ifname: Some("eth0".into()),
            },
            Entry {
                row: row_702(),
                command: Some("a \"b\"".into()),
                fd: None,
                ifname: None,
            },
            Entry {
                row: Row {
                    ring: row_684().ring.map(|ring| Ring { ifindex: 0, ..ring }),
                    ..row_684()
                },
                command: None,
                fd: None,
                ifname: None,
            },
        ];
        let table = table(&entries);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        let words = |line: &str| {
            line.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            words(lines[0]),
            [
                "PID", "COMMAND", "FD", "STATE", "HOOK", "FAMILY", "IFINDEX", "FRAMES", "PACKETS",
                "DROPS", "FILTERED", "FILTER", "FANOUT"
            ]
        );
        assert_eq!(
            words(lines[1]),
            [
                "684",
                "pktring",
                "3",
                "capturing",
                "pre-routing",
                "ipv4",
                "2",
                "(eth0)",
                "512",
                "100",
                "0",
                "0",
                "12",
                "insns",
                "684:hash"
            ]
        );
        assert_eq!(
            words(lines[2]),
            ["702", "a", "\"b\"", "-", "idle", "-", "-", "-", "-", "-", "-", "-", "none", "-"]
        );
        assert_eq!(
            words(lines[3])[..7],
            ["684", "?", "-", "capturing", "pre-routing", "ipv4", "any"]
        );
        let json = json(&entries);
        assert!(
            json.starts_with(
                "[{\"pid\":684,\"command\":\"pktring\",\"fd\":3,\"state\":\"capturing\",\
             \"hook\":\"pre-routing\",\"family\":\"ipv4\",\"ifindex\":2,\"ifname\":\"eth0\",\
             \"frames\":512,\"frame_size\":2048,\
             \"counters\":{\"packets\":100,\"delivered\":100,\"drops\":0,\"filtered\":0},\
             \"filter_instructions\":12,\"fanout\":\"684:hash\"},\n "
            ),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"pid\":702,\"command\":\"a \\\"b\\\"\",\"fd\":null,\"state\":\"idle\",\
             \"hook\":null,\"family\":null,\"ifindex\":null,\"ifname\":null,\"frames\":null,\
             \"frame_size\":null,\"counters\":null,\"filter_instructions\":0,\"fanout\":null}"
            ),
            "{json}"
        );
        assert!(
            json.contains("\"pid\":684,\"command\":null,\"fd\":null,"),
            "{json}"
        );
        assert!(json.ends_with("}]\n"));
        assert_eq!(json_string("a\nb"), "\"a\\u000ab\"");
    }
}
