// SPDX-License-Identifier: GPL-2.0

//! The user-space ABI of `rust_pktring_uapi.h`: ioctl numbers, and the request, info and stats
//! structures, read and written field by field in the header's layout.

use core::num::NonZeroUsize;
use kernel::ioctl::{_IOR, _IOW};
use kernel::net::netfilter::{Family, HookOptions, HookPoint};
use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::uaccess::{UserPtr, UserSlice};

use crate::ring::{self, Filter, Layout, Stats};

/// `PKTRING_VERSION`.
pub(crate) const PKTRING_VERSION: u32 = 1;
/// `PKTRING_NO_RX_QUEUE`.
pub(crate) const PKTRING_NO_RX_QUEUE: u16 = 0xffff;
/// `PKTRING_MAX_SNAPLEN`.
const PKTRING_MAX_SNAPLEN: u32 = 262144;
/// `PKTRING_MAX_RING_BYTES`: the most memory one ring may pin.
const PKTRING_MAX_RING_BYTES: u64 = 256 << 20;

const PKTRING_FAMILY_IPV4: u16 = 1;
const PKTRING_FAMILY_IPV6: u16 = 2;
const PKTRING_FAMILY_BOTH: u16 = 3;

const PKTRING_HOOK_PRE_ROUTING: u16 = 0;
const PKTRING_HOOK_LOCAL_IN: u16 = 1;
const PKTRING_HOOK_INGRESS: u16 = 2;

/// EtherTypes the capture filter selects, in host byte order.
pub(crate) const ETH_P_IP: u16 = 0x0800;
pub(crate) const ETH_P_IPV6: u16 = 0x86dd;

/// `sizeof(struct pktring_req)`, `sizeof(struct pktring_info)`, `sizeof(struct pktring_stats)`.
const REQ_SIZE: usize = 56;
const INFO_SIZE: usize = 64;
const STATS_SIZE: usize = 16;

const PKTRING_IOC_MAGIC: u32 = 0xb9;
pub(crate) const PKTRING_IOC_SET_RING: u32 = _IOW::<[u8; REQ_SIZE]>(PKTRING_IOC_MAGIC, 1);
pub(crate) const PKTRING_IOC_GET_INFO: u32 = _IOR::<[u8; INFO_SIZE]>(PKTRING_IOC_MAGIC, 2);
pub(crate) const PKTRING_IOC_GET_STATS: u32 = _IOR::<[u8; STATS_SIZE]>(PKTRING_IOC_MAGIC, 3);

/// A `struct pktring_req` that passed every check of [`RingRequest::from_user`].
///
/// # Invariants
///
/// The checks of `from_user` hold: see there.
pub(crate) struct RingRequest {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    frames_per_block: NonZeroUsize,
    snaplen: u32,
    family: u16,
    hook: u16,
    ifindex: i32,
    priority: i32,
}

impl RingRequest {
    /// Reads a `struct pktring_req` from user space and checks it.
    ///
    /// `EFAULT` if it cannot be read. `EINVAL` unless: `size` and `version` are this header's,
    /// reserved fields are zero; the geometry passes af_packet's `packet_set_ring()` checks
    /// (block size positive and page-aligned, frame size at least `TPACKET2_HDRLEN` and
    /// `TPACKET_ALIGNMENT`-aligned, at least one frame per block, frames per block times blocks
    /// not overflowing and equal to the frame count); the ring is at most
    /// `PKTRING_MAX_RING_BYTES`; the snaplen at most `PKTRING_MAX_SNAPLEN`; family and hook are
    /// known, the ifindex not negative, and given (only) where the hook needs it.
    pub(crate) fn from_user(arg: UserPtr) -> Result<Self> {
        let mut reader = UserSlice::new(arg, REQ_SIZE).reader();
        let size = reader.read::<u32>()?;
        let version = reader.read::<u32>()?;
        let req = Self {
            block_size: reader.read::<u32>()?,
            block_nr: reader.read::<u32>()?,
            frame_size: reader.read::<u32>()?,
            frame_nr: reader.read::<u32>()?,
            frames_per_block: NonZeroUsize::MIN,
            snaplen: reader.read::<u32>()?,
            family: reader.read::<u16>()?,
            hook: reader.read::<u16>()?,
            ifindex: reader.read::<i32>()?,
            priority: reader.read::<i32>()?,
        };
        let mut reserved = 0;
        for _ in 0..4 {
            reserved |= reader.read::<u32>()?;
        }
        if size as usize != REQ_SIZE || version != PKTRING_VERSION || reserved != 0 {
            return Err(EINVAL);
        }
        let frames_per_block = req.check_geometry()?;
        req.check_selection()?;
        // INVARIANT: every check passed.
        Ok(Self {
            frames_per_block,
            ..req
        })
    }

    /// The checks of af_packet's `packet_set_ring()`, and our size bound; returns the number of
    /// frames per block.
    fn check_geometry(&self) -> Result<NonZeroUsize> {
        let block_size = self.block_size as usize;
        let frame_size = self.frame_size as usize;
        if self.block_size == 0 || self.block_size > i32::MAX as u32 || block_size % PAGE_SIZE != 0
        {
            return Err(EINVAL);
        }
        if frame_size < ring::TPACKET2_HDRLEN || frame_size % ring::TPACKET_ALIGNMENT != 0 {
            return Err(EINVAL);
        }
        let frames_per_block = block_size / frame_size;
        if frames_per_block == 0 || self.block_nr == 0 {
            return Err(EINVAL);
        }
        match (frames_per_block as u32).checked_mul(self.block_nr) {
            Some(frame_nr) if frame_nr == self.frame_nr => {}
            _ => return Err(EINVAL),
        }
        if u64::from(self.block_size) * u64::from(self.block_nr) > PKTRING_MAX_RING_BYTES {
            return Err(EINVAL);
        }
        if self.snaplen > PKTRING_MAX_SNAPLEN {
            return Err(EINVAL);
        }
        NonZeroUsize::new(frames_per_block).ok_or(EINVAL)
    }

    /// The capture selection: known family and hook, an ifindex where (and only where) needed.
    fn check_selection(&self) -> Result {
        if !matches!(
            self.family,
            PKTRING_FAMILY_IPV4 | PKTRING_FAMILY_IPV6 | PKTRING_FAMILY_BOTH
        ) {
            return Err(EINVAL);
        }
        match self.hook {
            PKTRING_HOOK_PRE_ROUTING | PKTRING_HOOK_LOCAL_IN if self.ifindex >= 0 => Ok(()),
            PKTRING_HOOK_INGRESS if self.ifindex > 0 => Ok(()),
            _ => Err(EINVAL),
        }
    }

    /// Returns the ring layout the request describes.
    pub(crate) fn layout(&self) -> Layout {
        let snaplen = match self.snaplen {
            0 => PKTRING_MAX_SNAPLEN,
            snaplen => snaplen,
        };
        // INVARIANT: `check_geometry` made these consistent, non-zero and bounded.
        Layout {
            block_size: self.block_size as usize,
            block_nr: self.block_nr as usize,
            frame_size: self.frame_size as usize,
            frame_nr: self.frame_nr as usize,
            frames_per_block: self.frames_per_block,
            snaplen: snaplen as usize,
        }
    }

    /// Returns what the hook itself must filter.
    pub(crate) fn filter(&self) -> Filter {
        Filter {
            // A device hook only sees its device already.
            ifindex: if self.hook == PKTRING_HOOK_INGRESS {
                0
            } else {
                self.ifindex
            },
            ipv4: self.family & PKTRING_FAMILY_IPV4 != 0,
            ipv6: self.family & PKTRING_FAMILY_IPV6 != 0,
        }
    }

    /// Returns where the hook is registered.
    pub(crate) fn hook_options(&self) -> HookOptions {
        let (family, point, ifindex) = match (self.hook, self.family) {
            (PKTRING_HOOK_INGRESS, _) => (Family::Netdev, HookPoint::Ingress, self.ifindex),
            (hook, family) => (
                match family {
                    PKTRING_FAMILY_IPV4 => Family::Ipv4,
                    PKTRING_FAMILY_IPV6 => Family::Ipv6,
                    _ => Family::Inet,
                },
                if hook == PKTRING_HOOK_LOCAL_IN {
                    HookPoint::LocalIn
                } else {
                    HookPoint::PreRouting
                },
                0,
            ),
        };
        HookOptions {
            family,
            point,
            priority: self.priority,
            ifindex,
        }
    }
}

/// Writes a `struct pktring_info` describing `layout` to user space.
pub(crate) fn write_info(arg: UserPtr, layout: &Layout) -> Result {
    let mut writer = UserSlice::new(arg, INFO_SIZE).writer();
    writer.write(&(INFO_SIZE as u32))?;
    writer.write(&PKTRING_VERSION)?;
    writer.write(&(layout.mmap_size() as u64))?;
    for field in [
        layout.block_size,
        layout.block_nr,
        layout.frame_size,
        layout.frame_nr,
        ring::FRAME_HDR_LEN,
        ring::SLL_OFFSET,
        layout.snaplen,
    ] {
        writer.write(&(field as u32))?;
    }
    writer.write(&[0u32; 5])
}

/// Writes a `struct pktring_stats` to user space, in af_packet's terms: `packets` counts the
/// dropped packets too.
pub(crate) fn write_stats(arg: UserPtr, stats: &Stats) -> Result {
    let mut writer = UserSlice::new(arg, STATS_SIZE).writer();
    writer.write(&(stats.delivered + stats.drops))?;
    writer.write(&stats.drops)
}
