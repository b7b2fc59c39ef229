// SPDX-License-Identifier: GPL-2.0
/*
 * Guest test of the patch series' sample, samples/rust/rust_misc_ring: a
 * misc device whose page (mmap) counts IPv4 packets seen by a netfilter hook,
 * with poll reporting a non-zero count. It exercises the series' misc device,
 * VMA, user-shared buffer, poll wait queue, BH-safe lock and netfilter hook
 * abstractions from user space.
 *
 * It also registers the sample's child device, opens it, and has the sample
 * drop the child's registration while the file is open: the file must keep
 * working (its file operations are a static table of the module, not part of
 * the registration), and keep the module loaded, until it is closed. On the
 * debug kernel KASAN would report a use after free otherwise.
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
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "testnet.h"	/* gen/testnet.h, from testnet.env */

#define DEV		"/dev/rust-misc-ring"
#define RESET		_IO('|', 0x80)
#define ADD_CHILD	_IO('|', 0x90)
#define REMOVE_CHILD	_IO('|', 0x91)
#define CHILD_STAMP	_IO('|', 0x92)
#define CHILD_DEV	"/dev/rust-misc-ring-child"
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

/* Waits up to 5 s for `path` to exist (want) or be gone (!want). */
static bool wait_node(const char *path, bool want)
{
	for (int i = 0; i < 500; i++) {
		if ((access(path, F_OK) == 0) == want)
			return true;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	return false;
}

/* A registration dropped while a file of it is open leaves the file working. */
TEST_F(sample, registration_dropped_with_a_file_open)
{
	struct pollfd pfd = { .events = POLLIN };
	uint32_t *page;
	int child;

	ASSERT_EQ(0, ioctl(self->fd, ADD_CHILD, 0));
	EXPECT_EQ(-1, ioctl(self->fd, ADD_CHILD, 0));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_TRUE(wait_node(CHILD_DEV, true));
	child = open(CHILD_DEV, O_RDWR);
	ASSERT_LE(0, child);
	page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, child, 0);
	ASSERT_NE(MAP_FAILED, page);
	EXPECT_EQ(1, ioctl(child, CHILD_STAMP, 0));
	EXPECT_EQ(1u, load_count(page));

	/* The registration goes; the device node with it. */
	ASSERT_EQ(0, ioctl(self->fd, REMOVE_CHILD, 0));
	EXPECT_TRUE(wait_node(CHILD_DEV, false));
	EXPECT_EQ(-1, ioctl(self->fd, REMOVE_CHILD, 0));
	EXPECT_EQ(ENOENT, errno);

	/* The open file still has its operations and its state. */
	EXPECT_EQ(2, ioctl(child, CHILD_STAMP, 0));
	EXPECT_EQ(2u, load_count(page));
	pfd.fd = child;
	EXPECT_EQ(1, poll(&pfd, 1, 1000));
	EXPECT_EQ(-1, ioctl(child, RESET, 0));
	EXPECT_EQ(ENOTTY, errno);

	/* A new child can be registered under the same name again. */
	ASSERT_EQ(0, ioctl(self->fd, ADD_CHILD, 0));
	ASSERT_EQ(0, ioctl(self->fd, REMOVE_CHILD, 0));

	/*
	 * With the parent file gone (unmapped and closed), the child's file alone
	 * keeps the module loaded: rmmod is refused while it is open.
	 */
	EXPECT_EQ(0, munmap(self->count, PAGE));
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
	EXPECT_NE(0, syscall(SYS_delete_module, "rust_misc_ring", O_NONBLOCK));
	EXPECT_TRUE(errno == EWOULDBLOCK || errno == EBUSY);

	EXPECT_EQ(3, ioctl(child, CHILD_STAMP, 0));
	EXPECT_EQ(0, munmap(page, PAGE));
	EXPECT_EQ(0, close(child));
}

TEST_HARNESS_MAIN
