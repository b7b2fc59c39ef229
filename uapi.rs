// SPDX-License-Identifier: GPL-2.0

//! The user-space ABI of `rust_pktring_uapi.h`: ioctl numbers; the request, info and stats
//! structures, read and written at their offsets; the frame header and `sockaddr_ll` that a
//! frame starts with; and what a request describes: the ring's [`Layout`] and the capture's
//! [`Selection`].
//!
//! Every offset and size here is asserted at compile time against the C compiler's view of the
//! header (`uapi_layout.c`, turned into `uapi_layout.rs` by the build) and, for the frame header
//! and `sockaddr_ll`, against the kernel's own `tpacket2_hdr` and `sockaddr_ll`. Nothing here
//! knows about rings, locks or hooks: the ring module depends on this one, never the reverse.

use core::mem::{offset_of, size_of};
use core::num::NonZeroUsize;
use kernel::bindings;
use kernel::ioctl::{_IO, _IOR, _IOW};
use kernel::net::skbuff::MAX_LINK_SOURCE;
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

/// The C compiler's layout of the header, generated from `uapi_layout.c` at build time.
mod c {
    include!("uapi_layout.rs");
}

/// `PKTRING_VERSION`.
pub(crate) const PKTRING_VERSION: u32 = 1;
/// `PKTRING_NO_RX_QUEUE`.
pub(crate) const PKTRING_NO_RX_QUEUE: u16 = 0xffff;
/// `PKTRING_MAX_SNAPLEN`.
const PKTRING_MAX_SNAPLEN: u32 = 262144;
/// `PKTRING_MAX_RING_BYTES`: the most memory one ring may pin.
const PKTRING_MAX_RING_BYTES: u64 = 256 << 20;
/// `PKTRING_MAX_WAKE_USECS`: the longest a batch may wait for its timer.
const PKTRING_MAX_WAKE_USECS: u32 = 1_000_000;

const PKTRING_FAMILY_IPV4: u16 = 1;
const PKTRING_FAMILY_IPV6: u16 = 2;
const PKTRING_FAMILY_BOTH: u16 = 3;

const PKTRING_HOOK_PRE_ROUTING: u16 = 0;
const PKTRING_HOOK_LOCAL_IN: u16 = 1;
const PKTRING_HOOK_INGRESS: u16 = 2;
const PKTRING_HOOK_LOCAL_OUT: u16 = 3;
const PKTRING_HOOK_POST_ROUTING: u16 = 4;
const PKTRING_HOOK_EGRESS: u16 = 5;

const PKTRING_FANOUT_CPU: u16 = 0;
const PKTRING_FANOUT_HASH: u16 = 1;
const PKTRING_FANOUT_QUEUE: u16 = 2;
const PKTRING_FANOUT_LB: u16 = 3;
const PKTRING_FANOUT_FLAG_ROLLOVER: u16 = 0x1;
/// `PKTRING_FANOUT_MAX_MEMBERS`: the most members a group may have, as af_packet's.
pub(crate) const PKTRING_FANOUT_MAX_MEMBERS: usize = 256;

/// `PKTRING_ETH_P_ALL`: the request's `ethertype` of a device hook that captures every packet.
const PKTRING_ETH_P_ALL: u32 = bindings::ETH_P_ALL;

/// `struct pktring_req`: field offsets.
mod req {
    pub(super) const SIZE_FIELD: usize = 0;
    pub(super) const VERSION: usize = 4;
    pub(super) const BLOCK_SIZE: usize = 8;
    pub(super) const BLOCK_NR: usize = 12;
    pub(super) const FRAME_SIZE: usize = 16;
    pub(super) const FRAME_NR: usize = 20;
    pub(super) const SNAPLEN: usize = 24;
    pub(super) const FAMILY: usize = 28;
    pub(super) const HOOK: usize = 30;
    pub(super) const IFINDEX: usize = 32;
    pub(super) const PRIORITY: usize = 36;
    pub(super) const WAKE_FRAMES: usize = 40;
    pub(super) const WAKE_USECS: usize = 44;
    pub(super) const ETHERTYPE: usize = 48;
    pub(super) const RESERVED: usize = 52;
    /// `sizeof(struct pktring_req)`.
    pub(super) const SIZE: usize = 56;
}

/// `struct pktring_info`: field offsets.
mod info {
    pub(super) const SIZE_FIELD: usize = 0;
    pub(super) const VERSION: usize = 4;
    pub(super) const MMAP_SIZE: usize = 8;
    pub(super) const BLOCK_SIZE: usize = 16;
    pub(super) const BLOCK_NR: usize = 20;
    pub(super) const FRAME_SIZE: usize = 24;
    pub(super) const FRAME_NR: usize = 28;
    pub(super) const HDR_LEN: usize = 32;
    pub(super) const SLL_OFFSET: usize = 36;
    pub(super) const SNAPLEN: usize = 40;
    pub(super) const ERROR: usize = 44;
    pub(super) const RESERVED: usize = 48;
    /// `sizeof(struct pktring_info)`.
    pub(super) const SIZE: usize = 64;
}

/// `struct pktring_stats`: field offsets.
mod stats {
    pub(super) const PACKETS: usize = 0;
    pub(super) const DROPS: usize = 8;
    pub(super) const FILTERED: usize = 16;
    /// `sizeof(struct pktring_stats)`.
    pub(super) const SIZE: usize = 24;
    /// The size before `filtered` was added, which `PKTRING_IOC_GET_STATS` had then.
    pub(super) const SIZE_V1: usize = 16;
}

/// Offsets and size of `struct pktring_fanout`.
mod fanout {
    pub(super) const ID: usize = 0;
    pub(super) const MODE: usize = 4;
    pub(super) const FLAGS: usize = 6;
    pub(super) const MEMBERS: usize = 8;
    pub(super) const RESERVED: usize = 12;
    pub(super) const ROLLOVER: usize = 16;
    /// `sizeof(struct pktring_fanout)`.
    pub(super) const SIZE: usize = 24;
}

/// Offsets of the `struct pktring_frame` (`tpacket2_hdr`) fields in a frame.
pub(crate) mod hdr {
    pub(crate) const STATUS: usize = 0;
    pub(crate) const LEN: usize = 4;
    pub(crate) const SNAPLEN: usize = 8;
    pub(crate) const MAC: usize = 12;
    pub(crate) const NET: usize = 14;
    pub(crate) const SEC: usize = 16;
    pub(crate) const NSEC: usize = 20;
    pub(crate) const VLAN_TCI: usize = 24;
    pub(crate) const VLAN_TPID: usize = 26;
    pub(crate) const CPU: usize = 28;
    pub(crate) const RX_QUEUE: usize = 30;
    /// `sizeof(struct pktring_frame)`, `sizeof(struct tpacket2_hdr)`.
    pub(crate) const SIZE: usize = 32;
}

/// Offsets of the `struct sockaddr_ll` fields, from the start of the `sockaddr_ll`.
pub(crate) mod sll {
    pub(crate) const FAMILY: usize = 0;
    pub(crate) const PROTOCOL: usize = 2;
    pub(crate) const IFINDEX: usize = 4;
    pub(crate) const HATYPE: usize = 8;
    /// `sll_pkttype` and `sll_halen`, one byte each.
    pub(crate) const PKTTYPE_HALEN: usize = 10;
    pub(crate) const ADDR: usize = 12;
    /// The bytes of `sll_addr`.
    pub(crate) const ADDR_LEN: usize = 8;
    /// `sizeof(struct sockaddr_ll)`.
    pub(crate) const SIZE: usize = 20;
}

/// `TPACKET_ALIGNMENT`: frames and the data in them are aligned to it.
pub(crate) const TPACKET_ALIGNMENT: usize = bindings::TPACKET_ALIGNMENT as usize;

/// `TPACKET_ALIGN()`.
pub(crate) const fn tpacket_align(len: usize) -> usize {
    (len + TPACKET_ALIGNMENT - 1) & !(TPACKET_ALIGNMENT - 1)
}

/// `sizeof(struct pktring_frame)`.
pub(crate) const FRAME_HDR_LEN: usize = hdr::SIZE;
/// Offset of the `sockaddr_ll` in a frame.
pub(crate) const SLL_OFFSET: usize = tpacket_align(hdr::SIZE);
/// `TPACKET2_HDRLEN`: the frame header and the `sockaddr_ll`, the least a frame must hold.
pub(crate) const TPACKET2_HDRLEN: usize = SLL_OFFSET + sll::SIZE;

const PKTRING_IOC_MAGIC: u32 = 0xb9;
pub(crate) const PKTRING_IOC_SET_RING: u32 = _IOW::<[u8; req::SIZE]>(PKTRING_IOC_MAGIC, 1);
pub(crate) const PKTRING_IOC_GET_INFO: u32 = _IOR::<[u8; info::SIZE]>(PKTRING_IOC_MAGIC, 2);
pub(crate) const PKTRING_IOC_GET_STATS: u32 = _IOR::<[u8; stats::SIZE]>(PKTRING_IOC_MAGIC, 3);
/// `PKTRING_IOC_GET_STATS` of programs built before `filtered`: still answered, without it.
pub(crate) const PKTRING_IOC_GET_STATS_V1: u32 = _IOR::<[u8; stats::SIZE_V1]>(PKTRING_IOC_MAGIC, 3);
/// `PKTRING_IOC_SET_FILTER`: its argument is a `struct sock_fprog`.
pub(crate) const PKTRING_IOC_SET_FILTER: u32 =
    _IOW::<[u8; size_of::<bindings::sock_fprog>()]>(PKTRING_IOC_MAGIC, 4);
pub(crate) const PKTRING_IOC_DETACH_FILTER: u32 = _IO(PKTRING_IOC_MAGIC, 5);
pub(crate) const PKTRING_IOC_JOIN_FANOUT: u32 = _IOW::<[u8; fanout::SIZE]>(PKTRING_IOC_MAGIC, 6);
pub(crate) const PKTRING_IOC_GET_FANOUT: u32 = _IOR::<[u8; fanout::SIZE]>(PKTRING_IOC_MAGIC, 7);
pub(crate) const PKTRING_IOC_LEAVE_FANOUT: u32 = _IO(PKTRING_IOC_MAGIC, 8);

// The header as the C compiler lays it out, and the kernel's frame header and `sockaddr_ll`.
const _: () = {
    assert!(req::SIZE == c::REQ_SIZE);
    assert!(req::SIZE_FIELD == c::REQ_SIZE_FIELD && req::VERSION == c::REQ_VERSION);
    assert!(req::BLOCK_SIZE == c::REQ_BLOCK_SIZE && req::BLOCK_NR == c::REQ_BLOCK_NR);
    assert!(req::FRAME_SIZE == c::REQ_FRAME_SIZE && req::FRAME_NR == c::REQ_FRAME_NR);
    assert!(req::SNAPLEN == c::REQ_SNAPLEN && req::FAMILY == c::REQ_FAMILY);
    assert!(req::HOOK == c::REQ_HOOK && req::IFINDEX == c::REQ_IFINDEX);
    assert!(req::PRIORITY == c::REQ_PRIORITY && req::RESERVED == c::REQ_RESERVED);
    assert!(req::WAKE_FRAMES == c::REQ_WAKE_FRAMES && req::WAKE_USECS == c::REQ_WAKE_USECS);
    assert!(req::ETHERTYPE == c::REQ_ETHERTYPE);

    assert!(info::SIZE == c::INFO_SIZE);
    assert!(info::SIZE_FIELD == c::INFO_SIZE_FIELD && info::VERSION == c::INFO_VERSION);
    assert!(info::MMAP_SIZE == c::INFO_MMAP_SIZE && info::BLOCK_SIZE == c::INFO_BLOCK_SIZE);
    assert!(info::BLOCK_NR == c::INFO_BLOCK_NR && info::FRAME_SIZE == c::INFO_FRAME_SIZE);
    assert!(info::FRAME_NR == c::INFO_FRAME_NR && info::HDR_LEN == c::INFO_HDR_LEN);
    assert!(info::SLL_OFFSET == c::INFO_SLL_OFFSET && info::SNAPLEN == c::INFO_SNAPLEN);
    assert!(info::ERROR == c::INFO_ERROR && info::RESERVED == c::INFO_RESERVED);

    assert!(stats::SIZE == c::STATS_SIZE);
    assert!(stats::PACKETS == c::STATS_PACKETS && stats::DROPS == c::STATS_DROPS);
    assert!(stats::FILTERED == c::STATS_FILTERED);

    assert!(fanout::SIZE == c::FANOUT_SIZE);
    assert!(fanout::ID == c::FANOUT_ID && fanout::MODE == c::FANOUT_MODE);
    assert!(fanout::FLAGS == c::FANOUT_FLAGS && fanout::MEMBERS == c::FANOUT_MEMBERS);
    assert!(fanout::RESERVED == c::FANOUT_RESERVED && fanout::ROLLOVER == c::FANOUT_ROLLOVER);

    assert!(hdr::SIZE == c::FRAME_SIZE && hdr::SIZE == size_of::<bindings::tpacket2_hdr>());
    assert!(hdr::STATUS == c::FRAME_TP_STATUS);
    assert!(hdr::STATUS == offset_of!(bindings::tpacket2_hdr, tp_status));
    assert!(hdr::LEN == c::FRAME_TP_LEN && hdr::LEN == offset_of!(bindings::tpacket2_hdr, tp_len));
    assert!(hdr::SNAPLEN == c::FRAME_TP_SNAPLEN);
    assert!(hdr::SNAPLEN == offset_of!(bindings::tpacket2_hdr, tp_snaplen));
    assert!(hdr::MAC == c::FRAME_TP_MAC && hdr::MAC == offset_of!(bindings::tpacket2_hdr, tp_mac));
    assert!(hdr::NET == c::FRAME_TP_NET && hdr::NET == offset_of!(bindings::tpacket2_hdr, tp_net));
    assert!(hdr::SEC == c::FRAME_TP_SEC && hdr::SEC == offset_of!(bindings::tpacket2_hdr, tp_sec));
    assert!(hdr::NSEC == c::FRAME_TP_NSEC);
    assert!(hdr::NSEC == offset_of!(bindings::tpacket2_hdr, tp_nsec));
    assert!(hdr::VLAN_TCI == c::FRAME_TP_VLAN_TCI);
    assert!(hdr::VLAN_TCI == offset_of!(bindings::tpacket2_hdr, tp_vlan_tci));
    assert!(hdr::VLAN_TPID == c::FRAME_TP_VLAN_TPID);
    assert!(hdr::VLAN_TPID == offset_of!(bindings::tpacket2_hdr, tp_vlan_tpid));
    // `cpu` and `rx_queue` take the four bytes of padding at the end of `tpacket2_hdr`.
    assert!(hdr::CPU == c::FRAME_CPU && hdr::RX_QUEUE == c::FRAME_RX_QUEUE);
    assert!(hdr::CPU == offset_of!(bindings::tpacket2_hdr, tp_padding));

    assert!(sll::SIZE == size_of::<bindings::sockaddr_ll>());
    assert!(sll::FAMILY == offset_of!(bindings::sockaddr_ll, sll_family));
    assert!(sll::PROTOCOL == offset_of!(bindings::sockaddr_ll, sll_protocol));
    assert!(sll::IFINDEX == offset_of!(bindings::sockaddr_ll, sll_ifindex));
    assert!(sll::HATYPE == offset_of!(bindings::sockaddr_ll, sll_hatype));
    assert!(sll::PKTTYPE_HALEN == offset_of!(bindings::sockaddr_ll, sll_pkttype));
    assert!(sll::PKTTYPE_HALEN + 1 == offset_of!(bindings::sockaddr_ll, sll_halen));
    assert!(sll::ADDR == offset_of!(bindings::sockaddr_ll, sll_addr));
    assert!(sll::ADDR + sll::ADDR_LEN == sll::SIZE && sll::ADDR_LEN <= MAX_LINK_SOURCE);

    assert!(PKTRING_IOC_SET_RING as usize == c::IOC_SET_RING);
    assert!(PKTRING_IOC_GET_INFO as usize == c::IOC_GET_INFO);
    assert!(PKTRING_IOC_GET_STATS as usize == c::IOC_GET_STATS);
    assert!(PKTRING_IOC_SET_FILTER as usize == c::IOC_SET_FILTER);
    assert!(PKTRING_IOC_DETACH_FILTER as usize == c::IOC_DETACH_FILTER);
    assert!(PKTRING_IOC_JOIN_FANOUT as usize == c::IOC_JOIN_FANOUT);
    assert!(PKTRING_IOC_GET_FANOUT as usize == c::IOC_GET_FANOUT);
    assert!(PKTRING_IOC_LEAVE_FANOUT as usize == c::IOC_LEAVE_FANOUT);
    assert!(PKTRING_VERSION as usize == c::VERSION);
    assert!(PKTRING_NO_RX_QUEUE as usize == c::NO_RX_QUEUE);
    assert!(PKTRING_MAX_SNAPLEN as usize == c::MAX_SNAPLEN);
    assert!(PKTRING_MAX_RING_BYTES as usize == c::MAX_RING_BYTES);
    assert!(PKTRING_MAX_WAKE_USECS as usize == c::MAX_WAKE_USECS);
    assert!(PKTRING_FAMILY_IPV4 as usize == c::FAMILY_IPV4);
    assert!(PKTRING_FAMILY_IPV6 as usize == c::FAMILY_IPV6);
    assert!(PKTRING_FAMILY_BOTH as usize == c::FAMILY_BOTH);
    assert!(PKTRING_HOOK_PRE_ROUTING as usize == c::HOOK_PRE_ROUTING);
    assert!(PKTRING_HOOK_LOCAL_IN as usize == c::HOOK_LOCAL_IN);
    assert!(PKTRING_HOOK_INGRESS as usize == c::HOOK_INGRESS);
    assert!(PKTRING_HOOK_LOCAL_OUT as usize == c::HOOK_LOCAL_OUT);
    assert!(PKTRING_HOOK_POST_ROUTING as usize == c::HOOK_POST_ROUTING);
    assert!(PKTRING_HOOK_EGRESS as usize == c::HOOK_EGRESS);
    assert!(PKTRING_ETH_P_ALL as usize == c::ETH_P_ALL);
    assert!(PKTRING_FANOUT_CPU as usize == c::FANOUT_CPU);
    assert!(PKTRING_FANOUT_HASH as usize == c::FANOUT_HASH);
    assert!(PKTRING_FANOUT_QUEUE as usize == c::FANOUT_QUEUE);
    assert!(PKTRING_FANOUT_LB as usize == c::FANOUT_LB);
    assert!(PKTRING_FANOUT_FLAG_ROLLOVER as usize == c::FANOUT_FLAG_ROLLOVER);
    assert!(PKTRING_FANOUT_MAX_MEMBERS == c::FANOUT_MAX_MEMBERS);
};

/// EtherTypes the capture selects, in host byte order.
pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;

/// Where the frames are in the shared buffer, and how much of a packet each may hold, as the
/// header's comment lays them out.
///
/// # Invariants
///
/// Made from a request that [`RingRequest::from_user`] accepted: `frame_nr > 0`,
/// `frame_nr == frames_per_block * block_nr`, every frame lies inside a buffer of `mmap_size()`
/// bytes, and `frame_size >= TPACKET2_HDRLEN`.
#[derive(Copy, Clone)]
pub(crate) struct Layout {
    pub(crate) block_size: usize,
    pub(crate) block_nr: usize,
    pub(crate) frame_size: usize,
    pub(crate) frame_nr: usize,
    pub(crate) frames_per_block: NonZeroUsize,
    pub(crate) snaplen: usize,
}

impl Layout {
    /// Returns the byte offset of frame `slot`, as af_packet lays frames out in blocks.
    pub(crate) fn frame_offset(&self, slot: usize) -> usize {
        (slot / self.frames_per_block) * self.block_size
            + (slot % self.frames_per_block) * self.frame_size
    }

    /// Returns the size of the mapping: every block.
    pub(crate) fn mmap_size(&self) -> usize {
        self.block_size * self.block_nr
    }
}

/// Which packets a ring captures: where its hook goes, and what the hook itself must test.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) struct Selection {
    /// The hook point.
    pub(crate) hook: Hook,
    /// Only packets that arrive on (or, at the egress hooks, leave through) this device (0:
    /// any); for a device hook, its device.
    pub(crate) ifindex: i32,
    /// The netfilter priority.
    pub(crate) priority: i32,
    /// Only these EtherTypes.
    pub(crate) protocols: Protocols,
}

/// The hook points of the request's `hook`.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum Hook {
    /// `PKTRING_HOOK_PRE_ROUTING`.
    PreRouting,
    /// `PKTRING_HOOK_LOCAL_IN`.
    LocalIn,
    /// `PKTRING_HOOK_INGRESS`: the netdev ingress of `ifindex`.
    Ingress,
    /// `PKTRING_HOOK_LOCAL_OUT`.
    LocalOut,
    /// `PKTRING_HOOK_POST_ROUTING`.
    PostRouting,
    /// `PKTRING_HOOK_EGRESS`: the netdev egress of `ifindex`.
    Egress,
}

impl Hook {
    /// Returns `true` for a device hook, registered on the device `ifindex`.
    pub(crate) fn is_device(self) -> bool {
        matches!(self, Hook::Ingress | Hook::Egress)
    }

    /// Returns `true` for the hooks on the way out, where `sll_pkttype` is `PACKET_OUTGOING`.
    pub(crate) fn is_egress(self) -> bool {
        matches!(self, Hook::LocalOut | Hook::PostRouting | Hook::Egress)
    }

    /// Returns the name the ring's fdinfo gives the hook.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hook::PreRouting => "pre-routing",
            Hook::LocalIn => "local-in",
            Hook::Ingress => "ingress",
            Hook::LocalOut => "local-out",
            Hook::PostRouting => "post-routing",
            Hook::Egress => "egress",
        }
    }
}

/// The EtherTypes a ring captures: the request's `family` and `ethertype`.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum Protocols {
    /// IPv4, IPv6 or both (`ethertype` 0).
    Ip { ipv4: bool, ipv6: bool },
    /// Every packet (`PKTRING_ETH_P_ALL`, device hooks only).
    All,
    /// Packets of this EtherType, in host byte order (device hooks only).
    EtherType(u16),
}

impl Protocols {
    /// Returns `true` if packets of EtherType `protocol` (host byte order) are captured.
    pub(crate) fn accepts(&self, protocol: u16) -> bool {
        match *self {
            Protocols::Ip { ipv4, ipv6 } => match protocol {
                ETH_P_IP => ipv4,
                ETH_P_IPV6 => ipv6,
                _ => false,
            },
            Protocols::All => true,
            Protocols::EtherType(ethertype) => protocol == ethertype,
        }
    }
}

/// Batched wake-ups: wake pollers once `frames` frames are ready, or `delay_ns` after the first
/// one they were not woken for.
///
/// # Invariants
///
/// `frames > 1` and not above the ring's frames; `delay_ns` is 1 µs to
/// `PKTRING_MAX_WAKE_USECS`.
#[derive(Copy, Clone)]
pub(crate) struct Batch {
    pub(crate) frames: usize,
    pub(crate) delay_ns: u64,
}

/// The counters of `struct pktring_stats`, since they were last read.
#[derive(Copy, Clone, Default)]
pub(crate) struct Stats {
    /// Packets written to a slot.
    pub(crate) delivered: u64,
    /// Packets dropped because the head slot was not free.
    pub(crate) drops: u64,
    /// Packets the filter rejected: no slot taken.
    pub(crate) filtered: u64,
    /// Of the delivered packets, those meant for another member of the ring's fanout group that
    /// had no free slot. Not a part of `struct pktring_stats`.
    pub(crate) rollover: u64,
}

impl Stats {
    /// Returns `struct pktring_stats`'s `packets`: every packet the selection took.
    pub(crate) fn packets(&self) -> u64 {
        self.delivered + self.drops + self.filtered
    }

    /// Adds `other`'s counts to these.
    pub(crate) fn add(&mut self, other: &Stats) {
        self.delivered += other.delivered;
        self.drops += other.drops;
        self.filtered += other.filtered;
        self.rollover += other.rollover;
    }
}

/// A `struct pktring_req` that passed every check of [`RingRequest::from_user`].
///
/// # Invariants
///
/// The checks of `from_user` hold: see there.
pub(crate) struct RingRequest {
    layout: Layout,
    selection: Selection,
    batch: Option<Batch>,
}

/// Reads the native-endian `N`-byte field at `offset` of `buf`.
fn field<const N: usize>(buf: &[u8], offset: usize) -> [u8; N] {
    let mut bytes = [0; N];
    // PANIC: callers pass the offsets of `req` with a buffer of `req::SIZE` bytes, or those of
    // `fanout` with one of `fanout::SIZE`; the assertions above keep the fields inside.
    bytes.copy_from_slice(&buf[offset..offset + N]);
    bytes
}

impl RingRequest {
    /// Reads a `struct pktring_req` from user space and checks it.
    ///
    /// `EFAULT` if it cannot be read. `EINVAL` unless: `size` and `version` are this header's,
    /// reserved fields are zero; the geometry passes af_packet's `packet_set_ring()` checks
    /// (block size positive and page-aligned, frame size at least `TPACKET2_HDRLEN` and
    /// `TPACKET_ALIGNMENT`-aligned, at least one frame per block, frames per block times blocks
    /// not overflowing and equal to the frame count); the ring is at most
    /// `PKTRING_MAX_RING_BYTES`; the snaplen at most `PKTRING_MAX_SNAPLEN`; family and hook are
    /// known, the ifindex not negative, and given (only) where the hook needs it; batched
    /// wake-ups are off, or ask for more than one frame and a timer (see [`check_batch`]).
    pub(crate) fn from_user(arg: UserPtr) -> Result<Self> {
        let buf = UserSlice::new(arg, req::SIZE)
            .reader()
            .read::<[u8; req::SIZE]>()?;
        let u32_at = |offset| u32::from_ne_bytes(field(&buf, offset));
        let u16_at = |offset| u16::from_ne_bytes(field(&buf, offset));
        let i32_at = |offset| i32::from_ne_bytes(field(&buf, offset));
        let reserved = buf[req::RESERVED..].iter().any(|&b| b != 0);
        if u32_at(req::SIZE_FIELD) as usize != req::SIZE
            || u32_at(req::VERSION) != PKTRING_VERSION
            || reserved
        {
            return Err(EINVAL);
        }
        let layout = check_geometry(
            u32_at(req::BLOCK_SIZE),
            u32_at(req::BLOCK_NR),
            u32_at(req::FRAME_SIZE),
            u32_at(req::FRAME_NR),
            u32_at(req::SNAPLEN),
        )?;
        let selection = check_selection(
            u16_at(req::FAMILY),
            u16_at(req::HOOK),
            i32_at(req::IFINDEX),
            i32_at(req::PRIORITY),
            u32_at(req::ETHERTYPE),
        )?;
        let batch = check_batch(u32_at(req::WAKE_FRAMES), u32_at(req::WAKE_USECS), &layout)?;
        // INVARIANT: every check passed.
        Ok(Self {
            layout,
            selection,
            batch,
        })
    }

    /// Returns the ring layout the request describes.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Returns what the request captures.
    pub(crate) fn selection(&self) -> &Selection {
        &self.selection
    }

    /// Returns the batched wake-ups asked for, if any.
    pub(crate) fn batch(&self) -> Option<Batch> {
        self.batch
    }
}

/// Batched wake-ups: none for `wake_frames` 0 or 1 with `wake_usecs` 0; otherwise more than one
/// frame, at most the ring's, and a timer of 1 to `PKTRING_MAX_WAKE_USECS` µs.
fn check_batch(wake_frames: u32, wake_usecs: u32, layout: &Layout) -> Result<Option<Batch>> {
    match (wake_frames, wake_usecs) {
        (0 | 1, 0) => Ok(None),
        (frames, 1..=PKTRING_MAX_WAKE_USECS)
            if frames > 1 && frames as usize <= layout.frame_nr =>
        {
            // INVARIANT: checked just above.
            Ok(Some(Batch {
                frames: frames as usize,
                delay_ns: u64::from(wake_usecs) * 1000,
            }))
        }
        _ => Err(EINVAL),
    }
}

/// The checks of af_packet's `packet_set_ring()`, and our size bounds; returns the layout.
fn check_geometry(
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    snaplen: u32,
) -> Result<Layout> {
    if block_size == 0 || block_size > i32::MAX as u32 || block_size as usize % PAGE_SIZE != 0 {
        return Err(EINVAL);
    }
    if (frame_size as usize) < TPACKET2_HDRLEN || frame_size as usize % TPACKET_ALIGNMENT != 0 {
        return Err(EINVAL);
    }
    let frames_per_block = NonZeroUsize::new((block_size / frame_size) as usize).ok_or(EINVAL)?;
    if block_nr == 0 {
        return Err(EINVAL);
    }
    match (frames_per_block.get() as u32).checked_mul(block_nr) {
        Some(n) if n == frame_nr => {}
        _ => return Err(EINVAL),
    }
    if u64::from(block_size) * u64::from(block_nr) > PKTRING_MAX_RING_BYTES {
        return Err(EINVAL);
    }
    if snaplen > PKTRING_MAX_SNAPLEN {
        return Err(EINVAL);
    }
    // INVARIANT: the frames fill `block_nr` blocks of `block_size` bytes, `frame_nr > 0`, a frame
    // holds at least `TPACKET2_HDRLEN` bytes, and the whole is bounded.
    Ok(Layout {
        block_size: block_size as usize,
        block_nr: block_nr as usize,
        frame_size: frame_size as usize,
        frame_nr: frame_nr as usize,
        frames_per_block,
        // The most a frame holds, whatever the link header: what `info.snaplen` reports.
        snaplen: (match snaplen {
            0 => PKTRING_MAX_SNAPLEN,
            snaplen => snaplen,
        } as usize)
            .min(frame_size as usize - TPACKET2_HDRLEN),
    })
}

/// The capture selection: a known hook, an ifindex where (and only where) needed, a known
/// family with `ethertype` 0, or family 0 with an EtherType at a device hook.
fn check_selection(
    family: u16,
    hook: u16,
    ifindex: i32,
    priority: i32,
    ethertype: u32,
) -> Result<Selection> {
    let hook = match hook {
        PKTRING_HOOK_PRE_ROUTING if ifindex >= 0 => Hook::PreRouting,
        PKTRING_HOOK_LOCAL_IN if ifindex >= 0 => Hook::LocalIn,
        PKTRING_HOOK_LOCAL_OUT if ifindex >= 0 => Hook::LocalOut,
        PKTRING_HOOK_POST_ROUTING if ifindex >= 0 => Hook::PostRouting,
        PKTRING_HOOK_INGRESS if ifindex > 0 => Hook::Ingress,
        PKTRING_HOOK_EGRESS if ifindex > 0 => Hook::Egress,
        _ => return Err(EINVAL),
    };
    let protocols = match (family, ethertype) {
        (PKTRING_FAMILY_IPV4 | PKTRING_FAMILY_IPV6 | PKTRING_FAMILY_BOTH, 0) => Protocols::Ip {
            ipv4: family & PKTRING_FAMILY_IPV4 != 0,
            ipv6: family & PKTRING_FAMILY_IPV6 != 0,
        },
        (0, PKTRING_ETH_P_ALL) if hook.is_device() => Protocols::All,
        (0, 1..=0xffff) if hook.is_device() => Protocols::EtherType(ethertype as u16),
        _ => return Err(EINVAL),
    };
    Ok(Selection {
        hook,
        ifindex,
        priority,
        protocols,
    })
}

/// Writes a `struct pktring_info` describing `layout` to user space; `error` is the errno that
/// ended the capture, or 0.
pub(crate) fn write_info(arg: UserPtr, layout: &Layout, error: u32) -> Result {
    let mut buf = [0u8; info::SIZE];
    let mut put = |offset: usize, bytes: &[u8]| {
        // PANIC: the offsets of `info` and their fields' sizes, which the assertions above keep
        // inside `info::SIZE`.
        buf[offset..offset + bytes.len()].copy_from_slice(bytes)
    };
    put(info::SIZE_FIELD, &(info::SIZE as u32).to_ne_bytes());
    put(info::VERSION, &PKTRING_VERSION.to_ne_bytes());
    put(info::MMAP_SIZE, &(layout.mmap_size() as u64).to_ne_bytes());
    put(info::BLOCK_SIZE, &(layout.block_size as u32).to_ne_bytes());
    put(info::BLOCK_NR, &(layout.block_nr as u32).to_ne_bytes());
    put(info::FRAME_SIZE, &(layout.frame_size as u32).to_ne_bytes());
    put(info::FRAME_NR, &(layout.frame_nr as u32).to_ne_bytes());
    put(info::HDR_LEN, &(FRAME_HDR_LEN as u32).to_ne_bytes());
    put(info::SLL_OFFSET, &(SLL_OFFSET as u32).to_ne_bytes());
    put(info::SNAPLEN, &(layout.snaplen as u32).to_ne_bytes());
    put(info::ERROR, &error.to_ne_bytes());
    UserSlice::new(arg, info::SIZE).writer().write(&buf)
}

/// Writes a `struct pktring_stats` to user space, in af_packet's terms: `packets` counts the
/// dropped packets too, and the filtered ones. With `v1`, the structure before `filtered`.
pub(crate) fn write_stats(arg: UserPtr, counters: &Stats, v1: bool) -> Result {
    let mut buf = [0u8; stats::SIZE];
    buf[stats::PACKETS..][..8].copy_from_slice(&counters.packets().to_ne_bytes());
    buf[stats::DROPS..][..8].copy_from_slice(&counters.drops.to_ne_bytes());
    buf[stats::FILTERED..][..8].copy_from_slice(&counters.filtered.to_ne_bytes());
    let size = if v1 { stats::SIZE_V1 } else { stats::SIZE };
    // PANIC: `size` is at most `stats::SIZE`.
    UserSlice::new(arg, size).writer().write_slice(&buf[..size])
}

/// How a fanout group picks the member for a packet: `struct pktring_fanout`'s `mode`.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum FanoutMode {
    /// `PKTRING_FANOUT_CPU`: the producing CPU.
    Cpu,
    /// `PKTRING_FANOUT_HASH`: the symmetric flow hash.
    Hash,
    /// `PKTRING_FANOUT_QUEUE`: the RX queue.
    Queue,
    /// `PKTRING_FANOUT_LB`: round robin.
    Lb,
}

impl FanoutMode {
    /// Returns the name fdinfo and `/proc/pktring` give the mode.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FanoutMode::Cpu => "cpu",
            FanoutMode::Hash => "hash",
            FanoutMode::Queue => "queue",
            FanoutMode::Lb => "lb",
        }
    }
}

/// A `struct pktring_fanout` of `PKTRING_IOC_JOIN_FANOUT` that passed the checks of
/// [`FanoutRequest::from_user`].
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) struct FanoutRequest {
    /// The group's id in the network namespace.
    pub(crate) id: u32,
    pub(crate) mode: FanoutMode,
    /// `PKTRING_FANOUT_FLAG_ROLLOVER`.
    pub(crate) rollover: bool,
}

impl FanoutRequest {
    /// Reads a `struct pktring_fanout` from user space and checks it: `EFAULT` if it cannot be
    /// read, `EINVAL` for an unknown mode or flag, or non-zero `members`, `reserved` or
    /// `rollover` (the fields `PKTRING_IOC_GET_FANOUT` fills in).
    pub(crate) fn from_user(arg: UserPtr) -> Result<Self> {
        let buf = UserSlice::new(arg, fanout::SIZE)
            .reader()
            .read::<[u8; fanout::SIZE]>()?;
        let u16_at = |offset| u16::from_ne_bytes(field(&buf, offset));
        if buf[fanout::MEMBERS..].iter().any(|&b| b != 0) {
            return Err(EINVAL);
        }
        let mode = match u16_at(fanout::MODE) {
            PKTRING_FANOUT_CPU => FanoutMode::Cpu,
            PKTRING_FANOUT_HASH => FanoutMode::Hash,
            PKTRING_FANOUT_QUEUE => FanoutMode::Queue,
            PKTRING_FANOUT_LB => FanoutMode::Lb,
            _ => return Err(EINVAL),
        };
        let flags = u16_at(fanout::FLAGS);
        if flags & !PKTRING_FANOUT_FLAG_ROLLOVER != 0 {
            return Err(EINVAL);
        }
        Ok(Self {
            id: u32::from_ne_bytes(field(&buf, fanout::ID)),
            mode,
            rollover: flags & PKTRING_FANOUT_FLAG_ROLLOVER != 0,
        })
    }
}

/// Writes the `struct pktring_fanout` of `PKTRING_IOC_GET_FANOUT`: the group `req` joined, its
/// `members` now, and the packets this ring took for other members since it was set up.
pub(crate) fn write_fanout(
    arg: UserPtr,
    req: &FanoutRequest,
    members: u32,
    rollover: u64,
) -> Result {
    let mode = match req.mode {
        FanoutMode::Cpu => PKTRING_FANOUT_CPU,
        FanoutMode::Hash => PKTRING_FANOUT_HASH,
        FanoutMode::Queue => PKTRING_FANOUT_QUEUE,
        FanoutMode::Lb => PKTRING_FANOUT_LB,
    };
    let flags = if req.rollover {
        PKTRING_FANOUT_FLAG_ROLLOVER
    } else {
        0
    };
    let mut buf = [0u8; fanout::SIZE];
    buf[fanout::ID..][..4].copy_from_slice(&req.id.to_ne_bytes());
    buf[fanout::MODE..][..2].copy_from_slice(&mode.to_ne_bytes());
    buf[fanout::FLAGS..][..2].copy_from_slice(&flags.to_ne_bytes());
    buf[fanout::MEMBERS..][..4].copy_from_slice(&members.to_ne_bytes());
    buf[fanout::ROLLOVER..][..8].copy_from_slice(&rollover.to_ne_bytes());
    UserSlice::new(arg, fanout::SIZE).writer().write(&buf)
}
