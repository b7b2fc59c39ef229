// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests: the module fixture, on the kselftest harness.
 *
 *	module		rmmod refused while in use, then unload and reload
 *
 * It runs last in a suite run (it unloads the module, and its teardown loads
 * it again). PKTRING_MODULE is the module file it reloads (default
 * /lib/modules/rust_pktring.ko).
 *
 * One of the programs of the module's kselftest suite; what they have in
 * common, and the order suite.sh runs them in, is in pktring_test_lib.h.
 */
#include "pktring_test_lib.h"

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
	return pktring_test_main(argc, argv);
}
