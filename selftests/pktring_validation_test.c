// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests: the validation fixture, on the kselftest harness.
 *
 *	validation	request matrix, largest ring, ioctl numbers, bad
 *			pointers, set-up racing mmap and close
 *
 * One of the programs of the module's kselftest suite; what they have in
 * common, and the order suite.sh runs them in, is in pktring_test_lib.h.
 */
#include "pktring_test_lib.h"

#include <pthread.h>
#include <sched.h>

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
	X(valid_local_out, 0, req->hook = PKTRING_HOOK_LOCAL_OUT) \
	X(valid_local_out_ifindex, 0, req->hook = PKTRING_HOOK_LOCAL_OUT; req->ifindex = ingress_ifindex()) \
	X(valid_post_routing, 0, req->hook = PKTRING_HOOK_POST_ROUTING; req->family = PKTRING_FAMILY_BOTH) \
	X(valid_egress, 0, req->hook = PKTRING_HOOK_EGRESS; req->ifindex = ingress_ifindex()) \
	X(valid_ingress_every_ethertype, 0, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = ingress_ifindex(); \
	  req->family = 0; req->ethertype = PKTRING_ETH_P_ALL) \
	X(valid_egress_arp, 0, req->hook = PKTRING_HOOK_EGRESS; req->ifindex = ingress_ifindex(); \
	  req->family = 0; req->ethertype = 0x0806) \
	X(valid_ingress_ethertype_0xffff, 0, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = ingress_ifindex(); \
	  req->family = 0; req->ethertype = 0xffff) \
	X(ethertype_at_inet_hook, EINVAL, req->family = 0; req->ethertype = PKTRING_ETH_P_ALL) \
	X(ethertype_at_local_out, EINVAL, req->hook = PKTRING_HOOK_LOCAL_OUT; req->family = 0; \
	  req->ethertype = 0x0806) \
	X(ethertype_with_family, EINVAL, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = ingress_ifindex(); \
	  req->ethertype = 0x0806) \
	X(ethertype_over_16_bits, EINVAL, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = ingress_ifindex(); \
	  req->family = 0; req->ethertype = 0x10000) \
	X(device_family_0_no_ethertype, EINVAL, req->hook = PKTRING_HOOK_EGRESS; req->ifindex = ingress_ifindex(); \
	  req->family = 0) \
	X(valid_snaplen_1, 0, req->snaplen = 1) \
	X(valid_snaplen_max, 0, req->snaplen = PKTRING_MAX_SNAPLEN) \
	X(valid_priority_negative, 0, req->priority = -1000) \
	X(size_0, EINVAL, req->size = 0) \
	X(size_55, EINVAL, req->size = sizeof(*req) - 1) \
	X(size_57, EINVAL, req->size = sizeof(*req) + 1) \
	X(size_64, EINVAL, req->size = 64) \
	X(version_0, EINVAL, req->version = 0) \
	X(version_2, EINVAL, req->version = 2) \
	X(reserved, EINVAL, req->reserved = 1) \
	X(reserved_top_bit, EINVAL, req->reserved = 0x80000000u) \
	X(valid_batch, 0, req->wake_frames = 2; req->wake_usecs = 100) \
	X(valid_batch_whole_ring, 0, req->wake_frames = req->frame_nr; req->wake_usecs = PKTRING_MAX_WAKE_USECS) \
	X(valid_no_batch_1, 0, req->wake_frames = 1) \
	X(batch_without_timer, EINVAL, req->wake_frames = 2) \
	X(timer_without_batch, EINVAL, req->wake_usecs = 100) \
	X(timer_with_batch_1, EINVAL, req->wake_frames = 1; req->wake_usecs = 100) \
	X(batch_over_ring, EINVAL, req->wake_frames = req->frame_nr + 1; req->wake_usecs = 100) \
	X(timer_too_long, EINVAL, req->wake_frames = 2; req->wake_usecs = PKTRING_MAX_WAKE_USECS + 1) \
	X(batch_huge, EINVAL, req->wake_frames = 0xffffffffu; req->wake_usecs = 100) \
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
	X(hook_6, EINVAL, req->hook = 6) \
	X(hook_0xffff, EINVAL, req->hook = 0xffff) \
	X(ingress_ifindex_0, EINVAL, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = 0) \
	X(ingress_ifindex_negative, EINVAL, req->hook = PKTRING_HOOK_INGRESS; req->ifindex = -1) \
	X(egress_ifindex_0, EINVAL, req->hook = PKTRING_HOOK_EGRESS; req->ifindex = 0) \
	X(post_routing_ifindex_negative, EINVAL, req->hook = PKTRING_HOOK_POST_ROUTING; req->ifindex = -1) \
	X(egress_no_such_device, ENODEV, req->hook = PKTRING_HOOK_EGRESS; req->ifindex = 0x7ffffff0) \
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
		{ "number 4 as _IOR", _IOR(PKTRING_IOC_MAGIC, 4, struct sock_fprog) },
		{ "DETACH_FILTER as _IOW", _IOW(PKTRING_IOC_MAGIC, 5, int) },
		{ "number 6", _IO(PKTRING_IOC_MAGIC, 6) },
		{ "JOIN_FANOUT as _IOR", _IOR(PKTRING_IOC_MAGIC, 6, struct pktring_fanout) },
		{ "JOIN_FANOUT, size 16", _IOW(PKTRING_IOC_MAGIC, 6, char[16]) },
		{ "GET_FANOUT as _IOW", _IOW(PKTRING_IOC_MAGIC, 7, struct pktring_fanout) },
		{ "LEAVE_FANOUT as _IOW", _IOW(PKTRING_IOC_MAGIC, 8, int) },
		{ "number 9", _IO(PKTRING_IOC_MAGIC, 9) },
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
	/* GET_STATS of programs built before `filtered`: 16 bytes, no more. */
	memset(&buf, 0xa5, sizeof(buf));
	EXPECT_EQ(0, ioctl(self->fd, _IOR(PKTRING_IOC_MAGIC, 3, char[16]), &buf));
	EXPECT_EQ(0xa5, buf.raw[16]) TH_LOG("the old GET_STATS wrote past its 16 bytes");
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

int main(int argc, char **argv)
{
	return pktring_test_main(argc, argv);
}
