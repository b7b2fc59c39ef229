// SPDX-License-Identifier: GPL-2.0

//! The checker: runs producers and a consumer on a ring under loom, and reports the first
//! execution that breaks an invariant.

use core::sync::atomic::Ordering::Acquire;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use loom::thread;
use std::sync::Arc;

use crate::frame::{Packet, Payload};
use crate::ghost::{Checks, Event, Ghost, Invariant, Trace, LOOM_DATA_RACE, LOOM_DEADLOCK};
use crate::ring::{Announcing, Batch, Claiming, Ring, TP_STATUS_KERNEL};
use crate::user::{Consumer, Reader};
use crate::wait::{Polling, Readers};

/// How the consumer waits for frames.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// It looks at the frame at its head this many times, and never sleeps; the ring has no
    /// readers to wake.
    Looks(usize),
    /// It reads every frame that is ready, then sleeps in `poll()` until woken, until the
    /// capture ends ([`Consumer::run`]); `poll()` works as said.
    Polls(Polling),
}

/// One model to check: the variant of the algorithm, and the threads that run it.
///
/// Each execution makes a fresh ring of `slots` free slots, starts `producers` threads that
/// each offer `packets` packets (ids 1, 2, ... in producer order), and, with a `reader`, a
/// consumer thread that waits for frames as `waiting` says. With a consumer that polls, and
/// batching, a thread fires the batch timer once at any point where it is armed; when every
/// producer is done, the checker fires it if it is armed still, checks that the consumer is
/// not asleep with a frame ready, and ends the capture, which wakes the consumer to read what
/// is left and return. When all are done, it checks that no owner bit is left set, that every
/// frame still published is whole, and that every delivered packet was read exactly once or
/// is still in the ring (not with a [`Reader::Hostile`], which throws frames away unread).
#[derive(Copy, Clone, Debug)]
pub struct Config {
    /// How producers claim a slot.
    pub claiming: Claiming,
    /// What `poll()` reports and whom the producers wake.
    pub announcing: Announcing,
    /// Batched wake-ups, if any.
    pub batch: Option<Batch>,
    /// What the frames' words are made of.
    pub payload: Payload,
    /// Slots in the ring, at most 64.
    pub slots: usize,
    /// Producer threads (the CPUs the hook runs on).
    pub producers: usize,
    /// Packets each producer offers, one after the other.
    pub packets: usize,
    /// The consumer, if any; without one, no slot is ever handed back.
    pub reader: Option<Reader>,
    /// How the consumer waits for frames; unused without a reader.
    pub waiting: Waiting,
    /// Loom's bound on preemptions per execution; `None` explores every interleaving.
    pub preemption_bound: Option<usize>,
    /// The invariants checked; loom checks for data races on [`Payload::Cells`] regardless.
    pub checks: Checks,
}

/// A model that held in every execution explored.
#[derive(Copy, Clone, Debug)]
pub struct Report {
    /// Executions explored.
    pub executions: usize,
    /// Time taken.
    pub elapsed: Duration,
}

/// The first execution of a model that broke an invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The panic message: an [`Invariant`]'s, loom's own for a data race or a deadlock, or
    /// another panic.
    pub message: String,
    /// Which execution it was, counting from 1.
    pub execution: usize,
    /// Time taken to find it.
    pub elapsed: Duration,
    /// The steps of that execution, up to the violation.
    pub trace: Vec<Event>,
}

impl Violation {
    /// Returns the invariant broken, or `None` for a data race, a deadlock or another panic.
    pub fn invariant(&self) -> Option<Invariant> {
        Invariant::ALL
            .into_iter()
            .find(|invariant| self.message.starts_with(invariant.message()))
    }

    /// Returns `true` if loom found a data race on a [`Payload::Cells`] word.
    pub fn is_data_race(&self) -> bool {
        self.message.trim_start().starts_with(LOOM_DATA_RACE)
    }

    /// Returns `true` if loom found every thread left blocked: a consumer that sleeps for good.
    pub fn is_deadlock(&self) -> bool {
        self.message.trim_start().starts_with(LOOM_DEADLOCK)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "found in execution {} after {:.2?}: {}",
            self.execution,
            self.elapsed,
            self.message.trim()
        )?;
        for event in &self.trace {
            writeln!(f, "    {event}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Explores the model; panics with the [`Violation`] if an execution breaks an invariant.
    pub fn check(&self) -> Report {
        self.explore()
            .unwrap_or_else(|violation| panic!("{violation}"))
    }

    /// Explores the model until an execution breaks an invariant, and returns that violation.
    pub fn explore(&self) -> Result<Report, Violation> {
        let config = *self;
        explore(self.preemption_bound, move |trace| config.execution(trace))
    }

    /// Returns `true` if the consumer polls.
    fn polls(&self) -> bool {
        self.reader.is_some() && matches!(self.waiting, Waiting::Polls(_))
    }

    /// One execution: start the threads, wait for them, check what they delivered.
    fn execution(self, trace: Trace) {
        let ghost = Ghost::new(self.checks, self.slots, trace);
        let readers = match self.waiting {
            Waiting::Polls(polling) if self.polls() => Some(Arc::new(Readers::new(polling))),
            _ => None,
        };
        let ring = Arc::new(Ring::new(
            self.claiming,
            self.announcing,
            self.batch,
            self.payload,
            self.slots,
            readers,
            ghost,
        ));
        let producers: Vec<_> = (0..self.producers)
            .map(|producer| {
                let ring = ring.clone();
                thread::spawn(move || {
                    (0..self.packets)
                        .map(|i| Packet {
                            id: (producer * self.packets + i + 1) as u32,
                        })
                        .filter(|packet| ring.receive(packet))
                        .map(|packet| packet.id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let consumer = self.reader.map(|reader| {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut consumer = Consumer::new(reader);
                match self.waiting {
                    Waiting::Looks(looks) => {
                        for _ in 0..looks {
                            consumer.look(&ring);
                        }
                    }
                    Waiting::Polls(_) => consumer.run(&ring),
                }
                consumer.into_read()
            })
        });
        let timer = (self.polls() && self.batch.is_some()).then(|| {
            let ring = ring.clone();
            thread::spawn(move || {
                ring.timer_fires();
            })
        });
        // A thread that panicked has ended the execution already: these joins succeed.
        let delivered: Vec<u32> = producers
            .into_iter()
            .flat_map(|producer| producer.join().expect("producer"))
            .collect();
        if let Some(timer) = timer {
            timer.join().expect("timer");
        }
        if self.polls() {
            // A timer still armed fires in the end; nothing sets it again.
            while ring.timer_fires() {}
            ring.ghost().check_quiescent();
            ring.detached();
        }
        let read = consumer
            .map(|consumer| consumer.join().expect("consumer"))
            .unwrap_or_default();
        self.check_delivery(&ring, delivered, read);
    }

    /// With every thread done: the stats count every packet, no owner bit is left, each frame
    /// still published is whole, and every delivered packet was read exactly once or is still
    /// in the ring; with a consumer that polls, read.
    fn check_delivery(&self, ring: &Ring, mut delivered: Vec<u32>, read: Vec<u32>) {
        let stats = ring.take_stats();
        assert_eq!(stats.delivered, delivered.len() as u64);
        assert_eq!(
            stats.delivered + stats.drops,
            (self.producers * self.packets) as u64
        );
        // Frames left in the ring: none, once a consumer that polls has read what it was woken
        // for; with one that looks a few times, they count as delivered.
        let mut found = read;
        let mut left = Vec::new();
        for slot in 0..ring.slots() {
            ring.ghost()
                .check(Invariant::OwnerBitLeft, !ring.is_owned(slot), || {
                    format!("slot {slot}")
                });
            let frame = ring.frame(slot);
            let status = frame.status.load(Acquire);
            if status == TP_STATUS_KERNEL {
                continue;
            }
            let contents = frame.read();
            let packet = contents.packet_id();
            ring.ghost()
                .check(Invariant::TornFrame, packet.is_some(), || {
                    format!("slot {slot} left in the ring, status {status:#x}, {contents:?}")
                });
            left.extend(packet);
        }
        // A hostile reader throws frames away unread.
        if self.reader == Some(Reader::Hostile) {
            return;
        }
        if !self.polls() {
            found.append(&mut left);
        }
        delivered.sort_unstable();
        found.sort_unstable();
        ring.ghost().check(
            Invariant::LostOrDuplicated,
            delivered == found && left.is_empty(),
            || {
                if self.polls() {
                    format!("delivered {delivered:?}, read {found:?}, left unread {left:?}")
                } else {
                    format!("delivered {delivered:?}, read or left in the ring {found:?}")
                }
            },
        );
    }
}

/// Runs `execution` under loom, with at most `preemption_bound` preemptions, until one panics;
/// each gets a fresh [`Trace`] to record into.
pub(crate) fn explore(
    preemption_bound: Option<usize>,
    execution: impl Fn(Trace) + Send + Sync + 'static,
) -> Result<Report, Violation> {
    let trace = Trace::default();
    let executions = Arc::new(AtomicUsize::new(0));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    let start = Instant::now();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let (trace, executions) = (trace.clone(), executions.clone());
        builder.check(move || {
            executions.fetch_add(1, SeqCst);
            trace.clear();
            execution(trace.clone());
        });
    }));
    let elapsed = start.elapsed();
    let executions = executions.load(SeqCst);
    match result {
        Ok(()) => Ok(Report {
            executions,
            elapsed,
        }),
        Err(payload) => Err(Violation {
            message: panic_message(payload.as_ref()),
            execution: executions,
            elapsed,
            trace: trace.events(),
        }),
    }
}

/// Returns the message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else {
        "a panic without a message".to_owned()
    }
}
