// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests: the traffic fixture, on the kselftest harness.
 *
 *	traffic		spread over CPUs/queues, hooks and filters, frames
 *			too small for the packet, hostile consumer,
 *			libpcap-style reader (the producer race)
 *
 * One of the programs of the module's kselftest suite; what they have in
 * common, and the order suite.sh runs them in, is in pktring_test_lib.h.
 */
#include "pktring_test_lib.h"

#include <pthread.h>

/* ================================================================== */
/* traffic: one ring geometry per test                                 */

FIXTURE(traffic) {
	struct ring r[4];
};

FIXTURE_SETUP(traffic)
{
	rings_init(self->r, ARRAY_SIZE(self->r));
	REQUIRE_DEVICE();
	REQUIRE_TRAFFIC();
}

FIXTURE_TEARDOWN(traffic)
{
	rings_teardown(self->r, ARRAY_SIZE(self->r));
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
	static const char *const names[4] = { "PRE_ROUTING, any device", "LOCAL_IN on " TEST_IFNAME,
					      "INGRESS on " TEST_IFNAME,
					      "IPv6 PRE_ROUTING on " TEST_IFNAME };
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
	EXPECT_EQ(0u, ring_count_user(&self->r[0])) TH_LOG("a ring on lo captured " TEST_IFNAME " packets");
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
	sender = fork_flushed();
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

int main(int argc, char **argv)
{
	return pktring_test_main(argc, argv);
}
