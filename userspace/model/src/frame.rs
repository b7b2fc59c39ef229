// SPDX-License-Identifier: GPL-2.0

//! A frame of the ring as the model sees it: `tp_status`, `tp_len` and a few words of packet
//! data.

use core::sync::atomic::Ordering::Relaxed;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;

/// Words of packet data in a frame: two are enough for a frame to be torn, one word from each
/// of two packets.
pub const DATA_WORDS: usize = 2;

/// What the frame's `tp_len` and data words are made of, and so what loom checks of them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Loom `UnsafeCell`s: loom reports any two accesses to a word that happens-before does not
    /// order, one of them a write, whether or not they overlap in the explored interleaving.
    /// The strongest check: it also catches a missing or too weak fence. A copy is one step
    /// for the scheduler, so the model's own checks rarely get to fire before loom's.
    Cells,
    /// Loom `AtomicU32`s with `Relaxed` ordering, which is how the kernel treats the shared
    /// mapping (word-sized accesses, never a reference into it). Every word is a scheduling
    /// point, so the interleavings include half-copied frames, and the model's checks see
    /// exactly what user space would: a torn frame, a lost one.
    RelaxedAtomics,
}

/// One word of a frame that is not `tp_status`.
#[derive(Debug)]
pub(crate) enum Word {
    Cell(UnsafeCell<u32>),
    Atomic(AtomicU32),
}

// SAFETY: A `Word` is shared by the model's threads as the mapping is by the CPUs and user
// space. Loom runs one thread at a time, and checks every access to a `Word::Cell` as it starts:
// one that happens-before does not order after the last conflicting access panics before the
// memory is touched. So no two accesses to the `u32` inside ever race.
unsafe impl Sync for Word {}

impl Word {
    fn new(payload: Payload) -> Self {
        match payload {
            Payload::Cells => Self::Cell(UnsafeCell::new(0)),
            Payload::RelaxedAtomics => Self::Atomic(AtomicU32::new(0)),
        }
    }

    /// Writes the word; the kernel does this to the mapping with a plain store or `memcpy`.
    pub(crate) fn write(&self, value: u32) {
        match self {
            Self::Cell(cell) => cell.with_mut(|ptr| {
                // SAFETY: `ptr` points into the cell, which lives as long as `self`. Loom has
                // checked that every earlier access to it happens-before this one (see the
                // `Sync` impl), and this thread makes no other access while it writes.
                unsafe { *ptr = value }
            }),
            Self::Atomic(atomic) => atomic.store(value, Relaxed),
        }
    }

    /// Reads the word.
    pub(crate) fn read(&self) -> u32 {
        match self {
            Self::Cell(cell) => cell.with(|ptr| {
                // SAFETY: As in `write`: loom has checked that the last write to the cell
                // happens-before this read, and nothing writes it while we read.
                unsafe { *ptr }
            }),
            Self::Atomic(atomic) => atomic.load(Relaxed),
        }
    }
}

/// A packet for the ring: `DATA_WORDS` words of its id, and a length derived from the id.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Which packet this is; never 0, the value of a word never written.
    pub id: u32,
}

impl Packet {
    /// Returns the packet's `tp_len`: a function of its id, so a header from one packet with
    /// the data of another is a torn frame too.
    pub fn tp_len(&self) -> u32 {
        64 * self.id
    }
}

/// One slot's frame: `tp_status`, always an atomic, and the words a producer fills.
#[derive(Debug)]
pub struct Frame {
    /// `tp_status`: the word that hands the frame from the kernel to user space and back.
    pub status: AtomicU32,
    /// `tp_len`, written after the data, as `fill()` writes the header after the packet.
    pub(crate) len: Word,
    /// The packet's bytes.
    pub(crate) data: [Word; DATA_WORDS],
}

/// What a reader found in a frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Contents {
    /// `tp_len`.
    pub len: u32,
    /// The data words.
    pub data: [u32; DATA_WORDS],
}

impl Contents {
    /// Returns the id of the packet the frame holds, or `None` if it is torn: never written,
    /// half written, or written by two packets.
    pub fn packet_id(&self) -> Option<u32> {
        let id = self.data[0];
        let whole = id != 0
            && self.data.iter().all(|&word| word == id)
            && self.len == (Packet { id }).tp_len();
        whole.then_some(id)
    }
}

impl Frame {
    pub(crate) fn new(payload: Payload) -> Self {
        Self {
            status: AtomicU32::new(0),
            len: Word::new(payload),
            data: core::array::from_fn(|_| Word::new(payload)),
        }
    }

    /// Reads the frame as a reader does: the header's `tp_len`, then the data.
    pub fn read(&self) -> Contents {
        let len = self.len.read();
        Contents {
            len,
            data: core::array::from_fn(|i| self.data[i].read()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(len: u32, data: [u32; DATA_WORDS]) -> Contents {
        Contents { len, data }
    }

    #[test]
    fn whole_frame() {
        let packet = Packet { id: 3 };
        let frame = contents(packet.tp_len(), [3; DATA_WORDS]);
        assert_eq!(frame.packet_id(), Some(3));
    }

    #[test]
    fn torn_frames() {
        let (one, three) = (Packet { id: 1 }, Packet { id: 3 });
        // Never written.
        assert_eq!(contents(0, [0; DATA_WORDS]).packet_id(), None);
        // Half written: the data, not yet the header.
        assert_eq!(contents(0, [3; DATA_WORDS]).packet_id(), None);
        // The data of two packets.
        let mut mixed = [1; DATA_WORDS];
        mixed[DATA_WORDS - 1] = 3;
        assert_eq!(contents(one.tp_len(), mixed).packet_id(), None);
        // The data of one packet, the header of another.
        assert_eq!(contents(one.tp_len(), [3; DATA_WORDS]).packet_id(), None);
        assert_eq!(contents(three.tp_len(), [1; DATA_WORDS]).packet_id(), None);
    }
}
