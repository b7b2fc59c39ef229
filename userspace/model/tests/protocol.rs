// SPDX-License-Identifier: GPL-2.0

//! The claim/release protocol under loom: `ring.rs` as written holds; the same model without
//! the owner map, or with the 2018 RFC's intermediate status, is found broken.
//!
//! Each test prints what loom explored or found: run with `--nocapture` to see the interleaving
//! of each violation.

use pktring_model::{Checks, Claiming, Config, Invariant, Payload, Reader, Report, Violation};

/// Three producers, one packet each, nobody reading, every interleaving.
///
/// Two slots and three packets: the third claim finds the head back at slot 0, which the first
/// producer may have claimed and not yet published. This is the race itself.
const LAP: Config = Config {
    claiming: Claiming::OwnerMap,
    payload: Payload::Cells,
    producers: 3,
    packets: 1,
    reader: None,
    polls: 0,
    preemption_bound: None,
    checks: Checks::ALL,
};

/// [`LAP`] with a consumer that looks at its head twice, up to two preemptions.
///
/// Every interleaving is too many here (a million executions for one look); two preemptions
/// are what each violation of the broken variants below takes.
const LAP_READ: Config = Config {
    reader: Some(Reader::UserBit),
    polls: 2,
    preemption_bound: Some(2),
    ..LAP
};

/// Two producers with two packets each and a consumer that hands slots back, up to three
/// preemptions: slots are claimed again after user space returns them.
const REUSE: Config = Config {
    producers: 2,
    packets: 2,
    reader: Some(Reader::UserBit),
    polls: 2,
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
