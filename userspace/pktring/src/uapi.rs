//! Mirrors of `rust_pktring_uapi.h`: its structures, constants and ioctl numbers.
//!
//! Field names are the C names, so that the header and this file read alike; `tests/uapi.rs`
//! compiles a C program against the header and checks every size, offset and constant here.

use rustix::ioctl::{opcode, Opcode};

/// `PKTRING_VERSION`: the ABI version a request and the info carry.
pub const PKTRING_VERSION: u32 = 1;

/// `PKTRING_FAMILY_IPV4`.
pub const PKTRING_FAMILY_IPV4: u16 = 1;
/// `PKTRING_FAMILY_IPV6`.
pub const PKTRING_FAMILY_IPV6: u16 = 2;
/// `PKTRING_FAMILY_BOTH`.
pub const PKTRING_FAMILY_BOTH: u16 = 3;

/// `PKTRING_HOOK_PRE_ROUTING`: `NF_INET_PRE_ROUTING`.
pub const PKTRING_HOOK_PRE_ROUTING: u16 = 0;
/// `PKTRING_HOOK_LOCAL_IN`: `NF_INET_LOCAL_IN`.
pub const PKTRING_HOOK_LOCAL_IN: u16 = 1;
/// `PKTRING_HOOK_INGRESS`: `NF_NETDEV_INGRESS`; needs an ifindex.
pub const PKTRING_HOOK_INGRESS: u16 = 2;
/// `PKTRING_HOOK_LOCAL_OUT`: `NF_INET_LOCAL_OUT`, packets sent by this host.
pub const PKTRING_HOOK_LOCAL_OUT: u16 = 3;
/// `PKTRING_HOOK_POST_ROUTING`: `NF_INET_POST_ROUTING`, packets sent or forwarded.
pub const PKTRING_HOOK_POST_ROUTING: u16 = 4;
/// `PKTRING_HOOK_EGRESS`: `NF_NETDEV_EGRESS`; needs an ifindex.
pub const PKTRING_HOOK_EGRESS: u16 = 5;

/// `PKTRING_ETH_P_ALL`: the `ethertype` of a device hook that captures every packet.
pub const PKTRING_ETH_P_ALL: u32 = 0x0003;

/// `PACKET_OUTGOING`: the `sll_pkttype` of a packet captured at an egress hook.
pub const PACKET_OUTGOING: u8 = 4;
/// `BPF_MAXINSNS`: the most instructions a capture filter may have.
pub const BPF_MAXINSNS: usize = 4096;

/// `PKTRING_MAX_SNAPLEN`: the largest snaplen a request may ask for, and the effective snaplen
/// of a request for 0.
pub const PKTRING_MAX_SNAPLEN: u32 = 262_144;
/// `PKTRING_MAX_RING_BYTES`: the largest ring the module allocates.
pub const PKTRING_MAX_RING_BYTES: u64 = 256 << 20;
/// `PKTRING_MAX_WAKE_USECS`: the longest batch timer a request may ask for.
pub const PKTRING_MAX_WAKE_USECS: u32 = 1_000_000;
/// `PKTRING_NO_RX_QUEUE`: the `rx_queue` of a packet whose device recorded none.
pub const PKTRING_NO_RX_QUEUE: u16 = 0xffff;

/// `TP_STATUS_KERNEL`: the frame belongs to the kernel.
pub const TP_STATUS_KERNEL: u32 = 0;
/// `TP_STATUS_USER`: the frame is complete and belongs to user space.
pub const TP_STATUS_USER: u32 = 1 << 0;
/// `TP_STATUS_LOSING`: packets were dropped since the stats were last read.
pub const TP_STATUS_LOSING: u32 = 1 << 2;
/// `TP_STATUS_CSUMNOTREADY`: the checksum is still to be computed (a local packet).
pub const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
/// `TP_STATUS_VLAN_VALID`: `tp_vlan_tci` is valid.
pub const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `TP_STATUS_VLAN_TPID_VALID`: `tp_vlan_tpid` is valid.
pub const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// `TP_STATUS_CSUM_VALID`: the device validated the checksum.
pub const TP_STATUS_CSUM_VALID: u32 = 1 << 7;
/// `TP_STATUS_GSO_TCP`: a GSO TCP packet.
pub const TP_STATUS_GSO_TCP: u32 = 1 << 8;

/// `TPACKET_ALIGNMENT`: frames, and the data in them, are aligned to it.
pub const TPACKET_ALIGNMENT: u32 = 16;
/// `TPACKET2_HDRLEN`: the frame header and the `sockaddr_ll`, the least a frame must hold.
pub const TPACKET2_HDRLEN: u32 =
    tpacket_align(size_of::<PktringFrame>() as u32) + size_of::<SockaddrLl>() as u32;

/// `TPACKET_ALIGN()`.
pub const fn tpacket_align(len: u32) -> u32 {
    (len + TPACKET_ALIGNMENT - 1) & !(TPACKET_ALIGNMENT - 1)
}

/// `struct pktring_req`: the ring request of [`PKTRING_IOC_SET_RING`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PktringReq {
    /// `sizeof(struct pktring_req)`.
    pub size: u32,
    /// [`PKTRING_VERSION`].
    pub version: u32,
    /// Bytes per block: a multiple of the page size.
    pub block_size: u32,
    /// Number of blocks.
    pub block_nr: u32,
    /// Bytes per frame: `TPACKET_ALIGNMENT`-aligned, at least `TPACKET2_HDRLEN`, at most
    /// `block_size`.
    pub frame_size: u32,
    /// Number of frames: exactly `(block_size / frame_size) * block_nr`.
    pub frame_nr: u32,
    /// Most bytes of a packet to copy (0: as many as fit in a frame).
    pub snaplen: u32,
    /// `PKTRING_FAMILY_*`, or 0 with a non-zero `ethertype`.
    pub family: u16,
    /// `PKTRING_HOOK_*`.
    pub hook: u16,
    /// The device of a device hook (`INGRESS`, `EGRESS`); for the inet hooks, capture only
    /// packets that arrive on (`PRE_ROUTING`, `LOCAL_IN`) or leave through (`LOCAL_OUT`,
    /// `POST_ROUTING`) this device (0: any).
    pub ifindex: i32,
    /// Netfilter hook priority.
    pub priority: i32,
    /// Batched wake-ups: wake `poll()` once this many frames are ready (0 or 1: at each one).
    pub wake_frames: u32,
    /// ... or this many microseconds after the first frame it was not woken for.
    pub wake_usecs: u32,
    /// Device hooks only (0 for the inet hooks): 0 to capture the IP versions `family`
    /// selects, [`PKTRING_ETH_P_ALL`] every packet, any other value only packets of that
    /// EtherType (host byte order), with `family` 0.
    pub ethertype: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// `struct pktring_info`: the mapped layout, from [`PKTRING_IOC_GET_INFO`].
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PktringInfo {
    /// `sizeof(struct pktring_info)` as the module was built with.
    pub size: u32,
    /// [`PKTRING_VERSION`].
    pub version: u32,
    /// Bytes to map: `block_size * block_nr`.
    pub mmap_size: u64,
    /// As requested.
    pub block_size: u32,
    /// As requested.
    pub block_nr: u32,
    /// As requested.
    pub frame_size: u32,
    /// As requested.
    pub frame_nr: u32,
    /// `sizeof(struct pktring_frame)`.
    pub hdr_len: u32,
    /// Offset of the `struct sockaddr_ll` in a frame.
    pub sll_offset: u32,
    /// The effective snaplen.
    pub snaplen: u32,
    /// 0 while the ring captures; once capture has ended, why: `ENETDOWN` (the ingress device
    /// went away) or `ENONET` (the network namespace was dismantled).
    pub error: u32,
    /// Zero.
    pub reserved: [u32; 4],
}

/// `struct pktring_stats`: counters since the last read, from [`PKTRING_IOC_GET_STATS`].
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PktringStats {
    /// Packets the ring's selection took: delivered, dropped or filtered (af_packet's
    /// `tp_packets`, plus the filtered ones).
    pub packets: u64,
    /// Packets dropped because the next frame was not free.
    pub drops: u64,
    /// Packets the capture filter rejected: they took no frame, and are not drops.
    pub filtered: u64,
}

/// `struct sock_filter` of `<linux/filter.h>`: one classic BPF instruction (libpcap's
/// `struct bpf_insn` has the same layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// The opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// The generic field.
    pub k: u32,
}

/// `struct sock_fprog` of `<linux/filter.h>`: a program, as [`PKTRING_IOC_SET_FILTER`] takes it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SockFprog {
    /// Number of instructions.
    pub len: u16,
    /// The instructions.
    pub filter: *const SockFilter,
}

/// `struct pktring_frame`: the frame header, layout-compatible with `struct tpacket2_hdr`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PktringFrame {
    /// `TP_STATUS_KERNEL`, or `TP_STATUS_USER` and flags.
    pub tp_status: u32,
    /// Length of the packet from its MAC header.
    pub tp_len: u32,
    /// Bytes of it captured at `tp_mac`.
    pub tp_snaplen: u32,
    /// Offset of the MAC header in the frame.
    pub tp_mac: u16,
    /// Offset of the network header in the frame.
    pub tp_net: u16,
    /// Receive time, seconds.
    pub tp_sec: u32,
    /// Receive time, nanoseconds.
    pub tp_nsec: u32,
    /// VLAN TCI, with `TP_STATUS_VLAN_VALID`.
    pub tp_vlan_tci: u16,
    /// VLAN TPID, with `TP_STATUS_VLAN_TPID_VALID`.
    pub tp_vlan_tpid: u16,
    /// CPU the hook ran on.
    pub cpu: u16,
    /// RX queue the packet arrived on, or [`PKTRING_NO_RX_QUEUE`].
    pub rx_queue: u16,
}

/// `struct sockaddr_ll`, as the module writes it at `sll_offset` in a frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockaddrLl {
    /// `AF_PACKET`.
    pub sll_family: u16,
    /// EtherType, in network byte order.
    pub sll_protocol: u16,
    /// Index of the device the packet arrived on.
    pub sll_ifindex: i32,
    /// `ARPHRD_*` type of the device.
    pub sll_hatype: u16,
    /// `PACKET_*` type of the packet.
    pub sll_pkttype: u8,
    /// Length of the link-layer address in `sll_addr`.
    pub sll_halen: u8,
    /// Link-layer source address.
    pub sll_addr: [u8; 8],
}

/// `PKTRING_FANOUT_CPU`: a fanout group picks a packet's member by the producing CPU (its
/// number modulo the members).
pub const PKTRING_FANOUT_CPU: u16 = 0;
/// `PKTRING_FANOUT_HASH`: by a symmetric flow hash (both directions of a flow go to the same
/// member).
pub const PKTRING_FANOUT_HASH: u16 = 1;
/// `PKTRING_FANOUT_QUEUE`: by the device's RX queue.
pub const PKTRING_FANOUT_QUEUE: u16 = 2;
/// `PKTRING_FANOUT_LB`: round robin.
pub const PKTRING_FANOUT_LB: u16 = 3;
/// `PKTRING_FANOUT_FLAG_ROLLOVER`: a packet that finds no free frame in the member picked goes
/// to the next member with one.
pub const PKTRING_FANOUT_FLAG_ROLLOVER: u16 = 0x1;
/// `PKTRING_FANOUT_MAX_MEMBERS`: the most members a group has.
pub const PKTRING_FANOUT_MAX_MEMBERS: u32 = 256;

/// `struct pktring_fanout`: a fanout group, for [`PKTRING_IOC_JOIN_FANOUT`] (which reads `id`,
/// `mode` and `flags`) and [`PKTRING_IOC_GET_FANOUT`].
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PktringFanout {
    /// The group's id in the network namespace.
    pub id: u32,
    /// `PKTRING_FANOUT_*`.
    pub mode: u16,
    /// `PKTRING_FANOUT_FLAG_*`.
    pub flags: u16,
    /// GET_FANOUT: the group's members now (0 before set-up, and once the ring has left).
    /// Zero for JOIN_FANOUT.
    pub members: u32,
    /// Zero.
    pub reserved: u32,
    /// GET_FANOUT: packets this ring took for another member that had no free frame, since it
    /// was set up (not cleared). Zero for JOIN_FANOUT.
    pub rollover: u64,
}

/// `PKTRING_IOC_MAGIC`.
pub const PKTRING_IOC_MAGIC: u8 = 0xb9;
/// `PKTRING_IOC_SET_RING`: `_IOW(PKTRING_IOC_MAGIC, 1, struct pktring_req)`.
pub const PKTRING_IOC_SET_RING: Opcode = opcode::write::<PktringReq>(PKTRING_IOC_MAGIC, 1);
/// `PKTRING_IOC_GET_INFO`: `_IOR(PKTRING_IOC_MAGIC, 2, struct pktring_info)`.
pub const PKTRING_IOC_GET_INFO: Opcode = opcode::read::<PktringInfo>(PKTRING_IOC_MAGIC, 2);
/// `PKTRING_IOC_GET_STATS`: `_IOR(PKTRING_IOC_MAGIC, 3, struct pktring_stats)`.
pub const PKTRING_IOC_GET_STATS: Opcode = opcode::read::<PktringStats>(PKTRING_IOC_MAGIC, 3);
/// `PKTRING_IOC_SET_FILTER`: `_IOW(PKTRING_IOC_MAGIC, 4, struct sock_fprog)`.
pub const PKTRING_IOC_SET_FILTER: Opcode = opcode::write::<SockFprog>(PKTRING_IOC_MAGIC, 4);
/// `PKTRING_IOC_DETACH_FILTER`: `_IO(PKTRING_IOC_MAGIC, 5)`.
pub const PKTRING_IOC_DETACH_FILTER: Opcode = opcode::none(PKTRING_IOC_MAGIC, 5);
/// `PKTRING_IOC_JOIN_FANOUT`: `_IOW(PKTRING_IOC_MAGIC, 6, struct pktring_fanout)`; before
/// [`PKTRING_IOC_SET_RING`].
pub const PKTRING_IOC_JOIN_FANOUT: Opcode = opcode::write::<PktringFanout>(PKTRING_IOC_MAGIC, 6);
/// `PKTRING_IOC_GET_FANOUT`: `_IOR(PKTRING_IOC_MAGIC, 7, struct pktring_fanout)`.
pub const PKTRING_IOC_GET_FANOUT: Opcode = opcode::read::<PktringFanout>(PKTRING_IOC_MAGIC, 7);
/// `PKTRING_IOC_LEAVE_FANOUT`: `_IO(PKTRING_IOC_MAGIC, 8)`.
pub const PKTRING_IOC_LEAVE_FANOUT: Opcode = opcode::none(PKTRING_IOC_MAGIC, 8);
