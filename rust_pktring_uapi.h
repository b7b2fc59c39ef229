/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rust_pktring: an mmap-able packet RX ring on a misc device (/dev/pktring).
 *
 * Each open file descriptor is one ring. PKTRING_IOC_SET_RING sets it up and
 * starts capturing; mmap(2) of exactly info.mmap_size bytes at offset 0 maps
 * it. The ring is frame_nr frames of frame_size bytes, block_size / frame_size
 * frames in each of block_nr blocks, exactly as af_packet's TPACKET_V2
 * PACKET_RX_RING lays them out:
 *
 *	frame i is at (i / frames_per_block) * block_size
 *		   + (i % frames_per_block) * frame_size
 *
 * A frame starts with struct pktring_frame (layout-compatible with struct
 * tpacket2_hdr), then a struct sockaddr_ll at info.sll_offset, then the packet
 * from its link-layer header at tp_mac (its network header at tp_net).
 *
 * Where a frame starts (tp_mac): at the packet's link-layer header when it has
 * one in front of its network header (Ethernet; loopback's all-zero Ethernet
 * header), as af_packet's SOCK_RAW; at the network header otherwise, and
 * always at the egress inet hooks (LOCAL_OUT, POST_ROUTING), where a packet
 * sent by this host has no link-layer header yet (tp_mac == tp_net). A
 * capture filter (PKTRING_IOC_SET_FILTER) sees the packet from the same byte:
 * compile it for DLT_EN10MB on Ethernet and loopback devices, for DLT_RAW at
 * the egress inet hooks and on devices without a link-layer header.
 *
 * Who may capture what, as for an af_packet socket: a ring captures in the
 * network namespace of the process that opened the file (its hooks are
 * registered there, an ingress ifindex is a device of that namespace), and
 * setting it up needs CAP_NET_RAW in the user namespace that owns that
 * network namespace. PKTRING_IOC_SET_RING checks that against the
 * credentials the file was opened with (file_ns_capable()), so a file opened
 * by a privileged process and passed over a UNIX socket keeps working, and
 * one opened without the capability fails with EPERM, whoever calls. A file
 * opened O_RDONLY may set a ring up and map it read-only (MAP_SHARED,
 * PROT_READ); it cannot hand frames back, so once the ring is full every
 * packet is a drop. Private mappings are refused.
 *
 * Ownership is carried by tp_status alone: TP_STATUS_KERNEL (0) means the
 * kernel may fill the frame; any non-zero value has TP_STATUS_USER set and
 * means the frame is complete and belongs to user space, which hands it back
 * by storing TP_STATUS_KERNEL (with release semantics) when done. Frames are
 * claimed in ring order but may be filled out of order by several CPUs.
 *
 * Readiness: the release frontier is the oldest frame the kernel is still
 * filling, or the next frame it will fill when none is. A consumer that has
 * read everything waits there. poll(2) reports POLLIN | POLLRDNORM while the
 * frame before the frontier belongs to user space (the consumer has not read
 * up to the frontier), and the kernel wakes pollers only when the frontier
 * moves: a frame finished while an older one is still being filled wakes
 * nobody, since the consumer must wait for the older one first. With
 * batching (wake_frames > 1), the frontier is announced to pollers, and
 * poll(2) judges by the announced frontier, only once wake_frames frames are
 * ready or wake_usecs after the first frame that was not announced: a
 * consumer that drains the ring and polls again sleeps until the next batch.
 * A consumer that reads frames by tp_status alone sees them as soon as they
 * are released either way.
 */
#ifndef _UAPI_RUST_PKTRING_H
#define _UAPI_RUST_PKTRING_H

#include <linux/filter.h>
#include <linux/ioctl.h>
#include <linux/if_packet.h>
#include <linux/types.h>

#define PKTRING_VERSION		1

/* Capture selection: which protocol family and which hook. */
#define PKTRING_FAMILY_IPV4	1
#define PKTRING_FAMILY_IPV6	2
#define PKTRING_FAMILY_BOTH	3

#define PKTRING_HOOK_PRE_ROUTING 0	/* NF_INET_PRE_ROUTING */
#define PKTRING_HOOK_LOCAL_IN	1	/* NF_INET_LOCAL_IN */
#define PKTRING_HOOK_INGRESS	2	/* NF_NETDEV_INGRESS; needs an ifindex */
#define PKTRING_HOOK_LOCAL_OUT	3	/* NF_INET_LOCAL_OUT: sent by this host */
#define PKTRING_HOOK_POST_ROUTING 4	/* NF_INET_POST_ROUTING: sent or forwarded */
#define PKTRING_HOOK_EGRESS	5	/* NF_NETDEV_EGRESS; needs an ifindex */

/* pktring_req.ethertype of a device hook that captures every packet. */
#define PKTRING_ETH_P_ALL	0x0003	/* ETH_P_ALL */

/* Limits the module enforces on a ring request. */
#define PKTRING_MAX_SNAPLEN	262144
#define PKTRING_MAX_RING_BYTES	(256u << 20)
#define PKTRING_MAX_WAKE_USECS	1000000

/**
 * struct pktring_req - ring request for PKTRING_IOC_SET_RING
 * @size:	sizeof(struct pktring_req) as the caller was built with
 * @version:	PKTRING_VERSION
 * @block_size:	bytes per block: a multiple of the page size
 * @block_nr:	number of blocks
 * @frame_size:	bytes per frame: TPACKET_ALIGNMENT-aligned, at least
 *		TPACKET2_HDRLEN, at most @block_size
 * @frame_nr:	number of frames: exactly (block_size / frame_size) * block_nr
 * @snaplen:	most bytes of a packet to copy (0: as many as fit in a frame)
 * @family:	PKTRING_FAMILY_*, or 0 with a non-zero @ethertype
 * @hook:	PKTRING_HOOK_*
 * @ifindex:	the device of a device hook (INGRESS, EGRESS); for the inet
 *		hooks, capture only packets that arrive on (PRE_ROUTING,
 *		LOCAL_IN) or leave through (LOCAL_OUT, POST_ROUTING) this
 *		device (0: any)
 * @priority:	netfilter hook priority
 * @wake_frames: batched wake-ups: wake poll(2) once this many frames are
 *		ready, or @wake_usecs after the first frame it was not woken for,
 *		whichever comes first (0 or 1: no batching, see below)
 * @wake_usecs:	with @wake_frames > 1: 1 to PKTRING_MAX_WAKE_USECS; else 0
 * @ethertype:	device hooks only (0 for the inet hooks): 0 to capture the IP
 *		versions @family selects; PKTRING_ETH_P_ALL to capture every
 *		packet; any other value to capture only packets of that
 *		EtherType (host byte order: 0x0806 for ARP, 0x88cc for LLDP),
 *		with @family 0. A VLAN tag the device or the stack took out of
 *		the packet is in tp_vlan_tci, and the EtherType is the inner one.
 * @reserved:	must be zero
 *
 * sll_pkttype is PACKET_OUTGOING at the egress hooks (LOCAL_OUT,
 * POST_ROUTING, EGRESS), and as af_packet reports it elsewhere.
 */
struct pktring_req {
	__u32 size;
	__u32 version;
	__u32 block_size;
	__u32 block_nr;
	__u32 frame_size;
	__u32 frame_nr;
	__u32 snaplen;
	__u16 family;
	__u16 hook;
	__s32 ifindex;
	__s32 priority;
	__u32 wake_frames;
	__u32 wake_usecs;
	__u32 ethertype;
	__u32 reserved;
};

/**
 * struct pktring_info - the mapped layout, from PKTRING_IOC_GET_INFO
 * @size:	sizeof(struct pktring_info) as the module was built with
 * @version:	PKTRING_VERSION
 * @mmap_size:	bytes to map: block_size * block_nr
 * @block_size:	as requested
 * @block_nr:	as requested
 * @frame_size:	as requested
 * @frame_nr:	as requested
 * @hdr_len:	sizeof(struct pktring_frame)
 * @sll_offset:	offset of the struct sockaddr_ll in a frame
 * @snaplen:	the effective snaplen: the requested one (0: PKTRING_MAX_SNAPLEN),
 *		at most what a frame can hold (frame_size - TPACKET2_HDRLEN)
 * @error:	0 while the ring captures. Once capture has ended for good, the
 *		reason: ENETDOWN when the device of a PKTRING_HOOK_INGRESS ring
 *		was deleted or moved to another network namespace, ENONET when
 *		the network namespace the ring captures in was dismantled. From
 *		then on poll(2) reports POLLERR (with POLLIN while frames are
 *		left to read); the frames already in the ring stay readable.
 * @reserved:	zero
 */
struct pktring_info {
	__u32 size;
	__u32 version;
	__aligned_u64 mmap_size;
	__u32 block_size;
	__u32 block_nr;
	__u32 frame_size;
	__u32 frame_nr;
	__u32 hdr_len;
	__u32 sll_offset;
	__u32 snaplen;
	__u32 error;
	__u32 reserved[4];
};

/**
 * struct pktring_stats - counters since the last read, from
 *			  PKTRING_IOC_GET_STATS (which clears them)
 * @packets:	packets the ring's selection took: delivered, dropped or
 *		filtered (af_packet's tp_packets, plus the filtered ones)
 * @drops:	packets dropped because the next frame was not free
 * @filtered:	packets the capture filter rejected: they took no frame and
 *		were not copied, and are not drops
 */
struct pktring_stats {
	__aligned_u64 packets;
	__aligned_u64 drops;
	__aligned_u64 filtered;
};

/**
 * struct pktring_frame - frame header, layout-compatible with tpacket2_hdr
 *
 * The fields up to @tp_vlan_tpid are those of struct tpacket2_hdr; @cpu and
 * @rx_queue use its four bytes of padding. @rx_queue is 0xffff when the
 * device recorded none.
 */
struct pktring_frame {
	__u32 tp_status;
	__u32 tp_len;
	__u32 tp_snaplen;
	__u16 tp_mac;
	__u16 tp_net;
	__u32 tp_sec;
	__u32 tp_nsec;
	__u16 tp_vlan_tci;
	__u16 tp_vlan_tpid;
	__u16 cpu;
	__u16 rx_queue;
};

#define PKTRING_NO_RX_QUEUE	0xffff

#define PKTRING_IOC_MAGIC	0xB9
#define PKTRING_IOC_SET_RING	_IOW(PKTRING_IOC_MAGIC, 1, struct pktring_req)
#define PKTRING_IOC_GET_INFO	_IOR(PKTRING_IOC_MAGIC, 2, struct pktring_info)
#define PKTRING_IOC_GET_STATS	_IOR(PKTRING_IOC_MAGIC, 3, struct pktring_stats)

/*
 * The capture filter: a classic BPF program, as SO_ATTACH_FILTER takes it and
 * checked by the same checker of the kernel's. It runs on every packet the
 * ring's selection takes, before a frame is taken, from the byte the frame
 * would start at (see "Where a frame starts" above); SKF_AD_* loads work as in
 * a socket filter. Its return value is the most bytes to capture: 0 rejects
 * the packet (counted in filtered: no frame taken, nothing copied), a value
 * below the snaplen shortens the capture. It may be set before or after
 * PKTRING_IOC_SET_RING, replaced, or removed with PKTRING_IOC_DETACH_FILTER
 * (ENOENT if there is none), while capturing: every packet meets either the old
 * program or the new one. EINVAL for a program the checker refuses (no
 * instructions, more than BPF_MAXINSNS, a jump out of the program, no return
 * at its end...), EFAULT for a bad pointer, ENOMEM.
 */
#define PKTRING_IOC_SET_FILTER	_IOW(PKTRING_IOC_MAGIC, 4, struct sock_fprog)
#define PKTRING_IOC_DETACH_FILTER _IO(PKTRING_IOC_MAGIC, 5)

/*
 * Fanout: rings as one group, each packet in one of them. Several files join
 * the group @id with PKTRING_IOC_JOIN_FANOUT, each before its
 * PKTRING_IOC_SET_RING, which then makes the new ring a member instead of
 * registering a hook of its own: the group has one hook, registered with its
 * first member and removed with its last, which picks one member for every
 * packet the members' selection takes. A group lives in the network namespace
 * of its first member's opener, and its id is that namespace's: the same id in
 * another namespace is another group. Every member's request must select
 * what the first one's did (hook, family, ethertype, ifindex, priority) and
 * join with the same mode and flags: EINVAL at PKTRING_IOC_SET_RING
 * otherwise. The geometry and batching are each member's own. A ring leaves
 * its group when its file is released, or before with
 * PKTRING_IOC_LEAVE_FANOUT: from its return on no packet goes to the ring,
 * whose frames stay readable, so that a consumer can drain it and lose
 * nothing (a ring that left captures nothing more). Packets go to the members
 * that are left, and none is lost or doubled while members come and go.
 *
 * Modes: the producing CPU (its number modulo the members), a symmetric flow
 * hash (both directions of a flow go to the same member), the device's RX
 * queue, or round robin. Members are numbered in the order they joined;
 * one that leaves makes the later ones move down by one. The member picked
 * runs its capture filter on the packet: members are expected to share one
 * filter. With PKTRING_FANOUT_FLAG_ROLLOVER a packet that finds no free frame
 * in the member picked goes to the next member with one (in member order,
 * wrapping round), counted in that member's rollover; it is dropped only when
 * no member had a free frame, and the drop is counted by the member picked,
 * whose next frames carry TP_STATUS_LOSING as a ring's do after a drop.
 *
 * Errors of PKTRING_IOC_JOIN_FANOUT: EINVAL for an unknown mode or flag, or
 * non-zero @members, @reserved or @rollover; EALREADY for a file that joined
 * already; EBUSY once the ring is set up. Of PKTRING_IOC_SET_RING, in addition
 * to a lone ring's: EINVAL for a member that does not match its group, ENOSPC
 * once a group has PKTRING_FANOUT_MAX_MEMBERS, ENODEV (ENONET) for a group
 * whose hook was taken down with its device (namespace).
 */
#define PKTRING_FANOUT_CPU	0	/* the producing CPU */
#define PKTRING_FANOUT_HASH	1	/* symmetric flow hash */
#define PKTRING_FANOUT_QUEUE	2	/* the RX queue */
#define PKTRING_FANOUT_LB	3	/* round robin */

#define PKTRING_FANOUT_FLAG_ROLLOVER	0x1

#define PKTRING_FANOUT_MAX_MEMBERS	256

/**
 * struct pktring_fanout - a fanout group, for PKTRING_IOC_JOIN_FANOUT (which
 *			   reads @id, @mode and @flags) and PKTRING_IOC_GET_FANOUT
 * @id:		the group's id in the network namespace
 * @mode:	PKTRING_FANOUT_*
 * @flags:	PKTRING_FANOUT_FLAG_*
 * @members:	GET_FANOUT: the group's members now (0 before set-up, and once
 *		the ring has left)
 * @reserved:	zero
 * @rollover:	GET_FANOUT: packets this ring took for another member that
 *		had no free frame, since it was set up (not cleared)
 */
struct pktring_fanout {
	__u32 id;
	__u16 mode;
	__u16 flags;
	__u32 members;
	__u32 reserved;
	__aligned_u64 rollover;
};

/*
 * PKTRING_IOC_GET_FANOUT: ENOENT for a file that did not join a group.
 * PKTRING_IOC_LEAVE_FANOUT: ENOENT for a ring that is not a member (a lone
 * ring, or one that left); before PKTRING_IOC_SET_RING it undoes the join.
 */
#define PKTRING_IOC_JOIN_FANOUT	_IOW(PKTRING_IOC_MAGIC, 6, struct pktring_fanout)
#define PKTRING_IOC_GET_FANOUT	_IOR(PKTRING_IOC_MAGIC, 7, struct pktring_fanout)
#define PKTRING_IOC_LEAVE_FANOUT _IO(PKTRING_IOC_MAGIC, 8)

#ifndef __cplusplus
_Static_assert(sizeof(struct pktring_req) == 56, "pktring_req layout");
_Static_assert(sizeof(struct pktring_info) == 64, "pktring_info layout");
_Static_assert(sizeof(struct pktring_stats) == 24, "pktring_stats layout");
_Static_assert(sizeof(struct pktring_fanout) == 24, "pktring_fanout layout");
_Static_assert(sizeof(struct pktring_frame) == sizeof(struct tpacket2_hdr),
	       "pktring_frame must match tpacket2_hdr");
#endif

#endif /* _UAPI_RUST_PKTRING_H */
