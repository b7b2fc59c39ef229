// SPDX-License-Identifier: GPL-2.0

//! The model of user space: a consumer that walks the ring with a head of its own.

use core::sync::atomic::Ordering::{Acquire, Release};

use loom::thread;

use crate::ghost::{Event, Invariant};
use crate::ring::{Ring, TP_STATUS_KERNEL, TP_STATUS_USER};
use crate::wait::{events, Polled};

/// How a consumer decides that the frame at its head is ready.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reader {
    /// `tp_status & TP_STATUS_USER`, as packet(7) and the module's example program test it.
    UserBit,
    /// `tp_status != TP_STATUS_KERNEL`, as libpcap tests it, and as packet_mmap.txt words it
    /// ("if this field is 0 ... the kernel, if not, there is a frame the user can read").
    NonZero,
    /// A hostile or broken process: stores `TP_STATUS_KERNEL` into the frame at its head
    /// whatever its status, without reading it. The kernel's own invariants must hold anyway.
    Hostile,
}

impl Reader {
    /// Returns `true` if a frame of status `status` is ready for this reader.
    fn ready(self, status: u32) -> bool {
        match self {
            Self::UserBit => status & TP_STATUS_USER != 0,
            Self::NonZero => status != TP_STATUS_KERNEL,
            Self::Hostile => true,
        }
    }
}

/// A consumer: where it is in the ring, and the packets it has read.
#[derive(Debug)]
pub struct Consumer {
    reader: Reader,
    /// The next slot to read; user space keeps its own, the kernel never sees it.
    head: usize,
    read: Vec<u32>,
}

impl Consumer {
    /// Makes a consumer at slot 0 that tests frames as `reader` does.
    pub fn new(reader: Reader) -> Self {
        Self {
            reader,
            head: 0,
            read: Vec::new(),
        }
    }

    /// Looks at the frame at the head once; if it is ready, reads it, hands it back to the
    /// kernel, moves on, and returns `true`. Where a real consumer would `poll()` and look
    /// again, the claim/release configurations call this again; [`Consumer::run`] polls.
    ///
    /// # Panics
    ///
    /// With [`Invariant::TornFrame`], if checked, when a frame it reads is not one whole
    /// packet.
    pub fn look(&mut self, ring: &Ring) -> bool {
        let slot = self.head;
        let frame = ring.frame(slot);
        if self.reader == Reader::Hostile {
            frame.status.store(TP_STATUS_KERNEL, Release);
            ring.ghost().record(Event::HandedBack { slot });
            ring.ghost().handed_back();
            self.head = (slot + 1) % ring.slots();
            return true;
        }
        // Acquire pairs with the producer's release store of the status: the frame's words are
        // written before we read them.
        let status = frame.status.load(Acquire);
        if !self.reader.ready(status) {
            ring.ghost().record(Event::NotReady { slot, status });
            return false;
        }
        ring.ghost().record(Event::Takes { slot, status });
        let contents = frame.read();
        let packet = contents.packet_id();
        ring.ghost().record(Event::Read { slot, packet });
        ring.ghost()
            .check(Invariant::TornFrame, packet.is_some(), || {
                format!("slot {slot}, status {status:#x}, {contents:?}")
            });
        self.read.extend(packet);
        // Release orders our reads of the frame before the kernel's next writes to it.
        frame.status.store(TP_STATUS_KERNEL, Release);
        ring.ghost().record(Event::HandedBack { slot });
        ring.ghost().handed_back();
        self.head = (slot + 1) % ring.slots();
        true
    }

    /// Reads the ring until the capture ends, as the crate docs' example program and libpcap
    /// do: every frame that is ready, then `poll()` for `POLLIN` until it reports an event, and
    /// again. A `POLLERR` (the capture ended) ends it after one more look.
    ///
    /// # Panics
    ///
    /// With [`Invariant::ReadableNotReady`], if checked, when `poll()` reports the ring
    /// readable and the frame at the head is not ready. Unchecked, the consumer spins on
    /// `poll()` as a real one would, yielding to the producers.
    ///
    /// With a [`Reader::Hostile`], which never waits.
    pub fn run(&mut self, ring: &Ring) {
        assert_ne!(self.reader, Reader::Hostile, "a hostile reader never waits");
        let mut polled = 0;
        loop {
            let mut read = 0;
            while self.look(ring) {
                read += 1;
            }
            if polled & events::IN != 0 && read == 0 {
                let slot = self.head;
                ring.ghost().check(Invariant::ReadableNotReady, false, || {
                    format!("slot {slot}")
                });
                thread::yield_now();
            }
            if polled & events::ERR != 0 {
                return;
            }
            polled = self.poll(ring);
        }
    }

    /// `poll(2)` on the file for `POLLIN`, as `do_poll()` runs the file's `poll()`: the first
    /// call registers on the readers' queue; while it reports no event, sleep until woken and
    /// call it again. Returns the events.
    fn poll(&self, ring: &Ring) -> u32 {
        let readers = ring
            .readers()
            .expect("a consumer polls a ring with readers");
        let ghost = ring.ghost();
        readers.queue().register_wait(ghost);
        let mut first = true;
        let polled = loop {
            // `RingFile::poll`, after `register_wait()`, which registers the first time only.
            if first || readers.when_polled() == Polled::EveryLook {
                readers.polled();
            }
            first = false;
            let mut mask = 0;
            if ring.readable() {
                mask |= events::IN | events::RDNORM;
            }
            if readers.error() != 0 {
                mask |= events::ERR;
            }
            if mask != 0 {
                break mask;
            }
            ghost.sleeps();
            readers.queue().sleep(ghost);
        };
        readers.queue().unregister(ghost);
        polled
    }

    /// Returns the ids of the packets read, in order.
    pub fn into_read(self) -> Vec<u32> {
        self.read
    }
}
