// SPDX-License-Identifier: GPL-2.0

//! Ghost state: what the checks know that the algorithm does not, and the checks themselves.
//!
//! Ghost state is made of `std` types, invisible to loom: loom runs one thread at a time, so it
//! sees exactly what happens in the interleaving being explored, and it adds no scheduling
//! point and no happens-before edge that the algorithm does not have.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};

/// An invariant of the protocol, checked as the model runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// No two producers are inside `fill()` for one slot at the same time.
    TwoWriters,
    /// No producer publishes a slot that another producer is still copying into.
    PublishedWhileCopying,
    /// A frame a reader takes as ready, or that is left published, is one whole packet.
    TornFrame,
    /// Every delivered packet is read exactly once or left in the ring, once all are done; with
    /// a consumer that polls, read.
    LostOrDuplicated,
    /// No owner bit is left set once every producer is done: a leaked bit would make its slot
    /// drop every packet from then on.
    OwnerBitLeft,
    /// When `poll()` reports the ring readable, the consumer finds its next frame ready.
    ReadableNotReady,
    /// `poll()` reports the ring readable exactly when the consumer has not read every frame
    /// the readers were told of (`announced`).
    PollDisagrees,
    /// A consumer asleep in `poll()` is woken once its next frame has been announced: no
    /// wake-up is lost.
    LostWakeUp,
    /// Fanout: every packet sent to the group is, once all are done, either read exactly once
    /// or left in exactly one member's ring, or dropped exactly once: never in two members,
    /// twice in one, lost, or both delivered and dropped.
    FanoutLostOrDuplicated,
    /// Fanout: the group drops a packet only after every member's claim refused it.
    DroppedUnrefused,
    /// Fanout: the counters add up. Each member's `delivered` is the number of packets found
    /// in it (read, or left in its ring), the members' `delivered` and `drops` add up to the
    /// packets sent, each member's `rollovers` is the number of packets found in it that were
    /// chosen for another member, and its `drops` the number dropped that were chosen for it.
    FanoutCounters,
}

impl Invariant {
    /// Every invariant.
    pub const ALL: [Self; 11] = [
        Self::TwoWriters,
        Self::PublishedWhileCopying,
        Self::TornFrame,
        Self::LostOrDuplicated,
        Self::OwnerBitLeft,
        Self::ReadableNotReady,
        Self::PollDisagrees,
        Self::LostWakeUp,
        Self::FanoutLostOrDuplicated,
        Self::DroppedUnrefused,
        Self::FanoutCounters,
    ];

    /// Returns the message that a violation of the invariant starts with.
    pub fn message(self) -> &'static str {
        match self {
            Self::TwoWriters => "two producers write one slot at once",
            Self::PublishedWhileCopying => {
                "a producer published a slot another producer is still copying into"
            }
            Self::TornFrame => "a reader saw a torn frame",
            Self::LostOrDuplicated => "a delivered packet was lost or duplicated",
            Self::OwnerBitLeft => "an owner bit is still set with every producer done",
            Self::ReadableNotReady => {
                "poll() reported the ring readable and the consumer's next frame is not ready"
            }
            Self::PollDisagrees => "poll() disagrees with the frames announced to the readers",
            Self::LostWakeUp => "a wake-up was lost: the consumer sleeps with a frame announced",
            Self::FanoutLostOrDuplicated => {
                "a packet sent to the fanout group was lost, duplicated, or delivered and dropped"
            }
            Self::DroppedUnrefused => {
                "the fanout group dropped a packet that not every member refused"
            }
            Self::FanoutCounters => "the fanout group's counters do not add up",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u8
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Loom's own message for two accesses to a [`Payload::Cells`](crate::Payload::Cells) word that
/// happens-before does not order, one of them a write: a data race.
pub const LOOM_DATA_RACE: &str = "Causality violation";

/// Loom's own message for an execution in which every thread that has not finished is blocked:
/// here, a consumer asleep in `poll()` that nothing will ever wake.
pub const LOOM_DEADLOCK: &str = "deadlock";

/// A set of [`Invariant`]s to check.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Checks(u16);

impl Checks {
    /// Every invariant: what a model of the real thing checks.
    pub const ALL: Self = Self((1 << Invariant::ALL.len()) - 1);

    /// These invariants but `invariant`.
    pub const fn without(self, invariant: Invariant) -> Self {
        Self(self.0 & !(1 << invariant as u16))
    }

    /// Just `invariant`: to show that a broken variant breaks that one too, not only the one
    /// that loom happens to meet first.
    pub const fn only(invariant: Invariant) -> Self {
        Self(1 << invariant as u16)
    }

    /// Returns `true` if `invariant` is checked.
    pub fn contains(self, invariant: Invariant) -> bool {
        self.0 & invariant.bit() != 0
    }
}

/// One step of an execution, as the trace records it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `claim()` took `slot` for `packet`.
    Claimed {
        /// The packet's id.
        packet: u32,
        /// The slot claimed.
        slot: usize,
    },
    /// `claim()` found the head slot taken: `packet` was dropped.
    Dropped {
        /// The packet's id.
        packet: u32,
    },
    /// `fill()` started copying `packet` into `slot`.
    Copying {
        /// The packet's id.
        packet: u32,
        /// The slot written.
        slot: usize,
    },
    /// `fill()` finished copying `packet` into `slot`.
    Copied {
        /// The packet's id.
        packet: u32,
        /// The slot written.
        slot: usize,
    },
    /// `release()` published `packet` in `slot`.
    Published {
        /// The packet's id.
        packet: u32,
        /// The slot published.
        slot: usize,
    },
    /// The consumer took the frame in `slot` as ready, for its status `status`.
    Takes {
        /// The slot taken.
        slot: usize,
        /// The `tp_status` it acquired.
        status: u32,
    },
    /// The consumer read the frame in `slot`.
    Read {
        /// The slot read.
        slot: usize,
        /// The packet it holds, `None` if the frame is torn.
        packet: Option<u32>,
    },
    /// The consumer stored `TP_STATUS_KERNEL` into `slot`.
    HandedBack {
        /// The slot handed back.
        slot: usize,
    },
    /// The consumer found the frame in `slot` not ready.
    NotReady {
        /// The slot looked at.
        slot: usize,
        /// The `tp_status` it acquired.
        status: u32,
    },
    /// Readers are told of the frames before `frontier` (`announced` moved).
    Announced {
        /// The slot `announced` now is.
        frontier: usize,
    },
    /// The batch timer was set.
    TimerSet,
    /// A release announced frames with the batch timer set, and cancelled it.
    TimerCancelled {
        /// `hrtimer_try_to_cancel()` stopped it; if not, it has fired already.
        cancelled: bool,
    },
    /// The batch timer fired: its handler runs.
    TimerFires,
    /// The readers are woken (`Readers::wake`).
    Wakes,
    /// A wake-up is not sent: one was, and no poller has looked since.
    WakeSkipped,
    /// The capture ends (`Readers::end`): the readers are woken with `POLLERR`.
    Ends,
    /// A wake-up found nobody on the queue.
    NobodyToWake {
        /// The events it was for.
        events: u32,
    },
    /// The consumer's `poll()` registered on the readers' queue.
    Registered,
    /// The file's `poll()` asked the ring whether it is readable.
    Polled {
        /// What it answered.
        readable: bool,
        /// The slot whose status it tested: the one before `announced` (or the head).
        prev: usize,
        /// That slot's `tp_status`.
        status: u32,
    },
    /// The file's `poll()` asked the ring whether it is readable, and it said no without
    /// testing a frame: every slot was claimed since readers were last told (`lapped()`).
    Lapped,
    /// The consumer sleeps in `poll()`: nothing to report, and no wake-up pending.
    Sleeps,
    /// A wake-up reached the consumer's `poll()`.
    Woken {
        /// The events it was for.
        events: u32,
    },
    /// Fanout: the group's mode chose `member` for `packet`.
    Chosen {
        /// The packet's id.
        packet: u32,
        /// The member chosen.
        member: usize,
    },
    /// Fanout: `member`'s claim refused `packet`: its head slot is not free.
    Refused {
        /// The packet's id.
        packet: u32,
        /// The member that refused it.
        member: usize,
    },
    /// Fanout, [`Rollover::Peek`](crate::Rollover::Peek): a look at `member`'s head slot
    /// without its lock found it `free` or not.
    Peeked {
        /// The packet's id.
        packet: u32,
        /// The member looked at.
        member: usize,
        /// Whether its head slot's `tp_status` read `TP_STATUS_KERNEL`.
        free: bool,
    },
    /// Fanout: `member` claimed `slot` for `packet`.
    MemberClaimed {
        /// The packet's id.
        packet: u32,
        /// The member.
        member: usize,
        /// Its slot claimed.
        slot: usize,
    },
    /// Fanout: `member` published `packet` in `slot`.
    MemberPublished {
        /// The packet's id.
        packet: u32,
        /// The member.
        member: usize,
        /// Its slot.
        slot: usize,
    },
    /// Fanout: the group dropped `packet`.
    GroupDropped {
        /// The packet's id.
        packet: u32,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Claimed { packet, slot } => write!(f, "packet {packet} claims slot {slot}"),
            Self::Dropped { packet } => write!(f, "packet {packet} is dropped: head slot taken"),
            Self::Copying { packet, slot } => {
                write!(f, "packet {packet} starts copying into slot {slot}")
            }
            Self::Copied { packet, slot } => {
                write!(f, "packet {packet} is copied into slot {slot}")
            }
            Self::Published { packet, slot } => {
                write!(f, "packet {packet} is published in slot {slot}")
            }
            Self::Takes { slot, status } => {
                write!(
                    f,
                    "consumer takes slot {slot} as ready (status {status:#x})"
                )
            }
            Self::Read {
                slot,
                packet: Some(packet),
            } => write!(f, "consumer reads packet {packet} from slot {slot}"),
            Self::Read { slot, packet: None } => {
                write!(f, "consumer reads a torn frame from slot {slot}")
            }
            Self::HandedBack { slot } => write!(f, "consumer hands slot {slot} back"),
            Self::NotReady { slot, status } => {
                write!(
                    f,
                    "consumer finds slot {slot} not ready (status {status:#x})"
                )
            }
            Self::Announced { frontier } => {
                write!(f, "readers are told of the frames before slot {frontier}")
            }
            Self::TimerSet => write!(f, "the batch timer is set"),
            Self::TimerCancelled { cancelled: true } => write!(f, "the batch timer is cancelled"),
            Self::TimerCancelled { cancelled: false } => {
                write!(f, "the batch timer is cancelled too late: it has fired")
            }
            Self::TimerFires => write!(f, "the batch timer fires"),
            Self::Wakes => write!(f, "the readers are woken"),
            Self::WakeSkipped => {
                write!(
                    f,
                    "no wake-up sent: one was, and no poller has looked since"
                )
            }
            Self::Ends => write!(f, "the capture ends: the readers are woken with POLLERR"),
            Self::NobodyToWake { events } => {
                write!(f, "nobody is on the queue to wake (events {events:#x})")
            }
            Self::Registered => write!(f, "consumer's poll() registers on the readers' queue"),
            Self::Polled {
                readable,
                prev,
                status,
            } => write!(
                f,
                "poll() reports {}: slot {prev} has status {status:#x}",
                if readable { "readable" } else { "not readable" }
            ),
            Self::Lapped => write!(
                f,
                "poll() reports not readable: every slot was claimed since readers were told"
            ),
            Self::Sleeps => write!(f, "consumer sleeps in poll()"),
            Self::Woken { events } => write!(f, "consumer's poll() is woken (events {events:#x})"),
            Self::Chosen { packet, member } => {
                write!(f, "packet {packet} is for member {member}")
            }
            Self::Refused { packet, member } => {
                write!(
                    f,
                    "member {member} refuses packet {packet}: head slot taken"
                )
            }
            Self::Peeked {
                packet,
                member,
                free,
            } => write!(
                f,
                "packet {packet} finds member {member}'s head slot {} (without its lock)",
                if free { "free" } else { "taken" }
            ),
            Self::MemberClaimed {
                packet,
                member,
                slot,
            } => write!(f, "packet {packet} claims slot {slot} of member {member}"),
            Self::MemberPublished {
                packet,
                member,
                slot,
            } => write!(
                f,
                "packet {packet} is published in slot {slot} of member {member}"
            ),
            Self::GroupDropped { packet } => {
                write!(f, "packet {packet} is dropped by the fanout group")
            }
        }
    }
}

/// A shared record of [`Event`]s; cloning it shares the record, which outlives the execution.
#[derive(Clone, Debug, Default)]
pub struct Trace(Arc<Mutex<Vec<Event>>>);

impl Trace {
    /// Records `event`.
    pub fn record(&self, event: Event) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    /// Forgets every event, for the next execution.
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Returns the events recorded, in order.
    pub fn events(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The ghost state of a ring, and the checks made on it.
///
/// Frames are also counted in the order they are claimed, which is ring order: claim `n` is in
/// slot `n % slots`, and the consumer, which reads in ring order too, reads it as its `n`th
/// frame. That says which lap a slot's frame is from, which the kernel never needs to know.
#[derive(Debug)]
pub struct Ghost {
    checks: Checks,
    trace: Trace,
    /// Per slot, the producers inside `fill()` for it right now.
    copying: Vec<AtomicUsize>,
    /// Frames claimed so far; under the ring lock.
    claims: AtomicUsize,
    /// Per slot, the number of the last claim of it; under the ring lock.
    claim_of: Vec<AtomicUsize>,
    /// The number of the first claim readers were not told of: the frontier last announced,
    /// in claim order; under the ring lock.
    announced: AtomicUsize,
    /// Frames the consumer has read and handed back.
    consumed: AtomicUsize,
    /// The consumer's `poll()` found nothing to report and sleeps, or is about to.
    asleep: AtomicBool,
    /// A wake-up reached the consumer's `poll()` that it has not seen yet.
    pending: AtomicBool,
    /// Wakers that decided to wake the readers and have not finished waking them.
    waking: AtomicUsize,
    /// The readers were woken, or a wake-up was left to one already sent, for the frames before
    /// this one (in claim order).
    woken_for: AtomicUsize,
}

impl Ghost {
    /// Makes the ghost state of a new ring of `slots` slots, which checks `checks` and records
    /// into `trace`.
    pub fn new(checks: Checks, slots: usize, trace: Trace) -> Self {
        Self {
            checks,
            trace,
            copying: (0..slots).map(|_| AtomicUsize::new(0)).collect(),
            claims: AtomicUsize::new(0),
            claim_of: (0..slots).map(|_| AtomicUsize::new(0)).collect(),
            announced: AtomicUsize::new(0),
            consumed: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            waking: AtomicUsize::new(0),
            woken_for: AtomicUsize::new(0),
        }
    }

    /// Records `event`.
    pub fn record(&self, event: Event) {
        self.trace.record(event);
    }

    /// Panics with `invariant`'s message and `detail` if `holds` is false and `invariant` is
    /// checked.
    pub fn check(&self, invariant: Invariant, holds: bool, detail: impl FnOnce() -> String) {
        if !holds && self.checks.contains(invariant) {
            panic!("{invariant}: {}", detail());
        }
    }

    /// A producer starts copying `packet` into `slot`: no other may be copying into it.
    pub(crate) fn start_copy(&self, packet: u32, slot: usize) {
        self.record(Event::Copying { packet, slot });
        let others = self.copying[slot].fetch_add(1, SeqCst);
        self.check(Invariant::TwoWriters, others == 0, || {
            format!("packet {packet} into slot {slot}, which {others} other(s) are writing")
        });
    }

    /// A producer is done copying `packet` into `slot`.
    pub(crate) fn end_copy(&self, packet: u32, slot: usize) {
        self.copying[slot].fetch_sub(1, SeqCst);
        self.record(Event::Copied { packet, slot });
    }

    /// A producer that is done copying is about to publish `slot`: no other may be copying
    /// into it.
    pub(crate) fn check_release(&self, slot: usize) {
        let copying = self.copying[slot].load(SeqCst);
        self.check(Invariant::PublishedWhileCopying, copying == 0, || {
            format!("slot {slot}, which {copying} other(s) are writing")
        });
    }

    /// `slot` is claimed, under the ring lock.
    pub(crate) fn claimed(&self, slot: usize) {
        let claim = self.claims.fetch_add(1, SeqCst);
        self.claim_of[slot].store(claim, SeqCst);
    }

    /// Readers are told of the frames before `frontier`, with `in_flight` slots claimed and not
    /// released, under the ring lock.
    pub(crate) fn announce(&self, frontier: usize, in_flight: usize) {
        self.frontier_moved(frontier, in_flight);
        self.record(Event::Announced { frontier });
    }

    /// The release frontier is `frontier`, with `in_flight` slots claimed and not released,
    /// under the ring lock: what the ghost takes readers to know of with
    /// [`Announcing::Head`](crate::Announcing::Head), which tells them nothing in particular.
    pub(crate) fn frontier_moved(&self, frontier: usize, in_flight: usize) {
        let claim = if in_flight == 0 {
            self.claims.load(SeqCst)
        } else {
            self.claim_of[frontier].load(SeqCst)
        };
        self.announced.store(claim, SeqCst);
    }

    /// Returns the first frame readers were not told of, in claim order.
    pub fn announced(&self) -> usize {
        self.announced.load(SeqCst)
    }

    /// Returns the frames the consumer has read and handed back: the claim number of its next.
    pub fn consumed(&self) -> usize {
        self.consumed.load(SeqCst)
    }

    /// The consumer hands its frame back and moves on.
    pub(crate) fn handed_back(&self) {
        self.consumed.fetch_add(1, SeqCst);
    }

    /// `readable()` answered `readable` from the status `status` of `prev`, with readers told
    /// of the frames before claim `announced`: it must say whether the consumer has frames it
    /// was told of and has not read.
    pub(crate) fn check_readable(
        &self,
        readable: bool,
        announced: usize,
        prev: usize,
        status: u32,
    ) {
        self.record(Event::Polled {
            readable,
            prev,
            status,
        });
        self.check_poll(readable, announced, || {
            format!("readable {readable} from slot {prev}, status {status:#x}")
        });
    }

    /// `readable()` answered not readable, every slot having been claimed since readers were
    /// told of the frames before claim `announced`: the consumer must have read all of them.
    pub(crate) fn check_lapped(&self, announced: usize) {
        self.record(Event::Lapped);
        self.check_poll(false, announced, || {
            "readable false, every slot claimed since readers were told".to_owned()
        });
    }

    /// `poll()` reports `readable`, with readers told of the frames before claim `announced`:
    /// [`Invariant::PollDisagrees`] unless the consumer has not read them all.
    fn check_poll(&self, readable: bool, announced: usize, answer: impl FnOnce() -> String) {
        let consumed = self.consumed();
        self.check(
            Invariant::PollDisagrees,
            readable == (consumed < announced),
            || {
                format!(
                    "{}, with the consumer at frame {consumed} and frames before {announced} \
                     announced",
                    answer()
                )
            },
        )
    }

    /// The consumer's `poll()` found nothing to report and sleeps unless a wake-up is pending.
    pub(crate) fn sleeps(&self) {
        self.asleep.store(true, SeqCst);
        self.record(Event::Sleeps);
    }

    /// A wake-up for `events` reached the consumer's `poll()`.
    pub(crate) fn woken(&self, events: u32) {
        self.pending.store(true, SeqCst);
        self.record(Event::Woken { events });
    }

    /// The consumer's `poll()` has seen the wake-ups so far, and asks the file again; or it
    /// returned, and the next starts afresh.
    pub(crate) fn wakes(&self) {
        self.pending.store(false, SeqCst);
        self.asleep.store(false, SeqCst);
    }

    /// Returns `true` if the consumer is asleep in `poll()`, or about to be, with no wake-up on
    /// its way.
    fn asleep_unwoken(&self) -> bool {
        self.asleep.load(SeqCst) && !self.pending.load(SeqCst)
    }

    /// A waker is about to test the queue and wake the pollers on it.
    pub(crate) fn wake_starts(&self) {
        self.waking.fetch_add(1, SeqCst);
    }

    /// A waker has woken the pollers on the queue, if any.
    pub(crate) fn wake_ends(&self) {
        self.waking.fetch_sub(1, SeqCst);
    }

    /// A thread that told readers of the frames before claim `announced` has woken them, or
    /// left it to a wake-up sent since the consumer last looked. Once no waker is between its
    /// decision to wake and its test of the queue, the consumer, if it has one of the frames
    /// readers were woken for to read, is not left asleep.
    pub(crate) fn check_woken(&self, announced: usize) {
        let woken_for = self.woken_for.fetch_max(announced, SeqCst).max(announced);
        if self.waking.load(SeqCst) != 0 {
            return;
        }
        let consumed = self.consumed();
        self.check(
            Invariant::LostWakeUp,
            !(consumed < woken_for && self.asleep_unwoken()),
            || {
                format!(
                    "consumer at frame {consumed}, the readers woken for the frames before \
                     {woken_for}"
                )
            },
        );
    }

    /// With every producer done and the timer fired: the consumer is not asleep with no
    /// wake-up coming while it has a frame to read (every frame claimed is published now).
    pub fn check_quiescent(&self) {
        let (consumed, claims) = (self.consumed(), self.claims.load(SeqCst));
        self.check(
            Invariant::LostWakeUp,
            !(consumed < claims && self.asleep_unwoken()),
            || {
                format!(
                    "every producer done, the consumer asleep at frame {consumed} of {claims}, \
                     frames before {} announced",
                    self.announced()
                )
            },
        );
    }
}
