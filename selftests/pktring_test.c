// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests, on the kselftest harness.
 *
 * Run in the qemu test guest (selftests/guest/run_tests.sh runs each test on
 * its own and watches the kernel log). Traffic comes from the host through
 * `pktring-traffic`; every capture is IPv4, PRE_ROUTING, on eth0, so counts
 * are exact. Tests that need traffic skip without the test network; the whole
 * program skips (exit 4) without /dev/pktring.
 *
 * Fixtures, in the order they run:
 *	ring		per ring geometry (variants small, large, odd): info,
 *			set-up twice, mmap rules, receive, snaplen, frame
 *			truncation, ring full, poll, epoll
 *	validation	request matrix, largest ring, ioctl numbers, bad
 *			pointers, set-up racing mmap and close
 *	traffic		spread over CPUs/queues, hooks and filters, frames
 *			too small for the packet, hostile consumer,
 *			libpcap-style reader (the producer race)
 *	lifecycle	close/munmap during traffic, mapping after close,
 *			1000 set-up cycles, several rings at once, deleting
 *			the device of an INGRESS ring
 *	module		rmmod refused while in use, then unload and reload
 *
 * Counts are exact because the tests never let the ring overflow unless they
 * mean to (bursts no larger than the free frames, one host request each) and
 * wait for the guest's UDP counters, which move only after the hooks ran.
 *
 * Environment: PKTRING_VERBOSE=1 prints the host traffic generator's output;
 * PKTRING_MODULE is the module file the last test reloads (default
 * /lib/modules/rust_pktring.ko).
 */
#include "pktring_lib.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"	/* its SIGALRM handler */
#include "kselftest_harness.h"
#pragma GCC diagnostic pop
/*
 * The harness's TEST_F() wrappers keep a local (child) across setjmp(); GCC
 * warns about it wherever a test body is inlined into its wrapper. It is the
 * harness's variable, not ours.
 */
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wclobbered"
#endif

#define NO_DEVICE_MSG	PKTRING_DEV " is absent (load rust_pktring.ko)"

#define REQUIRE_DEVICE() do { \
		if (access(PKTRING_DEV, F_OK)) \
			SKIP(return, NO_DEVICE_MSG); \
	} while (0)

#define REQUIRE_TRAFFIC() do { \
		const char *why_ = traffic_unavailable(); \
		if (why_) \
			SKIP(return, "%s", why_); \
	} while (0)

/* Long enough for a slow TCG guest: one host request takes ~0.15 s. */
#define FRAME_TIMEOUT_MS	10000
#define UDP_TIMEOUT_MS		60000

/* Reports a bad frame; the first few in full. */
#define REPORT_BAD(nbad, why) do { \
		if ((nbad) <= 5) \
			TH_LOG("%s", why); \
	} while (0)

static const char *errname(int err)
{
	return err ? strerror(err < 0 ? -err : err) : "success";
}

/*
 * Sends count packets over flows flows (flow numbers from flow_base) and
 * waits until the guest's UDP has taken them in, i.e. every hook ran for
 * them. Returns the packets UDP saw (count unless something is lost).
 */
static long long send_and_settle(struct __test_metadata *_metadata, uint16_t dport,
				 unsigned int flows, unsigned int count, unsigned int size,
				 unsigned int flow_base)
{
	long long base = udp_rx_total(), got;
	long drops = -1;
	int rc;

	rc = traffic_run(&drops, "udp --dst " GUEST_IP4 " --dport %u --flows %u --count %u --size %u --flow-base %u",
			 dport, flows, count, size, flow_base);
	EXPECT_EQ(0, rc);
	got = wait_udp(base, count, UDP_TIMEOUT_MS);
	if (got != count)
		TH_LOG("UDP took in %lld of %u packets (host tx_dropped +%ld)", got, count, drops);
	return got;
}

/* ================================================================== */
/* ring: one geometry per variant                                      */

FIXTURE(ring) {
	struct ring r;
	struct pktring_req req;
};

FIXTURE_VARIANT(ring) {
	uint32_t block_size;
	uint32_t block_nr;
	uint32_t frame_size;
	unsigned int rx_count;	/* packets for the receive test */
};

/* 2 frames per block, 128 frames. */
FIXTURE_VARIANT_ADD(ring, small) {
	.block_size = 4096, .block_nr = 64, .frame_size = 2048, .rx_count = 1000,
};

/*
 * 4 frames of 64 KiB. The receive test sends in bursts that fit the ring
 * (one host request each), so it sends fewer packets here.
 */
FIXTURE_VARIANT_ADD(ring, large) {
	.block_size = 65536, .block_nr = 4, .frame_size = 65536, .rx_count = 200,
};

/* 5 frames per block with a gap at each block's end, 160 frames. */
FIXTURE_VARIANT_ADD(ring, odd) {
	.block_size = 8192, .block_nr = 32, .frame_size = 1552, .rx_count = 1000,
};

FIXTURE_SETUP(ring)
{
	ring_init(&self->r);
	REQUIRE_DEVICE();
	req_init(&self->req, variant->block_size, variant->block_nr, variant->frame_size);
}

FIXTURE_TEARDOWN(ring)
{
	traffic_kill_all();
	ring_destroy(&self->r);
}

TEST_F_TIMEOUT(ring, info, 120)
{
	struct ring *r = &self->r;
	const struct pktring_info *info = &r->info;
	unsigned long nonzero = 0;
	size_t i;

	ASSERT_EQ(0, ring_create(r, &self->req));
	EXPECT_EQ(sizeof(struct pktring_info), info->size);
	EXPECT_EQ((uint32_t)PKTRING_VERSION, info->version);
	EXPECT_EQ((uint64_t)variant->block_size * variant->block_nr, info->mmap_size);
	EXPECT_EQ(variant->block_size, info->block_size);
	EXPECT_EQ(variant->block_nr, info->block_nr);
	EXPECT_EQ(variant->frame_size, info->frame_size);
	EXPECT_EQ(self->req.frame_nr, info->frame_nr);
	EXPECT_EQ(sizeof(struct pktring_frame), info->hdr_len);
	EXPECT_EQ(TPACKET_ALIGN(sizeof(struct tpacket2_hdr)), info->sll_offset);
	/* snaplen 0 asks for as much as fits: the module reports its maximum. */
	EXPECT_EQ((uint32_t)PKTRING_MAX_SNAPLEN, info->snaplen);
	for (i = 0; i < 5; i++)
		EXPECT_EQ(0u, info->reserved[i]);

	/* A new ring must not show user space anything but zeroes. */
	if (ring_count_user(r)) {
		TH_LOG("traffic arrived on an idle network; not checking the bytes");
		return;
	}
	for (i = 0; i < r->map_len; i++)
		nonzero += r->map[i] != 0;
	EXPECT_EQ(0u, nonzero) TH_LOG("%lu non-zero bytes in a new ring", nonzero);
}

TEST_F_TIMEOUT(ring, setup_twice, 120)
{
	struct pktring_info info2;
	struct pktring_req other;

	ASSERT_EQ(0, ring_create(&self->r, &self->req));
	EXPECT_EQ(-EBUSY, set_ring(self->r.fd, &self->req));
	req_init(&other, 4096, 1, 2048);
	EXPECT_EQ(-EBUSY, set_ring(self->r.fd, &other));
	/* The first ring is untouched. */
	ASSERT_EQ(0, ioctl(self->r.fd, PKTRING_IOC_GET_INFO, &info2));
	EXPECT_EQ(0, memcmp(&info2, &self->r.info, sizeof(info2)));
}

TEST_F_TIMEOUT(ring, mmap_rules, 120)
{
	struct ring *r = &self->r;
	size_t len, pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *m, *m2;
	uint8_t *last;
	int status;
	pid_t pid;

	ASSERT_EQ(0, ring_create(r, &self->req));
	len = r->map_len;
	m = r->map;

	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len - pg, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0));
	EXPECT_EQ(EINVAL, errno) TH_LOG("mmap one page short: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len + pg, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0));
	EXPECT_EQ(EINVAL, errno) TH_LOG("mmap one page long: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, pg));
	EXPECT_EQ(EINVAL, errno) TH_LOG("mmap at offset 1 page: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len - pg, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, pg));
	EXPECT_EQ(EINVAL, errno) TH_LOG("mmap of the tail at offset 1 page: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, r->fd, 0));
	EXPECT_EQ(EINVAL, errno) TH_LOG("MAP_PRIVATE: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_EXEC, MAP_SHARED, r->fd, 0));
	EXPECT_EQ(EPERM, errno) TH_LOG("PROT_EXEC: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED, r->fd, 0));
	EXPECT_EQ(EPERM, errno) TH_LOG("PROT_RWX: %s", strerror(errno));

	/* A good mapping can never become executable (VM_MAYEXEC is gone). */
	errno = 0;
	EXPECT_EQ(-1, mprotect(m, len, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect(PROT_EXEC): %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(-1, mprotect(m, pg, PROT_READ | PROT_WRITE | PROT_EXEC));
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect(PROT_RWX) of a page: %s", strerror(errno));
	EXPECT_EQ(0, mprotect(m, len, PROT_READ));
	EXPECT_EQ(0, mprotect(m, len, PROT_READ | PROT_WRITE));

	/* Nor grow. */
	EXPECT_EQ(MAP_FAILED, mremap(m, len, len + pg, 0));
	EXPECT_EQ(MAP_FAILED, mremap(m, len, len + pg, MREMAP_MAYMOVE));

	/* A second mapping shows the same memory. */
	m2 = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	ASSERT_NE(MAP_FAILED, m2) TH_LOG("second mapping: %s", strerror(errno));
	last = m + frame_offset(r, r->info.frame_nr - 1) + r->info.frame_size - 1;
	*last = 0xa5;
	EXPECT_EQ(0xa5, m2[last - m]);
	*last = 0;
	EXPECT_EQ(0, munmap(m2, len));

	/* The mapping is not inherited by fork() (VM_DONTCOPY). */
	EXPECT_EQ(0, msync(m, len, MS_ASYNC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(msync(m, len, MS_ASYNC) == -1 && errno == ENOMEM ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("the ring mapping was inherited by a child");
}

/*
 * Basic receive: N packets of 300 bytes over 8 flows per burst, each burst
 * no more than the ring holds (one host request each), read in ring order.
 */
TEST_F_TIMEOUT(ring, receive, 600)
{
	const unsigned int size = 300, n = variant->rx_count, fpb_flows = 8;
	const uint16_t dport = 9001;
	struct ring *r = &self->r;
	unsigned int chunk, nchunks, done = 0, pos = 0, k, nbad = 0, ndup = 0, nlosing = 0;
	struct pollfd pfd;
	struct pktring_stats st;
	struct expect e;
	struct seen seen;
	char why[256];

	REQUIRE_TRAFFIC();
	ASSERT_EQ(0, ring_create(r, &self->req));
	expect_init(&e, dport, size);
	chunk = MIN(r->info.frame_nr, 250);
	nchunks = (n + chunk - 1) / chunk;
	ASSERT_EQ(0, seen_init(&seen, nchunks * fpb_flows, (chunk + fpb_flows - 1) / fpb_flows));

	for (k = 0; done < n; k++) {
		unsigned int cnt = MIN(chunk, n - done), flows = MIN(fpb_flows, cnt), j;
		long drops;

		ASSERT_EQ(0, traffic_run(&drops, "udp --dst " GUEST_IP4 " --dport %u --flows %u --count %u --size %u --flow-base %u",
					 dport, flows, cnt, size, k * fpb_flows));
		for (j = 0; j < cnt; j++, done++) {
			struct pktring_frame *f = ring_frame(r, pos);
			struct frame_info fi;
			uint32_t s = ring_wait_frame(r, pos, FRAME_TIMEOUT_MS, false);

			ASSERT_NE(0u, s) TH_LOG("burst %u: frame %u (packet %u of %u) never arrived (host tx_dropped +%ld)",
					   k, pos, done, n, drops);
			if (check_frame(r, pos, &e, &fi, why, sizeof(why))) {
				nbad++;
				REPORT_BAD(nbad, why);
			} else if (!fi.full) {
				nbad++;
				TH_LOG("frame %u: truncated (%u of %u bytes)", pos, fi.snaplen, fi.len);
			} else if (seen_mark(&seen, fi.flow, fi.seq, fi.ts_ns)) {
				ndup++;
				TH_LOG("frame %u: flow %u seq %llu duplicate or never sent", pos, fi.flow,
				       (unsigned long long)fi.seq);
			}
			nlosing += !!(s & TP_STATUS_LOSING);
			frame_release(f);
			pos = (pos + 1) % r->info.frame_nr;
		}
	}
	EXPECT_EQ(0u, nbad);
	EXPECT_EQ(0u, ndup);
	EXPECT_EQ(0u, nlosing) TH_LOG("TP_STATUS_LOSING without drops");
	EXPECT_EQ(0u, seen_ts_regressions(&seen, why, sizeof(why))) TH_LOG("%s", why);

	/* Nothing more. */
	pfd = (struct pollfd){ .fd = r->fd, .events = POLLIN };
	EXPECT_EQ(0, poll(&pfd, 1, 300));
	EXPECT_EQ(0u, ring_count_user(r));
	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(n, st.packets);
	EXPECT_EQ(0u, st.drops);
	seen_free(&seen);
}

/*
 * count packets of size bytes into a ring with the given snaplen: every
 * frame holds min(tp_len, snaplen, frame room) bytes, tp_len is the full
 * length, and the frame is zero past what was copied (first lap).
 */
static void snap_test(struct __test_metadata *_metadata, struct ring *r, struct pktring_req *req,
		      uint32_t snaplen, unsigned int size, unsigned int count, uint16_t dport)
{
	unsigned int i, nbad = 0, dirty = 0, truncated = 0;
	struct pktring_stats st;
	struct expect e;
	char why[256];

	req->snaplen = snaplen;
	ASSERT_EQ(0, ring_create(r, req));
	EXPECT_EQ(snaplen ? snaplen : PKTRING_MAX_SNAPLEN, r->info.snaplen);
	expect_init(&e, dport, size);
	count = MIN(count, r->info.frame_nr);
	ASSERT_EQ(count, send_and_settle(_metadata, dport, 4, count, size, 0));
	for (i = 0; i < count; i++) {
		const uint8_t *fb = (const uint8_t *)ring_frame(r, i);
		struct frame_info fi;
		uint32_t k;

		ASSERT_NE(0u, ring_wait_frame(r, i, FRAME_TIMEOUT_MS, false));
		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
			continue;
		}
		truncated += fi.snaplen < fi.len;
		for (k = EXP_TP_MAC + fi.snaplen; k < r->info.frame_size; k++) {
			if (fb[k]) {
				if (!dirty++)
					TH_LOG("frame %u: byte %u past the %u copied is %#x", i, k,
					       fi.snaplen, fb[k]);
				break;
			}
		}
	}
	EXPECT_EQ(0u, nbad);
	EXPECT_EQ(0u, dirty);
	if (snaplen && snaplen < UDP4_HDRS + size)
		EXPECT_EQ(count, truncated);
	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(count, st.packets);
	EXPECT_EQ(0u, st.drops);
}

TEST_F_TIMEOUT(ring, snaplen, 120)
{
	REQUIRE_TRAFFIC();
	snap_test(_metadata, &self->r, &self->req, 64, 300, 64, 9002);
}

/* Full-size packets: truncated to the frame where it is too small (odd). */
TEST_F_TIMEOUT(ring, frame_trunc, 120)
{
	REQUIRE_TRAFFIC();
	snap_test(_metadata, &self->r, &self->req, 0, 1472, 32, 9003);
}

/*
 * Ring full: nobody releases; frame_nr + 500 packets fill every frame and
 * drop 500. TP_STATUS_LOSING marks frames filled while drops are unread.
 */
TEST_F_TIMEOUT(ring, ring_full, 300)
{
	const uint16_t dport = 9004;
	const unsigned int extra = 500, size = 100;
	struct ring *r = &self->r;
	unsigned int i, fnr, kk, nbad = 0, nlosing = 0;
	struct pktring_stats st;
	struct expect e;
	char why[256];

	REQUIRE_TRAFFIC();
	ASSERT_EQ(0, ring_create(r, &self->req));
	fnr = r->info.frame_nr;
	expect_init(&e, dport, size);

	ASSERT_EQ(fnr + extra, send_and_settle(_metadata, dport, 8, fnr + extra, size, 0));
	EXPECT_EQ(fnr, ring_count_user(r));
	for (i = 0; i < fnr; i++) {
		struct frame_info fi;

		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
		}
		/* Every frame was filled before the first drop. */
		nlosing += !!(fi.status & TP_STATUS_LOSING);
	}
	EXPECT_EQ(0u, nbad);
	EXPECT_EQ(0u, nlosing) TH_LOG("TP_STATUS_LOSING on frames filled before any drop");

	/* Hand everything back without reading the stats: the next frames are LOSING. */
	kk = MAX(1u, MIN(fnr / 2, 16u));
	for (i = 0; i < fnr; i++)
		frame_release(ring_frame(r, i));
	ASSERT_EQ(kk, send_and_settle(_metadata, dport, 1, kk, size, 100));
	EXPECT_EQ(kk, ring_count_user(r));
	for (i = 0; i < kk; i++) {
		struct frame_info fi;

		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
		}
		EXPECT_TRUE(!!(fi.status & TP_STATUS_LOSING))
			TH_LOG("frame %u filled after 500 unread drops has status %#x", i, fi.status);
	}
	EXPECT_EQ(0u, nbad);

	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(fnr + extra + kk, st.packets);
	EXPECT_EQ(extra, st.drops);
	/* Reading cleared them. */
	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(0u, st.packets);
	EXPECT_EQ(0u, st.drops);

	/* With the drops read, new frames are not LOSING. */
	ASSERT_EQ(kk, send_and_settle(_metadata, dport, 1, kk, size, 101));
	for (i = kk; i < 2 * kk; i++) {
		struct frame_info fi;

		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
		}
		EXPECT_FALSE(!!(fi.status & TP_STATUS_LOSING))
			TH_LOG("frame %u has TP_STATUS_LOSING after the drops were read", i);
	}
	EXPECT_EQ(0u, nbad);
	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(kk, st.packets);
	EXPECT_EQ(0u, st.drops);
}

/*
 * A consumer blocked in poll() or epoll_wait() wakes for every burst: 50
 * bursts of up to 20 packets (no more than the ring holds), drained after
 * each wake-up, each wait at most 5 s.
 */
static void wake_test(struct __test_metadata *_metadata, struct ring *r,
		      const struct pktring_req *req, bool use_epoll, uint16_t dport)
{
	const unsigned int bursts = 50, timeout_ms = 5000;
	unsigned int burst, k, pos = 0, total = 0, nbad = 0, wakes = 0;
	struct epoll_event ev = { .events = EPOLLIN };
	struct pollfd pfd;
	struct pktring_stats st;
	struct expect e;
	char why[256];
	int ep = -1, n;

	ASSERT_EQ(0, ring_create(r, req));
	burst = MIN(20u, r->info.frame_nr);
	expect_init(&e, dport, 100);
	pfd = (struct pollfd){ .fd = r->fd, .events = POLLIN };
	if (use_epoll) {
		ep = epoll_create1(EPOLL_CLOEXEC);
		ASSERT_LE(0, ep);
		ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &ev));
	}

	/* Nothing ready: a wait times out with no events. */
	n = use_epoll ? epoll_wait(ep, &ev, 1, 200) : poll(&pfd, 1, 200);
	EXPECT_EQ(0, n);

	for (k = 0; k < bursts; k++) {
		unsigned int got = 0;
		struct traffic t;
		long drops;

		ASSERT_EQ(0, traffic_start(&t, "udp --dst " GUEST_IP4 " --dport %u --flows 4 --count %u --size 100 --flow-base %u",
					   dport, burst, k * 4));
		while (got < burst) {
			if (use_epoll) {
				n = epoll_wait(ep, &ev, 1, timeout_ms);
				if (n == 1 && !(ev.events & EPOLLIN))
					n = -2;
			} else {
				n = poll(&pfd, 1, timeout_ms);
				if (n == 1 && !(pfd.revents & POLLIN))
					n = -2;
			}
			if (n <= 0)
				traffic_wait(&t, &drops);
			ASSERT_LT(0, n) TH_LOG("burst %u: %s returned %d after %u of %u frames (%s; host tx_dropped +%ld)",
					       k, use_epoll ? "epoll_wait" : "poll", n, got, burst,
					       n == 0 ? "timed out" : n == -2 ? "no POLLIN" : strerror(errno),
					       drops);
			wakes++;
			/* Drain whatever is ready, in ring order. */
			while (got < burst) {
				struct pktring_frame *f = ring_frame(r, pos);
				struct frame_info fi;

				if (!(frame_status(f) & TP_STATUS_USER))
					break;
				if (check_frame(r, pos, &e, &fi, why, sizeof(why))) {
					nbad++;
					REPORT_BAD(nbad, why);
				}
				frame_release(f);
				pos = (pos + 1) % r->info.frame_nr;
				got++;
			}
			/* Ready but the frame at pos is still being filled: let it finish. */
			if (got < burst && (frame_status(ring_frame(r, pos)) & TP_STATUS_USER) == 0)
				usleep(100);
		}
		EXPECT_EQ(0, traffic_wait(&t, &drops));
		total += got;
	}
	EXPECT_EQ(bursts * burst, total);
	EXPECT_EQ(0u, nbad);
	diag("%u frames in %u bursts, %u wake-ups", total, bursts, wakes);

	/* Drained: waiting again times out. */
	n = use_epoll ? epoll_wait(ep, &ev, 1, 200) : poll(&pfd, 1, 200);
	EXPECT_EQ(0, n);
	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(total, st.packets);
	EXPECT_EQ(0u, st.drops);
	if (ep >= 0)
		close(ep);
}

TEST_F_TIMEOUT(ring, poll, 300)
{
	REQUIRE_TRAFFIC();
	wake_test(_metadata, &self->r, &self->req, false, 9005);
}

TEST_F_TIMEOUT(ring, epoll, 300)
{
	REQUIRE_TRAFFIC();
	wake_test(_metadata, &self->r, &self->req, true, 9006);
}

/* ================================================================== */
/* validation: requests, ioctls, pointers, races                       */

FIXTURE(validation) {
	int fd;
};

FIXTURE_SETUP(validation)
{
	self->fd = -1;
	REQUIRE_DEVICE();
	self->fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", PKTRING_DEV, strerror(errno));
}

FIXTURE_TEARDOWN(validation)
{
	if (self->fd >= 0)
		close(self->fd);
}

struct req_case {
	const char *name;
	int err;			/* expected errno, 0 for success */
	void (*edit)(struct pktring_req *req);
};

/* The base request: small ring, IPv4 PRE_ROUTING on any device. */
static void base_req(struct pktring_req *req)
{
	req_init(req, 4096, 4, 2048);
	req->ifindex = 0;
}

static int ingress_ifindex(void)
{
	return test_ifindex() ?: 1;	/* eth0, or lo outside the guest */
}

/*
 * The request matrix: X(name, errno, edits of the base request). Every
 * rejected request is followed by a valid one on the same file, which must
 * succeed: a rejected request leaves nothing behind.
 */
#define REQ_CASES(X) \
	X(valid_base, 0, ) \
	X(valid_1_frame_per_block, 0, req_init(req, 4096, 4, 4096); req->ifindex = 0) \
	X(valid_5_frames_per_block, 0, req_init(req, 8192, 2, 1552); req->ifindex = 0) \
	X(valid_64k_frames, 0, req_init(req, 65536, 2, 65536); req->ifindex = 0) \
	X(valid_64_byte_frames, 0, req_init(req, 4096, 4, 64); req->ifindex = 0) \
	X(valid_family_both, 0, req->family = PKTRING_FAMILY_BOTH) \
	X(valid_family_ipv6, 0, req->family = PKTRING_FAMILY_IPV6) \
	X(valid_local_in, 0, req->hook = PKTRING_HOOK_LOCAL_IN) \
	X(valid_ingress, 0, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = ingress_ifindex()) \
	X(valid_ifindex, 0, req->ifindex = ingress_ifindex()) \
	X(valid_snaplen_1, 0, req->snaplen = 1) \
	X(valid_snaplen_max, 0, req->snaplen = PKTRING_MAX_SNAPLEN) \
	X(valid_priority_negative, 0, req->priority = -1000) \
	X(size_0, EINVAL, req->size = 0) \
	X(size_55, EINVAL, req->size = sizeof(*req) - 1) \
	X(size_57, EINVAL, req->size = sizeof(*req) + 1) \
	X(size_64, EINVAL, req->size = 64) \
	X(version_0, EINVAL, req->version = 0) \
	X(version_2, EINVAL, req->version = 2) \
	X(reserved_0, EINVAL, req->reserved[0] = 1) \
	X(reserved_1, EINVAL, req->reserved[1] = 1) \
	X(reserved_2, EINVAL, req->reserved[2] = 1) \
	X(reserved_3, EINVAL, req->reserved[3] = 0x80000000u) \
	X(block_size_0, EINVAL, req->block_size = 0) \
	X(block_size_half_page, EINVAL, req_init(req, 2048, 4, 2048); req->ifindex = 0) \
	X(block_size_1_5_pages, EINVAL, req_init(req, 6144, 4, 2048); req->ifindex = 0) \
	X(block_size_over_int_max, EINVAL, req_init(req, 0x80000000u, 1, 1u << 20); req->ifindex = 0) \
	X(block_size_max_u32_page, EINVAL, req_init(req, 0xfffff000u, 1, 0xfffff000u); req->ifindex = 0) \
	X(frame_size_0, EINVAL, req->frame_size = 0) \
	X(frame_size_48, EINVAL, req_init(req, 4096, 4, 48); req->ifindex = 0) \
	X(frame_size_52_unaligned, EINVAL, req_init(req, 4096, 4, 52); req->ifindex = 0) \
	X(frame_size_1000_unaligned, EINVAL, req_init(req, 4096, 4, 1000); req->ifindex = 0) \
	X(frame_size_2056_unaligned, EINVAL, req_init(req, 4096, 4, 2056); req->ifindex = 0) \
	X(frame_size_over_block, EINVAL, req->frame_size = 8192; req->frame_nr = 4) \
	X(block_nr_0, EINVAL, req->block_nr = 0; req->frame_nr = 0) \
	X(block_nr_0_frame_nr_8, EINVAL, req->block_nr = 0) \
	X(frame_nr_0, EINVAL, req->frame_nr = 0) \
	X(frame_nr_minus_1, EINVAL, req->frame_nr--) \
	X(frame_nr_plus_1, EINVAL, req->frame_nr++) \
	X(frame_nr_huge, EINVAL, req->frame_nr = 0xffffffffu) \
	/* CVE-2017-7308: 64 frames per block * 0x04000001 blocks wraps to 64. */ \
	X(frame_count_wraps_to_64, EINVAL, req_init(req, 4096, 1, 64); req->ifindex = 0; \
	  req->block_nr = 0x04000001u; req->frame_nr = 64) \
	X(frame_count_wraps_to_0, EINVAL, req_init(req, 4096, 1, 64); req->ifindex = 0; \
	  req->block_nr = 0x04000000u; req->frame_nr = 0) \
	X(ring_max_plus_1_page, EINVAL, req_init(req, 4096, (PKTRING_MAX_RING_BYTES >> 12) + 1, 4096); \
	  req->ifindex = 0) \
	X(ring_1_gib, EINVAL, req_init(req, 1u << 30, 1, 1u << 20); req->ifindex = 0) \
	X(snaplen_max_plus_1, EINVAL, req->snaplen = PKTRING_MAX_SNAPLEN + 1) \
	X(snaplen_u32_max, EINVAL, req->snaplen = 0xffffffffu) \
	X(family_0, EINVAL, req->family = 0) \
	X(family_4, EINVAL, req->family = 4) \
	X(family_0xffff, EINVAL, req->family = 0xffff) \
	X(hook_3, EINVAL, req->hook = 3) \
	X(hook_0xffff, EINVAL, req->hook = 0xffff) \
	X(ingress_ifindex_0, EINVAL, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = 0) \
	X(ingress_ifindex_negative, EINVAL, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = -1) \
	X(ifindex_negative, EINVAL, req->ifindex = -1) \
	X(ifindex_int_min, EINVAL, req->ifindex = -2147483647 - 1) \
	X(local_in_ifindex_negative, EINVAL, req->hook = PKTRING_HOOK_LOCAL_IN; req->ifindex = -5) \
	X(ingress_no_such_device, ENODEV, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = 0x7ffffff0)

#define REQ_EDIT_FN(id, errno_, ...) \
	static void edit_##id(struct pktring_req *req) { (void)req; __VA_ARGS__; }
REQ_CASES(REQ_EDIT_FN)

static const struct req_case req_cases[] = {
#define REQ_ENTRY(id, errno_, ...) { #id, errno_, edit_##id },
	REQ_CASES(REQ_ENTRY)
#undef REQ_ENTRY
};

TEST_F_TIMEOUT(validation, requests, 120)
{
	unsigned int i, failed = 0;

	for (i = 0; i < ARRAY_SIZE(req_cases); i++) {
		const struct req_case *c = &req_cases[i];
		struct pktring_req req, good;
		int fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC), rc, rc2 = 0;

		ASSERT_LE(0, fd);
		base_req(&req);
		c->edit(&req);
		rc = set_ring(fd, &req);
		if (rc && !c->err) {
			/* nothing */
		} else if (rc) {
			/* A rejected request leaves the file as it was. */
			base_req(&good);
			rc2 = set_ring(fd, &good);
		}
		close(fd);
		if (rc == -c->err && !rc2) {
			diag("ok   %-28s %s", c->name, c->err ? errname(c->err) : "accepted");
		} else {
			failed++;
			diag("FAIL %-28s got %s, want %s%s%s", c->name, errname(rc), errname(c->err),
			     rc2 ? "; then a valid request failed: " : "", rc2 ? errname(rc2) : "");
		}
	}
	EXPECT_EQ(0u, failed) TH_LOG("%u of %zu request cases failed", failed, ARRAY_SIZE(req_cases));
}

/* A ring of exactly PKTRING_MAX_RING_BYTES is allowed, and mappable. */
TEST_F_TIMEOUT(validation, max_ring, 120)
{
	struct pktring_req req;
	struct ring r;
	int ret;

	req_init(&req, 1 << 20, PKTRING_MAX_RING_BYTES >> 20, 1 << 20);
	ret = ring_create(&r, &req);
	ASSERT_EQ(0, ret) TH_LOG("%u MiB ring: %s", PKTRING_MAX_RING_BYTES >> 20, errname(ret));
	EXPECT_EQ(PKTRING_MAX_RING_BYTES, r.info.mmap_size);
	EXPECT_EQ(0, r.map[0]);
	EXPECT_EQ(0, r.map[r.map_len - 1]);
	r.map[r.map_len - 1] = 1;
	ring_destroy(&r);
}

TEST_F_TIMEOUT(validation, ioctls, 120)
{
	static const struct {
		const char *name;
		unsigned long cmd;
	} bad[] = {
		{ "_IO(0xB9, 99)", _IO(PKTRING_IOC_MAGIC, 99) },
		{ "_IO(0xB9, 0)", _IO(PKTRING_IOC_MAGIC, 0) },
		{ "_IO(0xB9, 1)", _IO(PKTRING_IOC_MAGIC, 1) },
		{ "SET_RING, size 55", _IOW(PKTRING_IOC_MAGIC, 1, char[55]) },
		{ "SET_RING, size 60", _IOW(PKTRING_IOC_MAGIC, 1, char[60]) },
		{ "SET_RING as _IOR", _IOR(PKTRING_IOC_MAGIC, 1, struct pktring_req) },
		{ "SET_RING as _IOWR", _IOWR(PKTRING_IOC_MAGIC, 1, struct pktring_req) },
		{ "GET_INFO, size 60", _IOR(PKTRING_IOC_MAGIC, 2, char[60]) },
		{ "GET_INFO as _IOW", _IOW(PKTRING_IOC_MAGIC, 2, struct pktring_info) },
		{ "GET_STATS, size 8", _IOR(PKTRING_IOC_MAGIC, 3, char[8]) },
		{ "GET_STATS as _IOWR", _IOWR(PKTRING_IOC_MAGIC, 3, struct pktring_stats) },
		{ "GET_STATS, magic 0xBA", _IOR(0xBA, 3, struct pktring_stats) },
		{ "number 4", _IOR(PKTRING_IOC_MAGIC, 4, struct pktring_stats) },
		{ "FIONREAD", FIONREAD },
		{ "0", 0 },
	};
	struct pktring_info info;
	struct pktring_stats st;
	struct pktring_req req;
	union {
		uint8_t raw[256];
		struct pktring_req req;
	} buf;
	unsigned int i, pass;
	struct pollfd pfd;

	/* Before set-up. */
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, PKTRING_IOC_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno) TH_LOG("GET_INFO before set-up: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, PKTRING_IOC_GET_STATS, &st));
	EXPECT_EQ(EINVAL, errno) TH_LOG("GET_STATS before set-up: %s", strerror(errno));
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0));
	EXPECT_EQ(EINVAL, errno) TH_LOG("mmap before set-up: %s", strerror(errno));
	pfd = (struct pollfd){ .fd = self->fd, .events = POLLIN };
	EXPECT_EQ(0, poll(&pfd, 1, 50)) TH_LOG("poll before set-up: revents %#x", pfd.revents);

	/* Unknown commands, before and after set-up; a valid request in the buffer. */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			memset(&buf, 0, sizeof(buf));
			base_req(&buf.req);
			errno = 0;
			EXPECT_EQ(-1, ioctl(self->fd, bad[i].cmd, &buf));
			EXPECT_EQ(ENOTTY, errno)
				TH_LOG("%s %s set-up: %s", bad[i].name, pass ? "after" : "before",
				       strerror(errno));
		}
		if (!pass) {
			base_req(&req);
			ASSERT_EQ(0, set_ring(self->fd, &req))
				TH_LOG("none of the unknown commands may have set the ring up");
		}
	}
	EXPECT_EQ(0, ioctl(self->fd, PKTRING_IOC_GET_INFO, &info));
	EXPECT_EQ(0, ioctl(self->fd, PKTRING_IOC_GET_STATS, &st));
}

TEST_F_TIMEOUT(validation, bad_pointers, 120)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct pktring_req req;
	struct pktring_info info;
	uint8_t *two, *ro;
	void *gone, *cross_req, *cross_info, *cross_stats;
	unsigned int i;
	void *ptrs[6];
	const char *names[6] = { "NULL", "(void *)1", "an unmapped page", "a kernel address",
				 "a struct crossing into an unmapped page", "a read-only page" };

	/*
	 * One reservation, so nothing else lands in its holes: page 0
	 * read-write, page 1 unmapped, page 2 read-only, page 3 unmapped.
	 */
	two = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, munmap(two + pg, pg));
	ASSERT_EQ(0, munmap(two + 3 * pg, pg));
	ro = two + 2 * pg;
	ASSERT_EQ(0, mprotect(ro, pg, PROT_READ));
	gone = two + 3 * pg;

	/* A valid request whose last bytes are on the unmapped page. */
	base_req(&req);
	cross_req = two + pg - sizeof(req) + 8;
	memcpy(cross_req, &req, sizeof(req) - 8);
	cross_info = two + pg - sizeof(struct pktring_info) + 8;
	cross_stats = two + pg - sizeof(struct pktring_stats) + 8;

	ptrs[0] = NULL;
	ptrs[1] = (void *)1;
	ptrs[2] = gone;
	ptrs[3] = (void *)0xffff888000000000ul;
	for (i = 0; i < 4; i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, PKTRING_IOC_SET_RING, ptrs[i]));
		EXPECT_EQ(EFAULT, errno) TH_LOG("SET_RING from %s: %s", names[i], strerror(errno));
	}
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, PKTRING_IOC_SET_RING, cross_req));
	EXPECT_EQ(EFAULT, errno) TH_LOG("SET_RING from %s: %s", names[4], strerror(errno));

	/* None of that set anything up. */
	ASSERT_EQ(0, set_ring(self->fd, &req));

	ptrs[4] = NULL;
	ptrs[5] = ro;
	for (i = 0; i < 6; i++) {
		void *pi = i == 4 ? cross_info : ptrs[i];
		void *ps = i == 4 ? cross_stats : ptrs[i];

		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, PKTRING_IOC_GET_INFO, pi));
		EXPECT_EQ(EFAULT, errno) TH_LOG("GET_INFO to %s: %s", names[i], strerror(errno));
		errno = 0;
		EXPECT_EQ(-1, ioctl(self->fd, PKTRING_IOC_GET_STATS, ps));
		EXPECT_EQ(EFAULT, errno) TH_LOG("GET_STATS to %s: %s", names[i], strerror(errno));
	}
	/* The file still works. */
	EXPECT_EQ(0, ioctl(self->fd, PKTRING_IOC_GET_INFO, &info));
	EXPECT_EQ(4u * 4096, info.mmap_size);
	munmap(two, pg);
	munmap(ro, pg);
}

/*
 * LTP setsockopt06/07-style: two threads set the ring up, one maps and
 * unmaps it, and (every other round) one closes the file, all at once.
 * Nothing may crash; every call succeeds or fails with an errno from the
 * list; without a close exactly one set-up wins.
 */
struct race {
	pthread_barrier_t bar;
	int fd;
	bool do_close;
	struct pktring_req req;
	size_t len;
	int setup_rc[2];
	int mmap_ok, mmap_err;
	int close_rc;
	volatile int setups_done;
};

struct race_arg {
	struct race *rc;
	int idx;
};

static void *race_setup_thread(void *p)
{
	struct race_arg *a = p;
	struct race *rc = a->rc;

	pthread_barrier_wait(&rc->bar);
	rc->setup_rc[a->idx] = set_ring(rc->fd, &rc->req);
	__atomic_fetch_add(&rc->setups_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *race_mmap_thread(void *p)
{
	struct race *rc = p;
	unsigned int tries;

	pthread_barrier_wait(&rc->bar);
	for (tries = 0; tries < 100000; tries++) {
		void *m = mmap(NULL, rc->len, PROT_READ | PROT_WRITE, MAP_SHARED, rc->fd, 0);

		if (m != MAP_FAILED) {
			/* Touch it and give it back. */
			rc->mmap_ok += ((volatile uint8_t *)m)[rc->len - 1] == 0;
			munmap(m, rc->len);
			break;
		}
		rc->mmap_err = errno;
		if (errno != EINVAL)
			break;
		/* Not set up yet; stop trying once both set-ups are over. */
		if (__atomic_load_n(&rc->setups_done, __ATOMIC_ACQUIRE) == 2 && tries > 1)
			break;
		sched_yield();
	}
	return NULL;
}

static void *race_close_thread(void *p)
{
	struct race *rc = p;

	pthread_barrier_wait(&rc->bar);
	if (rand() & 1)
		sched_yield();
	rc->close_rc = close(rc->fd) ? errno : 0;
	return NULL;
}

TEST_F_TIMEOUT(validation, race_setup_mmap_close, 600)
{
	const unsigned int rounds = 200;
	unsigned int round, wins_total = 0, maps = 0, bad = 0;
	pthread_t th[4];
	struct race_arg args[2];
	struct race rc;

	srand(getpid());
	for (round = 0; round < rounds; round++) {
		unsigned int n = 0, wins = 0, i;

		memset(&rc, 0, sizeof(rc));
		rc.do_close = round & 1;
		req_init(&rc.req, 4096, 4, 2048);
		rc.req.ifindex = 0;
		rc.len = 4 * 4096;
		rc.fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, rc.fd);
		ASSERT_EQ(0, pthread_barrier_init(&rc.bar, NULL, rc.do_close ? 4 : 3));
		for (i = 0; i < 2; i++) {
			args[i] = (struct race_arg){ &rc, (int)i };
			ASSERT_EQ(0, pthread_create(&th[n++], NULL, race_setup_thread, &args[i]));
		}
		ASSERT_EQ(0, pthread_create(&th[n++], NULL, race_mmap_thread, &rc));
		if (rc.do_close)
			ASSERT_EQ(0, pthread_create(&th[n++], NULL, race_close_thread, &rc));
		for (i = 0; i < n; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&rc.bar);

		for (i = 0; i < 2; i++) {
			int e = -rc.setup_rc[i];

			wins += !e;
			if (e && e != EBUSY && !(rc.do_close && e == EBADF)) {
				if (!bad++)
					TH_LOG("round %u: SET_RING failed with %s", round, strerror(e));
			}
		}
		if (rc.mmap_err && rc.mmap_err != EINVAL && !(rc.do_close && rc.mmap_err == EBADF)) {
			if (!bad++)
				TH_LOG("round %u: mmap failed with %s", round, strerror(rc.mmap_err));
		}
		if (rc.do_close) {
			if (rc.close_rc && !bad++)
				TH_LOG("round %u: close failed with %s", round, strerror(rc.close_rc));
			if (wins > 1 && !bad++)
				TH_LOG("round %u: both SET_RINGs succeeded", round);
		} else {
			if (wins != 1 && !bad++)
				TH_LOG("round %u: %u SET_RINGs succeeded, want exactly 1", round, wins);
			close(rc.fd);
		}
		wins_total += wins;
		maps += rc.mmap_ok;
	}
	diag("%u rounds: %u set-ups won, %u mappings made", rounds, wins_total, maps);
	EXPECT_EQ(0u, bad);
	EXPECT_LE(rounds / 2, wins_total);
}

/* ================================================================== */
/* traffic: one ring geometry per test                                 */

FIXTURE(traffic) {
	struct ring r[4];
};

FIXTURE_SETUP(traffic)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->r); i++)
		ring_init(&self->r[i]);
	REQUIRE_DEVICE();
	REQUIRE_TRAFFIC();
}

FIXTURE_TEARDOWN(traffic)
{
	unsigned int i;

	traffic_kill_all();
	for (i = 0; i < ARRAY_SIZE(self->r); i++)
		ring_destroy(&self->r[i]);
}

/* 4000 packets over 32 flows land on more than one CPU and RX queue. */
TEST_F_TIMEOUT(traffic, spread, 300)
{
	const unsigned int n = 4000, flows = 32, size = 64;
	const uint16_t dport = 9010;
	struct ring *r = &self->r[0];
	unsigned int i, nbad = 0, ncpu = 0, nq = 0, noq = 0, cpus[64] = { 0 }, queues[64] = { 0 };
	struct pktring_req req;
	struct pktring_stats st;
	struct expect e;
	struct seen seen;
	char why[256];

	/* 4096 frames of 256 bytes: the whole run fits. */
	req_init(&req, 4096, 256, 256);
	ASSERT_EQ(0, ring_create(r, &req));
	expect_init(&e, dport, size);
	ASSERT_EQ(0, seen_init(&seen, flows, n / flows + 1));
	ASSERT_EQ(n, send_and_settle(_metadata, dport, flows, n, size, 0));
	EXPECT_EQ(n, ring_count_user(r));
	for (i = 0; i < n; i++) {
		struct frame_info fi;

		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
			continue;
		}
		if (seen_mark(&seen, fi.flow, fi.seq, fi.ts_ns) && !nbad++)
			TH_LOG("frame %u: flow %u seq %llu twice", i, fi.flow, (unsigned long long)fi.seq);
		cpus[fi.cpu % 64]++;
		if (fi.rx_queue == PKTRING_NO_RX_QUEUE)
			noq++;
		else
			queues[fi.rx_queue % 64]++;
	}
	for (i = 0; i < 64; i++) {
		ncpu += !!cpus[i];
		nq += !!queues[i];
		if (cpus[i] || queues[i])
			diag("cpu %2u: %5u frames   rx queue %2u: %5u frames", i, cpus[i], i, queues[i]);
	}
	diag("%u CPUs, %u RX queues, %u frames without a queue", ncpu, nq, noq);
	EXPECT_EQ(0u, nbad);
	EXPECT_LE(2u, ncpu);
	EXPECT_LE(2u, nq);
	EXPECT_EQ(0u, noq) TH_LOG("virtio-net records the RX queue of every packet");
	EXPECT_EQ(0u, seen_ts_regressions(&seen, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(n, st.packets);
	EXPECT_EQ(0u, st.drops);
	seen_free(&seen);
}

/*
 * Hook points and filters, on the same 100 packets: PRE_ROUTING on any
 * device, LOCAL_IN and netdev INGRESS on eth0 see all of them; an IPv6-only
 * ring and a PRE_ROUTING ring on lo see none.
 */
TEST_F_TIMEOUT(traffic, hooks, 120)
{
	const unsigned int n = 100;
	const uint16_t dport = 9011;
	static const char *const names[4] = { "PRE_ROUTING, any device", "LOCAL_IN on eth0",
					      "INGRESS on eth0", "IPv6 PRE_ROUTING on eth0" };
	unsigned int want[4] = { n, n, n, 0 }, i, j, nbad = 0;
	struct pktring_req req;
	struct pktring_stats st;
	struct expect e;
	char why[256];

	for (i = 0; i < 4; i++) {
		req_init(&req, 4096, 64, 2048);
		switch (i) {
		case 0: req.ifindex = 0; break;
		case 1: req.hook = PKTRING_HOOK_LOCAL_IN; break;
		case 2: req.hook = PKTRING_HOOK_INGRESS; break;
		case 3: req.family = PKTRING_FAMILY_IPV6; break;
		}
		ASSERT_EQ(0, ring_create(&self->r[i], &req)) TH_LOG("%s", names[i]);
	}
	expect_init(&e, dport, 200);
	ASSERT_EQ(n, send_and_settle(_metadata, dport, 4, n, 200, 0));
	for (i = 0; i < 4; i++) {
		struct ring *r = &self->r[i];

		EXPECT_EQ(want[i], ring_count_user(r)) TH_LOG("%s", names[i]);
		for (j = 0; j < want[i]; j++) {
			struct frame_info fi;

			if (check_frame(r, j, &e, &fi, why, sizeof(why))) {
				nbad++;
				TH_LOG("%s: %s", names[i], why);
				break;
			}
		}
		ASSERT_EQ(0, get_stats(r, &st));
		EXPECT_EQ(want[i], st.packets) TH_LOG("%s", names[i]);
		EXPECT_EQ(0u, st.drops) TH_LOG("%s", names[i]);
	}
	EXPECT_EQ(0u, nbad);

	/* A ring on lo sees nothing of eth0's traffic. */
	ring_destroy(&self->r[0]);
	req_init(&req, 4096, 64, 2048);
	req.ifindex = 1;
	ASSERT_EQ(0, ring_create(&self->r[0], &req));
	ASSERT_EQ(20, send_and_settle(_metadata, dport, 4, 20, 200, 100));
	EXPECT_EQ(0u, ring_count_user(&self->r[0])) TH_LOG("a ring on lo captured eth0 packets");
	ASSERT_EQ(0, get_stats(&self->r[0], &st));
	EXPECT_EQ(0u, st.packets);
}

/*
 * Frames too small for the packet, at the edges of the module's arithmetic:
 * 64 bytes (no room for a MAC header at tp_mac 66: metadata only), 80
 * (exactly the Ethernet header), 96 and 112; and snaplen 1 in a big frame.
 * Every copy ends inside its frame, the rest of the frame stays zero, and
 * neighbouring frames (packed 64 to 256 per block) are intact.
 */
TEST_F_TIMEOUT(traffic, tiny_frames, 120)
{
	static const uint32_t fsz[4] = { 64, 80, 96, 2048 };
	const unsigned int n = 40, size = 100;
	const uint16_t dport = 9013;
	unsigned int i, j, nbad = 0;
	struct pktring_req req;
	struct pktring_stats st;
	uint8_t mac[6] = { 0 };

	test_if_mac(mac);
	for (i = 0; i < 4; i++) {
		req_init(&req, 4096, 2, fsz[i]);
		if (i == 3)
			req.snaplen = 1;
		ASSERT_EQ(0, ring_create(&self->r[i], &req)) TH_LOG("frame size %u", fsz[i]);
	}
	ASSERT_EQ(n, send_and_settle(_metadata, dport, 4, n, size, 0));
	for (i = 0; i < 4; i++) {
		struct ring *r = &self->r[i];
		uint32_t fs = r->info.frame_size;
		uint32_t want_snap = i == 3 ? 1 : fs < EXP_TP_NET ? 0 : MIN(fs - EXP_TP_MAC, UDP4_HDRS + size);

		EXPECT_EQ(MIN(n, r->info.frame_nr), ring_count_user(r)) TH_LOG("frame size %u", fs);
		for (j = 0; j < MIN(n, r->info.frame_nr); j++) {
			const struct pktring_frame *f = ring_frame(r, j);
			const uint8_t *fb = (const uint8_t *)f;
			const struct sockaddr_ll *sll = (const void *)(fb + r->info.sll_offset);
			uint32_t k, end;

			if (!(frame_status(f) & TP_STATUS_USER) || f->tp_len != UDP4_HDRS + size ||
			    f->tp_snaplen != want_snap || f->tp_mac + f->tp_snaplen > fs ||
			    (want_snap && (f->tp_mac != EXP_TP_MAC || f->tp_net != EXP_TP_NET)) ||
			    sll->sll_family != AF_PACKET || sll->sll_protocol != htons(ETH_P_IP) ||
			    sll->sll_ifindex != test_ifindex()) {
				if (nbad++ < 5)
					TH_LOG("frame size %u, frame %u: status %#x len %u snaplen %u mac %u net %u (want snaplen %u)",
					       fs, j, f->tp_status, f->tp_len, f->tp_snaplen, f->tp_mac,
					       f->tp_net, want_snap);
				continue;
			}
			/* What was copied is the packet; nothing after it in the frame. */
			if (memcmp(fb + f->tp_mac, mac, MIN(6u, f->tp_snaplen))) {
				if (nbad++ < 5)
					TH_LOG("frame size %u, frame %u: copied bytes are not the packet", fs, j);
				continue;
			}
			end = i == 3 ? 256 : fs;	/* the big frame: its first bytes will do */
			for (k = MAX(f->tp_mac + f->tp_snaplen, (uint32_t)TPACKET2_HDRLEN); k < end; k++) {
				if (fb[k]) {
					if (nbad++ < 5)
						TH_LOG("frame size %u, frame %u: byte %u written past the copy", fs, j, k);
					break;
				}
			}
		}
		ASSERT_EQ(0, get_stats(r, &st));
		EXPECT_EQ(n, st.packets) TH_LOG("frame size %u", fs);
		EXPECT_EQ(n > r->info.frame_nr ? n - r->info.frame_nr : 0, st.drops) TH_LOG("frame size %u", fs);
	}
	EXPECT_EQ(0u, nbad);
}

/* Writes random words over the whole mapping until told to stop. */
struct hostile {
	const struct ring *r;
	volatile bool stop;
	unsigned long writes;
};

static void *hostile_thread(void *p)
{
	struct hostile *h = p;
	const struct ring *r = h->r;
	uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	size_t words = r->map_len / 4;

	while (!h->stop) {
		unsigned int k;

		for (k = 0; k < 4096; k++) {
			uint32_t *w;
			uint32_t v;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			v = (uint32_t)(x >> 32);
			switch (x & 7) {
			case 0:	/* hand a random frame back */
				w = &ring_frame(r, (unsigned int)(x >> 8) % r->info.frame_nr)->tp_status;
				v = 0;
				break;
			case 1:	/* a random status */
				w = &ring_frame(r, (unsigned int)(x >> 8) % r->info.frame_nr)->tp_status;
				break;
			default: /* anywhere */
				w = (uint32_t *)r->map + (x >> 3) % words;
				break;
			}
			__atomic_store_n(w, v, __ATOMIC_RELAXED);
		}
		h->writes += 4096;
	}
	return NULL;
}

/*
 * A consumer that scribbles random values over the whole mapping (status
 * words, lengths, everything) while 20000 packets arrive must not hurt the
 * kernel; once it stops and resets every status, the ring works exactly.
 */
TEST_F_TIMEOUT(traffic, hostile, 600)
{
	const unsigned int n = 20000, chunks = 4, per_chunk = 125, size = 200;
	const uint16_t dport = 9012;
	struct ring *r = &self->r[0];
	struct hostile h = { 0 };
	struct pktring_req req;
	struct pktring_stats st;
	struct traffic t;
	struct expect e;
	struct seen seen;
	unsigned int i, k, total = 0, nbad = 0, polls = 0;
	long long base, got;
	uint64_t end;
	pthread_t th;
	long drops;
	char why[256];

	req_init(&req, 4096, 64, 2048);
	ASSERT_EQ(0, ring_create(r, &req));
	base = udp_rx_total();
	ASSERT_EQ(0, traffic_start(&t, "udp --dst " GUEST_IP4 " --dport %u --flows 16 --count %u --size %u --rate 7000",
				   dport, n, size));
	h.r = r;
	ASSERT_EQ(0, pthread_create(&th, NULL, hostile_thread, &h));
	/* Meanwhile, ask the kernel about the ring as usual. */
	end = mono_ms() + 3000;
	while (mono_ms() < end) {
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };

		EXPECT_EQ(0, get_stats(r, &st));
		EXPECT_LE(0, poll(&pfd, 1, 10));
		polls++;
	}
	h.stop = true;
	pthread_join(th, NULL);
	EXPECT_EQ(0, traffic_wait(&t, &drops));
	got = wait_udp(base, n, UDP_TIMEOUT_MS);
	diag("%lu random writes, %u polls, %lld packets during the scribbling", h.writes, polls, got);

	/* Reset: every frame back to the kernel, counters cleared. */
	for (i = 0; i < r->info.frame_nr; i++)
		frame_release(ring_frame(r, i));
	ASSERT_EQ(0, get_stats(r, &st));

	/* The kernel's head is somewhere: find the frames by scanning. */
	expect_init(&e, dport + 1, size);
	ASSERT_EQ(0, seen_init(&seen, chunks * 5, per_chunk / 5 + 1));
	for (k = 0; k < chunks; k++) {
		unsigned int found = 0;

		ASSERT_EQ(per_chunk, send_and_settle(_metadata, dport + 1, 5, per_chunk, size, k * 5));
		for (i = 0; i < r->info.frame_nr; i++) {
			struct pktring_frame *f = ring_frame(r, i);
			struct frame_info fi;

			if (!frame_status(f))
				continue;
			found++;
			if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
				nbad++;
				REPORT_BAD(nbad, why);
			} else if (seen_mark(&seen, fi.flow, fi.seq, fi.ts_ns)) {
				nbad++;
				TH_LOG("frame %u: flow %u seq %llu twice", i, fi.flow, (unsigned long long)fi.seq);
			}
			frame_release(f);
		}
		EXPECT_EQ(per_chunk, found) TH_LOG("chunk %u", k);
		total += found;
	}
	EXPECT_EQ(chunks * per_chunk, total);
	EXPECT_EQ(0u, nbad);
	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(chunks * per_chunk, st.packets);
	EXPECT_EQ(0u, st.drops);
	seen_free(&seen);
}

/*
 * A libpcap-style reader (any non-zero tp_status means ready) on a 16-frame
 * ring that the producers on all CPUs wrap all the time: every frame it
 * reads must be complete. This is the producer race af_packet fixed with
 * rx_owner_map (../shared/reference/upstream-commit-tpacket_rcv-producer-race.txt):
 * a slow producer still copying into a slot that a fast one claims again
 * after a lap, or that is published while another producer writes it.
 */
TEST_F_TIMEOUT(traffic, libpcap_reader, 900)
{
	static const unsigned int sizes[2] = { 64, 1400 };
	/* 60000 packets: the race shows in most runs of 20000 (without rx_owner_map). */
	const unsigned int runs = 24, per_run = 2500, flows = 16;
	const uint16_t dport = 9014;
	struct ring *r = &self->r[0];
	unsigned long good = 0, nbad = 0;
	unsigned int pos = 0, run;
	struct pktring_req req;
	struct pktring_stats st;
	struct expect e;
	struct seen seen;
	uint64_t quiet_since = 0;
	bool sender_done = false, settled = false;
	long long base;
	int status = 0;
	pid_t sender;
	char why[256];

	req_init(&req, 4096, 8, 2048);
	ASSERT_EQ(0, ring_create(r, &req));
	ASSERT_EQ(16u, r->info.frame_nr);
	expect_init(&e, dport, 0);
	ASSERT_EQ(0, seen_init(&seen, runs * flows, per_run / flows + 1));

	/* The host runs one request at a time: alternate the sizes. */
	base = udp_rx_total();
	fflush(stdout);
	fflush(stderr);
	sender = fork();
	ASSERT_LE(0, sender);
	if (!sender) {
		int rc = 0;

		for (run = 0; run < runs; run++)
			rc |= traffic_run(NULL, "udp --dst " GUEST_IP4 " --dport %u --flows %u --count %u --size %u --flow-base %u",
					  dport, flows, per_run, sizes[run & 1], run * flows);
		_exit(rc ? 1 : 0);
	}

	for (;;) {
		struct pktring_frame *f = ring_frame(r, pos);
		uint32_t s = frame_status(f);

		if (s) {
			struct frame_info fi;

			if (check_frame(r, pos, &e, &fi, why, sizeof(why))) {
				nbad++;
				REPORT_BAD(nbad, why);
			} else if (fi.len != UDP4_HDRS + sizes[0] && fi.len != UDP4_HDRS + sizes[1]) {
				nbad++;
				TH_LOG("frame %u: tp_len %u is no size that was sent", pos, fi.len);
			} else if (seen_mark(&seen, fi.flow, fi.seq, fi.ts_ns)) {
				nbad++;
				TH_LOG("frame %u: flow %u seq %llu read twice or never sent", pos, fi.flow,
				       (unsigned long long)fi.seq);
			} else {
				good++;
			}
			frame_release(f);
			pos = (pos + 1) % r->info.frame_nr;
			quiet_since = 0;
			continue;
		}
		if (!sender_done && waitpid(sender, &status, WNOHANG) == sender)
			sender_done = true;
		if (sender_done) {
			/* Done when UDP has all packets and the ring stays quiet. */
			settled = settled || udp_rx_total() - base >= (long long)runs * per_run;
			if (!quiet_since)
				quiet_since = mono_ms();
			else if (mono_ms() - quiet_since > (settled ? 300 : 5000))
				break;
		}
		{
			struct pollfd pfd = { .fd = r->fd, .events = POLLIN };

			poll(&pfd, 1, 20);
		}
	}
	ASSERT_EQ(0, get_stats(r, &st));
	diag("%lu good frames, %lu bad; kernel: %llu packets, %llu drops", good, nbad,
	     (unsigned long long)st.packets, (unsigned long long)st.drops);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("the sender failed");
	if (!settled)
		TH_LOG("UDP took in %lld of %u packets", udp_rx_total() - base, runs * per_run);
	EXPECT_EQ(0u, nbad);
	EXPECT_LT(0u, good);
	/* Every frame the kernel delivered was read exactly once. */
	EXPECT_EQ(st.packets - st.drops, good + nbad)
		TH_LOG("the kernel delivered %llu frames, the reader found %lu",
		       (unsigned long long)(st.packets - st.drops), good + nbad);
	EXPECT_EQ(0u, ring_count_user(r));
	seen_free(&seen);
}

/* ================================================================== */
/* module helpers (lifecycle and module)                              */

static const char *module_path(void)
{
	const char *p = getenv("PKTRING_MODULE");

	return p && *p ? p : "/lib/modules/" PKTRING_MODNAME ".ko";
}

static bool module_loaded(void)
{
	return !access("/sys/module/" PKTRING_MODNAME "/initstate", F_OK);
}

static int module_insert(void)
{
	int fd = open(module_path(), O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int module_remove(void)
{
	return syscall(SYS_delete_module, PKTRING_MODNAME, O_NONBLOCK) ? -errno : 0;
}

static int module_refcnt(void)
{
	FILE *f = fopen("/sys/module/" PKTRING_MODNAME "/refcnt", "r");
	int n = -1;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/* ================================================================== */
/* lifecycle                                                           */

FIXTURE(lifecycle) {
	struct ring r[3];
};

FIXTURE_SETUP(lifecycle)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->r); i++)
		ring_init(&self->r[i]);
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(lifecycle)
{
	unsigned int i;

	traffic_kill_all();
	for (i = 0; i < ARRAY_SIZE(self->r); i++)
		ring_destroy(&self->r[i]);
}

/* Waits (up to 10 s) for traffic to reach the guest's UDP. */
static bool traffic_flowing(long long base)
{
	return wait_udp(base, 1, 10000) >= 1;
}

/* Rings opened, filled a little and closed (or unmapped first) while packets flow. */
TEST_F_TIMEOUT(lifecycle, close_during_traffic, 300)
{
	const uint16_t dport = 9020;
	struct pktring_req req;
	unsigned int iters = 0, frames = 0;
	struct traffic t;
	long long base;
	uint64_t end;
	long drops;

	REQUIRE_TRAFFIC();
	req_init(&req, 4096, 8, 2048);
	base = udp_rx_total();
	ASSERT_EQ(0, traffic_start(&t, "udp --dst " GUEST_IP4 " --dport %u --flows 16 --count 6000 --size 200 --rate 2000",
				   dport));
	ASSERT_TRUE(traffic_flowing(base));
	end = mono_ms() + 60000;
	while (mono_ms() < end && waitpid(t.pid, NULL, WNOHANG) == 0) {
		struct ring *r = &self->r[0];
		volatile uint8_t sum = 0;
		size_t i;

		ASSERT_EQ(0, ring_create(r, &req));
		frames += !!ring_wait_frame(r, 0, 100, false);
		switch (iters++ % 3) {
		case 0:	/* close with the mapping alive, read it, unmap */
			close(r->fd);
			r->fd = -1;
			for (i = 0; i < r->map_len; i += 64)
				sum += r->map[i];
			break;
		case 1:	/* unmap first */
			munmap(r->map, r->map_len);
			r->map = MAP_FAILED;
			break;
		default: /* close right away, the hook busy on other CPUs */
			break;
		}
		ring_destroy(r);
		(void)sum;
	}
	/* waitpid() above may have reaped it already: traffic_wait() copes. */
	traffic_wait(&t, &drops);
	diag("%u rings set up and closed during traffic, %u of them got a frame", iters, frames);
	EXPECT_LE(3u, iters);
	EXPECT_LT(0u, frames) TH_LOG("no ring captured anything: was there traffic?");
}

/* Map and unmap the ring over and over while it fills. */
TEST_F_TIMEOUT(lifecycle, munmap_during_traffic, 300)
{
	const unsigned int n = 6000;
	const uint16_t dport = 9021;
	struct ring *r = &self->r[0];
	struct pktring_req req;
	struct pktring_stats st;
	unsigned int maps = 0, released = 0;
	struct traffic t;
	long long base, got;
	long drops;

	REQUIRE_TRAFFIC();
	req_init(&req, 4096, 32, 2048);
	ASSERT_EQ(0, ring_create(r, &req));
	base = udp_rx_total();
	ASSERT_EQ(0, traffic_start(&t, "udp --dst " GUEST_IP4 " --dport %u --flows 16 --count %u --size 200 --rate 2000",
				   dport, n));
	ASSERT_TRUE(traffic_flowing(base));
	while (udp_rx_total() - base < n && waitpid(t.pid, NULL, WNOHANG) == 0) {
		uint8_t *m = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
		unsigned int i;

		ASSERT_NE(MAP_FAILED, m);
		maps++;
		for (i = 0; i < r->info.frame_nr; i++) {
			uint32_t *s = (uint32_t *)(m + frame_offset(r, i));

			if (__atomic_load_n(s, __ATOMIC_ACQUIRE)) {
				__atomic_store_n(s, 0, __ATOMIC_RELEASE);
				released++;
			}
		}
		ASSERT_EQ(0, munmap(m, r->map_len));
		if (maps % 8 == 0) {
			/* The first mapping too. */
			ASSERT_EQ(0, munmap(r->map, r->map_len));
			r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
			ASSERT_NE(MAP_FAILED, r->map);
		}
	}
	traffic_wait(&t, &drops);
	got = wait_udp(base, n, UDP_TIMEOUT_MS);
	ASSERT_EQ(0, get_stats(r, &st));
	diag("%u mappings, %u frames released, kernel: %llu packets, %llu drops", maps, released,
	     (unsigned long long)st.packets, (unsigned long long)st.drops);
	EXPECT_LT(0u, maps);
	/* The hook saw every packet, delivered or dropped. */
	EXPECT_EQ(got, (long long)st.packets);
	EXPECT_EQ(n, got) TH_LOG("host tx_dropped +%ld", drops);
}

/*
 * The mapping outlives close(): readable and writable. It also holds the
 * file, as an af_packet ring does, so the file (and its capture) is released
 * only with the mapping: the module's reference count says when.
 */
TEST_F_TIMEOUT(lifecycle, map_after_close, 120)
{
	const uint16_t dport = 9022;
	const unsigned int n = 50;
	struct ring *r = &self->r[0];
	struct pktring_req req;
	struct expect e;
	unsigned int i, nbad = 0, late;
	int refs0 = module_refcnt(), refs;
	uint64_t sum = 0, end;
	size_t b;
	char why[256];

	REQUIRE_TRAFFIC();
	req_init(&req, 4096, 32, 2048);
	ASSERT_EQ(0, ring_create(r, &req));
	if (refs0 >= 0)
		EXPECT_EQ(refs0 + 1, module_refcnt());
	expect_init(&e, dport, 200);
	ASSERT_EQ(n, send_and_settle(_metadata, dport, 4, n, 200, 0));
	ASSERT_EQ(0, close(r->fd));
	r->fd = -1;

	EXPECT_EQ(n, ring_count_user(r));
	for (i = 0; i < n; i++) {
		struct frame_info fi;

		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
		}
	}
	EXPECT_EQ(0u, nbad);
	for (b = 0; b < r->map_len; b++)
		sum += ((volatile uint8_t *)r->map)[b];
	EXPECT_NE(0u, sum);
	for (i = 0; i < r->info.frame_nr; i++)
		frame_release(ring_frame(r, i));

	/* Whatever still arrives through the live mapping is sound. */
	ASSERT_EQ(20, send_and_settle(_metadata, dport, 4, 20, 200, 100));
	late = ring_count_user(r);
	for (i = 0; i < r->info.frame_nr; i++) {
		struct frame_info fi;

		if (!frame_status(ring_frame(r, i)))
			continue;
		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
		}
	}
	EXPECT_EQ(0u, nbad);
	diag("after close(), with the mapping alive, %u of 20 more packets were captured", late);
	memset(r->map, 0x5a, r->map_len);

	/* Unmapping releases the file: the module is no longer in use. */
	EXPECT_EQ(0, munmap(r->map, r->map_len));
	r->map = MAP_FAILED;
	if (refs0 >= 0) {
		end = mono_ms() + 3000;
		while ((refs = module_refcnt()) != refs0 && mono_ms() < end)
			sleep_ms(10);
		EXPECT_EQ(refs0, refs) TH_LOG("module references stay after close and munmap");
	}
	ASSERT_EQ(20, send_and_settle(_metadata, dport, 4, 20, 200, 200));
}

TEST_F_TIMEOUT(lifecycle, cycles, 900)
{
	const unsigned int n = 1000;
	struct pktring_req req;
	unsigned int i;
	uint64_t t0 = mono_ms();

	req_init(&req, 4096, 1, 2048);
	for (i = 0; i < n; i++) {
		struct ring *r = &self->r[0];
		int ret = ring_create(r, &req);

		ASSERT_EQ(0, ret) TH_LOG("cycle %u: %s", i, errname(ret));
		r->map[r->map_len - 1] = 1;
		ring_destroy(r);
	}
	diag("%u open/SET_RING/mmap/munmap/close cycles in %llu ms", n,
	     (unsigned long long)(mono_ms() - t0));
}

/* rtnetlink, just enough to add a veth pair and delete a link. */
static int rtnl_request(struct nlmsghdr *nh)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[4096];
	int fd, ret = -EIO;
	ssize_t len;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (sendto(fd, nh, nh->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
	} else if ((len = recv(fd, buf, sizeof(buf), 0)) > 0) {
		struct nlmsghdr *r = (struct nlmsghdr *)buf;

		if (NLMSG_OK(r, (size_t)len) && r->nlmsg_type == NLMSG_ERROR)
			ret = ((struct nlmsgerr *)NLMSG_DATA(r))->error;
	}
	close(fd);
	return ret;
}

static struct rtattr *rta_add(struct nlmsghdr *nh, unsigned short type, const void *data,
			      unsigned short len)
{
	struct rtattr *rta = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(rta), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(rta->rta_len);
	return rta;
}

struct link_req {
	struct nlmsghdr nh;
	struct ifinfomsg ifi;
	char attrs[512];
};

/* Adds a veth pair: name and a peer the kernel names. Returns 0 or -errno. */
static int veth_add(const char *name)
{
	struct link_req req = {
		.nh = {
			.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
			.nlmsg_type = RTM_NEWLINK,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
		},
	};
	struct rtattr *info;

	rta_add(&req.nh, IFLA_IFNAME, name, strlen(name) + 1);
	info = rta_add(&req.nh, IFLA_LINKINFO, NULL, 0);
	rta_add(&req.nh, IFLA_INFO_KIND, "veth", 4);
	info->rta_len = (char *)&req + req.nh.nlmsg_len - (char *)info;
	return rtnl_request(&req.nh);
}

static int link_del(int ifindex)
{
	struct link_req req = {
		.nh = {
			.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg)),
			.nlmsg_type = RTM_DELLINK,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
		},
		.ifi = { .ifi_index = ifindex },
	};

	return rtnl_request(&req.nh);
}

/* Waits up to ms for pid; returns true (and its status) if it ended. */
static bool wait_child(pid_t pid, unsigned int ms, int *status)
{
	uint64_t end = mono_ms() + ms;

	do {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		sleep_ms(20);
	} while (mono_ms() < end);
	return false;
}

/*
 * A device with an INGRESS ring on it is deleted. The deletion must not
 * wait for the ring to be closed: af_packet and nftables let go of a device
 * on NETDEV_UNREGISTER, and a reference held past it leaves
 * "unregister_netdevice: waiting for DEV to become free" in the kernel log
 * and `ip link del` hanging. The ring stays usable (and empty) afterwards.
 */
TEST_F_TIMEOUT(lifecycle, ingress_device_removed, 120)
{
	const char *name = "pktring-v0";
	struct ring *r = &self->r[0];
	struct pktring_req req;
	struct pktring_stats st;
	bool done;
	int ifindex, ret, status = 0;
	pid_t pid;

	ret = veth_add(name);
	if (ret == -EEXIST && if_nametoindex(name)) {
		/* Left over from an earlier run. */
		link_del((int)if_nametoindex(name));
		ret = veth_add(name);
	}
	if (ret == -EOPNOTSUPP || ret == -EAFNOSUPPORT)
		SKIP(return, "no veth devices here (%s)", errname(ret));
	ASSERT_EQ(0, ret) TH_LOG("adding veth %s: %s", name, errname(ret));
	ifindex = (int)if_nametoindex(name);
	ASSERT_LT(0, ifindex);

	req_init(&req, 4096, 4, 2048);
	req.hook = PKTRING_HOOK_INGRESS;
	req.ifindex = ifindex;
	ret = ring_create(r, &req);
	if (ret)
		link_del(ifindex);
	ASSERT_EQ(0, ret) TH_LOG("INGRESS ring on %s: %s", name, errname(ret));

	/* Delete it from a child: with a leaked reference that blocks. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/*
		 * Not a holder of the ring (nor of the runner's output pipe):
		 * if the deletion waits for the ring, it must wait for our
		 * parent's close alone.
		 */
		int null = open("/dev/null", O_WRONLY);

		close(r->fd);
		dup2(null, 1);
		dup2(null, 2);
		_exit(link_del(ifindex) ? 1 : 0);
	}
	done = wait_child(pid, 15000, &status);
	if (!done) {
		/* Let the deletion finish, so the test leaves nothing behind. */
		TH_LOG("deleting %s with an INGRESS ring open still blocks after 15 s; closing the ring",
		       name);
		ring_destroy(r);
		EXPECT_TRUE(wait_child(pid, 30000, &status))
			TH_LOG("deleting %s still blocks after the ring was closed", name);
	}
	EXPECT_TRUE(done) TH_LOG("the ring kept its device from being deleted until it was closed");
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("RTM_DELLINK failed");
	EXPECT_EQ(0u, if_nametoindex(name));
	if (done) {
		/* The file outlives its device: it still answers, and closes. */
		EXPECT_EQ(0, ioctl(r->fd, PKTRING_IOC_GET_INFO, &r->info));
		ret = get_stats(r, &st);
		EXPECT_TRUE(ret == 0 || ret == -ENODEV) TH_LOG("GET_STATS: %s", errname(ret));
		EXPECT_EQ(0u, ring_count_user(r));
	}
}

/*
 * More rings than a hook point takes (netfilter allows 1024 hooks on one):
 * set-up fails cleanly at the limit, and everything comes back once the
 * rings are closed. This is the error path of the hook registration.
 */
TEST_F_TIMEOUT(lifecycle, hook_limit, 600)
{
	const unsigned int want = 1100;
	struct rlimit rl = { .rlim_cur = want + 64, .rlim_max = want + 64 };
	struct pktring_req req;
	unsigned int i, nok = 0, nfail = 0, nfds = 0;
	int refs0 = module_refcnt(), refs, first_err = 0, odd_err = 0;
	int *fds;
	uint64_t t0 = mono_ms(), end;
	struct ring r;

	if (setrlimit(RLIMIT_NOFILE, &rl))
		SKIP(return, "cannot raise RLIMIT_NOFILE: %s", strerror(errno));
	fds = calloc(want, sizeof(*fds));
	ASSERT_NE(NULL, fds);
	req_init(&req, 4096, 1, 2048);
	req.ifindex = 0;
	for (i = 0; i < want && nfail < 16; i++) {
		int fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC), ret;

		ASSERT_LE(0, fd) TH_LOG("open #%u: %s", i, strerror(errno));
		fds[nfds++] = fd;
		ret = set_ring(fd, &req);
		if (!ret) {
			nok++;
			continue;
		}
		if (!nfail++)
			first_err = ret;
		if (ret != -E2BIG && ret != -ENOMEM && ret != -ENOSPC && !odd_err)
			odd_err = ret;
	}
	diag("%u rings set up, then %u set-ups failed (first: %s) in %llu ms", nok, nfail,
	     errname(first_err), (unsigned long long)(mono_ms() - t0));
	EXPECT_EQ(0, odd_err) TH_LOG("set-up beyond the hook limit failed with %s", errname(odd_err));
	EXPECT_LE(1000u, nok);

	/* A failed set-up leaves a file that still works as a file. */
	if (nfail) {
		struct pktring_info info;

		errno = 0;
		EXPECT_EQ(-1, ioctl(fds[nfds - 1], PKTRING_IOC_GET_INFO, &info));
		EXPECT_EQ(EINVAL, errno);
	}
	t0 = mono_ms();
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	diag("closed %u files in %llu ms", nfds, (unsigned long long)(mono_ms() - t0));
	free(fds);
	if (refs0 >= 0) {
		end = mono_ms() + 5000;
		while ((refs = module_refcnt()) != refs0 && mono_ms() < end)
			sleep_ms(10);
		EXPECT_EQ(refs0, refs);
	}
	/* Room again. */
	ASSERT_EQ(0, ring_create(&r, &req));
	ring_destroy(&r);
}

/* Three rings capture the same packets, each all of them. */
TEST_F_TIMEOUT(lifecycle, multi_fd, 120)
{
	const unsigned int n = 300, size = 200, flows = 8;
	const uint16_t dport = 9023;
	struct pktring_req req;
	struct pktring_stats st;
	struct expect e;
	unsigned int i, j;
	char why[256];

	REQUIRE_TRAFFIC();
	/* 512 frames of 1 KiB each. */
	req_init(&req, 4096, 128, 1024);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, ring_create(&self->r[i], &req));
	expect_init(&e, dport, size);
	ASSERT_EQ(n, send_and_settle(_metadata, dport, flows, n, size, 0));
	for (i = 0; i < 3; i++) {
		struct ring *r = &self->r[i];
		unsigned int nbad = 0;
		struct seen seen;

		ASSERT_EQ(0, seen_init(&seen, flows, n / flows + 1));
		EXPECT_EQ(n, ring_count_user(r)) TH_LOG("ring %u", i);
		for (j = 0; j < n; j++) {
			struct frame_info fi;

			if (check_frame(r, j, &e, &fi, why, sizeof(why))) {
				nbad++;
				TH_LOG("ring %u: %s", i, why);
				break;
			}
			if (seen_mark(&seen, fi.flow, fi.seq, fi.ts_ns)) {
				nbad++;
				TH_LOG("ring %u: flow %u seq %llu twice", i, fi.flow,
				       (unsigned long long)fi.seq);
			}
			frame_release(ring_frame(r, j));
		}
		EXPECT_EQ(0u, nbad) TH_LOG("ring %u", i);
		ASSERT_EQ(0, get_stats(r, &st));
		EXPECT_EQ(n, st.packets) TH_LOG("ring %u", i);
		EXPECT_EQ(0u, st.drops) TH_LOG("ring %u", i);
		seen_free(&seen);
	}
}

/* ================================================================== */
/* module: last, and restores the module                               */

/* Waits up to 3 s for the device node to come (want) or go (!want). */
static bool wait_device(bool want)
{
	uint64_t end = mono_ms() + 3000;

	while (!access(PKTRING_DEV, F_OK) != want) {
		if (mono_ms() > end)
			return false;
		sleep_ms(10);
	}
	return true;
}

FIXTURE(module) {
	struct ring r;
};

FIXTURE_SETUP(module)
{
	ring_init(&self->r);
	REQUIRE_DEVICE();
	if (!module_loaded())
		SKIP(return, PKTRING_MODNAME " is not a loaded module");
	if (access(module_path(), R_OK))
		SKIP(return, "%s is missing: cannot reload the module", module_path());
}

FIXTURE_TEARDOWN(module)
{
	ring_destroy(&self->r);
	if (!module_loaded()) {
		int ret = module_insert();

		if (ret)
			diag("reloading %s failed: %s", module_path(), strerror(-ret));
		wait_device(true);
	}
}

/*
 * rmmod is refused while a ring is open, and while a ring is still mapped
 * after its file was closed (the mapping holds the file); once unmapped the
 * module unloads, and loads again.
 */
TEST_F_TIMEOUT(module, rmmod, 120)
{
	struct ring *r = &self->r;
	struct pktring_req req;
	uint64_t end;
	int ret, fd;

	req_init(&req, 4096, 4, 2048);
	req.ifindex = 0;
	ASSERT_EQ(0, ring_create(r, &req));
	EXPECT_LE(1, module_refcnt());

	/* delete_module() says EWOULDBLOCK (EAGAIN) for a module in use. */
	ret = module_remove();
	EXPECT_TRUE(ret == -EWOULDBLOCK || ret == -EBUSY)
		TH_LOG("delete_module with a ring open: %s", errname(ret));
	diag("delete_module with a ring open: %s", errname(ret));
	ASSERT_TRUE(module_loaded());
	EXPECT_EQ(0, ioctl(r->fd, PKTRING_IOC_GET_INFO, &r->info));

	/* Closed but still mapped. */
	ASSERT_EQ(0, close(r->fd));
	r->fd = -1;
	ret = module_remove();
	EXPECT_TRUE(ret == -EWOULDBLOCK || ret == -EBUSY)
		TH_LOG("delete_module with a ring mapped: %s", errname(ret));
	ASSERT_TRUE(module_loaded());
	EXPECT_EQ(0, r->map[r->map_len - 1]);

	ASSERT_EQ(0, munmap(r->map, r->map_len));
	r->map = MAP_FAILED;
	/* The file is released on the way back from munmap(); allow a moment anyway. */
	end = mono_ms() + 3000;
	while ((ret = module_remove()) == -EWOULDBLOCK && mono_ms() < end)
		sleep_ms(20);
	ASSERT_EQ(0, ret) TH_LOG("delete_module after close and munmap: %s", errname(ret));
	EXPECT_FALSE(module_loaded());
	EXPECT_TRUE(wait_device(false)) TH_LOG("%s is still there", PKTRING_DEV);
	fd = open(PKTRING_DEV, O_RDWR);
	EXPECT_EQ(-1, fd);
	if (fd >= 0)
		close(fd);

	ret = module_insert();
	ASSERT_EQ(0, ret) TH_LOG("finit_module(%s): %s", module_path(), errname(ret));
	ASSERT_TRUE(wait_device(true));
	ASSERT_EQ(0, ring_create(r, &req));
}

int main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-l") || !strcmp(argv[i], "-h"))
			return test_harness_run(argc, argv);
	if (access(PKTRING_DEV, F_OK))
		ksft_exit_skip(NO_DEVICE_MSG "\n");
	return test_harness_run(argc, argv);
}
