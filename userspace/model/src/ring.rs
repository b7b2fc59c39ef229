// SPDX-License-Identifier: GPL-2.0

//! The model of `ring.rs`: the ring, its lock-protected state, and the producer path.
//!
//! Read it next to `ring.rs`: the types and functions have the same names and do the same
//! steps in the same order. What differs is said where it differs.

use core::sync::atomic::Ordering::{Acquire, Release};

use loom::sync::Mutex;

use crate::frame::{Frame, Packet, Payload};
use crate::ghost::{Event, Ghost};

/// Slots in the ring (`frame_nr`): the least that lets a fast producer lap a slow one.
pub const SLOTS: usize = 2;

/// `tp_status` of a slot the kernel may fill.
pub const TP_STATUS_KERNEL: u32 = 0;
/// `tp_status` bit of a slot that belongs to user space.
pub const TP_STATUS_USER: u32 = 1;
/// `tp_status` bit: packets were dropped since the stats were last read.
pub const TP_STATUS_LOSING: u32 = 1 << 2;
/// The 2018 RFC's intermediate status: "any bit but `TP_STATUS_USER`", and the RFC reused
/// `TP_STATUS_LOSING`.
pub const TP_STATUS_IN_PROGRESS: u32 = TP_STATUS_LOSING;

/// How a producer decides that the slot at the head is free, and marks it taken.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Claiming {
    /// `ring.rs`: `tp_status` reads `TP_STATUS_KERNEL` *and* the owner bit is clear; the claim
    /// sets the owner bit and the release clears it, both under the lock.
    OwnerMap,
    /// `ring.rs` built with `pktring_test_no_owner_map`, which is af_packet before the fix:
    /// `tp_status` alone, so a slot reads free while the producer that claimed it one lap
    /// earlier is still copying into it.
    StatusOnly,
    /// The 2018 RFC: `tp_status` alone, but the claim stores `TP_STATUS_IN_PROGRESS` into it
    /// under the lock, so the slot no longer reads free. Correct for a reader that tests
    /// `TP_STATUS_USER`, wrong for one that takes any non-zero status as ready, as libpcap does.
    ///
    /// The release still takes the lock, as in `ring.rs`; af_packet's did not. The lock only
    /// adds ordering, so what breaks here breaks there too.
    InProgressStatus,
}

/// Packet counters since they were last read.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets written to a slot.
    pub delivered: u64,
    /// Packets dropped because the head slot was not free.
    pub drops: u64,
}

/// `kernel::bitmap::Bitmap` with just what the ring uses, on one word (`SLOTS` <= 64).
#[derive(Debug, Default)]
struct Bitmap(u64);

impl Bitmap {
    /// Sets bit `index` and returns its old value (the kernel's returns it in a `Result`).
    fn test_and_set(&mut self, index: usize) -> bool {
        let mask = 1 << index;
        let old = self.0 & mask != 0;
        self.0 |= mask;
        old
    }

    /// Clears bit `index`.
    fn clear(&mut self, index: usize) {
        self.0 &= !(1 << index);
    }

    /// Returns bit `index`.
    fn test(&self, index: usize) -> bool {
        self.0 & 1 << index != 0
    }
}

/// The fields of a [`Ring`] protected by its lock.
#[derive(Debug)]
struct RingInner {
    /// The next slot to claim.
    head: usize,
    /// `rx_owner_map`: one bit per slot, set from `claim()` to `release()`, while a producer owns
    /// the slot but its `tp_status` still reads `TP_STATUS_KERNEL`.
    owner_map: Bitmap,
    stats: Stats,
}

/// A ring: the memory shared with user space and the state the producers share.
///
/// The kernel's lock is a BH-safe spinlock; here it is a loom [`Mutex`], which gives the same
/// happens-before edges. The hook's filter and the poll wait queue are left out.
#[derive(Debug)]
pub struct Ring {
    frames: [Frame; SLOTS],
    claiming: Claiming,
    inner: Mutex<RingInner>,
    /// Not in the kernel: the checks and what they know.
    ghost: Ghost,
}

/// A slot a producer has claimed: it alone writes the frame until it releases it.
///
/// The kernel also keeps the frame's byte offset; here `slot` indexes [`Ring::frame`].
#[derive(Debug)]
struct Claim {
    slot: usize,
    /// `TP_STATUS_LOSING` if packets were dropped since the stats were last read.
    losing: u32,
}

impl Ring {
    /// Makes a ring of [`SLOTS`] free slots, checked by `ghost`.
    pub fn new(claiming: Claiming, payload: Payload, ghost: Ghost) -> Self {
        Self {
            frames: core::array::from_fn(|_| Frame::new(payload)),
            claiming,
            inner: Mutex::new(RingInner {
                head: 0,
                owner_map: Bitmap::default(),
                stats: Stats::default(),
            }),
            ghost,
        }
    }

    /// Returns the ring's ghost state.
    pub fn ghost(&self) -> &Ghost {
        &self.ghost
    }

    /// Returns the frame of `slot`: what user space sees of it through the mapping.
    ///
    /// # Panics
    ///
    /// If `slot >= SLOTS`.
    pub fn frame(&self, slot: usize) -> &Frame {
        &self.frames[slot]
    }

    /// Returns `true` if a producer owns `slot`: its bit in the owner map is set. For the
    /// checker; the kernel has no use for it.
    pub fn is_owned(&self, slot: usize) -> bool {
        self.lock().owner_map.test(slot)
    }

    /// Returns the counters and clears them.
    pub fn take_stats(&self) -> Stats {
        core::mem::take(&mut self.lock().stats)
    }

    /// Takes the ring lock. A check that fails under it ends the whole execution, so nobody
    /// sees it poisoned.
    fn lock(&self) -> loom::sync::MutexGuard<'_, RingInner> {
        self.inner.lock().expect("the ring lock is never poisoned")
    }

    /// Claims the head slot for one packet, or returns `None` (a drop) if it is not free.
    ///
    /// A slot is free when user space has handed it back (`tp_status` is `TP_STATUS_KERNEL`)
    /// *and* no producer owns it. Both are checked under the lock.
    fn claim(&self) -> Option<Claim> {
        let mut inner = self.lock();
        let slot = inner.head;
        let frame = &self.frames[slot];
        // Acquire pairs with user space's release store of `TP_STATUS_KERNEL`: its reads of the
        // frame are done before we write it.
        if frame.status.load(Acquire) != TP_STATUS_KERNEL
            || !owner_map_claim(self.claiming, &mut inner.owner_map, slot)
        {
            inner.stats.drops += 1;
            return None;
        }
        if self.claiming == Claiming::InProgressStatus {
            // The RFC's step [D]. Release, to be generous: a reader that acquires it sees at
            // least everything before the claim.
            frame.status.store(TP_STATUS_IN_PROGRESS, Release);
        }
        inner.head = if slot + 1 == SLOTS { 0 } else { slot + 1 };
        inner.stats.delivered += 1;
        let losing = if inner.stats.drops != 0 {
            TP_STATUS_LOSING
        } else {
            0
        };
        Some(Claim { slot, losing })
    }

    /// Hands a filled slot to user space: its `tp_status` and its owner bit change together,
    /// under the lock, so no other producer can see the slot free in between.
    fn release(&self, claim: Claim, status: u32) {
        let mut inner = self.lock();
        let frame = &self.frames[claim.slot];
        self.ghost.check_release(claim.slot);
        // Release orders every write to the frame before the status that publishes it.
        frame.status.store(status, Release);
        owner_map_release(self.claiming, &mut inner.owner_map, claim.slot);
    }

    /// The producer path: claim a slot, fill it without the lock, release it.
    ///
    /// Returns whether the packet was delivered, which the kernel only counts in the stats;
    /// the checker wants to know which frames to expect. Waking the readers is left out.
    pub fn receive(&self, packet: &Packet) -> bool {
        let Some(claim) = self.claim() else {
            self.ghost.record(Event::Dropped { packet: packet.id });
            return false;
        };
        let slot = claim.slot;
        // Unlocking is no scheduling point for loom: no other thread runs between `claim()`
        // returning and this record, nor between `release()` returning and the one below.
        self.ghost.record(Event::Claimed {
            packet: packet.id,
            slot,
        });
        let flags = self.fill(&claim, packet);
        self.release(claim, TP_STATUS_USER | flags);
        self.ghost.record(Event::Published {
            packet: packet.id,
            slot,
        });
        true
    }

    /// Writes the packet and its header into the claimed frame, and returns the status flags
    /// for it (all but `TP_STATUS_USER`). Writes nothing but the frame of `claim`, and never its
    /// `tp_status`.
    ///
    /// As in the kernel, the packet's bytes go first (`skb_copy_bits()`), then the header
    /// fields, of which the model keeps `tp_len`; each is a separate write.
    fn fill(&self, claim: &Claim, packet: &Packet) -> u32 {
        let (slot, id) = (claim.slot, packet.id);
        let frame = &self.frames[slot];
        self.ghost.start_copy(id, slot);
        for word in &frame.data {
            word.write(id);
        }
        frame.len.write(packet.tp_len());
        self.ghost.end_copy(id, slot);
        claim.losing
    }
}

/// Sets the owner bit of `slot`; returns `false` if a producer owns the slot already.
///
/// The model's counterpart of the kernel's `cfg(pktring_test_no_owner_map)` pair is the
/// `claiming` parameter: without the owner map, every slot is always "not owned".
fn owner_map_claim(claiming: Claiming, owner_map: &mut Bitmap, slot: usize) -> bool {
    match claiming {
        Claiming::OwnerMap => !owner_map.test_and_set(slot),
        Claiming::StatusOnly | Claiming::InProgressStatus => true,
    }
}

/// Clears the owner bit of `slot`.
fn owner_map_release(claiming: Claiming, owner_map: &mut Bitmap, slot: usize) {
    match claiming {
        Claiming::OwnerMap => owner_map.clear(slot),
        Claiming::StatusOnly | Claiming::InProgressStatus => {}
    }
}
