// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests: what a capture takes, on the kselftest harness.
 *
 *	filter_checks	PKTRING_IOC_SET_FILTER/DETACH_FILTER: bad programs and
 *			pointers, set, replace, remove (no traffic)
 *	filter		capture filters on real traffic: a rejecting filter
 *			leaves the ring untouched, libpcap's own programs,
 *			the snap length a program returns, replacement while
 *			packets arrive
 *	paths		egress (LOCAL_OUT, POST_ROUTING, netdev EGRESS), any
 *			EtherType at the device hooks (ARP both ways, LLDP and
 *			VLAN over veth, everything on loopback), and the
 *			sockaddr_ll af_packet would report
 *	fdinfo		/proc/PID/fdinfo of a ring through its life, and the
 *			/proc/pktring listing of the namespace's files
 *
 * In every test with traffic: packets = delivered + drops + filtered.
 * The libpcap programs come from gen/bpf_filters.h, which selftests/bpf_gen
 * compiles on the host with libpcap (see the Makefile).
 */
#include "pktring_test_lib.h"
#include "pktring_netlink.h"
#include "bpf_filters.h"

#include <linux/if_ether.h>
#include <linux/neighbour.h>
#include <sched.h>
#include <sys/stat.h>

#define ACCEPT_ALL	{ BPF_RET | BPF_K, 0, 0, 0xffffffffu }
#define REJECT_ALL	{ BPF_RET | BPF_K, 0, 0, 0 }

static const struct sock_filter accept_all[] = { ACCEPT_ALL };
static const struct sock_filter reject_all[] = { REJECT_ALL };

static int set_filter(int fd, const struct sock_filter *insns, unsigned int len)
{
	struct sock_fprog prog = { .len = (unsigned short)len, .filter = (struct sock_filter *)insns };

	return ioctl(fd, PKTRING_IOC_SET_FILTER, &prog) ? -errno : 0;
}

#define SET_FILTER(fd, prog) set_filter(fd, prog, ARRAY_SIZE(prog))

static int detach_filter(int fd)
{
	return ioctl(fd, PKTRING_IOC_DETACH_FILTER) ? -errno : 0;
}

/* The frames of r that belong to user space. */
static unsigned int delivered(const struct ring *r)
{
	return ring_count_user(r);
}


/* ================================================================== */
/* filter_checks: the ioctls, without traffic                          */

FIXTURE(filter_checks) {
	int fd;
};

FIXTURE_SETUP(filter_checks)
{
	REQUIRE_DEVICE();
	self->fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(filter_checks)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Programs the kernel's classic checker refuses, and pointers it cannot read. */
TEST_F(filter_checks, refused)
{
	static const struct sock_filter jump_out[] = {
		{ BPF_JMP | BPF_JEQ | BPF_K, 5, 0, 1 }, REJECT_ALL,
	};
	static const struct sock_filter no_return[] = { { BPF_LD | BPF_W | BPF_ABS, 0, 0, 0 } };
	static const struct sock_filter bad_opcode[] = { { 0xffff, 0, 0, 0 }, REJECT_ALL };
	static const struct sock_filter bad_scratch[] = { { BPF_LD | BPF_MEM, 0, 0, 16 }, REJECT_ALL };
	static const struct sock_filter div_zero[] = {
		{ BPF_ALU | BPF_DIV | BPF_K, 0, 0, 0 }, REJECT_ALL,
	};
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct sock_filter *big;
	struct sock_fprog prog;
	uint8_t *two;
	unsigned int i;

	EXPECT_EQ(-EINVAL, set_filter(self->fd, accept_all, 0)) TH_LOG("no instructions");
	EXPECT_EQ(-EINVAL, set_filter(self->fd, NULL, 1)) TH_LOG("NULL instructions");
	EXPECT_EQ(-EINVAL, SET_FILTER(self->fd, jump_out));
	EXPECT_EQ(-EINVAL, SET_FILTER(self->fd, no_return));
	EXPECT_EQ(-EINVAL, SET_FILTER(self->fd, bad_opcode));
	EXPECT_EQ(-EINVAL, SET_FILTER(self->fd, bad_scratch));
	EXPECT_EQ(-EINVAL, SET_FILTER(self->fd, div_zero));

	/* BPF_MAXINSNS instructions pass, one more does not. */
	big = calloc(BPF_MAXINSNS + 1, sizeof(*big));
	ASSERT_NE(NULL, big);
	for (i = 0; i <= BPF_MAXINSNS; i++)
		big[i] = (struct sock_filter)REJECT_ALL;
	EXPECT_EQ(0, set_filter(self->fd, big, BPF_MAXINSNS));
	EXPECT_EQ(-EINVAL, set_filter(self->fd, big, BPF_MAXINSNS + 1));
	free(big);

	/* Instructions that run into an unmapped page, or start in one. */
	two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, munmap(two + pg, pg));
	memcpy(two + pg - sizeof(accept_all), accept_all, sizeof(accept_all));
	EXPECT_EQ(0, set_filter(self->fd, (void *)(two + pg - sizeof(accept_all)), 1));
	EXPECT_EQ(-EFAULT, set_filter(self->fd, (void *)(two + pg - sizeof(accept_all)), 2));
	EXPECT_EQ(-EFAULT, set_filter(self->fd, (void *)(two + pg), 1));
	/* The struct sock_fprog itself unreadable. */
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, PKTRING_IOC_SET_FILTER, NULL));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->fd, PKTRING_IOC_SET_FILTER, two + pg - 8));
	EXPECT_EQ(EFAULT, errno);
	munmap(two, pg);

	/* A 32-bit struct sock_fprog is not ours: an unknown command. */
	errno = 0;
	memset(&prog, 0, sizeof(prog));
	EXPECT_EQ(-1, ioctl(self->fd, _IOW(PKTRING_IOC_MAGIC, 4, char[8]), &prog));
	EXPECT_EQ(ENOTTY, errno);
}

/* Set, replace, remove, before and after SET_RING; the ring still works. */
TEST_F(filter_checks, lifecycle)
{
	struct pktring_req req;
	struct ring r;

	EXPECT_EQ(-ENOENT, detach_filter(self->fd)) TH_LOG("no filter yet");
	EXPECT_EQ(0, SET_FILTER(self->fd, reject_all));
	EXPECT_EQ(0, SET_FILTER(self->fd, accept_all)) TH_LOG("replace");
	EXPECT_EQ(0, SET_FILTER(self->fd, filter_udp_9021));
	EXPECT_EQ(0, detach_filter(self->fd));
	EXPECT_EQ(-ENOENT, detach_filter(self->fd));
	EXPECT_EQ(0, SET_FILTER(self->fd, reject_all));

	req_init(&req, 4096, 4, 2048);
	req.ifindex = 0;
	ASSERT_EQ(0, set_ring(self->fd, &req));
	ASSERT_EQ(0, ring_attach(&r, self->fd, PROT_READ | PROT_WRITE));
	EXPECT_EQ(0, SET_FILTER(self->fd, accept_all));
	EXPECT_EQ(0, detach_filter(self->fd));
	EXPECT_EQ(-ENOENT, detach_filter(self->fd));
	EXPECT_EQ(0, SET_FILTER(self->fd, filter_raw_udp_9031));
	munmap(r.map, r.map_len);
	/* The file closes in teardown, with its filter. */
}

/* ================================================================== */
/* filter: on the host's traffic into the guest                        */

FIXTURE(filter) {
	struct ring r[2];
};

FIXTURE_SETUP(filter)
{
	rings_init(self->r, ARRAY_SIZE(self->r));
	REQUIRE_DEVICE();
	REQUIRE_TRAFFIC();
}

FIXTURE_TEARDOWN(filter)
{
	rings_teardown(self->r, ARRAY_SIZE(self->r));
}

/* Opens a ring with its filter set before SET_RING, so that no packet escapes it. */
static int ring_create_filtered(struct ring *r, const struct pktring_req *req,
				const struct sock_filter *insns, unsigned int len)
{
	int fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = set_filter(fd, insns, len);
	if (!ret)
		ret = set_ring(fd, req);
	if (!ret)
		ret = ring_attach(r, fd, PROT_READ | PROT_WRITE);
	else
		close(fd);
	if (!ret) {
		r->scratch = malloc(r->info.frame_size);
		ret = r->scratch ? 0 : -ENOMEM;
	}
	return ret;
}

/*
 * A filter that rejects everything: no slot is taken and no byte of the
 * ring is written, while filtered counts every packet.
 */
TEST_F_TIMEOUT(filter, reject_all_leaves_ring_untouched, 120)
{
	const unsigned int n = 200;
	struct ring *r = &self->r[0];
	struct pktring_req req;
	struct pktring_stats st;
	size_t i, nonzero = 0;

	req_init(&req, 4096, 16, 2048);
	ASSERT_EQ(0, ring_create_filtered(r, &req, reject_all, 1));
	ASSERT_EQ(n, send_and_settle(_metadata, 9020, 4, n, 64, 0));
	for (i = 0; i < r->map_len; i++)
		nonzero += r->map[i] != 0;
	EXPECT_EQ(0u, nonzero) TH_LOG("%zu bytes of the ring were written", nonzero);
	check_accounting(_metadata, r, &st, "reject all");
	EXPECT_EQ(n, st.packets);
	EXPECT_EQ(n, st.filtered);
	EXPECT_EQ(0u, st.drops);
}

/*
 * libpcap's program for "udp dst port 9021" (DLT_EN10MB): of 100 packets
 * to 9021 and 100 to 9022 the ring holds the first 100, checked whole, and
 * the others are counted as filtered. Then a program with snaplen 100
 * shortens what is captured, not tp_len.
 */
TEST_F_TIMEOUT(filter, libpcap_programs, 180)
{
	const unsigned int n = 100;
	struct ring *r = &self->r[0], *s = &self->r[1];
	struct pktring_req req;
	struct pktring_stats st;
	struct frame_info fi;
	struct expect e;
	unsigned int i, nbad = 0;
	char why[256];

	req_init(&req, 4096, 128, 2048);
	ASSERT_EQ(0, ring_create_filtered(r, &req, filter_udp_9021, ARRAY_SIZE(filter_udp_9021)));
	ASSERT_EQ(n, send_and_settle(_metadata, 9021, 4, n, 200, 0));
	ASSERT_EQ(n, send_and_settle(_metadata, 9022, 4, n, 200, 0));
	EXPECT_EQ(n, delivered(r));
	expect_init(&e, 9021, 200);
	for (i = 0; i < delivered(r); i++) {
		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
		} else if (!fi.full && !nbad++) {
			TH_LOG("frame %u: not captured whole", i);
		}
	}
	EXPECT_EQ(0u, nbad);
	check_accounting(_metadata, r, &st, "udp dst port 9021");
	EXPECT_EQ(2 * n, st.packets);
	EXPECT_EQ(n, st.filtered);
	EXPECT_EQ(0u, st.drops);
	ring_destroy(r);

	/* "udp dst port 9023" compiled with snaplen 100: 100 bytes from the MAC header. */
	ASSERT_EQ(0, ring_create_filtered(s, &req, filter_udp_9023_snap100,
					  ARRAY_SIZE(filter_udp_9023_snap100)));
	ASSERT_EQ(n, send_and_settle(_metadata, 9023, 4, n, 200, 0));
	EXPECT_EQ(n, delivered(s));
	for (i = 0, nbad = 0; i < delivered(s); i++) {
		const struct pktring_frame *f = ring_frame(s, i);

		if ((f->tp_snaplen != 100 || f->tp_len != UDP4_HDRS + 200) && !nbad++)
			TH_LOG("frame %u: tp_snaplen %u tp_len %u, want 100 and %u", i,
			       f->tp_snaplen, f->tp_len, UDP4_HDRS + 200);
	}
	EXPECT_EQ(0u, nbad);
	check_accounting(_metadata, s, &st, "snaplen 100");
	EXPECT_EQ(n, st.packets);
	EXPECT_EQ(0u, st.filtered);
}

/*
 * The filter replaced and removed over and over while 6000 packets arrive
 * over 3 s (each swap waits for an RCU grace period, some 100 ms under TCG):
 * every packet meets one program or none, nothing is lost to the swap, both
 * verdicts were given, and every frame captured is a whole, valid packet.
 */
TEST_F_TIMEOUT(filter, replaced_while_capturing, 300)
{
	const unsigned int n = 6000;
	struct ring *r = &self->r[0];
	struct pktring_req req;
	struct pktring_stats st;
	struct traffic t;
	struct frame_info fi;
	struct expect e;
	long long base;
	unsigned int i, swaps = 0, during = 0, nbad = 0;
	char why[256];
	siginfo_t done;

	req_init(&req, 4096, 1024, 512);
	ASSERT_EQ(0, ring_create(r, &req));
	base = udp_rx_total();
	ASSERT_EQ(0, traffic_start(&t, "udp --dst " GUEST_IP4 " --dport 9024 --flows 8 --count %u --size 64 --flow-base 0 --rate 2000", n));
	do {
		long long got = udp_rx_total() - base;

		during += got > 0 && got < n;
		switch (swaps++ % 4) {
		case 0: ASSERT_EQ(0, SET_FILTER(r->fd, reject_all)); break;
		case 1: ASSERT_EQ(0, SET_FILTER(r->fd, filter_udp_9021)); break;
		case 2: ASSERT_EQ(0, SET_FILTER(r->fd, accept_all)); break;
		case 3: ASSERT_EQ(0, detach_filter(r->fd)); break;
		}
		usleep(500);
		memset(&done, 0, sizeof(done));
		/* Without reaping it: traffic_wait() does that below. */
	} while (!waitid(P_PID, t.pid, &done, WEXITED | WNOHANG | WNOWAIT) && !done.si_pid);
	EXPECT_EQ(0, traffic_wait(&t, NULL));
	EXPECT_EQ(n, wait_udp(base, n, UDP_TIMEOUT_MS));
	diag("%u filter swaps, %u of them while packets arrived; %u frames delivered", swaps,
	     during, delivered(r));
	expect_init(&e, 9024, 64);
	for (i = 0; i < delivered(r); i++) {
		if (check_frame(r, i, &e, &fi, why, sizeof(why))) {
			nbad++;
			REPORT_BAD(nbad, why);
		}
	}
	EXPECT_EQ(0u, nbad);
	check_accounting(_metadata, r, &st, "swaps");
	EXPECT_EQ(n, st.packets);
	EXPECT_EQ(0u, st.drops);
	EXPECT_LE(4u, during);
	EXPECT_LT(0u, st.filtered) TH_LOG("no packet met a rejecting program");
	EXPECT_LT(0u, delivered(r)) TH_LOG("no packet met an accepting one");
}

/* ================================================================== */
/* paths: egress, EtherTypes, sockaddr_ll                              */

FIXTURE(paths) {
	struct ring r[4];
	char veth[2][IFNAMSIZ];
};

FIXTURE_SETUP(paths)
{
	rings_init(self->r, ARRAY_SIZE(self->r));
	memset(self->veth, 0, sizeof(self->veth));
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(paths)
{
	rings_teardown(self->r, ARRAY_SIZE(self->r));
	link_del_name(self->veth[0][0] ? self->veth[0] : NULL);
}

/* Sends n UDP datagrams of size bytes from a new socket to addr:port. */
static int udp_send(const char *addr, uint16_t port, unsigned int n, unsigned int size)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	char buf[2048] = { 0 };
	unsigned int i;
	int s, ret = 0;

	inet_pton(AF_INET, addr, &to.sin_addr);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	for (i = 0; i < n && !ret; i++) {
		memcpy(buf, &i, sizeof(i));
		if (sendto(s, buf, size, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)size)
			ret = -errno;
	}
	close(s);
	return ret;
}

/*
 * A UDP socket bound to 127.0.0.1:port, so that datagrams sent there on
 * loopback are taken in and no ICMP error comes back. Returns it or -errno.
 */
static int lo_receiver(uint16_t port)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	if (bind(s, (struct sockaddr *)&me, sizeof(me))) {
		int err = -errno;

		close(s);
		return err;
	}
	return s;
}

/* A device request: ring on ifindex at hook, capturing ethertype (family 0), or IPv4 if 0. */
static void dev_req(struct pktring_req *req, uint16_t hook, int ifindex, uint32_t ethertype)
{
	req_init(req, 4096, 64, 2048);
	req->hook = hook;
	req->ifindex = ifindex;
	req->ethertype = ethertype;
	if (ethertype)
		req->family = 0;
}

/* Returns true if the packet of f, from tp_net, is IPv4/UDP to port. */
static bool is_udp_to(const struct pktring_frame *f, uint16_t port)
{
	const uint8_t *ip = (const uint8_t *)f + f->tp_net;

	return f->tp_snaplen >= (unsigned int)(f->tp_net - f->tp_mac) + 28 && ip[0] == 0x45 &&
	       ip[9] == IPPROTO_UDP && get16be(ip + 22) == port;
}

/* The frames of r whose packet is IPv4/UDP to port. */
static unsigned int count_udp(const struct ring *r, uint16_t port)
{
	unsigned int i, n = 0;

	for (i = 0; i < delivered(r); i++)
		n += is_udp_to(ring_frame(r, i), port);
	return n;
}

static const struct sockaddr_ll *frame_sll(const struct ring *r, unsigned int i)
{
	return (const void *)((const uint8_t *)ring_frame(r, i) + r->info.sll_offset);
}

/*
 * What this host sends to the host side: LOCAL_OUT and POST_ROUTING see
 * the packet from its network header (no link-layer header yet), the
 * netdev EGRESS hook from its Ethernet header with our own MAC as source;
 * all three say PACKET_OUTGOING on the test interface.
 */
TEST_F_TIMEOUT(paths, egress_hooks, 120)
{
	const unsigned int n = 50;
	const uint16_t port = 9040;
	static const char *const names[3] = { "LOCAL_OUT", "POST_ROUTING", "EGRESS" };
	int ifindex = test_ifindex();
	struct pktring_req req;
	struct pktring_stats st;
	uint8_t mac[6];
	unsigned int i, j, nbad;

	if (ifindex <= 0 || test_if_mac(mac))
		SKIP(return, "no " TEST_IFNAME " here");
	dev_req(&req, PKTRING_HOOK_LOCAL_OUT, ifindex, 0);
	ASSERT_EQ(0, ring_create(&self->r[0], &req));
	dev_req(&req, PKTRING_HOOK_POST_ROUTING, 0, 0);
	ASSERT_EQ(0, ring_create(&self->r[1], &req));
	dev_req(&req, PKTRING_HOOK_EGRESS, ifindex, 0);
	ASSERT_EQ(0, ring_create(&self->r[2], &req));
	ASSERT_EQ(0, udp_send(HOST_IP4, port, n, 100));
	sleep_ms(300);
	for (j = 0; j < 3; j++) {
		const struct ring *r = &self->r[j];

		EXPECT_EQ(n, count_udp(r, port)) TH_LOG("%s", names[j]);
		for (i = 0, nbad = 0; i < delivered(r); i++) {
			const struct pktring_frame *f = ring_frame(r, i);
			const struct sockaddr_ll *sll = frame_sll(r, i);
			const uint8_t *pkt = (const uint8_t *)f + f->tp_mac;
			unsigned int maclen = j == 2 ? ETH_HDR_LEN : 0;

			if (!is_udp_to(f, port))
				continue;
			if (sll->sll_protocol != htons(ETH_P_IP) || sll->sll_ifindex != ifindex ||
			    sll->sll_pkttype != PACKET_OUTGOING ||
			    (unsigned int)(f->tp_net - f->tp_mac) != maclen || sll->sll_halen != (j == 2 ? 6 : 0) ||
			    f->tp_len != f->tp_snaplen) {
				if (!nbad++)
					TH_LOG("%s frame %u: protocol %#x ifindex %d pkttype %u halen %u tp_mac %u tp_net %u len %u/%u",
					       names[j], i, ntohs(sll->sll_protocol), sll->sll_ifindex,
					       sll->sll_pkttype, sll->sll_halen, f->tp_mac, f->tp_net,
					       f->tp_snaplen, f->tp_len);
				continue;
			}
			if (j == 2 && (memcmp(pkt + 6, mac, 6) || memcmp(sll->sll_addr, mac, 6) ||
				       get16be(pkt + 12) != ETH_P_IP) && !nbad++)
				TH_LOG("EGRESS frame %u: not from our MAC, or not IPv4", i);
		}
		EXPECT_EQ(0u, nbad) TH_LOG("%s", names[j]);
		check_accounting(_metadata, r, &st, names[j]);
		EXPECT_EQ(0u, st.filtered);
	}
}

/* Deletes the neighbour entry of addr on ifindex, so that the next packet to it asks by ARP. */
static int neigh_del(int ifindex, const char *addr)
{
	struct {
		struct nlmsghdr nh;
		struct ndmsg nd;
		char attrs[64];
	} req;
	struct in_addr a;

	memset(&req, 0, sizeof(req));
	inet_pton(AF_INET, addr, &a);
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
	req.nh.nlmsg_type = RTM_DELNEIGH;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nd.ndm_family = AF_INET;
	req.nd.ndm_ifindex = ifindex;
	rta_add(&req.nh, NDA_DST, &a, sizeof(a));
	return rtnl_request(&req.nh);
}

/* The ARP frames of r with operation op whose sender protocol address is spa. */
static unsigned int count_arp(const struct ring *r, uint16_t op, const char *spa)
{
	unsigned int i, n = 0;
	struct in_addr a;

	inet_pton(AF_INET, spa, &a);
	for (i = 0; i < delivered(r); i++) {
		const struct pktring_frame *f = ring_frame(r, i);
		const uint8_t *arp = (const uint8_t *)f + f->tp_net;

		if (frame_sll(r, i)->sll_protocol == htons(ETH_P_ARP) &&
		    f->tp_net - f->tp_mac == ETH_HDR_LEN && f->tp_snaplen >= ETH_HDR_LEN + 28 &&
		    get16be((const uint8_t *)f + f->tp_mac + 12) == ETH_P_ARP &&
		    get16be(arp + 6) == op && !memcmp(arp + 14, &a, 4))
			n++;
	}
	return n;
}

/*
 * ARP at the device hooks, in both directions: with the host's neighbour
 * entry gone, a datagram to it makes this host ask (EGRESS, 0x0806) and the
 * host answer (INGRESS, 0x0806); the IPv4 ring beside them sees no ARP.
 */
TEST_F_TIMEOUT(paths, arp_both_ways, 120)
{
	int ifindex = test_ifindex();
	struct pktring_req req;
	struct pktring_stats st;
	unsigned int i;

	if (ifindex <= 0)
		SKIP(return, "no " TEST_IFNAME " here");
	dev_req(&req, PKTRING_HOOK_EGRESS, ifindex, ETH_P_ARP);
	ASSERT_EQ(0, ring_create(&self->r[0], &req));
	dev_req(&req, PKTRING_HOOK_INGRESS, ifindex, ETH_P_ARP);
	ASSERT_EQ(0, ring_create(&self->r[1], &req));
	dev_req(&req, PKTRING_HOOK_INGRESS, ifindex, 0);
	ASSERT_EQ(0, ring_create(&self->r[2], &req));
	ASSERT_EQ(0, neigh_del(ifindex, HOST_IP4));
	ASSERT_EQ(0, udp_send(HOST_IP4, 9041, 1, 32));
	for (i = 0; i < 50 && !(count_arp(&self->r[1], 2, HOST_IP4)); i++)
		sleep_ms(100);
	EXPECT_LE(1u, count_arp(&self->r[0], 1, GUEST_IP4)) TH_LOG("no ARP request went out");
	EXPECT_LE(1u, count_arp(&self->r[1], 2, HOST_IP4)) TH_LOG("no ARP reply came in");
	EXPECT_EQ(delivered(&self->r[0]), count_arp(&self->r[0], 1, GUEST_IP4) +
					   count_arp(&self->r[0], 2, GUEST_IP4));
	EXPECT_EQ(PACKET_OUTGOING, frame_sll(&self->r[0], 0)->sll_pkttype);
	EXPECT_EQ(PACKET_HOST, frame_sll(&self->r[1], 0)->sll_pkttype);
	EXPECT_EQ(6, frame_sll(&self->r[1], 0)->sll_halen);
	EXPECT_EQ(0u, count_arp(&self->r[2], 2, HOST_IP4));
	for (i = 0; i < 3; i++)
		check_accounting(_metadata, &self->r[i], &st, "ARP");
}

/* Loopback: af_packet reports a 6-byte address for its Ethernet-style header. */
TEST_F_TIMEOUT(paths, loopback_every_ethertype, 60)
{
	const unsigned int n = 20;
	struct pktring_req req;
	struct pktring_stats st;
	unsigned int i, j;
	int rx;

	rx = lo_receiver(9042);
	ASSERT_LE(0, rx);
	dev_req(&req, PKTRING_HOOK_INGRESS, 1, PKTRING_ETH_P_ALL);
	ASSERT_EQ(0, ring_create(&self->r[0], &req));
	dev_req(&req, PKTRING_HOOK_EGRESS, 1, PKTRING_ETH_P_ALL);
	ASSERT_EQ(0, ring_create(&self->r[1], &req));
	dev_req(&req, PKTRING_HOOK_INGRESS, 1, ETH_P_IPV6);
	ASSERT_EQ(0, ring_create(&self->r[2], &req));
	ASSERT_EQ(0, udp_send("127.0.0.1", 9042, n, 40));
	sleep_ms(200);
	close(rx);
	for (j = 0; j < 2; j++) {
		const struct ring *r = &self->r[j];

		EXPECT_EQ(n, count_udp(r, 9042));
		for (i = 0; i < delivered(r); i++) {
			const struct sockaddr_ll *sll = frame_sll(r, i);

			if (!is_udp_to(ring_frame(r, i), 9042))
				continue;
			if (sll->sll_hatype != ARPHRD_LOOPBACK || sll->sll_halen != 6 ||
			    sll->sll_pkttype != (j ? PACKET_OUTGOING : PACKET_HOST) ||
			    ring_frame(r, i)->tp_net - ring_frame(r, i)->tp_mac != ETH_HDR_LEN) {
				TH_LOG("%s frame %u: hatype %u halen %u pkttype %u", j ? "egress" : "ingress",
				       i, sll->sll_hatype, sll->sll_halen, sll->sll_pkttype);
				EXPECT_TRUE(false);
				break;
			}
		}
		check_accounting(_metadata, r, &st, "loopback");
	}
	EXPECT_EQ(0u, count_udp(&self->r[2], 9042)) TH_LOG("an IPv6-only ring took IPv4");
}

/* Sends n LLDP frames out of ifindex through an af_packet socket. */
static int lldp_send(int ifindex, unsigned int n)
{
	static const uint8_t dst[6] = { 0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e };
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(0x88cc),
				  .sll_ifindex = ifindex, .sll_halen = 6 };
	uint8_t payload[60] = { 0x02, 0x07, 0x04 };
	unsigned int i;
	int s, ret = 0;

	memcpy(to.sll_addr, dst, 6);
	s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	for (i = 0; i < n && !ret; i++)
		if (sendto(s, payload, sizeof(payload), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			ret = -errno;
	close(s);
	return ret;
}

/*
 * LLDP over a veth pair, as one EtherType of a device hook: n frames out of
 * one end (EGRESS, 0x88cc) and into the other (INGRESS, 0x88cc), exactly,
 * multicast on the way in; then n more through a VLAN device on top, whose
 * tag the ingress ring reports.
 */
TEST_F_TIMEOUT(paths, lldp_and_vlan_over_veth, 120)
{
	const unsigned int n = 30;
	struct pktring_req req;
	struct pktring_stats st;
	int a, b, v, ret;
	unsigned int i, tagged = 0, nbad = 0;

	snprintf(self->veth[0], IFNAMSIZ, "pktcap-a");
	ret = veth_fresh("pktcap-a", "pktcap-b");
	if (ret)
		SKIP(return, "no veth devices here (%s)", errname(ret));
	a = (int)if_nametoindex("pktcap-a");
	b = (int)if_nametoindex("pktcap-b");
	ASSERT_EQ(0, link_up(a));
	ASSERT_EQ(0, link_up(b));
	dev_req(&req, PKTRING_HOOK_EGRESS, a, 0x88cc);
	ASSERT_EQ(0, ring_create(&self->r[0], &req));
	dev_req(&req, PKTRING_HOOK_INGRESS, b, 0x88cc);
	ASSERT_EQ(0, ring_create(&self->r[1], &req));
	ASSERT_EQ(0, lldp_send(a, n));
	sleep_ms(200);
	EXPECT_EQ(n, delivered(&self->r[0]));
	EXPECT_EQ(n, delivered(&self->r[1]));
	for (i = 0; i < delivered(&self->r[1]); i++) {
		const struct pktring_frame *f = ring_frame(&self->r[1], i);
		const struct sockaddr_ll *sll = frame_sll(&self->r[1], i);

		if ((sll->sll_protocol != htons(0x88cc) || sll->sll_pkttype != PACKET_MULTICAST ||
		     sll->sll_halen != 6 || f->tp_net - f->tp_mac != ETH_HDR_LEN ||
		     get16be((const uint8_t *)f + f->tp_mac + 12) != 0x88cc) && !nbad++)
			TH_LOG("ingress frame %u: protocol %#x pkttype %u halen %u", i,
			       ntohs(sll->sll_protocol), sll->sll_pkttype, sll->sll_halen);
	}
	EXPECT_EQ(0u, nbad);
	EXPECT_EQ(PACKET_OUTGOING, frame_sll(&self->r[0], 0)->sll_pkttype);
	for (i = 0; i < 2; i++) {
		check_accounting(_metadata, &self->r[i], &st, "LLDP");
		EXPECT_EQ(n, st.packets);
	}
	ring_destroy(&self->r[1]);

	/* The same EtherType through VLAN 7: the tag is reported, the EtherType is the inner one. */
	ret = vlan_add("pktcap-a.7", a, 7);
	ASSERT_EQ(0, ret) TH_LOG("adding a VLAN device: %s", errname(ret));
	v = (int)if_nametoindex("pktcap-a.7");
	ASSERT_EQ(0, link_up(v));
	dev_req(&req, PKTRING_HOOK_INGRESS, b, 0x88cc);
	ASSERT_EQ(0, ring_create(&self->r[1], &req));
	ASSERT_EQ(0, lldp_send(v, n));
	sleep_ms(200);
	EXPECT_EQ(n, delivered(&self->r[1]));
	for (i = 0; i < delivered(&self->r[1]); i++) {
		const struct pktring_frame *f = ring_frame(&self->r[1], i);

		tagged += (frame_status(f) & TP_STATUS_VLAN_VALID) && (f->tp_vlan_tci & 0xfff) == 7 &&
			  f->tp_vlan_tpid == ETH_P_8021Q;
	}
	EXPECT_EQ(n, tagged);
	check_accounting(_metadata, &self->r[1], &st, "VLAN");
}

/* ================================================================== */
/* fdinfo                                                              */

FIXTURE(fdinfo) {
	struct ring r;
};

FIXTURE_SETUP(fdinfo)
{
	ring_init(&self->r);
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(fdinfo)
{
	ring_destroy(&self->r);
}

TEST_F_TIMEOUT(fdinfo, through_a_ring_life, 60)
{
	struct pktring_req req;
	struct pktring_stats st;
	char v[256], want[256];
	struct stat ns;
	int fd, rx;

	fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, stat("/proc/self/ns/net", &ns));
	EXPECT_STREQ("idle", fdinfo(fd, "pktring-state", v, sizeof(v)));
	snprintf(want, sizeof(want), "%lu", (unsigned long)ns.st_ino);
	EXPECT_STREQ(want, fdinfo(fd, "pktring-netns", v, sizeof(v)));
	EXPECT_STREQ("none", fdinfo(fd, "pktring-filter", v, sizeof(v)));
	EXPECT_STREQ("", fdinfo(fd, "pktring-hook", v, sizeof(v)));
	ASSERT_EQ(0, SET_FILTER(fd, filter_udp_9021));
	snprintf(want, sizeof(want), "%zu instructions", ARRAY_SIZE(filter_udp_9021));
	EXPECT_STREQ(want, fdinfo(fd, "pktring-filter", v, sizeof(v)));
	ASSERT_EQ(0, SET_FILTER(fd, accept_all));

	dev_req(&req, PKTRING_HOOK_INGRESS, 1, 0);
	req.block_nr = 8;
	req.frame_nr = 16;
	ASSERT_EQ(0, set_ring(fd, &req));
	ASSERT_EQ(0, ring_attach(&self->r, fd, PROT_READ | PROT_WRITE));
	EXPECT_STREQ("capturing", fdinfo(fd, "pktring-state", v, sizeof(v)));
	EXPECT_STREQ("ingress", fdinfo(fd, "pktring-hook", v, sizeof(v)));
	EXPECT_STREQ("ipv4", fdinfo(fd, "pktring-family", v, sizeof(v)));
	EXPECT_STREQ("1", fdinfo(fd, "pktring-ifindex", v, sizeof(v)));
	snprintf(want, sizeof(want), "block_size=4096 block_nr=8 frame_size=2048 frame_nr=16 snaplen=%u",
		 self->r.info.snaplen);
	EXPECT_STREQ(want, fdinfo(fd, "pktring-ring", v, sizeof(v)));
	EXPECT_STREQ("1 instructions", fdinfo(fd, "pktring-filter", v, sizeof(v)));

	/* 10 datagrams to a receiver on loopback... */
	rx = lo_receiver(9043);
	ASSERT_LE(0, rx);
	ASSERT_EQ(0, udp_send("127.0.0.1", 9043, 10, 40));
	sleep_ms(100);
	EXPECT_STREQ("packets=10 delivered=10 drops=0 filtered=0",
		     fdinfo(fd, "pktring-counters", v, sizeof(v)));
	/* ...then reading the counters clears them, but not the totals. */
	ASSERT_EQ(0, get_stats(&self->r, &st));
	EXPECT_EQ(10u, st.packets);
	ASSERT_EQ(0, SET_FILTER(fd, reject_all));
	ASSERT_EQ(0, udp_send("127.0.0.1", 9043, 20, 40));
	sleep_ms(100);
	close(rx);
	EXPECT_STREQ("packets=30 delivered=10 drops=0 filtered=20",
		     fdinfo(fd, "pktring-counters", v, sizeof(v)));
	ASSERT_EQ(0, get_stats(&self->r, &st));
	EXPECT_EQ(20u, st.packets);
	EXPECT_EQ(20u, st.filtered);
}

/*
 * /proc/pktring lists every open file of the device in the reader's
 * namespace: an idle one and a capturing one with its counters, neither
 * from another namespace, and a file no longer once it is closed.
 */
TEST_F_TIMEOUT(fdinfo, proc_listing, 60)
{
	char lines[4][256], state[32], hook[32], family[32], fanout[32];
	unsigned long long packets, delivered, drops, filtered;
	int fd, fd2, ifindex, frames, size, filter, n, rx, status, i;
	struct pktring_req req;
	pid_t child;

	fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	dev_req(&req, PKTRING_HOOK_INGRESS, 1, 0);
	ASSERT_EQ(0, SET_FILTER(fd, accept_all));
	fd2 = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, set_ring(fd2, &req));
	ASSERT_EQ(0, ring_attach(&self->r, fd2, PROT_READ | PROT_WRITE));
	rx = lo_receiver(9044);
	ASSERT_LE(0, rx);
	ASSERT_EQ(0, udp_send("127.0.0.1", 9044, 5, 40));
	sleep_ms(100);
	close(rx);

	n = proc_lines(getpid(), lines, 4);
	ASSERT_EQ(2, n) TH_LOG("want the idle file and the ring");
	for (i = 0; i < n; i++) {
		int got = sscanf(lines[i], "%*d %31s %31s %31s %d %d %d %llu %llu %llu %llu %d %31s",
				 state, hook, family, &ifindex, &frames, &size, &packets, &delivered,
				 &drops, &filtered, &filter, fanout);

		ASSERT_EQ(12, got) TH_LOG("line '%s'", lines[i]);
		EXPECT_STREQ("-", fanout) TH_LOG("neither file is in a fanout group");
		if (!strcmp(state, "idle")) {
			EXPECT_STREQ("-", hook);
			EXPECT_EQ(1, filter) TH_LOG("the idle file's filter");
			continue;
		}
		EXPECT_STREQ("capturing", state);
		EXPECT_STREQ("ingress", hook);
		EXPECT_STREQ("ipv4", family);
		EXPECT_EQ(1, ifindex);
		EXPECT_EQ((int)self->r.info.frame_nr, frames);
		EXPECT_EQ(2048, size);
		EXPECT_EQ(5ull, packets);
		EXPECT_EQ(5ull, delivered);
		EXPECT_EQ(0ull, drops + filtered);
		EXPECT_EQ(0, filter);
	}

	/* Another namespace sees neither. */
	child = fork_flushed();
	ASSERT_LE(0, child);
	if (!child) {
		char l[1][256];
		pid_t parent = getppid();

		if (unshare(CLONE_NEWNET))
			_exit(2);
		_exit(proc_lines(parent, l, 1) == 0 ? 0 : 1);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("another namespace saw this one's files (status %#x)", status);

	close(fd);
	EXPECT_EQ(1, proc_lines(getpid(), lines, 4)) TH_LOG("the closed file is still listed");
}

int main(int argc, char **argv)
{
	return pktring_test_main(argc, argv);
}
