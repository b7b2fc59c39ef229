// SPDX-License-Identifier: GPL-2.0

//! Fanout (issue 15), before the kernel has it: a group of member rings, each the ring of
//! `ring.rs` with its own lock, owner map, head and frames; a producer picks a member by the
//! group's mode and, if that member's claim refuses the packet, rolls over to the next one,
//! holding one ring lock at a time. The group drops a packet only when every member refused it.

use core::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use loom::sync::atomic::AtomicUsize;
use loom::thread;

use crate::check::{explore, Report, Violation};
use crate::frame::{Packet, Payload};
use crate::ghost::{Checks, Event, Ghost, Invariant, Trace};
use crate::ring::{Announcing, Claim, Claiming, Ring, TP_STATUS_KERNEL, TP_STATUS_USER};
use crate::user::{Consumer, Reader};

/// Members in a fanout group: the fewest with which a packet can roll over.
pub const MEMBERS: usize = 2;

/// How a producer picks the member for a packet (`PACKET_FANOUT_CPU`, `PACKET_FANOUT_LB`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The producer on CPU `i` (the `i`th producer thread) picks member `i % MEMBERS`.
    Cpu,
    /// Round robin: each packet picks the member after the last one picked, from a counter
    /// shared by the producers (a relaxed `fetch_add`).
    RoundRobin,
}

/// What a producer does when the member it picked refuses the packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Rollover {
    /// What the kernel is to implement (`PACKET_FANOUT_FLAG_ROLLOVER`): try the next member,
    /// and the next, each with `claim()` under that member's lock, which is released before
    /// the next member's is taken; drop the packet once every member refused it.
    Locked,
    /// Broken: no rollover; drop the packet when the member picked refuses it, whatever room
    /// the others have.
    Off,
    /// Broken: roll over by peeking, as af_packet's `packet_rcv_has_room()` does, but without
    /// its second look: test the next member's head slot's `tp_status` without the lock, and
    /// if it reads `TP_STATUS_KERNEL`, claim the slot under the lock without testing it (or
    /// its owner bit) again.
    Peek,
    /// Broken: roll over with the refusing member's lock still held: member A's lock, then
    /// member B's. Two producers rolling over in opposite directions take the two locks in
    /// opposite orders.
    Nested,
}

/// One fanout model to check: the group, and the threads that run it.
///
/// Each execution makes a group of [`MEMBERS`] rings of `slots` free slots each, starts
/// `producers` threads (the CPUs) that each offer `packets` packets (ids 1, 2, ... in producer
/// order) to the group, and, with a `reader`, a consumer per member that looks at its head
/// `looks` times. When all are done, it checks each member as [`crate::Config`] does (no owner
/// bit left, every frame left whole) and the group: every packet sent found exactly once in one
/// member (read, or left in its ring) or dropped exactly once
/// ([`Invariant::FanoutLostOrDuplicated`]), and the counters
/// ([`Invariant::FanoutCounters`]). Each drop is checked as it happens
/// ([`Invariant::DroppedUnrefused`]), and each member's slots as they are written
/// ([`Invariant::TwoWriters`], [`Invariant::PublishedWhileCopying`]).
#[derive(Copy, Clone, Debug)]
pub struct FanoutConfig {
    /// How a producer picks a member.
    pub mode: Mode,
    /// What it does when that member refuses the packet.
    pub rollover: Rollover,
    /// What the frames' words are made of.
    pub payload: Payload,
    /// Slots in each member's ring, at most 64.
    pub slots: usize,
    /// Producer threads (the CPUs the hook runs on). With a reader, at most 2: loom allows
    /// five threads, the test's own included.
    pub producers: usize,
    /// Packets each producer offers, one after the other.
    pub packets: usize,
    /// Each member's consumer, if any; without one, no slot is ever handed back. Not
    /// [`Reader::Hostile`].
    pub reader: Option<Reader>,
    /// How many times each consumer looks at its head.
    pub looks: usize,
    /// Loom's bound on preemptions per execution; `None` explores every interleaving.
    pub preemption_bound: Option<usize>,
    /// The invariants checked; loom checks for data races on [`Payload::Cells`] regardless.
    pub checks: Checks,
}

impl FanoutConfig {
    /// Explores the model; panics with the [`Violation`] if an execution breaks an invariant.
    pub fn check(&self) -> Report {
        self.explore()
            .unwrap_or_else(|violation| panic!("{violation}"))
    }

    /// Explores the model until an execution breaks an invariant, and returns that violation.
    pub fn explore(&self) -> Result<Report, Violation> {
        assert_ne!(
            self.reader,
            Some(Reader::Hostile),
            "not modelled for fanout"
        );
        let config = *self;
        explore(self.preemption_bound, move |trace| config.execution(trace))
    }

    /// One execution: start the threads, wait for them, check what the group delivered.
    fn execution(self, trace: Trace) {
        let group = Arc::new(Group::new(self, trace));
        let producers: Vec<_> = (0..self.producers)
            .map(|cpu| {
                let group = group.clone();
                thread::spawn(move || {
                    for i in 0..self.packets {
                        let id = (cpu * self.packets + i + 1) as u32;
                        group.receive(cpu, &Packet { id });
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..MEMBERS)
            .filter_map(|member| {
                let reader = self.reader?;
                let group = group.clone();
                Some(thread::spawn(move || {
                    let mut consumer = Consumer::new(reader);
                    for _ in 0..self.looks {
                        consumer.look(group.member(member));
                    }
                    consumer.into_read()
                }))
            })
            .collect();
        for producer in producers {
            producer.join().expect("producer");
        }
        let mut read: Vec<Vec<u32>> = consumers
            .into_iter()
            .map(|consumer| consumer.join().expect("consumer"))
            .collect();
        read.resize(MEMBERS, Vec::new());
        self.check_delivery(&group, read);
    }

    /// With every thread done: no owner bit is left in any member, each frame still published
    /// is whole, every packet sent is found in exactly one member exactly once or was dropped
    /// exactly once, and the counters agree with what was found.
    fn check_delivery(&self, group: &Group, read: Vec<Vec<u32>>) {
        let ghost = &group.ghost;
        let sent = self.producers * self.packets;
        let mut found = read;
        let mut stats = Vec::new();
        for (member, found) in found.iter_mut().enumerate() {
            let ring = group.member(member);
            stats.push(ring.take_stats());
            for slot in 0..ring.slots() {
                ring.ghost()
                    .check(Invariant::OwnerBitLeft, !ring.is_owned(slot), || {
                        format!("slot {slot} of member {member}")
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
                        format!(
                            "slot {slot} of member {member} left in the ring, status \
                             {status:#x}, {contents:?}"
                        )
                    });
                found.extend(packet);
            }
        }
        let dropped = ghost.dropped();
        let mut all: Vec<u32> = found.concat();
        all.extend(&dropped);
        all.sort_unstable();
        let expected: Vec<u32> = (1..=sent as u32).collect();
        ghost.check(Invariant::FanoutLostOrDuplicated, all == expected, || {
            format!("sent {expected:?}, found in the members {found:?}, dropped {dropped:?}")
        });
        let drops: u64 = stats.iter().map(|stats| stats.drops).sum();
        let delivered: u64 = stats.iter().map(|stats| stats.delivered).sum();
        ghost.check(
            Invariant::FanoutCounters,
            delivered + drops == sent as u64 && drops == dropped.len() as u64,
            || format!("{sent} sent, {delivered} delivered, {drops} dropped of {dropped:?}"),
        );
        for (member, (stats, found)) in stats.iter().zip(&found).enumerate() {
            let rolled_over = found
                .iter()
                .filter(|&&packet| ghost.chosen(packet) != Some(member))
                .count() as u64;
            let its_drops = dropped
                .iter()
                .filter(|&&packet| ghost.chosen(packet) == Some(member))
                .count() as u64;
            ghost.check(
                Invariant::FanoutCounters,
                stats.delivered == found.len() as u64
                    && stats.rollovers == rolled_over
                    && stats.drops == its_drops,
                || {
                    format!(
                        "member {member}: {stats:?}, found {found:?}, {rolled_over} of them \
                         chosen for another member, {its_drops} dropped chosen for it"
                    )
                },
            );
        }
    }
}

/// A fanout group: its members, its mode and rollover, and its counters.
#[derive(Debug)]
pub struct Group {
    members: Vec<Ring>,
    mode: Mode,
    rollover: Rollover,
    /// The round robin's counter ([`Mode::RoundRobin`]).
    next: AtomicUsize,
    /// Not in the kernel: the checks and what they know.
    ghost: GroupGhost,
}

impl Group {
    /// Makes the group of `config`, whose members and checks record into `trace`.
    fn new(config: FanoutConfig, trace: Trace) -> Self {
        let members = (0..MEMBERS)
            .map(|_| {
                Ring::new(
                    Claiming::OwnerMap,
                    Announcing::Frontier,
                    None,
                    config.payload,
                    config.slots,
                    None,
                    Ghost::new(config.checks, config.slots, trace.clone()),
                )
            })
            .collect();
        Self {
            members,
            mode: config.mode,
            rollover: config.rollover,
            next: AtomicUsize::new(0),
            ghost: GroupGhost {
                checks: config.checks,
                trace,
                packets: Mutex::new(vec![
                    PacketGhost::default();
                    config.producers * config.packets + 1
                ]),
            },
        }
    }

    /// Returns member `member`'s ring.
    ///
    /// # Panics
    ///
    /// If `member` is not below [`MEMBERS`].
    pub fn member(&self, member: usize) -> &Ring {
        &self.members[member]
    }

    /// The producer path on CPU `cpu`: pick a member, claim a slot in it or, if it refuses,
    /// in the next one (as [`Rollover`] says), fill and release it, wake the member's readers.
    /// Returns the member that took the packet, or `None` if the group dropped it.
    pub fn receive(&self, cpu: usize, packet: &Packet) -> Option<usize> {
        let chosen = match self.mode {
            Mode::Cpu => cpu % MEMBERS,
            Mode::RoundRobin => self.next.fetch_add(1, Relaxed) % MEMBERS,
        };
        self.ghost.choose(packet.id, chosen);
        let claimed = match self.rollover {
            Rollover::Locked => (0..MEMBERS)
                .map(|k| (chosen + k) % MEMBERS)
                .find_map(|member| self.claim(member, chosen, packet)),
            Rollover::Off => self.claim(chosen, chosen, packet),
            Rollover::Peek => self.claim(chosen, chosen, packet).or_else(|| {
                (1..MEMBERS)
                    .map(|k| (chosen + k) % MEMBERS)
                    .find_map(|member| self.peek_and_claim(member, packet))
            }),
            Rollover::Nested => self.claim_nested(chosen, 0, packet),
        };
        let Some((member, claim)) = claimed else {
            // Every member refused it: a drop of the member chosen, under its lock, which marks
            // its next frames `TP_STATUS_LOSING` as a lone ring's drop does.
            self.ghost.check_drop(packet.id);
            self.members[chosen].count_drop();
            return None;
        };
        let ring = &self.members[member];
        let slot = claim.slot;
        self.ghost.record(Event::MemberClaimed {
            packet: packet.id,
            member,
            slot,
        });
        let flags = ring.fill(&claim, packet);
        let wake = ring.release(claim, TP_STATUS_USER | flags);
        self.ghost.record(Event::MemberPublished {
            packet: packet.id,
            member,
            slot,
        });
        if wake {
            ring.wake();
        }
        Some(member)
    }

    /// `member`'s claim for `packet`, chosen for `chosen`, under `member`'s lock alone.
    fn claim(&self, member: usize, chosen: usize, packet: &Packet) -> Option<(usize, Claim)> {
        let claim = self.members[member].try_claim(member != chosen);
        if claim.is_none() {
            self.ghost.refused(packet.id, member);
        }
        claim.map(|claim| (member, claim))
    }

    /// [`Rollover::Peek`]: look at `member`'s head slot without its lock, and claim it without
    /// looking again if it looked free.
    fn peek_and_claim(&self, member: usize, packet: &Packet) -> Option<(usize, Claim)> {
        let ring = &self.members[member];
        let free = ring.peek_free();
        self.ghost.record(Event::Peeked {
            packet: packet.id,
            member,
            free,
        });
        if !free {
            self.ghost.refused(packet.id, member);
            return None;
        }
        Some((member, ring.claim_unchecked(true)))
    }

    /// [`Rollover::Nested`]: the claim of the `k`th member from `chosen`, and, if it refuses,
    /// of the next, with its lock still held.
    fn claim_nested(&self, chosen: usize, k: usize, packet: &Packet) -> Option<(usize, Claim)> {
        if k == MEMBERS {
            return None;
        }
        let member = (chosen + k) % MEMBERS;
        let claim = self.members[member].claim_holding(k != 0, || {
            self.ghost.refused(packet.id, member);
            self.claim_nested(chosen, k + 1, packet)
        });
        match claim {
            Ok(claim) => Some((member, claim)),
            Err(next) => next,
        }
    }
}

/// What the ghost knows of one packet.
#[derive(Clone, Debug, Default)]
struct PacketGhost {
    /// The member the mode chose.
    chosen: Option<usize>,
    /// The members whose claim refused it, one bit each.
    refused: u64,
    /// Times the group dropped it.
    dropped: usize,
}

/// The ghost state of a group: per packet, the member chosen, the members that refused it, and
/// the drops. `std` types, invisible to loom, as [`Ghost`]'s are.
#[derive(Debug)]
struct GroupGhost {
    checks: Checks,
    trace: Trace,
    /// Indexed by packet id.
    packets: Mutex<Vec<PacketGhost>>,
}

impl GroupGhost {
    fn record(&self, event: Event) {
        self.trace.record(event);
    }

    fn check(&self, invariant: Invariant, holds: bool, detail: impl FnOnce() -> String) {
        if !holds && self.checks.contains(invariant) {
            panic!("{invariant}: {}", detail());
        }
    }

    fn packets(&self) -> std::sync::MutexGuard<'_, Vec<PacketGhost>> {
        self.packets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The mode chose `member` for `packet`.
    fn choose(&self, packet: u32, member: usize) {
        self.record(Event::Chosen { packet, member });
        self.packets()[packet as usize].chosen = Some(member);
    }

    /// Returns the member chosen for `packet`, if any was.
    fn chosen(&self, packet: u32) -> Option<usize> {
        self.packets()
            .get(packet as usize)
            .and_then(|ghost| ghost.chosen)
    }

    /// `member`'s claim refused `packet`.
    fn refused(&self, packet: u32, member: usize) {
        self.record(Event::Refused { packet, member });
        self.packets()[packet as usize].refused |= 1 << member;
    }

    /// The group drops `packet`: every member must have refused it.
    fn check_drop(&self, packet: u32) {
        self.record(Event::GroupDropped { packet });
        let refused = {
            let mut packets = self.packets();
            packets[packet as usize].dropped += 1;
            packets[packet as usize].refused
        };
        let all = (1 << MEMBERS) - 1;
        self.check(Invariant::DroppedUnrefused, refused == all, || {
            let refusing: Vec<_> = (0..MEMBERS).filter(|m| refused & 1 << m != 0).collect();
            format!("packet {packet}, refused by members {refusing:?} only")
        });
    }

    /// Returns the ids of the packets dropped, each as many times as it was.
    fn dropped(&self) -> Vec<u32> {
        self.packets()
            .iter()
            .enumerate()
            .flat_map(|(id, ghost)| std::iter::repeat_n(id as u32, ghost.dropped))
            .collect()
    }
}
