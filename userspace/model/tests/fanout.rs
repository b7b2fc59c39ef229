// SPDX-License-Identifier: GPL-2.0

//! Fanout under loom (issue 15): a group of two member rings, a producer per CPU that picks its
//! member by CPU (or round robin) and rolls over to the other member when its claim refuses the
//! packet, one ring lock at a time. Every packet is delivered once or dropped once, only when
//! both members refused it, and the counters add up. A rollover that peeks without the lock, a
//! group that drops without trying the other member, and a rollover that holds both locks are
//! each found broken.
//!
//! Each test prints what loom explored or found: run with `--nocapture` to see the interleaving
//! of each violation.

use pktring_model::{
    Checks, Event, FanoutConfig, Invariant, Mode, Payload, Reader, Report, Rollover, Violation,
};

/// Two producers (CPUs 0 and 1) with two packets each, two members of one slot each, nobody
/// reading, every interleaving. Each producer's first packet fills its own member; its second
/// finds it full and rolls over to the other member, which takes it if the other producer's
/// first packet has not, and else refuses it too: the group drops it.
const ROLLOVER: FanoutConfig = FanoutConfig {
    mode: Mode::Cpu,
    rollover: Rollover::Locked,
    payload: Payload::Cells,
    slots: 1,
    producers: 2,
    packets: 2,
    reader: None,
    looks: 0,
    preemption_bound: None,
    checks: Checks::ALL,
};

/// [`ROLLOVER`] with a consumer per member that looks at its head twice, so that slots are
/// handed back and claimed again, by the member's own producer or by one rolling over; up to
/// two preemptions (five threads in all).
const ROLLOVER_READ: FanoutConfig = FanoutConfig {
    reader: Some(Reader::UserBit),
    looks: 2,
    preemption_bound: Some(2),
    ..ROLLOVER
};

/// A broken variant must be found broken within this many executions.
const FOUND_WITHIN: usize = 20_000;

/// Explores `config`, which must hold.
fn holds(name: &str, config: FanoutConfig) -> Report {
    let report = config.check();
    println!(
        "{name}: holds in {} executions ({:.2?})",
        report.executions, report.elapsed
    );
    report
}

/// Explores `config`, which must fail: returns the violation.
fn fails(name: &str, config: FanoutConfig) -> Violation {
    let violation = match config.explore() {
        Ok(report) => panic!("{name}: no violation in {} executions", report.executions),
        Err(violation) => violation,
    };
    println!("{name}: {violation}");
    assert!(violation.execution <= FOUND_WITHIN, "{violation}");
    violation
}

/// Explores `config`, which must break `invariant`.
fn breaks(name: &str, config: FanoutConfig, invariant: Invariant) -> Violation {
    let violation = fails(name, config);
    assert_eq!(violation.invariant(), Some(invariant), "{violation}");
    violation
}

/// Returns `true` if `violation`'s trace has a packet roll over: claimed in a member other than
/// the one chosen for it.
fn rolled_over(violation: &Violation) -> bool {
    violation.trace.iter().any(|event| {
        matches!(*event, Event::MemberClaimed { packet, member, .. }
            if violation.trace.contains(&Event::Chosen { packet, member: 1 - member }))
    })
}

mod locked {
    //! The rollover the kernel is to implement: every invariant holds.

    use super::*;

    #[test]
    fn cpu_rollover() {
        holds("cpu_rollover", ROLLOVER);
    }

    #[test]
    fn cpu_rollover_relaxed_atomics() {
        holds(
            "cpu_rollover_relaxed_atomics",
            FanoutConfig {
                payload: Payload::RelaxedAtomics,
                ..ROLLOVER
            },
        );
    }

    #[test]
    fn cpu_rollover_read() {
        holds("cpu_rollover_read", ROLLOVER_READ);
    }

    /// Two slots a member and three packets a producer: the third rolls over.
    #[test]
    fn cpu_rollover_two_slots() {
        holds(
            "cpu_rollover_two_slots",
            FanoutConfig {
                slots: 2,
                packets: 3,
                ..ROLLOVER
            },
        );
    }

    /// Round robin: the counter picks each member in turn, whichever producer asks.
    #[test]
    fn round_robin_rollover() {
        holds(
            "round_robin_rollover",
            FanoutConfig {
                mode: Mode::RoundRobin,
                ..ROLLOVER
            },
        );
    }
}

mod broken {
    //! Rollovers that are wrong, each found so.

    use super::*;

    /// Without rollover, a packet whose member is full is dropped while the other member has
    /// room: producer 0's second packet finds member 0 full, and is dropped without member 1
    /// being asked.
    #[test]
    fn no_rollover_dropped_unrefused() {
        let violation = breaks(
            "no_rollover_dropped_unrefused",
            FanoutConfig {
                rollover: Rollover::Off,
                ..ROLLOVER
            },
            Invariant::DroppedUnrefused,
        );
        // Member 1 had room: nothing had claimed its one slot yet.
        let drop = violation
            .trace
            .iter()
            .position(|event| matches!(event, Event::GroupDropped { .. }))
            .expect("a drop");
        assert!(
            !violation.trace[..drop]
                .iter()
                .any(|event| matches!(event, Event::MemberClaimed { member: 1, .. })),
            "{violation}"
        );
    }

    /// A rollover that peeks at the other member's head without its lock and then claims it
    /// without looking again: producer 0's second packet finds member 1's slot free; producer
    /// 1's first packet claims it and copies into it; producer 0 claims it too. Loom reports
    /// the two copies unordered (a data race). (Checked alone: loom meets a lost packet first,
    /// [`peek_lost_packet`].)
    #[test]
    fn peek_data_race() {
        let violation = fails(
            "peek_data_race",
            FanoutConfig {
                rollover: Rollover::Peek,
                // With cells a copy is one step: this ghost check never sees two at once.
                checks: Checks::only(Invariant::TwoWriters),
                ..ROLLOVER
            },
        );
        assert!(violation.is_data_race(), "{violation}");
    }

    /// The same, with the words as the kernel writes them: two producers copy into member 1's
    /// slot at once.
    #[test]
    fn peek_two_writers() {
        let violation = breaks(
            "peek_two_writers",
            FanoutConfig {
                rollover: Rollover::Peek,
                payload: Payload::RelaxedAtomics,
                checks: Checks::only(Invariant::TwoWriters),
                ..ROLLOVER
            },
            Invariant::TwoWriters,
        );
        assert!(rolled_over(&violation), "{violation}");
        assert!(
            violation
                .trace
                .iter()
                .any(|event| matches!(event, Event::Peeked { free: true, .. })),
            "{violation}"
        );
    }

    /// And a packet is lost, though counted as delivered: what loom finds first (execution 16)
    /// is producer 1's first packet claiming and publishing member 1's slot between producer
    /// 0's peek and its claim, which then writes over a frame user space has not read.
    #[test]
    fn peek_lost_packet() {
        let violation = breaks(
            "peek_lost_packet",
            FanoutConfig {
                rollover: Rollover::Peek,
                payload: Payload::RelaxedAtomics,
                checks: Checks::only(Invariant::FanoutLostOrDuplicated),
                ..ROLLOVER
            },
            Invariant::FanoutLostOrDuplicated,
        );
        assert!(rolled_over(&violation), "{violation}");
    }

    /// With the consumers of [`ROLLOVER_READ`] and its bound: the bound is enough for loom to
    /// find the peek's lost packet there too.
    #[test]
    fn peek_read_lost_packet() {
        breaks(
            "peek_read_lost_packet",
            FanoutConfig {
                rollover: Rollover::Peek,
                payload: Payload::RelaxedAtomics,
                checks: Checks::only(Invariant::FanoutLostOrDuplicated),
                ..ROLLOVER_READ
            },
            Invariant::FanoutLostOrDuplicated,
        );
    }

    /// A rollover that holds the refusing member's lock while it takes the next one's: with
    /// both members full, producer 0 holds member 0's lock and waits for member 1's, which
    /// producer 1 holds while it waits for member 0's. Loom: every thread blocked.
    #[test]
    fn nested_locks_deadlock() {
        let violation = fails(
            "nested_locks_deadlock",
            FanoutConfig {
                rollover: Rollover::Nested,
                ..ROLLOVER
            },
        );
        assert!(violation.is_deadlock(), "{violation}");
    }
}
