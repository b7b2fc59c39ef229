//! Ring geometry: what a request asks for, and the layout of the mapping that the module reports.

use crate::uapi::{
    tpacket_align, PktringFrame, PktringInfo, SockaddrLl, PKTRING_MAX_RING_BYTES,
    PKTRING_MAX_SNAPLEN, PKTRING_VERSION, TPACKET2_HDRLEN, TPACKET_ALIGNMENT,
};
use crate::Error;

/// The shape of a ring: `block_nr` blocks of `block_size` bytes, each holding as many frames of
/// `frame_size` bytes as fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes per block: a multiple of the page size.
    pub block_size: u32,
    /// Number of blocks.
    pub block_nr: u32,
    /// Bytes per frame: a multiple of `TPACKET_ALIGNMENT` (16), at least `TPACKET2_HDRLEN` (52),
    /// at most `block_size`.
    pub frame_size: u32,
}

impl Default for Geometry {
    /// 16 blocks of 64 KiB, 2 KiB frames: 512 frames, 1 MiB.
    fn default() -> Self {
        Self {
            block_size: 64 << 10,
            block_nr: 16,
            frame_size: 2048,
        }
    }
}

impl Geometry {
    /// Returns the number of frames, after the checks the module makes on a request (those of
    /// af_packet's `packet_set_ring()`, and `PKTRING_MAX_RING_BYTES`).
    pub fn frame_nr(&self) -> Result<u32, Error> {
        self.check().map_err(Error::Request)
    }

    fn check(&self) -> Result<u32, String> {
        let Self {
            block_size,
            block_nr,
            frame_size,
        } = *self;
        let page_size = rustix::param::page_size();
        if block_size == 0 || block_size as usize % page_size != 0 {
            return Err(format!(
                "block size {block_size} is not a positive multiple of the page size ({page_size})"
            ));
        }
        if frame_size < TPACKET2_HDRLEN || frame_size % TPACKET_ALIGNMENT != 0 {
            return Err(format!(
                "frame size {frame_size} is not a multiple of {TPACKET_ALIGNMENT} of at least \
                 {TPACKET2_HDRLEN} (TPACKET_ALIGNMENT, TPACKET2_HDRLEN)"
            ));
        }
        if frame_size > block_size {
            return Err(format!(
                "frame size {frame_size} is larger than the block size {block_size}"
            ));
        }
        if block_nr == 0 {
            return Err("the ring needs at least one block".into());
        }
        let bytes = u64::from(block_size) * u64::from(block_nr);
        if bytes > PKTRING_MAX_RING_BYTES {
            return Err(format!(
                "{block_nr} blocks of {block_size} bytes are {bytes} bytes, more than the \
                 module's {PKTRING_MAX_RING_BYTES} (PKTRING_MAX_RING_BYTES)"
            ));
        }
        // Cannot overflow: at most 256 MiB of frames of at least 64 bytes.
        Ok(block_size / frame_size * block_nr)
    }
}

/// The layout of a mapped ring, from `PKTRING_IOC_GET_INFO`, checked to be one that a
/// [`RingReader`](crate::RingReader) can read within bounds.
///
/// # Invariants
///
/// The geometry passes [`Geometry::frame_nr`], which gives `info.frame_nr` (at least one);
/// `info.mmap_size` is `block_size * block_nr`, so every frame lies inside the mapping; the frame
/// header and the `sockaddr_ll` after it fit in a frame, at 4-byte aligned offsets of it;
/// `info.snaplen` is at most `PKTRING_MAX_SNAPLEN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    info: PktringInfo,
    frames_per_block: u32,
}

impl Layout {
    /// Checks the layout the module reported.
    pub fn from_info(info: PktringInfo) -> Result<Self, Error> {
        Self::check(info).map_err(Error::Layout)
    }

    /// Returns the layout the module reports for a ring of `geometry` and `snaplen` (0: the
    /// most): for rings in plain memory, such as [`FakeRing`](crate::fake::FakeRing).
    pub fn expected(geometry: Geometry, snaplen: u32) -> Result<Self, Error> {
        let frame_nr = geometry.frame_nr()?;
        if snaplen > PKTRING_MAX_SNAPLEN {
            return Err(Error::Request(format!(
                "snaplen {snaplen} is larger than {PKTRING_MAX_SNAPLEN} (PKTRING_MAX_SNAPLEN)"
            )));
        }
        let hdr_len = size_of::<PktringFrame>() as u32;
        Self::from_info(PktringInfo {
            size: size_of::<PktringInfo>() as u32,
            version: PKTRING_VERSION,
            mmap_size: u64::from(geometry.block_size) * u64::from(geometry.block_nr),
            block_size: geometry.block_size,
            block_nr: geometry.block_nr,
            frame_size: geometry.frame_size,
            frame_nr,
            hdr_len,
            sll_offset: tpacket_align(hdr_len),
            snaplen: if snaplen == 0 {
                PKTRING_MAX_SNAPLEN
            } else {
                snaplen
            }
            .min(geometry.frame_size - TPACKET2_HDRLEN),
            error: 0,
            reserved: [0; 4],
        })
    }

    fn check(info: PktringInfo) -> Result<Self, String> {
        if info.size as usize != size_of::<PktringInfo>() || info.version != PKTRING_VERSION {
            return Err(format!(
                "the module speaks ABI version {} with a {}-byte info, this library version {} \
                 with {}",
                info.version,
                info.size,
                PKTRING_VERSION,
                size_of::<PktringInfo>()
            ));
        }
        let geometry = Geometry {
            block_size: info.block_size,
            block_nr: info.block_nr,
            frame_size: info.frame_size,
        };
        let frame_nr = geometry.check()?;
        if frame_nr != info.frame_nr
            || info.mmap_size != u64::from(info.block_size) * u64::from(info.block_nr)
        {
            return Err(format!(
                "{} frames in {} bytes do not match the geometry {geometry:?}",
                info.frame_nr, info.mmap_size
            ));
        }
        let sll_end = u64::from(info.sll_offset) + size_of::<SockaddrLl>() as u64;
        if (info.hdr_len as usize) < size_of::<PktringFrame>()
            || info.sll_offset < info.hdr_len
            || info.sll_offset as usize % align_of::<SockaddrLl>() != 0
            || sll_end > u64::from(info.frame_size)
        {
            return Err(format!(
                "a {}-byte header and a sockaddr_ll at {} do not fit a {}-byte frame",
                info.hdr_len, info.sll_offset, info.frame_size
            ));
        }
        if info.snaplen > PKTRING_MAX_SNAPLEN {
            return Err(format!("snaplen {} is too large", info.snaplen));
        }
        // INVARIANT: checked above; frame offsets are multiples of the block and frame sizes,
        // both multiples of TPACKET_ALIGNMENT, so 4-byte aligned like `sll_offset`.
        Ok(Self {
            info,
            frames_per_block: info.block_size / info.frame_size,
        })
    }

    /// Returns the layout as the module reported it.
    pub fn info(&self) -> &PktringInfo {
        &self.info
    }

    /// Returns the number of frames (slots) in the ring.
    pub fn frame_nr(&self) -> u32 {
        self.info.frame_nr
    }

    /// Returns the size of the mapping in bytes.
    pub fn mmap_size(&self) -> usize {
        // Cannot truncate: at most PKTRING_MAX_RING_BYTES.
        self.info.mmap_size as usize
    }

    /// Returns the byte offset of the frame in `slot`, as af_packet lays frames out in blocks.
    ///
    /// # Panics
    ///
    /// If `slot` is not below [`frame_nr`](Self::frame_nr).
    pub fn frame_offset(&self, slot: u32) -> usize {
        assert!(slot < self.info.frame_nr, "slot {slot} is not in the ring");
        (slot / self.frames_per_block) as usize * self.info.block_size as usize
            + (slot % self.frames_per_block) as usize * self.info.frame_size as usize
    }

    /// Returns the slot after `slot` in ring order.
    pub fn next_slot(&self, slot: u32) -> u32 {
        if slot + 1 == self.info.frame_nr {
            0
        } else {
            slot + 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(block_size: u32, block_nr: u32, frame_size: u32) -> Geometry {
        Geometry {
            block_size,
            block_nr,
            frame_size,
        }
    }

    #[test]
    fn geometry_checks_match_the_module() {
        assert_eq!(Geometry::default().frame_nr().unwrap(), 512);
        assert_eq!(geometry(4096, 3, 1536).frame_nr().unwrap(), 6);
        assert_eq!(geometry(4096, 1, 64).frame_nr().unwrap(), 64);
        for (bad, why) in [
            (geometry(0, 1, 2048), "multiple of the page size"),
            (geometry(5000, 1, 2048), "multiple of the page size"),
            (geometry(4096, 1, 48), "at least 52"),
            (geometry(4096, 1, 100), "multiple of 16"),
            (geometry(4096, 1, 8192), "larger than the block size"),
            (geometry(4096, 0, 2048), "at least one block"),
            (geometry(1 << 20, 257, 2048), "PKTRING_MAX_RING_BYTES"),
        ] {
            let err = bad.frame_nr().unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn frame_offsets_follow_blocks() {
        let layout = Layout::expected(geometry(4096, 2, 1536), 0).unwrap();
        let offsets: Vec<_> = (0..4).map(|slot| layout.frame_offset(slot)).collect();
        assert_eq!(offsets, [0, 1536, 4096, 4096 + 1536]);
        assert_eq!(layout.next_slot(3), 0);
        // The most a 1536-byte frame holds.
        assert_eq!(layout.info().snaplen, 1536 - TPACKET2_HDRLEN);
        assert_eq!(layout.info().sll_offset, 32);
    }

    #[test]
    fn layouts_that_would_read_out_of_bounds_are_refused() {
        let good = *Layout::expected(geometry(4096, 2, 2048), 0).unwrap().info();
        for bad in [
            PktringInfo { version: 2, ..good },
            PktringInfo {
                frame_nr: 5,
                ..good
            },
            PktringInfo {
                mmap_size: 1 << 20,
                ..good
            },
            PktringInfo {
                sll_offset: 2040,
                ..good
            },
            PktringInfo {
                sll_offset: 34,
                ..good
            },
            PktringInfo {
                hdr_len: 16,
                ..good
            },
        ] {
            assert!(
                matches!(Layout::from_info(bad), Err(Error::Layout(_))),
                "{bad:?}"
            );
        }
    }
}
