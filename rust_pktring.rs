// SPDX-License-Identifier: GPL-2.0

//! rust_pktring: an mmap-able packet RX ring, filled by a netfilter hook on every CPU.
//!
//! This is the receive ring of af_packet's `tpacket_rcv()` (TPACKET_V2), on a misc device, with
//! the producer race fixed the way upstream fixed it: a bitmap with one owner bit per slot,
//! claimed by test-and-set under the ring lock, and a release that stores `tp_status` and
//! clears the owner bit together, under the lock again.
//!
//! # The ABI
//!
//! `rust_pktring_uapi.h` defines it. Each open file of `/dev/pktring` is one ring:
//! `PKTRING_IOC_SET_RING` validates the geometry and capture selection, allocates the ring and
//! starts capturing; `mmap()` of exactly `info.mmap_size` bytes at offset 0, shared, not
//! executable, maps it; `poll()` reports `POLLIN | POLLRDNORM` when a frame is ready;
//! `PKTRING_IOC_GET_STATS` returns and clears the counters. The capture stops, and the ring is
//! freed, when the file is released: once it is closed and no longer mapped (a mapping holds a
//! reference to its file).
//!
//! Errors: `EINVAL` for a bad request or mapping, `EBUSY` for a second set-up, `EPERM` for an
//! executable mapping, `ENOTTY` for an unknown ioctl, `EFAULT` for a bad pointer, `ENODEV` for an
//! ingress hook on a missing device, `E2BIG` once netfilter's 1024 hooks of one hook point are
//! taken. An ingress ring whose device is deleted stops capturing; it never holds the device up.
//! An open ring pins the module: `rmmod` fails (the kernel reports `EAGAIN`, "in use").
//!
//! A complete consumer:
//!
//! ```c
//! #include <fcntl.h>
//! #include <poll.h>
//! #include <stdio.h>
//! #include <sys/ioctl.h>
//! #include <sys/mman.h>
//! #include "rust_pktring_uapi.h"
//!
//! int main(void)
//! {
//!     struct pktring_req req = {
//!         .size = sizeof(req), .version = PKTRING_VERSION,
//!         .block_size = 4096, .block_nr = 64, .frame_size = 2048, .frame_nr = 128,
//!         .family = PKTRING_FAMILY_BOTH, .hook = PKTRING_HOOK_PRE_ROUTING,
//!     };
//!     struct pktring_info info;
//!     struct pktring_stats st;
//!     int fd = open("/dev/pktring", O_RDWR);
//!
//!     if (fd < 0 || ioctl(fd, PKTRING_IOC_SET_RING, &req) ||
//!         ioctl(fd, PKTRING_IOC_GET_INFO, &info))
//!         return perror("pktring"), 1;
//!     unsigned char *ring = mmap(NULL, info.mmap_size, PROT_READ | PROT_WRITE,
//!                    MAP_SHARED, fd, 0);
//!     if (ring == MAP_FAILED)
//!         return perror("mmap"), 1;
//!
//!     for (unsigned int i = 0, n = 0; n < 10; i = (i + 1) % info.frame_nr, n++) {
//!         unsigned int fpb = info.block_size / info.frame_size;
//!         struct pktring_frame *f = (void *)(ring + (i / fpb) * info.block_size +
//!                            (i % fpb) * info.frame_size);
//!         struct pollfd pfd = { .fd = fd, .events = POLLIN };
//!
//!         while (!(__atomic_load_n(&f->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
//!             poll(&pfd, 1, -1);
//!         printf("cpu %u queue %u: %u bytes, first byte 0x%02x\n", f->cpu,
//!                f->rx_queue, f->tp_len, ((unsigned char *)f)[f->tp_mac]);
//!         __atomic_store_n(&f->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
//!     }
//!     ioctl(fd, PKTRING_IOC_GET_STATS, &st);
//!     printf("%llu packets, %llu dropped\n", st.packets, st.drops);
//!     return 0;
//! }
//! ```
//!
//! # Slot ownership
//!
//! Every slot of the ring is in one of three states:
//!
//! | state                 | `tp_status`          | owner bit | who may write the frame        |
//! |-----------------------|----------------------|-----------|--------------------------------|
//! | free                  | `TP_STATUS_KERNEL`   | clear     | nobody; a producer may claim it |
//! | claimed by a producer | `TP_STATUS_KERNEL`   | set       | that producer alone, unlocked  |
//! | owned by user space   | `TP_STATUS_USER \| …` | clear    | user space alone               |
//!
//! - *claim* (free -> claimed), under the ring lock: the slot at the head must read
//!   `TP_STATUS_KERNEL` and have its owner bit clear; the producer sets the bit and advances
//!   the head. Otherwise the packet is dropped and counted. The owner bit is what tells a free
//!   slot from one that a slower producer claimed one lap earlier and is still copying into,
//!   without ever publishing a non-zero `tp_status` that user space (libpcap treats any non-zero
//!   status as ready) would take for a finished frame.
//! - *fill*, without the lock: the producer copies the packet and writes the header.
//! - *release* (claimed -> owned by user space), under the ring lock again: `tp_status` is
//!   stored with release ordering and the owner bit cleared, as one step; then pollers are
//!   woken.
//! - *return* (owned by user space -> free): user space stores `TP_STATUS_KERNEL`, with
//!   release ordering, when done with the frame. The kernel never trusts anything else it reads
//!   back from the mapping.
//!
//! # Locks
//!
//! Per open file, in this order: `RingFile::capture` (a mutex, process context only), then the
//! ring lock (`Ring::inner`, a BH-safe spinlock that the hook takes in softirq context on any
//! CPU). User memory is only touched with neither held, and nothing is allocated under the
//! ring lock.

use kernel::c_str;
use kernel::fs::File;
use kernel::miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration};
use kernel::mm::virt::{flags as vm_flags, VmaNew};
use kernel::net::netfilter::Registration;
use kernel::prelude::*;
use kernel::sync::poll::{events, PollTable};
use kernel::sync::{new_mutex, Arc, Mutex};

mod ring;
mod uapi;

use ring::Ring;
use uapi::RingRequest;

module! {
    type: PktRingModule,
    name: "rust_pktring",
    author: "rust_pktring developers",
    description: "mmap-able packet RX ring filled by a netfilter hook",
    license: "GPL",
}

struct PktRingModule {
    _misc: Pin<KBox<MiscDeviceRegistration<RingFile>>>,
}

impl kernel::Module for PktRingModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let opts = MiscDeviceOptions {
            name: c_str!("pktring"),
        };
        let misc = KBox::pin_init(MiscDeviceRegistration::register(opts, module), GFP_KERNEL)?;
        if cfg!(pktring_test_no_owner_map) {
            pr_warn!("TEST BUILD: rx_owner_map disabled, producers WILL corrupt frames\n");
        }
        pr_info!("/dev/pktring ready (minor {})\n", misc.minor());
        Ok(Self { _misc: misc })
    }
}

impl Drop for PktRingModule {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}

/// A ring that is capturing: the hook registration and the ring it fills.
struct Capture {
    /// Declared first so that it is dropped first: unregistering waits for producers in
    /// flight, after which the ring may go.
    _hook: Pin<KBox<Registration<Ring>>>,
    ring: Arc<Ring>,
}

/// The state of one open file of `/dev/pktring`.
#[pin_data]
struct RingFile {
    /// The capture, once `PKTRING_IOC_SET_RING` set it up; it lasts until the file is closed.
    #[pin]
    capture: Mutex<Option<Capture>>,
}

impl RingFile {
    /// Returns the ring, or `EINVAL` if none is set up.
    fn ring(&self) -> Result<Arc<Ring>> {
        match &*self.capture.lock() {
            Some(capture) => Ok(capture.ring.clone()),
            None => Err(EINVAL),
        }
    }

    /// `PKTRING_IOC_SET_RING`: reads and checks the request, then sets the ring up.
    fn set_ring(&self, arg: usize) -> Result {
        // Read user memory before taking the mutex, which `mmap` takes under the mmap lock.
        let req = RingRequest::from_user(arg)?;
        let mut capture = self.capture.lock();
        if capture.is_some() {
            return Err(EBUSY);
        }
        let ring = Ring::new(&req)?;
        let hook = KBox::pin_init(
            Registration::register(req.hook_options(), ring.clone()),
            GFP_KERNEL,
        )?;
        *capture = Some(Capture { _hook: hook, ring });
        Ok(())
    }
}

#[vtable]
impl MiscDevice for RingFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr> {
        KBox::try_pin_init(
            try_pin_init!(Self {
                capture <- new_mutex!(None, "pktring_capture"),
            }),
            GFP_KERNEL,
        )
    }

    fn ioctl(device: Pin<&RingFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::PKTRING_IOC_SET_RING => device.set_ring(arg)?,
            uapi::PKTRING_IOC_GET_INFO => uapi::write_info(arg, device.ring()?.layout())?,
            uapi::PKTRING_IOC_GET_STATS => {
                let stats = device.ring()?.take_stats();
                uapi::write_stats(arg, &stats)?
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    fn mmap(device: Pin<&RingFile>, _file: &File, vma: &VmaNew) -> Result {
        let ring = device.ring()?;
        if vma.flags() & vm_flags::SHARED == 0 {
            // A private mapping would copy on write: frames could never be handed back.
            return Err(EINVAL);
        }
        vma.try_clear_mayexec()?;
        vma.set_dontcopy();
        ring.buffer().map(vma)
    }

    fn poll(device: Pin<&RingFile>, file: &File, table: &PollTable<'_>) -> Result<u32> {
        let Ok(ring) = device.ring() else {
            return Ok(0);
        };
        table.register_wait(file, ring.readers());
        Ok(if ring.readable() {
            events::IN | events::RDNORM
        } else {
            0
        })
    }
}
