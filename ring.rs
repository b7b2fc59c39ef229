// SPDX-License-Identifier: GPL-2.0

//! The RX ring: its layout, its lock-protected state, and the producer path that the netfilter
//! hook runs on every CPU.
//!
//! A slot moves through these states (see the crate documentation for who may write what):
//!
//! ```text
//!   free --claim()--> claimed by one producer --release()--> owned by user space
//!    ^                                                              |
//!    +------------- user space stores TP_STATUS_KERNEL -------------+
//! ```
//!
//! `claim()` and `release()` each run under the ring lock; the copy in between does not.

use core::num::NonZeroUsize;
use kernel::bindings;
use kernel::bitmap::Bitmap;
use kernel::mm::user_shared::UserSharedBuffer;
use kernel::net::netfilter::{Hook, HookState, Verdict};
use kernel::net::skbuff::{Checksum, SkBuff};
use kernel::prelude::*;
use kernel::sync::poll::{events, PollWaitQueue};
use kernel::sync::{new_spinlock_bh, Arc, BhDisabled, SpinLockBh};

use crate::uapi::{self, RingRequest};

/// `tp_status` of a slot the kernel may fill.
const TP_STATUS_KERNEL: u32 = bindings::TP_STATUS_KERNEL;
/// `tp_status` bit of a slot that belongs to user space.
const TP_STATUS_USER: u32 = bindings::TP_STATUS_USER;

/// Offsets of the `struct pktring_frame` (`tpacket2_hdr`) fields in a frame.
mod hdr {
    pub(super) const STATUS: usize = 0;
    pub(super) const LEN: usize = 4;
    pub(super) const SNAPLEN: usize = 8;
    pub(super) const MAC: usize = 12;
    pub(super) const NET: usize = 14;
    pub(super) const SEC: usize = 16;
    pub(super) const NSEC: usize = 20;
    pub(super) const VLAN_TCI: usize = 24;
    pub(super) const VLAN_TPID: usize = 26;
    pub(super) const CPU: usize = 28;
    pub(super) const RX_QUEUE: usize = 30;
    /// `sizeof(struct tpacket2_hdr)`.
    pub(super) const SIZE: usize = 32;
}

/// Offsets of the `struct sockaddr_ll` fields, from the start of the `sockaddr_ll`.
mod sll {
    pub(super) const FAMILY: usize = 0;
    pub(super) const PROTOCOL: usize = 2;
    pub(super) const IFINDEX: usize = 4;
    pub(super) const HATYPE: usize = 8;
    /// `sll_pkttype` and `sll_halen`, one byte each.
    pub(super) const PKTTYPE_HALEN: usize = 10;
    pub(super) const ADDR: usize = 12;
    /// `sizeof(struct sockaddr_ll)`.
    pub(super) const SIZE: usize = 20;
}

/// `TPACKET_ALIGNMENT`: frames and the data in them are aligned to it.
pub(crate) const TPACKET_ALIGNMENT: usize = bindings::TPACKET_ALIGNMENT as usize;

/// `TPACKET_ALIGN()`.
const fn tpacket_align(len: usize) -> usize {
    (len + TPACKET_ALIGNMENT - 1) & !(TPACKET_ALIGNMENT - 1)
}

/// `sizeof(struct pktring_frame)`.
pub(crate) const FRAME_HDR_LEN: usize = hdr::SIZE;
/// Offset of the `sockaddr_ll` in a frame.
pub(crate) const SLL_OFFSET: usize = tpacket_align(hdr::SIZE);
/// `TPACKET2_HDRLEN`: the frame header and the `sockaddr_ll`, the least a frame must hold.
pub(crate) const TPACKET2_HDRLEN: usize = SLL_OFFSET + sll::SIZE;

/// Where the frames are in the shared buffer, and how much of a packet each may hold.
///
/// # Invariants
///
/// Made from a request that `RingRequest::validate` accepted: `frame_nr > 0`, every frame lies
/// inside a buffer of `mmap_size()` bytes, `frame_size >= TPACKET2_HDRLEN`.
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
    fn frame_offset(&self, slot: usize) -> usize {
        (slot / self.frames_per_block) * self.block_size
            + (slot % self.frames_per_block) * self.frame_size
    }

    /// Returns the size of the mapping: every block.
    pub(crate) fn mmap_size(&self) -> usize {
        self.block_size * self.block_nr
    }
}

/// Packet counters since they were last read.
#[derive(Copy, Clone, Default)]
pub(crate) struct Stats {
    /// Packets written to a slot.
    pub(crate) delivered: u64,
    /// Packets dropped because the head slot was not free.
    pub(crate) drops: u64,
}

/// The fields of a [`Ring`] protected by its lock.
struct RingInner {
    /// The next slot to claim.
    head: usize,
    /// `rx_owner_map`: one bit per slot, set from `claim()` to `release()`, while a producer owns
    /// the slot but its `tp_status` still reads `TP_STATUS_KERNEL`.
    owner_map: Bitmap,
    stats: Stats,
}

/// Which packets a ring captures, beyond what the hook registration selects.
#[derive(Copy, Clone)]
pub(crate) struct Filter {
    /// Only packets that arrive on this device (0: any).
    pub(crate) ifindex: i32,
    /// Only these EtherTypes (netdev ingress sees every protocol; inet hooks select by family).
    pub(crate) ipv4: bool,
    pub(crate) ipv6: bool,
}

/// A ring: the memory shared with user space and the state the producers share.
#[pin_data]
pub(crate) struct Ring {
    buf: UserSharedBuffer,
    layout: Layout,
    filter: Filter,
    #[pin]
    inner: SpinLockBh<RingInner>,
    #[pin]
    readers: PollWaitQueue,
}

/// A slot a producer has claimed: it alone writes the frame until it releases it.
struct Claim {
    slot: usize,
    offset: usize,
    /// `TP_STATUS_LOSING` if packets were dropped since the stats were last read.
    losing: u32,
}

impl Ring {
    /// Allocates a ring for a validated request. May sleep; takes no lock.
    pub(crate) fn new(req: &RingRequest) -> Result<Arc<Self>> {
        let layout = req.layout();
        let buf = UserSharedBuffer::new(layout.mmap_size())?;
        let owner_map = Bitmap::new(layout.frame_nr, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                buf,
                layout,
                filter: req.filter(),
                inner <- new_spinlock_bh!(
                    RingInner {
                        head: 0,
                        owner_map,
                        stats: Stats::default(),
                    },
                    "pktring_ring"
                ),
                readers <- kernel::new_poll_wait_queue!("pktring_readers"),
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn buffer(&self) -> &UserSharedBuffer {
        &self.buf
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn readers(&self) -> &PollWaitQueue {
        &self.readers
    }

    /// Returns the counters and clears them. Process context.
    pub(crate) fn take_stats(&self) -> Stats {
        core::mem::take(&mut self.inner.lock().stats)
    }

    /// Returns `true` if the frame before the head belongs to user space, as af_packet's poll
    /// decides readability. Process context.
    pub(crate) fn readable(&self) -> bool {
        let head = self.inner.lock().head;
        let prev = head.checked_sub(1).unwrap_or(self.layout.frame_nr - 1);
        let status = self
            .buf
            .load_acquire_u32(self.layout.frame_offset(prev) + hdr::STATUS);
        matches!(status, Ok(status) if status != TP_STATUS_KERNEL)
    }

    /// Claims the head slot for one packet, or returns `None` (a drop) if it is not free.
    ///
    /// A slot is free when user space has handed it back (`tp_status` is `TP_STATUS_KERNEL`)
    /// *and* no producer owns it: a producer that claimed it one lap ago may still be copying,
    /// with `tp_status` still reading `TP_STATUS_KERNEL`. Both are checked under the lock, never
    /// from an unlocked peek.
    fn claim(&self, bh: &BhDisabled<'_>) -> Option<Claim> {
        let mut inner = self.inner.lock_with_bh_disabled(bh);
        let slot = inner.head;
        let offset = self.layout.frame_offset(slot);
        // Acquire pairs with user space's release store of `TP_STATUS_KERNEL`: its reads of the
        // frame are done before we write it. The status goes first: `owner_map_claim` sets the
        // bit when it succeeds, and a bit set for a slot we then refuse would never be cleared.
        if self.buf.load_acquire_u32(offset + hdr::STATUS) != Ok(TP_STATUS_KERNEL)
            || !owner_map_claim(&mut inner.owner_map, slot)
        {
            inner.stats.drops += 1;
            return None;
        }
        inner.head = if slot + 1 == self.layout.frame_nr {
            0
        } else {
            slot + 1
        };
        inner.stats.delivered += 1;
        let losing = if inner.stats.drops != 0 {
            bindings::TP_STATUS_LOSING
        } else {
            0
        };
        Some(Claim {
            slot,
            offset,
            losing,
        })
    }

    /// Hands a filled slot to user space: its `tp_status` and its owner bit change together,
    /// under the lock, so no other producer can see the slot free in between.
    fn release(&self, claim: Claim, status: u32, bh: &BhDisabled<'_>) {
        let mut inner = self.inner.lock_with_bh_disabled(bh);
        // Release orders every write to the frame before the status that publishes it.
        // `offset` is a frame offset of our own layout, so the store cannot fail.
        let _ = self
            .buf
            .store_release_u32(claim.offset + hdr::STATUS, status);
        owner_map_release(&mut inner.owner_map, claim.slot);
    }

    /// The producer path: claim a slot, fill it without the lock, release it, wake readers.
    fn receive(&self, skb: &SkBuff, bh: &BhDisabled<'_>) {
        let Some(claim) = self.claim(bh) else {
            return;
        };
        let flags = self.fill(&claim, skb, bh);
        self.release(claim, TP_STATUS_USER | flags, bh);
        self.readers.notify_if_waiting(events::IN | events::RDNORM);
    }

    /// Writes the packet, its header and its `sockaddr_ll` into the claimed frame, and returns
    /// the status flags for it (all but `TP_STATUS_USER`). Writes nothing but the frame of
    /// `claim`, and never its `tp_status`.
    fn fill(&self, claim: &Claim, skb: &SkBuff, bh: &BhDisabled<'_>) -> u32 {
        let frame = claim.offset;
        let buf = &self.buf;

        // Copy from the MAC header when there is one in front of `data`, as SOCK_RAW does.
        let mac = skb.mac_offset().unwrap_or(0).min(0);
        let net = skb.network_offset().max(mac);
        // `mac <= 0` and `net >= mac`; both are small offsets within the skb head.
        let maclen = (net - mac) as usize;
        let netoff = tpacket_align(TPACKET2_HDRLEN + maclen.max(16));
        let tp_len = skb.len() as usize + mac.unsigned_abs() as usize;
        let (macoff, snaplen) = match self.layout.frame_size.checked_sub(netoff) {
            Some(room) => (
                netoff - maclen,
                tp_len.min(self.layout.snaplen).min(room + maclen),
            ),
            // A MAC header too long for the frame: record the packet without its bytes.
            None => (TPACKET2_HDRLEN, 0),
        };
        let copied = skb.copy_bits(mac, buf, frame + macoff, snaplen).is_ok();
        let snaplen = if copied { snaplen } else { 0 };

        let mut flags = claim.losing;
        match skb.checksum() {
            Checksum::NotReady => flags |= bindings::TP_STATUS_CSUMNOTREADY,
            Checksum::Valid => flags |= bindings::TP_STATUS_CSUM_VALID,
            Checksum::Unknown => {}
        }
        if skb.is_gso() {
            flags |= bindings::TP_STATUS_GSO_TCP;
        }
        let (vlan_tci, vlan_tpid) = match skb.vlan() {
            Some(tag) => {
                flags |= bindings::TP_STATUS_VLAN_VALID | bindings::TP_STATUS_VLAN_TPID_VALID;
                (tag.tci, tag.tpid)
            }
            None => (0, 0),
        };
        let ns = skb.timestamp_ns();

        // The header after `tp_status` and the `sockaddr_ll` are composed here and written with
        // one copy: as fourteen out-of-line, bounds-checked stores they cost some 210
        // instructions a packet, a sixth of what a 64-byte capture adds to the producer.
        let hatype = skb.hw_type();
        let ether = hatype == bindings::ARPHRD_ETHER as u16 && maclen >= 14;
        let rx_queue = skb.rx_queue().unwrap_or(uapi::PKTRING_NO_RX_QUEUE);
        let sll = SLL_OFFSET;
        let mut head = FrameHead::default();
        head.put_u32(hdr::LEN, tp_len as u32);
        head.put_u32(hdr::SNAPLEN, snaplen as u32);
        head.put_u16(hdr::MAC, macoff as u16);
        head.put_u16(hdr::NET, (macoff + maclen) as u16);
        head.put_u32(hdr::SEC, ns.div_euclid(1_000_000_000) as u32);
        head.put_u32(hdr::NSEC, ns.rem_euclid(1_000_000_000) as u32);
        head.put_u16(hdr::VLAN_TCI, vlan_tci);
        head.put_u16(hdr::VLAN_TPID, vlan_tpid);
        head.put_u16(hdr::CPU, bh.cpu() as u16);
        head.put_u16(hdr::RX_QUEUE, rx_queue);
        head.put_u16(sll + sll::FAMILY, bindings::AF_PACKET as u16);
        head.put_u16(sll + sll::PROTOCOL, skb.protocol().to_be());
        head.put_u32(sll + sll::IFINDEX, skb.ifindex() as u32);
        head.put_u16(sll + sll::HATYPE, hatype);
        let halen = if ether { 6 } else { 0 };
        head.put(sll + sll::PKTTYPE_HALEN, [skb.pkt_type(), halen]);
        // The block is a part of this frame, which `Layout` keeps inside the buffer and at least
        // TPACKET2_HDRLEN long: the write cannot fail.
        let _ = buf.write_bytes(frame + hdr::LEN, &head.0);
        // The source address of an Ethernet header, as `dev_parse_header()` reports it; the
        // block left `sll_addr` zero (also where there is none, rather than stale bytes).
        if ether {
            let _ = skb.copy_bits(mac + 6, buf, frame + sll + sll::ADDR, 6);
        }
        flags
    }
}

/// The bytes of a frame from `tp_len` to the end of the `sockaddr_ll`, composed before they are
/// written to the shared buffer in one copy.
struct FrameHead([u8; TPACKET2_HDRLEN - hdr::LEN]);

impl Default for FrameHead {
    fn default() -> Self {
        Self([0; TPACKET2_HDRLEN - hdr::LEN])
    }
}

impl FrameHead {
    /// Puts `bytes` at frame offset `offset`.
    ///
    /// Always inlined, and by plain indexing: with the callers' constant offsets each put is
    /// then a single store (`copy_from_slice()` and iterators over a few bytes became calls).
    #[inline(always)]
    fn put<const N: usize>(&mut self, offset: usize, bytes: [u8; N]) {
        let mut i = 0;
        while i < N {
            // PANIC: callers pass the offsets of `hdr` and `SLL_OFFSET` plus `sll` with their
            // fields' sizes, all between `hdr::LEN` and `TPACKET2_HDRLEN`.
            self.0[offset - hdr::LEN + i] = bytes[i];
            i += 1;
        }
    }

    /// Puts the 16-bit `value` at frame offset `offset`, in host byte order.
    #[inline(always)]
    fn put_u16(&mut self, offset: usize, value: u16) {
        self.put(offset, value.to_ne_bytes());
    }

    /// Puts the 32-bit `value` at frame offset `offset`, in host byte order.
    #[inline(always)]
    fn put_u32(&mut self, offset: usize, value: u32) {
        self.put(offset, value.to_ne_bytes());
    }
}

/// Sets the owner bit of `slot`; returns `false` if a producer owns the slot already.
#[cfg(not(pktring_test_no_owner_map))]
fn owner_map_claim(owner_map: &mut Bitmap, slot: usize) -> bool {
    matches!(owner_map.test_and_set(slot), Ok(false))
}

/// Clears the owner bit of `slot`.
#[cfg(not(pktring_test_no_owner_map))]
fn owner_map_release(owner_map: &mut Bitmap, slot: usize) {
    let _ = owner_map.clear(slot);
}

/// The race the owner map closes, compiled back in for the selftests' reproducer only.
#[cfg(pktring_test_no_owner_map)]
fn owner_map_claim(_owner_map: &mut Bitmap, _slot: usize) -> bool {
    true
}

#[cfg(pktring_test_no_owner_map)]
fn owner_map_release(_owner_map: &mut Bitmap, _slot: usize) {}

impl Hook for Ring {
    fn hook(&self, skb: &SkBuff, state: &HookState<'_>, bh: &BhDisabled<'_>) -> Verdict {
        if self.filter.accepts(skb, state) {
            self.receive(skb, bh);
        }
        Verdict::Accept
    }
}

impl Filter {
    fn accepts(&self, skb: &SkBuff, state: &HookState<'_>) -> bool {
        if self.ifindex != 0 && state.in_ifindex() != self.ifindex {
            return false;
        }
        match skb.protocol() {
            uapi::ETH_P_IP => self.ipv4,
            uapi::ETH_P_IPV6 => self.ipv6,
            _ => false,
        }
    }
}
