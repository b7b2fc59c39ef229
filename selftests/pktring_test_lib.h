/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kselftest-harness side of the rust_pktring selftests, shared by the
 * test programs of the module's suite:
 *
 *	pktring_ring_test.c		ring
 *	pktring_validation_test.c	validation
 *	pktring_traffic_test.c		traffic
 *	pktring_lifecycle_test.c	lifecycle
 *	pktring_access_test.c		privilege, isolation, netns, early_poll,
 *					rdonly
 *	pktring_module_test.c		module
 *
 * selftests/guest/suite.sh runs them in that order (pktring_locks_test, a
 * plain program, between lifecycle and access): the module fixture unloads
 * and reloads the module, so it runs last.
 *
 * Run in the qemu test guest (selftests/guest/run_tests.sh runs each test on
 * its own and watches the kernel log). Traffic comes from the host through
 * `pktring-traffic`; every capture is IPv4, PRE_ROUTING, on the guest's
 * test device (PKTRING_GUEST_IFNAME of testnet.env), so counts are exact.
 * Tests that need traffic skip without the test network; a whole program
 * skips (exit 4) without /dev/pktring.
 *
 * Counts are exact because the tests never let the ring overflow unless they
 * mean to (bursts no larger than the free frames, one host request each) and
 * wait for the guest's UDP counters, which move only after the hooks ran.
 *
 * Environment: PKTRING_VERBOSE=1 prints the host traffic generator's output;
 * PKTRING_MODULE is the module file the module fixture reloads (default
 * /lib/modules/rust_pktring.ko).
 *
 * Each program includes this header and ends with
 *	int main(int argc, char **argv) { return pktring_test_main(argc, argv); }
 * Helpers that do not need the harness are in pktring_lib.h.
 */
#ifndef PKTRING_TEST_LIB_H
#define PKTRING_TEST_LIB_H

#include "pktring_lib.h"

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

static UNUSED const char *errname(int err)
{
	return err ? strerror(err < 0 ? -err : err) : "success";
}

/*
 * Sends count packets over flows flows (flow numbers from flow_base) and
 * waits until the guest's UDP has taken them in, i.e. every hook ran for
 * them. Returns the packets UDP saw (count unless something is lost).
 */
static UNUSED long long send_and_settle(struct __test_metadata *_metadata, uint16_t dport,
					unsigned int flows, unsigned int count,
					unsigned int size, unsigned int flow_base)
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
/* module helpers (lifecycle and module)                              */

static UNUSED const char *module_path(void)
{
	const char *p = getenv("PKTRING_MODULE");

	return p && *p ? p : "/lib/modules/" PKTRING_MODNAME ".ko";
}

static UNUSED bool module_loaded(void)
{
	return !access("/sys/module/" PKTRING_MODNAME "/initstate", F_OK);
}

static UNUSED int module_insert(void)
{
	int fd = open(module_path(), O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

static UNUSED int module_remove(void)
{
	return syscall(SYS_delete_module, PKTRING_MODNAME, O_NONBLOCK) ? -errno : 0;
}

static UNUSED int module_refcnt(void)
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

/* The value of line "key:\t" of fd's fdinfo, or "" if there is none. */
static UNUSED const char *fdinfo(int fd, const char *key, char *out, size_t len)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	FILE *f;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return out;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':' && line[klen + 1] == '\t') {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, len, "%s", line + klen + 2);
			break;
		}
	}
	fclose(f);
	return out;
}

/* The lines of /proc/pktring whose pid is pid, into out (n at most); returns how many, -1 on error. */
static UNUSED int proc_lines(pid_t pid, char out[][256], int n)
{
	char line[256];
	int found = 0;
	FILE *f = fopen("/proc/pktring", "r");

	if (!f)
		return -1;
	if (!fgets(line, sizeof(line), f) || strncmp(line, "pid ", 4)) {
		fclose(f);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		if (atoi(line) != pid)
			continue;
		if (found < n) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out[found], 256, "%s", line);
		}
		found++;
	}
	fclose(f);
	return found;
}

/* Reads the counters and checks packets = delivered + drops + filtered. */
static UNUSED void check_accounting(struct __test_metadata *_metadata,
				    const struct ring *r, struct pktring_stats *st,
				    const char *what)
{
	unsigned int n = ring_count_user(r);

	ASSERT_EQ(0, get_stats(r, st)) TH_LOG("%s: GET_STATS", what);
	EXPECT_EQ(st->packets, n + st->drops + st->filtered)
		TH_LOG("%s: packets %llu, but %u delivered + %llu dropped + %llu filtered", what,
		       (unsigned long long)st->packets, n, (unsigned long long)st->drops,
		       (unsigned long long)st->filtered);
}

/*
 * main() of every program: -l and -h work anywhere; without the device the
 * whole program skips.
 */
static UNUSED int pktring_test_main(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-l") || !strcmp(argv[i], "-h"))
			return test_harness_run(argc, argv);
	if (access(PKTRING_DEV, F_OK))
		ksft_exit_skip(NO_DEVICE_MSG "\n");
	return test_harness_run(argc, argv);
}

#endif /* PKTRING_TEST_LIB_H */
