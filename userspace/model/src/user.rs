// SPDX-License-Identifier: GPL-2.0

//! The model of user space: a consumer that walks the ring with a head of its own.

use core::sync::atomic::Ordering::{Acquire, Release};

use crate::ghost::{Event, Invariant};
use crate::ring::{Ring, SLOTS, TP_STATUS_KERNEL, TP_STATUS_USER};

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
    /// kernel and moves on. Where a real consumer would `poll()` and look again, the model
    /// calls this again.
    ///
    /// # Panics
    ///
    /// With [`Invariant::TornFrame`], if checked, when a frame it reads is not one whole
    /// packet.
    pub fn poll(&mut self, ring: &Ring) {
        let slot = self.head;
        let frame = ring.frame(slot);
        if self.reader == Reader::Hostile {
            frame.status.store(TP_STATUS_KERNEL, Release);
            ring.ghost().record(Event::HandedBack { slot });
            self.head = (slot + 1) % SLOTS;
            return;
        }
        // Acquire pairs with the producer's release store of the status: the frame's words are
        // written before we read them.
        let status = frame.status.load(Acquire);
        if !self.reader.ready(status) {
            return;
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
        self.head = (slot + 1) % SLOTS;
    }

    /// Returns the ids of the packets read, in order.
    pub fn into_read(self) -> Vec<u32> {
        self.read
    }
}
