//! The device: a ring request, fanout groups, set-up, the mapping, waiting with `poll()`, and
//! the counters.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::ptr::NonNull;
use std::time::Duration;

use memmap2::{MmapOptions, MmapRaw};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{open, Mode, OFlags};
use rustix::io::Errno;
use rustix::ioctl::{ioctl, Getter, NoArg, Setter};
use rustix::net::{netdevice, socket, AddressFamily, SocketType};

use crate::uapi::{
    self, PktringFanout, PktringInfo, PktringReq, PktringStats, SockFilter, SockFprog,
};
use crate::{CorruptFrame, Error, Frame, Geometry, Layout, Op, RingReader};

/// The device node of the module.
pub const DEFAULT_DEVICE: &str = "/dev/pktring";

/// Which packets a ring captures, by protocol family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
    /// IPv4 and IPv6.
    #[default]
    Both,
}

/// Where in the stack a ring captures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hook {
    /// `NF_INET_PRE_ROUTING`: every packet received, before routing.
    #[default]
    PreRouting,
    /// `NF_INET_LOCAL_IN`: packets for this host, after routing.
    LocalIn,
    /// `NF_NETDEV_INGRESS` of one device: needs an ifindex.
    Ingress,
    /// `NF_INET_LOCAL_OUT`: packets sent by this host, before routing; frames start at the
    /// network header.
    LocalOut,
    /// `NF_INET_POST_ROUTING`: packets sent or forwarded, about to leave; frames start at the
    /// network header.
    PostRouting,
    /// `NF_NETDEV_EGRESS` of one device: needs an ifindex.
    Egress,
}

impl Hook {
    /// Returns `true` for the hooks of one device (`INGRESS`, `EGRESS`), which need an ifindex
    /// and may select packets by EtherType.
    pub fn is_device(self) -> bool {
        matches!(self, Hook::Ingress | Hook::Egress)
    }

    /// Returns `true` for the hooks that see packets this host sends (`LOCAL_OUT`,
    /// `POST_ROUTING`, `EGRESS`): their `sll_pkttype` is `PACKET_OUTGOING`.
    pub fn is_egress(self) -> bool {
        matches!(self, Hook::LocalOut | Hook::PostRouting | Hook::Egress)
    }

    /// Returns `true` for the hooks whose frames always start at the network header
    /// (`LOCAL_OUT`, `POST_ROUTING`: a packet sent by this host has no link-layer header yet).
    pub fn starts_at_network_header(self) -> bool {
        matches!(self, Hook::LocalOut | Hook::PostRouting)
    }

    /// Returns the `PKTRING_HOOK_*` value.
    pub fn uapi(self) -> u16 {
        match self {
            Hook::PreRouting => uapi::PKTRING_HOOK_PRE_ROUTING,
            Hook::LocalIn => uapi::PKTRING_HOOK_LOCAL_IN,
            Hook::Ingress => uapi::PKTRING_HOOK_INGRESS,
            Hook::LocalOut => uapi::PKTRING_HOOK_LOCAL_OUT,
            Hook::PostRouting => uapi::PKTRING_HOOK_POST_ROUTING,
            Hook::Egress => uapi::PKTRING_HOOK_EGRESS,
        }
    }
}

/// How a fanout group picks the member of a packet (`PKTRING_FANOUT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanoutMode {
    /// `PKTRING_FANOUT_CPU`: the producing CPU, its number modulo the members.
    Cpu,
    /// `PKTRING_FANOUT_HASH`: a symmetric flow hash (both directions of a flow go to the same
    /// member).
    Hash,
    /// `PKTRING_FANOUT_QUEUE`: the device's RX queue.
    Queue,
    /// `PKTRING_FANOUT_LB`: round robin.
    Lb,
}

impl FanoutMode {
    /// Returns the `PKTRING_FANOUT_*` value.
    pub fn uapi(self) -> u16 {
        match self {
            FanoutMode::Cpu => uapi::PKTRING_FANOUT_CPU,
            FanoutMode::Hash => uapi::PKTRING_FANOUT_HASH,
            FanoutMode::Queue => uapi::PKTRING_FANOUT_QUEUE,
            FanoutMode::Lb => uapi::PKTRING_FANOUT_LB,
        }
    }

    /// Returns the mode of a `PKTRING_FANOUT_*` value; `None` for one this crate does not know.
    pub fn from_uapi(mode: u16) -> Option<Self> {
        [Self::Cpu, Self::Hash, Self::Queue, Self::Lb]
            .into_iter()
            .find(|known| known.uapi() == mode)
    }
}

/// A fanout group for a ring to join ([`RingBuilder::fanout`]): rings as one group, each packet
/// that the members' selection takes going to one of them.
///
/// The group lives in the network namespace of its first member's opener, and its id is that
/// namespace's: the same id in another namespace is another group. Members are numbered in the
/// order they joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fanout {
    /// The group's id in the network namespace.
    pub id: u32,
    /// How the group picks the member of a packet.
    pub mode: FanoutMode,
    /// `PKTRING_FANOUT_FLAG_ROLLOVER`: a packet that finds no free frame in the member picked
    /// goes to the next member with one (in member order, wrapping round), counted in that
    /// member's `rollover`; it is dropped only when no member had a free frame.
    pub rollover: bool,
}

impl Fanout {
    /// Returns the request of `PKTRING_IOC_JOIN_FANOUT`: `id`, `mode` and `flags`, the rest 0.
    pub fn uapi(&self) -> PktringFanout {
        PktringFanout {
            id: self.id,
            mode: self.mode.uapi(),
            flags: if self.rollover {
                uapi::PKTRING_FANOUT_FLAG_ROLLOVER
            } else {
                0
            },
            ..PktringFanout::default()
        }
    }

    /// Returns the group that `PKTRING_IOC_GET_FANOUT` reported ([`Ring::fanout`]); `None` if
    /// its mode or flags are not ones this crate knows.
    pub fn from_uapi(fanout: &PktringFanout) -> Option<Self> {
        let rollover = match fanout.flags {
            0 => false,
            uapi::PKTRING_FANOUT_FLAG_ROLLOVER => true,
            _ => return None,
        };
        Some(Self {
            id: fanout.id,
            mode: FanoutMode::from_uapi(fanout.mode)?,
            rollover,
        })
    }
}

/// How to set up a ring: the device, the geometry, the snaplen, what to capture and the
/// fanout group to join.
#[derive(Clone, Debug)]
pub struct RingBuilder {
    device: PathBuf,
    geometry: Geometry,
    snaplen: u32,
    family: Family,
    hook: Hook,
    ifindex: u32,
    priority: i32,
    batch: Option<(u32, Duration)>,
    ethertype: u32,
    filter: Option<Vec<SockFilter>>,
    fanout: Option<Fanout>,
}

impl Default for RingBuilder {
    /// `/dev/pktring`, the default geometry, the largest snaplen, IPv4 and IPv6 at
    /// `PRE_ROUTING` on any device, priority 0, in no fanout group.
    fn default() -> Self {
        Self {
            device: DEFAULT_DEVICE.into(),
            geometry: Geometry::default(),
            snaplen: 0,
            family: Family::Both,
            hook: Hook::PreRouting,
            ifindex: 0,
            priority: 0,
            batch: None,
            ethertype: 0,
            filter: None,
            fanout: None,
        }
    }
}

impl RingBuilder {
    /// Returns the default builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the device node.
    pub fn device(mut self, path: impl Into<PathBuf>) -> Self {
        self.device = path.into();
        self
    }

    /// Sets the geometry.
    pub fn geometry(mut self, geometry: Geometry) -> Self {
        self.geometry = geometry;
        self
    }

    /// Sets the most bytes of a packet to copy (0: as many as fit in a frame).
    pub fn snaplen(mut self, snaplen: u32) -> Self {
        self.snaplen = snaplen;
        self
    }

    /// Sets the protocol family to capture.
    pub fn family(mut self, family: Family) -> Self {
        self.family = family;
        self
    }

    /// Sets the hook to capture at.
    pub fn hook(mut self, hook: Hook) -> Self {
        self.hook = hook;
        self
    }

    /// For a device hook, the device; for an inet hook, captures only packets that arrive on
    /// (`PRE_ROUTING`, `LOCAL_IN`) or leave through (`LOCAL_OUT`, `POST_ROUTING`) device
    /// `ifindex` (0: any); see [`ifindex`].
    pub fn ifindex(mut self, ifindex: u32) -> Self {
        self.ifindex = ifindex;
        self
    }

    /// Selects packets by EtherType at a device hook (host byte order): 0, the IP versions of
    /// [`family`](Self::family) (the default); [`uapi::PKTRING_ETH_P_ALL`], every packet; any
    /// other, only packets of that EtherType (the family is then not used).
    pub fn ethertype(mut self, ethertype: u16) -> Self {
        self.ethertype = ethertype.into();
        self
    }

    /// Sets the capture filter (a classic BPF program, run from the frame's first byte) that
    /// [`open`](Self::open) attaches before the ring starts capturing, so that no packet
    /// escapes it; `None`: no filter.
    pub fn filter(mut self, filter: Option<Vec<SockFilter>>) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the netfilter hook priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Asks for batched wake-ups: `poll()` wakes once `frames` frames are ready, or `timeout`
    /// after the first frame it did not wake for, whichever comes first (`None`: at each frame,
    /// as af_packet's TPACKET_V2 does). Frames are still there as soon as the kernel releases
    /// them; only the wake-ups come in batches.
    pub fn batch(mut self, batch: Option<(u32, Duration)>) -> Self {
        self.batch = batch;
        self
    }

    /// Makes the ring a member of the fanout group `fanout` (`None`: a lone ring, the
    /// default): [`open`](Self::open) joins the group (`PKTRING_IOC_JOIN_FANOUT`) before it
    /// sets the ring up, and the set-up then makes the ring a member, the group's first
    /// registering the group's hook. Each [`open`](Self::open) of the builder is one more
    /// member.
    ///
    /// Every member must select what the first one did (hook, family or EtherType, ifindex,
    /// priority) and join with the same mode and rollover, or its set-up fails with
    /// [`Error::Fanout`] (`EINVAL`); the geometry, snaplen and batching are each member's own.
    /// The member picked for a packet runs its own capture filter on it: members are expected
    /// to share one.
    pub fn fanout(mut self, fanout: Option<Fanout>) -> Self {
        self.fanout = fanout;
        self
    }

    /// Returns the request for `PKTRING_IOC_SET_RING`, after the checks the module makes on it.
    pub fn request(&self) -> Result<PktringReq, Error> {
        let frame_nr = self.geometry.frame_nr()?;
        if self.snaplen > uapi::PKTRING_MAX_SNAPLEN {
            return Err(Error::Request(format!(
                "snaplen {} is larger than {} (PKTRING_MAX_SNAPLEN)",
                self.snaplen,
                uapi::PKTRING_MAX_SNAPLEN
            )));
        }
        let ifindex = i32::try_from(self.ifindex)
            .map_err(|_| Error::Request(format!("ifindex {} is out of range", self.ifindex)))?;
        if self.hook.is_device() && ifindex == 0 {
            return Err(Error::Request(format!(
                "the {} hook needs an interface",
                if self.hook == Hook::Ingress {
                    "ingress"
                } else {
                    "egress"
                }
            )));
        }
        if self.ethertype != 0 && !self.hook.is_device() {
            return Err(Error::Request(
                "an EtherType selects packets at a device hook only (ingress, egress)".into(),
            ));
        }
        if let Some(filter) = &self.filter {
            check_filter(filter)?;
        }
        let (wake_frames, wake_usecs) = match self.batch {
            None => (0, 0),
            Some((frames, _)) if frames < 2 || frames > frame_nr => {
                return Err(Error::Request(format!(
                    "a batch is 2 to {frame_nr} frames (the ring's), not {frames}"
                )))
            }
            Some((frames, timeout)) => match u32::try_from(timeout.as_micros()) {
                Ok(usecs @ 1..=uapi::PKTRING_MAX_WAKE_USECS) => (frames, usecs),
                _ => {
                    return Err(Error::Request(format!(
                        "a batch timeout is 1 us to {} s, not {timeout:?}",
                        uapi::PKTRING_MAX_WAKE_USECS / 1_000_000
                    )))
                }
            },
        };
        Ok(PktringReq {
            size: size_of::<PktringReq>() as u32,
            version: uapi::PKTRING_VERSION,
            block_size: self.geometry.block_size,
            block_nr: self.geometry.block_nr,
            frame_size: self.geometry.frame_size,
            frame_nr,
            snaplen: self.snaplen,
            family: match (self.ethertype, self.family) {
                (1.., _) => 0,
                (0, Family::Ipv4) => uapi::PKTRING_FAMILY_IPV4,
                (0, Family::Ipv6) => uapi::PKTRING_FAMILY_IPV6,
                (0, Family::Both) => uapi::PKTRING_FAMILY_BOTH,
            },
            hook: self.hook.uapi(),
            ifindex,
            priority: self.priority,
            wake_frames,
            wake_usecs,
            ethertype: self.ethertype,
            reserved: 0,
        })
    }

    /// Opens the device, joins the fanout group if there is one, attaches the filter if there
    /// is one, sets the ring up (capture starts) and maps it.
    ///
    /// Errors of a member that a lone ring has not, or not with the same meaning, are
    /// [`Error::Fanout`]: of the join (`ENOTTY` from a module without fanout groups), and of
    /// the set-up `EINVAL` (the ring does not match the group), `ENOSPC` (the group has
    /// [`uapi::PKTRING_FANOUT_MAX_MEMBERS`]), `ENODEV` and `ENONET` (the group's hook was taken
    /// down with its device, or its namespace). The others are a lone ring's.
    pub fn open(&self) -> Result<Ring, Error> {
        let req = self.request()?;
        let flags = OFlags::RDWR | OFlags::CLOEXEC;
        let fd = open(&self.device, flags, Mode::empty()).map_err(|errno| Error::Open {
            path: self.device.clone(),
            source: errno.into(),
        })?;
        if let Some(fanout) = &self.fanout {
            // SAFETY: PKTRING_IOC_JOIN_FANOUT reads a `struct pktring_fanout`, which
            // `PktringFanout` mirrors (tests/uapi.rs).
            unsafe {
                ioctl(
                    &fd,
                    Setter::<{ uapi::PKTRING_IOC_JOIN_FANOUT }, _>::new(fanout.uapi()),
                )
            }
            .map_err(fanout_error(fanout.id, Op::JoinFanout))?;
        }
        if let Some(filter) = &self.filter {
            set_filter(fd.as_fd(), filter)?;
        }
        // SAFETY: PKTRING_IOC_SET_RING reads a `struct pktring_req`, which `PktringReq` mirrors
        // (tests/uapi.rs).
        unsafe { ioctl(&fd, Setter::<{ uapi::PKTRING_IOC_SET_RING }, _>::new(req)) }.map_err(
            |errno| match (self.fanout, errno) {
                (Some(fanout), Errno::INVAL | Errno::NOSPC | Errno::NODEV | Errno::NONET) => {
                    fanout_error(fanout.id, Op::SetRing)(errno)
                }
                // EPERM, ENOMEM, E2BIG...: as for a lone ring.
                _ => Op::SetRing.error()(errno),
            },
        )?;
        // SAFETY: PKTRING_IOC_GET_INFO writes a `struct pktring_info`, which `PktringInfo`
        // mirrors (tests/uapi.rs).
        let info: PktringInfo =
            unsafe { ioctl(&fd, Getter::<{ uapi::PKTRING_IOC_GET_INFO }, _>::new()) }
                .map_err(Op::GetInfo.error())?;
        let layout = Layout::from_info(info)?;
        // Shared, readable and writable: what the module requires, `mmap_size` bytes at 0.
        let map = MmapOptions::new()
            .len(layout.mmap_size())
            .map_raw(&fd)
            .map_err(Op::Map.error())?;
        // PANIC: a successful mmap() of a file is never at address 0.
        let base = NonNull::new(map.as_mut_ptr()).expect("mmap() returned NULL");
        // SAFETY: the mapping is `mmap_size()` bytes, page-aligned, and lives as long as the
        // reader: both belong to the `Ring`, which never hands the reader out. The only other
        // party that writes it is the module, which follows the ring protocol (its slot state
        // machine). Another mapping of the same ring would need our file: see the crate docs.
        let reader = unsafe { RingReader::from_raw(base, layout) };
        Ok(Ring {
            reader,
            _map: map,
            fd,
            fanout: self.fanout,
        })
    }
}

/// Returns a function that makes an [`Error::Fanout`] of the call `op` on a ring of group `id`.
fn fanout_error(id: u32, op: Op) -> impl Fn(Errno) -> Error {
    move |errno| Error::Fanout {
        id,
        op,
        source: errno.into(),
    }
}

/// A capturing ring of the device: its file, its mapping and its consumer.
///
/// Dropping it unmaps the ring and closes the file, which stops the capture (and leaves its
/// fanout group).
pub struct Ring {
    /// Borrows `_map` in fact; declared first, and never handed out.
    reader: RingReader<'static>,
    _map: MmapRaw,
    fd: OwnedFd,
    /// The group the ring joined, if any.
    fanout: Option<Fanout>,
}

impl Ring {
    /// Returns the layout the module reported.
    pub fn layout(&self) -> &Layout {
        self.reader.layout()
    }

    /// Returns the next frame if it is ready; see [`RingReader::try_next`].
    pub fn try_next(&mut self) -> Result<Option<Frame<'_>>, CorruptFrame> {
        self.reader.try_next()
    }

    /// Returns the next frame, sleeping in `poll()` up to `timeout` (`None`: for ever) for it.
    ///
    /// Returns `Ok(None)` on timeout, and when a signal interrupts the wait, so that the caller
    /// can look at what its handler did; [`Error::Ended`] once the capture has ended (`POLLERR`)
    /// and no frame is left.
    pub fn next_frame(&mut self, timeout: Option<Duration>) -> Result<Option<Frame<'_>>, Error> {
        let fd = self.fd.as_fd();
        let mut ended = false;
        let frame = self.reader.next_frame(timeout, |left| {
            let (ready, err) = poll_readable(fd, left)?;
            ended = err;
            // A poller told of the end stops waiting; frames it left are still taken below.
            Ok(ready && !err)
        });
        match frame {
            Ok(None) if ended => Err(Error::Ended {
                errno: get_info(fd)?.error as i32,
            }),
            frame => frame,
        }
    }

    /// Returns what `PKTRING_IOC_GET_INFO` reports now: the layout, and `error` once the capture
    /// has ended.
    pub fn info(&self) -> Result<PktringInfo, Error> {
        get_info(self.fd.as_fd())
    }

    /// Returns how many times the consumer was woken while waiting for a frame.
    pub fn wakeups(&self) -> u64 {
        self.reader.wakeups()
    }

    /// Returns the counters since they were last read, and clears them
    /// (`PKTRING_IOC_GET_STATS`).
    pub fn take_stats(&self) -> Result<PktringStats, Error> {
        // SAFETY: PKTRING_IOC_GET_STATS writes a `struct pktring_stats`, which `PktringStats`
        // mirrors (tests/uapi.rs).
        unsafe {
            ioctl(
                &self.fd,
                Getter::<{ uapi::PKTRING_IOC_GET_STATS }, _>::new(),
            )
        }
        .map_err(Op::GetStats.error())
    }
}

impl Ring {
    /// Attaches `filter` as the ring's capture filter, replacing the one it had
    /// (`PKTRING_IOC_SET_FILTER`): every packet meets either the old program or the new one.
    pub fn set_filter(&self, filter: &[SockFilter]) -> Result<(), Error> {
        set_filter(self.fd.as_fd(), filter)
    }

    /// Returns the ring's fanout group as `PKTRING_IOC_GET_FANOUT` reports it now: its `id`,
    /// `mode` and `flags` ([`Fanout::from_uapi`]), its `members` (0 once this ring has left),
    /// and `rollover`, the packets this ring took for another member that had no free frame
    /// since it was set up (never cleared). `None` for a ring in no group (`ENOENT`).
    ///
    /// Its other errors are [`Error::Fanout`] for a ring that joined a group, [`Error::Io`]
    /// for one that did not.
    pub fn fanout(&self) -> Result<Option<PktringFanout>, Error> {
        // SAFETY: PKTRING_IOC_GET_FANOUT writes a `struct pktring_fanout`, which
        // `PktringFanout` mirrors (tests/uapi.rs).
        match unsafe {
            ioctl(
                &self.fd,
                Getter::<{ uapi::PKTRING_IOC_GET_FANOUT }, _>::new(),
            )
        } {
            Ok(fanout) => Ok(Some(fanout)),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(self.fanout_error(Op::GetFanout)(errno)),
        }
    }

    /// Leaves the ring's fanout group (`PKTRING_IOC_LEAVE_FANOUT`): from its return on no
    /// packet goes to the ring, whose frames stay readable, so that its consumer can drain it
    /// and lose nothing; packets go to the members that are left, and none is lost or doubled.
    /// A ring that left captures nothing more. (Dropping the ring leaves too, with what it
    /// holds.)
    ///
    /// Returns `true` if the ring left, `false` if it was no member (`ENOENT`): a lone ring,
    /// or one that left already. Its other errors are as [`fanout`](Self::fanout)'s.
    pub fn leave_fanout(&self) -> Result<bool, Error> {
        // SAFETY: PKTRING_IOC_LEAVE_FANOUT takes no argument.
        match unsafe { ioctl(&self.fd, NoArg::<{ uapi::PKTRING_IOC_LEAVE_FANOUT }>::new()) } {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(errno) => Err(self.fanout_error(Op::LeaveFanout)(errno)),
        }
    }

    /// Returns a function that makes the error of a failed fanout call `op`:
    /// [`Error::Fanout`] if the ring joined a group, [`Error::Io`] if not.
    fn fanout_error(&self, op: Op) -> impl Fn(Errno) -> Error {
        let id = self.fanout.map(|fanout| fanout.id);
        move |errno| match id {
            Some(id) => fanout_error(id, op)(errno),
            None => op.error()(errno),
        }
    }

    /// Removes the ring's capture filter (`PKTRING_IOC_DETACH_FILTER`); `ENOENT` if it had none.
    pub fn detach_filter(&self) -> Result<(), Error> {
        // SAFETY: PKTRING_IOC_DETACH_FILTER takes no argument.
        unsafe {
            ioctl(
                &self.fd,
                NoArg::<{ uapi::PKTRING_IOC_DETACH_FILTER }>::new(),
            )
        }
        .map_err(Op::DetachFilter.error())
    }
}

/// Checks a filter as the kernel's checker would refuse it for its size: 1 to `BPF_MAXINSNS`
/// instructions.
fn check_filter(filter: &[SockFilter]) -> Result<(), Error> {
    if filter.is_empty() || filter.len() > uapi::BPF_MAXINSNS {
        return Err(Error::Request(format!(
            "a capture filter is 1 to {} instructions, not {}",
            uapi::BPF_MAXINSNS,
            filter.len()
        )));
    }
    Ok(())
}

/// `PKTRING_IOC_SET_FILTER` of `filter` on the ring's file `fd`.
fn set_filter(fd: BorrowedFd<'_>, filter: &[SockFilter]) -> Result<(), Error> {
    check_filter(filter)?;
    let prog = SockFprog {
        // PANIC: at most BPF_MAXINSNS (4096), checked above.
        len: u16::try_from(filter.len()).expect("checked length"),
        filter: filter.as_ptr(),
    };
    // SAFETY: PKTRING_IOC_SET_FILTER reads a `struct sock_fprog`, which `SockFprog` mirrors
    // (tests/uapi.rs), and then the `len` instructions it points to, which `filter` holds for
    // the whole call (the kernel copies them).
    unsafe { ioctl(fd, Setter::<{ uapi::PKTRING_IOC_SET_FILTER }, _>::new(prog)) }
        .map_err(Op::SetFilter.error())
}

impl AsFd for Ring {
    /// The ring's file, to wait for `POLLIN` on it with other files.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `PKTRING_IOC_GET_INFO` on the ring's file `fd`.
fn get_info(fd: BorrowedFd<'_>) -> Result<PktringInfo, Error> {
    // SAFETY: PKTRING_IOC_GET_INFO writes a `struct pktring_info`, which `PktringInfo` mirrors
    // (tests/uapi.rs).
    unsafe { ioctl(fd, Getter::<{ uapi::PKTRING_IOC_GET_INFO }, _>::new()) }
        .map_err(Op::GetInfo.error())
}

/// Waits up to `timeout` for `POLLIN` on `fd`; returns whether it came (`false` on timeout or
/// signal) and whether `POLLERR` came too (the capture has ended).
fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<(bool, bool)> {
    // A timeout too long for a timespec is as good as none.
    let timeout = timeout.and_then(|timeout| Timespec::try_from(timeout).ok());
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match poll(&mut fds, timeout.as_ref()) {
        Ok(ready) => Ok((ready > 0, fds[0].revents().contains(PollFlags::ERR))),
        Err(Errno::INTR) => Ok((false, false)),
        Err(errno) => Err(errno.into()),
    }
}

/// Returns the index of the network interface `name`.
pub fn ifindex(name: &str) -> Result<u32, Error> {
    let socket =
        socket(AddressFamily::INET, SocketType::DGRAM, None).map_err(Op::Interface.error())?;
    match netdevice::name_to_index(&socket, name) {
        Ok(ifindex) => Ok(ifindex),
        Err(Errno::NODEV) => Err(Error::NoInterface(name.into())),
        Err(errno) => Err(Op::Interface.error()(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_ethertypes_and_filters_make_the_request() {
        let req = RingBuilder::new()
            .hook(Hook::Egress)
            .ifindex(2)
            .ethertype(0x0806)
            .request()
            .unwrap();
        assert_eq!(
            (req.hook, req.ifindex, req.ethertype, req.family),
            (5, 2, 0x0806, 0)
        );
        let req = RingBuilder::new()
            .hook(Hook::LocalOut)
            .family(Family::Ipv6)
            .request()
            .unwrap();
        assert_eq!(
            (req.hook, req.ethertype, req.family, req.reserved),
            (3, 0, 2, 0)
        );
        assert_eq!(
            RingBuilder::new()
                .hook(Hook::PostRouting)
                .request()
                .unwrap()
                .hook,
            4
        );
        for bad in [
            RingBuilder::new().hook(Hook::Egress),
            RingBuilder::new().ethertype(0x0806),
            RingBuilder::new().hook(Hook::LocalOut).ethertype(3),
            RingBuilder::new().filter(Some(vec![])),
            RingBuilder::new().filter(Some(vec![SockFilter::default(); 4097])),
        ] {
            assert!(matches!(bad.request(), Err(Error::Request(_))), "{bad:?}");
        }
        let accept = SockFilter {
            code: 0x06,
            k: 0xffff,
            ..SockFilter::default()
        };
        assert!(RingBuilder::new()
            .filter(Some(vec![accept]))
            .request()
            .is_ok());
        assert!(Hook::Egress.is_egress() && Hook::LocalOut.starts_at_network_header());
        assert!(!Hook::Ingress.is_egress() && !Hook::Egress.starts_at_network_header());
    }

    #[test]
    fn a_fanout_group_makes_the_join_request() {
        let modes = [
            FanoutMode::Cpu,
            FanoutMode::Hash,
            FanoutMode::Queue,
            FanoutMode::Lb,
        ];
        assert_eq!(modes.map(FanoutMode::uapi), [0, 1, 2, 3]);
        for mode in modes {
            assert_eq!(FanoutMode::from_uapi(mode.uapi()), Some(mode));
        }
        assert_eq!(FanoutMode::from_uapi(4), None);
        let fanout = Fanout {
            id: 7,
            mode: FanoutMode::Lb,
            rollover: true,
        };
        assert_eq!(
            fanout.uapi(),
            PktringFanout {
                id: 7,
                mode: 3,
                flags: 1,
                ..PktringFanout::default()
            }
        );
        let alone = Fanout {
            rollover: false,
            ..fanout
        };
        assert_eq!(alone.uapi().flags, 0);
        // What GET_FANOUT reports reads back as the group, whatever its counters.
        let reported = PktringFanout {
            members: 3,
            rollover: 12,
            ..fanout.uapi()
        };
        assert_eq!(Fanout::from_uapi(&reported), Some(fanout));
        assert_eq!(Fanout::from_uapi(&alone.uapi()), Some(alone));
        for unknown in [
            PktringFanout {
                mode: 9,
                ..reported
            },
            PktringFanout {
                flags: 2,
                ..reported
            },
        ] {
            assert_eq!(Fanout::from_uapi(&unknown), None, "{unknown:?}");
        }
        // The group does not change the ring request: every member sends its own.
        let builder = RingBuilder::new().family(Family::Ipv4);
        assert_eq!(
            builder.clone().fanout(Some(fanout)).request().unwrap(),
            builder.request().unwrap()
        );
    }

    #[test]
    fn fanout_errors_say_why() {
        let error = |op, errno: Errno| {
            Error::Fanout {
                id: 42,
                op,
                source: errno.into(),
            }
            .to_string()
        };
        for (op, errno, says) in [
            (Op::JoinFanout, Errno::NOTTY, "no fanout groups (ENOTTY)"),
            (Op::JoinFanout, Errno::INVAL, "refused the join (EINVAL)"),
            (Op::JoinFanout, Errno::ALREADY, "(EALREADY)"),
            (Op::JoinFanout, Errno::BUSY, "before PKTRING_IOC_SET_RING"),
            (Op::SetRing, Errno::INVAL, "the same mode and flags"),
            (Op::SetRing, Errno::NOSPC, "256 members (ENOSPC)"),
            (Op::SetRing, Errno::NODEV, "device went away (ENODEV)"),
            (
                Op::SetRing,
                Errno::NONET,
                "namespace is going away (ENONET)",
            ),
            (Op::LeaveFanout, Errno::NOMEM, "PKTRING_IOC_LEAVE_FANOUT: "),
            (Op::GetFanout, Errno::FAULT, "PKTRING_IOC_GET_FANOUT: "),
        ] {
            let message = error(op, errno);
            assert!(
                message.starts_with("fanout group 42: ") && message.contains(says),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn a_member_fails_to_open_as_a_lone_ring_does_or_at_its_join() {
        let member = |device: &str| {
            RingBuilder::new()
                .device(device)
                .fanout(Some(Fanout {
                    id: 1,
                    mode: FanoutMode::Hash,
                    rollover: false,
                }))
                .open()
        };
        assert!(matches!(
            member("/nonexistent/pktring"),
            Err(Error::Open { .. })
        ));
        // /dev/null is no ring: the join is refused (ENOTTY), before anything is set up.
        match member("/dev/null") {
            Err(Error::Fanout {
                id: 1,
                op: Op::JoinFanout,
                source,
            }) => assert_eq!(Errno::from_io_error(&source), Some(Errno::NOTTY)),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn batches_are_checked_as_the_module_checks_them() {
        let frames = RingBuilder::new().request().unwrap().frame_nr;
        let batch = |batch| RingBuilder::new().batch(batch).request();
        let ms = Duration::from_millis;
        let req = batch(Some((8, ms(5)))).unwrap();
        assert_eq!((req.wake_frames, req.wake_usecs), (8, 5000));
        let req = batch(None).unwrap();
        assert_eq!((req.wake_frames, req.wake_usecs), (0, 0));
        assert!(batch(Some((frames, Duration::from_secs(1)))).is_ok());
        for bad in [
            (0, ms(5)),
            (1, ms(5)),
            (frames + 1, ms(5)),
            (8, Duration::ZERO),
            (8, Duration::from_nanos(999)),
            (8, Duration::from_millis(1001)),
        ] {
            assert!(
                matches!(batch(Some(bad)), Err(Error::Request(_))),
                "{bad:?}"
            );
        }
    }
}
