// SPDX-License-Identifier: GPL-2.0

//! A model of rust_pktring's slot claim/release protocol, checked with [loom].
//!
//! `ring.rs` lets producers on many CPUs fill one ring: each claims the slot at the head under
//! the ring lock, copies its packet without the lock, and publishes the slot under the lock
//! again. This crate is that algorithm, step by step and with the same names, in user space, on
//! loom's mock threads, atomics and mutex, so that loom can run it in every interleaving (and
//! let each atomic load return any value that loom's model of the C11 memory model allows) and
//! check that:
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
//! It also shows that these checks have teeth: the same model without the owner map
//! ([`Claiming::StatusOnly`], which is `ring.rs` built with `pktring_test_no_owner_map`) breaks
//! every one of them but the last, which is about the owner map itself, and the 2018 RFC's
//! intermediate status ([`Claiming::InProgressStatus`]) breaks them for a reader that takes any
//! non-zero status as ready, as libpcap does.
//!
//! # The model and `ring.rs`
//!
//! | `ring.rs` (kernel)                    | model                     | what it does                     |
//! |---------------------------------------|---------------------------|----------------------------------|
//! | `Ring`, `RingInner`, `Stats`, `Claim` | the same names            | the ring; its lock-protected state |
//! | `Ring::claim`                         | `Ring::claim`             | under the lock: `tp_status` (acquire) is `TP_STATUS_KERNEL` and `owner_map_claim()` test-and-sets the owner bit; advance the head, count the packet, set `TP_STATUS_LOSING` after drops. Otherwise count a drop. |
//! | `Ring::fill`                          | `Ring::fill`              | without the lock: the packet's words, then `tp_len`, each a separate write |
//! | `Ring::release`                       | `Ring::release`           | under the lock: store `tp_status` (release) and `owner_map_release()` clears the bit |
//! | `Ring::receive`                       | [`Ring::receive`]         | claim, fill, release             |
//! | `owner_map_claim`/`owner_map_release`, `cfg(pktring_test_no_owner_map)` | the same names, with a [`Claiming`] parameter instead of the `cfg` | |
//! | user space (the crate docs' C example, libpcap) | [`Consumer::poll`] | acquire-load `tp_status` at its own head; if ready, read and check the frame, store `TP_STATUS_KERNEL` (release), move on |
//!
//! The lock is a loom [`Mutex`](loom::sync::Mutex) rather than a BH-safe spinlock: both give
//! the same happens-before edges, which is all the protocol relies on.
//!
//! # What the model leaves out
//!
//! - **Size.** The ring has [`SLOTS`]` = 2` slots, the fewest with which a producer can lap
//!   another. A frame is `tp_status`, `tp_len` and [`DATA_WORDS`]` = 2` data words; a packet
//!   is just an id ([`Packet`]), written into every data word, and a length derived from it,
//!   so that a frame mixing two packets, or half-written, is recognisable.
//! - **The rest of the frame.** The other header fields, the `sockaddr_ll`, and the flags
//!   other than `TP_STATUS_USER` and `TP_STATUS_LOSING`: more writes of the same kind.
//! - **Layout and bounds.** Blocks, frame offsets, snap lengths, and the fallible,
//!   bounds-checked accesses of `UserSharedBuffer`: a slot is an index into an array.
//! - **Wake-ups and the filter.** `readable()`, the wait queue and `notify_if_waiting()`, and
//!   which packets the hook selects. A consumer looks at its head a fixed number of times
//!   ([`Config::polls`]) where a real one would sleep in `poll()` and look again.
//! - **Stats.** Read once, at the end of an execution, to check that every packet is counted.
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
//! `tests/protocol.rs` checks three configurations ([`Config`]):
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
//! # Running it
//!
//! From `userspace/`:
//!
//! ```text
//! cargo test -p pktring-model                   # debug: ~35 s of CPU, ~35 s on 2 idle cores
//! cargo test -p pktring-model --release         # release: ~13 s
//! cargo test -p pktring-model -- --nocapture    # also print each violation's interleaving
//! ```
//!
//! Building loom and its dependencies the first time takes about a minute more.
//!
//! To explore another configuration, call [`Config::explore`]:
//!
//! ```no_run
//! use pktring_model::{Checks, Claiming, Config, Payload, Reader};
//!
//! let config = Config {
//!     claiming: Claiming::StatusOnly,
//!     payload: Payload::Cells,
//!     producers: 3,
//!     packets: 1,
//!     reader: Some(Reader::UserBit),
//!     polls: 2,
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
mod frame;
mod ghost;
mod ring;
mod user;

pub use check::{Config, Report, Violation};
pub use frame::{Contents, Frame, Packet, Payload, DATA_WORDS};
pub use ghost::{Checks, Event, Ghost, Invariant, Trace, LOOM_DATA_RACE};
pub use ring::{
    Claiming, Ring, Stats, SLOTS, TP_STATUS_IN_PROGRESS, TP_STATUS_KERNEL, TP_STATUS_LOSING,
    TP_STATUS_USER,
};
pub use user::{Consumer, Reader};
