// SPDX-License-Identifier: GPL-2.0

//! A model of rust_pktring's slot claim/release protocol and its wake-ups, checked with [loom].
//!
//! `ring.rs` lets producers on many CPUs fill one ring: each claims the slot at the head under
//! the ring lock, copies its packet without the lock, and publishes the slot under the lock
//! again; when that moves the release frontier, it wakes the readers sleeping in `poll()`. This
//! crate is that algorithm, step by step and with the same names, in user space, on loom's mock
//! threads, atomics, mutexes and condition variable, so that loom can run it in every
//! interleaving (and let each atomic load return any value that loom's model of the C11 memory
//! model allows) and check that:
//!
//! - no two producers write one slot at once ([`Invariant::TwoWriters`]);
//! - no producer publishes a slot that another is still copying into
//!   ([`Invariant::PublishedWhileCopying`]);
//! - no reader sees a torn frame: one whose `tp_status` says ready while its words are not all
//!   from one packet ([`Invariant::TornFrame`]);
//! - every delivered packet is read exactly once or is still in the ring at the end
//!   ([`Invariant::LostOrDuplicated`]);
//! - with [`Payload::Cells`], loom finds no data race on a frame's words: every access is
//!   ordered by happens-before after the last conflicting one;
//! - and no owner bit is left set at the end ([`Invariant::OwnerBitLeft`]). Not a safety
//!   property, but the one way to get the owner map wrong that the others miss: a bit that
//!   leaks makes its slot drop every packet from then on. Testing the owner bit before
//!   `tp_status` in `claim()` would leak one each time the status test fails.
//!
//! And, with a consumer that sleeps in `poll()` ([`Waiting::Polls`]), that:
//!
//! - when `poll()` reports the ring readable, the consumer's next frame is ready
//!   ([`Invariant::ReadableNotReady`]);
//! - `poll()` reports it readable exactly when the consumer has not read every frame the
//!   readers were told of, the frames before `announced` ([`Invariant::PollDisagrees`]); with
//!   batching, that is what was announced, not what was released;
//! - no wake-up is lost: once readers are told of a frame the consumer has not read, it is not
//!   left asleep without a wake-up on its way, and when every producer is done (and the batch
//!   timer has fired) it is not asleep with a frame to read ([`Invariant::LostWakeUp`]);
//! - and a capture that ends wakes it for good: a consumer that sleeps forever is a loom
//!   deadlock ([`Violation::is_deadlock`]).
//!
//! With a fanout group of two such rings and rollover between them, it also checks that every
//! packet is delivered to one member once or dropped once, and dropped only when both members
//! refused it, and that the counters add up (see [Fanout](#fanout)).
//!
//! It also shows that these checks have teeth: the same model without the owner map
//! ([`Claiming::StatusOnly`], which is `ring.rs` built with `pktring_test_no_owner_map`) breaks
//! every one of them but the last, which is about the owner map itself, and the 2018 RFC's
//! intermediate status ([`Claiming::InProgressStatus`]) breaks them for a reader that takes any
//! non-zero status as ready, as libpcap does. `ring.rs`'s old poll rule, "the frame before the
//! head" ([`Announcing::Head`]), tells the consumer to read a frame still being filled, and
//! sleeps it through the wake-up for a frame that is ready; the rule that replaced it, the
//! frame before `announced`, does the first on a full ring without the lap check that
//! 356f032 added ([`Announcing::FrontierUnchecked`]), and so does a `readable()` that reads
//! the readiness word once instead of twice ([`Announcing::FrontierOneLook`]); without the barrier of
//! `poll_wait()` ([`PollWait::NoBarrier`]), the end of a capture can leave it asleep for good;
//! and a `poll()` that clears `woken` only when it registers ([`Polled::FirstLook`]) loses a
//! frame's wake-up.
//!
//! # The model and `ring.rs`
//!
//! | `ring.rs` (kernel)                    | model                     | what it does                     |
//! |---------------------------------------|---------------------------|----------------------------------|
//! | `Ring`, `RingInner`, `Stats`, `Claim` | the same names            | the ring; its lock-protected state |
//! | `Ring::claim`                         | `Ring::claim`             | under the lock: `tp_status` (acquire) is `TP_STATUS_KERNEL` and `owner_map_claim()` test-and-sets the owner bit; advance the head, count the packet, set `TP_STATUS_LOSING` after drops. Otherwise count a drop. |
//! | `Ring::fill`                          | `Ring::fill`              | without the lock: the packet's words, then `tp_len`, each a separate write |
//! | `Ring::release`, `Ring::announce`     | `Ring::release`, `Ring::announce` | under the lock: store `tp_status` (release), `owner_map_release()` clears the bit, `released()`; if the frontier moved, announce it (or add to `unannounced`, and announce a full batch, cancelling the timer, or set the timer) and return whether to wake; publish the readiness word |
//! | `RingInner::publish`, `Core::readiness` | `Ring::publish`, `Ring::readiness` | under the lock, after a claim, a release and the timer's announcement: if `announced` or `lapped()` changed, store them and one more change counted in the readiness word (release); the model's word also carries the ghost's idea of what readers were told of |
//! | `RingInner::frontier`, `lapped`, `claimed`, `released` | the same names | the oldest slot in flight (`oldest`), or the head; whether every slot was claimed since readers were told (`unannounced` and the slots from `oldest` to the head fill the ring); count a claim; count a release and, for the oldest, find the next one in flight (the first owner bit after it) and how far the frontier moved |
//! | `Ring::receive`                       | [`Ring::receive`]         | claim, fill, release, and wake the readers if `release()` says so |
//! | `Core::expired` (the batch timer's handler), `HrTimer::start`/`try_cancel` | `Ring::expired`, `HrTimer` | under the lock: clear `timer_set`; if anything is unannounced, announce the frontier, then wake |
//! | `Ring::readable`, `Ring::ready_at`    | [`Ring::readable`], `Ring::ready_at` | without the lock: load the readiness word (acquire); not readable if its lap bit is set, else is the frame before its `announced` not `TP_STATUS_KERNEL` (acquire)? Load the word again: the same, and that is the answer; changed, look again, and after `READY_LOOKS` changes, look under the lock |
//! | `Readers` (`wake`, `polled`, `end`, `error`) | [`Readers`]        | the wait queue, the errno that ends the capture, and `woken`: `wake()` sends a wake-up only if it swaps `woken` from `false` to `true`; `poll()` clears it (`polled()`) before it looks |
//! | `PollWaitQueue` (`poll_wait()`, `wq_has_sleeper()`, `__wake_up()`, `pollwake()`) | [`PollWaitQueue`] | register under the queue's lock, then `smp_mb()`; wake: `smp_mb()`, test the list without the lock, then under it set the poller's `triggered` and wake its task |
//! | `Hook::detached`                      | [`Ring::detached`]        | `Readers::end(ENETDOWN)`: wake every poller with `POLLERR` |
//! | `owner_map_claim`/`owner_map_release`; `cfg(pktring_test_no_owner_map)`, there and in `frontier`, `lapped` and `released` | the same names, with a [`Claiming`] parameter instead of the `cfg` (any but [`Claiming::OwnerMap`] is the `cfg`) | |
//! | user space (the crate docs' C example, libpcap) | [`Consumer::look`] | acquire-load `tp_status` at its own head; if ready, read and check the frame, store `TP_STATUS_KERNEL` (release), move on |
//! | user space's loop, `poll(2)` (`do_poll()`), `RingFile::poll` | [`Consumer::run`], `Consumer::poll` | read what is ready; `poll()`: register, then `polled()`, `readable()` and `error()`; with nothing to report, sleep until `triggered`, and ask again |
//!
//! The lock is a loom [`Mutex`](loom::sync::Mutex) rather than a BH-safe spinlock: both give
//! the same happens-before edges, which is all the protocol relies on. The kernel's full
//! barriers (`smp_mb()`) are loom `fence(SeqCst)`s, which loom models in full.
//!
//! # What the model leaves out
//!
//! - **Size.** The ring has [`SLOTS`]` = 2` slots, the fewest with which a producer can lap
//!   another; the configurations with a consumer that polls have 2 to 4. A frame is `tp_status`, `tp_len` and [`DATA_WORDS`]` = 2` data words; a packet
//!   is just an id ([`Packet`]), written into every data word, and a length derived from it,
//!   so that a frame mixing two packets, or half-written, is recognisable.
//! - **The rest of the frame.** The other header fields, the `sockaddr_ll`, and the flags
//!   other than `TP_STATUS_USER` and `TP_STATUS_LOSING`: more writes of the same kind.
//! - **Layout and bounds.** Blocks, frame offsets, snap lengths, and the fallible,
//!   bounds-checked accesses of `UserSharedBuffer`: a slot is an index into an array.
//! - **The filter**: which packets the hook selects.
//! - **Wake-ups, in part.** The claim/release configurations have no readers: their consumer
//!   looks at its head a fixed number of times ([`Waiting::Looks`]). Those with a consumer that
//!   polls have one poller, a blocking `poll()` (not epoll), with no timeout and no signals.
//!   The batch timer has no delay: a thread fires it at most once, at any point where it is
//!   armed, and the checker fires it when the producers are done, for "later".
//! - **Stats.** Read once, at the end of an execution, to check that every packet is counted.
//! - **The readiness word's change count wrapping.** The kernel counts the changes in 31 bits;
//!   a wrap would take 2^31 changes between the two loads of one `readable()`, and an execution
//!   here makes a handful.
//! - **Threads.** Two or three producers stand for the CPUs running the hook, one consumer for
//!   user space. Loom allows five threads, the test's own included.
//!
//! # The frame's memory
//!
//! [`Payload`] chooses what `tp_len` and the data words are made of (`tp_status` is always an
//! atomic, as in the kernel):
//!
//! - [`Payload::Cells`]: loom `UnsafeCell`s. Loom reports any two accesses to a word, one a
//!   write, that happens-before does not order, whether or not they overlap in the explored
//!   interleaving: a data race. This is the strongest check, and it holds for every
//!   interleaving loom considers equivalent to the one it ran. A copy is then a single step
//!   for the scheduler, so most violations are reported by loom, before the model's own
//!   checks see them.
//! - [`Payload::RelaxedAtomics`]: loom atomics with `Relaxed` ordering, which is how the kernel
//!   treats the shared mapping: word-sized accesses, never a reference into it. Every word is
//!   a scheduling point, so interleavings include half-copied frames, and the model's checks
//!   see what user space would.
//!
//! The checks that need more than the frame's words (who is copying into which slot) use ghost
//! state ([`Ghost`]): `std` types, invisible to loom, so that they add no scheduling point and
//! no happens-before edge. They judge the interleaving loom runs, which stands for a class of
//! equivalent ones; the data-race check of [`Payload::Cells`] is the one that covers the class.
//! A failed check panics, which ends loom's exploration; [`Config::explore`] catches that and
//! returns the [`Violation`], with the steps ([`Event`]s) of the execution that led to it.
//!
//! # The configurations checked, and loom's settings
//!
//! `tests/protocol.rs` checks three configurations of the claim/release protocol ([`Config`]):
//!
//! | name       | producers × packets | consumer   | preemption bound | executions (`ring.rs`) |
//! |------------|---------------------|------------|------------------|------------------------|
//! | `LAP`      | 3 × 1               | none       | none: all        | 5,607                  |
//! | `LAP_READ` | 3 × 1               | looks twice | 2               | 4,439                  |
//! | `REUSE`    | 2 × 2               | looks twice | 3               | 5,916                  |
//!
//! `LAP` is the race itself: the third packet finds the head back at slot 0 while the first may
//! still be copying into it; loom explores every interleaving. `LAP_READ` adds a consumer, and
//! `REUSE` has slots handed back by the consumer and claimed again. With a consumer, every
//! interleaving is too many (934,941 executions for three producers and a single look, two to
//! three minutes in release), so those two have a preemption bound.
//!
//! The bound is shown to be enough by running the same configuration, bound included, on the
//! broken variants: each must find its violation, and does. Each interleaving below has a
//! single preemption in it: packet 1's, between its claim and its release. But loom's bounded
//! search does not visit every interleaving within the bound (its partial-order reduction adds
//! backtracking points conservatively, not completely): at bound 1 it misses the
//! three-producer race altogether. Hence a bound of 2, one above what the bug needs, 3 where
//! executions are cheap enough, and a test of the bound rather than an argument for it.
//!
//! And, in `wakeups`, the readers, with a consumer that polls (every one up to two preemptions):
//!
//! | name                          | slots | producers × packets | executions (`ring.rs`) |
//! |-------------------------------|-------|---------------------|------------------------|
//! | `WAKE`                        | 3     | 2 × 1               | 5,015                  |
//! | `WAKE`, three producers       | 4     | 3 × 1               | 75,797                 |
//! | `WAKE`, batches of 2          | 3     | 2 × 1, and a thread that fires the timer | 32,710 |
//! | `FULL`                        | 2     | 2 × 1               | 5,015                  |
//! | `REUSE` in `wakeups`          | 2     | 2 × 2               | 14,261                 |
//! | `REUSE`, batches of 2 (ignored) | 2   | 2 × 2, and a thread that fires the timer | 129,329 |
//!
//! In `WAKE` and with three producers the ring never fills up. In `FULL` and `REUSE` it does,
//! and the frame before `announced` can be a lap ahead of the consumer: `lapped()` is what keeps
//! `poll()` right there (see below). Every check holds in each. The bound is tested as for the
//! protocol: the old poll rule breaks `WAKE` within it, and the rule without the lap check
//! breaks `FULL`; a bound of 3 for `WAKE` (107,221 executions) finds nothing more.
//!
//! Loom's other limits keep their defaults (1,000 branches per execution; these need far
//! fewer). Environment variables such as `LOOM_MAX_PREEMPTIONS` are overridden by
//! [`Config::preemption_bound`].
//!
//! # What loom finds without the owner map
//!
//! In `LAP`, in the 499th execution (a tenth of a second in release, a quarter in debug):
//!
//! 1. packet 1 claims slot 0 and copies into it, but is preempted before it takes the lock
//!    to publish it;
//! 2. packet 2 claims slot 1, copies and publishes it; the head is back at slot 0;
//! 3. packet 3 claims slot 0: its `tp_status` still reads `TP_STATUS_KERNEL`, because packet 1
//!    has not published it, and without the owner map nothing else says that it is taken;
//! 4. packet 3 writes into slot 0, and loom reports concurrent writes: nothing orders packet
//!    1's copy, made after its claim unlocked, before packet 3's.
//!
//! With the words as the kernel writes them ([`Payload::RelaxedAtomics`]) and one invariant
//! checked at a time, the consequences follow. In the same schedule, packet 3 publishes slot 0
//! and then packet 1 publishes it again: one of the two packets is lost, though both were
//! counted as delivered; and since the two copies are unordered, each word may keep either
//! one's value, so slot 0 is left published with data `[1, 3]` and packet 1's `tp_len`: a
//! torn frame. With packet 1 preempted in the middle of its copy instead (execution 8,344,
//! under a second in release), packet 3 starts copying while packet 1 still is (two writers),
//! and then publishes slot 0 while packet 1 is still copying into it.
//!
//! The 2018 RFC instead stores `TP_STATUS_IN_PROGRESS` (`TP_STATUS_LOSING`, `0x4`) at the
//! claim. That does stop a second producer, and a reader that tests `TP_STATUS_USER` is safe.
//! A reader that takes any non-zero status as ready is not: in the second execution, its
//! acquire load returns the claim's `0x4` (the memory model allows it: nothing orders that
//! load after packet 1's publication; in real time, it looked during the copy), and it reads a
//! frame that nothing it synchronised with has written: loom reports the data race, and with
//! relaxed words the reader sees `tp_len` 0 and data `[0, 0]`. And because the mark is in the
//! mapping, a process that stores `TP_STATUS_KERNEL` over it while packet 1 is copying lets
//! packet 3 claim the slot and write into it too; with the owner map, it cannot.
//!
//! # What loom finds with the old poll rule
//!
//! Before the release frontier, `poll()` was readable when the frame before the head belonged
//! to user space, and every release woke the readers ([`Announcing::Head`]). In `WAKE`, in the
//! 4,153rd execution:
//!
//! 1. packet 1 claims slot 0 and copies into it, but is preempted before it publishes it;
//! 2. packet 2 claims slot 1, copies and publishes it, and wakes nobody: nobody polls yet;
//! 3. the consumer finds its frame, slot 0, not ready, and polls: the head is slot 2, and the
//!    frame before it, slot 1, is user space's, so `poll()` reports the ring readable;
//! 4. the consumer finds slot 0 not ready, and calls `poll()` again, which returns at once: it
//!    spins until packet 1 is published.
//!
//! Whether packet 1 is still copying or done and not yet published is the same interleaving
//! to loom: nothing reads a frame's words before its status says it is ready. `ring.rs`
//! announces the frontier, slot 0, and `poll()` tests slot 2: not readable.
//!
//! The rule is wrong the other way too (execution 429): packet 1 publishes slot 0, packet 2
//! claims slot 1; the consumer's `poll()` tests slot 1, still `TP_STATUS_KERNEL`, and reports
//! nothing though slot 0 is ready. Packet 1's wake-up went before the consumer registered, so
//! it sleeps with a frame to read until packet 2's release wakes it (a lost wake-up, execution
//! 2,779, made good by the next release).
//!
//! # What loom found in `ring.rs`: a full ring
//!
//! Until 356f032, `readable()` tested the frame before `announced`, taking it to be the last one
//! readers were told of ([`Announcing::FrontierUnchecked`]). Once every slot has been claimed
//! since, it is a later lap's. In `FULL` (the 4,170th execution): packet 1 claims slot 0,
//! packet 2 claims slot 1 (the head is back at slot 0, the frontier and `announced` too), and
//! packet 2 is published first. `announced` does not move, the frontier being slot 0 still, but
//! the frame before it is now packet 2's, and `poll()` reports readable while the consumer's
//! frame, packet 1's, is not ready: the consumer spins until it is. No wake-up is lost, and no
//! frame is read before it is ready (user space tests `tp_status` itself), but the module's
//! claim that a consumer whose next frame is being filled is not told to read it held only
//! while the ring was not full. With a ring of `frame_nr` slots, it takes `frame_nr` packets
//! claimed since the consumer caught up, the first of them still being filled when the last is
//! published.
//!
//! The fix, in `ring.rs` and the model's [`Announcing::Frontier`]: `readable()` first asks
//! `RingInner::lapped()`, and reports nothing when the frames claimed since readers were last
//! told (`unannounced`, and those from the oldest in flight to the head: all of them when the
//! oldest is the head) fill the ring. The frame before `announced` has then been handed back
//! and claimed again, so the consumer has read every frame it was told of. With it, every check
//! holds on the full ring and in `REUSE`, with batching too.
//!
//! # What loom finds without the barrier of `poll_wait()`
//!
//! Frame wake-ups do not depend on the barriers of the wait queue: the swaps of `woken` order
//! `readable()` against the release that announced, before or after (the waker's swap comes
//! after its store of the readiness word, the poller's before its load, and whichever swap is
//! later reads the other's). The end of a
//! capture does: `Readers::end` stores the errno and then, after `wq_has_sleeper()`'s barrier,
//! tests the queue, while `poll()` registers and then tests the errno. With
//! [`PollWait::NoBarrier`], loom finds in the first execution that both tests can miss the
//! other's store; the consumer sleeps, and nothing will wake it (a loom deadlock). Linux 6.12's
//! `poll_wait()` has the barrier.
//!
//! # `woken`: one wake-up between two looks
//!
//! `Readers::wake` sends a wake-up only if none was sent since a poller last looked; the
//! wake-ups it spares would find the poller awake already. No wake-up is lost with it. A
//! release whose wake-up is spared swaps `woken` either before the consumer's last clearing of
//! it, whose look then sees the readiness word that release stored, or after: then the swap
//! that set `woken` since came after that clearing and read it, and that waker's test of the
//! queue sees the consumer registered. The model checks
//! this too where a waker leaves its wake-up to one still being sent (it counts the wakers
//! between their swap and their test of the queue). And the clearing must come with every look:
//! cleared only when `poll()` registers, loom finds (execution 3,002) packet 1's wake-up
//! reaching a consumer that has read packet 1 already; it looks, finds nothing, sleeps again
//! with `woken` set, and packet 2's release sends nothing.
//!
//! # Fanout
//!
//! Issue 15's fanout, modelled before `ring.rs` has it ([`FanoutConfig`], `tests/fanout.rs`). A
//! group ([`Group`]) has [`MEMBERS`]` = 2` member rings, each a [`Ring`] as above with its own
//! lock, owner map, head and frames. For each packet, a producer picks a member by the group's
//! [`Mode`]: [`Mode::Cpu`], its CPU's (producer `i` picks member `i % 2`), or
//! [`Mode::RoundRobin`], the next one in turn, from a counter the producers share (a relaxed
//! `fetch_add`). With rollover ([`Rollover::Locked`]), if that member's claim refuses the
//! packet (its head slot's `tp_status` is not `TP_STATUS_KERNEL`, or its owner bit is set), the
//! producer calls the next member's claim, and so on, as af_packet's `fanout_demux_rollover()`
//! goes from the member picked to the next. The group drops the packet only when every member
//! refused it.
//!
//! The lock order is one ring lock at a time. Each claim takes its member's lock, tests the
//! head slot, and releases the lock before the next member's claim takes that member's; no path
//! holds two ring locks, so there is no order between them to keep. A refusal is not a drop: the
//! member does not count it in [`Stats::drops`] and sets no `TP_STATUS_LOSING` for it. A packet
//! every member refused is one drop of the member chosen for it, counted under that member's
//! lock (so that its next frames carry `TP_STATUS_LOSING`, as a lone ring's do after a drop), as
//! `fanout.rs` in the module has it; the member that takes a packet chosen for another counts it
//! in [`Stats::rollovers`], under its lock.
//!
//! Checked, in every interleaving explored:
//!
//! - each member's own invariants, as for one ring: no two writers, no publication during a
//!   copy, no torn frame, no owner bit left, and, with [`Payload::Cells`], no data race;
//! - every packet sent is, at the end, found exactly once in exactly one member (read by that
//!   member's consumer, or left in its ring), or dropped exactly once
//!   ([`Invariant::FanoutLostOrDuplicated`]);
//! - a packet is dropped only after every member's claim refused it: the ghost records each
//!   refusal, and checks them at the drop ([`Invariant::DroppedUnrefused`]);
//! - the counters add up: each member's `delivered` is the number of packets found in it, the
//!   members' `delivered` and `drops` add up to the packets sent, each member's `rollovers` is
//!   the number of packets found in it that were chosen for the other, and its `drops` the
//!   number of dropped packets that were chosen for it ([`Invariant::FanoutCounters`]).
//!
//! The configurations, two producers with two packets each unless said (times in debug, one
//! test at a time):
//!
//! | test                           | slots a member | consumers      | preemption bound | executions | time  |
//! |--------------------------------|----------------|----------------|------------------|------------|-------|
//! | `cpu_rollover`                 | 1              | none           | none: all        | 2,526      | 0.9 s |
//! | `cpu_rollover_relaxed_atomics` | 1              | none           | none: all        | 2,526      | 0.9 s |
//! | `cpu_rollover_read`            | 1              | one a member, looks twice | 2     | 13,229     | 5.9 s |
//! | `cpu_rollover_two_slots`       | 2, 3 packets a producer | none  | none: all        | 11,424     | 4.5 s |
//! | `round_robin_rollover`         | 1              | none           | none: all        | 29,067     | 7.7 s |
//!
//! With one slot a member, each producer's second packet finds its own member full and rolls
//! over; the other member takes it or, full too, refuses it, and the group drops it. And the
//! broken variants, each found in `cpu_rollover`'s configuration:
//!
//! - [`Rollover::Off`], no rollover: the first execution drops producer 0's second packet with
//!   member 1 empty ([`Invariant::DroppedUnrefused`]).
//! - [`Rollover::Peek`], a rollover that tests the other member's head slot without its lock
//!   and then claims it without testing again (af_packet's `packet_rcv_has_room()` without the
//!   claim that follows it): in execution 16, the other producer claims and publishes that
//!   slot between the peek and the claim, which writes over a frame user space has not read
//!   (a lost packet; with the consumers, execution 6,203, within the bound of 2); in execution
//!   25 the other producer is still copying into it (loom: a data race; with relaxed words,
//!   two writers, execution 97).
//! - [`Rollover::Nested`], a rollover that keeps the refusing member's lock while it takes the
//!   next one's: with both members full, producer 0 holds member 0's lock and waits for member
//!   1's, which producer 1 holds while it waits for member 0's (execution 16: a loom deadlock).
//!
//! What the kernel is to implement, then: a group that holds its members' rings; the hook picks
//! a member by the mode and calls its `Ring::claim`, which takes and releases that ring's lock;
//! if it refuses, the next member's, and so on; the group's drop counter once all refused. The
//! claim for fanout must not count a refusal as the ring's drop (the model's `try_claim`). If
//! the kernel picks the member to roll over to by a peek, as af_packet does, the claim under the
//! lock must still decide, and its refusal is a refusal. Left out of the model: the other
//! modes (hash, random, queue mapping, BPF), fanout's own rollover mode, defragmentation, a
//! member joining or leaving while packets are in flight, more than two members, and the
//! members' readers (their consumers look a fixed number of times and never poll).
//!
//! # Running it
//!
//! From `userspace/`:
//!
//! ```text
//! cargo test -p pktring-model                   # debug: ~110 s of CPU, 80-120 s on 2 cores
//! cargo test -p pktring-model --release         # release: ~20 s
//! cargo test -p pktring-model -- --ignored      # and `REUSE` with batching: ~95 s more
//! cargo test -p pktring-model -- --nocapture    # also print each violation's interleaving
//! cargo test -p pktring-model --test fanout    # fanout alone: ~20 s in debug
//! ```
//!
//! Building loom and its dependencies the first time takes about a minute more.
//!
//! To explore another configuration, call [`Config::explore`]:
//!
//! ```no_run
//! use pktring_model::{Announcing, Checks, Claiming, Config, Payload, Reader, Waiting, SLOTS};
//!
//! let config = Config {
//!     claiming: Claiming::StatusOnly,
//!     announcing: Announcing::Frontier,
//!     batch: None,
//!     payload: Payload::Cells,
//!     slots: SLOTS,
//!     producers: 3,
//!     packets: 1,
//!     reader: Some(Reader::UserBit),
//!     waiting: Waiting::Looks(2),
//!     preemption_bound: Some(2),
//!     checks: Checks::ALL,
//! };
//! match config.explore() {
//!     Ok(report) => println!("holds in {} executions", report.executions),
//!     Err(violation) => println!("{violation}"),
//! }
//! ```
//!
//! [loom]: https://docs.rs/loom/0.7

#![deny(missing_docs, unsafe_op_in_unsafe_fn)]

mod check;
mod fanout;
mod frame;
mod ghost;
mod ring;
mod user;
mod wait;

pub use check::{Config, Report, Violation, Waiting};
pub use fanout::{FanoutConfig, Group, Mode, Rollover, MEMBERS};
pub use frame::{Contents, Frame, Packet, Payload, DATA_WORDS};
pub use ghost::{Checks, Event, Ghost, Invariant, Trace, LOOM_DATA_RACE, LOOM_DEADLOCK};
pub use ring::{
    Announcing, Batch, Claiming, Ring, Stats, ENETDOWN, SLOTS, TP_STATUS_IN_PROGRESS,
    TP_STATUS_KERNEL, TP_STATUS_LOSING, TP_STATUS_USER,
};
pub use user::{Consumer, Reader};
pub use wait::{events, PollWait, PollWaitQueue, Polled, Polling, Readers};
