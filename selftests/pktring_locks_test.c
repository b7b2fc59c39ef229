// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftest: the lock order of ring set-up, mmap and RTNL.
 *
 * The kernel holds RTNL across copies to user memory (SIOCGIFCONF copies
 * each interface's record with RTNL held), and mmap() runs the driver's mmap
 * with the mmap lock held. If PKTRING_IOC_SET_RING registered its hook
 * (RTNL, for an ingress hook) under a lock that mmap also takes, a
 * multithreaded capture program could deadlock on
 *
 *	mmap_lock -> ring file lock -> RTNL -> mmap_lock
 *
 * This test makes one process record each edge, from two threads: one sets
 * up an ingress ring and maps it, the other asks for SIOCGIFCONF into memory
 * that is not faulted in yet, while the first keeps mapping. On a lockdep
 * kernel (the debug flavour) lockdep reports the cycle if it exists; the
 * runner (guest/run_tests.sh) fails the test on any lockdep report. On other
 * kernels it still checks that each step works.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rust_pktring_uapi.h"
#include "kselftest_harness.h"

#define PKTRING_DEV	"/dev/pktring"
#define ROUNDS		200

static int ifconf_once(void)
{
	/* A fresh mapping each time: the copy under RTNL faults it in. */
	size_t len = 64 * 1024;
	void *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct ifconf ifc = { .ifc_len = (int)len, .ifc_buf = buf };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	if (buf == MAP_FAILED || s < 0)
		return -1;
	ret = ioctl(s, SIOCGIFCONF, &ifc);
	close(s);
	munmap(buf, len);
	return ret;
}

static void *ifconf_thread(void *arg)
{
	long failures = 0;

	for (int i = 0; i < ROUNDS; i++)
		failures += ifconf_once() != 0;
	return (void *)failures;
}

/* Sets up an ingress ring on the loopback device and maps it; 0 or -errno. */
static int ingress_ring_and_map(void)
{
	struct pktring_req req = {
		.size = sizeof(req), .version = PKTRING_VERSION,
		.block_size = 4096, .block_nr = 4, .frame_size = 2048, .frame_nr = 8,
		.family = PKTRING_FAMILY_BOTH, .hook = PKTRING_HOOK_INGRESS,
		.ifindex = (int)if_nametoindex("lo"),
	};
	struct pktring_info info;
	int fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC), ret = 0;
	void *ring;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, PKTRING_IOC_SET_RING, &req) || ioctl(fd, PKTRING_IOC_GET_INFO, &info)) {
		ret = -errno;
		goto out;
	}
	ring = mmap(NULL, info.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	/* A second mapping of the same ring, with the first still there. */
	void *again = mmap(NULL, info.mmap_size, PROT_READ, MAP_SHARED, fd, 0);

	if (again == MAP_FAILED)
		ret = -errno;
	else
		munmap(again, info.mmap_size);
	munmap(ring, info.mmap_size);
out:
	close(fd);
	return ret;
}

TEST(setup_mmap_ifconf)
{
	pthread_t thread;
	void *failures;
	int ret;

	if (access(PKTRING_DEV, F_OK))
		SKIP(return, PKTRING_DEV " is absent (load rust_pktring.ko)");

	/* Each edge once from this thread, then both threads at once. */
	ASSERT_EQ(0, ingress_ring_and_map());
	ASSERT_EQ(0, ifconf_once());
	ASSERT_EQ(0, pthread_create(&thread, NULL, ifconf_thread, NULL));
	for (int i = 0; i < ROUNDS / 10; i++) {
		ret = ingress_ring_and_map();
		ASSERT_EQ(0, ret) TH_LOG("round %d: %s", i, strerror(-ret));
	}
	ASSERT_EQ(0, pthread_join(thread, &failures));
	EXPECT_EQ(0, (long)failures);
}

TEST_HARNESS_MAIN
