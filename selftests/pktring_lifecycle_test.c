// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests: the lifecycle fixture, on the kselftest harness.
 *
 *	lifecycle	close/munmap during traffic, mapping after close,
 *			1000 set-up cycles, several rings at once, deleting
 *			the device of an INGRESS ring
 *
 * One of the programs of the module's kselftest suite; what they have in
 * common, and the order suite.sh runs them in, is in pktring_test_lib.h.
 */
#include "pktring_test_lib.h"
#include "pktring_netlink.h"

#include <sys/resource.h>

/* ================================================================== */
/* lifecycle                                                           */

FIXTURE(lifecycle) {
	struct ring r[3];
};

FIXTURE_SETUP(lifecycle)
{
	rings_init(self->r, ARRAY_SIZE(self->r));
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(lifecycle)
{
	rings_teardown(self->r, ARRAY_SIZE(self->r));
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

	/* The kernel names the peer. */
	ret = veth_fresh(name, NULL);
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
	pid = fork_flushed();
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

int main(int argc, char **argv)
{
	return pktring_test_main(argc, argv);
}
