//! Fanout groups: `pktring capture --fanout MODE --threads N` sets up N rings as the members of
//! one group (`PKTRING_IOC_JOIN_FANOUT` before each one's `PKTRING_IOC_SET_RING`), each packet
//! the group's selection takes going to one of them, and a consumer thread per member writes
//! its own file.
//!
//! The `pktring` library sets a lone ring up in one call, with no room for the join between
//! opening the file and setting the ring up; so a member is set up here, as the library does it
//! (open, filter, set-up, layout, shared mapping) with the join first, and read with the
//! library's [`RingReader`] over its mapping. At the end a member leaves its group
//! (`PKTRING_IOC_LEAVE_FANOUT`): from then on no packet goes to its ring, and the consumer
//! drains it, so that nothing the group captured is lost while its members go one by one.

use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::ptr::{null_mut, NonNull};
use std::time::Duration;

use anyhow::Result;
use pktring::uapi::{
    self, PktringInfo, PktringReq, PktringStats, SockFilter, SockFprog, PKTRING_IOC_MAGIC,
};
use pktring::{Frame, Layout, Op, RingReader};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{open, Mode as FileMode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{ioctl, opcode, Getter, NoArg, Opcode, Setter};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

use crate::capture::FrameSource;

/// `PKTRING_FANOUT_CPU`: the producing CPU, modulo the members.
pub(crate) const PKTRING_FANOUT_CPU: u16 = 0;
/// `PKTRING_FANOUT_HASH`: a symmetric flow hash (both directions of a flow in one member).
pub(crate) const PKTRING_FANOUT_HASH: u16 = 1;
/// `PKTRING_FANOUT_QUEUE`: the device's RX queue.
pub(crate) const PKTRING_FANOUT_QUEUE: u16 = 2;
/// `PKTRING_FANOUT_LB`: round robin.
pub(crate) const PKTRING_FANOUT_LB: u16 = 3;
/// `PKTRING_FANOUT_FLAG_ROLLOVER`: a packet whose member is full goes to the next one.
pub(crate) const PKTRING_FANOUT_FLAG_ROLLOVER: u16 = 0x1;
/// `PKTRING_FANOUT_MAX_MEMBERS`.
pub(crate) const PKTRING_FANOUT_MAX_MEMBERS: u32 = 256;

/// `struct pktring_fanout`: the group of `PKTRING_IOC_JOIN_FANOUT` (which reads `id`, `mode`
/// and `flags`) and `PKTRING_IOC_GET_FANOUT`.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PktringFanout {
    /// The group's id in the network namespace.
    pub(crate) id: u32,
    /// `PKTRING_FANOUT_*`.
    pub(crate) mode: u16,
    /// `PKTRING_FANOUT_FLAG_*`.
    pub(crate) flags: u16,
    /// GET_FANOUT: the group's members now (0 before set-up, and once the ring has left).
    pub(crate) members: u32,
    /// Zero.
    pub(crate) reserved: u32,
    /// GET_FANOUT: packets this ring took for a member that had no free frame.
    pub(crate) rollover: u64,
}

/// `PKTRING_IOC_JOIN_FANOUT`: `_IOW(PKTRING_IOC_MAGIC, 6, struct pktring_fanout)`.
pub(crate) const PKTRING_IOC_JOIN_FANOUT: Opcode =
    opcode::write::<PktringFanout>(PKTRING_IOC_MAGIC, 6);
/// `PKTRING_IOC_GET_FANOUT`: `_IOR(PKTRING_IOC_MAGIC, 7, struct pktring_fanout)`.
pub(crate) const PKTRING_IOC_GET_FANOUT: Opcode =
    opcode::read::<PktringFanout>(PKTRING_IOC_MAGIC, 7);
/// `PKTRING_IOC_LEAVE_FANOUT`: `_IO(PKTRING_IOC_MAGIC, 8)`.
pub(crate) const PKTRING_IOC_LEAVE_FANOUT: Opcode = opcode::none(PKTRING_IOC_MAGIC, 8);

/// How a group picks the member of a packet (`--fanout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// The CPU the packet is captured on, modulo the rings.
    Cpu,
    /// A symmetric flow hash: both directions of a flow go to one ring.
    Hash,
    /// The device's RX queue.
    Queue,
    /// Round robin (load balancing).
    Lb,
}

impl Mode {
    /// The `PKTRING_FANOUT_*` value.
    pub(crate) fn uapi(self) -> u16 {
        match self {
            Mode::Cpu => PKTRING_FANOUT_CPU,
            Mode::Hash => PKTRING_FANOUT_HASH,
            Mode::Queue => PKTRING_FANOUT_QUEUE,
            Mode::Lb => PKTRING_FANOUT_LB,
        }
    }
}

/// The group the members join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Join {
    pub(crate) id: u32,
    pub(crate) mode: Mode,
    pub(crate) rollover: bool,
}

impl Join {
    /// The request of `PKTRING_IOC_JOIN_FANOUT`.
    pub(crate) fn request(&self) -> PktringFanout {
        PktringFanout {
            id: self.id,
            mode: self.mode.uapi(),
            flags: if self.rollover {
                PKTRING_FANOUT_FLAG_ROLLOVER
            } else {
                0
            },
            ..PktringFanout::default()
        }
    }
}

/// Returns `true` if a `-w` pattern has a `%d` for the member's index.
pub(crate) fn has_index(pattern: &Path) -> bool {
    pattern
        .as_os_str()
        .as_bytes()
        .windows(2)
        .any(|pair| pair == b"%d")
}

/// Returns the file of member `index`: `pattern` with each `%d` replaced by the index.
pub(crate) fn member_path(pattern: &Path, index: usize) -> PathBuf {
    let bytes = pattern.as_os_str().as_bytes();
    let number = index.to_string();
    let mut path = Vec::with_capacity(bytes.len() + number.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"%d") {
            path.extend_from_slice(number.as_bytes());
            i += 2;
        } else {
            path.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(path))
}

/// A fanout call that failed, and what it means for the capture.
#[derive(Debug)]
pub(crate) struct FanoutError {
    /// The call.
    op: FanoutOp,
    /// The group.
    id: u32,
    errno: Errno,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FanoutOp {
    Join,
    /// `PKTRING_IOC_SET_RING` of a member.
    SetRing,
    Get,
    Leave,
}

impl fmt::Display for FanoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id;
        match (self.op, self.errno) {
            (FanoutOp::Join, Errno::NOTTY) => write!(
                f,
                "this rust_pktring has no fanout groups (ENOTTY): load one built from the same \
                 rust_pktring_uapi.h as this tool"
            ),
            (FanoutOp::Join, Errno::INVAL) => write!(
                f,
                "the module refused to join fanout group {id} (EINVAL): is it built from the \
                 same rust_pktring_uapi.h as this tool?"
            ),
            (FanoutOp::SetRing, Errno::INVAL) => write!(
                f,
                "the module refused a member of fanout group {id} (EINVAL): the group has \
                 members that capture other packets or in another mode (every member needs the \
                 same --hook, --family or --ethertype, interface, --priority, --fanout and \
                 --rollover): use another --fanout-id"
            ),
            (FanoutOp::SetRing, Errno::NOSPC) => write!(
                f,
                "fanout group {id} is full: it has {PKTRING_FANOUT_MAX_MEMBERS} members \
                 (ENOSPC)"
            ),
            (FanoutOp::SetRing, Errno::NODEV) => write!(
                f,
                "fanout group {id} has ended: its interface went away (ENODEV)"
            ),
            (FanoutOp::SetRing, Errno::NONET) => write!(
                f,
                "fanout group {id} has ended: its network namespace is going away (ENONET)"
            ),
            (op, errno) => write!(
                f,
                "{} (fanout group {id}): {}",
                match op {
                    FanoutOp::Join => "PKTRING_IOC_JOIN_FANOUT",
                    FanoutOp::SetRing => "PKTRING_IOC_SET_RING",
                    FanoutOp::Get => "PKTRING_IOC_GET_FANOUT",
                    FanoutOp::Leave => "PKTRING_IOC_LEAVE_FANOUT",
                },
                std::io::Error::from(errno)
            ),
        }
    }
}

impl std::error::Error for FanoutError {}

/// A shared mapping of a ring, unmapped when dropped.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: a mapping is memory of the process, usable from any thread; `Mapping` itself only
// unmaps it, once, when dropped.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are a mapping made by `mmap()` in `Member::open`, which
        // nothing uses any more: the reader over it is dropped first (see `Member`).
        let _ = unsafe { munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// A member of a fanout group: its file, its mapping and its consumer, as a [`pktring::Ring`]
/// is a lone ring's.
///
/// Dropping it unmaps the ring and closes the file, which leaves the group if the member had
/// not left before.
pub(crate) struct Member {
    /// Borrows `map` in fact; declared first, so dropped first, and never handed out.
    reader: RingReader<'static>,
    _map: Mapping,
    fd: OwnedFd,
    id: u32,
    /// The ring has left its group.
    left: bool,
}

impl Member {
    /// Opens `device`, joins the group, attaches `filter` (before the ring captures, so that
    /// no packet escapes it), sets the ring up with `req` (it becomes a member: capture starts)
    /// and maps it.
    pub(crate) fn open(
        device: &Path,
        req: &PktringReq,
        filter: Option<&[SockFilter]>,
        join: &Join,
    ) -> Result<Self> {
        let fanout_error = |op| {
            move |errno| FanoutError {
                op,
                id: join.id,
                errno,
            }
        };
        let fd =
            open(device, OFlags::RDWR | OFlags::CLOEXEC, FileMode::empty()).map_err(|errno| {
                pktring::Error::Open {
                    path: device.into(),
                    source: errno.into(),
                }
            })?;
        // SAFETY: PKTRING_IOC_JOIN_FANOUT reads a `struct pktring_fanout`, which `PktringFanout`
        // mirrors (tests below).
        unsafe {
            ioctl(
                &fd,
                Setter::<PKTRING_IOC_JOIN_FANOUT, _>::new(join.request()),
            )
        }
        .map_err(fanout_error(FanoutOp::Join))?;
        if let Some(filter) = filter {
            let prog = SockFprog {
                len: u16::try_from(filter.len()).map_err(|_| {
                    pktring::Error::Request(format!(
                        "a capture filter is 1 to {} instructions, not {}",
                        uapi::BPF_MAXINSNS,
                        filter.len()
                    ))
                })?,
                filter: filter.as_ptr(),
            };
            // SAFETY: PKTRING_IOC_SET_FILTER reads a `struct sock_fprog`, which `SockFprog`
            // mirrors, and the `len` instructions it points to, which `filter` holds for the
            // whole call (the kernel copies them).
            unsafe {
                ioctl(
                    &fd,
                    Setter::<{ uapi::PKTRING_IOC_SET_FILTER }, _>::new(prog),
                )
            }
            .map_err(|errno| pktring::Error::Io {
                op: Op::SetFilter,
                source: errno.into(),
            })?;
        }
        // SAFETY: PKTRING_IOC_SET_RING reads a `struct pktring_req`, which `PktringReq` mirrors.
        unsafe { ioctl(&fd, Setter::<{ uapi::PKTRING_IOC_SET_RING }, _>::new(*req)) }.map_err(
            |errno| -> anyhow::Error {
                match errno {
                    Errno::INVAL | Errno::NOSPC | Errno::NODEV | Errno::NONET => {
                        fanout_error(FanoutOp::SetRing)(errno).into()
                    }
                    // EPERM, ENOMEM, E2BIG...: as for a lone ring.
                    _ => pktring::Error::Io {
                        op: Op::SetRing,
                        source: errno.into(),
                    }
                    .into(),
                }
            },
        )?;
        let layout = Layout::from_info(get_info(fd.as_fd())?)?;
        let len = layout.mmap_size();
        // SAFETY: a new shared mapping of the ring's file, readable and writable, `mmap_size`
        // bytes at offset 0 as the module requires; the kernel picks the address.
        let base = unsafe {
            mmap(
                null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }
        .map_err(|errno| pktring::Error::Io {
            op: Op::Map,
            source: errno.into(),
        })?;
        // PANIC: a successful mmap() of a file is never at address 0.
        let base = NonNull::new(base.cast::<u8>()).expect("mmap() returned NULL");
        let map = Mapping { base, len };
        // SAFETY: the mapping is `mmap_size()` bytes, page-aligned, and lives as long as the
        // reader: both belong to the `Member`, which never hands the reader out and drops it
        // first. The only other party that writes it is the module, which follows the ring
        // protocol; nothing else maps this file.
        let reader = unsafe { RingReader::from_raw(map.base, layout) };
        Ok(Self {
            reader,
            _map: map,
            fd,
            id: join.id,
            left: false,
        })
    }

    /// Returns the layout the module reported.
    pub(crate) fn layout(&self) -> &Layout {
        self.reader.layout()
    }

    /// Returns the group, its members now (0 once this ring has left) and this ring's rollovers
    /// (`PKTRING_IOC_GET_FANOUT`).
    pub(crate) fn fanout(&self) -> Result<PktringFanout, FanoutError> {
        // SAFETY: PKTRING_IOC_GET_FANOUT writes a `struct pktring_fanout`, which
        // `PktringFanout` mirrors.
        unsafe { ioctl(&self.fd, Getter::<PKTRING_IOC_GET_FANOUT, _>::new()) }.map_err(|errno| {
            FanoutError {
                op: FanoutOp::Get,
                id: self.id,
                errno,
            }
        })
    }
}

impl FrameSource for Member {
    fn try_next(&mut self) -> Result<Option<Frame<'_>>, pktring::Error> {
        Ok(self.reader.try_next()?)
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<Option<Frame<'_>>, pktring::Error> {
        let fd = self.fd.as_fd();
        let mut ended = false;
        let frame = self.reader.next_frame(Some(timeout), |left| {
            let (ready, err) = poll_readable(fd, left)?;
            ended = err;
            // A poller told of the end stops waiting; frames it left are still taken below.
            Ok(ready && !err)
        });
        match frame {
            Ok(None) if ended => Err(pktring::Error::Ended {
                errno: get_info(fd)?.error as i32,
            }),
            frame => frame,
        }
    }

    fn take_stats(&mut self) -> Result<PktringStats, pktring::Error> {
        // SAFETY: PKTRING_IOC_GET_STATS writes a `struct pktring_stats`, which `PktringStats`
        // mirrors.
        unsafe {
            ioctl(
                &self.fd,
                Getter::<{ uapi::PKTRING_IOC_GET_STATS }, _>::new(),
            )
        }
        .map_err(|errno| pktring::Error::Io {
            op: Op::GetStats,
            source: errno.into(),
        })
    }

    fn wakeups(&self) -> u64 {
        self.reader.wakeups()
    }

    /// `PKTRING_IOC_LEAVE_FANOUT`: once it returns, no packet goes to the ring, and its frames
    /// stay readable. `ENOENT`: the ring is no member any more, which is as good.
    fn leave(&mut self) -> Result<bool> {
        if !self.left {
            // SAFETY: PKTRING_IOC_LEAVE_FANOUT takes no argument.
            match unsafe { ioctl(&self.fd, NoArg::<PKTRING_IOC_LEAVE_FANOUT>::new()) } {
                Ok(()) | Err(Errno::NOENT) => self.left = true,
                Err(errno) => {
                    return Err(FanoutError {
                        op: FanoutOp::Leave,
                        id: self.id,
                        errno,
                    }
                    .into())
                }
            }
        }
        Ok(true)
    }
}

/// `PKTRING_IOC_GET_INFO` on the ring's file `fd`.
fn get_info(fd: BorrowedFd<'_>) -> Result<PktringInfo, pktring::Error> {
    // SAFETY: PKTRING_IOC_GET_INFO writes a `struct pktring_info`, which `PktringInfo` mirrors.
    unsafe { ioctl(fd, Getter::<{ uapi::PKTRING_IOC_GET_INFO }, _>::new()) }.map_err(|errno| {
        pktring::Error::Io {
            op: Op::GetInfo,
            source: errno.into(),
        }
    })
}

/// Waits up to `timeout` for `POLLIN` on `fd`; returns whether it came (`false` on timeout or
/// signal) and whether `POLLERR` came too (the capture has ended).
fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> std::io::Result<(bool, bool)> {
    // A timeout too long for a timespec is as good as none.
    let timeout = timeout.and_then(|timeout| Timespec::try_from(timeout).ok());
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match poll(&mut fds, timeout.as_ref()) {
        Ok(ready) => Ok((ready > 0, fds[0].revents().contains(PollFlags::ERR))),
        Err(Errno::INTR) => Ok((false, false)),
        Err(errno) => Err(errno.into()),
    }
}

/// Says which files a pattern makes, for messages: `out-0.pcap to out-2.pcap`.
pub(crate) fn file_range(pattern: &Path, members: usize) -> String {
    let first = member_path(pattern, 0);
    match members {
        0 | 1 => first.display().to_string(),
        _ => format!(
            "{} to {}",
            first.display(),
            member_path(pattern, members - 1).display()
        ),
    }
}

/// The name of a pattern for messages (its bytes, lossily).
pub(crate) fn pattern_name(pattern: &Path) -> std::borrow::Cow<'_, str> {
    OsStr::to_string_lossy(pattern.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn the_fanout_abi_is_the_header_s() {
        // struct pktring_fanout, as rust_pktring_uapi.h asserts it: 24 bytes.
        assert_eq!(size_of::<PktringFanout>(), 24);
        assert_eq!(align_of::<PktringFanout>(), 8);
        assert_eq!(
            [
                offset_of!(PktringFanout, id),
                offset_of!(PktringFanout, mode),
                offset_of!(PktringFanout, flags),
                offset_of!(PktringFanout, members),
                offset_of!(PktringFanout, reserved),
                offset_of!(PktringFanout, rollover),
            ],
            [0, 4, 6, 8, 12, 16]
        );
        // _IOW(0xB9, 6, 24), _IOR(0xB9, 7, 24), _IO(0xB9, 8) on x86-64 (and every architecture
        // with the generic encoding).
        assert_eq!(PKTRING_IOC_JOIN_FANOUT, 0x4018_b906);
        assert_eq!(PKTRING_IOC_GET_FANOUT, 0x8018_b907);
        assert_eq!(PKTRING_IOC_LEAVE_FANOUT, 0xb908);
        assert_eq!(
            [Mode::Cpu, Mode::Hash, Mode::Queue, Mode::Lb].map(Mode::uapi),
            [0, 1, 2, 3]
        );
        let join = Join {
            id: 7,
            mode: Mode::Lb,
            rollover: true,
        };
        assert_eq!(
            join.request(),
            PktringFanout {
                id: 7,
                mode: 3,
                flags: 1,
                ..PktringFanout::default()
            }
        );
    }

    #[test]
    fn a_pattern_names_each_member_s_file() {
        let pattern = Path::new("/tmp/out-%d.pcap");
        assert!(has_index(pattern));
        assert_eq!(member_path(pattern, 0), Path::new("/tmp/out-0.pcap"));
        assert_eq!(member_path(pattern, 12), Path::new("/tmp/out-12.pcap"));
        assert_eq!(
            member_path(Path::new("%d/x-%d.pcapng"), 3),
            Path::new("3/x-3.pcapng")
        );
        for plain in ["out.pcap", "out-%s.pcap", "out%", "%D"] {
            assert!(!has_index(Path::new(plain)), "{plain}");
            assert_eq!(member_path(Path::new(plain), 5), Path::new(plain));
        }
        assert_eq!(file_range(pattern, 3), "/tmp/out-0.pcap to /tmp/out-2.pcap");
        assert_eq!(file_range(pattern, 1), "/tmp/out-0.pcap");
    }

    #[test]
    fn fanout_errors_explain_themselves() {
        let error = |op, errno| FanoutError { op, id: 42, errno }.to_string();
        assert!(error(FanoutOp::Join, Errno::NOTTY).contains("no fanout groups (ENOTTY)"));
        let mismatch = error(FanoutOp::SetRing, Errno::INVAL);
        assert!(
            mismatch.contains("fanout group 42 (EINVAL)") && mismatch.contains("--fanout-id"),
            "{mismatch}"
        );
        assert!(error(FanoutOp::SetRing, Errno::NOSPC).contains("256 members (ENOSPC)"));
        let other = error(FanoutOp::Leave, Errno::NOMEM);
        assert!(
            other.starts_with("PKTRING_IOC_LEAVE_FANOUT (fanout group 42): "),
            "{other}"
        );
        for op in [
            FanoutOp::Join,
            FanoutOp::SetRing,
            FanoutOp::Get,
            FanoutOp::Leave,
        ] {
            for errno in [Errno::INVAL, Errno::NOSPC, Errno::NODEV, Errno::PERM] {
                assert!(!error(op, errno).contains('\n'));
            }
        }
    }

    /// Without the module, opening a member fails as a lone ring's opening does.
    #[test]
    fn a_member_of_a_missing_device_says_so() {
        let join = Join {
            id: 1,
            mode: Mode::Hash,
            rollover: false,
        };
        let req = pktring::RingBuilder::new().request().unwrap();
        let err = Member::open(Path::new("/nonexistent/pktring"), &req, None, &join)
            .err()
            .unwrap();
        assert!(matches!(
            err.downcast_ref::<pktring::Error>(),
            Some(pktring::Error::Open { .. })
        ));
        // /dev/null is no ring: the join is refused (ENOTTY), before anything is set up.
        assert!(Member::open(Path::new("/dev/null"), &req, None, &join).is_err());
    }
}
