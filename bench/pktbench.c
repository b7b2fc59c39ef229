// SPDX-License-Identifier: GPL-2.0
/*
 * pktbench: the guest side of `make bench`. One static program, several
 * modes:
 *
 *   pktbench consume KIND [opts] -- CMD...	capture while CMD (the traffic) runs
 *   pktbench consume pktring-fanout cpu|hash N [opts] -- CMD...
 *						the same with a fanout group of N rings
 *   pktbench multi [opts] -- CMD...		pktring, tpv2 and tpv3 at once
 *   pktbench capture [opts] -- CAPTURE... -- CMD...
 *						a capture program (tcpdump, pktring
 *						capture) on CMD's traffic: what it cost
 *   pktbench pcapcount FILE...			the records in pcap files
 *   pktbench sink [-p PORT] [-m MESSAGE]	a UDP port that takes datagrams, or nothing
 *   pktbench memcpy [-s SECONDS] [-t THREADS] [-m libc|movsb|sse2|movq]
 *   pktbench udpgen [opts]			in-guest UDP over loopback
 *   pktbench tcpgen [opts]			in-guest TCP over loopback
 *   pktbench mark ID				execute marker ID (see tcgstat.c)
 *
 * consume and multi take: --geom a|b|c, --if IFNAME (eth0), --hook
 * pre|in|ingress (rust_pktring's; pre), --cpu N (pin the consumer), --mark ID
 * (tcgstat markers ID and ID + 1), --label NAME, --drain SECONDS (0.3: how
 * long nothing must arrive after CMD ended), --v3-snap (see ring_open()),
 * --wake-frames N and --wake-usecs U (pktring's batched wake-ups: poll()
 * wakes once N frames are ready, 0 meaning a quarter of the ring, or U µs
 * after the first frame it was not woken for; default 10000, V3's block
 * timeout here), --member-geom split|full and --member-cpus LIST
 * (pktring-fanout: see below).
 *
 * KIND is pktring (/dev/pktring, rust_pktring_uapi.h; a wake-up per move of
 * the release frontier), pktringb (the same with batched wake-ups), tpv2 or
 * tpv3 (an AF_PACKET socket with a PACKET_RX_RING of that version) or none
 * (no capture: the baseline). All three rings get the same memory and see the
 * same packets: IPv4 arriving on one interface (pktring: PRE_ROUTING with
 * that ifindex; af_packet: bound to ETH_P_IP on that interface, which only
 * sees received packets). Geometries:
 *
 *   a	2 KiB frames, 4 MiB: 64 blocks of 64 KiB (V3: the same 64 blocks)
 *   b	64 KiB frames, 4 slots: 4 blocks of 64 KiB (V3: the same 4 blocks)
 *   c	64 KiB frames, 4 MiB: 64 blocks of 64 KiB (for costs without drops)
 *
 * pktring-fanout MODE N: N rings join one fanout group (rust_pktring_uapi.h,
 * "Fanout"; mode cpu or hash, no rollover) before their PKTRING_IOC_SET_RING,
 * one consumer thread each, all where --cpu says. By default the members
 * share the geometry's memory: its blocks are split among them, the first
 * members taking one more where they do not divide (4 MiB of geometry a into
 * 3: 22, 21 and 21 blocks of 64 KiB), so that the group has the one ring's
 * memory; --member-geom full gives each member the whole geometry instead.
 * --member-cpus C0,C1,... pins member I's consumer thread to CPU CI instead
 * of where --cpu says (a member without an entry stays there).
 * It prints one "@@BENCH ... mode=fanout member=I" line per member and one
 * with member=all: the members' counts summed, the span from the first
 * packet any took to the last.
 *
 * The consumer is the same loop for every kind: take every ready frame
 * (V3: every ready block), read its header and the first byte of the
 * packet, hand it back; poll(2) when nothing is ready. Each run prints one
 * line "@@BENCH key=value ..." with what it captured, the kernel's counters
 * (PKTRING_IOC_GET_STATS or PACKET_STATISTICS), the consumer's polls and
 * wake-ups (woken: poll() calls that returned readable; nvcsw, nivcsw: the
 * consumer thread's voluntary and involuntary context switches, a voluntary
 * one being a sleep a wake-up ended), and deltas of /proc/stat,
 * /proc/net/snmp and the interface counters over the run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <immintrin.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../rust_pktring_uapi.h"

#define MAX_CPUS	16
/* Where V2 (and rust_pktring) put an Ethernet header in a frame. */
#define V2_MACOFF	(TPACKET_ALIGN(TPACKET2_HDRLEN + 16) - ETH_HLEN)
#define MARK_MAGIC	0x5042u

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("pktbench: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity(%d): %s", cpu, strerror(errno));
}

/*
 * Executes the marker instruction for `id`: `nopl 0x5042IIII(%rax,%rax,1)`
 * from a page of its own, rewritten for each id (QEMU retranslates a code
 * page that was written). Harmless anywhere; tcgstat.so logs it under TCG.
 */
static void mark(unsigned int id)
{
	static uint8_t *code;
	uint8_t insn[9] = { 0x0f, 0x1f, 0x84, 0x00, id & 0xff, (id >> 8) & 0xff,
			    MARK_MAGIC & 0xff, MARK_MAGIC >> 8, 0xc3 /* ret */ };

	if (!code) {
		code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (code == MAP_FAILED)
			die("mmap for the marker: %s", strerror(errno));
	}
	memcpy(code, insn, sizeof(insn));
	__builtin___clear_cache((char *)code, (char *)code + sizeof(insn));
	((void (*)(void))code)();
}

/* ------------------------------------------------------------------ */
/* System counters                                                     */

struct cpustat {
	/* USER_HZ ticks: user+nice, system, irq, softirq, idle+iowait */
	unsigned long long user, sys, irq, softirq, idle;
};

struct snap {
	double t;
	int ncpu;
	struct cpustat all, cpu[MAX_CPUS];
	long long ip_in;		/* /proc/net/snmp Ip: InReceives */
	long long if_pkts, if_bytes;	/* the interface's rx counters */
};

static void read_cpustat(struct snap *s)
{
	char line[512];
	FILE *f = fopen("/proc/stat", "r");

	s->ncpu = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v[10] = { 0 };
		struct cpustat *c;
		int cpu;

		if (strncmp(line, "cpu", 3))
			break;
		if (line[3] == ' ') {
			c = &s->all;
		} else {
			cpu = atoi(line + 3);
			if (cpu < 0 || cpu >= MAX_CPUS)
				continue;
			c = &s->cpu[cpu];
			if (cpu + 1 > s->ncpu)
				s->ncpu = cpu + 1;
		}
		sscanf(strchr(line, ' '), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		       &v[3], &v[4], &v[5], &v[6], &v[7]);
		c->user = v[0] + v[1];
		c->sys = v[2];
		c->idle = v[3] + v[4];
		c->irq = v[5];
		c->softirq = v[6];
	}
	fclose(f);
}

static long long read_ip_in(void)
{
	char names[2048], vals[2048], *n, *v, *sn, *sv;
	long long r = -1;
	FILE *f = fopen("/proc/net/snmp", "r");

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f)) {
		if (strncmp(names, "Ip:", 3) || !fgets(vals, sizeof(vals), f))
			continue;
		n = strtok_r(names, " \n", &sn);
		v = strtok_r(vals, " \n", &sv);
		while (n && v) {
			if (!strcmp(n, "InReceives"))
				r = atoll(v);
			n = strtok_r(NULL, " \n", &sn);
			v = strtok_r(NULL, " \n", &sv);
		}
		break;
	}
	fclose(f);
	return r;
}

static long long read_ll(const char *fmt, const char *arg)
{
	char path[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), fmt, arg);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void take_snap(struct snap *s, const char *ifname)
{
	read_cpustat(s);
	s->ip_in = read_ip_in();
	s->if_pkts = read_ll("/sys/class/net/%s/statistics/rx_packets", ifname);
	s->if_bytes = read_ll("/sys/class/net/%s/statistics/rx_bytes", ifname);
	s->t = now();
}

static unsigned long long busy(const struct cpustat *c)
{
	return c->user + c->sys + c->irq + c->softirq;
}

/* Appends the deltas between two snapshots to a result line. */
static void print_deltas(FILE *o, const struct snap *a, const struct snap *b)
{
	int i;

	fprintf(o, " secs=%.3f ip_in=%lld if_pkts=%lld if_bytes=%lld", b->t - a->t, b->ip_in - a->ip_in,
		b->if_pkts - a->if_pkts, b->if_bytes - a->if_bytes);
	fprintf(o, " hz=%ld cpu_user=%llu cpu_sys=%llu cpu_irq=%llu cpu_softirq=%llu cpu_idle=%llu",
		sysconf(_SC_CLK_TCK), b->all.user - a->all.user, b->all.sys - a->all.sys,
		b->all.irq - a->all.irq, b->all.softirq - a->all.softirq, b->all.idle - a->all.idle);
	/* Per CPU: busy ticks and softirq ticks, "busy/softirq,..." */
	fprintf(o, " percpu=");
	for (i = 0; i < b->ncpu; i++)
		fprintf(o, "%s%llu/%llu", i ? "," : "", busy(&b->cpu[i]) - busy(&a->cpu[i]),
			b->cpu[i].softirq - a->cpu[i].softirq);
}

/* ------------------------------------------------------------------ */
/* Rings                                                               */

enum kind { K_NONE, K_PKTRING, K_TPV2, K_TPV3 };

static const char *const kind_names[] = { "none", "pktring", "tpv2", "tpv3" };

struct ring {
	enum kind kind;
	int fd;
	uint8_t *map;
	size_t map_len;
	unsigned int block_size, block_nr, frame_size, frame_nr, fpb;
	unsigned int cur;		/* next frame (V2 layout) or block (V3) */
	/* what the consumer saw */
	uint64_t pkts, wire_bytes, cap_bytes, blocks, polls, touch;
	/* poll() said readable, and yet the next frame (block) was not ready */
	uint64_t spurious;
	/* poll() calls that returned readable */
	uint64_t woken;
	/* the consumer thread's context switches over the run (getrusage RUSAGE_THREAD) */
	uint64_t nvcsw, nivcsw;
	/* rust_pktring's batched wake-ups (0: none) */
	unsigned int wake_frames, wake_usecs;
	double t_first, t_last;
	/* the kernel's counters */
	uint64_t k_packets, k_drops, k_freeze;
};

struct geom {
	unsigned int block_size, block_nr, frame_size;
};

static struct geom geom_of(const char *name)
{
	if (!strcmp(name, "a"))
		return (struct geom){ 1 << 16, 64, 2048 };
	if (!strcmp(name, "b"))
		return (struct geom){ 1 << 16, 4, 1 << 16 };
	if (!strcmp(name, "c"))
		return (struct geom){ 1 << 16, 64, 1 << 16 };
	die("--geom %s: a (2 KiB frames, 4 MiB), b (64 KiB frames, 4 slots) or c (64 KiB frames, 4 MiB)",
	    name);
}

static int hook_of(const char *name)
{
	if (!strcmp(name, "pre"))
		return PKTRING_HOOK_PRE_ROUTING;
	if (!strcmp(name, "in"))
		return PKTRING_HOOK_LOCAL_IN;
	if (!strcmp(name, "ingress"))
		return PKTRING_HOOK_INGRESS;
	die("--hook %s: pre, in or ingress", name);
}

static enum kind kind_of(const char *name)
{
	for (unsigned int k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]); k++)
		if (!strcmp(name, kind_names[k]))
			return k;
	die("unknown ring kind '%s' (none, pktring, tpv2, tpv3)", name);
}

/* rust_pktring's batched wake-ups, as asked: frames (0: a quarter of the ring), microseconds. */
struct wake {
	bool on;
	unsigned int frames, usecs;
};

static void ring_open(struct ring *r, enum kind kind, struct geom g, int ifindex, int hook,
		      bool snap_filter, struct wake wake, const struct pktring_fanout *fan)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->fd = -1;
	r->block_size = g.block_size;
	r->block_nr = g.block_nr;
	r->frame_size = g.frame_size;
	r->fpb = g.block_size / g.frame_size;
	r->frame_nr = r->fpb * g.block_nr;
	r->map_len = (size_t)g.block_size * g.block_nr;
	if (kind == K_NONE)
		return;

	if (kind == K_PKTRING) {
		struct pktring_req req = {
			.size = sizeof(req), .version = PKTRING_VERSION,
			.block_size = r->block_size, .block_nr = r->block_nr,
			.frame_size = r->frame_size, .frame_nr = r->frame_nr,
			.family = PKTRING_FAMILY_IPV4, .hook = hook, .ifindex = ifindex,
		};
		struct pktring_info info;

		if (wake.on) {
			r->wake_frames = wake.frames ? wake.frames : r->frame_nr / 4;
			if (r->wake_frames < 2)
				r->wake_frames = 2;
			r->wake_usecs = wake.usecs;
			if (r->wake_usecs < 1 || r->wake_usecs > PKTRING_MAX_WAKE_USECS)
				die("--wake-usecs %u: 1..%u", r->wake_usecs, PKTRING_MAX_WAKE_USECS);
			req.wake_frames = r->wake_frames;
			req.wake_usecs = r->wake_usecs;
		}

		r->fd = open("/dev/pktring", O_RDWR | O_CLOEXEC);
		if (r->fd < 0)
			die("/dev/pktring: %s", strerror(errno));
		if (fan && ioctl(r->fd, PKTRING_IOC_JOIN_FANOUT, fan))
			die("PKTRING_IOC_JOIN_FANOUT: %s", strerror(errno));
		if (ioctl(r->fd, PKTRING_IOC_SET_RING, &req) || ioctl(r->fd, PKTRING_IOC_GET_INFO, &info))
			die("pktring set-up: %s", strerror(errno));
		if (info.mmap_size != r->map_len)
			die("pktring: mmap_size %llu, expected %zu", (unsigned long long)info.mmap_size,
			    r->map_len);
	} else {
		int version = kind == K_TPV2 ? TPACKET_V2 : TPACKET_V3;
		struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
					   .sll_ifindex = ifindex };
		struct tpacket_req3 req = {
			.tp_block_size = r->block_size, .tp_block_nr = r->block_nr,
			.tp_frame_size = r->frame_size, .tp_frame_nr = r->frame_nr,
			/* V3 only: hand over a partly filled block after 10 ms. */
			.tp_retire_blk_tov = 10,
		};

		/* Protocol 0: nothing arrives before the ring is there and bound. */
		r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
		if (r->fd < 0)
			die("socket(AF_PACKET): %s", strerror(errno));
		if (setsockopt(r->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)))
			die("PACKET_VERSION: %s", strerror(errno));
		if (setsockopt(r->fd, SOL_PACKET, PACKET_RX_RING, &req,
			       kind == K_TPV2 ? sizeof(struct tpacket_req) : sizeof(req)))
			die("PACKET_RX_RING: %s", strerror(errno));
		/*
		 * V3 packs packets into its blocks and has no frame size: it
		 * would copy all of a 64 KiB packet where V2 and rust_pktring
		 * copy what fits in a 2 KiB frame. A one-instruction filter
		 * that returns V2's snap length in such a frame (frame size
		 * minus the 66 bytes in front of an Ethernet header) makes all
		 * three copy the same bytes. Only asked for where packets are
		 * larger than that: the filter costs V3 some 100 instructions
		 * a packet (this kernel interprets BPF).
		 */
		if (kind == K_TPV3 && snap_filter && r->frame_size < r->block_size) {
			struct sock_filter ret = BPF_STMT(BPF_RET | BPF_K, r->frame_size - V2_MACOFF);
			struct sock_fprog prog = { .len = 1, .filter = &ret };

			if (setsockopt(r->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
				die("SO_ATTACH_FILTER: %s", strerror(errno));
		}
		if (bind(r->fd, (struct sockaddr *)&sll, sizeof(sll)))
			die("bind(AF_PACKET): %s", strerror(errno));
	}
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
	if (r->map == MAP_FAILED)
		die("mmap %s ring: %s", kind_names[kind], strerror(errno));
}

/* Reads the kernel's counters; both interfaces clear them. */
static void ring_kstats(struct ring *r, bool keep)
{
	if (r->kind == K_PKTRING) {
		struct pktring_stats st;

		if (ioctl(r->fd, PKTRING_IOC_GET_STATS, &st))
			die("PKTRING_IOC_GET_STATS: %s", strerror(errno));
		if (keep) {
			r->k_packets = st.packets;
			r->k_drops = st.drops;
		}
	} else if (r->kind == K_TPV2 || r->kind == K_TPV3) {
		struct tpacket_stats_v3 st;
		socklen_t len = r->kind == K_TPV3 ? sizeof(st) : sizeof(struct tpacket_stats);

		memset(&st, 0, sizeof(st));
		if (getsockopt(r->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len))
			die("PACKET_STATISTICS: %s", strerror(errno));
		if (keep) {
			r->k_packets = st.tp_packets;
			r->k_drops = st.tp_drops;
			r->k_freeze = st.tp_freeze_q_cnt;
		}
	}
}

static inline void *frame_at(const struct ring *r, unsigned int i)
{
	return r->map + (size_t)(i / r->fpb) * r->block_size + (size_t)(i % r->fpb) * r->frame_size;
}

/* Consumes every ready frame (or block); returns how many packets. */
static unsigned int ring_drain(struct ring *r)
{
	unsigned int n = 0, touch = 0;

	if (r->kind == K_PKTRING || r->kind == K_TPV2) {
		for (;;) {
			struct tpacket2_hdr *h = frame_at(r, r->cur);

			if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				break;
			r->wire_bytes += h->tp_len;
			r->cap_bytes += h->tp_snaplen;
			touch += *((volatile uint8_t *)h + h->tp_mac);
			__atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
			r->cur = r->cur + 1 == r->frame_nr ? 0 : r->cur + 1;
			n++;
		}
	} else if (r->kind == K_TPV3) {
		for (;;) {
			struct tpacket_block_desc *bd = (void *)(r->map + (size_t)r->cur * r->block_size);
			struct tpacket3_hdr *p;
			unsigned int i, num;

			if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
				break;
			num = bd->hdr.bh1.num_pkts;
			p = (void *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
			for (i = 0; i < num; i++) {
				r->wire_bytes += p->tp_len;
				r->cap_bytes += p->tp_snaplen;
				touch += *((volatile uint8_t *)p + p->tp_mac);
				p = (void *)((uint8_t *)p + p->tp_next_offset);
			}
			__atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
			r->cur = r->cur + 1 == r->block_nr ? 0 : r->cur + 1;
			r->blocks++;
			n += num;
		}
	}
	if (n) {
		double t = now();

		if (!r->pkts)
			r->t_first = t;
		r->t_last = t;
		r->pkts += n;
		r->touch += touch;
	}
	return n;
}

static void print_ring(FILE *o, const struct ring *r)
{
	double span = r->t_last - r->t_first;

	fprintf(o, " kind=%s pkts=%llu wire_bytes=%llu cap_bytes=%llu span=%.3f pps=%.0f"
		" k_packets=%llu k_drops=%llu k_freeze=%llu polls=%llu spurious=%llu blocks=%llu"
		" woken=%llu nvcsw=%llu nivcsw=%llu wake_frames=%u wake_usecs=%u",
		r->kind == K_PKTRING && r->wake_frames ? "pktringb" : kind_names[r->kind],
		(unsigned long long)r->pkts, (unsigned long long)r->wire_bytes,
		(unsigned long long)r->cap_bytes, span, span > 0 ? r->pkts / span : 0.0,
		(unsigned long long)r->k_packets, (unsigned long long)r->k_drops,
		(unsigned long long)r->k_freeze, (unsigned long long)r->polls,
		(unsigned long long)r->spurious, (unsigned long long)r->blocks,
		(unsigned long long)r->woken, (unsigned long long)r->nvcsw,
		(unsigned long long)r->nivcsw, r->wake_frames, r->wake_usecs);
}

/* ------------------------------------------------------------------ */
/* consume and multi                                                   */

static volatile sig_atomic_t child_done;

static void on_sigchld(int sig)
{
	child_done = 1;
}

static pid_t spawn(char **argv)
{
	struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_NOCLDSTOP | SA_RESTART };
	pid_t pid;

	child_done = 0;
	sigaction(SIGCHLD, &sa, NULL);
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		cpu_set_t all;

		/* The traffic command runs anywhere, whatever we are pinned to. */
		CPU_ZERO(&all);
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &all);
		sched_setaffinity(0, sizeof(all), &all);
		execvp(argv[0], argv);
		fprintf(stderr, "pktbench: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Consumes until the traffic command has ended and nothing came for drain_ms. */
static void consume_loop(struct ring *r, double drain_s, volatile sig_atomic_t *done)
{
	double quiet_since = 0;
	bool polled_ready = false;
	struct rusage ru0, ru1;

	/* This thread's own: the traffic command and the other consumers' threads apart. */
	getrusage(RUSAGE_THREAD, &ru0);
	for (;;) {
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };

		if (ring_drain(r)) {
			quiet_since = 0;
			polled_ready = false;
			continue;
		}
		r->spurious += polled_ready;
		if (*done) {
			double t = now();

			if (!quiet_since)
				quiet_since = t;
			else if (t - quiet_since >= drain_s)
				break;
		}
		if (r->kind == K_NONE) {
			usleep(50000);
			continue;
		}
		r->polls++;
		polled_ready = poll(&pfd, 1, 50) > 0;
		r->woken += polled_ready;
	}
	getrusage(RUSAGE_THREAD, &ru1);
	r->nvcsw = ru1.ru_nvcsw - ru0.ru_nvcsw;
	r->nivcsw = ru1.ru_nivcsw - ru0.ru_nivcsw;
}

#define MAX_MEMBERS	16	/* pktring-fanout's N at most */

struct opts {
	const char *label, *ifname, *geom, *hook;
	unsigned int mark;
	int cpu;
	double drain;
	bool snap_filter;
	struct wake wake;
	bool member_full;	/* fanout: each member the whole geometry */
	int member_cpu[MAX_MEMBERS];	/* fanout: member I's consumer's CPU, or -1: --cpu */
};

/* A number for an option, or a clear error. */
static unsigned long parse_ulong(const char *opt, const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v > max)
		die("%s %s: a number from 0 to %lu expected", opt, s, max);
	return v;
}

static int parse_common(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "if", required_argument, NULL, 'i' },
		{ "geom", required_argument, NULL, 'g' },
		{ "hook", required_argument, NULL, 'k' },
		{ "mark", required_argument, NULL, 'm' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "drain", required_argument, NULL, 'd' },
		{ "v3-snap", no_argument, NULL, 's' },
		{ "wake-frames", required_argument, NULL, 'F' },
		{ "wake-usecs", required_argument, NULL, 'U' },
		{ "member-geom", required_argument, NULL, 'M' },
		{ "member-cpus", required_argument, NULL, 'C' },
		{ }
	};
	unsigned int i;
	char *p, *end;
	int c;

	*o = (struct opts){ .label = "-", .ifname = "eth0", .geom = "a", .hook = "pre", .cpu = -1,
			    .drain = 0.3, .wake = { .usecs = 10000 } };
	for (i = 0; i < MAX_MEMBERS; i++)
		o->member_cpu[i] = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o->label = optarg; break;
		case 'i': o->ifname = optarg; break;
		case 'g': o->geom = optarg; break;
		case 'k': o->hook = optarg; break;
		case 'm': o->mark = strtoul(optarg, NULL, 0); break;
		case 'c': o->cpu = atoi(optarg); break;
		case 'd': o->drain = atof(optarg); break;
		case 's': o->snap_filter = true; break;
		case 'F':
			o->wake.frames = parse_ulong("--wake-frames", optarg, UINT32_MAX);
			o->wake.on = true;
			break;
		case 'U':
			o->wake.usecs = parse_ulong("--wake-usecs", optarg, PKTRING_MAX_WAKE_USECS);
			o->wake.on = true;
			break;
		case 'M':
			if (strcmp(optarg, "split") && strcmp(optarg, "full"))
				die("--member-geom %s: split (the members share the geometry's blocks) or full",
				    optarg);
			o->member_full = !strcmp(optarg, "full");
			break;
		case 'C':
			for (i = 0, p = optarg;; i++) {
				unsigned long cpu;

				errno = 0;
				cpu = strtoul(p, &end, 10);
				if (i == MAX_MEMBERS || errno ||
				    end == p || *p == '-' || cpu >= CPU_SETSIZE || (*end && *end != ','))
					die("--member-cpus %s: up to %d CPU numbers, comma-separated", optarg,
					    MAX_MEMBERS);
				o->member_cpu[i] = cpu;
				if (!*end)
					break;
				p = end + 1;
			}
			break;
		default: die("bad option");
		}
	}
	if (optind >= argc)
		die("no traffic command after --");
	return optind;
}

static int cmd_fanout(int argc, char **argv);

static int cmd_consume(int argc, char **argv)
{
	struct snap s0, s1;
	struct opts o;
	struct ring r;
	enum kind kind;
	int ifindex, cmd, status = 0;
	bool batched;
	pid_t pid;

	if (argc < 2)
		die("usage: pktbench consume none|pktring|pktringb|tpv2|tpv3 [opts] -- CMD...\n"
		    "       pktbench consume pktring-fanout cpu|hash N [opts] -- CMD...");
	if (!strcmp(argv[1], "pktring-fanout"))
		return cmd_fanout(argc - 1, argv + 1);
	batched = !strcmp(argv[1], "pktringb");
	kind = batched ? K_PKTRING : kind_of(argv[1]);
	cmd = parse_common(&o, argc - 1, argv + 1) + 1;
	if (o.wake.on && kind != K_PKTRING)
		die("--wake-frames and --wake-usecs are for pktring");
	if (o.wake.on && o.wake.frames == 1)
		die("--wake-frames 1: no batching; leave it out (or 0: a quarter of the ring)");
	o.wake.on |= batched;
	ifindex = if_nametoindex(o.ifname);
	if (!ifindex)
		die("no interface %s", o.ifname);
	pin_to(o.cpu);
	ring_open(&r, kind, geom_of(o.geom), ifindex, hook_of(o.hook), o.snap_filter, o.wake, NULL);
	ring_kstats(&r, false);

	mark(o.mark);
	take_snap(&s0, o.ifname);
	pid = spawn(argv + cmd);
	consume_loop(&r, o.drain, &child_done);
	take_snap(&s1, o.ifname);
	mark(o.mark + 1);

	ring_kstats(&r, true);
	waitpid(pid, &status, 0);
	printf("@@BENCH label=%s mode=consume geom=%s if=%s mark=%u", o.label, o.geom, o.ifname, o.mark);
	print_ring(stdout, &r);
	print_deltas(stdout, &s0, &s1);
	printf(" cmd_rc=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	fflush(stdout);
	return 0;
}

struct multi_arg {
	struct ring r;
	double drain;
	int cpu;	/* where to pin this thread, or -1: where its creator is */
};

static void *multi_thread(void *p)
{
	struct multi_arg *a = p;

	pin_to(a->cpu);
	consume_loop(&a->r, a->drain, &child_done);
	return NULL;
}

static int cmd_multi(int argc, char **argv)
{
	static const enum kind kinds[] = { K_PKTRING, K_TPV2, K_TPV3 };
	struct multi_arg a[3];
	pthread_t th[3];
	struct snap s0, s1;
	struct opts o;
	int ifindex, cmd, i, status = 0;
	pid_t pid;

	cmd = parse_common(&o, argc, argv);
	ifindex = if_nametoindex(o.ifname);
	if (!ifindex)
		die("no interface %s", o.ifname);
	pin_to(o.cpu);
	for (i = 0; i < 3; i++) {
		ring_open(&a[i].r, kinds[i], geom_of(o.geom), ifindex, hook_of(o.hook), o.snap_filter,
			  (struct wake){ 0 }, NULL);
		ring_kstats(&a[i].r, false);
		a[i].drain = o.drain;
		a[i].cpu = -1;
	}
	mark(o.mark);
	take_snap(&s0, o.ifname);
	pid = spawn(argv + cmd);
	for (i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, multi_thread, &a[i]);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	take_snap(&s1, o.ifname);
	mark(o.mark + 1);
	waitpid(pid, &status, 0);
	for (i = 0; i < 3; i++) {
		ring_kstats(&a[i].r, true);
		printf("@@BENCH label=%s mode=multi geom=%s if=%s mark=%u", o.label, o.geom, o.ifname,
		       o.mark);
		print_ring(stdout, &a[i].r);
		print_deltas(stdout, &s0, &s1);
		printf(" cmd_rc=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	fflush(stdout);
	return 0;
}


static const char *const fanout_modes[] = { [PKTRING_FANOUT_CPU] = "cpu", [PKTRING_FANOUT_HASH] = "hash" };

/*
 * consume pktring-fanout MODE N [opts] -- CMD: N rings in one fanout group,
 * one consumer thread each (see the top of the file). argv[0] is
 * "pktring-fanout".
 */
static int cmd_fanout(int argc, char **argv)
{
	struct multi_arg a[MAX_MEMBERS];
	pthread_t th[MAX_MEMBERS];
	struct pktring_fanout fan = { 0 };
	struct ring all;
	struct snap s0, s1;
	struct opts o;
	struct geom g;
	unsigned int n, i, mode;
	int ifindex, cmd, status = 0;
	pid_t pid;

	if (argc < 3)
		die("usage: pktbench consume pktring-fanout cpu|hash N [opts] -- CMD...");
	for (mode = 0; mode < sizeof(fanout_modes) / sizeof(fanout_modes[0]); mode++)
		if (!strcmp(argv[1], fanout_modes[mode]))
			break;
	if (mode == sizeof(fanout_modes) / sizeof(fanout_modes[0]))
		die("pktring-fanout %s: cpu or hash", argv[1]);
	n = parse_ulong("pktring-fanout N", argv[2], MAX_MEMBERS);
	if (n < 1)
		die("pktring-fanout: 1 to %d members", MAX_MEMBERS);
	cmd = parse_common(&o, argc - 2, argv + 2) + 2;
	if (o.wake.on)
		die("pktring-fanout: --wake-frames and --wake-usecs are not for the fanout consumer");
	g = geom_of(o.geom);
	if (!o.member_full && g.block_nr < n)
		die("pktring-fanout: geometry %s has %u blocks, fewer than %u members", o.geom, g.block_nr, n);
	ifindex = if_nametoindex(o.ifname);
	if (!ifindex)
		die("no interface %s", o.ifname);
	pin_to(o.cpu);
	/* A group id of this phase's own: its marker. */
	fan = (struct pktring_fanout){ .id = 0x70620000u | o.mark, .mode = mode };
	for (i = 0; i < n; i++) {
		struct geom m = g;
		struct pktring_fanout got;

		if (!o.member_full)
			m.block_nr = g.block_nr / n + (i < g.block_nr % n);
		ring_open(&a[i].r, K_PKTRING, m, ifindex, hook_of(o.hook), false, o.wake, &fan);
		ring_kstats(&a[i].r, false);
		a[i].drain = o.drain;
		a[i].cpu = o.member_cpu[i];
		if (ioctl(a[i].r.fd, PKTRING_IOC_GET_FANOUT, &got))
			die("PKTRING_IOC_GET_FANOUT: %s", strerror(errno));
		if (got.members != i + 1)
			die("pktring-fanout: member %u sees %u members", i, got.members);
	}

	mark(o.mark);
	take_snap(&s0, o.ifname);
	pid = spawn(argv + cmd);
	for (i = 0; i < n; i++)
		pthread_create(&th[i], NULL, multi_thread, &a[i]);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	take_snap(&s1, o.ifname);
	mark(o.mark + 1);
	waitpid(pid, &status, 0);

	memset(&all, 0, sizeof(all));
	all.kind = K_PKTRING;
	for (i = 0; i < n; i++) {
		struct ring *r = &a[i].r;
		struct pktring_fanout got;

		ring_kstats(r, true);
		if (ioctl(r->fd, PKTRING_IOC_GET_FANOUT, &got))
			die("PKTRING_IOC_GET_FANOUT: %s", strerror(errno));
		printf("@@BENCH label=%s mode=fanout fanout=%s members=%u member=%u geom=%s if=%s mark=%u"
		       " block_nr=%u frame_nr=%u rollover=%llu", o.label, fanout_modes[mode], n, i, o.geom,
		       o.ifname, o.mark, r->block_nr, r->frame_nr, (unsigned long long)got.rollover);
		print_ring(stdout, r);
		print_deltas(stdout, &s0, &s1);
		printf(" cmd_rc=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		if (r->pkts && (!all.pkts || r->t_first < all.t_first))
			all.t_first = r->t_first;
		if (r->pkts && r->t_last > all.t_last)
			all.t_last = r->t_last;
		all.pkts += r->pkts;
		all.wire_bytes += r->wire_bytes;
		all.cap_bytes += r->cap_bytes;
		all.polls += r->polls;
		all.spurious += r->spurious;
		all.woken += r->woken;
		all.nvcsw += r->nvcsw;
		all.nivcsw += r->nivcsw;
		all.k_packets += r->k_packets;
		all.k_drops += r->k_drops;
		all.block_nr += r->block_nr;
		all.frame_nr += r->frame_nr;
	}
	printf("@@BENCH label=%s mode=fanout fanout=%s members=%u member=all geom=%s if=%s mark=%u"
	       " block_nr=%u frame_nr=%u", o.label, fanout_modes[mode], n, o.geom, o.ifname, o.mark,
	       all.block_nr, all.frame_nr);
	print_ring(stdout, &all);
	print_deltas(stdout, &s0, &s1);
	printf(" cmd_rc=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	fflush(stdout);
	return 0;
}

/* ------------------------------------------------------------------ */
/* capture: a capture program (tcpdump, pktring capture) on traffic    */

/* Lines a command printed, kept until the run is over (the console is slow under TCG). */
struct lines {
	char **v;
	size_t n;
	char part[4096];
	size_t plen;
	bool eof;
};

static void lines_add(struct lines *l, const char *s, size_t len)
{
	char *line = strndup(s, len);

	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	if (!l->v || !line)
		die("out of memory");
	l->v[l->n++] = line;
}

/* Reads what fd has (non-blocking) into l; returns whether a line holds `needle`. */
static bool lines_read(struct lines *l, int fd, const char *needle)
{
	char buf[4096];
	bool found = false;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n' || buf[i] == '\r' || l->plen == sizeof(l->part) - 1) {
				if (l->plen) {
					lines_add(l, l->part, l->plen);
					l->part[l->plen] = 0;
					found |= needle && strstr(l->part, needle);
				}
				l->plen = 0;
				if (buf[i] == '\n' || buf[i] == '\r')
					continue;
			}
			l->part[l->plen++] = buf[i];
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		if (l->plen) {
			lines_add(l, l->part, l->plen);
			l->part[l->plen] = 0;
			found |= needle && strstr(l->part, needle);
			l->plen = 0;
		}
		l->eof = true;
	}
	return found;
}

/* Waits up to `ms` for output on the pipes not at their end, and reads it. */
static bool pipes_read(struct lines *a, int fa, struct lines *b, int fb, const char *needle, int ms)
{
	struct pollfd pfd[2] = { { .fd = a->eof ? -1 : fa, .events = POLLIN },
				 { .fd = !b || b->eof ? -1 : fb, .events = POLLIN } };
	bool found = false;

	if (poll(pfd, 2, ms) < 0 && errno != EINTR)
		die("poll: %s", strerror(errno));
	if (pfd[0].revents)
		found = lines_read(a, fa, needle);
	if (pfd[1].revents)
		lines_read(b, fb, NULL);
	return found;
}

/* Forks CMD with stdout and stderr into a pipe (returned in *out), on `cpus` if not empty. */
static pid_t spawn_piped(char **argv, const cpu_set_t *cpus, int *out)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (CPU_COUNT(cpus))
			sched_setaffinity(0, sizeof(*cpus), cpus);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(argv[0], argv);
		fprintf(stderr, "pktbench: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*out = p[0];
	return pid;
}

/* A process's context switches so far, all its threads: /proc/PID/task/x/status. */
static long long ctxt_switches(pid_t pid, long long *vol, long long *invol)
{
	char path[64];
	struct dirent *de;
	DIR *d;

	*vol = *invol = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char line[256], st[320];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(st, sizeof(st), "/proc/%d/task/%s/status", (int)pid, de->d_name);
		f = fopen(st, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			long long v;

			if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1)
				*vol += v;
			else if (sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
				*invol += v;
		}
		fclose(f);
	}
	closedir(d);
	return *vol + *invol;
}

static double tv_s(struct timeval tv)
{
	return tv.tv_sec + tv.tv_usec / 1e6;
}

/*
 * Counts the records of a pcap file (either byte order, micro- or
 * nanosecond magic); *whole is false if the file ends inside a record or
 * has no valid header. Returns false if it cannot be read.
 */
static bool pcap_count(const char *path, uint64_t *pkts, uint64_t *bytes, uint64_t *size, bool *whole)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const uint8_t *m;
	uint64_t off = 24;
	uint32_t magic;
	bool swap;
	off_t len;

	*pkts = *bytes = *size = 0;
	*whole = false;
	if (fd < 0)
		return false;
	len = lseek(fd, 0, SEEK_END);
	if (len < 24) {
		close(fd);
		*size = len > 0 ? len : 0;
		return true;
	}
	*size = len;
	m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return false;
	memcpy(&magic, m, 4);
	swap = magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u;
	if (!swap && magic != 0xa1b2c3d4u && magic != 0xa1b23c4du) {
		munmap((void *)m, len);
		return true;
	}
	while (off + 16 <= (uint64_t)len) {
		uint32_t incl;

		memcpy(&incl, m + off + 8, 4);
		if (swap)
			incl = __builtin_bswap32(incl);
		if (off + 16 + incl > (uint64_t)len)
			break;
		off += 16 + incl;
		(*pkts)++;
		*bytes += incl;
	}
	*whole = off == (uint64_t)len;
	munmap((void *)m, len);
	return true;
}

/*
 * pktbench capture [--label L] [--mark ID] [--cpu N] [--if IFNAME] [--ready TEXT]
 *		    [--drain SECONDS] [--pcap FILE] -- CAPTURE... -- TRAFFIC...
 *
 * Runs a capture program as it is used: CAPTURE pinned to --cpu, its output
 * into a pipe. Once a line of it holds TEXT (it is capturing), takes the
 * counters and marker ID and runs TRAFFIC on the other CPUs; --drain
 * seconds (2) after TRAFFIC ended, sends CAPTURE SIGINT, waits for it
 * (wait4(): its CPU time and context switches) and takes the counters and
 * marker ID + 1. The CPU time and context switches are those from the
 * moment it was ready to its exit: the capture's, not the program's
 * start-up (tcpdump's dynamic linking). With --pcap, then counts FILE's
 * records. Prints "@@CAP key=value ..." and each line either command
 * printed as "@@CAPLOG <label> cap|traffic <line>".
 */
static int cmd_capture(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "mark", required_argument, NULL, 'm' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "if", required_argument, NULL, 'i' },
		{ "ready", required_argument, NULL, 'r' },
		{ "drain", required_argument, NULL, 'd' },
		{ "pcap", required_argument, NULL, 'w' },
		{ }
	};
	const char *label = "-", *ifname = "eth0", *ready = NULL, *pcap = NULL;
	unsigned int markid = 0;
	double drain = 2, t, t_ready, t_traffic_end = 0, startup_s;
	long long vol0, invol0;
	int cpu = -1, c, cap_fd, tr_fd, cap_status = 0, tr_status = 0, i, ncpu;
	char **cap_argv, **tr_argv;
	struct lines cap = { 0 }, tr = { 0 };
	struct timespec ts0;
	struct rusage ru;
	struct snap s0, s1;
	cpu_set_t cap_cpus, other;
	clockid_t clk;
	pid_t cap_pid, tr_pid;
	bool tr_done = false;
	unsigned long long sent = 0;
	uint64_t pkts = 0, bytes = 0, size = 0;
	bool whole = false, counted = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': label = optarg; break;
		case 'm': markid = parse_ulong("--mark", optarg, 0xffff); break;
		case 'c': cpu = parse_ulong("--cpu", optarg, CPU_SETSIZE - 1); break;
		case 'i': ifname = optarg; break;
		case 'r': ready = optarg; break;
		case 'd': drain = atof(optarg); break;
		case 'w': pcap = optarg; break;
		default: die("usage: pktbench capture [options] -- CAPTURE... -- TRAFFIC...");
		}
	}
	if (!ready || !*ready)
		die("capture: --ready TEXT is required (what the capture program prints once it captures)");
	if (optind >= argc)
		die("capture: no capture command after --");
	cap_argv = argv + optind;
	for (i = optind; i < argc && strcmp(argv[i], "--"); i++)
		;
	if (i >= argc - 1 || i == optind)
		die("capture: CAPTURE... -- TRAFFIC... expected");
	argv[i] = NULL;
	tr_argv = argv + i + 1;

	CPU_ZERO(&cap_cpus);
	CPU_ZERO(&other);
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpu >= 0) {
		if (cpu >= ncpu)
			die("--cpu %d: this guest has %d CPUs", cpu, ncpu);
		CPU_SET(cpu, &cap_cpus);
		for (i = 0; i < ncpu; i++)
			if (i != cpu)
				CPU_SET(i, &other);
		/* This process waits on the other CPUs, out of the capture's way. */
		if (CPU_COUNT(&other))
			sched_setaffinity(0, sizeof(other), &other);
	}

	cap_pid = spawn_piped(cap_argv, &cap_cpus, &cap_fd);
	t = now();
	for (;;) {
		if (pipes_read(&cap, cap_fd, NULL, -1, ready, 200))
			break;
		if (cap.eof || waitpid(cap_pid, &cap_status, WNOHANG) == cap_pid) {
			for (size_t k = 0; k < cap.n; k++)
				fprintf(stderr, "%s: %s\n", cap_argv[0], cap.v[k]);
			die("capture: %s ended before it printed '%s'", cap_argv[0], ready);
		}
		if (now() - t > 120) {
			kill(cap_pid, SIGKILL);
			die("capture: %s did not print '%s' within 120 s", cap_argv[0], ready);
		}
	}
	/* What it has used so far is its start-up. */
	if (clock_getcpuclockid(cap_pid, &clk) || clock_gettime(clk, &ts0))
		die("the capture's CPU clock: %s", strerror(errno));
	startup_s = ts0.tv_sec + ts0.tv_nsec / 1e9;
	ctxt_switches(cap_pid, &vol0, &invol0);
	mark(markid);
	take_snap(&s0, ifname);
	t_ready = s0.t;

	tr_pid = spawn_piped(tr_argv, &other, &tr_fd);
	while (!tr_done || now() < t_traffic_end + drain) {
		pipes_read(&cap, cap_fd, &tr, tr_fd, NULL, 100);
		if (!tr_done && waitpid(tr_pid, &tr_status, WNOHANG) == tr_pid) {
			tr_done = true;
			t_traffic_end = now();
		}
		if (waitpid(cap_pid, &cap_status, WNOHANG) == cap_pid)
			die("capture: %s ended during the traffic (status %d)", cap_argv[0], cap_status);
	}
	while (!tr.eof)
		pipes_read(&tr, tr_fd, NULL, -1, NULL, 100);

	kill(cap_pid, SIGINT);
	t = now();
	for (;;) {
		pid_t w;

		pipes_read(&cap, cap_fd, NULL, -1, NULL, 50);
		w = wait4(cap_pid, &cap_status, WNOHANG, &ru);
		if (w == cap_pid)
			break;
		if (w < 0)
			die("wait4: %s", strerror(errno));
		if (now() - t > 60) {
			kill(cap_pid, SIGKILL);
			t = now();
		}
	}
	while (!cap.eof)
		pipes_read(&cap, cap_fd, NULL, -1, NULL, 50);
	take_snap(&s1, ifname);
	mark(markid + 1);

	for (size_t k = 0; k < tr.n; k++)
		if (sscanf(tr.v[k], "pktgen udp: sent %llu packets", &sent) == 1)
			break;
	if (pcap)
		counted = pcap_count(pcap, &pkts, &bytes, &size, &whole);

	for (size_t k = 0; k < cap.n; k++)
		printf("@@CAPLOG %s cap %s\n", label, cap.v[k]);
	for (size_t k = 0; k < tr.n; k++)
		printf("@@CAPLOG %s traffic %s\n", label, tr.v[k]);
	printf("@@CAP label=%s mode=capture if=%s mark=%u prog=%s sent=%llu traffic_secs=%.3f",
	       label, ifname, markid, cap_argv[0], sent, t_traffic_end - t_ready);
	printf(" cpu_s=%.6f user_s=%.6f sys_s=%.6f startup_s=%.6f nvcsw=%lld nivcsw=%lld",
	       tv_s(ru.ru_utime) + tv_s(ru.ru_stime) - startup_s, tv_s(ru.ru_utime), tv_s(ru.ru_stime),
	       startup_s, (long long)ru.ru_nvcsw - vol0, (long long)ru.ru_nivcsw - invol0);
	if (pcap)
		printf(" pcap_ok=%d pcap_pkts=%llu pcap_bytes=%llu pcap_size=%llu", counted && whole,
		       (unsigned long long)pkts, (unsigned long long)bytes, (unsigned long long)size);
	print_deltas(stdout, &s0, &s1);
	printf(" cap_rc=%d traffic_rc=%d\n",
	       WIFEXITED(cap_status) ? WEXITSTATUS(cap_status) : 128 + WTERMSIG(cap_status),
	       WIFEXITED(tr_status) ? WEXITSTATUS(tr_status) : 128 + WTERMSIG(tr_status));
	fflush(stdout);
	return 0;
}

/* pktbench pcapcount FILE...: the records in each pcap file, and whether it is whole. */
static int cmd_pcapcount(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2)
		die("usage: pktbench pcapcount FILE...");
	for (int i = 1; i < argc; i++) {
		uint64_t pkts, bytes, size;
		bool whole;

		if (!pcap_count(argv[i], &pkts, &bytes, &size, &whole)) {
			fprintf(stderr, "pktbench: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		printf("%s: %llu packets, %llu captured bytes, %llu bytes%s\n", argv[i],
		       (unsigned long long)pkts, (unsigned long long)bytes, (unsigned long long)size,
		       whole ? "" : " (not a whole pcap file)");
		rc |= !whole;
	}
	return rc;
}

static void on_stop(int sig)
{
	_exit(0);
}

/*
 * pktbench sink [-p PORT] [-m MESSAGE]: a UDP socket bound to PORT that is
 * never read, so that datagrams to it are taken (and dropped once its small
 * buffer is full) instead of answered with ICMP port unreachable; without
 * -p, nothing. Prints MESSAGE on stderr once set up, then waits for
 * SIGINT or SIGTERM.
 */
static int cmd_sink(int argc, char **argv)
{
	const char *msg = NULL;
	int port = 0, c, rcvbuf = 1;

	while ((c = getopt(argc, argv, "p:m:")) != -1) {
		switch (c) {
		case 'p': port = parse_ulong("-p", optarg, 65535); break;
		case 'm': msg = optarg; break;
		default: die("usage: pktbench sink [-p PORT] [-m MESSAGE]");
		}
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	if (port) {
		struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
		int fd = socket(AF_INET, SOCK_DGRAM, 0);

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
			die("sink on UDP port %d: %s", port, strerror(errno));
	}
	if (msg)
		fprintf(stderr, "%s\n", msg);
	for (;;)
		pause();
}

/* ------------------------------------------------------------------ */
/* memcpy                                                              */

enum method { M_LIBC, M_MOVSB, M_SSE2, M_MOVQ };

struct copy_arg {
	int cpu;
	enum method method;
	size_t size;
	volatile bool *stop;
	uint64_t bytes;
};

static void copy_movsb(void *dst, const void *src, size_t n)
{
	asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static void copy_sse2(void *dst, const void *src, size_t n)
{
	__m128i *d = dst;
	const __m128i *s = src;

	for (size_t i = 0; i < n / 16; i += 4) {
		__m128i a = _mm_loadu_si128(s + i), b = _mm_loadu_si128(s + i + 1);
		__m128i c = _mm_loadu_si128(s + i + 2), e = _mm_loadu_si128(s + i + 3);

		_mm_storeu_si128(d + i, a);
		_mm_storeu_si128(d + i + 1, b);
		_mm_storeu_si128(d + i + 2, c);
		_mm_storeu_si128(d + i + 3, e);
	}
}

/* What the kernel's memcpy does on a CPU without FSRM (memcpy_orig): 4 x 8 bytes a turn. */
static void __attribute__((optimize("no-tree-vectorize"))) copy_movq(void *dst, const void *src, size_t n)
{
	uint64_t *d = dst;
	const uint64_t *s = src;

	for (size_t i = 0; i < n / 8; i += 4) {
		uint64_t a = s[i], b = s[i + 1], c = s[i + 2], e = s[i + 3];

		d[i] = a;
		d[i + 1] = b;
		d[i + 2] = c;
		d[i + 3] = e;
	}
}

static void *copy_thread(void *p)
{
	struct copy_arg *a = p;
	/* Four destinations, like a ring of four 64 KiB slots. */
	uint8_t *src = aligned_alloc(4096, a->size), *dst = aligned_alloc(4096, 4 * a->size);
	unsigned int i = 0;

	if (!src || !dst)
		die("out of memory");
	pin_to(a->cpu);
	memset(src, 0x5a, a->size);
	memset(dst, 0, 4 * a->size);
	while (!*a->stop) {
		uint8_t *d = dst + (i++ & 3) * a->size;

		switch (a->method) {
		case M_LIBC: memcpy(d, src, a->size); break;
		case M_MOVSB: copy_movsb(d, src, a->size); break;
		case M_SSE2: copy_sse2(d, src, a->size); break;
		case M_MOVQ: copy_movq(d, src, a->size); break;
		}
		asm volatile("" : : "r"(d) : "memory");
		a->bytes += a->size;
	}
	free(src);
	free(dst);
	return NULL;
}

static int cmd_memcpy(int argc, char **argv)
{
	static const char *const names[] = { "libc", "movsb", "sse2", "movq" };
	const char *label = "memcpy";
	double seconds = 2, t0, t1;
	int threads = 1, c, i;
	enum method method = M_LIBC;
	unsigned int markid = 0;
	size_t size = 65536;
	volatile bool stop = false;
	struct copy_arg *a;
	pthread_t *th;
	uint64_t total = 0;
	struct snap s0, s1;

	while ((c = getopt(argc, argv, "s:t:m:M:l:b:")) != -1) {
		switch (c) {
		case 's': seconds = atof(optarg); break;
		case 't': threads = atoi(optarg); break;
		case 'm':
			for (method = 0; method < 4 && strcmp(optarg, names[method]); method++)
				;
			if (method == 4)
				die("-m %s: libc, movsb, sse2 or movq", optarg);
			break;
		case 'M': markid = strtoul(optarg, NULL, 0); break;
		case 'l': label = optarg; break;
		case 'b': size = strtoul(optarg, NULL, 0); break;
		default: die("usage: pktbench memcpy [-s SECONDS] [-t THREADS] [-m libc|movsb|sse2|movq] [-M MARK] [-b BYTES]");
		}
	}
	if (threads < 1 || threads > MAX_CPUS)
		die("-t %d: 1..%d threads", threads, MAX_CPUS);
	a = calloc(threads, sizeof(*a));
	th = calloc(threads, sizeof(*th));
	mark(markid);
	take_snap(&s0, "lo");
	t0 = now();
	for (i = 0; i < threads; i++) {
		a[i] = (struct copy_arg){ .cpu = i % sysconf(_SC_NPROCESSORS_ONLN), .method = method,
					  .size = size, .stop = &stop };
		pthread_create(&th[i], NULL, copy_thread, &a[i]);
	}
	usleep(seconds * 1e6);
	stop = true;
	for (i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += a[i].bytes;
	}
	t1 = now();
	take_snap(&s1, "lo");
	mark(markid + 1);
	printf("@@BENCH label=%s mode=memcpy method=%s threads=%d size=%zu mark=%u bytes=%llu mbps=%.1f",
	       label, names[method], threads, size, markid, (unsigned long long)total,
	       total / (t1 - t0) / 1e6);
	print_deltas(stdout, &s0, &s1);
	printf("\n");
	fflush(stdout);
	return 0;
}

/* ------------------------------------------------------------------ */
/* In-guest traffic over loopback                                      */

static int parse_cpus(const char *s, int *cpus, int max)
{
	int n = 0;

	while (*s && n < max) {
		cpus[n++] = strtol(s, (char **)&s, 10);
		if (*s == ',')
			s++;
	}
	return n;
}

struct gen_arg {
	int cpu, port, size;
	double seconds, rate;
	uint64_t sent, bytes;
};

static void *udp_thread(void *p)
{
	struct gen_arg *a = p;
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(a->port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	enum { BATCH = 32 };
	static __thread uint8_t buf[65536];
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	double t0, due;
	int fd, i;

	pin_to(a->cpu);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	memset(buf, 0xa5, a->size);
	for (i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ buf, a->size };
		msg[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &dst, .msg_namelen = sizeof(dst),
							.msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	t0 = due = now();
	while (now() - t0 < a->seconds) {
		int n;

		if (a->rate > 0) {
			double t = now();

			due += BATCH / a->rate;
			if (due > t)
				usleep((due - t) * 1e6);
		}
		n = sendmmsg(fd, msg, BATCH, 0);
		if (n < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED)
				continue;
			die("sendmmsg: %s", strerror(errno));
		}
		a->sent += n;
		a->bytes += (uint64_t)n * a->size;
	}
	close(fd);
	return NULL;
}

/*
 * UDP to 127.0.0.1:PORT from one thread per CPU given, for SECONDS, flat out
 * or at RATE packets/s in total. A socket that is never read takes the
 * datagrams (and drops them once its small buffer is full), so no ICMP
 * errors add packets of their own.
 */
static int cmd_udpgen(int argc, char **argv)
{
	int cpus[MAX_CPUS] = { 1 }, ncpu = 1, size = 64, port = 9000, sink, rcvbuf = 1, i, c;
	double seconds = 5, rate = 0;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct gen_arg a[MAX_CPUS];
	pthread_t th[MAX_CPUS];
	uint64_t sent = 0;
	double t0;

	while ((c = getopt(argc, argv, "c:s:t:r:p:")) != -1) {
		switch (c) {
		case 'c': ncpu = parse_cpus(optarg, cpus, MAX_CPUS); break;
		case 's': size = atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'p': port = atoi(optarg); break;
		default: die("usage: pktbench udpgen [-c CPU,CPU..] [-s SIZE] [-t SECONDS] [-r PPS] [-p PORT]");
		}
	}
	if (size < 1 || size > 65507)
		die("-s %d: 1..65507", size);
	sink = socket(AF_INET, SOCK_DGRAM, 0);
	addr.sin_port = htons(port);
	setsockopt(sink, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (sink < 0 || bind(sink, (struct sockaddr *)&addr, sizeof(addr)))
		die("udpgen sink on port %d: %s", port, strerror(errno));
	t0 = now();
	for (i = 0; i < ncpu; i++) {
		a[i] = (struct gen_arg){ .cpu = cpus[i], .port = port, .size = size, .seconds = seconds,
					 .rate = rate / ncpu };
		pthread_create(&th[i], NULL, udp_thread, &a[i]);
	}
	for (i = 0; i < ncpu; i++) {
		pthread_join(th[i], NULL);
		sent += a[i].sent;
	}
	printf("udpgen: sent %llu datagrams of %d bytes in %.2f s from %d threads\n",
	       (unsigned long long)sent, size, now() - t0, ncpu);
	close(sink);
	return 0;
}

struct tcp_arg {
	int fd, cpu;
	double seconds;
	uint64_t bytes;
};

static void *tcp_send_thread(void *p)
{
	struct tcp_arg *a = p;
	static __thread uint8_t buf[1 << 16];
	double t0 = now();

	pin_to(a->cpu);
	memset(buf, 0x3c, sizeof(buf));
	while (now() - t0 < a->seconds) {
		ssize_t n = send(a->fd, buf, sizeof(buf), MSG_NOSIGNAL);

		if (n < 0)
			die("tcpgen send: %s", strerror(errno));
		a->bytes += n;
	}
	shutdown(a->fd, SHUT_WR);
	return NULL;
}

static void *tcp_recv_thread(void *p)
{
	struct tcp_arg *a = p;
	static __thread uint8_t buf[1 << 16];
	ssize_t n;

	pin_to(a->cpu);
	while ((n = recv(a->fd, buf, sizeof(buf), 0)) > 0)
		a->bytes += n;
	return NULL;
}

/*
 * TCP over loopback: one connection per sender CPU given, its receiver on
 * the CPU given in the same position of -r. Loopback's 64 KiB MTU makes
 * most data packets about 64 KiB, like GRO'd ones; the netfilter hook and
 * af_packet's tap run on the sender's CPU (loopback receives in the softirq
 * that follows the transmit).
 */
static int cmd_tcpgen(int argc, char **argv)
{
	int scpu[MAX_CPUS] = { 1 }, rcpu[MAX_CPUS] = { 2 }, ns = 1, nr = 1, port = 9100, c, i, lfd;
	int one = 1;
	double seconds = 5, t0;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct tcp_arg snd[MAX_CPUS], rcv[MAX_CPUS];
	pthread_t ts[MAX_CPUS], tr[MAX_CPUS];
	uint64_t total = 0;

	while ((c = getopt(argc, argv, "c:r:t:p:")) != -1) {
		switch (c) {
		case 'c': ns = parse_cpus(optarg, scpu, MAX_CPUS); break;
		case 'r': nr = parse_cpus(optarg, rcpu, MAX_CPUS); break;
		case 't': seconds = atof(optarg); break;
		case 'p': port = atoi(optarg); break;
		default: die("usage: pktbench tcpgen [-c SENDER_CPUS] [-r RECEIVER_CPUS] [-t SECONDS] [-p PORT]");
		}
	}
	if (nr < ns)
		die("tcpgen: a receiver CPU for each sender CPU");
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	addr.sin_port = htons(port);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 16))
		die("tcpgen listen on port %d: %s", port, strerror(errno));
	for (i = 0; i < ns; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
			die("tcpgen connect: %s", strerror(errno));
		snd[i] = (struct tcp_arg){ .fd = fd, .cpu = scpu[i], .seconds = seconds };
		rcv[i] = (struct tcp_arg){ .fd = accept(lfd, NULL, NULL), .cpu = rcpu[i] };
		if (rcv[i].fd < 0)
			die("tcpgen accept: %s", strerror(errno));
	}
	t0 = now();
	for (i = 0; i < ns; i++) {
		pthread_create(&tr[i], NULL, tcp_recv_thread, &rcv[i]);
		pthread_create(&ts[i], NULL, tcp_send_thread, &snd[i]);
	}
	for (i = 0; i < ns; i++) {
		pthread_join(ts[i], NULL);
		pthread_join(tr[i], NULL);
		total += rcv[i].bytes;
		close(snd[i].fd);
		close(rcv[i].fd);
	}
	printf("tcpgen: %llu bytes over %d connections in %.2f s (%.1f MB/s)\n",
	       (unsigned long long)total, ns, now() - t0, total / (now() - t0) / 1e6);
	close(lfd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		die("usage: pktbench consume|multi|capture|pcapcount|sink|memcpy|udpgen|tcpgen|mark ... (see the top of pktbench.c)");
	if (!strcmp(argv[1], "consume"))
		return cmd_consume(argc - 1, argv + 1);
	if (!strcmp(argv[1], "multi"))
		return cmd_multi(argc - 1, argv + 1);
	if (!strcmp(argv[1], "memcpy"))
		return cmd_memcpy(argc - 1, argv + 1);
	if (!strcmp(argv[1], "capture"))
		return cmd_capture(argc - 1, argv + 1);
	if (!strcmp(argv[1], "pcapcount"))
		return cmd_pcapcount(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sink"))
		return cmd_sink(argc - 1, argv + 1);
	if (!strcmp(argv[1], "udpgen"))
		return cmd_udpgen(argc - 1, argv + 1);
	if (!strcmp(argv[1], "tcpgen"))
		return cmd_tcpgen(argc - 1, argv + 1);
	if (!strcmp(argv[1], "mark") && argc == 3) {
		mark(strtoul(argv[2], NULL, 0));
		return 0;
	}
	die("unknown mode '%s'", argv[1]);
}
