/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the rust_pktring selftests (pktring_*_test.c): ring set-up and
 * frame access, child processes, the guest's traffic command, counters to
 * wait on, and a frame checker that knows exactly what the module writes.
 * rtnetlink (veth pairs, deleting and moving links) is in pktring_netlink.h.
 *
 * Uses only rust_pktring_uapi.h, libc and Linux uapi headers (plus the
 * payload format of pktgen_payload.h, which is plain C, and gen/testnet.h,
 * which selftests/Makefile makes from testnet.env).
 *
 * Test network (testnet.env; qemu/boot.sh, qemu/init): the guest is
 * PKTRING_GUEST_IP4 on PKTRING_GUEST_IFNAME, the host PKTRING_HOST_IP4;
 * `pktring-traffic ARGS...` runs the host's pktgen and returns its exit
 * status.
 */
#ifndef PKTRING_LIB_H
#define PKTRING_LIB_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "rust_pktring_uapi.h"
#include "pktgen_payload.h"
#include "testnet.h"

#define PKTRING_DEV		"/dev/pktring"
#define PKTRING_MODNAME		"rust_pktring"
#define TEST_IFNAME		PKTRING_GUEST_IFNAME
#define GUEST_IP4		PKTRING_GUEST_IP4
#define HOST_IP4		PKTRING_HOST_IP4
#define TRAFFIC_CMD		"pktring-traffic"

/* What the module computes for an Ethernet frame (af_packet's SOCK_RAW). */
#define ETH_HDR_LEN		14
#define UDP4_HDRS		(ETH_HDR_LEN + 20 + 8)
#define EXP_TP_NET		TPACKET_ALIGN(TPACKET2_HDRLEN + 16)	/* 80 */
#define EXP_TP_MAC		(EXP_TP_NET - ETH_HDR_LEN)		/* 66 */

#define UNUSED			__attribute__((unused))
#define MIN(a, b)		((a) < (b) ? (a) : (b))
#define MAX(a, b)		((a) > (b) ? (a) : (b))

/* Diagnostics: TAP comments on stderr, like the harness's TH_LOG. */
#define diag(fmt, ...)		fprintf(stderr, "# " fmt "\n", ##__VA_ARGS__)

static UNUSED uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static UNUSED uint64_t mono_ms(void)
{
	return now_ns(CLOCK_MONOTONIC) / 1000000;
}

static UNUSED void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Closes *fd if it is open, and marks it closed. */
static UNUSED void fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ------------------------------------------------------------------ */
/* Environment                                                         */

static UNUSED int test_ifindex(void)
{
	return (int)if_nametoindex(TEST_IFNAME);
}

static UNUSED int test_if_mac(uint8_t mac[6])
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	if (s < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TEST_IFNAME);
	ret = ioctl(s, SIOCGIFHWADDR, &ifr);
	close(s);
	if (ret)
		return -1;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

static UNUSED int test_if_rx_queues(void)
{
	DIR *d = opendir("/sys/class/net/" TEST_IFNAME "/queues");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += !strncmp(de->d_name, "rx-", 3);
	closedir(d);
	return n;
}

/* Is `name` an executable in $PATH? */
static UNUSED bool in_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[512];

	if (!path)
		path = "/bin:/sbin:/usr/bin:/usr/sbin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
		if (!access(buf, X_OK))
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

/* NULL if tests can send traffic here, else why not. */
static UNUSED const char *traffic_unavailable(void)
{
	if (!test_ifindex())
		return "no " TEST_IFNAME ": run in the qemu test guest";
	if (!in_path(TRAFFIC_CMD))
		return TRAFFIC_CMD " not found: run in the qemu test guest";
	return NULL;
}

/*
 * Datagrams UDP has taken in, whatever became of them: InDatagrams +
 * NoPorts + InErrors of /proc/net/snmp. UDP runs after the PRE_ROUTING,
 * LOCAL_IN and ingress hooks, so once this has grown by n, the hook has run
 * for n packets (the test packets go to a port nobody listens on, where
 * NoPorts counts them at once).
 */
static UNUSED long long udp_rx_total(void)
{
	char names[1024], vals[1024], *n, *v, *sn, *sv;
	long long sum = -1;
	FILE *f = fopen("/proc/net/snmp", "r");

	if (!f)
		return -1;
	while (fgets(names, sizeof(names), f)) {
		if (strncmp(names, "Udp:", 4))
			continue;
		if (!fgets(vals, sizeof(vals), f))
			break;
		sum = 0;
		n = strtok_r(names, " \n", &sn);
		v = strtok_r(vals, " \n", &sv);
		while (n && v) {
			if (!strcmp(n, "InDatagrams") || !strcmp(n, "NoPorts") ||
			    !strcmp(n, "InErrors"))
				sum += atoll(v);
			n = strtok_r(NULL, " \n", &sn);
			v = strtok_r(NULL, " \n", &sv);
		}
		break;
	}
	fclose(f);
	return sum;
}

/* Waits until udp_rx_total() grew by n from base; returns the growth. */
static UNUSED long long wait_udp(long long base, long long n, unsigned int timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	long long got;

	for (;;) {
		got = udp_rx_total() - base;
		if (got >= n || mono_ms() >= end)
			return got;
		sleep_ms(5);
	}
}

/* ------------------------------------------------------------------ */
/* Child processes                                                     */

/* fork(), with stdio flushed first so that the child does not repeat its buffers. */
static UNUSED pid_t fork_flushed(void)
{
	fflush(stdout);
	fflush(stderr);
	return fork();
}

/* Waits up to ms for pid; returns true (and its status) if it ended. */
static UNUSED bool wait_child(pid_t pid, unsigned int ms, int *status)
{
	uint64_t end = mono_ms() + ms;

	do {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		sleep_ms(10);
	} while (mono_ms() < end);
	return false;
}

/* ------------------------------------------------------------------ */
/* Traffic from the host                                               */

#define TRAFFIC_MAX_RUNNING	4

struct traffic {
	pid_t pid;
	char log[64];
	char cmd[256];
};

static pid_t traffic_running[TRAFFIC_MAX_RUNNING];

/*
 * Starts `pktring-traffic ARGS` in the background, ARGS formatted from fmt
 * and split at spaces. Its output goes to a log file that traffic_wait()
 * reads. Returns 0 or -errno.
 */
static UNUSED __attribute__((format(printf, 2, 3)))
int traffic_start(struct traffic *t, const char *fmt, ...)
{
	static unsigned int seq;
	char *argv[48], *save, *tok, buf[256];
	va_list ap;
	int argc = 0, i;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(t->cmd, sizeof(t->cmd), fmt, ap);
	va_end(ap);
	snprintf(buf, sizeof(buf), "%s", t->cmd);
	argv[argc++] = TRAFFIC_CMD;
	for (tok = strtok_r(buf, " ", &save); tok && argc < 47; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	snprintf(t->log, sizeof(t->log), "/tmp/pktring-traffic.%d.%u.log", (int)getpid(), seq++);

	pid = fork_flushed();
	if (pid < 0)
		return -errno;
	if (!pid) {
		int fd = open(t->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	t->pid = pid;
	for (i = 0; i < TRAFFIC_MAX_RUNNING; i++) {
		if (!traffic_running[i]) {
			traffic_running[i] = pid;
			break;
		}
	}
	return 0;
}

/*
 * Waits for a traffic_start()ed run. Returns its exit status (128 + signal
 * if killed); *host_drops (may be NULL) gets the host's tx_dropped growth
 * that pktgen reported, -1 if unknown. The run's output is printed as
 * diagnostics if it failed, or always with PKTRING_VERBOSE set.
 */
static UNUSED int traffic_wait(struct traffic *t, long *host_drops)
{
	bool verbose = getenv("PKTRING_VERBOSE");
	int status = 0, rc, i;
	char line[512];
	FILE *f;

	if (host_drops)
		*host_drops = -1;
	while (waitpid(t->pid, &status, 0) < 0 && errno == EINTR)
		;
	for (i = 0; i < TRAFFIC_MAX_RUNNING; i++)
		if (traffic_running[i] == t->pid)
			traffic_running[i] = 0;
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	f = fopen(t->log, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *p = strstr(line, "tx_dropped +");

			line[strcspn(line, "\n")] = 0;
			if (p && host_drops)
				*host_drops = strtol(p + 12, NULL, 10);
			if (rc || verbose)
				diag("traffic: %s", line);
		}
		fclose(f);
	}
	unlink(t->log);
	if (rc)
		diag("traffic: '%s %s' exited with status %d", TRAFFIC_CMD, t->cmd, rc);
	t->pid = 0;
	return rc;
}

/* Runs pktring-traffic in the foreground; see traffic_wait(). */
static UNUSED __attribute__((format(printf, 2, 3)))
int traffic_run(long *host_drops, const char *fmt, ...)
{
	struct traffic t;
	char cmd[256];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ret = traffic_start(&t, "%s", cmd);
	if (ret)
		return 127;
	return traffic_wait(&t, host_drops);
}

/* Teardown: stop runs a failed test left behind. */
static UNUSED void traffic_kill_all(void)
{
	int i, status;

	for (i = 0; i < TRAFFIC_MAX_RUNNING; i++) {
		if (!traffic_running[i])
			continue;
		kill(traffic_running[i], SIGTERM);
		waitpid(traffic_running[i], &status, 0);
		traffic_running[i] = 0;
	}
}

/* ------------------------------------------------------------------ */
/* Rings                                                               */

struct ring {
	int fd;
	struct pktring_info info;
	uint8_t *map;
	size_t map_len;
	unsigned int fpb;
	uint8_t *scratch;	/* a private copy of one frame */
};

/* A request for an IPv4, PRE_ROUTING capture on the test interface. */
static UNUSED void req_init(struct pktring_req *req, uint32_t block_size, uint32_t block_nr,
			    uint32_t frame_size)
{
	memset(req, 0, sizeof(*req));
	req->size = sizeof(*req);
	req->version = PKTRING_VERSION;
	req->block_size = block_size;
	req->block_nr = block_nr;
	req->frame_size = frame_size;
	req->frame_nr = frame_size ? block_size / frame_size * block_nr : 0;
	req->family = PKTRING_FAMILY_IPV4;
	req->hook = PKTRING_HOOK_PRE_ROUTING;
	req->ifindex = test_ifindex();
}

static UNUSED int set_ring(int fd, const struct pktring_req *req)
{
	return ioctl(fd, PKTRING_IOC_SET_RING, req) ? -errno : 0;
}

static UNUSED void ring_init(struct ring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->map = MAP_FAILED;
}

/*
 * Fills r from fd, a file with its ring set up (which r then owns), and maps
 * the ring with prot. Returns 0 or -errno.
 */
static UNUSED int ring_attach(struct ring *r, int fd, int prot)
{
	ring_init(r);
	r->fd = fd;
	if (ioctl(fd, PKTRING_IOC_GET_INFO, &r->info))
		return -errno;
	r->fpb = r->info.block_size / r->info.frame_size;
	r->map_len = r->info.mmap_size;
	r->map = mmap(NULL, r->map_len, prot, MAP_SHARED, fd, 0);
	return r->map == MAP_FAILED ? -errno : 0;
}

/* Opens the device, sets the ring up and maps it. Returns 0 or -errno. */
static UNUSED int ring_create(struct ring *r, const struct pktring_req *req)
{
	int ret;

	ring_init(r);
	r->fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	ret = set_ring(r->fd, req);
	if (ret)
		return ret;
	ret = ring_attach(r, r->fd, PROT_READ | PROT_WRITE);
	if (ret)
		return ret;
	r->scratch = malloc(r->info.frame_size);
	return r->scratch ? 0 : -ENOMEM;
}

static UNUSED void ring_destroy(struct ring *r)
{
	if (r->map != MAP_FAILED)
		munmap(r->map, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
	free(r->scratch);
	ring_init(r);
}

/* A fixture's rings r[0..n-1], none set up yet. */
static UNUSED void rings_init(struct ring *r, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		ring_init(&r[i]);
}

/* A fixture's teardown: the traffic a failed test left stops, the rings close. */
static UNUSED void rings_teardown(struct ring *r, unsigned int n)
{
	unsigned int i;

	traffic_kill_all();
	for (i = 0; i < n; i++)
		ring_destroy(&r[i]);
}

static inline size_t frame_offset(const struct ring *r, unsigned int i)
{
	return (size_t)(i / r->fpb) * r->info.block_size + (size_t)(i % r->fpb) * r->info.frame_size;
}

static inline struct pktring_frame *ring_frame(const struct ring *r, unsigned int i)
{
	return (struct pktring_frame *)(r->map + frame_offset(r, i));
}

static inline uint32_t frame_status(const struct pktring_frame *f)
{
	return __atomic_load_n(&f->tp_status, __ATOMIC_ACQUIRE);
}

static inline void frame_release(struct pktring_frame *f)
{
	__atomic_store_n(&f->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

static UNUSED int get_stats(const struct ring *r, struct pktring_stats *st)
{
	return ioctl(r->fd, PKTRING_IOC_GET_STATS, st) ? -errno : 0;
}

/* Frames whose status has TP_STATUS_USER. */
static UNUSED unsigned int ring_count_user(const struct ring *r)
{
	unsigned int i, n = 0;

	for (i = 0; i < r->info.frame_nr; i++)
		n += !!(frame_status(ring_frame(r, i)) & TP_STATUS_USER);
	return n;
}

/*
 * Waits up to timeout_ms for frame i to be ready: TP_STATUS_USER set, or
 * with any_nonzero (libpcap's rule) any non-zero status. Sleeps in poll().
 * Returns the status, 0 on timeout.
 */
static UNUSED uint32_t ring_wait_frame(const struct ring *r, unsigned int i, int timeout_ms,
				       bool any_nonzero)
{
	struct pktring_frame *f = ring_frame(r, i);
	uint64_t end = mono_ms() + timeout_ms;
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };

	for (;;) {
		uint32_t st = frame_status(f);
		int64_t left;

		if (any_nonzero ? st != 0 : !!(st & TP_STATUS_USER))
			return st;
		left = (int64_t)(end - mono_ms());
		if (left <= 0)
			return 0;
		/*
		 * poll() reports the frame before the kernel's head; frame i
		 * may still be being filled while a later one is ready, so
		 * never trust it alone and never spin on it.
		 */
		if (poll(&pfd, 1, (int)MIN(left, 50)) > 0)
			usleep(50);
	}
}

/* ------------------------------------------------------------------ */
/* Frame checks                                                        */

/* What a captured test packet must look like. */
struct expect {
	int ifindex;		/* sll_ifindex */
	uint16_t dport;		/* UDP destination port; 0: any */
	uint32_t size;		/* UDP payload bytes; 0: any */
	uint8_t mac[6];		/* destination MAC: the test interface's */
	int rx_queues;		/* rx_queue must be below this or PKTRING_NO_RX_QUEUE */
	int ncpus;
	uint8_t saddr[4], daddr[4];	/* HOST_IP4, GUEST_IP4 */
};

static UNUSED void expect_init(struct expect *e, uint16_t dport, uint32_t size)
{
	memset(e, 0, sizeof(*e));
	e->ifindex = test_ifindex();
	e->dport = dport;
	e->size = size;
	test_if_mac(e->mac);
	e->rx_queues = test_if_rx_queues();
	e->ncpus = (int)sysconf(_SC_NPROCESSORS_CONF);
	inet_pton(AF_INET, HOST_IP4, e->saddr);
	inet_pton(AF_INET, GUEST_IP4, e->daddr);
}

struct frame_info {
	uint32_t status, len, snaplen;
	uint32_t flow;
	uint64_t seq;
	uint64_t ts_ns;
	uint16_t cpu, rx_queue;
	bool full;		/* the whole packet was captured (and checked) */
};

static inline uint16_t get16be(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * Checks frame i against what the module must have written for a test
 * packet. The frame is copied first (after an acquire load of tp_status),
 * so a frame a producer still writes shows up as inconsistent rather than
 * changing under the checks. Returns 0, or -1 with the reason in why.
 */
static UNUSED int check_frame(const struct ring *r, unsigned int i, const struct expect *e,
			      struct frame_info *fi, char *why, size_t why_len)
{
	const struct pktring_frame *live = ring_frame(r, i);
	const struct pktring_frame *f = (const void *)r->scratch;
	const uint8_t *b = r->scratch, *pkt, *ip, *udp;
	const struct sockaddr_ll *sll;
	uint32_t fs = r->info.frame_size, want_snap, iplen, ulen;
	int64_t dt;

#define BAD(fmt, ...) do { \
		snprintf(why, why_len, "frame %u: " fmt, i, ##__VA_ARGS__); \
		return -1; \
	} while (0)

	memset(fi, 0, sizeof(*fi));
	fi->status = frame_status(live);
	memcpy(r->scratch, live, fs);
	fi->len = f->tp_len;
	fi->snaplen = f->tp_snaplen;
	fi->cpu = f->cpu;
	fi->rx_queue = f->rx_queue;
	fi->ts_ns = (uint64_t)f->tp_sec * 1000000000ull + f->tp_nsec;

	if (!(fi->status & TP_STATUS_USER))
		BAD("tp_status %#x without TP_STATUS_USER", fi->status);
	if (fi->status & (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID) ||
	    f->tp_vlan_tci || f->tp_vlan_tpid)
		BAD("VLAN information on an untagged packet (status %#x tci %#x tpid %#x)",
		    fi->status, f->tp_vlan_tci, f->tp_vlan_tpid);
	if (f->tp_mac != EXP_TP_MAC || f->tp_net != EXP_TP_NET)
		BAD("tp_mac %u tp_net %u, want %u %u", f->tp_mac, f->tp_net, (unsigned int)EXP_TP_MAC,
		    (unsigned int)EXP_TP_NET);
	if (fi->len < UDP4_HDRS + PKTGEN_HDR_LEN || fi->len > 65535 + ETH_HDR_LEN)
		BAD("tp_len %u impossible for a test packet", fi->len);
	if (e->size && fi->len != UDP4_HDRS + e->size)
		BAD("tp_len %u, want %u", fi->len, UDP4_HDRS + e->size);
	want_snap = MIN(fi->len, r->info.snaplen);
	want_snap = MIN(want_snap, fs - EXP_TP_MAC);
	if (fi->snaplen != want_snap)
		BAD("tp_snaplen %u, want %u (tp_len %u, snaplen %u, frame %u)", fi->snaplen,
		    want_snap, fi->len, r->info.snaplen, fs);
	if (f->tp_nsec >= 1000000000u)
		BAD("tp_nsec %u", f->tp_nsec);
	dt = (int64_t)(fi->ts_ns - now_ns(CLOCK_REALTIME));
	if (dt > 60000000000ll || dt < -60000000000ll)
		BAD("timestamp %u.%09u is %lld s from now", f->tp_sec, f->tp_nsec,
		    (long long)(dt / 1000000000));
	if (e->ncpus > 0 && f->cpu >= e->ncpus)
		BAD("cpu %u of %d", f->cpu, e->ncpus);
	if (f->rx_queue != PKTRING_NO_RX_QUEUE && e->rx_queues > 0 && f->rx_queue >= e->rx_queues)
		BAD("rx_queue %u of %d", f->rx_queue, e->rx_queues);

	sll = (const void *)(b + r->info.sll_offset);
	if (sll->sll_family != AF_PACKET || sll->sll_protocol != htons(ETH_P_IP) ||
	    sll->sll_ifindex != e->ifindex || sll->sll_hatype != ARPHRD_ETHER ||
	    sll->sll_pkttype != PACKET_HOST || sll->sll_halen != 6)
		BAD("sockaddr_ll family %u protocol %#x ifindex %d hatype %u pkttype %u halen %u",
		    sll->sll_family, ntohs(sll->sll_protocol), sll->sll_ifindex, sll->sll_hatype,
		    sll->sll_pkttype, sll->sll_halen);

	pkt = b + f->tp_mac;
	if (fi->snaplen < ETH_HDR_LEN)
		BAD("tp_snaplen %u has no Ethernet header", fi->snaplen);
	if (get16be(pkt + 12) != ETH_P_IP)
		BAD("ethertype %#06x", get16be(pkt + 12));
	if (memcmp(pkt, e->mac, 6))
		BAD("destination MAC is not " TEST_IFNAME "'s");
	if (memcmp(pkt + 6, sll->sll_addr, 6))
		BAD("sll_addr is not the Ethernet source address");
	if (fi->snaplen < UDP4_HDRS)
		return 0;

	ip = pkt + ETH_HDR_LEN;
	udp = ip + 20;
	iplen = get16be(ip + 2);
	ulen = get16be(udp + 4);
	if (ip[0] != 0x45 || ip[9] != IPPROTO_UDP)
		BAD("not an IPv4/UDP packet without options (%#x, protocol %u)", ip[0], ip[9]);
	if (memcmp(ip + 12, e->saddr, 4) || memcmp(ip + 16, e->daddr, 4))
		BAD("not " HOST_IP4 " -> " GUEST_IP4);
	if (iplen + ETH_HDR_LEN != fi->len)
		BAD("tp_len %u but IP total length %u", fi->len, iplen);
	if (ulen != iplen - 20)
		BAD("UDP length %u in IP total length %u", ulen, iplen);
	if (e->dport && get16be(udp + 2) != e->dport)
		BAD("UDP port %u, want %u", get16be(udp + 2), e->dport);

	if (fi->snaplen == fi->len) {
		int err = pktgen_payload_check(udp + 8, ulen - 8, &fi->flow, &fi->seq);

		if (err)
			BAD("payload: %s (tp_len %u)", pktgen_strerror(err), fi->len);
		fi->full = true;
	} else if (fi->snaplen >= UDP4_HDRS + 20) {
		/* Truncated: what is there must be the payload header. */
		const uint8_t *p = udp + 8;

		if (pktgen_get32(p) != PKTGEN_MAGIC || pktgen_get32(p + 16) != ulen - 8)
			BAD("truncated payload header is wrong");
		fi->flow = pktgen_get32(p + 4);
		fi->seq = pktgen_get64(p + 8);
	}
	return 0;
#undef BAD
}

/* ------------------------------------------------------------------ */
/* Which (flow, seq) pairs arrived                                     */

struct seen {
	uint32_t nflows, nseq;
	uint8_t *count;
	uint64_t *ts;
};

static UNUSED int seen_init(struct seen *s, uint32_t nflows, uint32_t nseq)
{
	s->nflows = nflows;
	s->nseq = nseq;
	s->count = calloc((size_t)nflows * nseq, 1);
	s->ts = calloc((size_t)nflows * nseq, sizeof(*s->ts));
	return s->count && s->ts ? 0 : -1;
}

static UNUSED void seen_free(struct seen *s)
{
	free(s->count);
	free(s->ts);
	s->count = NULL;
	s->ts = NULL;
}

/* Returns 0 the first time, 1 for a duplicate, -1 if out of range. */
static UNUSED int seen_mark(struct seen *s, uint32_t flow, uint64_t seq, uint64_t ts)
{
	size_t k;

	if (flow >= s->nflows || seq >= s->nseq)
		return -1;
	k = (size_t)flow * s->nseq + seq;
	if (s->count[k]++)
		return 1;
	s->ts[k] = ts;
	return 0;
}

/*
 * Per flow, in sequence order: timestamps must not go backwards. Returns
 * the number of flows where they do (and describes the first one).
 */
static UNUSED unsigned int seen_ts_regressions(const struct seen *s, char *why, size_t why_len)
{
	unsigned int bad = 0;
	uint32_t fl;
	uint64_t q;

	for (fl = 0; fl < s->nflows; fl++) {
		uint64_t last = 0, lastq = 0;

		for (q = 0; q < s->nseq; q++) {
			size_t k = (size_t)fl * s->nseq + q;

			if (!s->count[k])
				continue;
			if (s->ts[k] < last) {
				if (!bad++)
					snprintf(why, why_len,
						 "flow %u: seq %llu stamped %llu ns before seq %llu",
						 fl, (unsigned long long)q,
						 (unsigned long long)(last - s->ts[k]),
						 (unsigned long long)lastq);
				break;
			}
			last = s->ts[k];
			lastq = q;
		}
	}
	return bad;
}

#endif /* PKTRING_LIB_H */
