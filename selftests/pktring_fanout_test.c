// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests: fanout groups, on the kselftest harness.
 *
 *	fanout_checks	PKTRING_IOC_JOIN/GET/LEAVE_FANOUT: bad requests,
 *			joining twice or late, members that do not match
 *			their group, a full group, the same id in another
 *			network namespace, the group in /proc/pktring (no
 *			traffic)
 *	fanout		groups on loopback traffic: every packet in exactly
 *			one member; hash keeps both directions of a flow in
 *			one member; cpu members see only their CPUs; queue
 *			members only their RX queues (host traffic);
 *			rollover loses nothing while a member has room, and a
 *			full group's drops are the picked member's; members
 *			join and leave while packets arrive
 *
 * Every packet is a UDP datagram to 127.0.0.1 with a pktgen payload (flow,
 * seq), captured at PRE_ROUTING on lo (ifindex 1), so the tests need no
 * host; but queue mode's, which takes the host's datagrams on the
 * multiqueue test device. In every test: packets = delivered + drops + filtered, per member.
 */
#include "pktring_test_lib.h"
#include "pktring_netlink.h"

#include <sched.h>
#include <sys/wait.h>

#define LO_IFINDEX	1
#define PAYLOAD_LEN	64
#define GROUP_ID	0x5eed

/* ------------------------------------------------------------------ */
/* Groups                                                              */

static int join_fanout(int fd, uint32_t id, uint16_t mode, uint16_t flags)
{
	struct pktring_fanout f = { .id = id, .mode = mode, .flags = flags };

	return ioctl(fd, PKTRING_IOC_JOIN_FANOUT, &f) ? -errno : 0;
}

static int get_fanout(int fd, struct pktring_fanout *f)
{
	memset(f, 0xa5, sizeof(*f));
	return ioctl(fd, PKTRING_IOC_GET_FANOUT, f) ? -errno : 0;
}

/*
 * The state (second field) and fanout group (last) of the lines of
 * /proc/pktring whose pid is ours, oldest file first, as "STATE GROUP" into
 * out (n at most, 4 at most); returns how many lines there are, -1 on error.
 */
static int proc_groups(char out[][64], int n)
{
	char lines[4][256], state[32];
	int found = proc_lines(getpid(), lines, 4), i;

	for (i = 0; i < found && i < n && i < 4; i++) {
		char *last = strrchr(lines[i], ' ');

		if (!last || sscanf(lines[i], "%*d %31s", state) != 1)
			return -1;
		snprintf(out[i], 64, "%s %s", state, last + 1);
	}
	return found;
}

/* A request for IPv4 at PRE_ROUTING on lo: frame_nr frames of 2048 bytes. */
static void lo_req(struct pktring_req *req, unsigned int frame_nr)
{
	req_init(req, 4096, (frame_nr + 1) / 2, 2048);
	req->ifindex = LO_IFINDEX;
}

/*
 * Opens the device, joins group id with mode and flags, sets the ring up
 * with req and maps it: r owns the file even on failure. Returns 0 or -errno
 * of the step that failed.
 */
static int member_create(struct ring *r, const struct pktring_req *req, uint32_t id,
			 uint16_t mode, uint16_t flags)
{
	int fd, ret;

	ring_init(r);
	fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r->fd = fd;
	ret = join_fanout(fd, id, mode, flags);
	if (ret)
		return ret;
	ret = set_ring(fd, req);
	if (ret)
		return ret;
	ret = ring_attach(r, fd, PROT_READ | PROT_WRITE);
	if (ret)
		return ret;
	r->scratch = malloc(r->info.frame_size);
	return r->scratch ? 0 : -ENOMEM;
}

static int leave_fanout(int fd)
{
	return ioctl(fd, PKTRING_IOC_LEAVE_FANOUT) ? -errno : 0;
}

static uint32_t members_of(int fd)
{
	struct pktring_fanout f;

	return get_fanout(fd, &f) ? 0xffffffffu : f.members;
}

/* ------------------------------------------------------------------ */
/* Traffic on loopback                                                 */

static int lo_socket(uint16_t port)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int big = 4 << 20;

	if (s < 0)
		return -errno;
	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(s, (struct sockaddr *)&me, sizeof(me))) {
		int err = -errno;

		close(s);
		return err;
	}
	return s;
}

/*
 * Sends n datagrams of flow from socket s (bound to a loopback port) to the
 * loopback port dport, seqs seq0.., with gap_us between them. If progress is
 * not NULL, stores each seq there once it is sent. Returns 0 or -errno.
 */
static int lo_send(int s, uint16_t dport, uint32_t flow, uint64_t seq0, unsigned int n,
		   unsigned int gap_us, uint64_t *progress)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(dport),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	uint8_t buf[PAYLOAD_LEN];
	unsigned int i;

	for (i = 0; i < n; i++) {
		pktgen_payload_fill(buf, sizeof(buf), flow, seq0 + i);
		if (sendto(s, buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to)) !=
		    (ssize_t)sizeof(buf))
			return -errno;
		if (progress)
			__atomic_store_n(progress, seq0 + i + 1, __ATOMIC_RELEASE);
		if (gap_us)
			usleep(gap_us);
	}
	return 0;
}

/* Sends from a child pinned to cpu; returns its pid, or -errno. */
static pid_t lo_send_on_cpu(int cpu, uint16_t sport, uint16_t dport, uint32_t flow,
			    unsigned int n)
{
	pid_t pid = fork_flushed();

	if (pid)
		return pid < 0 ? -errno : pid;
	{
		cpu_set_t set;
		int s;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			_exit(2);
		s = lo_socket(sport);
		_exit(s < 0 || lo_send(s, dport, flow, 0, n, 0, NULL) ? 1 : 0);
	}
}

/* A captured test datagram. */
struct datagram {
	uint16_t sport, dport;
	uint32_t flow;
	uint64_t seq;
	uint16_t cpu;
};

/*
 * Parses frame i of r as a test datagram (IPv4, UDP, a pktgen payload that
 * checks). Returns false for any other packet.
 */
static bool frame_datagram(const struct ring *r, unsigned int i, struct datagram *d)
{
	const struct pktring_frame *f = ring_frame(r, i);
	const uint8_t *ip = (const uint8_t *)f + f->tp_net;
	unsigned int ihl, netlen;

	if (!(frame_status(f) & TP_STATUS_USER) || f->tp_net < f->tp_mac ||
	    f->tp_snaplen < (unsigned int)(f->tp_net - f->tp_mac) + 28 || (ip[0] >> 4) != 4 ||
	    ip[9] != IPPROTO_UDP)
		return false;
	ihl = (ip[0] & 15) * 4;
	netlen = f->tp_snaplen - (f->tp_net - f->tp_mac);
	if (netlen < ihl + 8 + PAYLOAD_LEN)
		return false;
	d->sport = get16be(ip + ihl);
	d->dport = get16be(ip + ihl + 2);
	d->cpu = f->cpu;
	return !pktgen_payload_check(ip + ihl + 8, PAYLOAD_LEN, &d->flow, &d->seq);
}

/* How often each (flow, seq) of flows x seqs was found, and where. */
struct tally {
	unsigned int flows, seqs;
	uint8_t *count;		/* flows * seqs */
	int8_t *member;		/* the member it was last found in */
	unsigned int foreign;	/* datagrams of other flows or seqs */
};

static int tally_init(struct tally *t, unsigned int flows, unsigned int seqs)
{
	t->flows = flows;
	t->seqs = seqs;
	t->foreign = 0;
	t->count = calloc((size_t)flows * seqs, 1);
	t->member = calloc((size_t)flows * seqs, 1);
	return t->count && t->member ? 0 : -ENOMEM;
}

static void tally_free(struct tally *t)
{
	free(t->count);
	free(t->member);
	t->count = NULL;
	t->member = NULL;
}

/* Counts every test datagram in r as found in member m; returns how many. */
static unsigned int tally_ring(struct tally *t, const struct ring *r, int m)
{
	struct datagram d;
	unsigned int i, n = 0;

	for (i = 0; i < r->info.frame_nr; i++) {
		if (!frame_datagram(r, i, &d))
			continue;
		if (d.flow >= t->flows || d.seq >= t->seqs) {
			t->foreign++;
			continue;
		}
		t->count[(size_t)d.flow * t->seqs + d.seq]++;
		t->member[(size_t)d.flow * t->seqs + d.seq] = (int8_t)m;
		n++;
	}
	return n;
}


static int cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

/* ------------------------------------------------------------------ */
/* Requests, without traffic                                           */

#define MEMBERS_MAX	(PKTRING_FANOUT_MAX_MEMBERS + 1)

FIXTURE(fanout_checks) {
	struct ring r[4];
};

FIXTURE_SETUP(fanout_checks)
{
	rings_init(self->r, ARRAY_SIZE(self->r));
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(fanout_checks)
{
	rings_teardown(self->r, ARRAY_SIZE(self->r));
}

TEST_F(fanout_checks, bad_requests)
{
	struct pktring_fanout f;
	char line[128], groups[3][64];
	struct pktring_req req;
	int fd, lone;

	fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	self->r[0].fd = fd;
	EXPECT_EQ(-ENOENT, get_fanout(fd, &f)) TH_LOG("GET_FANOUT before a join");
	EXPECT_EQ(-EINVAL, join_fanout(fd, 1, 4, 0)) TH_LOG("unknown mode");
	EXPECT_EQ(-EINVAL, join_fanout(fd, 1, 0xffff, 0)) TH_LOG("unknown mode");
	EXPECT_EQ(-EINVAL, join_fanout(fd, 1, PKTRING_FANOUT_HASH, 2)) TH_LOG("unknown flag");
	EXPECT_EQ(-EINVAL, join_fanout(fd, 1, PKTRING_FANOUT_HASH, 0x8001)) TH_LOG("unknown flag");
	memset(&f, 0, sizeof(f));
	f.members = 1;
	EXPECT_EQ(-1, ioctl(fd, PKTRING_IOC_JOIN_FANOUT, &f));
	EXPECT_EQ(EINVAL, errno) TH_LOG("members set");
	memset(&f, 0, sizeof(f));
	f.reserved = 1;
	EXPECT_EQ(-1, ioctl(fd, PKTRING_IOC_JOIN_FANOUT, &f));
	EXPECT_EQ(EINVAL, errno) TH_LOG("reserved set");
	memset(&f, 0, sizeof(f));
	f.rollover = 1;
	EXPECT_EQ(-1, ioctl(fd, PKTRING_IOC_JOIN_FANOUT, &f));
	EXPECT_EQ(EINVAL, errno) TH_LOG("rollover set");
	EXPECT_EQ(-1, ioctl(fd, PKTRING_IOC_JOIN_FANOUT, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-ENOENT, get_fanout(fd, &f)) TH_LOG("a refused join joined");
	EXPECT_EQ(-ENOENT, leave_fanout(fd)) TH_LOG("leaving no group");
	/* Leaving before set-up undoes the join. */
	ASSERT_EQ(0, join_fanout(fd, GROUP_ID, PKTRING_FANOUT_LB, 0));
	EXPECT_EQ(0, leave_fanout(fd));
	EXPECT_EQ(-ENOENT, get_fanout(fd, &f));

	ASSERT_EQ(0, join_fanout(fd, GROUP_ID, PKTRING_FANOUT_HASH, PKTRING_FANOUT_FLAG_ROLLOVER));
	EXPECT_STREQ("id=24301 mode=hash rollover=1 members=0 rolled=0",
		     fdinfo(fd, "pktring-fanout", line, sizeof(line)));
	EXPECT_EQ(-EALREADY, join_fanout(fd, GROUP_ID, PKTRING_FANOUT_HASH, 0));
	EXPECT_EQ(-EALREADY, join_fanout(fd, GROUP_ID + 1, PKTRING_FANOUT_LB, 0));
	ASSERT_EQ(0, get_fanout(fd, &f));
	EXPECT_EQ((uint32_t)GROUP_ID, f.id);
	EXPECT_EQ(PKTRING_FANOUT_HASH, f.mode);
	EXPECT_EQ(PKTRING_FANOUT_FLAG_ROLLOVER, f.flags);
	EXPECT_EQ(0u, f.members) TH_LOG("members before set-up");
	EXPECT_EQ(0u, f.reserved);
	EXPECT_EQ(0u, f.rollover);
	EXPECT_EQ(-1, ioctl(fd, PKTRING_IOC_GET_FANOUT, NULL));
	EXPECT_EQ(EFAULT, errno);

	lo_req(&req, 16);
	ASSERT_EQ(0, set_ring(fd, &req));
	EXPECT_EQ(1u, members_of(fd));
	EXPECT_STREQ("id=24301 mode=hash rollover=1 members=1 rolled=0",
		     fdinfo(fd, "pktring-fanout", line, sizeof(line)));
	EXPECT_STREQ("capturing", fdinfo(fd, "pktring-state", line, sizeof(line)));
	EXPECT_EQ(-EALREADY, join_fanout(fd, GROUP_ID, PKTRING_FANOUT_HASH, 0))
		TH_LOG("a member joining again");

	/* A lone ring cannot join once it is set up. */
	lone = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, lone);
	self->r[1].fd = lone;
	ASSERT_EQ(0, set_ring(lone, &req));
	EXPECT_EQ(-EBUSY, join_fanout(lone, GROUP_ID, PKTRING_FANOUT_HASH, 0));
	EXPECT_EQ(-ENOENT, get_fanout(lone, &f));
	EXPECT_EQ(-ENOENT, leave_fanout(lone)) TH_LOG("a lone ring leaving");
	/* /proc/pktring names the member's group, and none for the lone ring. */
	ASSERT_EQ(2, proc_groups(groups, 3));
	EXPECT_STREQ("capturing 24301:hash,rollover", groups[0]);
	EXPECT_STREQ("capturing -", groups[1]);

	/* A member that left reports 0 members and cannot leave again. */
	EXPECT_EQ(0, leave_fanout(fd));
	EXPECT_EQ(-ENOENT, leave_fanout(fd));
	ASSERT_EQ(0, get_fanout(fd, &f));
	EXPECT_EQ(0u, f.members);
	EXPECT_STREQ("left", fdinfo(fd, "pktring-state", line, sizeof(line)));
	EXPECT_STREQ("", fdinfo(lone, "pktring-fanout", line, sizeof(line)));
	ASSERT_EQ(2, proc_groups(groups, 3));
	EXPECT_STREQ("left 24301:hash,rollover", groups[0]) TH_LOG("the group it left");
	EXPECT_EQ(-EALREADY, join_fanout(fd, GROUP_ID, PKTRING_FANOUT_HASH, 0));
}

/* Each mismatch is EINVAL at SET_RING; the file can then set up a ring that matches. */
TEST_F(fanout_checks, mismatched_members)
{
	const uint16_t rolling = PKTRING_FANOUT_FLAG_ROLLOVER;
	struct pktring_req req, bad;
	unsigned int i;
	int fd;

	lo_req(&req, 16);
	ASSERT_EQ(0, member_create(&self->r[0], &req, GROUP_ID, PKTRING_FANOUT_CPU, rolling));
	for (i = 0; i < 7; i++) {
		uint16_t mode = PKTRING_FANOUT_CPU, flags = rolling;

		bad = req;
		switch (i) {
		case 0: bad.hook = PKTRING_HOOK_LOCAL_IN; break;
		case 1: bad.family = PKTRING_FAMILY_BOTH; break;
		case 2: bad.ifindex = 0; break;
		case 3: bad.priority = 1; break;
		case 4: mode = PKTRING_FANOUT_LB; break;
		case 5: flags = 0; break;
		case 6: bad.hook = PKTRING_HOOK_INGRESS; bad.family = 0;
			bad.ethertype = PKTRING_ETH_P_ALL; break;
		}
		fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, join_fanout(fd, GROUP_ID, mode, flags));
		EXPECT_EQ(-EINVAL, set_ring(fd, &bad)) TH_LOG("mismatch %u", i);
		EXPECT_EQ(1u, members_of(self->r[0].fd)) TH_LOG("mismatch %u joined", i);
		if (i == 0) {
			/* Refused, the file keeps its join: a matching ring is a member. */
			EXPECT_EQ(0u, members_of(fd));
			EXPECT_EQ(0, set_ring(fd, &req));
			EXPECT_EQ(2u, members_of(self->r[0].fd));
			EXPECT_EQ(2u, members_of(fd));
		}
		close(fd);
	}
	/* The geometry is each member's own. */
	lo_req(&bad, 64);
	bad.wake_frames = 8;
	bad.wake_usecs = 1000;
	ASSERT_EQ(0, member_create(&self->r[1], &bad, GROUP_ID, PKTRING_FANOUT_CPU, rolling));
	EXPECT_EQ(2u, members_of(self->r[0].fd));

	/* Members leave by LEAVE_FANOUT, or when their files are released. */
	ASSERT_EQ(0, member_create(&self->r[2], &req, GROUP_ID, PKTRING_FANOUT_CPU, rolling));
	EXPECT_EQ(3u, members_of(self->r[0].fd));
	EXPECT_EQ(0, leave_fanout(self->r[2].fd));
	EXPECT_EQ(2u, members_of(self->r[0].fd));
	ring_destroy(&self->r[2]);
	EXPECT_EQ(2u, members_of(self->r[0].fd));
	ring_destroy(&self->r[1]);
	EXPECT_EQ(1u, members_of(self->r[0].fd));
	/* The last member takes the group with it. */
	ring_destroy(&self->r[0]);
	bad = req;
	bad.hook = PKTRING_HOOK_LOCAL_IN;
	ASSERT_EQ(0, member_create(&self->r[0], &bad, GROUP_ID, PKTRING_FANOUT_LB, 0))
		TH_LOG("the group outlived its members");
	EXPECT_EQ(1u, members_of(self->r[0].fd));
}

TEST_F_TIMEOUT(fanout_checks, full_group, 120)
{
	static struct ring m[MEMBERS_MAX];
	struct pktring_req req;
	unsigned int i;

	lo_req(&req, 2);
	rings_init(m, MEMBERS_MAX);
	for (i = 0; i < PKTRING_FANOUT_MAX_MEMBERS; i++) {
		ASSERT_EQ(0, member_create(&m[i], &req, GROUP_ID, PKTRING_FANOUT_LB, 0))
			TH_LOG("member %u", i);
	}
	EXPECT_EQ((uint32_t)PKTRING_FANOUT_MAX_MEMBERS, members_of(m[0].fd));
	EXPECT_EQ(-ENOSPC, member_create(&m[i], &req, GROUP_ID, PKTRING_FANOUT_LB, 0));
	ring_destroy(&m[i]);
	ring_destroy(&m[7]);
	EXPECT_EQ((uint32_t)PKTRING_FANOUT_MAX_MEMBERS - 1, members_of(m[0].fd));
	EXPECT_EQ(0, member_create(&m[7], &req, GROUP_ID, PKTRING_FANOUT_LB, 0))
		TH_LOG("a place left free was not taken");
	rings_teardown(m, MEMBERS_MAX);
}

/* The same id in another network namespace is another group. */
TEST_F(fanout_checks, namespaced_ids)
{
	struct pktring_req req;
	int status;
	pid_t pid;

	lo_req(&req, 16);
	ASSERT_EQ(0, member_create(&self->r[0], &req, GROUP_ID, PKTRING_FANOUT_HASH, 0));
	pid = fork_flushed();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct ring r;
		int ret;

		if (unshare(CLONE_NEWNET))
			_exit(10);
		/* Another mode, which the first namespace's group would refuse. */
		ret = member_create(&r, &req, GROUP_ID, PKTRING_FANOUT_LB, 0);
		if (ret)
			_exit(20 + (-ret & 63));
		_exit(members_of(r.fd) == 1 ? 0 : 11);
	}
	ASSERT_TRUE(wait_child(pid, 10000, &status));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("child in a new namespace: status %d", status);
	EXPECT_EQ(1u, members_of(self->r[0].fd));
}

/*
 * A group's device goes away: its hook is taken down and every member ends
 * (POLLERR, info.error ENETDOWN), and a ring that then joins the group gets
 * ENODEV. Once its members are gone, the id is free again.
 */
TEST_F(fanout_checks, device_gone)
{
	struct pktring_info info;
	struct pktring_req req;
	unsigned int i;
	int ifindex;

	ASSERT_EQ(0, veth_fresh("pktfo0", "pktfo1"));
	ifindex = if_nametoindex("pktfo0");
	ASSERT_LT(0, ifindex);
	req_init(&req, 4096, 8, 2048);
	req.hook = PKTRING_HOOK_INGRESS;
	req.ifindex = ifindex;
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, member_create(&self->r[i], &req, GROUP_ID, PKTRING_FANOUT_LB, 0));
	ASSERT_EQ(0, link_del(ifindex));
	for (i = 0; i < 2; i++) {
		struct pollfd pfd = { .fd = self->r[i].fd, .events = POLLIN };

		EXPECT_EQ(1, poll(&pfd, 1, 5000)) TH_LOG("member %u not woken", i);
		EXPECT_TRUE(pfd.revents & POLLERR) TH_LOG("member %u: revents %#x", i, pfd.revents);
		ASSERT_EQ(0, ioctl(self->r[i].fd, PKTRING_IOC_GET_INFO, &info));
		EXPECT_EQ((uint32_t)ENETDOWN, info.error);
	}
	EXPECT_EQ(-ENODEV, member_create(&self->r[2], &req, GROUP_ID, PKTRING_FANOUT_LB, 0));
	ring_destroy(&self->r[2]);
	ring_destroy(&self->r[0]);
	ring_destroy(&self->r[1]);
	/* The group went with its members: the same id and request now get the device's ENODEV. */
	EXPECT_EQ(-ENODEV, member_create(&self->r[2], &req, GROUP_ID, PKTRING_FANOUT_LB, 0));
	req.hook = PKTRING_HOOK_PRE_ROUTING;
	req.ifindex = LO_IFINDEX;
	ring_destroy(&self->r[2]);
	EXPECT_EQ(0, member_create(&self->r[2], &req, GROUP_ID, PKTRING_FANOUT_LB, 0));
	EXPECT_EQ(1u, members_of(self->r[2].fd));
}

/* ------------------------------------------------------------------ */
/* Traffic                                                             */

#define GROUP_MAX	8

FIXTURE(fanout) {
	struct ring r[GROUP_MAX];
	struct tally t;
	int rx;
};

FIXTURE_SETUP(fanout)
{
	rings_init(self->r, GROUP_MAX);
	memset(&self->t, 0, sizeof(self->t));
	self->rx = -1;
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(fanout)
{
	rings_teardown(self->r, GROUP_MAX);
	tally_free(&self->t);
	if (self->rx >= 0)
		close(self->rx);
}

/* Every one of n datagrams of one flow is in exactly one of three lb members. */
TEST_F_TIMEOUT(fanout, every_packet_once, 120)
{
	const unsigned int n = 3000, members = 3;
	struct pktring_stats st;
	struct pktring_req req;
	unsigned int i, got[3], once = 0;
	int s;

	lo_req(&req, 2048);
	for (i = 0; i < members; i++)
		ASSERT_EQ(0, member_create(&self->r[i], &req, GROUP_ID, PKTRING_FANOUT_LB, 0));
	self->rx = lo_socket(9051);
	ASSERT_LE(0, self->rx);
	s = lo_socket(9050);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, lo_send(s, 9051, 0, 0, n, 0, NULL));
	close(s);
	sleep_ms(200);
	ASSERT_EQ(0, tally_init(&self->t, 1, n));
	for (i = 0; i < members; i++) {
		got[i] = tally_ring(&self->t, &self->r[i], i);
		check_accounting(_metadata, &self->r[i], &st, "member");
		EXPECT_EQ(0u, st.drops);
		/* Round robin over the group's packets: a third each, give or take strays. */
		EXPECT_LE(n / members - 20, got[i]) TH_LOG("member %u took %u of %u", i, got[i], n);
	}
	for (i = 0; i < n; i++)
		once += self->t.count[i] == 1;
	EXPECT_EQ(n, once) TH_LOG("%u of %u in exactly one member (%u + %u + %u)", once, n,
				  got[0], got[1], got[2]);
}

/* hash: both directions of each of 16 flows land in one member. */
TEST_F_TIMEOUT(fanout, hash_keeps_flows, 120)
{
	const unsigned int flows = 16, each = 20, members = 3;
	unsigned int f, i, used = 0, split = 0, total = 0;
	int a[16], b[16], where[16];
	struct pktring_stats st;
	struct pktring_req req;

	lo_req(&req, 1024);
	for (i = 0; i < members; i++)
		ASSERT_EQ(0, member_create(&self->r[i], &req, GROUP_ID, PKTRING_FANOUT_HASH, 0));
	for (f = 0; f < flows; f++) {
		a[f] = lo_socket(20000 + f);
		b[f] = lo_socket(30000 + 7 * f);
		ASSERT_LE(0, a[f]);
		ASSERT_LE(0, b[f]);
	}
	/* Flow 2f is a -> b, flow 2f + 1 its reply b -> a. */
	for (i = 0; i < each; i++)
		for (f = 0; f < flows; f++) {
			ASSERT_EQ(0, lo_send(a[f], 30000 + 7 * f, 2 * f, i, 1, 0, NULL));
			ASSERT_EQ(0, lo_send(b[f], 20000 + f, 2 * f + 1, i, 1, 0, NULL));
		}
	sleep_ms(200);
	ASSERT_EQ(0, tally_init(&self->t, 2 * flows, each));
	for (i = 0; i < members; i++) {
		total += tally_ring(&self->t, &self->r[i], i);
		check_accounting(_metadata, &self->r[i], &st, "member");
		EXPECT_EQ(0u, st.drops);
	}
	EXPECT_EQ(2 * flows * each, total);
	for (f = 0; f < flows; f++) {
		where[f] = -1;
		for (i = 0; i < 2 * each; i++) {
			unsigned int k = (2 * f + i / each) * each + i % each;

			if (self->t.count[k] != 1)
				continue;
			if (where[f] < 0)
				where[f] = self->t.member[k];
			else if (where[f] != self->t.member[k])
				split++;
		}
		if (where[f] >= 0)
			used |= 1u << where[f];
		close(a[f]);
		close(b[f]);
	}
	EXPECT_EQ(0u, split) TH_LOG("%u datagrams away from their flow's member", split);
	EXPECT_NE(used & (used - 1), 0u) TH_LOG("every flow hashed to one member (mask %#x)", used);
}

/* cpu: members = CPUs (at most 4); each member sees one CPU, each CPU one member. */
TEST_F_TIMEOUT(fanout, cpu_members_see_their_cpu, 120)
{
	const unsigned int each = 100;
	unsigned int members = MIN(cpus(), 4), i, c, bad = 0, total = 0;
	int cpu_of[4] = { -1, -1, -1, -1 };
	struct pktring_stats st;
	struct pktring_req req;

	if (members < 2)
		SKIP(return, "one CPU");
	lo_req(&req, 1024);
	for (i = 0; i < members; i++)
		ASSERT_EQ(0, member_create(&self->r[i], &req, GROUP_ID, PKTRING_FANOUT_CPU, 0));
	self->rx = lo_socket(9052);
	ASSERT_LE(0, self->rx);
	for (c = 0; c < members; c++) {
		pid_t pid = lo_send_on_cpu(c, 9060 + c, 9052, c, each);
		int status;

		ASSERT_LT(0, pid);
		ASSERT_TRUE(wait_child(pid, 30000, &status));
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	sleep_ms(200);
	for (i = 0; i < members; i++) {
		const struct ring *r = &self->r[i];
		struct datagram d;
		unsigned int k;

		for (k = 0; k < r->info.frame_nr; k++) {
			if (!frame_datagram(r, k, &d) || d.dport != 9052)
				continue;
			total++;
			if (cpu_of[i] < 0)
				cpu_of[i] = d.cpu % members;
			if ((int)(d.cpu % members) != cpu_of[i] || d.cpu % members != i) {
				if (bad++ < 5)
					TH_LOG("member %u has a frame from CPU %u (member's: %d)", i,
					       d.cpu, cpu_of[i]);
			}
		}
		check_accounting(_metadata, r, &st, "member");
	}
	EXPECT_EQ(0u, bad);
	EXPECT_EQ(members * each, total);
}

/* queue: members = RX queues (at most 4) of the test device; each sees its queues only. */
TEST_F_TIMEOUT(fanout, queue_members_see_their_queue, 120)
{
	const unsigned int count = 400;
	unsigned int members, i, k, bad = 0, total = 0, used = 0;
	struct pktring_stats st;
	struct pktring_req req;

	REQUIRE_TRAFFIC();
	members = MIN(test_if_rx_queues(), 4);
	if (members < 2)
		SKIP(return, "one RX queue");
	req_init(&req, 4096, 256, 2048);
	for (i = 0; i < members; i++)
		ASSERT_EQ(0, member_create(&self->r[i], &req, GROUP_ID, PKTRING_FANOUT_QUEUE, 0));
	EXPECT_EQ(count, send_and_settle(_metadata, 9057, 32, count, 200, 0));
	for (i = 0; i < members; i++) {
		const struct ring *r = &self->r[i];
		unsigned int mine = 0;

		for (k = 0; k < r->info.frame_nr; k++) {
			const struct pktring_frame *f = ring_frame(r, k);
			const uint8_t *ip = (const uint8_t *)f + f->tp_net;

			if (!(frame_status(f) & TP_STATUS_USER) || ip[0] != 0x45 ||
			    ip[9] != IPPROTO_UDP || get16be(ip + 22) != 9057)
				continue;
			mine++;
			if (f->rx_queue == PKTRING_NO_RX_QUEUE || f->rx_queue % members != i) {
				if (bad++ < 5)
					TH_LOG("member %u has a frame from RX queue %u", i, f->rx_queue);
			}
		}
		total += mine;
		used += mine > 0;
		check_accounting(_metadata, r, &st, "member");
		EXPECT_EQ(0u, st.drops);
	}
	EXPECT_EQ(0u, bad);
	EXPECT_EQ(count, total);
	EXPECT_LE(2u, used) TH_LOG("the host's flows all came through one queue");
}

/*
 * rollover: a small member picked for every packet (cpu mode, the sender on
 * CPU 0) passes what it has no room for to the next member: nothing is lost
 * while that one has room, and its rollover counts what it took. Without the
 * flag the small member drops them; with every member full, the group drops
 * and the picked member counts it.
 */
TEST_F_TIMEOUT(fanout, rollover_loses_nothing, 120)
{
	const unsigned int n = 100, small = 8;
	struct pktring_req req_small, req_big;
	struct pktring_stats st0, st1;
	struct pktring_fanout f;
	unsigned int i, once, round;
	int status;
	pid_t pid;

	self->rx = lo_socket(9053);
	ASSERT_LE(0, self->rx);
	lo_req(&req_small, small);
	lo_req(&req_big, 256);
	for (round = 0; round < 3; round++) {
		uint16_t flags = round == 1 ? 0 : PKTRING_FANOUT_FLAG_ROLLOVER;
		uint32_t id = GROUP_ID + round;

		ASSERT_EQ(0, member_create(&self->r[0], &req_small, id, PKTRING_FANOUT_CPU, flags));
		ASSERT_EQ(0, member_create(&self->r[1], round == 2 ? &req_small : &req_big, id,
					   PKTRING_FANOUT_CPU, flags));
		pid = lo_send_on_cpu(0, 9054, 9053, 0, n);
		ASSERT_LT(0, pid);
		ASSERT_TRUE(wait_child(pid, 30000, &status));
		ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		sleep_ms(100);
		ASSERT_EQ(0, tally_init(&self->t, 1, n));
		tally_ring(&self->t, &self->r[0], 0);
		tally_ring(&self->t, &self->r[1], 1);
		for (i = 0, once = 0; i < n; i++)
			once += self->t.count[i] == 1;
		check_accounting(_metadata, &self->r[0], &st0, "picked");
		check_accounting(_metadata, &self->r[1], &st1, "next");
		ASSERT_EQ(0, get_fanout(self->r[1].fd, &f));
		TH_LOG("round %u: picked %llu delivered %llu dropped, next %llu delivered "
		       "(%llu rolled over) %llu dropped", round,
		       (unsigned long long)(st0.packets - st0.drops), (unsigned long long)st0.drops,
		       (unsigned long long)(st1.packets - st1.drops), (unsigned long long)f.rollover,
		       (unsigned long long)st1.drops);
		EXPECT_EQ(small, ring_count_user(&self->r[0]));
		EXPECT_EQ(0u, st1.drops) TH_LOG("round %u: the next member dropped", round);
		switch (round) {
		case 0:
			EXPECT_EQ(n, once) TH_LOG("%u of %u delivered once", once, n);
			EXPECT_EQ(0u, st0.drops);
			EXPECT_EQ(n - small, f.rollover);
			EXPECT_EQ(n - small, st1.packets);
			break;
		case 1:
			EXPECT_EQ(small, once);
			EXPECT_EQ(n - small, st0.drops) TH_LOG("no rollover: the picked member drops");
			EXPECT_EQ(0u, f.rollover);
			EXPECT_EQ(0u, st1.packets);
			break;
		case 2:
			EXPECT_EQ(2 * small, once);
			EXPECT_EQ(n - 2 * small, st0.drops) TH_LOG("a full group's drops");
			EXPECT_EQ(small, f.rollover);
			break;
		}
		ASSERT_EQ(0, get_fanout(self->r[0].fd, &f));
		EXPECT_EQ(0u, f.rollover) TH_LOG("the picked member never rolls over to itself");
		ring_destroy(&self->r[0]);
		ring_destroy(&self->r[1]);
		tally_free(&self->t);
	}
}

/*
 * Members join and leave while a sender on loopback runs. A member that
 * leaves by LEAVE_FANOUT is read after it left: then no datagram may be
 * missing or in two members. One that leaves by its release is read before:
 * datagrams sent from its last look (less the 50 before it, which may still
 * wait in the backlog) to the end of its release may have gone to it, and its
 * ring is gone; those are counted, not failed. The member that stays
 * throughout never drops.
 */
TEST_F_TIMEOUT(fanout, join_and_leave_during_traffic, 180)
{
	const unsigned int n = 6000, steps = 24;
	struct window { uint64_t from, to; } win[24];
	unsigned int i, step, twice = 0, missing = 0, in_window = 0, joins = 0, leaves = 0;
	struct pktring_stats st;
	struct pktring_req req;
	uint64_t *progress;
	int status, nwin = 0;
	pid_t pid;

	progress = mmap(NULL, sizeof(*progress), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, progress);
	*progress = 0;
	ASSERT_EQ(0, tally_init(&self->t, 1, n));
	/* Room for every datagram in each member. */
	lo_req(&req, 8192);
	ASSERT_EQ(0, member_create(&self->r[0], &req, GROUP_ID, PKTRING_FANOUT_LB, 0));
	self->rx = lo_socket(9055);
	ASSERT_LE(0, self->rx);
	pid = fork_flushed();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int s = lo_socket(9056);

		_exit(s < 0 || lo_send(s, 9055, 0, 0, n, 300, progress) ? 1 : 0);
	}
	for (step = 0; step < steps; step++) {
		/* Members 1 and 2 come and go in turn; member 0 stays. */
		int m = 1 + step % 2;
		struct ring *r = &self->r[m];

		sleep_ms(80);
		if (r->fd < 0) {
			EXPECT_EQ(0, member_create(r, &req, GROUP_ID, PKTRING_FANOUT_LB, 0));
			joins++;
			continue;
		}
		leaves++;
		if (leaves % 2) {
			EXPECT_EQ(0, leave_fanout(r->fd));
			tally_ring(&self->t, r, m);
			ring_destroy(r);
			continue;
		}
		win[nwin].from = __atomic_load_n(progress, __ATOMIC_ACQUIRE);
		win[nwin].from -= MIN(win[nwin].from, 50);
		tally_ring(&self->t, r, m);
		ring_destroy(r);
		win[nwin].to = __atomic_load_n(progress, __ATOMIC_ACQUIRE) + 1;
		nwin++;
	}
	ASSERT_TRUE(wait_child(pid, 60000, &status));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	sleep_ms(200);
	for (i = 0; i < 3; i++) {
		if (self->r[i].fd < 0)
			continue;
		tally_ring(&self->t, &self->r[i], i);
		check_accounting(_metadata, &self->r[i], &st, "member");
		if (i == 0)
			EXPECT_EQ(0u, st.drops);
	}
	for (i = 0; i < n; i++) {
		bool windowed = false;
		int w;

		if (self->t.count[i] > 1)
			twice++;
		if (self->t.count[i])
			continue;
		for (w = 0; w < nwin; w++)
			windowed |= i >= win[w].from && i < win[w].to;
		if (windowed)
			in_window++;
		else
			missing++;
	}
	TH_LOG("%u joins, %u leaves (%u by release); %u datagrams may have gone to a member "
	       "as it was released", joins, leaves, nwin, in_window);
	EXPECT_LE(4u, joins);
	EXPECT_EQ(0u, twice) TH_LOG("%u datagrams in two members", twice);
	EXPECT_EQ(0u, missing) TH_LOG("%u datagrams lost outside the release windows", missing);
	munmap(progress, sizeof(*progress));
}

int main(int argc, char **argv)
{
	return pktring_test_main(argc, argv);
}
