//! A ring in plain memory, filled by software producers that follow the module's protocol: for
//! testing consumers without the device.
//!
//! [`Producer`] is the module's producer path: [`claim`](Producer::claim) takes the head slot
//! under a lock if the consumer handed it back and no producer owns it (the module's
//! `rx_owner_map`), the [`Claim`] is filled without the lock, and
//! [`release`](Claim::release) publishes it with a release store of `tp_status`. Producers may
//! run on many threads, and may release out of order, as the module's do on many CPUs.
//!
//! # Examples
//!
//! ```
//! use pktring::fake::{FakePacket, FakeRing};
//! use pktring::uapi::TP_STATUS_USER;
//! use pktring::Geometry;
//!
//! let mut ring = FakeRing::new(Geometry::default(), 0)?;
//! let (mut reader, producer) = ring.split();
//! let mut claim = producer.claim().expect("an empty ring has a free slot");
//! claim.fill(&FakePacket { data: &[0xab; 60], cpu: 3, ..FakePacket::default() });
//! claim.release(TP_STATUS_USER);
//!
//! let frame = reader.try_next()?.expect("the frame is published");
//! assert_eq!((frame.slot(), frame.cpu(), frame.data()), (0, 3, &[0xab; 60][..]));
//! drop(frame);
//! assert_eq!(producer.tp_status(0), 0);
//! # Ok::<(), pktring::Error>(())
//! ```

use std::marker::PhantomData;
use std::mem::offset_of;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::uapi::{tpacket_align, PktringFrame, SockaddrLl, TPACKET2_HDRLEN, TP_STATUS_KERNEL};
use crate::{Error, Geometry, Layout, RingReader};

/// `AF_PACKET`, `ARPHRD_ETHER`, `ARPHRD_NONE`.
const AF_PACKET: u16 = 17;
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_NONE: u16 = 0xfffe;
/// Length of an Ethernet header.
const ETH_HLEN: u32 = 14;

/// A ring in plain memory, zeroed (every slot free), with the layout the module gives a request.
pub struct FakeRing {
    /// Words, for the alignment of the frames' status words; accessed as bytes.
    memory: Box<[AtomicU64]>,
    layout: Layout,
}

impl FakeRing {
    /// Allocates a ring of `geometry`, with snaplen `snaplen` (0: the most).
    pub fn new(geometry: Geometry, snaplen: u32) -> Result<Self, Error> {
        let layout = Layout::expected(geometry, snaplen)?;
        let memory = (0..layout.mmap_size().div_ceil(8))
            .map(|_| AtomicU64::new(0))
            .collect();
        Ok(Self { memory, layout })
    }

    /// Returns the layout of the ring.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Returns the ring's one consumer, starting at slot 0, and its producer side.
    ///
    /// The ring keeps its contents: after the two are dropped, `split` again gives a consumer
    /// that starts at slot 0 and producers whose head is slot 0.
    pub fn split(&mut self) -> (RingReader<'_>, Producer<'_>) {
        let base = NonNull::from(&mut *self.memory).cast::<u8>();
        // SAFETY: `memory` holds `mmap_size()` bytes, 8-byte aligned, borrowed for the
        // lifetime of both halves. The producers follow the protocol (see `Claim`), and this
        // exclusive borrow makes the reader the only one.
        let reader = unsafe { RingReader::from_raw(base, self.layout) };
        let producer = Producer {
            base,
            layout: self.layout,
            state: Mutex::new(ProducerState {
                head: 0,
                owner_map: vec![false; self.layout.frame_nr() as usize],
                claims: 0,
            }),
            _memory: PhantomData,
        };
        (reader, producer)
    }
}

/// The producer side of a [`FakeRing`]; share it between threads to run producers in parallel.
pub struct Producer<'m> {
    base: NonNull<u8>,
    layout: Layout,
    state: Mutex<ProducerState>,
    _memory: PhantomData<&'m [AtomicU64]>,
}

/// The fields of a [`Producer`] protected by its lock, as the module's ring lock protects them.
struct ProducerState {
    /// The next slot to claim.
    head: u32,
    /// One entry per slot, set from claim to release.
    owner_map: Vec<bool>,
    /// Claims made so far.
    claims: u64,
}

// SAFETY: the producer points to memory borrowed for 'm; its state is behind a mutex, status
// words are accessed atomically, and a frame is written only through the one `Claim` on it.
unsafe impl Send for Producer<'_> {}
// SAFETY: as for `Send`: shared producers claim under the mutex and write only their claims.
unsafe impl Sync for Producer<'_> {}

impl<'m> Producer<'m> {
    /// Claims the head slot, or returns `None` (a drop) if the consumer has not handed it back
    /// or another producer still owns it.
    pub fn claim(&self) -> Option<Claim<'_, 'm>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = state.head;
        // Acquire pairs with the consumer's release store of `TP_STATUS_KERNEL`: its reads of
        // the frame are done before we write it.
        if self.status(slot).load(Ordering::Acquire) != TP_STATUS_KERNEL
            || state.owner_map[slot as usize]
        {
            return None;
        }
        state.owner_map[slot as usize] = true;
        state.head = self.layout.next_slot(slot);
        let index = state.claims;
        state.claims += 1;
        Some(Claim {
            producer: self,
            slot,
            index,
        })
    }

    /// Returns the `tp_status` of the frame in `slot` (acquire load).
    pub fn tp_status(&self, slot: u32) -> u32 {
        self.status(slot).load(Ordering::Acquire)
    }

    fn frame(&self, slot: u32) -> NonNull<u8> {
        // SAFETY: `frame_offset` is inside the memory (`Layout`), which `base` points to.
        unsafe { self.base.add(self.layout.frame_offset(slot)) }
    }

    fn status(&self, slot: u32) -> &AtomicU32 {
        // SAFETY: the first word of a frame inside the memory, 4-byte aligned (frame offsets
        // are multiples of 16 from an 8-byte aligned base), borrowed for 'm which outlives
        // `self`. Producers access it only atomically; the reader too, but for its own read of a
        // frame it owns, ordered between its acquire load and its release store.
        unsafe { AtomicU32::from_ptr(self.frame(slot).cast::<u32>().as_ptr()) }
    }
}

/// What [`Claim::fill`] writes: an Ethernet packet (or, with `raw`, one from its network header)
/// and where it came from.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakePacket<'a> {
    /// The packet, from its Ethernet header; with `raw`, from its IP header.
    pub data: &'a [u8],
    /// A packet without a link-layer header (a device without one, or the egress inet hooks):
    /// the frame starts at the network header (`tp_mac == tp_net`), and `sll_protocol` is the
    /// IP version's EtherType.
    pub raw: bool,
    /// `sll_pkttype`: `PACKET_HOST` (0), or `PACKET_OUTGOING` (4) as at the egress hooks.
    pub pkttype: u8,
    /// Receive time, since the Unix epoch.
    pub timestamp: Duration,
    /// CPU of the producer.
    pub cpu: u16,
    /// RX queue, or `PKTRING_NO_RX_QUEUE`.
    pub rx_queue: u16,
    /// Device it arrived on.
    pub ifindex: i32,
}

/// A slot a producer claimed: it alone writes the frame until it releases it.
///
/// A claim dropped without [`release`](Self::release) keeps its slot, like a producer that
/// never finishes: the ring stops at it.
pub struct Claim<'p, 'm> {
    producer: &'p Producer<'m>,
    slot: u32,
    index: u64,
}

impl Claim<'_, '_> {
    /// Returns the claimed slot.
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Returns the number of claims made before this one: its place in ring order, over laps.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Writes `packet` as the module writes an Ethernet packet: its header, its `sockaddr_ll`,
    /// and as much of it as fits the frame and the snaplen at `tp_mac`, with the network header
    /// 16-byte aligned after room for a 16-byte MAC header (a `raw` packet: at the network
    /// header, `tp_mac == tp_net`).
    pub fn fill(&mut self, packet: &FakePacket<'_>) {
        let info = *self.producer.layout.info();
        let len = packet.data.len() as u32;
        let netoff = tpacket_align(TPACKET2_HDRLEN + 16);
        let hlen = if packet.raw { 0 } else { ETH_HLEN };
        let (mac, snaplen) = match info.frame_size.checked_sub(netoff) {
            Some(room) => (netoff - hlen, len.min(info.snaplen).min(room + hlen)),
            None => (TPACKET2_HDRLEN, 0),
        };
        self.write(mac as usize, &packet.data[..snaplen as usize]);
        self.write_header(&PktringFrame {
            tp_status: 0,
            tp_len: len,
            tp_snaplen: snaplen,
            tp_mac: mac as u16,
            tp_net: (mac + hlen) as u16,
            tp_sec: packet.timestamp.as_secs() as u32,
            tp_nsec: packet.timestamp.subsec_nanos(),
            tp_vlan_tci: 0,
            tp_vlan_tpid: 0,
            cpu: packet.cpu,
            rx_queue: packet.rx_queue,
        });
        let byte = |i: usize| packet.data.get(i).copied().unwrap_or(0);
        let link = if packet.raw {
            let protocol: u16 = match byte(0) >> 4 {
                6 => 0x86dd,
                _ => 0x0800,
            };
            SockaddrLl {
                sll_family: AF_PACKET,
                sll_protocol: protocol.to_be(),
                sll_ifindex: packet.ifindex,
                sll_hatype: ARPHRD_NONE,
                sll_pkttype: packet.pkttype,
                sll_halen: 0,
                sll_addr: [0; 8],
            }
        } else {
            SockaddrLl {
                sll_family: AF_PACKET,
                sll_protocol: u16::from_ne_bytes([byte(12), byte(13)]),
                sll_ifindex: packet.ifindex,
                sll_hatype: ARPHRD_ETHER,
                sll_pkttype: packet.pkttype,
                sll_halen: 6,
                // The Ethernet source address, as `dev_parse_header()` reports it.
                sll_addr: std::array::from_fn(|i| if i < 6 { byte(6 + i) } else { 0 }),
            }
        };
        self.write_link(&link);
    }

    /// Writes every field of `header` but `tp_status` (which only [`release`](Self::release)
    /// writes), whatever their values: for frames that lie.
    pub fn write_header(&mut self, header: &PktringFrame) {
        macro_rules! write_fields {
            ($($field:ident),*) => {
                $(self.write(offset_of!(PktringFrame, $field), &header.$field.to_ne_bytes());)*
            };
        }
        write_fields!(
            tp_len,
            tp_snaplen,
            tp_mac,
            tp_net,
            tp_sec,
            tp_nsec,
            tp_vlan_tci,
            tp_vlan_tpid,
            cpu,
            rx_queue
        );
    }

    /// Writes `link` as the frame's `sockaddr_ll`, whatever its values.
    pub fn write_link(&mut self, link: &SockaddrLl) {
        let at = self.producer.layout.info().sll_offset as usize;
        macro_rules! write_fields {
            ($($field:ident),*) => {
                $(self.write(at + offset_of!(SockaddrLl, $field), &link.$field.to_ne_bytes());)*
            };
        }
        write_fields!(
            sll_family,
            sll_protocol,
            sll_ifindex,
            sll_hatype,
            sll_pkttype,
            sll_halen
        );
        self.write(at + offset_of!(SockaddrLl, sll_addr), &link.sll_addr);
    }

    /// Copies `bytes` into the frame at `offset`.
    ///
    /// # Panics
    ///
    /// If the bytes would overlap `tp_status` or end past the frame.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) {
        let frame_size = self.producer.layout.info().frame_size as usize;
        assert!(
            offset >= size_of::<u32>() && bytes.len() <= frame_size.saturating_sub(offset),
            "{} bytes at {offset} are not in the frame after tp_status",
            bytes.len()
        );
        let frame = self.producer.frame(self.slot);
        // SAFETY: the bytes are inside the frame (checked above), which is inside the memory,
        // and not its status word. The frame is ours: its status read `TP_STATUS_KERNEL` when we
        // claimed it, so the reader does not read it, and its owner entry keeps other producers
        // away until we release it.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), frame.add(offset).as_ptr(), bytes.len())
        };
    }

    /// Publishes the frame with `tp_status` (`TP_STATUS_USER` and flags, normally) and gives up
    /// the slot.
    pub fn release(self, tp_status: u32) {
        let mut state = self
            .producer
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Release orders every write to the frame before the status that publishes it.
        self.producer
            .status(self.slot)
            .store(tp_status, Ordering::Release);
        state.owner_map[self.slot as usize] = false;
    }
}
