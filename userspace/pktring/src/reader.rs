//! The consumer side of the ring, over any memory laid out as the module lays it out.

use std::cell::UnsafeCell;
use std::io;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use std::{slice, thread};

/// Wake-ups after which [`RingReader::next_frame`] lets other threads run before it waits again,
/// when its `wait` keeps saying "ready" while the head slot is not: a kernel that reports the
/// slot before its own head (as af_packet's `poll()` does, and this module without its owner
/// map), or another party that hands slots back.
const SPURIOUS_BEFORE_YIELD: u32 = 3;

use crate::uapi::{
    PktringFrame, SockaddrLl, PKTRING_NO_RX_QUEUE, TP_STATUS_KERNEL, TP_STATUS_USER,
    TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID,
};
use crate::{Error, Layout, Op};

/// The one consumer of a ring: it takes frames in ring order, starting at slot 0.
///
/// The *head* is the next slot to consume. A slot whose `tp_status` reads `TP_STATUS_KERNEL`
/// is not ready, whatever the slots after it hold: producers on several CPUs claim slots in
/// ring order but may publish them out of order, and the reader never skips ahead.
pub struct RingReader<'m> {
    base: NonNull<u8>,
    layout: Layout,
    head: u32,
    wakeups: u64,
    _memory: PhantomData<&'m UnsafeCell<[u8]>>,
}

// SAFETY: the reader is a pointer to memory valid for 'm (the contract of `from_raw`) and a
// head index; it uses nothing tied to the thread that made it.
unsafe impl Send for RingReader<'_> {}

impl<'m> RingReader<'m> {
    /// Makes the consumer of the ring at `base`.
    ///
    /// # Safety
    ///
    /// For all of `'m`:
    /// - `base` points to `layout.mmap_size()` bytes, valid for reads and writes and 4-byte
    ///   aligned;
    /// - every other party follows the ring protocol: it accesses `tp_status` words only
    ///   atomically, writes a frame only while its `tp_status` is `TP_STATUS_KERNEL` and
    ///   publishes it with a release store of a non-zero `tp_status`, and never writes a frame
    ///   whose `tp_status` is non-zero (that frame belongs to this reader until it stores
    ///   `TP_STATUS_KERNEL`);
    /// - no other reader consumes the same ring.
    ///
    /// The module is such a party; another mapping of the same ring that writes into it is not.
    pub unsafe fn from_raw(base: NonNull<u8>, layout: Layout) -> Self {
        Self {
            base,
            layout,
            head: 0,
            wakeups: 0,
            _memory: PhantomData,
        }
    }

    /// Returns the layout of the ring.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Returns the head: the slot the next frame will come from.
    pub fn head(&self) -> u32 {
        self.head
    }

    /// Returns `true` if the head slot holds a frame.
    pub fn is_ready(&self) -> bool {
        self.status(self.head).load(Ordering::Acquire) != TP_STATUS_KERNEL
    }

    /// Returns the frame in the head slot and advances the head, or `None` if the slot is not
    /// ready.
    ///
    /// A frame whose header does not fit its frame is handed back to the kernel and reported as
    /// [`CorruptFrame`]; the head moves past it, so the next call goes on with the ring.
    pub fn try_next(&mut self) -> Result<Option<Frame<'_>>, CorruptFrame> {
        let slot = self.head;
        // Acquire pairs with the producer's release store of the status: every byte of the
        // frame that it wrote before is visible to the reads below.
        let tp_status = self.status(slot).load(Ordering::Acquire);
        if tp_status == TP_STATUS_KERNEL {
            return Ok(None);
        }
        self.head = self.layout.next_slot(slot);

        let frame = self.frame(slot);
        let sll_offset = self.layout.info().sll_offset as usize;
        // SAFETY: `Layout` keeps the frame inside the memory and the header and the
        // `sockaddr_ll` inside the frame, at 4-byte aligned offsets of a 4-byte aligned frame
        // (`from_raw`). The frame belongs to us since the load above, so no producer writes it
        // (`from_raw`'s contract). Each is read once, by a volatile read into a private copy:
        // everything below is checked and used on the copies, never read again from shared
        // memory.
        let (header, link) = unsafe {
            (
                frame.cast::<PktringFrame>().read_volatile(),
                frame.add(sll_offset).cast::<SockaddrLl>().read_volatile(),
            )
        };
        let header = PktringFrame {
            tp_status,
            ..header
        };
        let status = self.status(slot);
        if let Err(reason) = check(&header, &link, &self.layout) {
            // Hand it back like any other: the kernel rewrites the whole header before it
            // publishes the slot again.
            status.store(TP_STATUS_KERNEL, Ordering::Release);
            return Err(CorruptFrame {
                slot,
                reason,
                header,
            });
        }
        // SAFETY: `check` keeps `tp_mac + tp_snaplen` inside the frame, which is inside the
        // memory. The frame belongs to us until `Frame::drop` hands it back, and the slice
        // lives no longer than the `Frame` (see `Frame::data`), so nobody writes the bytes while
        // it exists (`from_raw`'s contract).
        let data = unsafe {
            slice::from_raw_parts(
                frame.add(usize::from(header.tp_mac)).as_ptr(),
                header.tp_snaplen as usize,
            )
        };
        Ok(Some(Frame {
            status,
            slot,
            header,
            link,
            data,
        }))
    }

    /// Returns the next frame, waiting up to `timeout` (`None`: for ever) for it.
    ///
    /// `wait(left)` blocks until the ring may have become ready or `left` passed: it returns
    /// `Ok(true)` to look again, `Ok(false)` to give up (a timeout or a signal). Returns
    /// `Ok(None)` if no frame became ready in time or `wait` gave up.
    ///
    /// # Examples
    ///
    /// ```
    /// use pktring::{fake::FakeRing, Geometry};
    /// use std::time::Duration;
    ///
    /// let mut ring = FakeRing::new(Geometry::default(), 0)?;
    /// let (mut reader, _producer) = ring.split();
    /// let frame = reader.next_frame(Some(Duration::from_millis(5)), |left| {
    ///     std::thread::sleep(left.unwrap_or(Duration::MAX).min(Duration::from_millis(1)));
    ///     Ok(true)
    /// })?;
    /// assert!(frame.is_none());
    /// # Ok::<(), pktring::Error>(())
    /// ```
    pub fn next_frame(
        &mut self,
        timeout: Option<Duration>,
        mut wait: impl FnMut(Option<Duration>) -> io::Result<bool>,
    ) -> Result<Option<Frame<'_>>, Error> {
        if self.is_ready() {
            // The common case under load: no clock, no system call.
            return Ok(self.try_next()?);
        }
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut spurious = 0;
        while !self.is_ready() {
            let left = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
                None => None,
            };
            if !wait(left).map_err(Op::Poll.error())? {
                return Ok(None);
            }
            self.wakeups += 1;
            // The module wakes a poller only once the frame at its release frontier is out, so
            // this is rare; wait again rather than sleep a fixed time.
            if !self.is_ready() {
                spurious += 1;
                if spurious % SPURIOUS_BEFORE_YIELD == 0 {
                    thread::yield_now();
                }
            }
        }
        Ok(self.try_next()?)
    }

    /// Returns how many times [`RingReader::next_frame`]'s `wait` returned to look again: the
    /// wake-ups the consumer took.
    pub fn wakeups(&self) -> u64 {
        self.wakeups
    }

    /// Returns the start of the frame in `slot`.
    fn frame(&self, slot: u32) -> NonNull<u8> {
        // SAFETY: `frame_offset` is inside the memory (`Layout`), which `base` points to.
        unsafe { self.base.add(self.layout.frame_offset(slot)) }
    }

    /// Returns the `tp_status` word of the frame in `slot`.
    fn status(&self, slot: u32) -> &'m AtomicU32 {
        // SAFETY: the word is the first of a frame inside the memory, 4-byte aligned and valid
        // for 'm (`from_raw`). Every party accesses it atomically, except this reader's own
        // volatile read of the whole header in `try_next`, which is ordered after its acquire
        // load and before its release store of the same word.
        unsafe { AtomicU32::from_ptr(self.frame(slot).cast::<u32>().as_ptr()) }
    }
}

/// Checks a frame's header and `sockaddr_ll` against the layout; returns what is wrong.
///
/// The module writes `tp_mac` at or after `TPACKET2_HDRLEN`, `tp_mac + tp_snaplen` within the
/// frame, `tp_snaplen` at most `tp_len` and the snaplen, `tp_net` at or after `tp_mac`. `tp_net`
/// may lie past the captured bytes, even past the frame (a frame too small for the MAC header);
/// it is only used through [`Frame::network`], which looks for it inside the captured bytes.
fn check(header: &PktringFrame, link: &SockaddrLl, layout: &Layout) -> Result<(), &'static str> {
    let info = layout.info();
    let data_start = u64::from(info.sll_offset) + size_of::<SockaddrLl>() as u64;
    let mac = u64::from(header.tp_mac);
    if header.tp_status & TP_STATUS_USER == 0 {
        Err("tp_status without TP_STATUS_USER")
    } else if mac < data_start {
        Err("tp_mac points into the frame header")
    } else if mac + u64::from(header.tp_snaplen) > u64::from(info.frame_size) {
        Err("the captured bytes end past the frame")
    } else if header.tp_snaplen > header.tp_len || header.tp_snaplen > info.snaplen {
        Err("tp_snaplen is larger than tp_len or the ring's snaplen")
    } else if header.tp_net < header.tp_mac {
        Err("tp_net is before tp_mac")
    } else if header.tp_nsec >= 1_000_000_000 {
        Err("tp_nsec is a second or more")
    } else if usize::from(link.sll_halen) > link.sll_addr.len() {
        Err("sll_halen is longer than sll_addr")
    } else {
        Ok(())
    }
}

/// A frame the reader refused: its header points outside the frame or contradicts itself.
///
/// It was handed back to the kernel when it was found, so the ring goes on.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error(
    "corrupt frame in slot {slot}: {reason} (status {:#x}, len {}, snaplen {}, mac {}, net {})",
    header.tp_status, header.tp_len, header.tp_snaplen, header.tp_mac, header.tp_net
)]
pub struct CorruptFrame {
    /// The slot of the frame.
    pub slot: u32,
    /// What is wrong with it.
    pub reason: &'static str,
    /// Its header, as read.
    pub header: PktringFrame,
}

/// A VLAN tag of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlan {
    /// Tag control information: priority, DEI and VLAN ID.
    pub tci: u16,
    /// Tag protocol identifier (e.g. 0x8100), if the module recorded it.
    pub tpid: Option<u16>,
}

/// A frame of the ring, borrowed from its reader until it is dropped, which hands it back to the
/// kernel.
///
/// Its header and `sockaddr_ll` are private copies, checked against the ring's layout; its data
/// are the captured bytes in the ring itself.
pub struct Frame<'r> {
    status: &'r AtomicU32,
    slot: u32,
    header: PktringFrame,
    link: SockaddrLl,
    data: &'r [u8],
}

impl Frame<'_> {
    /// Returns the slot the frame is in.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Returns the frame header: `tp_status` as loaded, every other field as read, all checked.
    pub fn header(&self) -> &PktringFrame {
        &self.header
    }

    /// Returns the `sockaddr_ll` of the frame: protocol, device, link-layer address.
    pub fn link(&self) -> &SockaddrLl {
        &self.link
    }

    /// Returns the length of the packet from its MAC header (`tp_len`); [`data`](Self::data)
    /// holds the first `tp_snaplen` bytes of it.
    pub fn wire_len(&self) -> u32 {
        self.header.tp_len
    }

    /// Returns the time the packet was received, since the Unix epoch.
    pub fn timestamp(&self) -> Duration {
        Duration::new(self.header.tp_sec.into(), self.header.tp_nsec)
    }

    /// Returns the CPU the hook ran on.
    pub fn cpu(&self) -> u16 {
        self.header.cpu
    }

    /// Returns the RX queue the packet arrived on, if its device recorded one.
    pub fn rx_queue(&self) -> Option<u16> {
        Some(self.header.rx_queue).filter(|&queue| queue != PKTRING_NO_RX_QUEUE)
    }

    /// Returns the packet's VLAN tag, if the device stripped one.
    pub fn vlan(&self) -> Option<Vlan> {
        let status = self.header.tp_status;
        (status & TP_STATUS_VLAN_VALID != 0).then(|| Vlan {
            tci: self.header.tp_vlan_tci,
            tpid: (status & TP_STATUS_VLAN_TPID_VALID != 0).then_some(self.header.tp_vlan_tpid),
        })
    }

    /// Returns the captured bytes of the packet, from its MAC header.
    ///
    /// The slice borrows the frame, not just the reader: the frame is handed back, and may be
    /// overwritten, only once the slice is gone.
    pub fn data(&self) -> &[u8] {
        self.data
    }

    /// Returns the length of the link-layer header in front of the network header
    /// (`tp_net - tp_mac`): 0 for a packet that has none (a device without one, and always at
    /// `LOCAL_OUT` and `POST_ROUTING`), where the frame starts at the network header.
    pub fn link_header_len(&self) -> usize {
        usize::from(self.header.tp_net - self.header.tp_mac)
    }

    /// Returns `true` for a packet this host sends (`sll_pkttype` `PACKET_OUTGOING`, as at the
    /// egress hooks).
    pub fn is_outgoing(&self) -> bool {
        self.link.sll_pkttype == crate::uapi::PACKET_OUTGOING
    }

    /// Returns the captured bytes from the network header (`tp_net`), if they start within the
    /// captured bytes.
    pub fn network(&self) -> Option<&[u8]> {
        let offset = self.header.tp_net - self.header.tp_mac;
        self.data.get(usize::from(offset)..)
    }
}

impl Drop for Frame<'_> {
    /// Hands the frame back to the kernel.
    fn drop(&mut self) {
        // Release orders every read of the frame before the kernel's acquire load that sees it
        // free again: it cannot overwrite bytes we are still reading.
        self.status.store(TP_STATUS_KERNEL, Ordering::Release);
    }
}

impl SockaddrLl {
    /// Returns the EtherType, in host byte order.
    pub fn protocol(&self) -> u16 {
        u16::from_be(self.sll_protocol)
    }

    /// Returns the link-layer address: `sll_halen` bytes of `sll_addr`.
    pub fn addr(&self) -> &[u8] {
        &self.sll_addr[..usize::from(self.sll_halen).min(self.sll_addr.len())]
    }
}
