// SPDX-License-Identifier: GPL-2.0
/*
 * The layout of rust_pktring_uapi.h's structures as the C compiler sees it.
 *
 * Compiled to assembly at build time (like the kernel's asm-offsets.c); the
 * Kbuild rule turns each DEFINE into a Rust constant of uapi_layout.rs, which
 * uapi.rs asserts its own offsets and sizes against at compile time.
 */
#include <linux/kbuild.h>
#include <linux/stddef.h>

#include "rust_pktring_uapi.h"

void rust_pktring_uapi_layout(void);

void rust_pktring_uapi_layout(void)
{
	DEFINE(REQ_SIZE, sizeof(struct pktring_req));
	OFFSET(REQ_SIZE_FIELD, pktring_req, size);
	OFFSET(REQ_VERSION, pktring_req, version);
	OFFSET(REQ_BLOCK_SIZE, pktring_req, block_size);
	OFFSET(REQ_BLOCK_NR, pktring_req, block_nr);
	OFFSET(REQ_FRAME_SIZE, pktring_req, frame_size);
	OFFSET(REQ_FRAME_NR, pktring_req, frame_nr);
	OFFSET(REQ_SNAPLEN, pktring_req, snaplen);
	OFFSET(REQ_FAMILY, pktring_req, family);
	OFFSET(REQ_HOOK, pktring_req, hook);
	OFFSET(REQ_IFINDEX, pktring_req, ifindex);
	OFFSET(REQ_PRIORITY, pktring_req, priority);
	OFFSET(REQ_WAKE_FRAMES, pktring_req, wake_frames);
	OFFSET(REQ_WAKE_USECS, pktring_req, wake_usecs);
	OFFSET(REQ_ETHERTYPE, pktring_req, ethertype);
	OFFSET(REQ_RESERVED, pktring_req, reserved);

	DEFINE(INFO_SIZE, sizeof(struct pktring_info));
	OFFSET(INFO_SIZE_FIELD, pktring_info, size);
	OFFSET(INFO_VERSION, pktring_info, version);
	OFFSET(INFO_MMAP_SIZE, pktring_info, mmap_size);
	OFFSET(INFO_BLOCK_SIZE, pktring_info, block_size);
	OFFSET(INFO_BLOCK_NR, pktring_info, block_nr);
	OFFSET(INFO_FRAME_SIZE, pktring_info, frame_size);
	OFFSET(INFO_FRAME_NR, pktring_info, frame_nr);
	OFFSET(INFO_HDR_LEN, pktring_info, hdr_len);
	OFFSET(INFO_SLL_OFFSET, pktring_info, sll_offset);
	OFFSET(INFO_SNAPLEN, pktring_info, snaplen);
	OFFSET(INFO_ERROR, pktring_info, error);
	OFFSET(INFO_RESERVED, pktring_info, reserved);

	DEFINE(STATS_SIZE, sizeof(struct pktring_stats));
	OFFSET(STATS_PACKETS, pktring_stats, packets);
	OFFSET(STATS_DROPS, pktring_stats, drops);
	OFFSET(STATS_FILTERED, pktring_stats, filtered);

	DEFINE(FANOUT_SIZE, sizeof(struct pktring_fanout));
	OFFSET(FANOUT_ID, pktring_fanout, id);
	OFFSET(FANOUT_MODE, pktring_fanout, mode);
	OFFSET(FANOUT_FLAGS, pktring_fanout, flags);
	OFFSET(FANOUT_MEMBERS, pktring_fanout, members);
	OFFSET(FANOUT_RESERVED, pktring_fanout, reserved);
	OFFSET(FANOUT_ROLLOVER, pktring_fanout, rollover);

	DEFINE(FRAME_SIZE, sizeof(struct pktring_frame));
	OFFSET(FRAME_TP_STATUS, pktring_frame, tp_status);
	OFFSET(FRAME_TP_LEN, pktring_frame, tp_len);
	OFFSET(FRAME_TP_SNAPLEN, pktring_frame, tp_snaplen);
	OFFSET(FRAME_TP_MAC, pktring_frame, tp_mac);
	OFFSET(FRAME_TP_NET, pktring_frame, tp_net);
	OFFSET(FRAME_TP_SEC, pktring_frame, tp_sec);
	OFFSET(FRAME_TP_NSEC, pktring_frame, tp_nsec);
	OFFSET(FRAME_TP_VLAN_TCI, pktring_frame, tp_vlan_tci);
	OFFSET(FRAME_TP_VLAN_TPID, pktring_frame, tp_vlan_tpid);
	OFFSET(FRAME_CPU, pktring_frame, cpu);
	OFFSET(FRAME_RX_QUEUE, pktring_frame, rx_queue);

	DEFINE(IOC_SET_RING, (unsigned long)PKTRING_IOC_SET_RING);
	DEFINE(IOC_GET_INFO, (unsigned long)PKTRING_IOC_GET_INFO);
	DEFINE(IOC_GET_STATS, (unsigned long)PKTRING_IOC_GET_STATS);
	DEFINE(IOC_SET_FILTER, (unsigned long)PKTRING_IOC_SET_FILTER);
	DEFINE(IOC_DETACH_FILTER, (unsigned long)PKTRING_IOC_DETACH_FILTER);
	DEFINE(IOC_JOIN_FANOUT, (unsigned long)PKTRING_IOC_JOIN_FANOUT);
	DEFINE(IOC_GET_FANOUT, (unsigned long)PKTRING_IOC_GET_FANOUT);
	DEFINE(IOC_LEAVE_FANOUT, (unsigned long)PKTRING_IOC_LEAVE_FANOUT);
	DEFINE(VERSION, PKTRING_VERSION);
	DEFINE(NO_RX_QUEUE, PKTRING_NO_RX_QUEUE);
	DEFINE(MAX_SNAPLEN, PKTRING_MAX_SNAPLEN);
	DEFINE(MAX_RING_BYTES, PKTRING_MAX_RING_BYTES);
	DEFINE(MAX_WAKE_USECS, PKTRING_MAX_WAKE_USECS);
	DEFINE(FAMILY_IPV4, PKTRING_FAMILY_IPV4);
	DEFINE(FAMILY_IPV6, PKTRING_FAMILY_IPV6);
	DEFINE(FAMILY_BOTH, PKTRING_FAMILY_BOTH);
	DEFINE(HOOK_PRE_ROUTING, PKTRING_HOOK_PRE_ROUTING);
	DEFINE(HOOK_LOCAL_IN, PKTRING_HOOK_LOCAL_IN);
	DEFINE(HOOK_INGRESS, PKTRING_HOOK_INGRESS);
	DEFINE(HOOK_LOCAL_OUT, PKTRING_HOOK_LOCAL_OUT);
	DEFINE(HOOK_POST_ROUTING, PKTRING_HOOK_POST_ROUTING);
	DEFINE(HOOK_EGRESS, PKTRING_HOOK_EGRESS);
	DEFINE(FANOUT_CPU, PKTRING_FANOUT_CPU);
	DEFINE(FANOUT_HASH, PKTRING_FANOUT_HASH);
	DEFINE(FANOUT_QUEUE, PKTRING_FANOUT_QUEUE);
	DEFINE(FANOUT_LB, PKTRING_FANOUT_LB);
	DEFINE(FANOUT_FLAG_ROLLOVER, PKTRING_FANOUT_FLAG_ROLLOVER);
	DEFINE(FANOUT_MAX_MEMBERS, PKTRING_FANOUT_MAX_MEMBERS);
	DEFINE(ETH_P_ALL, PKTRING_ETH_P_ALL);
}
