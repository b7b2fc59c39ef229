// SPDX-License-Identifier: GPL-2.0
/*
 * race_test: the reproducer of the upstream tpacket_rcv() producer race
 * ("net/packet: tpacket_rcv: avoid a producer race condition"), run against
 * /dev/pktring: the `tcpdump -B 129 -n greater 60000` set-up of the commit
 * message, a ring of four 64 KiB slots that producers on every CPU fill with
 * ~64 KiB GSO/GRO TCP packets and small packets much faster than a consumer
 * that checks every frame hands slots back.
 *
 * With few, large slots a fast producer wraps the ring while a slow one is
 * still copying into a slot. Without the rx_owner_map the fast producer then
 * claims that same slot, and two producers write one frame: user space sees a
 * torn frame (one packet's bytes under another's header), a frame published
 * twice, or a frame that changes while it is read. With the owner map the
 * second producer drops its packet instead.
 *
 *	race_test [--min-frames N] [--min-large M] [--long] [--timeout SEC]
 *		  [--expect-corruption [--min-corrupt K]] [--ping-rate PPS]
 *		  [--ping-size B] [--ping-flows F] [--threads T] [--buffers B]
 *		  [--inline-max B] [--spin-us U] [--delay-us D] [--stop-file PATH]
 *		  [--ifname IF] [--udp-port P] [--tcp-port P] [--progress SEC]
 *		  [--details N] [--fanout N [--fanout-mode MODE] [--no-rollover]]
 *
 * The ring: block_size 65536, block_nr 4, frame_size 65536, frame_nr 4,
 * IPv4 at PRE_ROUTING on --ifname (default: the guest's test device,
 * PKTRING_GUEST_IFNAME of testnet.env). Its traffic:
 *  - from the host, which selftests/guest/race.sh asks for (pktring-traffic)
 *    in a loop until the file given with --stop-file exists (race_test
 *    creates it when done): TCP streams to --tcp-port (pktgen's 64-byte
 *    record stream) and UDP datagrams to --udp-port (pktgen datagrams);
 *  - with --ping-rate, ICMP echo requests that race_test sends to the host
 *    (PKTRING_HOST_IP4), whose kernel echoes their pktgen-datagram payloads
 *    back: small packets that arrive while the host's TCP streams do (the host
 *    serves one traffic request at a time, so its UDP flows cannot overlap
 *    its TCP streams). Small, quickly copied frames on one CPU beside 64 KiB
 *    copies on the others are what make a producer lap another.
 *
 * The consumer reads frames in ring order. For each frame it waits for
 * TP_STATUS_USER (acquire; spinning --spin-us, then poll()), copies the
 * frame out, and hands the slot back (release store of TP_STATUS_KERNEL).
 * Frames up to --inline-max bytes are then verified right there; larger ones
 * go to --threads verifier threads through --buffers copy buffers, and the
 * reader waits for a free buffer when the verifiers fall behind. So the
 * consumer is slower than the producers (--delay-us adds a spin per frame):
 * most packets are dropped at a busy slot, which exercises the claim path,
 * while slots still come back quickly enough for the ring to wrap. Every
 * frame is verified from its bytes alone:
 *
 *  - tp_status has TP_STATUS_USER; tp_mac/tp_net are an Ethernet header
 *    apart; tp_snaplen <= tp_len and is exactly what fits; cpu, rx_queue,
 *    VLAN fields and the timestamp are plausible; the sockaddr_ll describes
 *    an IPv4 Ethernet packet on the capture device from the frame's
 *    Ethernet source;
 *  - Ethernet: to the device's MAC, IPv4; IPv4: version, header length,
 *    header checksum, no fragment, host -> guest (testnet.env), total length
 *    equal to tp_len minus the Ethernet header;
 *  - UDP: length consistent with the IP total length, the port, the pktgen
 *    payload check (magic, length, FNV checksum, filler), and (flow, seq)
 *    not seen before: a duplicate is a frame published twice;
 *  - ICMP: an echo reply with a correct checksum, whose id/sequence match
 *    the pktgen payload it carries, which is checked like UDP's;
 *  - TCP: the port, a sane header length, pktgen_stream_check() on the
 *    captured payload (torn or mixed data shows broken records, a changed
 *    flow or a record_seq that does not increase by 1), and per connection
 *    the same flow and the same (TCP sequence - stream offset) in every frame,
 *    which ties the headers to the payload.
 *
 * A frame that holds an intact packet which is not test traffic (to a
 * multicast address, an IPv4 header whose checksum and length agree but
 * between other addresses, another protocol, ICMP other than an echo reply)
 * is counted apart, neither verified nor corrupt: no mix of test packets
 * looks like that.
 *
 * Progress and details are "# " lines; the verdict is the exit status: 0
 * pass, 1 fail, 2 usage or set-up error. Normally it passes iff at least
 * --min-frames frames were verified, --min-large of them over 60,000 bytes,
 * and no frame was corrupt; it stops when both targets are met, 10 s after
 * a corrupt frame, or at --timeout. The defaults are the 1,000,000
 * and 50,000; --long makes them 10,000,000 and 500,000. With
 * --expect-corruption (for the test-only module built without the owner
 * map) it passes iff at least --min-corrupt corrupt frames were seen, and
 * stops 3 s after that.
 *
 * With --fanout N the ring is N such rings, the members of one fanout group
 * (PKTRING_IOC_JOIN_FANOUT; mode lb, cpu, hash or queue, lb by default, with
 * rollover unless --no-rollover), each read by its own reader thread as the
 * single ring is, and verified by the same verifiers: every producing CPU
 * still fills every member in lb mode, and rollover makes a producer claim
 * in a member another CPU was picked for. A frame in two members is a
 * duplicate (flow, seq), as a frame published twice is.
 *
 * The last line is machine-readable:
 *
 *	race_test: RESULT pass|fail verified=X large=Y corrupt=Z seconds=S
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../rust_pktring_uapi.h"
#include "pktgen_payload.h"
#include "testnet.h"	/* gen/testnet.h, from testnet.env */

/* The reproducer's ring: four 64 KiB slots, one per block. */
#define RING_BLOCK_SIZE		65536
#define RING_BLOCK_NR		4
#define RING_FRAME_SIZE		65536
#define RING_FRAME_NR		4

#define LARGE_LEN		60000	/* "greater 60000" */
#define ETH_HLEN_		14
#define MAX_CPUS		256
#define MAX_UDP_FLOWS		(1u << 20)
#define MAX_UDP_SEQ		(1ull << 32)
#define MAX_TCP_CONNS		4096
#define STALL_SEC		5.0	/* a claimed slot never released */
#define MAX_MEMBERS		16	/* --fanout */
/*
 * TCP flows of one pktgen request are flow_base + 0 .. streams - 1; race.sh
 * raises flow_base by 100 per request and runs at most 64 streams, so a flow
 * at least this much above a port's known one is a later request's
 * connection that reused the port.
 */
#define TCP_FLOW_GAP		64

/* Defaults: the numbers (see selftests/guest/race.sh for CI's). */
#define DEF_MIN_FRAMES		1000000ull
#define DEF_MIN_LARGE		50000ull
#define LONG_MIN_FRAMES		10000000ull
#define LONG_MIN_LARGE		500000ull

/* PKTRING_HOST_IP4 and PKTRING_GUEST_IP4, set by main(). */
static uint8_t host_ip[4], guest_ip[4];

/* Kinds of corruption, each counted separately. */
enum corrupt_kind {
	C_STATUS,	/* tp_status without TP_STATUS_USER */
	C_HDR,		/* tp_len/tp_snaplen/tp_mac/tp_net/cpu/queue/time impossible */
	C_SLL,		/* sockaddr_ll wrong */
	C_ETH,		/* Ethernet header wrong */
	C_IP,		/* IPv4 header wrong (version, ihl, addresses, fragment) */
	C_IP_LEN,	/* IPv4 total length is not tp_len's */
	C_IP_CSUM,	/* IPv4 header checksum */
	C_UDP_HDR,	/* UDP length or port */
	C_UDP_PAYLOAD,	/* pktgen datagram check failed */
	C_UDP_DUP,	/* (flow, seq) seen before */
	C_ICMP,		/* ICMP echo reply header or checksum */
	C_ICMP_PAYLOAD,	/* pktgen datagram check failed in an echo reply */
	C_TCP_HDR,	/* TCP port or header length */
	C_TCP_STREAM,	/* pktgen_stream_check failed */
	C_TCP_CONN,	/* flow or sequence/offset not the connection's */
	C_RING_STALL,	/* a slot stayed claimed while later ones were ready */
	C_NKINDS
};

static const char *const kind_name[C_NKINDS] = {
	[C_STATUS] = "tp_status",
	[C_HDR] = "frame header",
	[C_SLL] = "sockaddr_ll",
	[C_ETH] = "ethernet header",
	[C_IP] = "ipv4 header",
	[C_IP_LEN] = "ipv4 total length vs tp_len",
	[C_IP_CSUM] = "ipv4 header checksum",
	[C_UDP_HDR] = "udp header",
	[C_UDP_PAYLOAD] = "udp payload",
	[C_UDP_DUP] = "duplicate datagram (flow, seq)",
	[C_ICMP] = "icmp echo reply header",
	[C_ICMP_PAYLOAD] = "icmp echo reply payload",
	[C_TCP_HDR] = "tcp header",
	[C_TCP_STREAM] = "tcp stream records",
	[C_TCP_CONN] = "tcp flow/sequence vs connection",
	[C_RING_STALL] = "ring slot stalled (claimed, never released)",
};

struct opts {
	uint64_t min_frames, min_large, min_corrupt;
	bool min_frames_set, min_large_set, longmode, expect_corruption;
	double timeout, progress;
	unsigned int threads, delay_us, buffers, details, spin_us, inline_max;
	unsigned int ping_rate, ping_size, ping_flows;
	const char *stop_file, *ifname;
	unsigned int udp_port, tcp_port;
	unsigned int fanout, fanout_mode;
	bool no_rollover;
};

static struct opts o = {
	.min_frames = DEF_MIN_FRAMES, .min_large = DEF_MIN_LARGE, .min_corrupt = 1,
	.timeout = 900, .progress = 10, .threads = 2, .delay_us = 0, .buffers = 32, .spin_us = 0, .inline_max = 4096,
	.ping_rate = 0, .ping_size = 64, .ping_flows = 8,
	.details = 8, .ifname = PKTRING_GUEST_IFNAME, .udp_port = 9000, .tcp_port = 9100,
	.fanout = 0, .fanout_mode = PKTRING_FANOUT_LB,
};

/* What the frames must say about the capture device. */
static struct {
	int ifindex;
	uint8_t mac[6];
	int ncpus, rx_queues;
	struct pktring_info info;
} env;

/* Counters, updated by the verifiers with relaxed atomics. */
static struct {
	uint64_t frames, verified, large, corrupt, bytes;
	uint64_t udp, tcp, tcp_data, tcp_records, truncated, icmp, pings, foreign;
	uint64_t kind[C_NKINDS];
	uint64_t cpu[MAX_CPUS];
	uint64_t waits;		/* times the reader waited for a copy buffer */
	uint64_t polls;		/* times the reader slept in poll() */
	uint64_t ping_fails;	/* echo requests the guest could not send */
	unsigned int details;
} cnt;

#define ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn, format(printf, 1, 2))) fatal(const char *fmt, ...)
{
	va_list ap;

	fputs("race_test: error: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(2);
}

/* ------------------------------------------------------------------ */
/* Copy buffers: free stack and ready FIFO, both under one lock        */

struct copy {
	uint32_t status;	/* tp_status as the reader saw it (acquire) */
	uint32_t len;		/* bytes copied from the frame */
	unsigned int slot;
	uint64_t index;		/* frame number in ring order */
	uint8_t *data;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t freed, ready;
	struct copy **free_stack, **fifo;
	unsigned int nfree, head, count, cap;
	bool done;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .freed = PTHREAD_COND_INITIALIZER,
	.ready = PTHREAD_COND_INITIALIZER };

static void queue_init(unsigned int n, size_t size)
{
	q.free_stack = calloc(n, sizeof(*q.free_stack));
	q.fifo = calloc(n, sizeof(*q.fifo));
	if (!q.free_stack || !q.fifo)
		fatal("out of memory");
	for (unsigned int i = 0; i < n; i++) {
		struct copy *c = calloc(1, sizeof(*c));

		if (!c || !(c->data = malloc(size)))
			fatal("out of memory");
		q.free_stack[q.nfree++] = c;
	}
	q.cap = n;
}

static struct copy *get_free(void)
{
	struct copy *c;

	pthread_mutex_lock(&q.lock);
	if (!q.nfree)
		ADD(cnt.waits, 1);
	while (!q.nfree)
		pthread_cond_wait(&q.freed, &q.lock);
	c = q.free_stack[--q.nfree];
	pthread_mutex_unlock(&q.lock);
	return c;
}

static void put_free(struct copy *c)
{
	pthread_mutex_lock(&q.lock);
	q.free_stack[q.nfree++] = c;
	pthread_cond_signal(&q.freed);
	pthread_mutex_unlock(&q.lock);
}

static void put_ready(struct copy *c)
{
	pthread_mutex_lock(&q.lock);
	q.fifo[(q.head + q.count++) % q.cap] = c;
	pthread_cond_signal(&q.ready);
	pthread_mutex_unlock(&q.lock);
}

/* NULL once the reader is done and everything was taken. */
static struct copy *get_ready(void)
{
	struct copy *c = NULL;

	pthread_mutex_lock(&q.lock);
	while (!q.count && !q.done)
		pthread_cond_wait(&q.ready, &q.lock);
	if (q.count) {
		c = q.fifo[q.head];
		q.head = (q.head + 1) % q.cap;
		q.count--;
	}
	pthread_mutex_unlock(&q.lock);
	return c;
}

/* ------------------------------------------------------------------ */
/* Duplicate detection: a bitmap of seqs per UDP flow                   */

static struct {
	pthread_mutex_t lock;
	uint64_t **bits;	/* per flow */
	uint64_t *words;	/* per flow: allocated words */
	uint32_t nflows;	/* allocated flow slots */
} seen = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Records (flow, seq); returns 1 if it was seen before, -1 if out of range. */
static int seen_test_and_set(uint32_t flow, uint64_t seq)
{
	uint64_t w = seq / 64, bit = 1ull << (seq % 64);
	int ret;

	if (flow >= MAX_UDP_FLOWS || seq >= MAX_UDP_SEQ)
		return -1;
	pthread_mutex_lock(&seen.lock);
	if (flow >= seen.nflows) {
		uint32_t n = seen.nflows ? seen.nflows : 64;

		while (n <= flow)
			n *= 2;
		seen.bits = realloc(seen.bits, n * sizeof(*seen.bits));
		seen.words = realloc(seen.words, n * sizeof(*seen.words));
		if (!seen.bits || !seen.words)
			fatal("out of memory");
		memset(seen.bits + seen.nflows, 0, (n - seen.nflows) * sizeof(*seen.bits));
		memset(seen.words + seen.nflows, 0, (n - seen.nflows) * sizeof(*seen.words));
		seen.nflows = n;
	}
	if (w >= seen.words[flow]) {
		uint64_t n = seen.words[flow] ? seen.words[flow] : 256;

		while (n <= w)
			n *= 2;
		seen.bits[flow] = realloc(seen.bits[flow], n * sizeof(uint64_t));
		if (!seen.bits[flow])
			fatal("out of memory");
		memset(seen.bits[flow] + seen.words[flow], 0,
		       (n - seen.words[flow]) * sizeof(uint64_t));
		seen.words[flow] = n;
	}
	ret = !!(seen.bits[flow][w] & bit);
	seen.bits[flow][w] |= bit;
	pthread_mutex_unlock(&seen.lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* TCP connections: sport -> (flow, TCP seq - stream offset)            */

static struct {
	pthread_mutex_t lock;
	struct conn {
		bool used;
		uint16_t sport;
		uint32_t flow;
		uint32_t delta;	/* TCP sequence number of stream offset 0 */
	} c[MAX_TCP_CONNS];
} conns = { .lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * Checks that a data segment of sport carrying stream flow at stream offset
 * off has the sequence number of that offset in its connection. pktgen's
 * flows grow from one request to the next (race.sh raises --flow-base), so a
 * much larger flow on a known port is a new connection that reused the port.
 * Returns 0 or -1 with why set.
 */
static int conn_check(uint16_t sport, uint32_t flow, uint64_t off, uint32_t tcp_seq,
		      char *why, size_t why_len)
{
	uint32_t delta = tcp_seq - (uint32_t)off;
	unsigned int h = sport % MAX_TCP_CONNS, i;
	int ret = 0;

	pthread_mutex_lock(&conns.lock);
	for (i = 0; i < MAX_TCP_CONNS; i++) {
		struct conn *c = &conns.c[(h + i) % MAX_TCP_CONNS];

		if (!c->used) {
			*c = (struct conn){ .used = true, .sport = sport, .flow = flow, .delta = delta };
			break;
		}
		if (c->sport != sport)
			continue;
		if (flow >= c->flow + TCP_FLOW_GAP) {
			/* A later request's connection on a reused port. */
			c->flow = flow;
			c->delta = delta;
		} else if (flow != c->flow) {
			snprintf(why, why_len, "sport %u carries flow %u, its connection's is %u",
				 sport, flow, c->flow);
			ret = -1;
		} else if (delta != c->delta) {
			snprintf(why, why_len,
				 "sport %u flow %u: TCP seq %u for stream offset %llu, connection has isn %u (off by %d)",
				 sport, flow, tcp_seq, (unsigned long long)off, c->delta,
				 (int)(delta - c->delta));
			ret = -1;
		}
		break;
	}
	if (i == MAX_TCP_CONNS)
		fatal("more than %d TCP connections", MAX_TCP_CONNS);
	pthread_mutex_unlock(&conns.lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Frame verification                                                   */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

#define MIN(a, b) ((a) < (b) ? (a) : (b))

/*
 * Verifies one copied frame. Returns -1 (kind and why set) if it is corrupt,
 * 0 if it is a correct frame, 1 (why set) if it is an intact packet that is
 * not part of the test traffic (not counted as verified).
 */
static int verify(const struct copy *c, enum corrupt_kind *kind, char *why, size_t why_len)
{
	const uint8_t *b = c->data;
	const struct pktring_frame *f = (const void *)b;
	const struct sockaddr_ll *sll = (const void *)(b + env.info.sll_offset);
	uint32_t fs = env.info.frame_size, want_snap, iplen, ihl, cap, l4len;
	const uint8_t *pkt, *ip, *l4;
	bool large = false;

#define BAD(k, fmt, ...) do { \
		*kind = (k); \
		snprintf(why, why_len, fmt, ##__VA_ARGS__); \
		return -1; \
	} while (0)
#define FOREIGN(fmt, ...) do { \
		snprintf(why, why_len, fmt, ##__VA_ARGS__); \
		return 1; \
	} while (0)

	if (!(c->status & TP_STATUS_USER))
		BAD(C_STATUS, "tp_status %#x without TP_STATUS_USER", c->status);
	if (f->tp_mac < env.info.sll_offset + sizeof(struct sockaddr_ll) ||
	    f->tp_net != f->tp_mac + ETH_HLEN_ || f->tp_net % TPACKET_ALIGNMENT)
		BAD(C_HDR, "tp_mac %u tp_net %u", f->tp_mac, f->tp_net);
	if (f->tp_len < ETH_HLEN_ + 20 || f->tp_len > 65535 + ETH_HLEN_)
		BAD(C_HDR, "tp_len %u impossible", f->tp_len);
	if (f->tp_snaplen > f->tp_len)
		BAD(C_HDR, "tp_snaplen %u > tp_len %u", f->tp_snaplen, f->tp_len);
	want_snap = MIN(f->tp_len, env.info.snaplen);
	want_snap = MIN(want_snap, fs - f->tp_mac);
	if (f->tp_snaplen != want_snap)
		BAD(C_HDR, "tp_snaplen %u, want %u (tp_len %u)", f->tp_snaplen, want_snap, f->tp_len);
	if (c->len < f->tp_mac + f->tp_snaplen)
		BAD(C_HDR, "tp_mac %u + tp_snaplen %u beyond the %u bytes copied", f->tp_mac,
		    f->tp_snaplen, c->len);
	if (f->tp_nsec >= 1000000000u || !f->tp_sec)
		BAD(C_HDR, "timestamp %u.%09u", f->tp_sec, f->tp_nsec);
	if (f->cpu >= env.ncpus)
		BAD(C_HDR, "cpu %u of %d", f->cpu, env.ncpus);
	if (f->rx_queue != PKTRING_NO_RX_QUEUE && f->rx_queue >= env.rx_queues)
		BAD(C_HDR, "rx_queue %u of %d", f->rx_queue, env.rx_queues);
	if (f->tp_vlan_tci || f->tp_vlan_tpid ||
	    (c->status & (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID)))
		BAD(C_HDR, "VLAN information on an untagged packet");

	if (sll->sll_family != AF_PACKET || sll->sll_protocol != htons(0x0800) ||
	    sll->sll_ifindex != env.ifindex || sll->sll_hatype != 1 /* ARPHRD_ETHER */ ||
	    sll->sll_pkttype != PACKET_HOST || sll->sll_halen != 6)
		BAD(C_SLL, "family %u protocol %#x ifindex %d hatype %u pkttype %u halen %u",
		    sll->sll_family, ntohs(sll->sll_protocol), sll->sll_ifindex, sll->sll_hatype,
		    sll->sll_pkttype, sll->sll_halen);

	pkt = b + f->tp_mac;
	cap = f->tp_snaplen;
	if (cap < ETH_HLEN_ + 20)
		BAD(C_HDR, "tp_snaplen %u holds no IPv4 header", cap);
	if (pkt[0] & 1)
		FOREIGN("to multicast/broadcast %02x:%02x:%02x:%02x:%02x:%02x", pkt[0], pkt[1],
			pkt[2], pkt[3], pkt[4], pkt[5]);
	if (memcmp(pkt, env.mac, 6) || get16(pkt + 12) != 0x0800)
		BAD(C_ETH, "destination %02x:%02x:%02x:%02x:%02x:%02x ethertype %#06x", pkt[0],
		    pkt[1], pkt[2], pkt[3], pkt[4], pkt[5], get16(pkt + 12));
	if (memcmp(pkt + 6, sll->sll_addr, 6))
		BAD(C_ETH, "source MAC is not sll_addr");

	ip = pkt + ETH_HLEN_;
	cap -= ETH_HLEN_;
	ihl = (ip[0] & 15) * 4u;
	if (ip[0] >> 4 != 4 || ihl < 20 || ihl > cap)
		BAD(C_IP, "version/ihl byte %#04x (captured %u)", ip[0], cap);
	if (ip_csum(ip, ihl) != 0xffff)
		BAD(C_IP_CSUM, "header checksum %#06x does not add up", get16(ip + 10));
	iplen = get16(ip + 2);
	if (iplen + ETH_HLEN_ != f->tp_len)
		BAD(C_IP_LEN, "IPv4 total length %u, tp_len %u", iplen, f->tp_len);
	/*
	 * An intact IPv4 header (the checksum and the length agree) between
	 * other addresses is a packet that is not ours: the host's traffic
	 * is all host -> guest, so no mix of our packets has it.
	 */
	if (memcmp(ip + 12, host_ip, 4) || memcmp(ip + 16, guest_ip, 4))
		FOREIGN("%u.%u.%u.%u -> %u.%u.%u.%u protocol %u", ip[12], ip[13], ip[14], ip[15],
			ip[16], ip[17], ip[18], ip[19], ip[9]);
	if (get16(ip + 6) & 0x3fff)
		BAD(C_IP, "fragment (frag_off %#06x)", get16(ip + 6));
	large = f->tp_len > LARGE_LEN;
	if (f->tp_snaplen < f->tp_len)
		ADD(cnt.truncated, 1);

	l4 = ip + ihl;
	cap -= ihl;			/* L4 bytes captured */
	l4len = iplen - ihl;		/* L4 bytes in the packet */
	if (ip[9] == IPPROTO_UDP) {
		uint32_t flow;
		uint64_t seq;
		int err;

		if (cap < 8 || l4len < 8)
			BAD(C_UDP_HDR, "UDP packet of %u bytes, %u captured", l4len, cap);
		if (get16(l4 + 4) != l4len || get16(l4 + 2) != o.udp_port)
			BAD(C_UDP_HDR, "UDP length %u (IP says %u), port %u", get16(l4 + 4), l4len,
			    get16(l4 + 2));
		if (cap < l4len)
			BAD(C_HDR, "UDP datagram of %u bytes truncated to %u", l4len, cap);
		err = pktgen_payload_check(l4 + 8, l4len - 8, &flow, &seq);
		if (err)
			BAD(C_UDP_PAYLOAD, "payload of %u bytes: %s", l4len - 8, pktgen_strerror(err));
		err = seen_test_and_set(flow, seq);
		if (err)
			BAD(err > 0 ? C_UDP_DUP : C_UDP_PAYLOAD, "flow %u seq %llu %s", flow,
			    (unsigned long long)seq, err > 0 ? "seen before" : "out of range");
		ADD(cnt.udp, 1);
	} else if (ip[9] == IPPROTO_TCP) {
		struct pktgen_stream_info si = { 0 };
		uint32_t doff, plen;
		int n;

		if (cap < 20 || l4len < 20)
			BAD(C_TCP_HDR, "TCP packet of %u bytes, %u captured", l4len, cap);
		doff = (l4[12] >> 4) * 4u;
		if (doff < 20 || doff > l4len || doff > cap || get16(l4 + 2) != o.tcp_port)
			BAD(C_TCP_HDR, "data offset %u in %u bytes (%u captured), port %u", doff,
			    l4len, cap, get16(l4 + 2));
		plen = cap - doff;	/* captured payload */
		ADD(cnt.tcp, 1);
		if (plen) {
			n = pktgen_stream_check(l4 + doff, plen, &si);
			if (n < 0)
				BAD(C_TCP_STREAM, "payload of %u bytes (%u captured): %s", l4len - doff,
				    plen, pktgen_strerror(n));
			if (n > 0) {
				char w[160];

				if (conn_check(get16(l4), si.flow, si.stream_off,
					       pktgen_get32(l4 + 4), w, sizeof(w)))
					BAD(C_TCP_CONN, "%s", w);
				ADD(cnt.tcp_data, 1);
				ADD(cnt.tcp_records, (uint64_t)n);
			}
		}
	} else if (ip[9] == IPPROTO_ICMP) {
		uint32_t flow;
		uint64_t seq;
		int err;

		/* An echo reply to one of our pings: the host's kernel echoes the payload. */
		if (cap < l4len)
			BAD(C_HDR, "ICMP message of %u bytes truncated to %u", l4len, cap);
		if (l4len < 8)
			BAD(C_ICMP, "ICMP message of %u bytes", l4len);
		if (ip_csum(l4, l4len) != 0xffff)
			BAD(C_ICMP, "ICMP checksum %#06x does not add up", get16(l4 + 2));
		if (l4[0] != 0 /* echo reply */ || l4[1] != 0)
			FOREIGN("ICMP type %u code %u", l4[0], l4[1]);
		err = pktgen_payload_check(l4 + 8, l4len - 8, &flow, &seq);
		if (err)
			BAD(C_ICMP_PAYLOAD, "payload of %u bytes: %s", l4len - 8, pktgen_strerror(err));
		if (get16(l4 + 4) != (flow & 0xffff) || get16(l4 + 6) != (seq & 0xffff))
			BAD(C_ICMP, "echo id %u seq %u for payload flow %u seq %llu", get16(l4 + 4),
			    get16(l4 + 6), flow, (unsigned long long)seq);
		err = seen_test_and_set(flow, seq);
		if (err)
			BAD(err > 0 ? C_UDP_DUP : C_ICMP_PAYLOAD, "flow %u seq %llu %s", flow,
			    (unsigned long long)seq, err > 0 ? "seen before" : "out of range");
		ADD(cnt.icmp, 1);
	} else {
		FOREIGN("IP protocol %u", ip[9]);
	}
	if (large)
		ADD(cnt.large, 1);
	ADD(cnt.cpu[f->cpu], 1);
	ADD(cnt.bytes, f->tp_len);
	return 0;
#undef BAD
#undef FOREIGN
}

static void report_corrupt(const struct copy *c, enum corrupt_kind kind, const char *why)
{
	const struct pktring_frame *f = (const void *)c->data;
	unsigned int n = __atomic_fetch_add(&cnt.details, 1, __ATOMIC_RELAXED);

	ADD(cnt.corrupt, 1);
	ADD(cnt.kind[kind], 1);
	if (n < o.details)
		printf("# race_test: CORRUPT frame #%llu (slot %u, status %#x, tp_len %u, snaplen %u, cpu %u, queue %u): %s: %s\n",
		       (unsigned long long)c->index, c->slot, c->status, f->tp_len, f->tp_snaplen,
		       f->cpu, f->rx_queue, kind_name[kind], why);
	else if (n == o.details)
		printf("# race_test: (further corrupt frames are only counted)\n");
}

static void consume(const struct copy *c)
{
	enum corrupt_kind kind;
	char why[256];

	int ret = verify(c, &kind, why, sizeof(why));

	if (ret < 0) {
		report_corrupt(c, kind, why);
	} else if (ret > 0) {
		if (ADD(cnt.foreign, 1) <= 5)
			printf("# race_test: note: frame #%llu is not test traffic, not counted: %s\n",
			       (unsigned long long)c->index, why);
	} else {
		ADD(cnt.verified, 1);
	}
	ADD(cnt.frames, 1);
}

static void *verifier(void *arg)
{
	struct copy *c;

	while ((c = get_ready())) {
		consume(c);
		put_free(c);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Set-up and the reader                                                */

static void read_env(void)
{
	char path[256], line[64];
	unsigned int m[6];
	glob_t g;
	FILE *f;

	env.ifindex = if_nametoindex(o.ifname);
	if (!env.ifindex)
		fatal("no device %s", o.ifname);
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", o.ifname);
	f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f) ||
	    sscanf(line, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		fatal("cannot read %s", path);
	fclose(f);
	for (int i = 0; i < 6; i++)
		env.mac[i] = (uint8_t)m[i];
	snprintf(path, sizeof(path), "/sys/class/net/%s/queues/rx-*", o.ifname);
	env.rx_queues = glob(path, 0, NULL, &g) ? 1 : (int)g.gl_pathc;
	globfree(&g);
	env.ncpus = (int)sysconf(_SC_NPROCESSORS_CONF);
	if (env.ncpus < 1 || env.ncpus > MAX_CPUS)
		fatal("%d CPUs", env.ncpus);
}

/*
 * The pinger: ICMP echo requests to the host, whose kernel sends each payload
 * back. The host serves one pktring-traffic request at a time, so this is
 * the small-packet load that runs *while* the host's TCP streams do: the
 * echo replies come in on the RX queue of the CPU the pinger sends from, a
 * fast producer beside the ones copying 64 KiB packets. Payloads are pktgen
 * datagrams of flows PING_FLOW_BASE + i, so that they are checked like UDP.
 */
#define PING_FLOW_BASE	0x80000u

static volatile bool ping_stop;

static void *pinger(void *arg)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	static uint8_t pkt[8 + PKTGEN_MAX_LEN];
	uint64_t seq = 0, sent = 0;
	unsigned int len = 8 + o.ping_size, batch;
	struct timespec next;
	int fd, sz = 1;

	memcpy(&dst.sin_addr, host_ip, 4);
	fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	if (fd < 0) {
		printf("# race_test: pinger: raw socket: %s\n", strerror(errno));
		return NULL;
	}
	/* Its copies of the replies are never read. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	/* Packets per millisecond tick, rounded up; the tick stretches to fit. */
	batch = (o.ping_rate + 999) / 1000;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!ping_stop) {
		for (unsigned int i = 0; i < batch; i++, sent++) {
			uint32_t flow = PING_FLOW_BASE + (uint32_t)(sent % o.ping_flows);
			uint16_t sum;

			if (sent % o.ping_flows == 0 && sent)
				seq++;
			pkt[0] = 8;	/* echo request */
			pkt[1] = 0;
			pkt[2] = pkt[3] = 0;
			pkt[4] = (uint8_t)(flow >> 8);
			pkt[5] = (uint8_t)flow;
			pkt[6] = (uint8_t)(seq >> 8);
			pkt[7] = (uint8_t)seq;
			pktgen_payload_fill(pkt + 8, o.ping_size, flow, seq);
			sum = ~ip_csum(pkt, len);
			pkt[2] = (uint8_t)(sum >> 8);
			pkt[3] = (uint8_t)sum;
			/*
			 * A request that could not be sent is not sent again:
			 * every (flow, seq) goes out at most once.
			 */
			if (sendto(fd, pkt, len, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
				if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
					printf("# race_test: pinger: sendto: %s\n", strerror(errno));
					close(fd);
					return NULL;
				}
				ADD(cnt.ping_fails, 1);
			}
		}
		ADD(cnt.pings, batch);
		next.tv_nsec += batch * 1000000000ull / o.ping_rate;
		while (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	close(fd);
	return NULL;
}

/*
 * A UDP socket on the test port that is never read: datagrams are dropped
 * at its full receive queue instead of each making an ICMP error.
 */
static int udp_blackhole(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(o.udp_port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), sz = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool done_yet(double t0, double *first_corrupt)
{
	double t = now();

	if (t - t0 >= o.timeout)
		return true;
	if (GET(cnt.corrupt) >= (o.expect_corruption ? o.min_corrupt : 1)) {
		/*
		 * The verdict is in: a few more seconds to show what kinds of
		 * corruption there are (more without the owner map, where it
		 * is expected; with it, any is a failure).
		 */
		if (!*first_corrupt)
			*first_corrupt = t;
		return t - *first_corrupt >= (o.expect_corruption ? 3 : 10);
	}
	if (o.expect_corruption)
		return false;
	return GET(cnt.verified) >= o.min_frames && GET(cnt.large) >= o.min_large;
}

static void progress(double t0, double *last, uint64_t *last_verified, uint64_t *last_large)
{
	double t = now(), dt;
	uint64_t v = GET(cnt.verified), l = GET(cnt.large);

	dt = t - *last > 1e-3 ? t - *last : 1e-3;
	printf("# race_test: %5.0f s: %llu frames verified (%.0f/s), %llu over 60 KB (%.0f/s), %llu corrupt\n",
	       t - t0, (unsigned long long)v, (v - *last_verified) / dt,
	       (unsigned long long)l, (l - *last_large) / dt,
	       (unsigned long long)GET(cnt.corrupt));
	fflush(stdout);
	*last = t;
	*last_verified = v;
	*last_large = l;
}

static void usage(void)
{
	printf("usage: race_test [--min-frames N] [--min-large M] [--long] [--timeout SEC]\n"
	       "                 [--expect-corruption [--min-corrupt K]] [--ping-rate PPS]\n"
	       "                 [--ping-size B] [--ping-flows F] [--threads T] [--buffers B]\n"
	       "                 [--inline-max B] [--spin-us U] [--delay-us D] [--stop-file PATH]\n"
	       "                 [--ifname IF] [--udp-port P] [--tcp-port P] [--progress SEC]\n"
	       "                 [--details N] [--fanout N [--fanout-mode lb|cpu|hash|queue]\n"
	       "                 [--no-rollover]]\n");
	exit(2);
}

static uint64_t num(const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-' || v > max)
		usage();
	/* 1M, 50k */
	if (*end == 'k' || *end == 'K')
		v *= 1000, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1000000, end++;
	if (*end || v > max)
		usage();
	return v;
}

static void parse(int argc, char **argv)
{
	enum { O_MINF = 256, O_MINL, O_LONG, O_TIMEOUT, O_EXPECT, O_MINC, O_THREADS, O_DELAY,
	       O_BUFS, O_STOP, O_IF, O_UPORT, O_TPORT, O_PROGRESS, O_DETAILS, O_SPIN, O_INLINE,
	       O_PRATE, O_PSIZE, O_PFLOWS, O_FANOUT, O_FMODE, O_NOROLL };
	static const struct option lo[] = {
		{ "min-frames", required_argument, NULL, O_MINF },
		{ "min-large", required_argument, NULL, O_MINL },
		{ "long", no_argument, NULL, O_LONG },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "expect-corruption", no_argument, NULL, O_EXPECT },
		{ "min-corrupt", required_argument, NULL, O_MINC },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "delay-us", required_argument, NULL, O_DELAY },
		{ "buffers", required_argument, NULL, O_BUFS },
		{ "stop-file", required_argument, NULL, O_STOP },
		{ "ifname", required_argument, NULL, O_IF },
		{ "udp-port", required_argument, NULL, O_UPORT },
		{ "tcp-port", required_argument, NULL, O_TPORT },
		{ "progress", required_argument, NULL, O_PROGRESS },
		{ "details", required_argument, NULL, O_DETAILS },
		{ "spin-us", required_argument, NULL, O_SPIN },
		{ "inline-max", required_argument, NULL, O_INLINE },
		{ "ping-rate", required_argument, NULL, O_PRATE },
		{ "ping-size", required_argument, NULL, O_PSIZE },
		{ "ping-flows", required_argument, NULL, O_PFLOWS },
		{ "fanout", required_argument, NULL, O_FANOUT },
		{ "fanout-mode", required_argument, NULL, O_FMODE },
		{ "no-rollover", no_argument, NULL, O_NOROLL },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_MINF: o.min_frames = num(optarg, UINT64_MAX / 2); o.min_frames_set = true; break;
		case O_MINL: o.min_large = num(optarg, UINT64_MAX / 2); o.min_large_set = true; break;
		case O_LONG: o.longmode = true; break;
		case O_TIMEOUT: o.timeout = (double)num(optarg, 864000); break;
		case O_EXPECT: o.expect_corruption = true; break;
		case O_MINC: o.min_corrupt = num(optarg, UINT64_MAX / 2); break;
		case O_THREADS: o.threads = num(optarg, 64); break;
		case O_DELAY: o.delay_us = num(optarg, 1000000); break;
		case O_BUFS: o.buffers = num(optarg, 4096); break;
		case O_STOP: o.stop_file = optarg; break;
		case O_IF: o.ifname = optarg; break;
		case O_UPORT: o.udp_port = num(optarg, 65535); break;
		case O_TPORT: o.tcp_port = num(optarg, 65535); break;
		case O_PROGRESS: o.progress = (double)num(optarg, 86400); break;
		case O_DETAILS: o.details = num(optarg, 1000000); break;
		case O_SPIN: o.spin_us = num(optarg, 1000000); break;
		case O_INLINE: o.inline_max = num(optarg, 1 << 20); break;
		case O_PRATE: o.ping_rate = num(optarg, 1000000); break;
		case O_PSIZE: o.ping_size = num(optarg, 1400); break;
		case O_PFLOWS: o.ping_flows = num(optarg, 4096); break;
		case O_FANOUT: o.fanout = num(optarg, MAX_MEMBERS); break;
		case O_FMODE:
			if (!strcmp(optarg, "lb"))
				o.fanout_mode = PKTRING_FANOUT_LB;
			else if (!strcmp(optarg, "cpu"))
				o.fanout_mode = PKTRING_FANOUT_CPU;
			else if (!strcmp(optarg, "hash"))
				o.fanout_mode = PKTRING_FANOUT_HASH;
			else if (!strcmp(optarg, "queue"))
				o.fanout_mode = PKTRING_FANOUT_QUEUE;
			else
				usage();
			break;
		case O_NOROLL: o.no_rollover = true; break;
		default: usage();
		}
	}
	if (optind < argc || !o.threads || !o.buffers || !o.min_corrupt ||
	    o.ping_size < PKTGEN_HDR_LEN || !o.ping_flows)
		usage();
	if (o.longmode) {
		if (!o.min_frames_set)
			o.min_frames = LONG_MIN_FRAMES;
		if (!o.min_large_set)
			o.min_large = LONG_MIN_LARGE;
	}
}

static void create_stop_file(void)
{
	if (o.stop_file) {
		int fd = open(o.stop_file, O_WRONLY | O_CREAT, 0644);

		if (fd >= 0)
			close(fd);
	}
}

static void spin_us(unsigned int us)
{
	double end = now() + us / 1e6;

	while (now() < end)
		;
}

/* One ring of the capture (of its fanout group, with --fanout) and its reader. */
struct member {
	unsigned int idx;
	int fd;
	uint8_t *ring;
	struct copy *small;	/* the inline copy buffer */
	uint64_t frames;	/* frames this reader took */
	pthread_t tid;
};

static struct member members[MAX_MEMBERS];
static unsigned int nmembers = 1;
static double t0, first_corrupt;
static bool stop;	/* set by reader 0 when done_yet() says so */

static bool stopping(void)
{
	return __atomic_load_n(&stop, __ATOMIC_ACQUIRE);
}

/* Reader 0 decides when the run is done and shows the progress; the others follow. */
static bool reader_done(const struct member *m, double *last, uint64_t *last_v, uint64_t *last_l)
{
	if (m->idx) {
		return stopping();
	}
	if (o.progress && now() - *last >= o.progress)
		progress(t0, last, last_v, last_l);
	if (done_yet(t0, &first_corrupt)) {
		__atomic_store_n(&stop, true, __ATOMIC_RELEASE);
		return true;
	}
	return false;
}

/*
 * Reads m's ring in ring order: waits for each frame, copies it out, hands
 * the slot back, and checks the copy inline or has a verifier check it.
 */
static void *reader(void *arg)
{
	struct member *m = arg;
	double last = t0, wait_since = 0;
	uint64_t last_v = 0, last_l = 0, index = 0, spins = 0;
	unsigned int slot = 0, fpb = env.info.block_size / env.info.frame_size;
	uint8_t *ring = m->ring;

	for (;;) {
		struct pktring_frame *f = (void *)(ring + (slot / fpb) * env.info.block_size +
						   (slot % fpb) * env.info.frame_size);
		uint32_t status = __atomic_load_n(&f->tp_status, __ATOMIC_ACQUIRE);
		struct copy *c;
		uint32_t len;

		if (!(status & TP_STATUS_USER)) {
			struct pollfd pfd = { .fd = m->fd, .events = POLLIN };
			double t;

			/* Spin a while first: a wake-up costs more than a frame. */
			if (++spins & 63) {
				__builtin_ia32_pause();
				continue;
			}
			t = now();
			if (!wait_since)
				wait_since = t;
			if (t - wait_since < o.spin_us / 1e6)
				continue;
			if (reader_done(m, &last, &last_v, &last_l))
				break;
			if (t - wait_since > STALL_SEC) {
				/*
				 * Later slots are ready but this one stays
				 * KERNEL: a claim that was never released.
				 * Follow the ready frames instead.
				 */
				unsigned int s;

				for (s = 1; s < env.info.frame_nr; s++) {
					unsigned int k = (slot + s) % env.info.frame_nr;
					struct pktring_frame *g = (void *)(ring + (k / fpb) * env.info.block_size +
									   (k % fpb) * env.info.frame_size);

					if (__atomic_load_n(&g->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)
						break;
				}
				if (s < env.info.frame_nr) {
					ADD(cnt.corrupt, 1);
					ADD(cnt.kind[C_RING_STALL], 1);
					printf("# race_test: CORRUPT ring %u: slot %u not released for %.0f s while slot %u is ready\n",
					       m->idx, slot, t - wait_since, (slot + s) % env.info.frame_nr);
					slot = (slot + s) % env.info.frame_nr;
				}
				wait_since = 0;
				continue;
			}
			ADD(cnt.polls, 1);
			poll(&pfd, 1, 100);
			continue;
		}
		wait_since = 0;
		/* The header first, to know how much to copy; then all of it. */
		len = f->tp_mac + f->tp_snaplen;
		if (len > env.info.frame_size || len < sizeof(*f))
			len = env.info.frame_size;
		/* Small frames are checked right here, large ones by the verifiers. */
		c = len <= o.inline_max ? m->small : get_free();
		memcpy(c->data, f, len);
		c->len = len;
		c->status = status;
		c->slot = slot;
		c->index = index++;
		__atomic_store_n(&f->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		if (c == m->small)
			consume(c);
		else
			put_ready(c);
		slot = (slot + 1) % env.info.frame_nr;
		if (o.delay_us)
			spin_us(o.delay_us);
		if ((index & 255) == 0 && reader_done(m, &last, &last_v, &last_l))
			break;
	}
	m->frames = index;
	return NULL;
}

/* Opens and sets up member m (joining the group first with --fanout) and maps it. */
static void member_setup(struct member *m, const struct pktring_req *req)
{
	struct pktring_fanout join = {
		.id = (uint32_t)getpid(), .mode = (uint16_t)o.fanout_mode,
		.flags = o.no_rollover ? 0 : PKTRING_FANOUT_FLAG_ROLLOVER,
	};

	m->fd = open("/dev/pktring", O_RDWR);
	if (m->fd < 0)
		fatal("open /dev/pktring: %s", strerror(errno));
	if (o.fanout && ioctl(m->fd, PKTRING_IOC_JOIN_FANOUT, &join))
		fatal("joining the fanout group: %s", strerror(errno));
	if (ioctl(m->fd, PKTRING_IOC_SET_RING, req) || ioctl(m->fd, PKTRING_IOC_GET_INFO, &env.info))
		fatal("setting up the ring: %s", strerror(errno));
	m->ring = mmap(NULL, env.info.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->ring == MAP_FAILED)
		fatal("mmap: %s", strerror(errno));
	m->small = calloc(1, sizeof(*m->small));
	if (!m->small || !(m->small->data = malloc(env.info.frame_size)))
		fatal("out of memory");
}

static const char *fanout_mode_name(unsigned int mode)
{
	switch (mode) {
	case PKTRING_FANOUT_CPU: return "cpu";
	case PKTRING_FANOUT_HASH: return "hash";
	case PKTRING_FANOUT_QUEUE: return "queue";
	default: return "lb";
	}
}

int main(int argc, char **argv)
{
	struct pktring_req req = {
		.size = sizeof(req), .version = PKTRING_VERSION,
		.block_size = RING_BLOCK_SIZE, .block_nr = RING_BLOCK_NR,
		.frame_size = RING_FRAME_SIZE, .frame_nr = RING_FRAME_NR,
		.family = PKTRING_FAMILY_IPV4, .hook = PKTRING_HOOK_PRE_ROUTING,
	};
	double t_end, last;
	uint64_t last_v = 0, last_l = 0;
	struct pktring_stats st = { 0 }, sum = { 0 };
	unsigned int nthreads;
	pthread_t *tids, ping_tid;
	bool pass;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (inet_pton(AF_INET, PKTRING_HOST_IP4, host_ip) != 1 ||
	    inet_pton(AF_INET, PKTRING_GUEST_IP4, guest_ip) != 1)
		fatal("testnet.h: bad PKTRING_HOST_IP4 or PKTRING_GUEST_IP4");
	parse(argc, argv);
	atexit(create_stop_file);
	read_env();
	req.ifindex = env.ifindex;
	if (o.fanout)
		nmembers = o.fanout;
	for (unsigned int i = 0; i < nmembers; i++) {
		members[i].idx = i;
		member_setup(&members[i], &req);
	}
	if (udp_blackhole() < 0)
		printf("# race_test: note: no UDP socket on port %u (%s)\n", o.udp_port, strerror(errno));

	printf("# race_test: ring of %u x %u-byte frames (snaplen %u), IPv4 at PRE_ROUTING on %s "
	       "(ifindex %d, %d RX queues, %d CPUs)\n",
	       env.info.frame_nr, env.info.frame_size, env.info.snaplen, o.ifname, env.ifindex,
	       env.rx_queues, env.ncpus);
	if (o.fanout)
		printf("# race_test: a fanout group of %u such rings, mode %s, %s, one reader each\n",
		       nmembers, fanout_mode_name(o.fanout_mode),
		       o.no_rollover ? "no rollover" : "rollover");
	if (o.expect_corruption)
		printf("# race_test: expecting corruption (at least %llu corrupt frames) within %.0f s\n",
		       (unsigned long long)o.min_corrupt, o.timeout);
	else
		printf("# race_test: target: %llu frames verified, %llu over 60 KB, 0 corrupt, within %.0f s\n",
		       (unsigned long long)o.min_frames, (unsigned long long)o.min_large, o.timeout);
	if (o.ping_rate)
		printf("# race_test: pinging %u.%u.%u.%u at %u/s (%u flows, %u-byte payloads) beside the host's traffic\n",
		       host_ip[0], host_ip[1], host_ip[2], host_ip[3], o.ping_rate, o.ping_flows,
		       o.ping_size);
	printf("# race_test: consumer: frames up to %u bytes checked inline, larger ones by %u verifier threads (%u copy buffers); spins %u us before sleeping, %u us delay per frame\n",
	       o.inline_max, o.threads, o.buffers, o.spin_us, o.delay_us);

	queue_init(o.buffers, env.info.frame_size);
	nthreads = o.threads;
	tids = calloc(nthreads, sizeof(*tids));
	for (unsigned int i = 0; i < nthreads; i++)
		if (pthread_create(&tids[i], NULL, verifier, NULL))
			fatal("pthread_create");
	if (o.ping_rate && pthread_create(&ping_tid, NULL, pinger, NULL))
		fatal("pthread_create");
	for (unsigned int i = 0; i < nmembers; i++)
		ioctl(members[i].fd, PKTRING_IOC_GET_STATS, &st);	/* start counting from here */

	t0 = last = now();
	for (unsigned int i = 0; i < nmembers; i++)
		if (pthread_create(&members[i].tid, NULL, reader, &members[i]))
			fatal("pthread_create");
	for (unsigned int i = 0; i < nmembers; i++)
		pthread_join(members[i].tid, NULL);
	t_end = now();
	if (o.ping_rate) {
		ping_stop = true;
		pthread_join(ping_tid, NULL);
	}
	/* Stop the traffic loop before the verifiers finish the backlog. */
	create_stop_file();
	for (unsigned int i = 0; i < nmembers; i++) {
		struct pktring_fanout fo = { 0 };

		if (!ioctl(members[i].fd, PKTRING_IOC_GET_STATS, &st)) {
			sum.packets += st.packets;
			sum.drops += st.drops;
		}
		if (o.fanout && !ioctl(members[i].fd, PKTRING_IOC_GET_FANOUT, &fo))
			printf("# race_test: member %u: %llu frames read, %llu packets, %llu dropped, %llu rolled over to it\n",
			       i, (unsigned long long)members[i].frames, (unsigned long long)st.packets,
			       (unsigned long long)st.drops, (unsigned long long)fo.rollover);
	}
	pthread_mutex_lock(&q.lock);
	q.done = true;
	pthread_cond_broadcast(&q.ready);
	pthread_mutex_unlock(&q.lock);
	for (unsigned int i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	progress(t0, &last, &last_v, &last_l);

	{
		double t = t_end - t0;

		printf("# race_test: %llu frames consumed in %.1f s: %llu verified (%.0f/s), %llu over 60 KB (%.0f/s), %llu corrupt\n",
		       (unsigned long long)cnt.frames, t, (unsigned long long)cnt.verified,
		       cnt.verified / t, (unsigned long long)cnt.large, cnt.large / t,
		       (unsigned long long)cnt.corrupt);
		printf("# race_test: verified: %llu UDP datagrams, %llu ICMP echo replies (of %llu pings, %llu not sent), %llu TCP segments (%llu with data, %llu records), %llu truncated to the frame, %.1f MB; %llu frames not test traffic\n",
		       (unsigned long long)cnt.udp, (unsigned long long)cnt.icmp,
		       (unsigned long long)cnt.pings, (unsigned long long)cnt.ping_fails,
		       (unsigned long long)cnt.tcp,
		       (unsigned long long)cnt.tcp_data, (unsigned long long)cnt.tcp_records,
		       (unsigned long long)cnt.truncated, cnt.bytes / 1e6,
		       (unsigned long long)cnt.foreign);
		printf("# race_test: ring: %llu packets seen by the hook, %llu dropped at a busy slot (%.1f%%), reader waited for a buffer %llu times, slept in poll %llu times\n",
		       (unsigned long long)sum.packets, (unsigned long long)sum.drops,
		       sum.packets ? 100.0 * sum.drops / sum.packets : 0.0,
		       (unsigned long long)cnt.waits, (unsigned long long)cnt.polls);
		printf("# race_test: verified frames by producing CPU:");
		for (int i = 0; i < env.ncpus; i++)
			printf(" cpu%d=%llu", i, (unsigned long long)cnt.cpu[i]);
		printf("\n");
		for (int k = 0; k < C_NKINDS; k++)
			if (cnt.kind[k])
				printf("# race_test: corrupt: %llu %s\n", (unsigned long long)cnt.kind[k],
				       kind_name[k]);
		if (o.expect_corruption)
			pass = cnt.corrupt >= o.min_corrupt;
		else
			pass = !cnt.corrupt && cnt.verified >= o.min_frames && cnt.large >= o.min_large;
		if (!pass) {
			if (o.expect_corruption)
				printf("# race_test: FAIL: no corruption within %.0f s\n", t);
			else if (cnt.corrupt)
				printf("# race_test: FAIL: %llu corrupt frames\n", (unsigned long long)cnt.corrupt);
			else
				printf("# race_test: FAIL: targets not reached within %.0f s (%llu/%llu frames, %llu/%llu large)\n",
				       t, (unsigned long long)cnt.verified, (unsigned long long)o.min_frames,
				       (unsigned long long)cnt.large, (unsigned long long)o.min_large);
		}
		printf("race_test: RESULT %s verified=%llu large=%llu corrupt=%llu seconds=%.0f\n",
		       pass ? "pass" : "fail", (unsigned long long)cnt.verified,
		       (unsigned long long)cnt.large, (unsigned long long)cnt.corrupt, t);
	}
	for (unsigned int i = 0; i < nmembers; i++) {
		munmap(members[i].ring, env.info.mmap_size);
		close(members[i].fd);
	}
	return pass ? 0 : 1;
}
