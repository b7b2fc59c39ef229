// SPDX-License-Identifier: GPL-2.0

//! rust_pktring: an mmap-able packet RX ring, filled by a netfilter hook on every CPU.
//!
//! This is the receive ring of af_packet's `tpacket_rcv()` (TPACKET_V2), on a misc device, with
//! the producer race fixed the way upstream fixed it: a bitmap with one owner bit per slot,
//! claimed by test-and-set under the ring lock, and a release that stores `tp_status` and
//! clears the owner bit together, under the lock again.
//!
//! # The ABI
//!
//! `rust_pktring_uapi.h` defines it. Each open file of `/dev/pktring` is one ring:
//! `PKTRING_IOC_SET_RING` validates the geometry and capture selection, allocates the ring and
//! starts capturing; `mmap()` of exactly `info.mmap_size` bytes at offset 0, shared, not
//! executable, maps it; `poll()` reports `POLLIN | POLLRDNORM` when the consumer's next frame
//! is ready (see "Readiness" below);
//! `PKTRING_IOC_GET_STATS` returns and clears the counters; `PKTRING_IOC_SET_FILTER` and
//! `PKTRING_IOC_DETACH_FILTER` set and remove a classic BPF capture filter, before or during
//! the capture (see "The capture filter" below); `PKTRING_IOC_JOIN_FANOUT`, before set-up, makes
//! the ring a member of a fanout group, `PKTRING_IOC_GET_FANOUT` reports on it and
//! `PKTRING_IOC_LEAVE_FANOUT` leaves it (see "Fanout" below). The capture stops, and the ring is
//! freed, when the file is released: once it is closed and no longer mapped (a mapping holds a
//! reference to its file).
//!
//! Errors: `EINVAL` for a bad request or mapping, `EBUSY` for a second set-up, `EPERM` for a
//! set-up without `CAP_NET_RAW` (see below) or an executable mapping, `ENOTTY` for an unknown
//! ioctl, `EFAULT` for a bad pointer, `ENODEV` for an ingress hook on a device that is not in the
//! ring's namespace, `ENONET` for a set-up in a namespace that is being dismantled, `E2BIG` once
//! netfilter's 1024 hooks of one hook point are taken; for fanout, `EALREADY` for a second join,
//! `ENOSPC` for a full group, `ENOENT` for no group (the header lists them all). An open ring
//! pins the module: `rmmod` fails (the kernel reports `EAGAIN`, "in use").
//!
//! A complete consumer:
//!
//! ```c
//! #include <fcntl.h>
//! #include <poll.h>
//! #include <stdio.h>
//! #include <sys/ioctl.h>
//! #include <sys/mman.h>
//! #include "rust_pktring_uapi.h"
//!
//! int main(void)
//! {
//!     struct pktring_req req = {
//!         .size = sizeof(req), .version = PKTRING_VERSION,
//!         .block_size = 4096, .block_nr = 64, .frame_size = 2048, .frame_nr = 128,
//!         .family = PKTRING_FAMILY_BOTH, .hook = PKTRING_HOOK_PRE_ROUTING,
//!     };
//!     struct pktring_info info;
//!     struct pktring_stats st;
//!     int fd = open("/dev/pktring", O_RDWR);
//!
//!     if (fd < 0 || ioctl(fd, PKTRING_IOC_SET_RING, &req) ||
//!         ioctl(fd, PKTRING_IOC_GET_INFO, &info))
//!         return perror("pktring"), 1;
//!     unsigned char *ring = mmap(NULL, info.mmap_size, PROT_READ | PROT_WRITE,
//!                    MAP_SHARED, fd, 0);
//!     if (ring == MAP_FAILED)
//!         return perror("mmap"), 1;
//!
//!     for (unsigned int i = 0, n = 0; n < 10; i = (i + 1) % info.frame_nr, n++) {
//!         unsigned int fpb = info.block_size / info.frame_size;
//!         struct pktring_frame *f = (void *)(ring + (i / fpb) * info.block_size +
//!                            (i % fpb) * info.frame_size);
//!         struct pollfd pfd = { .fd = fd, .events = POLLIN };
//!
//!         while (!(__atomic_load_n(&f->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
//!             poll(&pfd, 1, -1);
//!         printf("cpu %u queue %u: %u bytes, first byte 0x%02x\n", f->cpu,
//!                f->rx_queue, f->tp_len, ((unsigned char *)f)[f->tp_mac]);
//!         __atomic_store_n(&f->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
//!     }
//!     ioctl(fd, PKTRING_IOC_GET_STATS, &st);
//!     printf("%llu packets, %llu dropped\n", st.packets, st.drops);
//!     return 0;
//! }
//! ```
//!
//! # Slot ownership
//!
//! Every slot of the ring is in one of three states:
//!
//! | state                 | `tp_status`          | owner bit | who may write the frame        |
//! |-----------------------|----------------------|-----------|--------------------------------|
//! | free                  | `TP_STATUS_KERNEL`   | clear     | nobody; a producer may claim it |
//! | claimed by a producer | `TP_STATUS_KERNEL`   | set       | that producer alone, unlocked  |
//! | owned by user space   | `TP_STATUS_USER \| …` | clear    | user space alone               |
//!
//! - *claim* (free -> claimed), under the ring lock: the slot at the head must read
//!   `TP_STATUS_KERNEL` and have its owner bit clear; the producer sets the bit and advances
//!   the head. Otherwise the packet is dropped and counted. The owner bit is what tells a free
//!   slot from one that a slower producer claimed one lap earlier and is still copying into,
//!   without ever publishing a non-zero `tp_status` that user space (libpcap treats any non-zero
//!   status as ready) would take for a finished frame.
//! - *fill*, without the lock: the producer copies the packet and writes the header.
//! - *release* (claimed -> owned by user space), under the ring lock again: `tp_status` is
//!   stored with release ordering and the owner bit cleared, as one step; then pollers are
//!   woken if the release frontier moved (see below).
//! - *return* (owned by user space -> free): user space stores `TP_STATUS_KERNEL`, with
//!   release ordering, when done with the frame. The kernel never trusts anything else it reads
//!   back from the mapping.
//!
//! # Readiness
//!
//! The *release frontier* is the oldest slot claimed and not yet released, or the head when no
//! slot is in flight. A consumer that has read everything waits there: the slots after it may be
//! released already, but it takes frames in ring order. `poll()` reports readable while the frame
//! before the frontier belongs to user space, and a release wakes pollers only when it moves the
//! frontier. With batched wake-ups (`wake_frames`, `wake_usecs` in the request) the frontier is
//! announced to pollers only once that many frames are ready, or by a timer `wake_usecs` after
//! the first frame that was not announced, and `poll()` judges by the announced frontier.
//! `poll()` takes no ring lock: the lock's holder stores the announced frontier, and whether
//! every slot was claimed since, in one atomic word that `poll()` reads before and after it
//! tests the frame (`Ring::readable`), so a consumer that has caught up does not spin against
//! the producers.
//!
//! # The capture filter
//!
//! The file's [`FilterSlot`] holds the program, if any. The hook runs it on every packet the
//! selection takes, before `claim()`, from the byte the frame would start at: a rejected packet
//! takes no slot, copies nothing, takes no ring lock, and is counted in `filtered` (an atomic
//! of the ring, not the locked counters); an accepted one is captured with at most as many
//! bytes as the program returned. A new program replaces the old one at once; the old one is
//! destroyed after an RCU grace period, which the replacing ioctl waits for with no lock held.
//!
//! # Fanout
//!
//! A file that joined a group before `PKTRING_IOC_SET_RING` does not register a hook for its
//! ring: set-up makes the ring a member of the group ([`fanout`]), whose one hook picks a member
//! for each packet; the file's capture holds the ring's [`Membership`] instead of a hook, and
//! releasing it leaves the group, if `PKTRING_IOC_LEAVE_FANOUT` did not (after which the ring
//! stays readable and is filled no more). The join waits until it is set up because a ring that
//! swapped its own hook for the group's would see some packets twice or miss some in between.
//!
//! # Introspection
//!
//! `/proc/PID/fdinfo/FD` of an open `/dev/pktring` shows the ring: its state, namespace,
//! filter, fanout group, hook, selection, geometry, and its counters since it was set up.
//! `/proc/pktring` lists every open file of the device in the reader's network namespace, one
//! line each, with the group it is a member of, as `/proc/net/packet` lists sockets
//! (`pktring list` reads it). The registration keeps a
//! [`Registry`] of the open files for it.
//!
//! # Privilege and namespaces
//!
//! As for an af_packet socket: a ring captures in the network namespace of the process that
//! opened the file (the file keeps a passive reference to it, which does not keep it alive), and
//! setting it up needs `CAP_NET_RAW` in the user namespace that owns that network namespace,
//! checked by `PKTRING_IOC_SET_RING` against the credentials the file was opened with. When the
//! namespace is dismantled, or the device of an ingress ring goes away, the hook is taken down,
//! `info.error` says why (`ENONET`, `ENETDOWN`) and `poll()` reports `POLLERR` from then on.
//!
//! # Locks
//!
//! In this order, and never the other way round:
//!
//! 0. `Registry::files`, a mutex taken by `open` (which allocates the file's entry under it),
//!    `release` and a read of `/proc/pktring` only, with no other lock held; the listing takes
//!    3 and 4 under it, one at a time, and never drops the last reference to a capture there;
//! 1. `Fanout::groups`, a mutex taken by the set-up of a fanout member and by the release of its
//!    capture, with no other lock held. A group's hook is registered and unregistered (RTNL),
//!    its member arrays are allocated and the RCU grace periods after replacing one waited for
//!    under it: neither `mmap` nor the hook nor the netdevice notifier takes it;
//! 2. the mmap lock (taken by the VFS around `mmap`);
//! 3. `RingFile::state`, a spinlock taken in process context only, and only to look at or
//!    swap the state: nothing is allocated, copied to or from user space, registered or
//!    unregistered, and no RCU grace period is waited for under it;
//! 4. the ring lock (`Ring::inner`, a BH-safe spinlock that the hook takes in softirq context on
//!    any CPU): the claim and release of a slot, the counters, the announced frontier (which
//!    `poll()` reads without it, from a word that its holder stores: `Ring::readable`). A fanout
//!    group's producer holds one member's ring lock at a time, never two;
//! 5. the batch timer's hrtimer base lock (the timer is set and cancelled under 4; its handler
//!    runs without it and takes 4), and the readers' wait queue lock (taken to wake pollers,
//!    with 4 released).
//!
//! The RTNL lock is taken by hook registration and its drop, with none of the above held but 1,
//! and by the netdevice notifier that ends a capture, which only takes the wait queue lock under
//! it. Set-up therefore builds the ring and registers its hook (or joins its group) with none of
//! 0 and 2-5 held and installs them under 3; the capture is dropped when the file is released,
//! with no lock held either. User memory is only touched with none of 3-5 held, and nothing is
//! allocated under them. A filter is made from user memory and swapped in, and the RCU grace
//! period before the old one is destroyed waited for, with none of 1-5 held; the hook runs it
//! under none of them either. fdinfo takes 3, then 4, one at a time, and prints with neither
//! held.

use kernel::bindings;
use kernel::c_str;
use kernel::fs::File;
use kernel::miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration};
use kernel::mm::virt::{flags as vm_flags, VmaNew};
use kernel::net::filter::{FilterSlot, SocketFilter};
use kernel::net::namespace::{Capability, Namespace, PassiveRef};
use kernel::net::netfilter::{Family, HookOptions, HookPoint, Registration};
use kernel::prelude::*;
use kernel::proc::{ProcFile, ProcShow};
use kernel::rbtree::RBTree;
use kernel::seq_file::SeqFile;
use kernel::seq_print;
use kernel::sync::poll::{events, PollTable};
use kernel::sync::{new_mutex, new_spinlock, Arc, Mutex, SpinLock};

mod fanout;
mod ring;
mod uapi;

use fanout::{Fanout, Membership};
use ring::{Readers, Ring};
use uapi::{FanoutRequest, Protocols, RingRequest, Selection};

module! {
    type: PktRingModule,
    name: "rust_pktring",
    author: "rust_pktring developers",
    description: "mmap-able packet RX ring filled by a netfilter hook",
    license: "GPL",
}

struct PktRingModule {
    /// Declared first so that it goes first: no new file is opened once the listing is gone.
    _misc: Pin<KBox<MiscDeviceRegistration<RingFile>>>,
    _proc: Pin<KBox<ProcFile<Listing>>>,
}

impl kernel::Module for PktRingModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let fanout = Arc::pin_init(Fanout::new(), GFP_KERNEL)?;
        let registry = Arc::pin_init(
            pin_init!(Registry {
                files <- new_mutex!(Files { next: 0, map: RBTree::new() }, "pktring_files"),
                fanout,
            }),
            GFP_KERNEL,
        )?;
        let proc = KBox::pin_init(
            ProcFile::register(c_str!("pktring"), Listing(registry.clone())),
            GFP_KERNEL,
        )?;
        let opts = MiscDeviceOptions {
            name: c_str!("pktring"),
        };
        let misc = KBox::pin_init(MiscDeviceRegistration::register(opts, registry), GFP_KERNEL)?;
        if cfg!(pktring_test_no_owner_map) {
            pr_warn!("TEST BUILD: rx_owner_map disabled, producers WILL corrupt frames\n");
        }
        pr_info!("/dev/pktring ready (minor {})\n", misc.minor());
        Ok(Self {
            _misc: misc,
            _proc: proc,
        })
    }
}

impl Drop for PktRingModule {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}

/// A ring that is capturing: what fills it, and the ring.
struct Capture {
    /// Declared first so that it is dropped first: unregistering the hook, or leaving the group,
    /// waits for producers in flight, after which the ring may go.
    fill: Fill,
    ring: Arc<Ring>,
}

/// What fills a ring: a hook of its own, or its fanout group's.
enum Fill {
    Hook {
        _registration: Pin<KBox<Registration<Ring>>>,
    },
    Group(Membership),
}

impl Capture {
    /// Builds a ring for `req` that runs `filter`, and registers its hook in `net`, or joins the
    /// fanout group `join` in `net` (through `fanout`). May sleep, takes the RTNL lock and lock 1,
    /// allocates up to `PKTRING_MAX_RING_BYTES`: call it with no lock held.
    fn new(
        net: &Namespace,
        req: &RingRequest,
        filter: Arc<FilterSlot>,
        readers: Arc<Readers>,
        join: Option<(&Arc<Fanout>, &FanoutRequest)>,
    ) -> Result<Arc<Self>> {
        let ring = Ring::new(req.layout(), req.selection(), req.batch(), filter, readers)?;
        let opts = hook_options(req.selection());
        let fill = match join {
            None => Fill::Hook {
                _registration: KBox::pin_init(
                    Registration::register(net, opts, ring.clone()),
                    GFP_KERNEL,
                )?,
            },
            Some((fanout, join)) => {
                Fill::Group(fanout.join(net, join, opts, req.selection(), &ring)?)
            }
        };
        Ok(Arc::new(Self { fill, ring }, GFP_KERNEL)?)
    }

    /// Returns the ring's place in its fanout group, if it is a member of one.
    fn membership(&self) -> Option<&Membership> {
        match &self.fill {
            Fill::Hook { .. } => None,
            Fill::Group(membership) => Some(membership),
        }
    }
}

/// Returns the error of `errno`, for the errors the kernel crate has no name for.
pub(crate) fn errno(errno: u32) -> Error {
    Error::from_errno(-(errno as i32))
}

/// Returns where the hook of `selection` is registered.
fn hook_options(selection: &Selection) -> HookOptions {
    let inet = match selection.protocols {
        Protocols::Ip {
            ipv4: true,
            ipv6: false,
        } => Family::Ipv4,
        Protocols::Ip {
            ipv4: false,
            ipv6: true,
        } => Family::Ipv6,
        _ => Family::Inet,
    };
    let (family, point, ifindex) = match selection.hook {
        uapi::Hook::Ingress => (Family::Netdev, HookPoint::Ingress, selection.ifindex),
        uapi::Hook::Egress => (Family::Netdev, HookPoint::Egress, selection.ifindex),
        uapi::Hook::PreRouting => (inet, HookPoint::PreRouting, 0),
        uapi::Hook::LocalIn => (inet, HookPoint::LocalIn, 0),
        uapi::Hook::LocalOut => (inet, HookPoint::LocalOut, 0),
        uapi::Hook::PostRouting => (inet, HookPoint::PostRouting, 0),
    };
    HookOptions {
        family,
        point,
        priority: selection.priority,
        ifindex,
    }
}

/// The name fdinfo and `/proc/pktring` give what a ring captures: `ipv4`, `ipv6`, `both`, `all`
/// or the EtherType as `0x0806`.
fn protocols_name(protocols: &Protocols) -> ProtocolsName {
    ProtocolsName(*protocols)
}

/// What [`protocols_name`] returns: formats as the name, so that nothing is allocated.
struct ProtocolsName(Protocols);

impl core::fmt::Display for ProtocolsName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            Protocols::Ip {
                ipv4: true,
                ipv6: false,
            } => "ipv4",
            Protocols::Ip {
                ipv4: false,
                ipv6: true,
            } => "ipv6",
            Protocols::Ip { .. } => "both",
            Protocols::All => "all",
            Protocols::EtherType(t) => return write!(f, "0x{:04x}", t),
        };
        f.pad(name)
    }
}

/// Where a file is in its life: no ring (with the fanout group it joined, if any), one being set
/// up, or capturing.
enum State {
    Idle(Option<FanoutRequest>),
    SettingUp(Option<FanoutRequest>),
    Capturing(Arc<Capture>),
}

/// Every open file of `/dev/pktring`, for `/proc/pktring`: the registration's data.
#[pin_data]
struct Registry {
    /// Lock 0 of the lock order: see the crate documentation.
    #[pin]
    files: Mutex<Files>,
    /// The fanout groups.
    fanout: Arc<Fanout>,
}

/// The open files, by the order they were opened in.
struct Files {
    next: u64,
    map: RBTree<u64, Arc<FileState>>,
}

/// Writes one row of `/proc/pktring`, the header's or a file's: pid, state, hook, family,
/// ifindex, frames, frame size, packets, delivered, drops, filtered, filter, fanout.
macro_rules! listing_row {
    ($m:expr, $($field:expr),+ $(,)?) => {
        seq_print!(
            $m,
            "{:<8} {:<10} {:<12} {:<6} {:>7} {:>6} {:>6} {:>10} {:>10} {:>8} {:>10} {:>6} {}\n",
            $($field),+
        )
    };
}

/// The `fanout` column of `/proc/pktring`: the group that a file joined, or asked to join
/// before its ring is set up, as `ID:MODE` (with `,rollover` for the flag); `-` for none.
struct FanoutColumn(Option<FanoutRequest>);

impl core::fmt::Display for FanoutColumn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Some(req) = &self.0 else {
            return f.write_str("-");
        };
        write!(f, "{}:{}", req.id, req.mode.name())?;
        if req.rollover {
            f.write_str(",rollover")?;
        }
        Ok(())
    }
}

/// `/proc/pktring`.
struct Listing(Arc<Registry>);

impl ProcShow for Listing {
    /// One line for each open file in the reader's network namespace, oldest first.
    fn show(&self, m: &SeqFile) -> Result {
        let net = Namespace::current().ok_or(ENXIO)?;
        listing_row!(
            m,
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
            "fanout"
        );
        let files = self.0.files.lock();
        for (_, file) in files.map.iter() {
            if file.net.is(&net) {
                file.show_line(m);
            }
        }
        Ok(())
    }
}

/// The state of one open file of `/dev/pktring`, shared with the registry.
#[pin_data]
struct FileState {
    /// The opener's process (its thread group id), for the listing.
    pid: i32,
    /// The network namespace of the opener, which the ring captures in.
    net: PassiveRef,
    /// The file's pollers, there from `open` on, so that a `poll()` before set-up is woken too.
    readers: Arc<Readers>,
    /// The capture filter, there from `open` on, so that it can be set before the ring.
    filter: Arc<FilterSlot>,
    /// Lock 3 of the lock order: see the crate documentation.
    #[pin]
    state: SpinLock<State>,
}

/// An open file of `/dev/pktring`: its state, and its entry in the registry, taken out when the
/// file is released.
struct RingFile {
    file: Arc<FileState>,
    registry: Arc<Registry>,
    id: u64,
}

impl core::ops::Deref for RingFile {
    type Target = FileState;

    fn deref(&self) -> &FileState {
        &self.file
    }
}

impl Drop for RingFile {
    fn drop(&mut self) {
        // Taken out under lock 0 and dropped after it: the capture, if this was the last
        // reference, unregisters its hook with no lock held.
        let entry = self.registry.files.lock().map.remove(&self.id);
        drop(entry);
    }
}

impl FileState {
    /// Returns the capture, or `EINVAL` if none is set up.
    fn capture(&self) -> Result<Arc<Capture>> {
        match &*self.state.lock() {
            State::Capturing(capture) => Ok(capture.clone()),
            State::Idle(_) | State::SettingUp(_) => Err(EINVAL),
        }
    }

    /// `PKTRING_IOC_SET_RING`: reads and checks the request, checks the opener's privilege, then
    /// sets the ring up.
    fn set_ring(&self, file: &File, fanout: &Arc<Fanout>, arg: usize) -> Result {
        let req = RingRequest::from_user(arg)?;
        // An active reference while the hook is registered; none once it is.
        let net = self.net.get().ok_or(errno(bindings::ENONET))?;
        if !net.file_capable(file, Capability::NetRaw) {
            return Err(EPERM);
        }
        let join = {
            let mut state = self.state.lock();
            let State::Idle(join) = *state else {
                return Err(EBUSY);
            };
            *state = State::SettingUp(join);
            join
        };
        // Allocate and register (or join) with no lock held, then install under the state lock.
        let capture = Capture::new(
            &net,
            &req,
            self.filter.clone(),
            self.readers.clone(),
            join.as_ref().map(|join| (fanout, join)),
        );
        let mut state = self.state.lock();
        match capture {
            Ok(capture) => {
                *state = State::Capturing(capture);
                Ok(())
            }
            Err(err) => {
                *state = State::Idle(join);
                Err(err)
            }
        }
    }

    /// `PKTRING_IOC_JOIN_FANOUT`: reads and checks the request, and records it for set-up.
    fn join_fanout(&self, arg: usize) -> Result {
        let req = FanoutRequest::from_user(arg)?;
        let mut state = self.state.lock();
        match &*state {
            State::Idle(None) => {
                *state = State::Idle(Some(req));
                Ok(())
            }
            State::Idle(Some(_)) | State::SettingUp(Some(_)) => Err(errno(bindings::EALREADY)),
            State::Capturing(capture) if capture.membership().is_some() => {
                Err(errno(bindings::EALREADY))
            }
            State::SettingUp(None) | State::Capturing(_) => Err(EBUSY),
        }
    }

    /// `PKTRING_IOC_GET_FANOUT`: the group the file joined, its members, the ring's rollovers.
    fn get_fanout(&self, arg: usize) -> Result {
        let (req, members, rollover) = self.fanout().ok_or(ENOENT)?;
        uapi::write_fanout(arg, &req, members, rollover)
    }

    /// `PKTRING_IOC_LEAVE_FANOUT`: leaves the group, or undoes a join before set-up.
    fn leave_fanout(&self) -> Result {
        let capture = {
            let mut state = self.state.lock();
            match &*state {
                State::Idle(Some(_)) => {
                    *state = State::Idle(None);
                    return Ok(());
                }
                State::Capturing(capture) => capture.clone(),
                State::Idle(None) => return Err(ENOENT),
                State::SettingUp(_) => return Err(EBUSY),
            }
        };
        // With no lock held: leaving takes lock 1 and waits for a grace period.
        capture.membership().ok_or(ENOENT)?.leave()
    }

    /// Returns the fanout group the file joined, how many members it has (0 before set-up),
    /// and how many packets the ring took for other members; `None` if it joined none.
    fn fanout(&self) -> Option<(FanoutRequest, u32, u64)> {
        let capture = match &*self.state.lock() {
            State::Idle(join) | State::SettingUp(join) => return join.map(|req| (req, 0, 0)),
            State::Capturing(capture) => capture.clone(),
        };
        let membership = capture.membership()?;
        let group = membership.group();
        let members = if membership.has_left() {
            0
        } else {
            group.members()
        };
        Some((*group.request(), members, capture.ring.totals().rollover))
    }
}

impl FileState {
    /// `PKTRING_IOC_SET_FILTER` and `PKTRING_IOC_DETACH_FILTER`: makes or removes the filter,
    /// then waits, with no lock held, until the hook can no longer run the one it replaces.
    fn set_filter(&self, arg: Option<usize>) -> Result {
        let filter = arg.map(SocketFilter::from_user).transpose()?;
        let detach = filter.is_none();
        let replaced = self.filter.replace(filter)?;
        if detach && !replaced {
            return Err(ENOENT);
        }
        Ok(())
    }

    /// Returns the capture, if there is one, and the name of the state the file is in.
    fn state_name(&self) -> (Option<Arc<Capture>>, &'static str) {
        let capture = match &*self.state.lock() {
            State::Capturing(capture) => Some(capture.clone()),
            State::Idle(_) | State::SettingUp(_) => None,
        };
        let state = match (&capture, self.readers.error()) {
            (None, _) => "idle",
            (Some(capture), 0) if capture.membership().is_some_and(Membership::has_left) => "left",
            (Some(_), 0) => "capturing",
            (Some(_), bindings::ENETDOWN) => "ended ENETDOWN",
            (Some(_), bindings::ENONET) => "ended ENONET",
            (Some(_), _) => "ended",
        };
        (capture, state)
    }

    /// Writes the file's line of `/proc/pktring`. Called under lock 0, which keeps the file
    /// open: the capture reference taken here is not the last.
    fn show_line(&self, m: &SeqFile) {
        let (capture, state) = self.state_name();
        let state = state.rsplit(' ').next().unwrap_or(state);
        let filter = self.filter.insns().unwrap_or(0);
        let fanout = FanoutColumn(self.fanout().map(|(req, _, _)| req));
        let Some(capture) = capture else {
            listing_row!(m, self.pid, state, "-", "-", 0, 0, 0, 0, 0, 0, 0, filter, fanout);
            return;
        };
        let ring = &capture.ring;
        let sel = ring.selection();
        let t = ring.totals();
        listing_row!(
            m,
            self.pid,
            state,
            sel.hook.name(),
            protocols_name(&sel.protocols),
            sel.ifindex,
            ring.layout().frame_nr,
            ring.layout().frame_size,
            t.packets(),
            t.delivered,
            t.drops,
            t.filtered,
            filter,
            fanout
        );
    }

    /// Writes what fdinfo shows of the file (see the crate documentation).
    fn show(&self, m: &SeqFile) {
        let (capture, state) = self.state_name();
        seq_print!(m, "pktring-state:\t{}\n", state);
        seq_print!(m, "pktring-netns:\t{}\n", self.net.inum());
        match self.filter.insns() {
            Some(n) => seq_print!(m, "pktring-filter:\t{} instructions\n", n),
            None => seq_print!(m, "pktring-filter:\tnone\n"),
        }
        if let Some((req, members, rollover)) = self.fanout() {
            seq_print!(
                m,
                "pktring-fanout:\tid={} mode={} rollover={} members={} rolled={}\n",
                req.id,
                req.mode.name(),
                u8::from(req.rollover),
                members,
                rollover
            );
        }
        let Some(capture) = capture else {
            return;
        };
        let ring = &capture.ring;
        let sel = ring.selection();
        seq_print!(m, "pktring-hook:\t{}\n", sel.hook.name());
        seq_print!(m, "pktring-family:\t{}\n", protocols_name(&sel.protocols));
        seq_print!(m, "pktring-ifindex:\t{}\n", sel.ifindex);
        let l = ring.layout();
        seq_print!(
            m,
            "pktring-ring:\tblock_size={} block_nr={} frame_size={} frame_nr={} snaplen={}\n",
            l.block_size,
            l.block_nr,
            l.frame_size,
            l.frame_nr,
            l.snaplen
        );
        let t = ring.totals();
        seq_print!(
            m,
            "pktring-counters:\tpackets={} delivered={} drops={} filtered={}\n",
            t.packets(),
            t.delivered,
            t.drops,
            t.filtered
        );
    }
}

#[vtable]
impl MiscDevice for RingFile {
    const OWNER: &'static ThisModule = &THIS_MODULE;
    type Ptr = Pin<KBox<Self>>;
    type RegistrationData = Arc<Registry>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr> {
        let net = Namespace::current().ok_or(ENXIO)?;
        let file = Arc::pin_init(
            try_pin_init!(FileState {
                pid: kernel::current!().group_leader().pid(),
                net: net.passive(),
                readers: Readers::new()?,
                filter: Arc::new(FilterSlot::new(), GFP_KERNEL)?,
                state <- new_spinlock!(State::Idle(None), "pktring_state"),
            }),
            GFP_KERNEL,
        )?;
        let registry = misc.data().clone();
        let id = {
            let mut files = registry.files.lock();
            let id = files.next;
            files
                .map
                .try_create_and_insert(id, file.clone(), GFP_KERNEL)?;
            files.next += 1;
            id
        };
        Ok(KBox::pin(RingFile { file, registry, id }, GFP_KERNEL)?)
    }

    fn ioctl(device: Pin<&RingFile>, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::PKTRING_IOC_SET_RING => device.set_ring(file, &device.registry.fanout, arg)?,
            uapi::PKTRING_IOC_GET_INFO => {
                let capture = device.capture()?;
                uapi::write_info(arg, capture.ring.layout(), device.readers.error())?
            }
            uapi::PKTRING_IOC_GET_STATS | uapi::PKTRING_IOC_GET_STATS_V1 => {
                let stats = device.capture()?.ring.take_stats();
                uapi::write_stats(arg, &stats, cmd == uapi::PKTRING_IOC_GET_STATS_V1)?
            }
            uapi::PKTRING_IOC_SET_FILTER => device.set_filter(Some(arg))?,
            uapi::PKTRING_IOC_DETACH_FILTER => device.set_filter(None)?,
            uapi::PKTRING_IOC_JOIN_FANOUT => device.join_fanout(arg)?,
            uapi::PKTRING_IOC_GET_FANOUT => device.get_fanout(arg)?,
            uapi::PKTRING_IOC_LEAVE_FANOUT => device.leave_fanout()?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    fn mmap(device: Pin<&RingFile>, _file: &File, vma: &VmaNew) -> Result {
        let capture = device.capture()?;
        // A shared mapping, writable or not: `mmap()` clears VM_SHARED for a read-only file's.
        // A private mapping would copy on write: frames could never be handed back.
        if vma.flags() & vm_flags::MAYSHARE == 0 {
            return Err(EINVAL);
        }
        vma.try_clear_mayexec()?;
        vma.set_dontcopy();
        capture.ring.buffer().map(vma)
    }

    fn show_fdinfo(device: Pin<&RingFile>, m: &SeqFile, _file: &File) {
        device.show(m);
    }

    fn poll<'a>(device: Pin<&'a RingFile>, file: &File, table: &PollTable<'a>) -> Result<u32> {
        // Registered whether or not there is a ring yet: set-up does not wake, frames do.
        table.register_wait(file, device.get_ref().readers.queue());
        device.readers.polled();
        let mut mask = 0;
        if let Ok(capture) = device.capture() {
            if capture.ring.readable() {
                mask |= events::IN | events::RDNORM;
            }
        }
        if device.readers.error() != 0 {
            mask |= events::ERR;
        }
        Ok(mask)
    }
}
