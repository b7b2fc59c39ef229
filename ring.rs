// SPDX-License-Identifier: GPL-2.0

//! The RX ring: its lock-protected state, the producer path that the netfilter hook runs on
//! every CPU, and the readers it wakes. It takes a [`Layout`] and a [`Selection`] and knows
//! nothing of requests; the frame's layout is `uapi.rs`'s.
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

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::bindings;
use kernel::bitmap::BitmapVec;
use kernel::mm::user_shared::UserSharedBuffer;
use kernel::net::filter::FilterSlot;
use kernel::net::netfilter::{Detached, Hook, HookState, Verdict};
use kernel::net::skbuff::{Checksum, SkBuff, MAX_LINK_SOURCE};
use kernel::prelude::*;
use kernel::sync::poll::{events, new_poll_wait_queue, PollWaitQueue};
use kernel::sync::{new_spinlock_bh, Arc, BhDisabled, SpinLockBh};
use kernel::time::hrtimer::{HrTimer, HrTimerHandler};

use crate::uapi::{self, hdr, sll, tpacket_align, Batch, Layout, Selection, Stats};
use crate::uapi::{SLL_OFFSET, TPACKET2_HDRLEN};

/// `tp_status` of a slot the kernel may fill.
const TP_STATUS_KERNEL: u32 = bindings::TP_STATUS_KERNEL;
/// `tp_status` bit of a slot that belongs to user space.
const TP_STATUS_USER: u32 = bindings::TP_STATUS_USER;

/// Bit of a readiness word (see [`Core::readiness`]): every slot was claimed since readers were
/// last told of the frontier ([`RingInner::lapped`]).
const READY_LAPPED: u64 = 1 << 32;
/// The bits of a readiness word that say what `poll()` is to test: `announced`, and the lap bit.
const READY_STATE: u64 = READY_LAPPED | u32::MAX as u64;
/// One change in the count of changes that the rest of a readiness word keeps.
const READY_CHANGE: u64 = READY_LAPPED << 1;
/// How many times `readable()` reads the readiness word again, having found that it changed
/// while it tested the slot, before it takes the ring lock to test it.
const READY_LOOKS: usize = 4;

/// The fields of a [`Ring`] protected by its lock.
struct RingInner {
    /// The next slot to claim.
    head: usize,
    /// `rx_owner_map`: one bit per slot, set from `claim()` to `release()`, while a producer owns
    /// the slot but its `tp_status` still reads `TP_STATUS_KERNEL`.
    owner_map: BitmapVec,
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
    /// The readiness word last stored in [`Core::readiness`].
    published: u64,
    /// The counters since they were last read (`filtered` is kept apart, in [`Ring`]).
    stats: Stats,
    /// The counters read before, for the totals that fdinfo shows.
    taken: Stats,
}

impl RingInner {
    /// Returns the release frontier: the oldest slot claimed and not released yet, or the head
    /// when there is none. A consumer that has caught up waits there.
    fn frontier(&self) -> usize {
        if self.in_flight == 0 || cfg!(pktring_test_no_owner_map) {
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
    fn lapped(&self, frame_nr: usize) -> bool {
        if cfg!(pktring_test_no_owner_map) {
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

    /// Stores the readiness word for `announced` and `lapped()` as they are now in `readiness`,
    /// if either changed since it was last stored, with one more change counted. Called by
    /// everything that changes what they depend on, before it drops the lock: the word changes
    /// in the lock's order.
    #[inline]
    fn publish(&mut self, frame_nr: usize, readiness: &AtomicU64) {
        let lapped = if self.lapped(frame_nr) {
            READY_LAPPED
        } else {
            0
        };
        // `announced` is a slot, below `frame_nr`, which is a `u32`.
        let state = self.announced as u64 | lapped;
        if state == self.published & READY_STATE {
            return;
        }
        self.published = (self.published & !READY_STATE).wrapping_add(READY_CHANGE) | state;
        // Release: a poller that reads this word sees the status stores before it, among them
        // that of the frame before `announced`.
        readiness.store(self.published, Ordering::Release);
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
    /// owner bit after `slot`; the slots in between were released out of order already, so the
    /// search is short.
    fn released(&mut self, slot: usize, frame_nr: usize) -> Option<(usize, usize)> {
        self.in_flight -= 1;
        if cfg!(pktring_test_no_owner_map) {
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

/// The part of a [`Ring`] that the batch timer works on too: its layout, its lock-protected
/// state, what `poll()` reads of it without the lock, and its readers.
#[pin_data]
struct Core {
    #[pin]
    inner: SpinLockBh<RingInner>,
    /// The readiness word: `announced` in the low 32 bits, [`READY_LAPPED`], and above them a
    /// count of the changes to the two, which only the holder of the ring lock stores
    /// ([`RingInner::publish`]). `poll()` reads it without the lock, which the producers keep
    /// to themselves: a consumer that caught up polls as often as frames arrive.
    readiness: AtomicU64,
    /// The ring's layout ([`Ring::layout`]), of which the timer's `publish()` needs `frame_nr`.
    layout: Layout,
    readers: Arc<Readers>,
}

impl HrTimerHandler for Core {
    /// The batch timer: tells the readers of the frames released since they were last told.
    fn expired(&self) {
        let mut inner = self.inner.lock();
        inner.timer_set = false;
        if inner.unannounced == 0 {
            return;
        }
        inner.announced = inner.frontier();
        inner.unannounced = 0;
        inner.publish(self.layout.frame_nr, &self.readiness);
        drop(inner);
        self.readers.wake();
    }
}

/// What the pollers of a file wait on: shared by the file, which registers them before a ring
/// exists, and by its ring, whose producers and hook wake them.
#[pin_data]
pub(crate) struct Readers {
    #[pin]
    queue: PollWaitQueue,
    /// The errno that ended the capture for good; 0 while it runs. Set at most once.
    error: AtomicU32,
    /// A wake-up was sent and no poller has looked since: the next one to look sees every frame
    /// released meanwhile, so those releases need not wake anyone again. `poll()` clears it.
    woken: AtomicBool,
}

impl Readers {
    /// Allocates the readers of a new file. May sleep; takes no lock.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                queue <- new_poll_wait_queue!("pktring_readers"),
                error: AtomicU32::new(0),
                woken: AtomicBool::new(false),
            }),
            GFP_KERNEL,
        )
    }

    /// Returns the wait queue that `poll()` registers on.
    pub(crate) fn queue(&self) -> &PollWaitQueue {
        &self.queue
    }

    /// Returns the errno that ended the capture, or 0 while it runs.
    ///
    /// Read after registering on the queue: the acquire pairs with the release in `end`, and
    /// the barriers of the queue ensure that either this sees the error or `end` sees the poller.
    pub(crate) fn error(&self) -> u32 {
        self.error.load(Ordering::Acquire)
    }

    /// Wakes the pollers: frames are ready. Only the first of the wake-ups between two looks of
    /// a poller is sent; the others would only find it awake already.
    ///
    /// No wake-up is lost: a poller registers on the queue, then clears `woken` ([`polled`]),
    /// then looks at the ring. If this swap comes after that store in their (sequentially
    /// consistent) order, it reads `false`, and the poller's registration is visible to the
    /// queue check that follows. If it comes before, the poller's swap reads this one or a
    /// later one in `woken`'s order of swaps, and synchronizes with it: the readiness word that
    /// announced the frame, stored before this swap, is then visible to the poller's look.
    ///
    /// [`polled`]: Readers::polled
    fn wake(&self) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            self.queue.notify_if_waiting(events::IN | events::RDNORM);
        }
    }

    /// Called by `poll()` after it registered on the queue and before it looks at the ring.
    pub(crate) fn polled(&self) {
        // A swap rather than a store: the read half orders this poller's look after the
        // wake-up it clears (the loom model checks both).
        self.woken.swap(false, Ordering::SeqCst);
    }

    /// Ends the capture with `errno` (the first reason sticks) and wakes every poller: with
    /// `POLLERR`, and `POLLIN` for the frames that may be left.
    fn end(&self, errno: u32) {
        if self
            .error
            .compare_exchange(0, errno, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.queue
                .notify_if_waiting(events::IN | events::RDNORM | events::ERR);
        }
    }
}

/// A ring: the memory shared with user space and the state the producers share.
#[pin_data]
pub(crate) struct Ring {
    buf: UserSharedBuffer,
    selection: Selection,
    /// Batched wake-ups, if the request asked for them.
    batch: Option<Batch>,
    /// The file's capture filter, run before a slot is claimed.
    filter: Arc<FilterSlot>,
    /// Packets the filter rejected since the counters were last read: counted without the ring
    /// lock, which a rejected packet never takes.
    filtered: AtomicU64,
    /// The lock-protected state and the readers, as the handler of the batch timer.
    #[pin]
    core: HrTimer<Core>,
}

/// A slot a producer has claimed: it alone writes the frame until it releases it.
pub(crate) struct Claim {
    slot: usize,
    offset: usize,
    /// `TP_STATUS_LOSING` if packets were dropped since the stats were last read.
    losing: u32,
}

impl Ring {
    /// Allocates a ring with `layout` that captures `selection`, runs the packets through
    /// `filter` and wakes `readers`, at once or in batches. May sleep; takes no lock.
    pub(crate) fn new(
        layout: &Layout,
        selection: &Selection,
        batch: Option<Batch>,
        filter: Arc<FilterSlot>,
        readers: Arc<Readers>,
    ) -> Result<Arc<Self>> {
        let buf = UserSharedBuffer::new(layout.mmap_size())?;
        let owner_map = BitmapVec::new(layout.frame_nr, GFP_KERNEL)?;
        let inner = RingInner {
            head: 0,
            owner_map,
            in_flight: 0,
            oldest: 0,
            announced: 0,
            unannounced: 0,
            timer_set: false,
            published: 0,
            stats: Stats::default(),
            taken: Stats::default(),
        };
        Arc::pin_init(
            pin_init!(Self {
                buf,
                selection: *selection,
                batch,
                filter,
                filtered: AtomicU64::new(0),
                core <- HrTimer::new(pin_init!(Core {
                    inner <- new_spinlock_bh!(inner, "pktring_ring"),
                    // As `published`: slot 0 announced, not lapped, no change yet.
                    readiness: AtomicU64::new(0),
                    layout: *layout,
                    readers,
                })),
            }),
            GFP_KERNEL,
        )
    }

    /// Returns the ring lock and what it protects.
    fn inner(&self) -> &SpinLockBh<RingInner> {
        &self.core.handler().inner
    }

    /// Returns the readiness word.
    fn readiness(&self) -> &AtomicU64 {
        &self.core.handler().readiness
    }

    pub(crate) fn buffer(&self) -> &UserSharedBuffer {
        &self.buf
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.core.handler().layout
    }

    pub(crate) fn selection(&self) -> &Selection {
        &self.selection
    }

    /// Returns the counters and clears them. Process context.
    pub(crate) fn take_stats(&self) -> Stats {
        let mut inner = self.inner().lock();
        let mut stats = core::mem::take(&mut inner.stats);
        // Under the lock, so that the totals count each filtered packet once too.
        stats.filtered = self.filtered.swap(0, Ordering::Relaxed);
        inner.taken.add(&stats);
        stats
    }

    /// Returns the counters since the ring was set up. Process context.
    pub(crate) fn totals(&self) -> Stats {
        let inner = self.inner().lock();
        let mut totals = inner.stats;
        totals.filtered = self.filtered.load(Ordering::Relaxed);
        totals.add(&inner.taken);
        totals
    }

    /// Returns `true` if the frame before the one readers were last told of belongs to user
    /// space: the consumer has not read up to there yet. Without batching that is the release
    /// frontier, so a consumer whose next frame is still being filled is not told to read it.
    /// When every slot was claimed since readers were told, that frame is a lap ahead of the
    /// consumer, which waits at the announced frontier: not readable (the loom model found the
    /// full ring that needs this). Process context.
    ///
    /// Without the ring lock, as long as the readiness word holds still: it is read, the frame
    /// it names tested, and the word read again. The same word both times (its change count
    /// rules out a change and back) means that no producer announced, lapped or moved on past
    /// the frame in between: a status that a later lap stored there is stored after the claim
    /// that set the lap bit, and the acquire load of that status would make the second read see
    /// it. Producers that keep changing the word send the test under the lock, where the word
    /// holds still and no producer stores a status.
    pub(crate) fn readable(&self) -> bool {
        let mut seen = self.readiness().load(Ordering::Acquire);
        for _ in 0..READY_LOOKS {
            let ready = self.ready_at(seen);
            // Ordered after the status load by its acquire.
            let again = self.readiness().load(Ordering::Acquire);
            if again == seen {
                return ready;
            }
            seen = again;
        }
        let inner = self.inner().lock();
        self.ready_at(inner.published)
    }

    /// Returns whether the readiness word `word` and the frame it names say that the ring is
    /// readable: not lapped, and the frame before `announced` belongs to user space.
    fn ready_at(&self, word: u64) -> bool {
        if word & READY_LAPPED != 0 {
            return false;
        }
        // The low 32 bits, a slot that `publish` stored.
        let announced = (word & u64::from(u32::MAX)) as usize;
        let layout = self.layout();
        let prev = announced.checked_sub(1).unwrap_or(layout.frame_nr - 1);
        let status = self
            .buf
            .load_acquire_u32(layout.frame_offset(prev) + hdr::STATUS);
        matches!(status, Ok(status) if status != TP_STATUS_KERNEL)
    }

    /// Claims the head slot for one packet, or returns `None` if it is not free: a drop, counted
    /// with `Refusal::Drop`, or a refusal that a fanout group's rollover passes on, not counted
    /// (`Refusal::Pass`). `rollover`: the packet was meant for another member of the group.
    ///
    /// A slot is free when user space has handed it back (`tp_status` is `TP_STATUS_KERNEL`)
    /// *and* no producer owns it: a producer that claimed it one lap ago may still be copying,
    /// with `tp_status` still reading `TP_STATUS_KERNEL`. Both are checked under the lock, never
    /// from an unlocked peek.
    pub(crate) fn claim(
        &self,
        refusal: Refusal,
        rollover: bool,
        bh: &BhDisabled<'_>,
    ) -> Option<Claim> {
        let mut inner = self.inner().lock_with_bh_disabled(bh);
        let slot = inner.head;
        let offset = self.layout().frame_offset(slot);
        // Acquire pairs with user space's release store of `TP_STATUS_KERNEL`: its reads of the
        // frame are done before we write it. The status goes first: `owner_map_claim` sets the
        // bit when it succeeds, and a bit set for a slot we then refuse would never be cleared.
        if self.buf.load_acquire_u32(offset + hdr::STATUS) != Ok(TP_STATUS_KERNEL)
            || !owner_map_claim(&mut inner.owner_map, slot)
        {
            if refusal == Refusal::Drop {
                inner.stats.drops += 1;
            }
            return None;
        }
        inner.head = if slot + 1 == self.layout().frame_nr {
            0
        } else {
            slot + 1
        };
        inner.claimed(slot);
        // The claim may fill the span from `announced` round to the head.
        inner.publish(self.layout().frame_nr, self.readiness());
        inner.stats.delivered += 1;
        if rollover {
            inner.stats.rollover += 1;
        }
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

    /// Counts a drop of a packet that every member of the ring's fanout group refused: the ring
    /// is the member the group picked for it.
    pub(crate) fn count_drop(&self, bh: &BhDisabled<'_>) {
        self.inner().lock_with_bh_disabled(bh).stats.drops += 1;
    }

    /// Hands a filled slot to user space: its `tp_status` and its owner bit change together,
    /// under the lock, so no other producer can see the slot free in between. Returns whether
    /// the readers are to be woken: only when the release frontier moved (the slot was the
    /// oldest in flight), and with batching only once enough frames are ready; the batch timer
    /// is set for the first frame readers are not woken for.
    fn release(&self, claim: Claim, status: u32, bh: &BhDisabled<'_>) -> bool {
        let mut inner = self.inner().lock_with_bh_disabled(bh);
        // Release orders every write to the frame before the status that publishes it.
        // `offset` is a frame offset of our own layout, so the store cannot fail.
        let _ = self
            .buf
            .store_release_u32(claim.offset + hdr::STATUS, status);
        owner_map_release(&mut inner.owner_map, claim.slot);
        let Some((frontier, moved)) = inner.released(claim.slot, self.layout().frame_nr) else {
            // An older slot is still in flight: neither `announced` nor `lapped()` changed.
            return false;
        };
        let wake = self.announce(&mut inner, frontier, moved);
        inner.publish(self.layout().frame_nr, self.readiness());
        wake
    }

    /// Tells the readers of the release frontier, which moved by `moved` slots to `frontier`, at
    /// once or in batches: returns whether to wake them ([`Ring::release`]).
    fn announce(&self, inner: &mut RingInner, frontier: usize, moved: usize) -> bool {
        let Some(batch) = &self.batch else {
            inner.announced = frontier;
            return true;
        };
        inner.unannounced += moved;
        if inner.unannounced >= batch.frames {
            inner.announced = frontier;
            inner.unannounced = 0;
            if inner.timer_set {
                // Under the lock, as the timer takes it: a handler running now finds nothing
                // left to announce.
                inner.timer_set = false;
                self.core.try_cancel();
            }
            return true;
        }
        if !inner.timer_set {
            inner.timer_set = true;
            self.core.start(batch.delay_ns);
        }
        false
    }

    /// The producer path of a ring on its own: run the filter, claim a slot, fill it without the
    /// lock, release it, wake readers.
    fn receive(&self, skb: &SkBuff, state: &HookState<'_>, bh: &BhDisabled<'_>) {
        let Some(admitted) = self.admit(skb, bh) else {
            return;
        };
        if let Some(claim) = self.claim(Refusal::Drop, false, bh) {
            self.deliver(claim, skb, state, admitted, bh);
        }
    }

    /// Runs the filter on `skb`: returns where its frame starts and how many bytes to keep, or
    /// `None` (counted in `filtered`) if the filter rejects it.
    pub(crate) fn admit(&self, skb: &SkBuff, bh: &BhDisabled<'_>) -> Option<Admitted> {
        let start = self.frame_start(skb);
        // The filter's verdict is how many bytes from `start` to keep: 0 rejects the packet,
        // before it takes a slot. `run` fails only for a start outside the headroom, which
        // `frame_start` never gives; should it, the packet is rejected, not captured unfiltered.
        let keep = match self.filter.run(skb, start.mac, bh) {
            None => usize::MAX,
            Some(Ok(keep)) => keep as usize,
            Some(Err(_)) => 0,
        };
        if keep == 0 {
            self.filtered.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(Admitted { start, keep })
    }

    /// Fills the slot of `claim` with the packet `admit` took (here or in another member of a
    /// fanout group, whose hook and so frame start are this ring's), releases it and wakes
    /// readers.
    pub(crate) fn deliver(
        &self,
        claim: Claim,
        skb: &SkBuff,
        state: &HookState<'_>,
        admitted: Admitted,
        bh: &BhDisabled<'_>,
    ) {
        let flags = self.fill(&claim, skb, state, admitted.start, admitted.keep, bh);
        if self.release(claim, TP_STATUS_USER | flags, bh) {
            self.core.handler().readers.wake();
        }
    }

    /// Returns `true` if the ring captures `skb`, beyond what the hook registration selects:
    /// the inet hooks see every device and, with both families, both protocols; a device hook
    /// sees its device only, but every EtherType, of which the selection keeps its own.
    pub(crate) fn accepts(&self, skb: &SkBuff, state: &HookState<'_>) -> bool {
        let sel = &self.selection;
        let ifindex = match sel.hook {
            uapi::Hook::PreRouting | uapi::Hook::LocalIn => state.in_ifindex(),
            uapi::Hook::LocalOut | uapi::Hook::PostRouting => state.out_ifindex(),
            uapi::Hook::Ingress | uapi::Hook::Egress => sel.ifindex,
        };
        (sel.ifindex == 0 || ifindex == sel.ifindex) && sel.protocols.accepts(skb.protocol())
    }

    /// Returns where the frame of `skb` starts and where its network header is, from `data`:
    /// at the MAC header when there is one in front of `data`, as SOCK_RAW has it, but at the
    /// network header at the egress inet hooks, where a packet this host sends has none yet
    /// (and a forwarded one still has the one it came in with).
    fn frame_start(&self, skb: &SkBuff) -> FrameStart {
        let net = skb.network_offset();
        let mac = match self.selection.hook {
            uapi::Hook::LocalOut | uapi::Hook::PostRouting => net.min(0),
            _ => skb.mac_offset().unwrap_or(0).min(0),
        };
        FrameStart {
            mac,
            net: net.max(mac),
        }
    }
}

/// What [`Ring::claim`] does when the head slot is not free.
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Count the packet as a drop of this ring.
    Drop,
    /// Count nothing: a fanout group passes the packet on to another member.
    Pass,
}

/// A packet the filter let through: where its frame starts, and how many bytes of it to keep.
#[derive(Copy, Clone)]
pub(crate) struct Admitted {
    start: FrameStart,
    keep: usize,
}

/// Where a frame starts in a packet, as offsets from its `data`.
///
/// # Invariants
///
/// `mac <= 0` and `net >= mac`: `mac` is the MAC header in front of `data`, or `data`.
#[derive(Copy, Clone)]
struct FrameStart {
    mac: i32,
    net: i32,
}

impl Hook for Ring {
    fn hook(&self, skb: &SkBuff, state: &HookState<'_>, bh: &BhDisabled<'_>) -> Verdict {
        if self.accepts(skb, state) {
            self.receive(skb, state, bh);
        }
        Verdict::Accept
    }

    fn detached(&self, why: Detached) {
        self.end(detached_errno(why));
    }
}

impl Ring {
    /// Ends the capture with `errno` (see [`detached_errno`]): the hook that fills the ring was
    /// taken down.
    pub(crate) fn end(&self, errno: u32) {
        self.core.handler().readers.end(errno);
    }
}

/// Returns the errno that `info.error` reports for a hook taken down for `why`.
pub(crate) fn detached_errno(why: Detached) -> u32 {
    match why {
        Detached::Device => bindings::ENETDOWN,
        Detached::Namespace => bindings::ENONET,
    }
}

impl Ring {
    /// Writes the packet from `start`, its header and its `sockaddr_ll` into the claimed frame,
    /// at most `keep` bytes of the packet (the filter's verdict), and returns the status flags
    /// for it (all but `TP_STATUS_USER`). Writes nothing but the frame of `claim`, and never its
    /// `tp_status`.
    fn fill(
        &self,
        claim: &Claim,
        skb: &SkBuff,
        state: &HookState<'_>,
        start: FrameStart,
        keep: usize,
        bh: &BhDisabled<'_>,
    ) -> u32 {
        let frame = claim.offset;
        let buf = &self.buf;

        let FrameStart { mac, net } = start;
        // By the invariant of `FrameStart`; both are small offsets within the skb head.
        let maclen = (net - mac) as usize;
        let netoff = tpacket_align(TPACKET2_HDRLEN + maclen.max(16));
        let tp_len = skb.len() as usize + mac.unsigned_abs() as usize;
        let layout = self.layout();
        let (macoff, snaplen) = match layout.frame_size.checked_sub(netoff) {
            Some(room) => (
                netoff - maclen,
                tp_len.min(layout.snaplen).min(keep).min(room + maclen),
            ),
            // A MAC header too long for the frame: record the packet without its bytes.
            None => (TPACKET2_HDRLEN, 0),
        };
        let copied = buf
            .range(frame + macoff, snaplen)
            .and_then(|dst| skb.copy_bits(mac, dst))
            .is_ok();
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
        let hook = self.selection.hook;
        // The link-layer source address as af_packet reports it, where the frame has the
        // link-layer header (6 bytes on Ethernet and loopback).
        let (halen, addr) = match maclen {
            0 => (0, [0; MAX_LINK_SOURCE]),
            _ => skb.link_source(),
        };
        // The device: at the egress inet hooks the one the packet leaves through, which the
        // packet itself may not name yet at LOCAL_OUT.
        let ifindex = match hook {
            uapi::Hook::LocalOut | uapi::Hook::PostRouting => state.out_ifindex(),
            _ => skb.ifindex(),
        };
        let pkt_type = if hook.is_egress() {
            bindings::PACKET_OUTGOING as u8
        } else {
            skb.pkt_type()
        };
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
        head.put_u32(sll + sll::IFINDEX, ifindex as u32);
        head.put_u16(sll + sll::HATYPE, hatype);
        // `sll_halen` is the parser's length, as af_packet has it, of which `sll_addr` holds the
        // first 8 bytes; the rest of `sll_addr` stays zero rather than stale bytes.
        head.put(sll + sll::PKTTYPE_HALEN, [pkt_type, halen as u8]);
        head.put(sll + sll::ADDR, sll_addr(&addr));
        // The block is a part of this frame, which `Layout` keeps inside the buffer and at least
        // TPACKET2_HDRLEN long: the write cannot fail.
        let _ = buf.write_bytes(frame + hdr::LEN, &head.0);
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

/// Returns the first bytes of a link-layer address, as many as `sll_addr` holds.
#[inline(always)]
fn sll_addr(addr: &[u8; MAX_LINK_SOURCE]) -> [u8; sll::ADDR_LEN] {
    let mut out = [0; sll::ADDR_LEN];
    let mut i = 0;
    while i < sll::ADDR_LEN {
        out[i] = addr[i];
        i += 1;
    }
    out
}

/// Sets the owner bit of `slot`; returns `false` if a producer owns the slot already.
#[cfg(not(pktring_test_no_owner_map))]
fn owner_map_claim(owner_map: &mut BitmapVec, slot: usize) -> bool {
    matches!(owner_map.test_and_set_bit(slot), Ok(false))
}

/// Clears the owner bit of `slot`.
#[cfg(not(pktring_test_no_owner_map))]
fn owner_map_release(owner_map: &mut BitmapVec, slot: usize) {
    let _ = owner_map.clear_bit(slot);
}

/// The race the owner map closes, compiled back in for the selftests' reproducer only.
#[cfg(pktring_test_no_owner_map)]
fn owner_map_claim(_owner_map: &mut BitmapVec, _slot: usize) -> bool {
    true
}

#[cfg(pktring_test_no_owner_map)]
fn owner_map_release(_owner_map: &mut BitmapVec, _slot: usize) {}
