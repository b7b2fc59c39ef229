// SPDX-License-Identifier: GPL-2.0
/*
 * pktring_capture: capture packets through /dev/pktring and show where they
 * came from. Used by `make run` in the guest; a plain consumer of the ABI in
 * rust_pktring_uapi.h and nothing else.
 *
 *	pktring_capture [-n PACKETS] [-t SECONDS] [-i IFNAME] [-- COMMAND...]
 *
 * Sets up a ring (IPv4 and IPv6 at PRE_ROUTING, on IFNAME if given), runs
 * COMMAND in the background (e.g. a request for host traffic), consumes
 * frames until PACKETS were seen or SECONDS passed, then prints a table of
 * frames per producing CPU and RX queue and the ring's stats.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../rust_pktring_uapi.h"

#define MAX_CPUS	64
#define MAX_QUEUES	64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct pktring_req req = {
		.size = sizeof(req), .version = PKTRING_VERSION,
		.block_size = 1 << 16, .block_nr = 16, .frame_size = 2048, .frame_nr = 512,
		.family = PKTRING_FAMILY_BOTH, .hook = PKTRING_HOOK_PRE_ROUTING,
	};
	static unsigned long per[MAX_CPUS][MAX_QUEUES + 1];
	unsigned long want = 1000, seen = 0, bytes = 0;
	double limit = 60, start;
	struct pktring_info info;
	struct pktring_stats st;
	unsigned int slot = 0, fpb;
	unsigned char *ring;
	pid_t child = -1;
	int fd, opt;

	while ((opt = getopt(argc, argv, "n:t:i:")) != -1) {
		switch (opt) {
		case 'n': want = strtoul(optarg, NULL, 0); break;
		case 't': limit = strtod(optarg, NULL); break;
		case 'i':
			req.ifindex = if_nametoindex(optarg);
			if (!req.ifindex) {
				fprintf(stderr, "pktring_capture: no device %s\n", optarg);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: %s [-n PACKETS] [-t SECONDS] [-i IFNAME] [-- COMMAND...]\n", argv[0]);
			return 2;
		}
	}

	fd = open("/dev/pktring", O_RDWR);
	if (fd < 0 || ioctl(fd, PKTRING_IOC_SET_RING, &req) || ioctl(fd, PKTRING_IOC_GET_INFO, &info)) {
		perror("pktring_capture: /dev/pktring");
		return 1;
	}
	ring = mmap(NULL, info.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED) {
		perror("pktring_capture: mmap");
		return 1;
	}
	fpb = info.block_size / info.frame_size;
	printf("ring: %u frames of %u bytes in %u blocks, %llu bytes mapped\n",
	       info.frame_nr, info.frame_size, info.block_nr, (unsigned long long)info.mmap_size);

	if (optind < argc) {
		child = fork();
		if (child == 0) {
			execvp(argv[optind], argv + optind);
			perror("pktring_capture: exec");
			_exit(127);
		}
	}

	start = now();
	while (seen < want && now() - start < limit) {
		struct pktring_frame *f = (void *)(ring + (slot / fpb) * info.block_size +
						   (slot % fpb) * info.frame_size);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (!(__atomic_load_n(&f->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
			poll(&pfd, 1, 200);
			continue;
		}
		per[f->cpu < MAX_CPUS ? f->cpu : MAX_CPUS - 1]
		   [f->rx_queue < MAX_QUEUES ? f->rx_queue : MAX_QUEUES]++;
		bytes += f->tp_len;
		seen++;
		__atomic_store_n(&f->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		slot = (slot + 1) % info.frame_nr;
	}
	if (child > 0)
		waitpid(child, NULL, 0);
	if (ioctl(fd, PKTRING_IOC_GET_STATS, &st)) {
		perror("pktring_capture: stats");
		return 1;
	}

	printf("captured %lu frames, %lu bytes in %.1f s\n", seen, bytes, now() - start);
	printf("frames by producing CPU and RX queue:\n");
	for (int cpu = 0; cpu < MAX_CPUS; cpu++) {
		for (int q = 0; q <= MAX_QUEUES; q++) {
			if (!per[cpu][q])
				continue;
			if (q == MAX_QUEUES)
				printf("  cpu %2d  queue -  %6lu\n", cpu, per[cpu][q]);
			else
				printf("  cpu %2d  queue %d  %6lu\n", cpu, q, per[cpu][q]);
		}
	}
	printf("stats: %llu packets, %llu drops\n", (unsigned long long)st.packets,
	       (unsigned long long)st.drops);
	return seen >= want ? 0 : 1;
}
