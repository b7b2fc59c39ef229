// SPDX-License-Identifier: GPL-2.0

//! The model of the readers' wait queue: `ring.rs`'s `Readers`, the `PollWaitQueue` of
//! `kernel::sync::poll` that it wakes, and the C under both (`poll_wait()`, `wq_has_sleeper()`,
//! `__wake_up()`, and the sleep of `do_poll()` in `fs/select.c`).
//!
//! The model has one poller, the consumer, so the queue's list is one entry, on it or not. The
//! barriers are the kernel's: `poll_wait()` ends with `smp_mb()` after adding the entry, and
//! `wq_has_sleeper()` starts with one before it tests the list without the queue's lock; both
//! are loom `fence(SeqCst)`s, which loom models fully (its `SeqCst` accesses it does not).

use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, SeqCst};

use loom::sync::atomic::{fence, AtomicBool, AtomicU32};
use loom::sync::{Condvar, Mutex};

use crate::ghost::{Event, Ghost};

/// The poll events of `kernel::sync::poll::events` that the model uses.
pub mod events {
    /// `POLLIN`: there is data to read.
    pub const IN: u32 = 0x0001;
    /// `POLLERR`: the capture ended (`Readers::end`).
    pub const ERR: u32 = 0x0008;
    /// `POLLRDNORM`: as `POLLIN`.
    pub const RDNORM: u32 = 0x0040;
}

/// The barrier that `poll_wait()` issues after it adds the entry to the queue.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PollWait {
    /// `smp_mb()` after `add_wait_queue()`, as in the kernel the series applies to (6.12.117),
    /// which pairs with the one in `wq_has_sleeper()`.
    Barrier,
    /// No barrier: `add_wait_queue()`'s lock and unlock only, as `poll_wait()` was before it got
    /// its `smp_mb()`. A store before a load is then not ordered: the poller may test the
    /// state before its entry is visible to a waker that tests the list locklessly.
    NoBarrier,
}

/// When `poll()` clears [`Readers`]' `woken`, which says that a wake-up was sent and no poller
/// has looked since.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Polled {
    /// Each time `do_poll()` calls the file's `poll()`, before it looks at the ring, as
    /// `RingFile::poll` does.
    EveryLook,
    /// Only in the call that registers on the queue, the first: a mistake, to show that the
    /// checks catch it. Woken, and finding nothing to read, the poller sleeps again with
    /// `woken` set, and the next release skips its wake-up.
    FirstLook,
}

/// How the consumer's `poll()` and the queue it sleeps on work.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Polling {
    /// The barrier of `poll_wait()`.
    pub poll_wait: PollWait,
    /// When `poll()` clears `woken`.
    pub polled: Polled,
}

impl Polling {
    /// As the kernel and `rust_pktring.rs` have them.
    pub const RING_RS: Self = Self {
        poll_wait: PollWait::Barrier,
        polled: Polled::EveryLook,
    };
}

/// What the one poller sleeps on: `struct poll_wqueues`' `triggered`, and its task.
///
/// The mutex stands for the scheduler's side of a sleep (`set_current_state()` against
/// `try_to_wake_up()`): a wake-up that sets `triggered` either comes before the poller tests
/// it, or finds the poller asleep and wakes it.
#[derive(Debug)]
struct Poller {
    triggered: Mutex<bool>,
    task: Condvar,
}

/// A wait queue for pollers, `kernel::sync::poll::PollWaitQueue`, with room for one.
#[derive(Debug)]
pub struct PollWaitQueue {
    /// `wait_queue_head.lock`, which `add_wait_queue()`, `remove_wait_queue()` and
    /// `__wake_up()` take.
    lock: Mutex<()>,
    /// `!list_empty(&wq_head->head)`: the poller's entry is on the queue. Changed under `lock`,
    /// read without it by `waitqueue_active()`.
    active: AtomicBool,
    poller: Poller,
    poll_wait: PollWait,
}

impl PollWaitQueue {
    fn new(poll_wait: PollWait) -> Self {
        Self {
            lock: Mutex::new(()),
            active: AtomicBool::new(false),
            poller: Poller {
                triggered: Mutex::new(false),
                task: Condvar::new(),
            },
            poll_wait,
        }
    }

    fn lock(&self) -> loom::sync::MutexGuard<'_, ()> {
        self.lock.lock().expect("the queue lock is never poisoned")
    }

    /// `PollTable::register_wait`, the first time `do_poll()` calls the file's `poll()`:
    /// `poll_wait()` adds the poller's entry, then issues a full barrier, so that the state it
    /// tests after this is read after the entry is visible.
    pub fn register_wait(&self, ghost: &Ghost) {
        {
            let _queue = self.lock();
            self.active.store(true, Relaxed);
        }
        ghost.record(Event::Registered);
        if self.poll_wait == PollWait::Barrier {
            fence(SeqCst);
        }
    }

    /// `poll_freewait()`, as `poll()` returns: takes the entry off the queue. The next
    /// `poll()` starts with `triggered` clear (its `poll_wqueues` is a new one, on its stack).
    pub fn unregister(&self, ghost: &Ghost) {
        let _queue = self.lock();
        self.active.store(false, Relaxed);
        *self.triggered() = false;
        ghost.wakes();
    }

    fn triggered(&self) -> loom::sync::MutexGuard<'_, bool> {
        self.poller
            .triggered
            .lock()
            .expect("the poller's lock is never poisoned")
    }

    /// `PollWaitQueue::notify_if_waiting`: `wq_has_sleeper()`, a full barrier and a lockless test
    /// of the list, then `__wake_up()`, which walks the list under the queue's lock and calls
    /// `pollwake()` for each entry.
    pub fn notify_if_waiting(&self, events: u32, ghost: &Ghost) {
        fence(SeqCst);
        if !self.active.load(Relaxed) {
            ghost.record(Event::NobodyToWake { events });
            return;
        }
        let _queue = self.lock();
        if !self.active.load(Relaxed) {
            return;
        }
        // `__pollwake()`: `triggered`, then the task.
        let mut triggered = self.triggered();
        *triggered = true;
        ghost.woken(events);
        self.poller.task.notify_one();
    }

    /// `poll_schedule_timeout()` without a timeout: sleeps unless woken since it was last
    /// called, then clears `triggered` (`smp_store_mb()`) for the next test.
    pub fn sleep(&self, ghost: &Ghost) {
        let mut triggered = self.triggered();
        while !*triggered {
            triggered = self
                .poller
                .task
                .wait(triggered)
                .expect("the poller's lock is never poisoned");
        }
        *triggered = false;
        ghost.wakes();
        drop(triggered);
        fence(SeqCst);
    }
}

/// What the pollers of a file wait on, `ring.rs`'s `Readers`: shared by the file and its ring,
/// whose producers and batch timer wake them.
#[derive(Debug)]
pub struct Readers {
    queue: PollWaitQueue,
    /// The errno that ended the capture for good; 0 while it runs. Set at most once.
    error: AtomicU32,
    /// A wake-up was sent and no poller has looked since: the next one to look sees every frame
    /// released meanwhile, so those releases need not wake anyone again. `poll()` clears it.
    woken: AtomicBool,
    /// Not in the kernel: when `poll()` calls [`Readers::polled`].
    polled: Polled,
}

impl Readers {
    /// Makes the readers of a new file, polled as `polling` says.
    pub fn new(polling: Polling) -> Self {
        Self {
            queue: PollWaitQueue::new(polling.poll_wait),
            error: AtomicU32::new(0),
            woken: AtomicBool::new(false),
            polled: polling.polled,
        }
    }

    /// Returns when `poll()` clears `woken`.
    pub fn when_polled(&self) -> Polled {
        self.polled
    }

    /// Returns the wait queue that `poll()` registers on.
    pub fn queue(&self) -> &PollWaitQueue {
        &self.queue
    }

    /// Returns the errno that ended the capture, or 0 while it runs. Read after registering on
    /// the queue, as the file's `poll()` does.
    pub fn error(&self) -> u32 {
        self.error.load(Acquire)
    }

    /// Wakes the pollers: frames are ready. Only the first of the wake-ups between two looks of
    /// a poller is sent; the others would only find it awake already.
    pub(crate) fn wake(&self, ghost: &Ghost) {
        if self.woken.swap(true, SeqCst) {
            ghost.record(Event::WakeSkipped);
            return;
        }
        ghost.record(Event::Wakes);
        ghost.wake_starts();
        self.queue
            .notify_if_waiting(events::IN | events::RDNORM, ghost);
        ghost.wake_ends();
    }

    /// Called by `poll()` after it registered on the queue and before it looks at the ring.
    ///
    /// A swap rather than a store, as in the kernel since 356f032; what it reads is ignored.
    /// Loom builds an atomic's modification order lazily, and lets an RMW read a store
    /// that a later one, which happens before the RMW, should have hidden: with this a store,
    /// loom finds a wake-up skipped for a `woken` that the consumer's `polled()` had cleared, an
    /// execution C11 forbids (the swap's atomicity and coherence contradict). With every access
    /// an RMW, the order is a chain. The swap's read also orders this poller's look after the
    /// wake-up it clears, which the ring lock orders already.
    pub fn polled(&self) {
        self.woken.swap(false, SeqCst);
    }

    /// Ends the capture with `errno` (the first reason sticks) and wakes every poller: with
    /// `POLLERR`, and `POLLIN` for the frames that may be left.
    pub(crate) fn end(&self, errno: u32, ghost: &Ghost) {
        if self
            .error
            .compare_exchange(0, errno, AcqRel, Acquire)
            .is_ok()
        {
            ghost.record(Event::Ends);
            self.queue
                .notify_if_waiting(events::IN | events::RDNORM | events::ERR, ghost);
        }
    }
}
