// SPDX-License-Identifier: GPL-2.0
/*
 * pktgen: host-side traffic generator for the rust_pktring guest tests.
 *
 * Runs inside the test network namespace that qemu/boot.sh creates, on a
 * guest test's request (qemu/guest/pktring-traffic). Every payload follows
 * pktgen_payload.h so the guest can verify frames on their own.
 *
 *   pktgen udp --dst ADDR [--dport 9000] [--flows N] [--count C] [--size S]
 *              [--rate PPS] [--duration SEC] [--sport BASE] [--flow-base F]
 *   pktgen tcp --dst ADDR [--dport 9100] [--streams N] [--bytes B]
 *              [--duration SEC] [--flow-base F]
 *
 * Destinations are restricted to the test networks 198.18.0.0/15 and
 * fd00:198:18::/48, which only exist inside the namespace: a fixed rule, not
 * the guest's addresses, which testnet.env gives (and keeps inside them).
 *
 * --rate is packets per second (0, the default: flat out; at most 1e8),
 * --duration seconds (at most a day).
 *
 * Without --duration a run is bounded by a safety limit (120 s): reaching it
 * is an error. With --duration, reaching it is a normal end.
 *
 * Exit status: 0 done, 1 run-time error, 2 bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pktgen_payload.h"

#define SAFETY_LIMIT_SEC	120.0
#define CONNECT_RETRY_SEC	15.0	/* the guest sink may still be starting */
#define MAX_FLOWS		4096
#define TCP_CHUNK		(256 * 1024)
#define MAX_DURATION_SEC	86400.0
#define MAX_RATE		100e6	/* packets per second; far above what one socket sends */

struct opts {
	const char *mode;
	const char *dst_str;
	struct sockaddr_storage dst;
	socklen_t dst_len;
	unsigned int dport;
	unsigned int flows;		/* udp --flows, tcp --streams */
	uint64_t count;			/* udp packets in total; 0: until duration */
	unsigned int size;
	double rate;			/* udp packets per second; 0: flat out */
	uint64_t bytes;			/* tcp bytes per stream; 0: until duration */
	double duration;		/* 0: not given */
	unsigned int sport;		/* udp source port base; 0: ephemeral */
	uint32_t flow_base;
};

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("pktgen: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static const char usage_text[] =
	"usage: pktgen udp --dst ADDR [--dport P] [--flows N] [--count C] [--size S]\n"
	"                  [--rate PPS] [--duration SEC] [--sport BASE] [--flow-base F]\n"
	"       pktgen tcp --dst ADDR [--dport P] [--streams N] [--bytes B[K|M|G]]\n"
	"                  [--duration SEC] [--flow-base F]\n";

static void __attribute__((noreturn, format(printf, 1, 2))) usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("pktgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts = { .tv_sec = (time_t)t, .tv_nsec = (long)((t - (time_t)t) * 1e9) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t max, bool suffix)
{
	unsigned long long v;
	uint64_t mul = 1;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (suffix && *end) {
		switch (*end) {
		case 'k': case 'K': mul = 1ull << 10; break;
		case 'm': case 'M': mul = 1ull << 20; break;
		case 'g': case 'G': mul = 1ull << 30; break;
		default: usage_err("%s: bad number '%s'", opt, s);
		}
		end++;
	}
	if (errno || end == s || *end || *s == '-' || v > max / mul)
		usage_err("%s: bad number '%s' (0..%llu)", opt, s, (unsigned long long)max);
	return v * mul;
}

/*
 * A non-negative decimal number up to max: --duration in seconds (up to a
 * day), --rate in packets per second (up to MAX_RATE). Not "inf", "nan" or
 * hexadecimal, which strtod() would take.
 */
static double parse_double(const char *opt, const char *s, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || strpbrk(s, "xXnNiI") || !(v >= 0) || v > max)
		usage_err("%s: bad number '%s' (0..%.0f)", opt, s, max);
	return v;
}

/* Only the namespace's test networks: 198.18.0.0/15 and fd00:198:18::/48. */
static void parse_dst(struct opts *o)
{
	static const uint8_t v6net[6] = { 0xfd, 0x00, 0x01, 0x98, 0x00, 0x18 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&o->dst;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&o->dst;

	if (!o->dst_str)
		usage_err("--dst is required");
	memset(&o->dst, 0, sizeof(o->dst));
	if (inet_pton(AF_INET, o->dst_str, &sin->sin_addr) == 1) {
		if ((ntohl(sin->sin_addr.s_addr) & 0xfffe0000u) != 0xc6120000u)
			usage_err("refusing --dst %s: only 198.18.0.0/15 (the test namespace) is allowed",
				  o->dst_str);
		sin->sin_family = AF_INET;
		sin->sin_port = htons(o->dport);
		o->dst_len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, o->dst_str, &sin6->sin6_addr) == 1) {
		if (memcmp(sin6->sin6_addr.s6_addr, v6net, sizeof(v6net)))
			usage_err("refusing --dst %s: only fd00:198:18::/48 (the test namespace) is allowed",
				  o->dst_str);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(o->dport);
		o->dst_len = sizeof(*sin6);
	} else {
		usage_err("--dst %s: not an IPv4 or IPv6 address", o->dst_str);
	}
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	enum { O_DST = 256, O_DPORT, O_FLOWS, O_COUNT, O_SIZE, O_RATE, O_DURATION,
	       O_BYTES, O_SPORT, O_FLOW_BASE };
	static const struct option longopts[] = {
		{ "dst", required_argument, NULL, O_DST },
		{ "dport", required_argument, NULL, O_DPORT },
		{ "flows", required_argument, NULL, O_FLOWS },
		{ "streams", required_argument, NULL, O_FLOWS },
		{ "count", required_argument, NULL, O_COUNT },
		{ "size", required_argument, NULL, O_SIZE },
		{ "rate", required_argument, NULL, O_RATE },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "bytes", required_argument, NULL, O_BYTES },
		{ "sport", required_argument, NULL, O_SPORT },
		{ "flow-base", required_argument, NULL, O_FLOW_BASE },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	bool udp, count_set = false, bytes_set = false;
	int c;

	if (argc < 2)
		usage_err("missing mode");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_text, stdout);
		exit(0);
	}
	o->mode = argv[1];
	udp = !strcmp(o->mode, "udp");
	if (!udp && strcmp(o->mode, "tcp"))
		usage_err("unknown mode '%s' (udp or tcp)", o->mode);
	*o = (struct opts){ .mode = o->mode, .dport = udp ? 9000 : 9100, .flows = 1,
			    .count = 1000, .size = 64, .bytes = 1 << 20 };

	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_DST: o->dst_str = optarg; break;
		case O_DPORT: o->dport = parse_u64("--dport", optarg, 65535, false); break;
		case O_FLOWS: o->flows = parse_u64("--flows", optarg, MAX_FLOWS, false); break;
		case O_COUNT: o->count = parse_u64("--count", optarg, UINT64_MAX, true); count_set = true; break;
		case O_SIZE: o->size = parse_u64("--size", optarg, 65507, false); break;
		case O_RATE: o->rate = parse_double("--rate", optarg, MAX_RATE); break;
		case O_DURATION: o->duration = parse_double("--duration", optarg, MAX_DURATION_SEC); break;
		case O_BYTES: o->bytes = parse_u64("--bytes", optarg, UINT64_MAX, true); bytes_set = true; break;
		case O_SPORT: o->sport = parse_u64("--sport", optarg, 65535, false); break;
		case O_FLOW_BASE: o->flow_base = parse_u64("--flow-base", optarg, UINT32_MAX, false); break;
		case 'h': fputs(usage_text, stdout); exit(0);
		default: usage_err("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_err("unexpected argument '%s'", argv[optind]);
	if (!o->dport)
		usage_err("--dport must not be 0");
	if (!o->flows)
		usage_err("--%s must be at least 1", udp ? "flows" : "streams");
	if (udp) {
		if (bytes_set)
			usage_err("--bytes is for tcp; udp takes --count and --size");
		if (o->size < PKTGEN_HDR_LEN)
			usage_err("--size %u: at least %d bytes (the payload header)", o->size, PKTGEN_HDR_LEN);
		if (!o->count && !o->duration)
			usage_err("--count 0 needs --duration");
		if (o->sport && o->sport + o->flows - 1 > 65535)
			usage_err("--sport %u + %u flows passes port 65535", o->sport, o->flows);
	} else {
		if (count_set || o->rate || o->sport)
			usage_err("--count, --rate and --sport are for udp");
		if (!o->bytes && !o->duration)
			usage_err("--bytes 0 needs --duration");
	}
	parse_dst(o);
	if (o->dst.ss_family == AF_INET6 && o->size > 65527 - 20)
		usage_err("--size %u too large", o->size);
}

/*
 * Sum of tx_dropped over the namespace's devices: a tap drops what the guest
 * does not take in time, and a test that misses packets wants to know.
 */
static uint64_t tx_dropped(void)
{
	DIR *d = opendir("/sys/class/net");
	struct dirent *de;
	uint64_t sum = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[512];
		unsigned long long v;
		FILE *f;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "lo"))
			continue;
		snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/tx_dropped", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &v) == 1)
			sum += v;
		fclose(f);
	}
	closedir(d);
	return sum;
}

static double limit_of(const struct opts *o)
{
	return o->duration ? o->duration : SAFETY_LIMIT_SEC;
}

static int run_udp(const struct opts *o)
{
	static uint8_t buf[65536];
	int *fds = calloc(o->flows, sizeof(*fds));
	uint64_t *seq = calloc(o->flows, sizeof(*seq));
	uint64_t sent = 0, retries = 0, drop0 = tx_dropped(), drops;
	double t0, t, limit = limit_of(o);
	bool timed_out = false;
	unsigned int f;

	if (!fds || !seq)
		die("out of memory");
	for (f = 0; f < o->flows; f++) {
		int one = 1;

		fds[f] = socket(o->dst.ss_family, SOCK_DGRAM, 0);
		if (fds[f] < 0)
			die("socket: %s", strerror(errno));
		setsockopt(fds[f], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* A distinct source port per flow: the tap hashes flows to queues. */
		if (o->sport) {
			struct sockaddr_storage src = { .ss_family = o->dst.ss_family };

			if (src.ss_family == AF_INET)
				((struct sockaddr_in *)&src)->sin_port = htons(o->sport + f);
			else
				((struct sockaddr_in6 *)&src)->sin6_port = htons(o->sport + f);
			if (bind(fds[f], (struct sockaddr *)&src, o->dst_len))
				die("bind to source port %u: %s", o->sport + f, strerror(errno));
		}
		/*
		 * Not connect(): a connected socket reports the guest's ICMP
		 * port unreachable as ECONNREFUSED on a later send, which then
		 * does not go out.
		 */
	}

	t0 = now();
	while (!o->count || sent < o->count) {
		t = now();
		if (t - t0 >= limit) {
			timed_out = true;
			break;
		}
		if (o->rate) {
			double due = t0 + sent / o->rate;

			if (due > t + 20e-6)
				sleep_until(due);
		}
		f = sent % o->flows;
		pktgen_payload_fill(buf, o->size, o->flow_base + f, seq[f]);
		if (sendto(fds[f], buf, o->size, 0, (struct sockaddr *)&o->dst, o->dst_len) < 0) {
			/* Local queue full: back off briefly and send it again. */
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
				retries++;
				usleep(100);
				continue;
			}
			die("sendto %s:%u: %s", o->dst_str, o->dport, strerror(errno));
		}
		seq[f]++;
		sent++;
	}
	t = now() - t0;
	drops = tx_dropped() - drop0;

	printf("pktgen udp: sent %llu packets, %llu payload bytes to %s:%u over %u flows in %.3f s "
	       "(%.0f pps), %llu send retries, host tx_dropped +%llu%s\n",
	       (unsigned long long)sent, (unsigned long long)sent * o->size, o->dst_str, o->dport,
	       o->flows, t, t > 0 ? sent / t : 0.0, (unsigned long long)retries,
	       (unsigned long long)drops, timed_out && o->duration ? " (duration reached)" : "");
	if (drops)
		fprintf(stderr, "pktgen: warning: the host dropped %llu packets on the way to the guest\n",
			(unsigned long long)drops);
	if (timed_out && !o->duration) {
		fprintf(stderr, "pktgen: error: only %llu of %llu packets sent within the %.0f s safety limit\n",
			(unsigned long long)sent, (unsigned long long)o->count, SAFETY_LIMIT_SEC);
		return 1;
	}
	return 0;
}

struct stream {
	int fd;
	uint32_t flow;
	uint64_t off;		/* stream bytes sent */
	uint8_t *buf;		/* staged stream bytes [buf_off, buf_off + buf_len) */
	uint64_t buf_off;
	size_t buf_len;
	bool wr_done;		/* shut down for writing */
	bool eof;		/* the sink closed: everything arrived */
};

/* Connect with retries: the guest's sink may not be listening yet. */
static int tcp_connect(const struct opts *o, double deadline)
{
	for (;;) {
		int fd = socket(o->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int err = 0;
		socklen_t len = sizeof(err);
		double left = deadline - now();

		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (left <= 0)
			die("connect %s:%u: timed out", o->dst_str, o->dport);
		if (connect(fd, (struct sockaddr *)&o->dst, o->dst_len) && errno != EINPROGRESS)
			err = errno;
		if (!err) {
			int n = poll(&pfd, 1, (int)(left * 1000) + 1);

			if (n == 0)
				die("connect %s:%u: timed out", o->dst_str, o->dport);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		}
		if (!err)
			return fd;
		close(fd);
		if (err != ECONNREFUSED)
			die("connect %s:%u: %s", o->dst_str, o->dport, strerror(err));
		usleep(100 * 1000);
	}
}

/* Send what is staged; stage the next chunk of records when it is used up. */
static void stream_send(const struct opts *o, struct stream *s, double t0, double limit)
{
	uint64_t end = o->bytes ? o->bytes : UINT64_MAX;

	while (s->off < end && now() - t0 < limit) {
		size_t n;
		ssize_t r;

		if (s->off >= s->buf_off + s->buf_len) {
			s->buf_off = s->off;
			s->buf_len = end - s->off < TCP_CHUNK ? end - s->off : TCP_CHUNK;
			pktgen_stream_fill(s->buf, s->buf_len, s->flow, s->buf_off);
		}
		n = s->buf_off + s->buf_len - s->off;
		r = send(s->fd, s->buf + (s->off - s->buf_off), n, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			die("send on stream %u: %s", s->flow, strerror(errno));
		}
		s->off += r;
	}
	shutdown(s->fd, SHUT_WR);
	s->wr_done = true;
}

static int run_tcp(const struct opts *o)
{
	struct stream *st = calloc(o->flows, sizeof(*st));
	struct pollfd *pfd = calloc(o->flows, sizeof(*pfd));
	double t0, t, limit = limit_of(o), deadline;
	uint64_t total = 0;
	unsigned int i, left;
	bool cut = false;

	if (!st || !pfd)
		die("out of memory");
	t0 = now();
	for (i = 0; i < o->flows; i++) {
		st[i].fd = tcp_connect(o, t0 + CONNECT_RETRY_SEC);
		st[i].flow = o->flow_base + i;
		st[i].buf = malloc(TCP_CHUNK);
		if (!st[i].buf)
			die("out of memory");
	}
	t0 = now();
	/* After the limit, give the sinks some time to read what is queued. */
	deadline = t0 + limit + 10;
	for (left = o->flows; left; ) {
		int n;

		for (i = 0; i < o->flows; i++) {
			pfd[i].fd = st[i].eof ? -1 : st[i].fd;
			pfd[i].events = st[i].wr_done ? POLLIN : POLLIN | POLLOUT;
		}
		t = now();
		if (t >= deadline)
			die("tcp: the guest did not finish reading within %.0f s", deadline - t0);
		n = poll(pfd, o->flows, 200);
		if (n < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (i = 0; i < o->flows; i++) {
			struct stream *s = &st[i];

			if (s->eof || n <= 0)
				continue;
			if (!s->wr_done && (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP)))
				stream_send(o, s, t0, limit);
			if (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) {
				char drain[4096];
				ssize_t r = recv(s->fd, drain, sizeof(drain), MSG_DONTWAIT);

				if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
					if (r < 0)
						die("stream %u: %s", s->flow, strerror(errno));
					if (!s->wr_done)
						die("stream %u: the guest closed the connection after %llu bytes",
						    s->flow, (unsigned long long)s->off);
					s->eof = true;
					close(s->fd);
					left--;
				}
			}
		}
		/* Streams stopped by the limit still need their FIN sent. */
		if (now() - t0 >= limit)
			for (i = 0; i < o->flows; i++)
				if (!st[i].wr_done) {
					shutdown(st[i].fd, SHUT_WR);
					st[i].wr_done = true;
					cut = true;
				}
	}
	t = now() - t0;
	for (i = 0; i < o->flows; i++) {
		total += st[i].off;
		/* --bytes 0 streams always end by the limit. */
		if (!o->bytes || st[i].off < o->bytes)
			cut = true;
	}
	printf("pktgen tcp: sent %llu bytes to %s:%u over %u streams in %.3f s (%.1f Mbit/s)%s\n",
	       (unsigned long long)total, o->dst_str, o->dport, o->flows, t,
	       t > 0 ? total * 8 / t / 1e6 : 0.0, cut && o->duration ? " (duration reached)" : "");
	if (cut && !o->duration) {
		fprintf(stderr, "pktgen: error: streams not finished within the %.0f s safety limit\n",
			SAFETY_LIMIT_SEC);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	parse_opts(&o, argc, argv);
	return !strcmp(o.mode, "udp") ? run_udp(&o) : run_tcp(&o);
}
