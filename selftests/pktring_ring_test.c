// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests: the ring fixture, on the kselftest harness.
 *
 *	ring		per ring geometry (variants small, large, odd): info,
 *			set-up twice, mmap rules, receive, snaplen, frame
 *			truncation, ring full, poll, epoll
 *
 * One of the programs of the module's kselftest suite; what they have in
 * common, and the order suite.sh runs them in, is in pktring_test_lib.h.
 */
#include "pktring_test_lib.h"

#include <sys/epoll.h>

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
	/* snaplen 0 asks for as much as fits: the most a frame holds. */
	EXPECT_EQ((uint32_t)(variant->frame_size - TPACKET2_HDRLEN), info->snaplen);
	/* Capturing: no reason for it to have ended. */
	EXPECT_EQ(0u, info->error);
	for (i = 0; i < sizeof(info->reserved) / sizeof(info->reserved[0]); i++)
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
	EXPECT_EQ(MIN(snaplen ? snaplen : PKTRING_MAX_SNAPLEN, r->info.frame_size - TPACKET2_HDRLEN),
		  r->info.snaplen);
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
			uint64_t t0 = mono_ms(), waited;

			if (use_epoll) {
				n = epoll_wait(ep, &ev, 1, timeout_ms);
				if (n == 1 && !(ev.events & EPOLLIN))
					n = -2;
			} else {
				n = poll(&pfd, 1, timeout_ms);
				if (n == 1 && !(pfd.revents & POLLIN))
					n = -2;
			}
			/*
			 * poll() looks at the file once more when its timeout expires, so
			 * a lost wake-up still returns the frames, but only then: a wait
			 * that lasted its whole timeout is a failure too.
			 */
			waited = mono_ms() - t0;
			if (n > 0 && waited + 100 >= timeout_ms)
				n = -3;
			if (n <= 0)
				traffic_wait(&t, &drops);
			ASSERT_LT(0, n) TH_LOG("burst %u: %s returned %d after %u of %u frames, %llu ms (%s; host tx_dropped +%ld)",
					       k, use_epoll ? "epoll_wait" : "poll", n, got, burst,
					       (unsigned long long)waited,
					       n == 0 ? "timed out" : n == -2 ? "no POLLIN" :
					       n == -3 ? "woken only by its timeout: a lost wake-up" : strerror(errno),
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

int main(int argc, char **argv)
{
	return pktring_test_main(argc, argv);
}
