// SPDX-License-Identifier: GPL-2.0

//! The claim/release protocol and its wake-ups under loom: `ring.rs` as written holds; the same
//! model without the owner map, or with the 2018 RFC's intermediate status, is found broken,
//! and so are the old poll rules (the frame before the head; the frame before `announced`
//! without the lap check).
//!
//! Each test prints what loom explored or found: run with `--nocapture` to see the interleaving
//! of each violation.

use pktring_model::{
    Announcing, Checks, Claiming, Config, Invariant, Payload, Reader, Report, Violation, Waiting,
    SLOTS,
};

/// Three producers, one packet each, nobody reading, every interleaving.
///
/// Two slots and three packets: the third claim finds the head back at slot 0, which the first
/// producer may have claimed and not yet published. This is the race itself.
const LAP: Config = Config {
    claiming: Claiming::OwnerMap,
    announcing: Announcing::Frontier,
    batch: None,
    payload: Payload::Cells,
    slots: SLOTS,
    producers: 3,
    packets: 1,
    reader: None,
    waiting: Waiting::Looks(0),
    preemption_bound: None,
    checks: Checks::ALL,
};

/// [`LAP`] with a consumer that looks at its head twice, up to two preemptions.
///
/// Every interleaving is too many here (a million executions for one look); two preemptions
/// are what each violation of the broken variants below takes.
const LAP_READ: Config = Config {
    reader: Some(Reader::UserBit),
    waiting: Waiting::Looks(2),
    preemption_bound: Some(2),
    ..LAP
};

/// Two producers with two packets each and a consumer that hands slots back, up to three
/// preemptions: slots are claimed again after user space returns them.
const REUSE: Config = Config {
    producers: 2,
    packets: 2,
    reader: Some(Reader::UserBit),
    waiting: Waiting::Looks(2),
    preemption_bound: Some(3),
    ..LAP
};

/// A broken variant must be found broken within this many executions: quickly, and so
/// deterministically in any CI.
const FOUND_WITHIN: usize = 20_000;

/// Explores `config`, which must hold.
fn holds(name: &str, config: Config) -> Report {
    let report = config.check();
    println!(
        "{name}: holds in {} executions ({:.2?})",
        report.executions, report.elapsed
    );
    report
}

/// Explores `config`, which must break `invariant` (`None`: loom must find a data race).
fn breaks(name: &str, config: Config, invariant: Option<Invariant>) -> Violation {
    let violation = match config.explore() {
        Ok(report) => panic!(
            "{name}: no violation in {} executions, expected {invariant:?}",
            report.executions
        ),
        Err(violation) => violation,
    };
    println!("{name}: {violation}");
    match invariant {
        Some(invariant) => assert_eq!(violation.invariant(), Some(invariant), "{violation}"),
        None => assert!(violation.is_data_race(), "{violation}"),
    }
    assert!(violation.execution <= FOUND_WITHIN, "{violation}");
    violation
}

mod owner_map {
    //! `ring.rs` as written: every invariant holds.

    use super::*;

    #[test]
    fn lap() {
        holds("lap", LAP);
    }

    #[test]
    fn lap_relaxed_atomics() {
        holds(
            "lap_relaxed_atomics",
            Config {
                payload: Payload::RelaxedAtomics,
                ..LAP
            },
        );
    }

    #[test]
    fn lap_read() {
        holds("lap_read", LAP_READ);
    }

    #[test]
    fn lap_read_relaxed_atomics() {
        holds(
            "lap_read_relaxed_atomics",
            Config {
                payload: Payload::RelaxedAtomics,
                ..LAP_READ
            },
        );
    }

    #[test]
    fn reuse() {
        holds("reuse", REUSE);
    }

    /// The owner map keeps `tp_status` at 0 until the frame is whole: a reader that takes any
    /// non-zero status as ready, as libpcap does, is safe.
    #[test]
    fn lap_read_libpcap() {
        holds(
            "lap_read_libpcap",
            Config {
                reader: Some(Reader::NonZero),
                ..LAP_READ
            },
        );
    }

    /// User space cannot make two producers write one slot: the owner map is the kernel's.
    #[test]
    fn lap_hostile_reader() {
        holds(
            "lap_hostile_reader",
            Config {
                reader: Some(Reader::Hostile),
                ..LAP_READ
            },
        );
    }
}

mod without_owner_map {
    //! `pktring_test_no_owner_map`, af_packet before the fix: broken, every way.

    use super::*;

    const LAP: Config = Config {
        claiming: Claiming::StatusOnly,
        ..super::LAP
    };

    /// What loom reports first: the third producer writes over the first one's copy, and
    /// nothing orders the two.
    #[test]
    fn lap_data_race() {
        breaks("lap_data_race", LAP, None);
    }

    #[test]
    fn lap_read_data_race() {
        breaks(
            "lap_read_data_race",
            Config {
                claiming: Claiming::StatusOnly,
                ..LAP_READ
            },
            None,
        );
    }

    #[test]
    fn reuse_data_race() {
        breaks(
            "reuse_data_race",
            Config {
                claiming: Claiming::StatusOnly,
                ..REUSE
            },
            None,
        );
    }

    /// With the words as the kernel writes them, each consequence, one at a time.
    fn lap_breaks(name: &str, invariant: Invariant) {
        let config = Config {
            payload: Payload::RelaxedAtomics,
            checks: Checks::only(invariant),
            ..LAP
        };
        breaks(name, config, Some(invariant));
    }

    #[test]
    fn lap_two_writers() {
        lap_breaks("lap_two_writers", Invariant::TwoWriters);
    }

    #[test]
    fn lap_published_while_copying() {
        lap_breaks(
            "lap_published_while_copying",
            Invariant::PublishedWhileCopying,
        );
    }

    #[test]
    fn lap_torn_frame() {
        lap_breaks("lap_torn_frame", Invariant::TornFrame);
    }

    #[test]
    fn lap_lost_packet() {
        lap_breaks("lap_lost_packet", Invariant::LostOrDuplicated);
    }
}

mod in_progress_status {
    //! The 2018 RFC: the claim stores `TP_STATUS_IN_PROGRESS` instead of setting an owner bit.

    use super::*;

    const LAP_READ: Config = Config {
        claiming: Claiming::InProgressStatus,
        ..super::LAP_READ
    };

    /// It does fix the producer race, for a reader that tests `TP_STATUS_USER`.
    #[test]
    fn lap_read_user_bit() {
        holds("lap_read_user_bit", LAP_READ);
    }

    /// But a reader that takes any non-zero status as ready, as libpcap does, reads frames
    /// that are still being written.
    #[test]
    fn lap_read_libpcap_torn_frame() {
        breaks(
            "lap_read_libpcap_torn_frame",
            Config {
                payload: Payload::RelaxedAtomics,
                reader: Some(Reader::NonZero),
                ..LAP_READ
            },
            Some(Invariant::TornFrame),
        );
    }

    #[test]
    fn lap_read_libpcap_data_race() {
        breaks(
            "lap_read_libpcap_data_race",
            Config {
                reader: Some(Reader::NonZero),
                ..LAP_READ
            },
            None,
        );
    }

    /// And the mark lives where user space can overwrite it: a process that hands back a slot
    /// being filled lets a second producer claim it.
    #[test]
    fn lap_hostile_reader_two_writers() {
        breaks(
            "lap_hostile_reader_two_writers",
            Config {
                payload: Payload::RelaxedAtomics,
                reader: Some(Reader::Hostile),
                checks: Checks::only(Invariant::TwoWriters),
                ..LAP_READ
            },
            Some(Invariant::TwoWriters),
        );
    }
}

mod wakeups {
    //! The readers: a consumer that reads what is ready, then sleeps in `poll()` until a
    //! producer (or the batch timer) wakes it, until the capture ends. `ring.rs` wakes it at
    //! the release frontier, loses no wake-up, and `poll()` agrees with the frontier announced,
    //! on a full ring too. The old rules are found wrong: "the frame before the head" reports
    //! readable with two frames in flight and sleeps the consumer through a wake-up; the frame
    //! before `announced`, without the lap check, reports readable early on a full ring.

    use super::*;
    use pktring_model::{Batch, Event, PollWait, Polled, Polling};

    /// Two producers with one packet each and a consumer that polls, on three slots, up to two
    /// preemptions: the second packet can be published before the first, and the ring never
    /// fills up. Every violation below takes two preemptions at most, and is found with this
    /// bound; three (107,221 executions, about a minute in debug) finds nothing more.
    const WAKE: Config = Config {
        claiming: Claiming::OwnerMap,
        announcing: Announcing::Frontier,
        batch: None,
        payload: Payload::Cells,
        slots: 3,
        producers: 2,
        packets: 1,
        reader: Some(Reader::UserBit),
        waiting: Waiting::Polls(Polling::RING_RS),
        preemption_bound: Some(2),
        checks: Checks::ALL,
    };

    /// [`WAKE`] on two slots: the two packets fill the ring, and the slot before `announced`
    /// can hold the second while the first is still being copied.
    const FULL: Config = Config { slots: 2, ..WAKE };

    /// [`FULL`] with two packets each: slots are handed back and claimed again, and packets
    /// are dropped.
    const REUSE: Config = Config { packets: 2, ..FULL };

    /// No wake-up is lost, the consumer is told to read only frames that are ready, and is
    /// told of every one: poll() agrees with the frontier announced.
    #[test]
    fn wake() {
        holds("wake", WAKE);
    }

    /// Three producers on four slots.
    #[test]
    fn wake_three_producers() {
        holds(
            "wake_three_producers",
            Config {
                slots: 4,
                producers: 3,
                ..WAKE
            },
        );
    }

    /// Batches of two frames: the consumer is woken by the second release, or by the timer,
    /// which a thread fires at any point where it is armed (and the checker at the end), and
    /// poll() agrees with what was announced, not with what was released.
    #[test]
    fn batch() {
        holds(
            "batch",
            Config {
                batch: Some(Batch { frames: 2 }),
                ..WAKE
            },
        );
    }

    /// A full ring: with the consumer's frame, slot 0, still being filled, packet 2 claims
    /// slot 1 and is published, and the slot before `announced` holds it, a lap ahead of the
    /// consumer. `lapped()` says so, and poll() reports nothing until slot 0 is published: the
    /// execution that [`unchecked::full_ring_readable_not_ready`] finds without the lap check,
    /// in this configuration.
    #[test]
    fn full_ring() {
        holds("full_ring", FULL);
    }

    /// With slots handed back and claimed again, and drops, on a full ring: no wake-up is
    /// lost, every packet delivered is read, and poll() agrees with the frontier announced.
    #[test]
    fn reuse_no_lost_wakeup() {
        holds("reuse_no_lost_wakeup", REUSE);
    }

    /// Batches of two frames on a full ring, with slots claimed again: `lapped()` counts the
    /// frames released and not announced (`unannounced`) as well as those in flight, and here
    /// that counts (without `unannounced`, loom finds poll() disagreeing with the frames
    /// announced, in execution 93,952). 129,329 executions, some 95 s in debug: `cargo test -p
    /// pktring-model -- --ignored` runs it.
    #[test]
    #[ignore = "95 s in debug"]
    fn batch_reuse() {
        holds(
            "batch_reuse",
            Config {
                batch: Some(Batch { frames: 2 }),
                ..REUSE
            },
        );
    }

    /// The consumer's own frame, slot 0, is claimed and not published, and another, later one
    /// is: the interleaving behind a readable poll() and a frame not ready. (With one packet
    /// a producer, each slot is claimed once at most.)
    fn assert_told_of_later_frame(violation: &Violation) {
        let trace = &violation.trace;
        let published = |slot| {
            trace
                .iter()
                .any(|event| matches!(*event, Event::Published { slot: s, .. } if s == slot))
        };
        let claimed = |slot| {
            trace
                .iter()
                .any(|event| matches!(*event, Event::Claimed { slot: s, .. } if s == slot))
        };
        assert!(claimed(0) && !published(0), "{violation}");
        assert!(published(1), "{violation}");
        assert!(
            trace
                .iter()
                .any(|event| matches!(*event, Event::Polled { readable: true, .. })),
            "{violation}"
        );
    }

    /// The barrier of `poll_wait()` is what makes the end of a capture reach a consumer about
    /// to sleep: without it, the consumer's test of the error may read 0 while `end()`'s test
    /// of the queue finds nobody, and it sleeps for good (loom: every thread left blocked).
    /// Frame wake-ups do not depend on it: the swaps of `woken` order the two sides by
    /// themselves.
    #[test]
    fn end_without_poll_wait_barrier_lost() {
        let config = Config {
            waiting: Waiting::Polls(Polling {
                poll_wait: PollWait::NoBarrier,
                ..Polling::RING_RS
            }),
            ..WAKE
        };
        let violation = match config.explore() {
            Ok(report) => panic!(
                "end_without_poll_wait_barrier_lost: no violation in {} executions",
                report.executions
            ),
            Err(violation) => violation,
        };
        println!("end_without_poll_wait_barrier_lost: {violation}");
        assert!(violation.is_deadlock(), "{violation}");
        assert!(violation.trace.contains(&Event::Ends), "{violation}");
        assert!(violation.execution <= FOUND_WITHIN, "{violation}");
    }

    /// `woken` spares the wake-ups between two looks of a poller: every look must clear it.
    /// Cleared only when `poll()` registers, loom finds packet 1's wake-up reaching a consumer
    /// that has read packet 1 already; it looks again, finds nothing, and sleeps with `woken`
    /// set; packet 2's release sends no wake-up, and the consumer sleeps with packet 2 ready.
    #[test]
    fn woken_cleared_only_when_registering_lost() {
        let violation = breaks(
            "woken_cleared_only_when_registering_lost",
            Config {
                waiting: Waiting::Polls(Polling {
                    polled: Polled::FirstLook,
                    ..Polling::RING_RS
                }),
                ..WAKE
            },
            Some(Invariant::LostWakeUp),
        );
        assert!(violation.trace.contains(&Event::WakeSkipped), "{violation}");
    }

    mod head {
        //! The old rule: `poll()` is readable if the frame before the head belongs to user
        //! space, and every release wakes the readers.

        use super::*;

        const WAKE: Config = Config {
            announcing: Announcing::Head,
            ..super::WAKE
        };

        /// With [`super::WAKE`], where `ring.rs` holds: packet 2 claims slot 1 after packet 1
        /// claimed slot 0, and is published first; the frame before the head is then packet
        /// 2's, and poll() reports readable while the consumer's frame, slot 0, is still being
        /// filled. (Whether packet 1 is copying still or has copied and not yet released is one
        /// interleaving to loom: the consumer never touches the words of a frame not ready.)
        #[test]
        fn readable_while_copying() {
            let violation = breaks(
                "head_readable_while_copying",
                Config {
                    checks: Checks::only(Invariant::ReadableNotReady),
                    ..WAKE
                },
                Some(Invariant::ReadableNotReady),
            );
            assert_told_of_later_frame(&violation);
        }

        /// And the other way round: with packet 1 published and packet 2 claimed after it,
        /// the frame before the head is packet 2's, still being filled, and poll() reports
        /// nothing while the consumer's frame is ready. The consumer sleeps until packet 2's
        /// release wakes it.
        #[test]
        fn not_readable_while_ready() {
            let violation = breaks(
                "head_not_readable_while_ready",
                Config {
                    checks: Checks::only(Invariant::PollDisagrees),
                    ..WAKE
                },
                Some(Invariant::PollDisagrees),
            );
            assert!(violation.message.contains("readable false"), "{violation}");
        }

        /// Which loses the wake-up for a frame: packet 1's release wakes nobody, the consumer
        /// not being registered yet; it registers, and finds the frame before the head, packet
        /// 2's, still being filled. It sleeps with packet 1 ready, until packet 2's release
        /// wakes it. `ring.rs` finds packet 1's frame announced, and does not sleep.
        #[test]
        fn wakeup_lost_until_next_release() {
            let violation = breaks(
                "head_wakeup_lost_until_next_release",
                Config {
                    checks: Checks::only(Invariant::LostWakeUp),
                    ..WAKE
                },
                Some(Invariant::LostWakeUp),
            );
            assert!(violation.trace.contains(&Event::Sleeps), "{violation}");
        }
    }

    mod one_look {
        //! `readable()` without the ring lock, reading the readiness word once
        //! ([`Announcing::FrontierOneLook`]): `ring.rs` reads it again after testing the frame.

        use super::*;

        const FULL: Config = Config {
            announcing: Announcing::FrontierOneLook,
            ..super::FULL
        };

        /// The consumer reads a word that says "not lapped", from before packet 2 filled the
        /// ring; its test of the slot before `announced`, slot 1, sees packet 2 there, and it
        /// reports readable while packet 1's frame in slot 0 is not visible to it. Nothing
        /// orders its read of the word after packet 1's release: only the second read, which
        /// the acquire of slot 1's status makes see at least packet 2's claim and its lap.
        #[test]
        fn full_ring_readable_not_ready() {
            let violation = breaks(
                "one_look_full_ring_readable_not_ready",
                Config {
                    checks: Checks::only(Invariant::ReadableNotReady),
                    ..FULL
                },
                Some(Invariant::ReadableNotReady),
            );
            let trace = &violation.trace;
            assert!(
                trace.iter().any(|event| matches!(
                    *event,
                    Event::Polled {
                        readable: true,
                        prev: 1,
                        ..
                    }
                )),
                "{violation}"
            );
            assert!(
                trace
                    .iter()
                    .any(|event| matches!(*event, Event::Claimed { slot: 1, .. })),
                "{violation}"
            );
        }
    }

    mod unchecked {
        //! `ring.rs` before 356f032: `poll()` is readable if the frame before `announced`
        //! belongs to user space, whatever lap it is from ([`Announcing::FrontierUnchecked`]).

        use super::*;

        const FULL: Config = Config {
            announcing: Announcing::FrontierUnchecked,
            ..super::FULL
        };

        /// Once the ring is full, the slot before `announced` holds a frame of the next lap:
        /// with the consumer's frame, the oldest in flight, still being filled, the last one
        /// claimed is published, and `readable()` reports it. The consumer spins on poll()
        /// until its frame is published (it is never woken for it: that release finds the
        /// consumer awake). What [`super::full_ring`] checks that `lapped()` fixes.
        #[test]
        fn full_ring_readable_not_ready() {
            let violation = breaks(
                "unchecked_full_ring_readable_not_ready",
                Config {
                    checks: Checks::only(Invariant::ReadableNotReady),
                    ..FULL
                },
                Some(Invariant::ReadableNotReady),
            );
            assert_told_of_later_frame(&violation);
        }
    }
}
