// SPDX-License-Identifier: GPL-2.0
/*
 * Guest test of the patch series' sample, samples/rust/rust_misc_ring: a
 * misc device whose page (mmap) counts IPv4 packets seen by a netfilter hook,
 * with poll reporting a non-zero count. It exercises the series' misc device,
 * VMA, user-shared buffer, poll wait queue, BH-safe lock and netfilter hook
 * abstractions from user space.
 *
 * Needs the sample loaded (insmod rust_misc_ring.ko) and the host traffic
 * channel (pktring-traffic); skips without the device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "testnet.h"	/* gen/testnet.h, from testnet.env */

#define DEV		"/dev/rust-misc-ring"
#define RESET		_IO('|', 0x80)
#define PAGE		4096
#define PACKETS		300u

static uint32_t load_count(const uint32_t *count)
{
	return __atomic_load_n(count, __ATOMIC_ACQUIRE);
}

FIXTURE(sample)
{
	int fd;
	uint32_t *count;
};

FIXTURE_SETUP(sample)
{
	self->fd = open(DEV, O_RDWR);
	if (self->fd < 0)
		SKIP(return, "%s: %s (is rust_misc_ring loaded?)", DEV, strerror(errno));
	self->count = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->count);
}

FIXTURE_TEARDOWN(sample)
{
	if (self->fd < 0)
		return;
	munmap(self->count, PAGE);
	close(self->fd);
}

/* Counting starts at zero, poll waits, traffic wakes it, reset clears it. */
TEST_F(sample, counts_polls_and_resets)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };

	ASSERT_EQ(0, ioctl(self->fd, RESET, 0));
	EXPECT_EQ(0u, load_count(self->count));
	ASSERT_EQ(0, poll(&pfd, 1, 0));

	ASSERT_EQ(0, system("pktring-traffic udp --dst " PKTRING_GUEST_IP4
			    " --flows 4 --count 300 --size 64 >/dev/null"));
	ASSERT_EQ(1, poll(&pfd, 1, 5000));
	EXPECT_TRUE(pfd.revents & POLLIN);
	EXPECT_GE(load_count(self->count), PACKETS);

	ASSERT_EQ(0, ioctl(self->fd, RESET, 0));
	EXPECT_EQ(0u, load_count(self->count));
	EXPECT_EQ(-1, ioctl(self->fd, _IO('|', 0x81), 0));
	EXPECT_EQ(ENOTTY, errno);
}

/* The shared buffer refuses areas it does not cover exactly, and exec. */
TEST_F(sample, mmap_is_checked)
{
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ, MAP_SHARED, self->fd, PAGE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, self->fd, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, mprotect(self->count, PAGE, PROT_READ | PROT_EXEC));
}

/* The page outlives the file: still mapped and readable after close. */
TEST_F(sample, mapping_survives_close)
{
	volatile uint32_t *count = self->count;

	ASSERT_EQ(0, close(self->fd));
	self->fd = -1;
	(void)*count;
	ASSERT_EQ(0, munmap(self->count, PAGE));
}

TEST_HARNESS_MAIN
