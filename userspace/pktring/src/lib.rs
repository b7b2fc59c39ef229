// SPDX-License-Identifier: GPL-2.0

//! The consumer side of rust_pktring: set up a packet RX ring on `/dev/pktring`, map it, and
//! take its frames in ring order.
//!
//! # The ring
//!
//! `rust_pktring_uapi.h` defines the ABI, which [`uapi`] mirrors. Each open file of the device
//! is one ring: `PKTRING_IOC_SET_RING` sets it up and starts capturing, `PKTRING_IOC_GET_INFO`
//! gives its [`Layout`], and a shared mapping of `mmap_size` bytes shows it. The ring is
//! `frame_nr` frames (*slots*) laid out as af_packet's TPACKET_V2 ring lays them out, each a
//! header ([`uapi::PktringFrame`], a `tpacket2_hdr`), a `sockaddr_ll` at `sll_offset` and the
//! packet from its link-layer header at `tp_mac` (from its network header, `tp_mac == tp_net`,
//! when it has none: always at `LOCAL_OUT` and `POST_ROUTING`). A capture filter
//! ([`RingBuilder::filter`], [`Ring::set_filter`]) sees the packet from the same byte.
//!
//! `tp_status` alone says who owns a slot: `TP_STATUS_KERNEL` (0), the kernel, which may fill
//! it; anything else (with `TP_STATUS_USER`), user space, until it stores `TP_STATUS_KERNEL`
//! back. The kernel fills slots in ring order, from slot 0, on many CPUs at once: slot 1 may be
//! complete while slot 0 is still being copied. So the consumer keeps a *head*, the next slot
//! in ring order, and only ever takes the frame there:
//!
//! 1. load the head's `tp_status` with acquire ordering; if it is 0, the frame is not ready
//!    (wait for `POLLIN`, look again);
//! 2. read the frame: the acquire load made every byte the kernel wrote before its release
//!    store of the status visible;
//! 3. *release* it: store `TP_STATUS_KERNEL` with release ordering, so that the reads are done
//!    before the kernel can see the slot free; advance the head.
//!
//! [`RingReader`] does exactly this over any memory with the layout; [`Ring`] is a reader over
//! the device's mapping; [`fake::FakeRing`] is one over plain memory, with producers that
//! follow the module's protocol, for tests. A [`Frame`] is a borrowed view of one slot; dropping
//! it releases the slot.
//!
//! # Examples
//!
//! Capture ten packets (needs the module and root):
//!
//! ```no_run
//! use pktring::{Family, RingBuilder};
//! use std::time::Duration;
//!
//! let mut ring = RingBuilder::new().family(Family::Ipv4).open()?;
//! let mut seen = 0;
//! while seen < 10 {
//!     let Some(frame) = ring.next_frame(Some(Duration::from_secs(1)))? else {
//!         continue;
//!     };
//!     println!(
//!         "cpu {} queue {:?}: {} of {} bytes, EtherType {:#06x}",
//!         frame.cpu(),
//!         frame.rx_queue(),
//!         frame.data().len(),
//!         frame.wire_len(),
//!         frame.link().protocol()
//!     );
//!     seen += 1;
//! }
//! let stats = ring.take_stats()?;
//! println!("{} packets, {} dropped, {} filtered", stats.packets, stats.drops, stats.filtered);
//! # Ok::<(), pktring::Error>(())
//! ```
//!
//! The same consumer over a ring in memory, where slot 1 is published before slot 0:
//!
//! ```
//! use pktring::fake::{FakePacket, FakeRing};
//! use pktring::uapi::TP_STATUS_USER;
//! use pktring::Geometry;
//!
//! let mut ring = FakeRing::new(Geometry::default(), 0)?;
//! let (mut reader, producer) = ring.split();
//! let (mut first, mut second) = (producer.claim().unwrap(), producer.claim().unwrap());
//! first.fill(&FakePacket { data: &[1; 60], ..FakePacket::default() });
//! second.fill(&FakePacket { data: &[2; 60], ..FakePacket::default() });
//! second.release(TP_STATUS_USER);
//! assert!(reader.try_next()?.is_none(), "slot 0 is not ready: never skip ahead");
//! first.release(TP_STATUS_USER);
//! assert_eq!(reader.try_next()?.unwrap().data()[0], 1);
//! assert_eq!(reader.try_next()?.unwrap().data()[0], 2);
//! # Ok::<(), pktring::Error>(())
//! ```
//!
//! # Fanout groups
//!
//! Rings can take one capture between them as the members of a *fanout group*
//! ([`RingBuilder::fanout`], a [`Fanout`]): each ring joins the group before its set-up, which
//! makes it a member, and the group puts each packet that the members' selection takes in one
//! of them, picked by the [`FanoutMode`] (with rollover, in the next member with a free frame
//! when the one picked has none). Every member must select the same packets and join with the
//! same mode and rollover; each has its own geometry, and a consumer of its own.
//! [`Ring::fanout`] reports the group (its members, the ring's rollovers), and
//! [`Ring::leave_fanout`] takes the ring out of it: no packet comes to the ring from then on,
//! and what it holds stays readable, so that a consumer that drains it loses nothing.
//!
//! Four rings in a flow-hash group, a thread each (needs the module and root):
//!
//! ```no_run
//! use pktring::{Fanout, FanoutMode, RingBuilder};
//! use std::time::Duration;
//!
//! let group = Fanout { id: 7, mode: FanoutMode::Hash, rollover: true };
//! let builder = RingBuilder::new().fanout(Some(group));
//! let rings = (0..4).map(|_| builder.open()).collect::<Result<Vec<_>, _>>()?;
//! std::thread::scope(|scope| {
//!     for mut ring in rings {
//!         scope.spawn(move || -> Result<u64, pktring::Error> {
//!             let mut seen = 0;
//!             while seen < 1000 {
//!                 if ring.next_frame(Some(Duration::from_secs(1)))?.is_some() {
//!                     seen += 1;
//!                 }
//!             }
//!             // Nothing comes to the ring any more: take what it holds.
//!             ring.leave_fanout()?;
//!             while ring.try_next()?.is_some() {
//!                 seen += 1;
//!             }
//!             Ok(seen)
//!         });
//!     }
//! });
//! # Ok::<(), pktring::Error>(())
//! ```
//!
//! # The mapping is shared memory
//!
//! The mapping is shared with the kernel, and the crate treats it as hostile:
//!
//! - `tp_status` is only accessed atomically;
//! - a frame's header and `sockaddr_ll` are read once, by volatile reads into private copies,
//!   and checked against the layout before anything is derived from them: a frame whose
//!   `tp_mac`, `tp_snaplen` or `tp_net` point outside it, or that contradicts itself, is a
//!   [`CorruptFrame`], handed back at once, never read out of bounds;
//! - the layout from `PKTRING_IOC_GET_INFO` is checked too ([`Layout::from_info`]).
//!
//! [`Frame::data`] hands out the captured bytes as `&[u8]` into the ring, without a copy. That
//! is sound because nobody writes them while the slice exists: the module never writes a frame
//! whose `tp_status` is non-zero (it claims a slot only when its status reads
//! `TP_STATUS_KERNEL`, and its owner map keeps a slower producer from a slot handed back too
//! early), the frame is released only when the [`Frame`] is dropped, and the slice borrows the
//! [`Frame`]. The one party that could break this is a *second mapping* of the same ring that
//! writes into it: another process given the ring's file, or an `mmap` of it in this process.
//! That takes an `unsafe` call (an `mmap`, or handing the file to code outside Rust's
//! guarantees), whose author must not write the ring's frames. Should it happen anyway, the
//! bounds still hold, since they come from the checked copies; only the packet bytes could
//! change under the reader. (Opening `/dev/pktring` again makes a new ring, not a second view
//! of this one.)
//!
//! A [`Frame`] that is leaked ([`std::mem::forget`]) is not released: the kernel drops packets
//! at its slot until the reader comes round to it and takes it again. Nothing unsafe happens.

#![deny(
    unsafe_op_in_unsafe_fn,
    missing_docs,
    clippy::undocumented_unsafe_blocks
)]

use std::fmt;
use std::io;
use std::path::PathBuf;

mod device;
pub mod fake;
mod layout;
mod reader;
pub mod uapi;

pub use device::{ifindex, Family, Fanout, FanoutMode, Hook, Ring, RingBuilder, DEFAULT_DEVICE};
pub use layout::{Geometry, Layout};
pub use reader::{CorruptFrame, Frame, RingReader, Vlan};

/// The errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device could not be opened.
    #[error("{}: {source}", path.display())]
    Open {
        /// The device node.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A system call on the ring failed.
    #[error("{op}: {source}")]
    Io {
        /// The call.
        op: Op,
        /// Why.
        source: io::Error,
    },
    /// A request the module would refuse; says why.
    #[error("invalid ring request: {0}")]
    Request(String),
    /// The module reported a layout this crate cannot read safely; says why.
    #[error("unusable ring layout: {0}")]
    Layout(String),
    /// No network interface has this name.
    #[error("no network interface named {0:?}")]
    NoInterface(String),
    /// A frame was corrupt (and handed back).
    #[error(transparent)]
    Corrupt(#[from] CorruptFrame),
    /// A call on a ring of a fanout group failed for a reason of the group's: its join
    /// (`PKTRING_IOC_JOIN_FANOUT`), its set-up (`PKTRING_IOC_SET_RING`, for `EINVAL`, `ENOSPC`,
    /// `ENODEV` and `ENONET`: the errors a member has and a lone ring has not, or not with the
    /// same meaning), or `PKTRING_IOC_GET_FANOUT` or `PKTRING_IOC_LEAVE_FANOUT`. Says why.
    #[error("fanout group {id}: {}", fanout_reason(*op, source))]
    Fanout {
        /// The group's id.
        id: u32,
        /// The call.
        op: Op,
        /// Why.
        source: io::Error,
    },
    /// The capture ended for good, and every frame it delivered was read: `errno` says why
    /// (`info.error`).
    #[error("capture ended: {}", ended_reason(*.errno))]
    Ended {
        /// `ENETDOWN`, `ENONET`, or another errno the module reported.
        errno: i32,
    },
}

/// Says why a capture ended, from the errno the module reported in `info.error`.
pub fn ended_reason(errno: i32) -> String {
    match rustix::io::Errno::from_raw_os_error(errno) {
        rustix::io::Errno::NETDOWN => "the interface went away (ENETDOWN)".into(),
        rustix::io::Errno::NONET => "the network namespace was dismantled (ENONET)".into(),
        other => format!("{other}"),
    }
}

/// Says why a fanout call failed, for [`Error::Fanout`].
fn fanout_reason(op: Op, source: &io::Error) -> String {
    use rustix::io::Errno;
    match (op, Errno::from_io_error(source)) {
        (Op::JoinFanout, Some(Errno::NOTTY)) => {
            "this rust_pktring has no fanout groups (ENOTTY)".into()
        }
        (Op::JoinFanout, Some(Errno::INVAL)) => {
            "the module refused the join (EINVAL): a mode or flag it does not know".into()
        }
        (Op::JoinFanout, Some(Errno::ALREADY)) => {
            "the ring's file joined a group already (EALREADY)".into()
        }
        (Op::JoinFanout, Some(Errno::BUSY)) => "the ring is set up already (EBUSY): a ring \
                                                joins before PKTRING_IOC_SET_RING"
            .into(),
        (Op::SetRing, Some(Errno::INVAL)) => "the ring does not match the group's members \
                                              (EINVAL): every member must select the same \
                                              packets (hook, family or EtherType, ifindex, \
                                              priority) and join with the same mode and flags"
            .into(),
        (Op::SetRing, Some(Errno::NOSPC)) => format!(
            "the group is full: it has {} members (ENOSPC)",
            uapi::PKTRING_FANOUT_MAX_MEMBERS
        ),
        (Op::SetRing, Some(Errno::NODEV)) => {
            "the group has ended: its device went away (ENODEV)".into()
        }
        (Op::SetRing, Some(Errno::NONET)) => {
            "the group has ended: its network namespace is going away (ENONET)".into()
        }
        _ => format!("{op}: {source}"),
    }
}

/// A system call on the ring, in [`Error::Io`] and [`Error::Fanout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `PKTRING_IOC_SET_RING`.
    SetRing,
    /// `PKTRING_IOC_GET_INFO`.
    GetInfo,
    /// `PKTRING_IOC_GET_STATS`.
    GetStats,
    /// `PKTRING_IOC_SET_FILTER`.
    SetFilter,
    /// `PKTRING_IOC_DETACH_FILTER`.
    DetachFilter,
    /// `PKTRING_IOC_JOIN_FANOUT`.
    JoinFanout,
    /// `PKTRING_IOC_GET_FANOUT`.
    GetFanout,
    /// `PKTRING_IOC_LEAVE_FANOUT`.
    LeaveFanout,
    /// `mmap()` of the ring.
    Map,
    /// Waiting for a frame: `poll()`, or the wait function of [`RingReader::next_frame`].
    Poll,
    /// `SIOCGIFINDEX`, looking up an interface.
    Interface,
}

impl Op {
    /// Returns a function that makes an [`Error::Io`] of this call.
    fn error<E: Into<io::Error>>(self) -> impl Fn(E) -> Error {
        move |source| Error::Io {
            op: self,
            source: source.into(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::SetRing => "PKTRING_IOC_SET_RING",
            Op::GetInfo => "PKTRING_IOC_GET_INFO",
            Op::GetStats => "PKTRING_IOC_GET_STATS",
            Op::SetFilter => "PKTRING_IOC_SET_FILTER",
            Op::DetachFilter => "PKTRING_IOC_DETACH_FILTER",
            Op::JoinFanout => "PKTRING_IOC_JOIN_FANOUT",
            Op::GetFanout => "PKTRING_IOC_GET_FANOUT",
            Op::LeaveFanout => "PKTRING_IOC_LEAVE_FANOUT",
            Op::Map => "mmap",
            Op::Poll => "poll",
            Op::Interface => "SIOCGIFINDEX",
        })
    }
}
