// SPDX-License-Identifier: GPL-2.0

//! Ghost state: what the checks know that the algorithm does not, and the checks themselves.
//!
//! Ghost state is made of `std` types, invisible to loom: loom runs one thread at a time, so it
//! sees exactly what happens in the interleaving being explored, and it adds no scheduling
//! point and no happens-before edge that the algorithm does not have.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};

use crate::ring::SLOTS;

/// An invariant of the protocol, checked as the model runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Invariant {
    /// No two producers are inside `fill()` for one slot at the same time.
    TwoWriters,
    /// No producer publishes a slot that another producer is still copying into.
    PublishedWhileCopying,
    /// A frame a reader takes as ready, or that is left published, is one whole packet.
    TornFrame,
    /// Every delivered packet is read exactly once or left in the ring, once all are done.
    LostOrDuplicated,
    /// No owner bit is left set once every producer is done: a leaked bit would make its slot
    /// drop every packet from then on.
    OwnerBitLeft,
}

impl Invariant {
    /// Every invariant.
    pub const ALL: [Self; 5] = [
        Self::TwoWriters,
        Self::PublishedWhileCopying,
        Self::TornFrame,
        Self::LostOrDuplicated,
        Self::OwnerBitLeft,
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
        }
    }

    fn bit(self) -> u8 {
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

/// A set of [`Invariant`]s to check.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Checks(u8);

impl Checks {
    /// Every invariant: what a model of the real thing checks.
    pub const ALL: Self = Self(0b1_1111);

    /// Just `invariant`: to show that a broken variant breaks that one too, not only the one
    /// that loom happens to meet first.
    pub const fn only(invariant: Invariant) -> Self {
        Self(1 << invariant as u8)
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
#[derive(Debug)]
pub struct Ghost {
    checks: Checks,
    trace: Trace,
    /// Per slot, the producers inside `fill()` for it right now.
    copying: [AtomicUsize; SLOTS],
}

impl Ghost {
    /// Makes the ghost state of a new ring, which checks `checks` and records into `trace`.
    pub fn new(checks: Checks, trace: Trace) -> Self {
        Self {
            checks,
            trace,
            copying: Default::default(),
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
}
