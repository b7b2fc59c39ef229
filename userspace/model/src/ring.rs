// SPDX-License-Identifier: GPL-2.0

//! The model of `ring.rs`: the ring, its lock-protected state, and the producer path.
//!
//! Read it next to `ring.rs`: the types and functions have the same names and do the same
//! steps in the same order. What differs is said where it differs.

use core::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;

use loom::sync::atomic::AtomicU64;
use loom::sync::Mutex;

use crate::frame::{Frame, Packet, Payload};
use crate::ghost::{Event, Ghost};
use crate::wait::Readers;

/// Slots in the ring (`frame_nr`) of the claim/release configurations: the least that lets a
/// fast producer lap a slow one. [`Ring::new`] takes any number up to 64.
pub const SLOTS: usize = 2;

/// `ENETDOWN`, the errno of a capture whose device went away.
pub const ENETDOWN: u32 = 100;

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

/// Which frames `poll()` reports readable, and which releases wake the readers for them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Announcing {
    /// `ring.rs`: readers are told of the frames before the release frontier (the oldest slot
    /// claimed and not released), at the release that moves it, or in batches with
    /// [`Batch`]; `poll()` is readable while the frame before `announced` belongs to user space,
    /// unless every slot was claimed since readers were last told (`RingInner::lapped()`): the
    /// frame there is then a later lap's, and the consumer has read every one it was told of.
    Frontier,
    /// [`Announcing::Frontier`] with `readable()` reading the readiness word once, not again
    /// after it tests the frame: on a full ring, the word may say "not lapped" while the frame
    /// it names is already a later lap's. A mistake, to show that the second read is needed.
    FrontierOneLook,
    /// `ring.rs` before 356f032: [`Announcing::Frontier`] without `lapped()`, so that `poll()`
    /// tests the frame before `announced` whatever lap it is from. On a full ring it reports
    /// readable while the consumer's next frame is still being filled.
    FrontierUnchecked,
    /// `ring.rs` before the release frontier: `poll()` is readable while the frame before the
    /// *head* belongs to user space, as af_packet's `poll()` has it, and every release wakes the
    /// readers. The frame before the head may be the last of several in flight, and released
    /// first.
    Head,
}

/// Batched wake-ups (`uapi.rs`'s `Batch`): wake the readers once `frames` frames are ready, or
/// when the batch timer fires after the first one that they were not woken for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// `wake_frames`: more than 1, not more than the ring's slots.
    pub frames: usize,
}

/// Packet counters since they were last read.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets written to a slot.
    pub delivered: u64,
    /// Packets dropped because the head slot was not free. In a fanout group, a member's
    /// refusal is not a drop: the group counts the packets every member refused.
    pub drops: u64,
    /// Fanout: packets this ring took that were chosen for another member of its group.
    pub rollovers: u64,
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

    /// Returns the first set bit at or after `from`, if any (`next_bit()`).
    fn next_bit(&self, from: usize) -> Option<usize> {
        (from..64).find(|&index| self.test(index))
    }
}

/// Bit of a readiness word ([`Ring::readiness`]): every slot was claimed since readers were last
/// told of the frontier (`ring.rs`'s `READY_LAPPED`, which is bit 32 there).
const READY_LAPPED: u64 = 1 << 16;
/// The bits of a readiness word that say what `poll()` is to test: the slot, and the lap bit.
const READY_STATE: u64 = READY_LAPPED | 0xffff;
/// One change in the count of changes, kept in the bits up to [`READY_TOLD_SHIFT`].
const READY_CHANGE: u64 = READY_LAPPED << 1;
/// The bits of a readiness word that the kernel has: all below the ghost's.
const READY_KERNEL: u64 = (1 << READY_TOLD_SHIFT) - 1;
/// Not in the kernel: where a readiness word keeps what the ghost took readers to have been
/// told of when it was stored ([`Ghost::announced`]), so that a check of `poll()` judges its
/// answer by what the word it read said.
const READY_TOLD_SHIFT: u32 = 40;
/// `ring.rs`'s `READY_LOOKS`.
const READY_LOOKS: usize = 4;

/// The fields of a [`Ring`] protected by its lock.
#[derive(Debug)]
struct RingInner {
    /// The next slot to claim.
    head: usize,
    /// `rx_owner_map`: one bit per slot, set from `claim()` to `release()`, while a producer owns
    /// the slot but its `tp_status` still reads `TP_STATUS_KERNEL`.
    owner_map: Bitmap,
    /// Slots claimed and not released yet: the owner bits that are set.
    in_flight: usize,
    /// The oldest slot in flight, while `in_flight > 0`.
    oldest: usize,
    /// Readers were last told of the frames before this slot: a poller is ready while the frame
    /// before it belongs to user space. Without batching, the release frontier.
    announced: usize,
    /// Frames the release frontier has passed since `announced` last moved (batching only).
    unannounced: usize,
    /// The batch timer is set (batching only).
    timer_set: bool,
    /// The readiness word last stored in [`Ring::readiness`].
    published: u64,
    stats: Stats,
}

impl RingInner {
    /// Returns the release frontier: the oldest slot claimed and not released yet, or the head
    /// when there is none. A consumer that has caught up waits there.
    fn frontier(&self, claiming: Claiming) -> usize {
        if self.in_flight == 0 || claiming != Claiming::OwnerMap {
            // Without the owner map nothing knows which slots are in flight: the head, as
            // af_packet's `poll()` has it.
            self.head
        } else {
            self.oldest
        }
    }

    /// Returns `true` if every slot was claimed since readers were last told of the frontier:
    /// the frame before `announced` is then a lap ahead of the consumer, which has read up to
    /// `announced` (else the slot could not have been claimed again) and waits there.
    fn lapped(&self, claiming: Claiming, frame_nr: usize) -> bool {
        if claiming != Claiming::OwnerMap {
            return false;
        }
        // No division: `publish()` asks this at every claim.
        let in_flight_span = match self.in_flight {
            0 => 0,
            _ if self.head > self.oldest => self.head - self.oldest,
            // Head and oldest on the same slot: the whole ring is in flight.
            _ => self.head + frame_nr - self.oldest,
        };
        self.unannounced + in_flight_span >= frame_nr
    }

    /// Records that `slot`, the head, was claimed.
    fn claimed(&mut self, slot: usize) {
        if self.in_flight == 0 {
            self.oldest = slot;
        }
        self.in_flight += 1;
    }

    /// Records that `slot`, whose owner bit is now clear, was released: returns the new release
    /// frontier and how many slots it moved by, or `None` if it did not move (an older slot is
    /// still being filled, so the consumer cannot go on yet).
    ///
    /// Slots are claimed in ring order at the head, so the next oldest in flight is the first
    /// owner bit after `slot`. Without the owner map (`claiming` other than
    /// [`Claiming::OwnerMap`], the kernel's `cfg(pktring_test_no_owner_map)`), the head.
    fn released(
        &mut self,
        claiming: Claiming,
        slot: usize,
        frame_nr: usize,
    ) -> Option<(usize, usize)> {
        self.in_flight -= 1;
        if claiming != Claiming::OwnerMap {
            return Some((self.head, 1));
        }
        if slot != self.oldest {
            return None;
        }
        let frontier = if self.in_flight == 0 {
            self.head
        } else {
            let next = if slot + 1 == frame_nr { 0 } else { slot + 1 };
            // Another slot is in flight, so there is a set bit to find.
            self.owner_map
                .next_bit(next)
                .or_else(|| self.owner_map.next_bit(0))
                .unwrap_or(self.head)
        };
        self.oldest = frontier;
        // It moved past `slot` at least: a distance of 0 is the whole ring.
        let moved = match (frontier + frame_nr - slot) % frame_nr {
            0 => frame_nr,
            moved => moved,
        };
        Some((frontier, moved))
    }
}

/// `HrTimer<Core>`, the batch timer: armed or not. When it fires is the checker's choice
/// ([`Ring::timer_fires`]); the handler is [`Ring::expired`].
#[derive(Debug)]
struct HrTimer {
    /// Enqueued; under the timer base's lock.
    armed: Mutex<bool>,
}

impl HrTimer {
    fn armed(&self) -> loom::sync::MutexGuard<'_, bool> {
        self.armed.lock().expect("the timer lock is never poisoned")
    }

    /// `hrtimer_start()`: (re)arms the timer, even while its handler runs.
    fn start(&self) {
        *self.armed() = true;
    }

    /// `hrtimer_try_to_cancel()`: disarms the timer if it has not fired yet; a handler that has
    /// started runs on.
    fn try_cancel(&self) -> bool {
        core::mem::replace(&mut *self.armed(), false)
    }

    /// The timer expires, if armed: `__run_hrtimer()` dequeues it, and then, with the base's
    /// lock dropped, calls the handler.
    fn expire(&self) -> bool {
        core::mem::replace(&mut *self.armed(), false)
    }
}

/// A ring: the memory shared with user space and the state the producers share.
///
/// The kernel's lock is a BH-safe spinlock; here it is a loom [`Mutex`], which gives the same
/// happens-before edges. The hook's filter is left out, and so are the readers, in the
/// configurations without a consumer that sleeps in `poll()`.
#[derive(Debug)]
pub struct Ring {
    frames: Vec<Frame>,
    claiming: Claiming,
    announcing: Announcing,
    /// Batched wake-ups, if asked for.
    batch: Option<Batch>,
    inner: Mutex<RingInner>,
    /// The readiness word, which `poll()` reads without the lock (the kernel's
    /// `Core::readiness`): `announced` in the low 16 bits, [`READY_LAPPED`], a
    /// count of the changes to the two up to bit 40, and the ghost's part above it.
    readiness: AtomicU64,
    /// The batch timer (the kernel's `core`, whose handler is `Core::expired`).
    timer: HrTimer,
    /// The readers to wake, if any poll.
    readers: Option<Arc<Readers>>,
    /// Not in the kernel: the checks and what they know.
    ghost: Ghost,
}

/// A slot a producer has claimed: it alone writes the frame until it releases it.
///
/// The kernel also keeps the frame's byte offset; here `slot` indexes [`Ring::frame`].
#[derive(Debug)]
pub(crate) struct Claim {
    pub(crate) slot: usize,
    /// `TP_STATUS_LOSING` if packets were dropped since the stats were last read.
    losing: u32,
}

impl Ring {
    /// Makes a ring of `slots` free slots (at most 64), which wakes `readers` as `announcing`
    /// and `batch` say, and is checked by `ghost`.
    pub fn new(
        claiming: Claiming,
        announcing: Announcing,
        batch: Option<Batch>,
        payload: Payload,
        slots: usize,
        readers: Option<Arc<Readers>>,
        ghost: Ghost,
    ) -> Self {
        assert!((1..=64).contains(&slots), "the owner map is one word");
        if let Some(batch) = batch {
            assert!(
                1 < batch.frames && batch.frames <= slots,
                "as uapi.rs checks it"
            );
        }
        Self {
            frames: (0..slots).map(|_| Frame::new(payload)).collect(),
            claiming,
            announcing,
            batch,
            inner: Mutex::new(RingInner {
                head: 0,
                owner_map: Bitmap::default(),
                in_flight: 0,
                oldest: 0,
                announced: 0,
                unannounced: 0,
                timer_set: false,
                published: 0,
                stats: Stats::default(),
            }),
            readiness: AtomicU64::new(0),
            timer: HrTimer {
                armed: Mutex::new(false),
            },
            readers,
            ghost,
        }
    }

    /// Returns the ring's ghost state.
    pub fn ghost(&self) -> &Ghost {
        &self.ghost
    }

    /// Returns the number of slots (`frame_nr`).
    pub fn slots(&self) -> usize {
        self.frames.len()
    }

    /// Returns the readers the ring wakes, if any.
    pub fn readers(&self) -> Option<&Readers> {
        self.readers.as_deref()
    }

    /// Returns the frame of `slot`: what user space sees of it through the mapping.
    ///
    /// # Panics
    ///
    /// If `slot` is not below [`Ring::slots`].
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

    /// Returns `true` if the frame before the one readers were last told of belongs to user
    /// space: the consumer has not read up to there yet. Without batching that is the release
    /// frontier, so a consumer whose next frame is still being filled is not told to read it.
    /// When every slot was claimed since readers were told, that frame is a lap ahead of the
    /// consumer, which waits at the announced frontier: not readable. The file's `poll()` asks
    /// this after registering on the readers' queue.
    ///
    /// Without the ring lock, while the readiness word holds still: it is read, the frame it
    /// names tested, and the word read again; after [`READY_LOOKS`] changes, under the lock.
    ///
    /// With [`Announcing::FrontierUnchecked`] and [`Announcing::Head`], as `ring.rs` had it
    /// then: [`Ring::readable_locked`].
    pub fn readable(&self) -> bool {
        let mut seen = match self.announcing {
            Announcing::Frontier => self.readiness.load(Acquire),
            Announcing::FrontierOneLook => {
                let seen = self.readiness.load(Acquire);
                let (ready, check) = self.ready_at(seen);
                check(&self.ghost, (seen >> READY_TOLD_SHIFT) as usize);
                return ready;
            }
            Announcing::FrontierUnchecked | Announcing::Head => return self.readable_locked(),
        };
        for _ in 0..READY_LOOKS {
            let (ready, check) = self.ready_at(seen);
            let again = self.readiness.load(Acquire);
            if again & READY_KERNEL == seen & READY_KERNEL {
                // What the ghost took readers to know when the word read last was stored.
                check(&self.ghost, (again >> READY_TOLD_SHIFT) as usize);
                return ready;
            }
            seen = again;
        }
        let inner = self.lock();
        let (ready, check) = self.ready_at(inner.published);
        check(&self.ghost, (inner.published >> READY_TOLD_SHIFT) as usize);
        ready
    }

    /// `readable()` as `ring.rs` had it before the readiness word: under the ring lock, which
    /// every producer takes too. With [`Announcing::FrontierUnchecked`], without the lap check;
    /// with [`Announcing::Head`], the frame before the head instead.
    fn readable_locked(&self) -> bool {
        let inner = self.lock();
        // Not in the kernel: what the ghost takes readers to have been told of.
        let told = self.ghost.announced();
        let announced = match self.announcing {
            Announcing::Head => inner.head,
            _ => inner.announced,
        };
        drop(inner);
        let prev = announced.checked_sub(1).unwrap_or(self.slots() - 1);
        let status = self.frames[prev].status.load(Acquire);
        let readable = status != TP_STATUS_KERNEL;
        self.ghost.check_readable(readable, told, prev, status);
        readable
    }

    /// `ring.rs`'s `Ring::ready_at`: whether the readiness word `word` and the frame it names
    /// say that the ring is readable. Returns the check of the answer too, for the ghost to
    /// make with what readers were told of.
    fn ready_at(&self, word: u64) -> (bool, impl FnOnce(&Ghost, usize)) {
        let lapped = word & READY_LAPPED != 0;
        let announced = (word & 0xffff) as usize;
        let prev = announced.checked_sub(1).unwrap_or(self.slots() - 1);
        let status = (!lapped).then(|| self.frames[prev].status.load(Acquire));
        let readable = status.is_some_and(|status| status != TP_STATUS_KERNEL);
        let check = move |ghost: &Ghost, told: usize| match status {
            None => ghost.check_lapped(told),
            Some(status) => ghost.check_readable(readable, told, prev, status),
        };
        (readable, check)
    }

    /// `RingInner::publish`: stores the readiness word for what `poll()` tests now, if it
    /// changed, with one more change counted. Under the lock, by everything that changes it.
    /// Only with [`Announcing::Frontier`] and [`Announcing::FrontierOneLook`]: `ring.rs` had no
    /// readiness word before.
    fn publish(&self, inner: &mut RingInner) {
        if !matches!(
            self.announcing,
            Announcing::Frontier | Announcing::FrontierOneLook
        ) {
            return;
        }
        let lapped = inner.lapped(self.claiming, self.slots());
        let state = inner.announced as u64 | if lapped { READY_LAPPED } else { 0 };
        if state == inner.published & READY_STATE {
            return;
        }
        let changes = inner.published & READY_KERNEL & !READY_STATE;
        // The ghost's part rides along with the kernel's stores and makes none of its own: a
        // store the kernel does not make would order what the kernel leaves unordered.
        let told = (self.ghost.announced() as u64) << READY_TOLD_SHIFT;
        inner.published = (changes + READY_CHANGE) & READY_KERNEL | state | told;
        self.readiness.store(inner.published, Release);
    }

    /// Claims the head slot for one packet, or returns `None` (a drop) if it is not free.
    ///
    /// A slot is free when user space has handed it back (`tp_status` is `TP_STATUS_KERNEL`)
    /// *and* no producer owns it. Both are checked under the lock.
    fn claim(&self) -> Option<Claim> {
        let mut inner = self.lock();
        let claim = self.claim_locked(&mut inner, false);
        if claim.is_none() {
            inner.stats.drops += 1;
        }
        claim
    }

    /// Counts a drop of a packet that every member of a fanout group refused, in the member
    /// chosen for it: under this ring's lock, as [`Ring::claim`] counts its own.
    pub(crate) fn count_drop(&self) {
        self.lock().stats.drops += 1;
    }

    /// Fanout's claim: [`Ring::claim`], but a refusal is not counted as a drop (the packet may
    /// roll over to another member), and a claim for a packet chosen for another member
    /// (`rollover`) is counted in [`Stats::rollovers`]. Takes this ring's lock and no other.
    pub(crate) fn try_claim(&self, rollover: bool) -> Option<Claim> {
        self.claim_locked(&mut self.lock(), rollover)
    }

    /// Fanout's claim with the lock order broken, for [`Rollover::Nested`]: if this ring
    /// refuses the packet, calls `refused`, which tries the next member, with this ring's lock
    /// still held.
    ///
    /// [`Rollover::Nested`]: crate::Rollover::Nested
    pub(crate) fn claim_holding<R>(
        &self,
        rollover: bool,
        refused: impl FnOnce() -> R,
    ) -> Result<Claim, R> {
        let mut inner = self.lock();
        match self.claim_locked(&mut inner, rollover) {
            Some(claim) => Ok(claim),
            None => {
                let result = refused();
                drop(inner);
                Err(result)
            }
        }
    }

    /// A broken rollover's look at this ring, for [`Rollover::Peek`]: reads the head under the
    /// lock, then, without it, whether the head slot's `tp_status` is `TP_STATUS_KERNEL`. The
    /// owner map is not consulted: it is the lock's.
    ///
    /// [`Rollover::Peek`]: crate::Rollover::Peek
    pub(crate) fn peek_free(&self) -> bool {
        let head = self.lock().head;
        self.frames[head].status.load(Acquire) == TP_STATUS_KERNEL
    }

    /// A broken rollover's claim, for [`Rollover::Peek`]: trusts an earlier [`Ring::peek_free`]
    /// and claims the head slot under the lock without testing its `tp_status` or owner bit
    /// again.
    ///
    /// [`Rollover::Peek`]: crate::Rollover::Peek
    pub(crate) fn claim_unchecked(&self, rollover: bool) -> Claim {
        let mut inner = self.lock();
        let slot = inner.head;
        inner.owner_map.test_and_set(slot);
        self.claimed_locked(&mut inner, slot, rollover)
    }

    /// The claim under the lock: tests the head slot, and claims it if it is free.
    fn claim_locked(&self, inner: &mut RingInner, rollover: bool) -> Option<Claim> {
        let slot = inner.head;
        let frame = &self.frames[slot];
        // Acquire pairs with user space's release store of `TP_STATUS_KERNEL`: its reads of the
        // frame are done before we write it.
        if frame.status.load(Acquire) != TP_STATUS_KERNEL
            || !owner_map_claim(self.claiming, &mut inner.owner_map, slot)
        {
            return None;
        }
        Some(self.claimed_locked(inner, slot, rollover))
    }

    /// The head slot, `slot`, is taken: advance the head and count the packet.
    fn claimed_locked(&self, inner: &mut RingInner, slot: usize, rollover: bool) -> Claim {
        let frame = &self.frames[slot];
        if self.claiming == Claiming::InProgressStatus {
            // The RFC's step [D]. Release, to be generous: a reader that acquires it sees at
            // least everything before the claim.
            frame.status.store(TP_STATUS_IN_PROGRESS, Release);
        }
        inner.head = if slot + 1 == self.slots() {
            0
        } else {
            slot + 1
        };
        inner.claimed(slot);
        self.publish(inner);
        inner.stats.delivered += 1;
        if rollover {
            inner.stats.rollovers += 1;
        }
        self.ghost.claimed(slot);
        let losing = if inner.stats.drops != 0 {
            TP_STATUS_LOSING
        } else {
            0
        };
        Claim { slot, losing }
    }

    /// Hands a filled slot to user space: its `tp_status` and its owner bit change together,
    /// under the lock, so no other producer can see the slot free in between. Returns whether
    /// the readers are to be woken: only when the release frontier moved (the slot was the
    /// oldest in flight), and with batching only once enough frames are ready; the batch timer
    /// is set for the first frame readers are not woken for.
    ///
    /// With [`Announcing::Head`], every release wakes the readers.
    pub(crate) fn release(&self, claim: Claim, status: u32) -> bool {
        let mut inner = self.lock();
        let frame = &self.frames[claim.slot];
        self.ghost.check_release(claim.slot);
        // Release orders every write to the frame before the status that publishes it.
        frame.status.store(status, Release);
        owner_map_release(self.claiming, &mut inner.owner_map, claim.slot);
        let released = inner.released(self.claiming, claim.slot, self.slots());
        if self.announcing == Announcing::Head {
            // Not in the kernel: the ghost's idea of what readers are told of, the frontier.
            let frontier = inner.frontier(self.claiming);
            self.ghost.frontier_moved(frontier, inner.in_flight);
            return true;
        }
        let Some((frontier, moved)) = released else {
            // An older slot is still in flight: neither `announced` nor `lapped()` changed.
            return false;
        };
        let wake = self.announce(&mut inner, frontier, moved);
        self.publish(&mut inner);
        wake
    }

    /// `Ring::announce`: tells the readers of the release frontier, which moved by `moved`
    /// slots to `frontier`, at once or in batches, and returns whether to wake them.
    fn announce(&self, inner: &mut RingInner, frontier: usize, moved: usize) -> bool {
        let Some(batch) = &self.batch else {
            inner.announced = frontier;
            self.ghost.announce(frontier, inner.in_flight);
            return true;
        };
        inner.unannounced += moved;
        if inner.unannounced >= batch.frames {
            inner.announced = frontier;
            inner.unannounced = 0;
            self.ghost.announce(frontier, inner.in_flight);
            if inner.timer_set {
                // Under the lock, as the timer takes it: a handler running now finds nothing
                // left to announce.
                inner.timer_set = false;
                let cancelled = self.timer.try_cancel();
                self.ghost.record(Event::TimerCancelled { cancelled });
            }
            return true;
        }
        if !inner.timer_set {
            inner.timer_set = true;
            self.timer.start();
            self.ghost.record(Event::TimerSet);
        }
        false
    }

    /// The producer path: claim a slot, fill it without the lock, release it, wake readers.
    ///
    /// Returns whether the packet was delivered, which the kernel only counts in the stats;
    /// the checker wants to know which frames to expect.
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
        let wake = self.release(claim, TP_STATUS_USER | flags);
        self.ghost.record(Event::Published {
            packet: packet.id,
            slot,
        });
        if wake {
            self.wake();
        }
        true
    }

    /// Wakes the readers, if any, and checks that the consumer is not left asleep with a frame
    /// it was told of: `Readers::wake`.
    pub(crate) fn wake(&self) {
        let Some(readers) = &self.readers else {
            return;
        };
        // What this thread announced: no other one has run since it unlocked.
        let announced = self.ghost.announced();
        readers.wake(&self.ghost);
        self.ghost.check_woken(announced);
    }

    /// The batch timer fires, if it is armed: the handler runs. Returns whether it was armed.
    /// Not in the kernel, which fires it `delay_ns` after it was set; the checker calls this
    /// where it may happen.
    pub fn timer_fires(&self) -> bool {
        if !self.timer.expire() {
            return false;
        }
        self.ghost.record(Event::TimerFires);
        self.expired();
        true
    }

    /// `Core::expired`, the handler of the batch timer: tells the readers of the frames
    /// released since they were last told.
    fn expired(&self) {
        let mut inner = self.lock();
        inner.timer_set = false;
        if inner.unannounced == 0 {
            return;
        }
        inner.announced = inner.frontier(self.claiming);
        inner.unannounced = 0;
        self.ghost.announce(inner.announced, inner.in_flight);
        self.publish(&mut inner);
        drop(inner);
        self.wake();
    }

    /// `Hook::detached`: the device went away, the capture ends, and every poller is woken
    /// with `POLLERR`.
    pub fn detached(&self) {
        if let Some(readers) = &self.readers {
            readers.end(ENETDOWN, &self.ghost);
        }
    }

    /// Writes the packet and its header into the claimed frame, and returns the status flags
    /// for it (all but `TP_STATUS_USER`). Writes nothing but the frame of `claim`, and never its
    /// `tp_status`.
    ///
    /// As in the kernel, the packet's bytes go first (`skb_copy_bits()`), then the header
    /// fields, of which the model keeps `tp_len`; each is a separate write.
    pub(crate) fn fill(&self, claim: &Claim, packet: &Packet) -> u32 {
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
