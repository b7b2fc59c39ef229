// SPDX-License-Identifier: GPL-2.0
/*
 * rust_pktring selftests: who may set a ring up, where it captures, and how
 * it may be waited on and mapped.
 *
 *	privilege	CAP_NET_RAW of the credentials the file was opened
 *			with: an unprivileged opener, one with CAP_NET_RAW
 *			alone, a file passed over SCM_RIGHTS either way
 *	isolation	(variants pre_routing, local_in, ingress) a ring
 *			captures in its opener's network namespace only
 *	netns		an ingress device of another namespace (ENODEV); the
 *			end of a capture when its namespace is dismantled
 *			(ENONET) or its device deleted or moved (ENETDOWN):
 *			POLLERR, frames and counters still there
 *	early_poll	poll() and epoll registered before PKTRING_IOC_SET_RING
 *			are woken by the frames that follow it
 *	rdonly		an O_RDONLY file sets a ring up and maps it read-only;
 *			private and (for it) writable mappings are refused
 *
 * All traffic is UDP to 127.0.0.1 that the test sends itself, received by a
 * socket of its own (so that no ICMP error follows it and the socket tells
 * when every hook has run); the rings filter on the loopback device, so the
 * counts are exact and the host's test network is not needed.
 *
 * Child processes do the unprivileged and other-namespace parts. They never
 * use the harness's ASSERT/EXPECT (those belong to the test process): each
 * sends a struct report over a SOCK_SEQPACKET socketpair, which the test
 * checks. Namespaces go when the children that made them exit; the fixture
 * teardowns kill what a failed test left, delete its veth devices and give
 * /dev/pktring its mode back.
 *
 * Runs as root (the privilege fixture drops to uid/gid 65534 in children,
 * and makes /dev/pktring mode 0666 while they open it). One of the programs
 * of the module's kselftest suite; what they have in common, and the order
 * suite.sh runs them in, is in pktring_test_lib.h.
 */
#include "pktring_test_lib.h"
#include "pktring_netlink.h"

#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <linux/capability.h>

#define LO_IFINDEX	1		/* the loopback device, in every namespace */
#define NOBODY		65534
#define PAYLOAD_MAGIC	0x70616363u	/* "pacc" */
#define PAYLOAD_SIZE	64

/* Tags of the datagrams, to tell whose they are. */
#define TAG_PARENT	1
#define TAG_CHILD	2
#define NTAGS		3

/* Child steps and hand-overs; generous for a TCG guest. */
#define CHILD_MS	30000u
/* A namespace is dismantled from a work queue (cleanup_net): allow for it. */
#define NETNS_GONE_MS	30000u
/* A poller must be woken this soon after the frame or error that is due. */
#define WAKE_MS		10000u

struct payload {
	uint32_t magic;
	uint32_t tag;
	uint32_t seq;
	uint32_t pid;
};

/* ------------------------------------------------------------------ */
/* Loopback traffic                                                    */

/* A UDP socket bound to 127.0.0.1:port, or -errno. */
static int udp_sink(uint16_t port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Sends n datagrams (tag, seq first...) to 127.0.0.1:port: 0 or -errno. */
static int send_udp(uint16_t port, uint32_t tag, uint32_t first, unsigned int n)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	uint8_t buf[PAYLOAD_SIZE] = { 0 };
	struct payload p = { .magic = PAYLOAD_MAGIC, .tag = tag, .pid = (uint32_t)getpid() };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;
	unsigned int i;

	if (fd < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		p.seq = first + i;
		memcpy(buf, &p, sizeof(p));
		if (sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&sa, sizeof(sa)) !=
		    (ssize_t)sizeof(buf)) {
			ret = -errno;
			break;
		}
	}
	close(fd);
	return ret;
}

/*
 * Receives up to n datagrams on a udp_sink() within timeout_ms. UDP takes a
 * datagram in after every hook ran for it, so once n are here the rings have
 * all the frames they will get. Returns the number with tag; *wrong (may be
 * NULL) gets the others.
 */
static unsigned int sink_drain(int fd, unsigned int n, uint32_t tag, unsigned int *wrong,
			       unsigned int timeout_ms)
{
	uint64_t end = mono_ms() + timeout_ms;
	unsigned int got = 0, bad = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (got + bad < n) {
		int64_t left = (int64_t)(end - mono_ms());
		uint8_t buf[PAYLOAD_SIZE];
		struct payload p;
		ssize_t len;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		len = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (len < 0)
			continue;
		memcpy(&p, buf, sizeof(p));
		if (len == PAYLOAD_SIZE && p.magic == PAYLOAD_MAGIC && p.tag == tag)
			got++;
		else
			bad++;
	}
	if (wrong)
		*wrong = bad;
	return got;
}

/*
 * Sends the parent's datagrams first... (n of them) to a udp_sink() on port
 * and waits until it has them all: every hook has run for them then.
 */
static void parent_send(struct __test_metadata *_metadata, int sink, uint16_t port,
			uint32_t first, unsigned int n)
{
	ASSERT_EQ(0, send_udp(port, TAG_PARENT, first, n));
	EXPECT_EQ(n, sink_drain(sink, n, TAG_PARENT, NULL, CHILD_MS));
}

/* Sets the loopback device of this namespace up: 0 or -errno. */
static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr))
		ret = -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (!ret && ioctl(s, SIOCSIFFLAGS, &ifr))
		ret = -errno;
	close(s);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Rings on the loopback device                                        */

/* 32 frames of 2 KiB: room for every burst the tests send. */
static void req_lo(struct pktring_req *req, uint16_t hook, uint16_t family, int ifindex)
{
	req_init(req, 4096, 16, 2048);
	req->hook = hook;
	req->family = family;
	req->ifindex = ifindex;
}

/* Opens the device with oflags, sets req up and maps it with prot. 0 or -errno. */
static int ring_open(struct ring *r, int oflags, const struct pktring_req *req, int prot)
{
	int fd = open(PKTRING_DEV, oflags | O_CLOEXEC), ret;

	ring_init(r);
	if (fd < 0)
		return -errno;
	ret = set_ring(fd, req);
	if (ret) {
		close(fd);
		return ret;
	}
	return ring_attach(r, fd, prot);
}

/* What a ring holds, in ring order from frame 0 (no frame handed back yet). */
struct lo_count {
	unsigned int ready;		/* frames with TP_STATUS_USER */
	unsigned int tag[NTAGS];	/* test datagrams, by tag */
	unsigned int other;		/* any other packet, or a frame that is wrong */
	unsigned int bad_seq;		/* a test datagram out of its sequence */
	unsigned int stray;		/* ready frames after the first one that is not */
};

/*
 * Frame i as a test datagram to 127.0.0.1:port, from the loopback device:
 * 1 (and its payload) if it is one, 0 if not.
 */
static int lo_frame(const struct ring *r, unsigned int i, uint16_t port, struct payload *p)
{
	const uint8_t *b = (const uint8_t *)ring_frame(r, i);
	const struct pktring_frame *f = (const void *)b;
	const struct sockaddr_ll *sll = (const void *)(b + r->info.sll_offset);
	uint32_t mac = f->tp_mac, net = f->tp_net, snap = f->tp_snaplen;
	const uint8_t *ip, *udp;

	if (net < mac || mac + snap > r->info.frame_size ||
	    net + 20 + 8 + sizeof(*p) > mac + snap)
		return 0;
	if (sll->sll_ifindex != LO_IFINDEX || sll->sll_protocol != htons(ETH_P_IP))
		return 0;
	ip = b + net;
	udp = ip + 20;
	if (ip[0] != 0x45 || ip[9] != IPPROTO_UDP ||
	    memcmp(ip + 16, (const uint8_t[]){ 127, 0, 0, 1 }, 4) || get16be(udp + 2) != port)
		return 0;
	memcpy(p, udp + 8, sizeof(*p));
	return p->magic == PAYLOAD_MAGIC && p->tag > 0 && p->tag < NTAGS;
}

static void count_lo(const struct ring *r, uint16_t port, struct lo_count *c)
{
	uint32_t next[NTAGS] = { 0 };
	bool gap = false;
	unsigned int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < r->info.frame_nr; i++) {
		struct payload p;

		if (!(frame_status(ring_frame(r, i)) & TP_STATUS_USER)) {
			gap = true;
			continue;
		}
		if (gap) {
			c->stray++;
			continue;
		}
		c->ready++;
		if (!lo_frame(r, i, port, &p)) {
			c->other++;
			continue;
		}
		c->tag[p.tag]++;
		if (p.seq != next[p.tag])
			c->bad_seq++;
		next[p.tag] = p.seq + 1;
	}
}

#define LO_COUNT_FMT	"%u ready: %u parent's, %u child's, %u other, %u out of sequence, %u stray"
#define LO_COUNT_ARGS(c) (c).ready, (c).tag[TAG_PARENT], (c).tag[TAG_CHILD], (c).other, \
			 (c).bad_seq, (c).stray

static void release_all(const struct ring *r)
{
	unsigned int i;

	for (i = 0; i < r->info.frame_nr; i++)
		frame_release(ring_frame(r, i));
}

/* ------------------------------------------------------------------ */
/* Children: reports, file descriptors, credentials                    */

struct report {
	bool done;		/* the child went through all its steps */
	int err;		/* errno of the step that failed */
	char why[96];		/* that step */
	int res[6];		/* what the checked calls returned (0 or -errno), per test */
	struct lo_count c;	/* the child's ring */
	unsigned int sunk, sunk_wrong;	/* what the child's socket took in */
};

/* In a child: records the failed step and goes to out. */
#define CHILD_CHECK(rep, what, ok) do { \
		if (!(ok)) { \
			(rep)->err = errno; \
			snprintf((rep)->why, sizeof((rep)->why), "%s", what); \
			goto out; \
		} \
	} while (0)

/*
 * In a child: a call that returns a value >= 0 or -errno. Records a
 * failure as CHILD_CHECK() does; evaluates to the value.
 */
#define CHILD_CALL(rep, what, call) ({ \
		int ret_ = (call); \
		errno = ret_ < 0 ? -ret_ : 0; \
		CHILD_CHECK(rep, what, ret_ >= 0); \
		ret_; \
	})

/* Sends len bytes, with up to nfds file descriptors: 0 or -errno. */
static int msg_send(int sock, const void *buf, size_t len, const int *fds, unsigned int nfds)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *cm;

		msg.msg_control = cbuf;
		msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

/*
 * Receives one message of at most len bytes within timeout_ms, with exactly
 * nfds file descriptors (the rest of fds set to -1). Returns its length, or
 * -ETIMEDOUT, -EPIPE (the peer is gone), -EPROTO (too long, or other
 * descriptors) or -errno.
 */
static int msg_recv(int sock, void *buf, size_t len, int *fds, unsigned int nfds,
		    unsigned int timeout_ms)
{
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	unsigned int got = 0, i;
	struct cmsghdr *cm;
	ssize_t n;

	for (i = 0; i < nfds; i++)
		fds[i] = -1;
	n = poll(&pfd, 1, (int)timeout_ms);
	if (n == 0)
		return -ETIMEDOUT;
	if (n < 0)
		return -errno;
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -EPIPE;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		unsigned int k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (got < nfds)
				fds[got++] = fd;
			else
				close(fd);
		}
	}
	if (got != nfds || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (i = 0; i < got; i++) {
			close(fds[i]);
			fds[i] = -1;
		}
		return -EPROTO;
	}
	return (int)n;
}

/* In a child: sends its report to the parent and exits. */
static void __attribute__((noreturn)) report_exit(int sock, const struct report *rep)
{
	msg_send(sock, rep, sizeof(*rep), NULL, 0);
	_exit(0);
}

/* One byte: a step of the hand-over between parent and child. */
static int sync_send(int sock, char c)
{
	return msg_send(sock, &c, 1, NULL, 0);
}

static int sync_wait(int sock, char want, unsigned int timeout_ms)
{
	char c = 0;
	int ret = msg_recv(sock, &c, 1, NULL, 0, timeout_ms);

	return ret < 0 ? ret : ret == 1 && c == want ? 0 : -EPROTO;
}

/*
 * Forks the test's child, which runs with the control socket *child_sock
 * (the parent keeps the other end in *ctl, and the pid in *pid). The test
 * stops if that fails. Returns true in the child.
 */
static bool fork_child(struct __test_metadata *_metadata, pid_t *pid, int *ctl, int *child_sock)
{
	int sv[2], err;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		TH_LOG("socketpair: %s", strerror(errno));
	*pid = fork_flushed();
	if (*pid < 0) {
		err = errno;
		close(sv[0]);
		close(sv[1]);
		ASSERT_LE(0, *pid) TH_LOG("fork: %s", strerror(err));
	}
	if (*pid == 0) {
		close(sv[0]);
		*child_sock = sv[1];
		*ctl = -1;
	} else {
		close(sv[1]);
		*ctl = sv[0];
		*child_sock = -1;
	}
	return *pid == 0;
}

/* Kills and reaps *pid if it is still there. */
static void child_reap(pid_t *pid)
{
	int status;

	if (*pid <= 0)
		return;
	if (!wait_child(*pid, 0, &status)) {
		kill(*pid, SIGKILL);
		waitpid(*pid, &status, 0);
	}
	*pid = 0;
}

/* The capability sets of this process, as 64-bit masks: 0 or -errno. */
static int caps_get(uint64_t *eff, uint64_t *perm)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	*eff = data[0].effective | (uint64_t)data[1].effective << 32;
	*perm = data[0].permitted | (uint64_t)data[1].permitted << 32;
	return 0;
}

static int caps_set(uint64_t eff, uint64_t perm)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {
		{ .effective = (uint32_t)eff, .permitted = (uint32_t)perm },
		{ .effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(perm >> 32) },
	};

	return syscall(SYS_capset, &hdr, data) ? -errno : 0;
}

#define CAP_BIT(c)	(1ull << (c))

/*
 * Becomes uid and gid NOBODY with no supplementary groups: with no
 * capabilities, or with CAP_NET_RAW (effective and permitted) alone. Checks
 * the result. 0 or -errno.
 */
static int drop_privileges(bool keep_net_raw)
{
	uint64_t want = keep_net_raw ? CAP_BIT(CAP_NET_RAW) : 0, eff = 0, perm = 0;
	uid_t ruid, euid, suid;
	int ret;

	if (keep_net_raw && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		return -errno;
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -errno;
	if (keep_net_raw) {
		ret = caps_set(want, want);
		if (ret)
			return ret;
	}
	ret = caps_get(&eff, &perm);
	if (ret)
		return ret;
	if (getresuid(&ruid, &euid, &suid) || ruid != NOBODY || euid != NOBODY ||
	    suid != NOBODY || getegid() != NOBODY || eff != want || perm != want)
		return -EPERM;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Pollers on another thread                                           */

struct poller {
	int fd;			/* the ring, or with use_epoll the epoll set */
	bool use_epoll;
	short events;
	int timeout_ms;
	pthread_t thread;
	bool running;
	pid_t tid;
	/* Results, once done is set. */
	int ret, err;
	short revents;
	uint32_t epevents;
	uint64_t done_ms;
	int done;
};

static void *poller_thread(void *arg)
{
	struct poller *p = arg;
	struct pollfd pfd = { .fd = p->fd, .events = p->events };
	struct epoll_event ev = { 0 };

	__atomic_store_n(&p->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	if (p->use_epoll) {
		p->ret = epoll_wait(p->fd, &ev, 1, p->timeout_ms);
		p->epevents = ev.events;
	} else {
		p->ret = poll(&pfd, 1, p->timeout_ms);
		p->revents = pfd.revents;
	}
	p->err = p->ret < 0 ? errno : 0;
	p->done_ms = mono_ms();
	__atomic_store_n(&p->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Is thread tid of this process asleep ('S')? */
static bool task_sleeping(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

static bool poller_done(struct poller *p)
{
	return __atomic_load_n(&p->done, __ATOMIC_ACQUIRE);
}

/*
 * Starts a thread that waits in poll() (or epoll_wait()) and returns once it
 * sleeps there, still waiting: true, or false if it did not get there.
 */
static bool poller_start(struct poller *p, int fd, bool use_epoll, short events, int timeout_ms)
{
	uint64_t end;
	pid_t tid;

	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->use_epoll = use_epoll;
	p->events = events;
	p->timeout_ms = timeout_ms;
	if (pthread_create(&p->thread, NULL, poller_thread, p))
		return false;
	p->running = true;
	end = mono_ms() + 5000;
	while (!(tid = __atomic_load_n(&p->tid, __ATOMIC_ACQUIRE)) && mono_ms() < end)
		sleep_ms(1);
	/* Asleep twice in a row, 50 ms apart: in the wait, not on the way there. */
	while (mono_ms() < end && !poller_done(p)) {
		if (tid && task_sleeping(tid)) {
			sleep_ms(50);
			if (task_sleeping(tid))
				break;
		}
		sleep_ms(5);
	}
	return tid && !poller_done(p) && task_sleeping(tid);
}

/* Waits up to ms for the poller to return: true if it did. */
static bool poller_wait(struct poller *p, unsigned int ms)
{
	uint64_t end = mono_ms() + ms;

	while (!poller_done(p) && mono_ms() < end)
		sleep_ms(2);
	return poller_done(p);
}

/* Joins the thread (which returns by its own timeout at the latest). */
static void poller_join(struct poller *p)
{
	if (p->running)
		pthread_join(p->thread, NULL);
	p->running = false;
}

/* ================================================================== */
/* privilege                                                           */

FIXTURE(privilege) {
	mode_t dev_mode;	/* /dev/pktring's permission bits before the test */
	bool mode_changed;
	pid_t child;
	int ctl;
	struct pktring_req req;	/* every test's ring: PRE_ROUTING on lo */
};

FIXTURE_SETUP(privilege)
{
	struct stat st;

	self->child = 0;
	self->ctl = -1;
	self->mode_changed = false;
	req_lo(&self->req, PKTRING_HOOK_PRE_ROUTING, PKTRING_FAMILY_IPV4, LO_IFINDEX);
	REQUIRE_DEVICE();
	ASSERT_EQ(0, stat(PKTRING_DEV, &st));
	self->dev_mode = st.st_mode & 07777;
	if (getuid() != 0)
		SKIP(return, "needs root (to drop to uid %d)", NOBODY);
}

FIXTURE_TEARDOWN(privilege)
{
	child_reap(&self->child);
	fd_close(&self->ctl);
	if (self->mode_changed)
		chmod(PKTRING_DEV, self->dev_mode);
}

/* Lets anyone open /dev/pktring, until dev_restore(). */
static int dev_open_to_all(FIXTURE_DATA(privilege) *self)
{
	self->mode_changed = true;
	return chmod(PKTRING_DEV, 0666) ? -errno : 0;
}

static void dev_restore(FIXTURE_DATA(privilege) *self)
{
	if (self->mode_changed && !chmod(PKTRING_DEV, self->dev_mode))
		self->mode_changed = false;
}

/* Receives a child's report: 0, or -errno (-EPIPE if it died first). */
static int report_recv(int ctl, struct report *rep)
{
	int n;

	memset(rep, 0, sizeof(*rep));
	n = msg_recv(ctl, rep, sizeof(*rep), NULL, 0, 2 * CHILD_MS);
	return n < 0 ? n : n == (int)sizeof(*rep) ? 0 : -EPROTO;
}

/*
 * Waits for a child's go-ahead byte want; a child that failed before it
 * sends its report instead, which lands in *rep: -ECHILD then.
 */
static int ready_wait(int ctl, char want, struct report *rep)
{
	int n;

	memset(rep, 0, sizeof(*rep));
	n = msg_recv(ctl, rep, sizeof(*rep), NULL, 0, CHILD_MS);
	if (n == (int)sizeof(*rep))
		return -ECHILD;
	if (n < 0)
		return n;
	return n == 1 && *(char *)rep == want ? 0 : -EPROTO;
}

/* Reaps a child that should be ending: true if it exited with status 0. */
static bool child_end(pid_t *pid)
{
	int status = 0;
	bool done = wait_child(*pid, CHILD_MS, &status);

	if (!done)
		child_reap(pid);
	*pid = 0;
	return done && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#define EXPECT_CHILD_DONE(rep) \
	EXPECT_TRUE((rep).done) TH_LOG("child failed: %s: %s", (rep).why, strerror((rep).err))

/*
 * The parent's end of a child that sends its report and exits: the report
 * (the test stops without one), the child's exit, and that it went
 * through all its steps.
 */
static void report_take(struct __test_metadata *_metadata, int ctl, pid_t *child,
			struct report *rep)
{
	int ret = report_recv(ctl, rep);

	ASSERT_EQ(0, ret) TH_LOG("child report: %s", errname(ret));
	EXPECT_TRUE(child_end(child));
	EXPECT_CHILD_DONE(*rep);
}

/* The child reports what it got on its own port. */
static void lo_rx_child(struct report *rep, struct ring *r, int sink, uint16_t port,
			unsigned int n)
{
	rep->res[4] = send_udp(port, TAG_CHILD, 0, n);
	rep->sunk = sink_drain(sink, n, TAG_CHILD, &rep->sunk_wrong, CHILD_MS);
	count_lo(r, port, &rep->c);
}

/* A file opened without CAP_NET_RAW can be opened (mode 0666) but not set up. */
TEST_F_TIMEOUT(privilege, unprivileged_open, 60)
{
	struct report rep;
	int sock;

	ASSERT_EQ(0, dev_open_to_all(self));
	if (fork_child(_metadata, &self->child, &self->ctl, &sock)) {
		struct pktring_info info;
		int fd = -1;

		memset(&rep, 0, sizeof(rep));
		CHILD_CALL(&rep, "dropping to nobody with no capabilities", drop_privileges(false));
		fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		CHILD_CHECK(&rep, "open " PKTRING_DEV " (mode 0666)", fd >= 0);
		rep.res[0] = set_ring(fd, &self->req);
		/* Nothing was set up. */
		rep.res[1] = ioctl(fd, PKTRING_IOC_GET_INFO, &info) ? -errno : 0;
		rep.res[2] = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED ?
			     -errno : 0;
		rep.done = true;
out:
		report_exit(sock, &rep);
	}
	report_take(_metadata, self->ctl, &self->child, &rep);
	dev_restore(self);
	EXPECT_EQ(-EPERM, rep.res[0])
		TH_LOG("SET_RING without CAP_NET_RAW: %s", errname(rep.res[0]));
	EXPECT_EQ(-EINVAL, rep.res[1]) TH_LOG("GET_INFO with no ring: %s", errname(rep.res[1]));
	EXPECT_EQ(-EINVAL, rep.res[2]) TH_LOG("mmap with no ring: %s", errname(rep.res[2]));
}

/*
 * CAP_NET_RAW alone is enough, and it is the opener's that counts: a file
 * opened with it works after it is dropped, one opened without it does not
 * work once it is back.
 */
TEST_F_TIMEOUT(privilege, net_raw_only, 60)
{
	const uint16_t port = 47101;
	struct report rep;
	int sock;

	ASSERT_EQ(0, dev_open_to_all(self));
	if (fork_child(_metadata, &self->child, &self->ctl, &sock)) {
		const uint64_t net_raw = CAP_BIT(CAP_NET_RAW);
		int with = -1, without = -1, again = -1, sink = -1;
		struct ring r;

		ring_init(&r);
		memset(&rep, 0, sizeof(rep));
		CHILD_CALL(&rep, "dropping to nobody with CAP_NET_RAW", drop_privileges(true));
		with = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		CHILD_CHECK(&rep, "open with CAP_NET_RAW", with >= 0);
		CHILD_CALL(&rep, "capset: CAP_NET_RAW permitted only", caps_set(0, net_raw));
		without = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		CHILD_CHECK(&rep, "open without CAP_NET_RAW", without >= 0);
		/* Set up with no capability in effect: the first file only. */
		rep.res[0] = set_ring(with, &self->req);
		CHILD_CALL(&rep, "capset: CAP_NET_RAW again", caps_set(net_raw, net_raw));
		rep.res[1] = set_ring(without, &self->req);
		again = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		CHILD_CHECK(&rep, "open with CAP_NET_RAW again", again >= 0);
		/* The first ring captures for its unprivileged owner. */
		if (!rep.res[0]) {
			CHILD_CALL(&rep, "GET_INFO and mmap",
				   ring_attach(&r, with, PROT_READ | PROT_WRITE));
			with = -1;	/* r's now */
			sink = CHILD_CALL(&rep, "binding a UDP socket", udp_sink(port));
			lo_rx_child(&rep, &r, sink, port, 5);
		}
		rep.done = true;
out:
		report_exit(sock, &rep);
	}
	report_take(_metadata, self->ctl, &self->child, &rep);
	dev_restore(self);
	EXPECT_EQ(0, rep.res[0])
		TH_LOG("SET_RING on a file opened with CAP_NET_RAW (since dropped): %s",
		       errname(rep.res[0]));
	EXPECT_EQ(-EPERM, rep.res[1])
		TH_LOG("SET_RING on a file opened without CAP_NET_RAW (now back): %s",
		       errname(rep.res[1]));
	if (!rep.res[0]) {
		EXPECT_EQ(0, rep.res[4]);
		EXPECT_EQ(5u, rep.sunk);
		EXPECT_EQ(5u, rep.c.tag[TAG_CHILD]) TH_LOG(LO_COUNT_FMT, LO_COUNT_ARGS(rep.c));
		EXPECT_EQ(5u, rep.c.ready);
		EXPECT_EQ(0u, rep.c.bad_seq);
	}
}

/*
 * A file root opened and passed to an unprivileged process works there: it
 * sets the ring up, maps it and reads the frames of its own traffic.
 */
TEST_F_TIMEOUT(privilege, fd_passed_to_unprivileged, 60)
{
	const uint16_t port = 47102;
	const unsigned int n = 10;
	struct report rep;
	int sock, ret, fd;

	if (fork_child(_metadata, &self->child, &self->ctl, &sock)) {
		struct pktring_stats st;
		struct ring r;
		int sink = -1, own;

		ring_init(&r);
		memset(&rep, 0, sizeof(rep));
		CHILD_CALL(&rep, "dropping to nobody with no capabilities", drop_privileges(false));
		/* Unprivileged indeed: the device (mode 0600) is closed to it. */
		own = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		rep.res[0] = own < 0 ? -errno : 0;
		if (own >= 0)
			close(own);
		CHILD_CHECK(&rep, "telling the parent", !sync_send(sock, 'R'));
		ret = msg_recv(sock, &rep.res[5], sizeof(rep.res[5]), &fd, 1, CHILD_MS);
		errno = ret < 0 ? -ret : EPROTO;
		CHILD_CHECK(&rep, "receiving the file", ret == (int)sizeof(rep.res[5]));
		rep.res[1] = set_ring(fd, &self->req);
		errno = -rep.res[1];
		CHILD_CHECK(&rep, "SET_RING on root's file", !rep.res[1]);
		CHILD_CALL(&rep, "GET_INFO and mmap", ring_attach(&r, fd, PROT_READ | PROT_WRITE));
		sink = CHILD_CALL(&rep, "binding a UDP socket", udp_sink(port));
		lo_rx_child(&rep, &r, sink, port, n);
		rep.res[2] = get_stats(&r, &st);
		rep.res[3] = (int)st.packets;
		release_all(&r);
		rep.done = true;
out:
		report_exit(sock, &rep);
	}
	ret = ready_wait(self->ctl, 'R', &rep);
	ASSERT_EQ(0, ret) TH_LOG("child: %s (%s: %s)", errname(ret), rep.why, strerror(rep.err));
	fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ret = msg_send(self->ctl, &fd, sizeof(fd), &fd, 1);
	close(fd);
	ASSERT_EQ(0, ret) TH_LOG("SCM_RIGHTS: %s", errname(ret));
	report_take(_metadata, self->ctl, &self->child, &rep);
	EXPECT_EQ(-EACCES, rep.res[0]) TH_LOG("the child opening " PKTRING_DEV " itself: %s",
					      errname(rep.res[0]));
	EXPECT_EQ(0, rep.res[1]) TH_LOG("SET_RING on root's file: %s", errname(rep.res[1]));
	EXPECT_EQ(0, rep.res[4]) TH_LOG("sending: %s", errname(rep.res[4]));
	EXPECT_EQ(n, rep.sunk);
	EXPECT_EQ(n, rep.c.tag[TAG_CHILD]) TH_LOG(LO_COUNT_FMT, LO_COUNT_ARGS(rep.c));
	EXPECT_EQ(n, rep.c.ready);
	EXPECT_EQ(0u, rep.c.bad_seq);
	EXPECT_EQ(0, rep.res[2]);
	EXPECT_EQ((int)n, rep.res[3]);
}

/* A file an unprivileged process opened fails in root's hands too. */
TEST_F_TIMEOUT(privilege, fd_passed_to_root, 60)
{
	struct pktring_info info;
	int sock, ret, fd, mine, opened = 0;

	ASSERT_EQ(0, dev_open_to_all(self));
	if (fork_child(_metadata, &self->child, &self->ctl, &sock)) {
		ret = drop_privileges(false);
		if (ret)
			_exit(2);
		fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			_exit(3);
		if (msg_send(sock, &fd, sizeof(fd), &fd, 1))
			_exit(4);
		/* Still holding it, until the parent is done. */
		_exit(sync_wait(sock, 'D', CHILD_MS) ? 5 : 0);
	}
	ret = msg_recv(self->ctl, &opened, sizeof(opened), &fd, 1, CHILD_MS);
	dev_restore(self);
	ASSERT_EQ((int)sizeof(opened), ret) TH_LOG("receiving the child's file: %s",
						   errname(ret < 0 ? ret : -EPROTO));
	EXPECT_EQ(-EPERM, set_ring(fd, &self->req));
	EXPECT_EQ(-1, ioctl(fd, PKTRING_IOC_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
	sync_send(self->ctl, 'D');
	EXPECT_TRUE(child_end(&self->child)) TH_LOG("the child failed before passing its file");
	/* Root's own file is fine. */
	mine = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, mine);
	EXPECT_EQ(0, set_ring(mine, &self->req));
	close(mine);
}

/* ================================================================== */
/* isolation: a ring sees its opener's namespace only                 */

FIXTURE(isolation) {
	struct ring r;
	int sink;
	pid_t child;
	int ctl;
};

FIXTURE_VARIANT(isolation) {
	uint16_t hook;
};

FIXTURE_VARIANT_ADD(isolation, pre_routing) {
	.hook = PKTRING_HOOK_PRE_ROUTING,
};

FIXTURE_VARIANT_ADD(isolation, local_in) {
	.hook = PKTRING_HOOK_LOCAL_IN,
};

FIXTURE_VARIANT_ADD(isolation, ingress) {
	.hook = PKTRING_HOOK_INGRESS,
};

FIXTURE_SETUP(isolation)
{
	ring_init(&self->r);
	self->sink = -1;
	self->child = 0;
	self->ctl = -1;
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(isolation)
{
	child_reap(&self->child);
	fd_close(&self->ctl);
	fd_close(&self->sink);
	ring_destroy(&self->r);
}

/*
 * The parent's ring (the initial namespace's lo) and a child's ring (in a
 * new namespace, any device for an inet hook) each see exactly their own
 * datagrams, though both go from 127.0.0.1 to 127.0.0.1 on the same port.
 */
TEST_F_TIMEOUT(isolation, loopback, 90)
{
	const uint16_t port = 47201;
	const unsigned int n_child = 20, n_parent = 12;
	struct pktring_req req;
	struct pktring_stats st;
	struct lo_count c;
	struct report rep;
	unsigned int got, wrong;
	int sock, ret;

	req_lo(&req, variant->hook, PKTRING_FAMILY_IPV4, LO_IFINDEX);
	ASSERT_EQ(0, ring_open(&self->r, O_RDWR, &req, PROT_READ | PROT_WRITE));
	self->sink = udp_sink(port);
	ASSERT_LE(0, self->sink);

	if (fork_child(_metadata, &self->child, &self->ctl, &sock)) {
		struct pktring_stats cst;
		struct pktring_req creq;
		struct ring r;
		int sink = -1;

		ring_init(&r);
		memset(&rep, 0, sizeof(rep));
		/* None of the parent's. */
		close(self->sink);
		close(self->r.fd);
		CHILD_CHECK(&rep, "unshare(CLONE_NEWNET)", !unshare(CLONE_NEWNET));
		CHILD_CALL(&rep, "setting lo up", lo_up());
		req_lo(&creq, variant->hook, PKTRING_FAMILY_BOTH,
		       variant->hook == PKTRING_HOOK_INGRESS ? LO_IFINDEX : 0);
		CHILD_CALL(&rep, "setting a ring up in the new namespace",
			   ring_open(&r, O_RDWR, &creq, PROT_READ | PROT_WRITE));
		sink = CHILD_CALL(&rep, "binding a UDP socket", udp_sink(port));
		CHILD_CHECK(&rep, "telling the parent", !sync_send(sock, 'R'));
		CHILD_CALL(&rep, "waiting for the parent's datagrams",
			   sync_wait(sock, 'G', CHILD_MS));
		lo_rx_child(&rep, &r, sink, port, n_child);
		rep.res[0] = get_stats(&r, &cst);
		rep.res[1] = (int)cst.packets;
		rep.res[2] = (int)cst.drops;
		rep.done = true;
out:
		report_exit(sock, &rep);
	}
	ret = ready_wait(self->ctl, 'R', &rep);
	ASSERT_EQ(0, ret) TH_LOG("child: %s (%s: %s)", errname(ret), rep.why, strerror(rep.err));
	/* The parent's datagrams first: they are all through the hooks before the child's. */
	ASSERT_EQ(0, send_udp(port, TAG_PARENT, 0, n_parent));
	got = sink_drain(self->sink, n_parent, TAG_PARENT, &wrong, CHILD_MS);
	EXPECT_EQ(n_parent, got);
	EXPECT_EQ(0u, wrong);
	ASSERT_EQ(0, sync_send(self->ctl, 'G'));
	report_take(_metadata, self->ctl, &self->child, &rep);

	/* The child's ring: its own datagrams, nothing else. */
	EXPECT_EQ(0, rep.res[4]) TH_LOG("child sending: %s", errname(rep.res[4]));
	EXPECT_EQ(n_child, rep.sunk);
	EXPECT_EQ(0u, rep.sunk_wrong);
	EXPECT_EQ(n_child, rep.c.tag[TAG_CHILD]) TH_LOG("child's ring: " LO_COUNT_FMT,
							 LO_COUNT_ARGS(rep.c));
	EXPECT_EQ(0u, rep.c.tag[TAG_PARENT]) TH_LOG("child's ring: " LO_COUNT_FMT,
						     LO_COUNT_ARGS(rep.c));
	EXPECT_EQ(0u, rep.c.other) TH_LOG("child's ring: " LO_COUNT_FMT, LO_COUNT_ARGS(rep.c));
	EXPECT_EQ(0u, rep.c.bad_seq);
	EXPECT_EQ(0u, rep.c.stray);
	EXPECT_EQ(0, rep.res[0]);
	EXPECT_EQ(rep.c.ready, (unsigned int)rep.res[1]);
	EXPECT_EQ(0, rep.res[2]);

	/* The parent's: its own, none of the child's. */
	count_lo(&self->r, port, &c);
	EXPECT_EQ(n_parent, c.tag[TAG_PARENT]) TH_LOG("parent's ring: " LO_COUNT_FMT,
						       LO_COUNT_ARGS(c));
	EXPECT_EQ(0u, c.tag[TAG_CHILD]) TH_LOG("parent's ring: " LO_COUNT_FMT, LO_COUNT_ARGS(c));
	EXPECT_EQ(0u, c.other) TH_LOG("parent's ring: " LO_COUNT_FMT, LO_COUNT_ARGS(c));
	EXPECT_EQ(0u, c.bad_seq);
	EXPECT_EQ(0u, c.stray);
	ASSERT_EQ(0, get_stats(&self->r, &st));
	EXPECT_EQ(n_parent, st.packets);
	EXPECT_EQ(0u, st.drops);
}

/* ================================================================== */
/* netns: devices of other namespaces, the end of a capture            */

FIXTURE(netns) {
	struct ring r;
	pid_t child;
	int ctl;
	int idle;			/* a ring file with no ring */
	struct poller poller;
	char veth[2][IFNAMSIZ];		/* to delete in teardown */
};

FIXTURE_SETUP(netns)
{
	ring_init(&self->r);
	self->child = 0;
	self->ctl = -1;
	self->idle = -1;
	memset(&self->poller, 0, sizeof(self->poller));
	memset(self->veth, 0, sizeof(self->veth));
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(netns)
{
	unsigned int i;

	child_reap(&self->child);
	fd_close(&self->ctl);
	ring_destroy(&self->r);
	fd_close(&self->idle);
	poller_join(&self->poller);
	for (i = 0; i < 2; i++)
		if (self->veth[i][0])
			link_del_name(self->veth[i]);
}

/*
 * An ingress ifindex is a device of the ring's namespace: a device that
 * exists only in the initial namespace is ENODEV in a new one (whose lo
 * works). eth0's index first; but a new namespace has more than lo when the
 * kernel makes per-namespace fallback devices (sit0, with IPV6_SIT built
 * in), and those may take eth0's index there: then the first index of the
 * initial namespace that names nothing in the new one.
 */
TEST_F_TIMEOUT(netns, ifindex_elsewhere, 60)
{
	struct if_nameindex *ifs, *it;
	int candidates[16], ncand = 0, eth0 = (int)if_nametoindex("eth0");
	struct report rep;
	int sock;

	/* The initial namespace's devices other than lo, eth0 first. */
	if (eth0 > 0)
		candidates[ncand++] = eth0;
	ifs = if_nameindex();
	for (it = ifs; it && it->if_index && ncand < 16; it++)
		if ((int)it->if_index != LO_IFINDEX && (int)it->if_index != eth0)
			candidates[ncand++] = (int)it->if_index;
	if (ifs)
		if_freenameindex(ifs);
	if (!ncand)
		SKIP(return, "no device but lo in the initial namespace");

	if (fork_child(_metadata, &self->child, &self->ctl, &sock)) {
		struct pktring_req req;
		char name[IF_NAMESIZE];
		int i, fd;

		memset(&rep, 0, sizeof(rep));
		CHILD_CHECK(&rep, "unshare(CLONE_NEWNET)", !unshare(CLONE_NEWNET));
		CHILD_CALL(&rep, "setting lo up", lo_up());
		/* The first candidate no device of this namespace has. */
		for (i = 0; i < ncand; i++) {
			if (!if_indextoname((unsigned int)candidates[i], name)) {
				rep.res[0] = candidates[i];
				break;
			}
		}
		if (rep.res[0]) {
			req_lo(&req, PKTRING_HOOK_INGRESS, PKTRING_FAMILY_BOTH, rep.res[0]);
			fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
			CHILD_CHECK(&rep, "open", fd >= 0);
			rep.res[1] = set_ring(fd, &req);
			close(fd);
		}
		req_lo(&req, PKTRING_HOOK_INGRESS, PKTRING_FAMILY_BOTH, LO_IFINDEX);
		fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		CHILD_CHECK(&rep, "open", fd >= 0);
		rep.res[2] = set_ring(fd, &req);
		close(fd);
		rep.done = true;
out:
		report_exit(sock, &rep);
	}
	report_take(_metadata, self->ctl, &self->child, &rep);
	/* What it found means nothing unless it went through all its steps. */
	ASSERT_TRUE(rep.done);
	if (!rep.res[0])
		SKIP(return, "every device index of the initial namespace exists in a new one");
	if (rep.res[0] != eth0)
		diag("index %d (eth0) names a device of the new namespace too: using %d",
		     eth0, rep.res[0]);
	EXPECT_EQ(-ENODEV, rep.res[1])
		TH_LOG("INGRESS on device %d of the initial namespace, from a new one: %s",
		       rep.res[0], errname(rep.res[1]));
	EXPECT_EQ(0, rep.res[2]) TH_LOG("INGRESS on the new namespace's lo: %s",
					errname(rep.res[2]));
}

/*
 * The capture of self->r ended at t0 (with what: why): the poller asleep on
 * it wakes with POLLERR within ms, and GET_INFO (into *info) reports err.
 */
static void expect_capture_end(struct __test_metadata *_metadata, FIXTURE_DATA(netns) *self,
			       uint64_t t0, unsigned int ms, uint32_t err, const char *why,
			       struct pktring_info *info)
{
	EXPECT_TRUE(poller_wait(&self->poller, ms))
		TH_LOG("no POLLERR %u s after %s", ms / 1000, why);
	poller_join(&self->poller);
	EXPECT_EQ(1, self->poller.ret) TH_LOG("poll() returned %d (%s) after %llu ms",
					      self->poller.ret, strerror(self->poller.err),
					      (unsigned long long)(self->poller.done_ms - t0));
	EXPECT_EQ(POLLERR, self->poller.revents);
	if (self->poller.ret == 1)
		diag("POLLERR %llu ms after %s", (unsigned long long)(self->poller.done_ms - t0),
		     why);
	ASSERT_EQ(0, ioctl(self->r.fd, PKTRING_IOC_GET_INFO, info));
	EXPECT_EQ(err, info->error) TH_LOG("info.error %u (%s)", info->error,
					   strerror((int)info->error));
}

/* Unmaps and closes r, expecting both to work. */
static void expect_ring_close(struct __test_metadata *_metadata, struct ring *r)
{
	EXPECT_EQ(0, munmap(r->map, r->map_len));
	r->map = MAP_FAILED;
	EXPECT_EQ(0, close(r->fd));
	r->fd = -1;
}

/*
 * A ring whose namespace is dismantled under it: set up in a child's new
 * namespace, passed to the parent, the child exits. A poller sleeping on the
 * ring wakes with POLLERR, info.error is ENONET, the frames are still there
 * (POLLIN with POLLERR until they are read), GET_STATS works, and another
 * file opened in that namespace can no longer be set up (ENONET).
 */
static void netns_gone_test(struct __test_metadata *_metadata, FIXTURE_DATA(netns) *self,
			    uint16_t hook)
{
	const uint16_t port = 47301;
	const unsigned int n = 5;
	struct pktring_info info;
	struct pktring_stats st;
	struct pktring_req req;
	struct pollfd pfd;
	struct lo_count c;
	struct report rep;
	int sock, ret, fds[2];
	uint64_t t_exit;
	char tok;

	req_lo(&req, hook, PKTRING_FAMILY_BOTH, hook == PKTRING_HOOK_INGRESS ? LO_IFINDEX : 0);
	if (fork_child(_metadata, &self->child, &self->ctl, &sock)) {
		int ring = -1, idle = -1, sink = -1;
		struct ring r;

		ring_init(&r);
		memset(&rep, 0, sizeof(rep));
		CHILD_CHECK(&rep, "unshare(CLONE_NEWNET)", !unshare(CLONE_NEWNET));
		CHILD_CALL(&rep, "setting lo up", lo_up());
		CHILD_CALL(&rep, "setting a ring up in the new namespace",
			   ring_open(&r, O_RDWR, &req, PROT_READ));
		idle = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		CHILD_CHECK(&rep, "opening a second file", idle >= 0);
		sink = CHILD_CALL(&rep, "binding a UDP socket", udp_sink(port));
		lo_rx_child(&rep, &r, sink, port, n);
		ring = r.fd;
		rep.done = true;
out:
		msg_send(sock, &rep, sizeof(rep), NULL, 0);
		if (rep.done) {
			msg_send(sock, "F", 1, (int[]){ ring, idle }, 2);
			/* Hold on until the parent has them, then let the namespace go. */
			sync_wait(sock, 'A', CHILD_MS);
		}
		_exit(0);
	}
	ret = report_recv(self->ctl, &rep);
	ASSERT_EQ(0, ret) TH_LOG("child report: %s", errname(ret));
	ASSERT_TRUE(rep.done) TH_LOG("child failed: %s: %s", rep.why, strerror(rep.err));
	EXPECT_EQ(n, rep.sunk);
	EXPECT_EQ(n, rep.c.tag[TAG_CHILD]) TH_LOG("child's ring: " LO_COUNT_FMT,
						  LO_COUNT_ARGS(rep.c));
	ret = msg_recv(self->ctl, &tok, 1, fds, 2, CHILD_MS);
	ASSERT_EQ(1, ret) TH_LOG("receiving the files: %s", errname(ret < 0 ? ret : -EPROTO));
	self->idle = fds[1];
	ASSERT_EQ(0, ring_attach(&self->r, fds[0], PROT_READ | PROT_WRITE));
	EXPECT_EQ(0u, self->r.info.error);

	/* Frames are ready: a poll for them returns at once; an error-only one sleeps. */
	pfd = (struct pollfd){ .fd = self->r.fd, .events = POLLIN };
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);
	ASSERT_TRUE(poller_start(&self->poller, self->r.fd, false, 0, NETNS_GONE_MS + 5000))
		TH_LOG("the poller did not sleep in poll() (returned %d, revents %#x)",
		       self->poller.ret, self->poller.revents);

	ASSERT_EQ(0, sync_send(self->ctl, 'A'));
	EXPECT_TRUE(child_end(&self->child));
	close(self->ctl);
	self->ctl = -1;
	t_exit = mono_ms();

	/* Nothing holds the namespace now: it is dismantled from a work queue. */
	expect_capture_end(_metadata, self, t_exit, NETNS_GONE_MS, ENONET,
			   "the namespace's last process exited", &info);
	EXPECT_EQ(self->r.info.mmap_size, info.mmap_size);
	EXPECT_EQ(self->r.info.frame_nr, info.frame_nr);

	/* The frames stay, and poll says so alongside the error. */
	pfd = (struct pollfd){ .fd = self->r.fd, .events = POLLIN };
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN | POLLERR, pfd.revents);
	count_lo(&self->r, port, &c);
	EXPECT_EQ(n, c.tag[TAG_CHILD]) TH_LOG(LO_COUNT_FMT, LO_COUNT_ARGS(c));
	EXPECT_EQ(n, c.ready);
	EXPECT_EQ(0u, c.bad_seq);
	ret = get_stats(&self->r, &st);
	EXPECT_EQ(0, ret) TH_LOG("GET_STATS: %s", errname(ret));
	EXPECT_EQ(n, st.packets);
	EXPECT_EQ(0u, st.drops);
	release_all(&self->r);
	pfd = (struct pollfd){ .fd = self->r.fd, .events = POLLIN };
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLERR, pfd.revents);

	/* The namespace cannot be captured in any more. */
	EXPECT_EQ(-ENONET, set_ring(self->idle, &req));

	expect_ring_close(_metadata, &self->r);
	EXPECT_EQ(0, close(self->idle));
	self->idle = -1;
}

TEST_F_TIMEOUT(netns, gone_pre_routing, 120)
{
	netns_gone_test(_metadata, self, PKTRING_HOOK_PRE_ROUTING);
}

TEST_F_TIMEOUT(netns, gone_ingress, 120)
{
	netns_gone_test(_metadata, self, PKTRING_HOOK_INGRESS);
}

/* After a capture ended with ENETDOWN: POLLERR alone, counters, close. */
static void check_netdown(struct __test_metadata *_metadata, FIXTURE_DATA(netns) *self,
			  uint64_t t0)
{
	struct pktring_info info;
	struct pktring_stats st;
	struct pollfd pfd = { .fd = self->r.fd, .events = POLLIN };
	int ret;

	expect_capture_end(_metadata, self, t0, WAKE_MS, ENETDOWN, "the device left", &info);
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLERR, pfd.revents);
	ret = get_stats(&self->r, &st);
	EXPECT_EQ(0, ret) TH_LOG("GET_STATS: %s", errname(ret));
	EXPECT_EQ(0u, ring_count_user(&self->r));
	expect_ring_close(_metadata, &self->r);
}

/* Sets up a veth pair and an INGRESS ring on its first end, with a poller asleep on it. */
static int veth_ring(struct __test_metadata *_metadata, FIXTURE_DATA(netns) *self,
		     const char *name, const char *peer)
{
	struct pktring_req req;
	int ret, ifindex;

	ret = veth_fresh(name, peer);
	if (ret)
		return ret;
	snprintf(self->veth[0], IFNAMSIZ, "%s", name);
	snprintf(self->veth[1], IFNAMSIZ, "%s", peer);
	ifindex = (int)if_nametoindex(name);
	if (ifindex <= 0)
		return -ENODEV;
	req_lo(&req, PKTRING_HOOK_INGRESS, PKTRING_FAMILY_BOTH, ifindex);
	ret = ring_open(&self->r, O_RDWR, &req, PROT_READ | PROT_WRITE);
	if (ret) {
		TH_LOG("INGRESS ring on %s: %s", name, errname(ret));
		return ret;
	}
	EXPECT_EQ(0u, self->r.info.error);
	if (!poller_start(&self->poller, self->r.fd, false, POLLIN, 30000)) {
		TH_LOG("the poller did not sleep in poll()");
		return -EIO;
	}
	return ifindex;
}

/* The device of an INGRESS ring is deleted: POLLERR, ENETDOWN. */
TEST_F_TIMEOUT(netns, ingress_device_deleted, 90)
{
	int ifindex, status = 0;
	uint64_t t0;
	bool done;
	pid_t pid;

	ifindex = veth_ring(_metadata, self, "pktacc-d0", "pktacc-d1");
	if (ifindex == -EOPNOTSUPP || ifindex == -EAFNOSUPPORT)
		SKIP(return, "no veth devices here (%s)", errname(ifindex));
	ASSERT_LT(0, ifindex) TH_LOG("%s", errname(ifindex));

	/* From a child that holds nothing of the ring, in case it blocks. */
	t0 = mono_ms();
	pid = fork_flushed();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(self->r.fd);
		_exit(link_del(ifindex) ? 1 : 0);
	}
	self->child = pid;
	done = wait_child(pid, 15000, &status);
	EXPECT_TRUE(done) TH_LOG("deleting the device blocks while an INGRESS ring is on it");
	if (!done) {
		ring_destroy(&self->r);
		wait_child(pid, 30000, &status);
	}
	self->child = 0;
	ASSERT_TRUE(done);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("RTM_DELLINK failed");
	EXPECT_EQ(0u, if_nametoindex(self->veth[0]));
	EXPECT_EQ(0u, if_nametoindex(self->veth[1]));
	check_netdown(_metadata, self, t0);
}

/*
 * The device of an INGRESS ring moves to another namespace: POLLERR,
 * ENETDOWN; its ifindex is no device here any more.
 */
TEST_F_TIMEOUT(netns, ingress_device_moved, 120)
{
	struct pktring_req req;
	int ifindex, sock, ret, fd;
	uint64_t t0, end;

	ifindex = veth_ring(_metadata, self, "pktacc-m0", "pktacc-m1");
	if (ifindex == -EOPNOTSUPP || ifindex == -EAFNOSUPPORT)
		SKIP(return, "no veth devices here (%s)", errname(ifindex));
	ASSERT_LT(0, ifindex) TH_LOG("%s", errname(ifindex));

	if (fork_child(_metadata, &self->child, &self->ctl, &sock)) {
		/* A namespace to move the device to, until the parent is done. */
		close(self->r.fd);
		if (unshare(CLONE_NEWNET))
			_exit(2);
		if (sync_send(sock, 'R'))
			_exit(3);
		_exit(sync_wait(sock, 'D', 2 * CHILD_MS) ? 4 : 0);
	}
	ASSERT_EQ(0, sync_wait(self->ctl, 'R', CHILD_MS));
	t0 = mono_ms();
	ret = link_set_netns(ifindex, self->child);
	ASSERT_EQ(0, ret) TH_LOG("moving %s to the child's namespace: %s", self->veth[0],
				 errname(ret));
	EXPECT_EQ(0u, if_nametoindex(self->veth[0]));
	check_netdown(_metadata, self, t0);

	/* Its index names nothing here now (unless the kernel reused it at once). */
	if (!if_indextoname((unsigned int)ifindex, (char[IF_NAMESIZE]){ 0 })) {
		req_lo(&req, PKTRING_HOOK_INGRESS, PKTRING_FAMILY_BOTH, ifindex);
		fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd);
		EXPECT_EQ(-ENODEV, set_ring(fd, &req));
		close(fd);
	}

	/* The namespace goes with the child, and the veth pair with it. */
	sync_send(self->ctl, 'D');
	EXPECT_TRUE(child_end(&self->child));
	end = mono_ms() + NETNS_GONE_MS;
	while (if_nametoindex(self->veth[1]) && mono_ms() < end)
		sleep_ms(50);
	EXPECT_EQ(0u, if_nametoindex(self->veth[1]))
		TH_LOG("%s is still there %u s after the other end's namespace went",
		       self->veth[1], NETNS_GONE_MS / 1000);
}

/* ================================================================== */
/* early_poll: waiting before the ring exists                         */

FIXTURE(early_poll) {
	int fd;
	int ep;
	int sink;
	struct ring r;
	struct poller poller;
};

FIXTURE_SETUP(early_poll)
{
	self->fd = -1;
	self->ep = -1;
	self->sink = -1;
	ring_init(&self->r);
	memset(&self->poller, 0, sizeof(self->poller));
	REQUIRE_DEVICE();
	self->fd = open(PKTRING_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", PKTRING_DEV, strerror(errno));
}

FIXTURE_TEARDOWN(early_poll)
{
	poller_join(&self->poller);
	fd_close(&self->ep);
	fd_close(&self->sink);
	/* self->fd is self->r's once the ring is set up. */
	ring_destroy(&self->r);
	fd_close(&self->fd);
}

/*
 * Sets the ring of self->fd up (PRE_ROUTING on lo), maps it and sends n
 * datagrams to port (*t_sent: when it began). Returns when they are all
 * through the hooks.
 */
static void early_setup_and_send(struct __test_metadata *_metadata,
				 FIXTURE_DATA(early_poll) *self, uint16_t port, unsigned int n,
				 uint64_t *t_sent)
{
	struct pktring_req req;
	int fd = self->fd;

	req_lo(&req, PKTRING_HOOK_PRE_ROUTING, PKTRING_FAMILY_IPV4, LO_IFINDEX);
	self->sink = udp_sink(port);
	ASSERT_LE(0, self->sink);
	ASSERT_EQ(0, set_ring(fd, &req));
	/* From here on self->r owns the file. */
	self->fd = -1;
	ASSERT_EQ(0, ring_attach(&self->r, fd, PROT_READ | PROT_WRITE));
	*t_sent = mono_ms();
	parent_send(_metadata, self->sink, port, 0, n);
}

static void early_check_frames(struct __test_metadata *_metadata,
			       FIXTURE_DATA(early_poll) *self, uint16_t port, unsigned int n)
{
	struct lo_count c;

	count_lo(&self->r, port, &c);
	EXPECT_EQ(n, c.tag[TAG_PARENT]) TH_LOG(LO_COUNT_FMT, LO_COUNT_ARGS(c));
	EXPECT_EQ(n, c.ready);
}

/* Nothing to report before set-up: no POLLIN, no POLLERR. */
static void early_nothing_yet(struct __test_metadata *_metadata, int fd, int ep)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct epoll_event ev;

	EXPECT_EQ(0, poll(&pfd, 1, 100)) TH_LOG("revents %#x before set-up", pfd.revents);
	if (ep >= 0)
		EXPECT_EQ(0, epoll_wait(ep, &ev, 1, 100));
}

/* How early_wake_test() waits on the file it opened. */
enum early_wait {
	EARLY_POLL,		/* a thread asleep in poll() before SET_RING */
	EARLY_EPOLL,		/* a thread asleep in epoll_wait() on a set the file joined */
	EARLY_EPOLL_LATE,	/* the set the file joined waited on after the frames */
};

/*
 * Waits on self->fd, or on an epoll set it joined, from before its ring is
 * set up; then sets the ring up and sends three datagrams. The wait must
 * end with the frames, soon.
 */
static void early_wake_test(struct __test_metadata *_metadata, FIXTURE_DATA(early_poll) *self,
			    uint16_t port, enum early_wait how)
{
	const unsigned int n = 3;
	const bool use_epoll = how != EARLY_POLL;
	const char *what = use_epoll ? "epoll_wait()" : "poll()";
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 7 };
	uint64_t t_sent, t0, waited;
	int ret;

	if (use_epoll) {
		self->ep = epoll_create1(EPOLL_CLOEXEC);
		ASSERT_LE(0, self->ep);
		ASSERT_EQ(0, epoll_ctl(self->ep, EPOLL_CTL_ADD, self->fd, &ev));
	}
	early_nothing_yet(_metadata, self->fd, self->ep);

	if (how == EARLY_EPOLL_LATE) {
		/*
		 * epoll_wait() looks at its ready list, which only the wake-up
		 * of the file's wait queue fills: it must report EPOLLIN at once.
		 */
		early_setup_and_send(_metadata, self, port, n, &t_sent);
		t0 = mono_ms();
		memset(&ev, 0, sizeof(ev));
		ret = epoll_wait(self->ep, &ev, 1, WAKE_MS);
		waited = mono_ms() - t0;
		EXPECT_EQ(1, ret) TH_LOG("epoll_wait() returned %d after %llu ms", ret,
					 (unsigned long long)waited);
		EXPECT_TRUE(!!(ev.events & EPOLLIN)) TH_LOG("events %#x", ev.events);
		EXPECT_EQ(7u, ev.data.u32);
		EXPECT_GT(1000u, waited) TH_LOG("epoll_wait() took %llu ms",
						(unsigned long long)waited);
		early_check_frames(_metadata, self, port, n);
		return;
	}

	ASSERT_TRUE(poller_start(&self->poller, use_epoll ? self->ep : self->fd, use_epoll,
				 use_epoll ? 0 : POLLIN, 30000))
		TH_LOG("the poller did not sleep in %s (returned %d, revents %#x)", what,
		       self->poller.ret, self->poller.revents);
	early_setup_and_send(_metadata, self, port, n, &t_sent);
	EXPECT_TRUE(poller_wait(&self->poller, WAKE_MS))
		TH_LOG("%s from before SET_RING still asleep %u s after the frames", what,
		       WAKE_MS / 1000);
	poller_join(&self->poller);
	waited = self->poller.done_ms - t_sent;
	EXPECT_EQ(1, self->poller.ret) TH_LOG("%s returned %d (%s) %lld ms after the frames",
					      what, self->poller.ret, strerror(self->poller.err),
					      (long long)waited);
	if (use_epoll) {
		EXPECT_TRUE(!!(self->poller.epevents & EPOLLIN))
			TH_LOG("events %#x", self->poller.epevents);
	} else {
		EXPECT_EQ(POLLIN, self->poller.revents);
	}
	EXPECT_GT(WAKE_MS, waited) TH_LOG("woken %llu ms after the frames",
					  (unsigned long long)waited);
	early_check_frames(_metadata, self, port, n);
}

TEST_F_TIMEOUT(early_poll, poll, 90)
{
	early_wake_test(_metadata, self, 47401, EARLY_POLL);
}

TEST_F_TIMEOUT(early_poll, epoll, 90)
{
	early_wake_test(_metadata, self, 47402, EARLY_EPOLL);
}

TEST_F_TIMEOUT(early_poll, epoll_late_wait, 90)
{
	early_wake_test(_metadata, self, 47403, EARLY_EPOLL_LATE);
}

/* ================================================================== */
/* rdonly: read-only files and mappings                               */

FIXTURE(rdonly) {
	int fd;
	int sink;
	struct pktring_info info;	/* of the ring of fd */
	void *map;
	size_t map_len;
	struct ring view;		/* of map, for the frame helpers */
};

FIXTURE_SETUP(rdonly)
{
	self->fd = -1;
	self->sink = -1;
	self->map = MAP_FAILED;
	ring_init(&self->view);
	REQUIRE_DEVICE();
}

FIXTURE_TEARDOWN(rdonly)
{
	if (self->map != MAP_FAILED)
		munmap(self->map, self->map_len);
	fd_close(&self->sink);
	fd_close(&self->fd);
}

/*
 * Opens the device with oflags as self->fd and sets req up (its geometry in
 * self->info), and a udp_sink() on port.
 */
static void rd_setup(struct __test_metadata *_metadata, FIXTURE_DATA(rdonly) *self, int oflags,
		     const struct pktring_req *req, uint16_t port)
{
	self->fd = open(PKTRING_DEV, oflags | O_CLOEXEC);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, set_ring(self->fd, req));
	ASSERT_EQ(0, ioctl(self->fd, PKTRING_IOC_GET_INFO, &self->info));
	self->sink = udp_sink(port);
	ASSERT_LE(0, self->sink);
}

/*
 * mmap() of the whole ring: 0 or -errno. The first mapping that works stays,
 * as self->map and self->view (which borrows fd and map: never
 * ring_destroy() it).
 */
static int rd_map(FIXTURE_DATA(rdonly) *self, int prot, int flags)
{
	size_t len = self->info.mmap_size;
	void *p = mmap(NULL, len, prot, flags, self->fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	if (self->map != MAP_FAILED) {
		munmap(p, len);
		return 0;
	}
	self->map = p;
	self->map_len = len;
	self->view.fd = self->fd;
	self->view.info = self->info;
	self->view.fpb = self->info.block_size / self->info.frame_size;
	self->view.map = p;
	self->view.map_len = len;
	return 0;
}

/*
 * O_RDONLY: set-up works, a shared read-only mapping shows the frames; a
 * private mapping is EINVAL, a writable one EACCES (and so is making the
 * mapping writable later). Frames cannot be handed back, so once the ring
 * is full every packet is a drop.
 */
TEST_F_TIMEOUT(rdonly, rdonly_file, 60)
{
	const uint16_t port = 47501;
	struct ring *r = &self->view;
	struct pktring_req req;
	struct pktring_stats st;
	struct pollfd pfd;
	struct lo_count c;
	unsigned int i;

	/* 8 frames. */
	req_init(&req, 4096, 4, 2048);
	req.hook = PKTRING_HOOK_PRE_ROUTING;
	req.ifindex = LO_IFINDEX;
	rd_setup(_metadata, self, O_RDONLY, &req, port);
	ASSERT_EQ(8u, self->info.frame_nr);

	EXPECT_EQ(-EACCES, rd_map(self, PROT_READ | PROT_WRITE, MAP_SHARED));
	EXPECT_EQ(-EINVAL, rd_map(self, PROT_READ, MAP_PRIVATE));
	ASSERT_EQ(0, rd_map(self, PROT_READ, MAP_SHARED));
	EXPECT_EQ(-1, mprotect(self->map, self->map_len, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);

	parent_send(_metadata, self->sink, port, 0, 5);
	for (i = 0; i < 5; i++) {
		uint32_t status = frame_status(ring_frame(r, i));

		EXPECT_TRUE(!!(status & TP_STATUS_USER))
			TH_LOG("frame %u: tp_status %#x", i, status);
	}
	count_lo(r, port, &c);
	EXPECT_EQ(5u, c.tag[TAG_PARENT]) TH_LOG(LO_COUNT_FMT, LO_COUNT_ARGS(c));
	EXPECT_EQ(5u, c.ready);
	EXPECT_EQ(0u, c.bad_seq);
	pfd = (struct pollfd){ .fd = self->fd, .events = POLLIN };
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(POLLIN, pfd.revents);

	/* 7 more: 3 fill the ring, 4 are dropped. */
	parent_send(_metadata, self->sink, port, 5, 7);
	count_lo(r, port, &c);
	EXPECT_EQ(8u, c.tag[TAG_PARENT]) TH_LOG(LO_COUNT_FMT, LO_COUNT_ARGS(c));
	EXPECT_EQ(0u, c.bad_seq);
	ASSERT_EQ(0, get_stats(r, &st));
	EXPECT_EQ(12u, st.packets);
	EXPECT_EQ(4u, st.drops);
}

/* O_RDWR: a read-only shared mapping works too; a private one does not. */
TEST_F_TIMEOUT(rdonly, rdwr_file_read_only_map, 60)
{
	const uint16_t port = 47502;
	struct pktring_req req;
	struct lo_count c;

	req_lo(&req, PKTRING_HOOK_PRE_ROUTING, PKTRING_FAMILY_IPV4, LO_IFINDEX);
	rd_setup(_metadata, self, O_RDWR, &req, port);
	EXPECT_EQ(-EINVAL, rd_map(self, PROT_READ, MAP_PRIVATE));
	EXPECT_EQ(-EINVAL, rd_map(self, PROT_READ | PROT_WRITE, MAP_PRIVATE));
	ASSERT_EQ(0, rd_map(self, PROT_READ, MAP_SHARED));

	parent_send(_metadata, self->sink, port, 0, 6);
	count_lo(&self->view, port, &c);
	EXPECT_EQ(6u, c.tag[TAG_PARENT]) TH_LOG(LO_COUNT_FMT, LO_COUNT_ARGS(c));
	EXPECT_EQ(6u, c.ready);
	EXPECT_EQ(0u, c.bad_seq);
}

int main(int argc, char **argv)
{
	return pktring_test_main(argc, argv);
}
