// SPDX-License-Identifier: GPL-2.0
/*
 * tcp_sink: guest-side receiver for `pktgen tcp`. Accepts connections on a
 * port (IPv4 and IPv6) and reads each until EOF, then closes it, which is
 * what tells pktgen the stream arrived. All connections are served at once
 * from one poll loop.
 *
 *   tcp_sink [--port 9100] [--conns N] [--timeout SEC] [--verify]
 *
 * --conns N	exit after N connections have closed (0: run until timeout)
 * --timeout	give up after SEC seconds (default 120); an error unless
 *		--conns is 0
 * --verify	check the byte stream against pktgen_payload.h records
 *
 * Exit status: 0 done, 1 error/timeout/verification failure, 2 bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../pktgen_payload.h"

#define MAX_CONNS	256

struct conn {
	int fd;
	char peer[64];
	uint64_t bytes;
	/* --verify: the record being assembled */
	uint8_t rec[PKTGEN_REC_LEN];
	size_t rec_len;
	uint32_t flow;
	uint64_t next_seq;
	int err;		/* first verification error, -PKTGEN_E* */
	uint64_t err_off;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn)) usage_err(const char *msg, const char *arg)
{
	fprintf(stderr, "tcp_sink: %s%s\nusage: tcp_sink [--port P] [--conns N] [--timeout SEC] [--verify]\n",
		msg, arg ? arg : "");
	exit(2);
}

static long parse_num(const char *opt, const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < 0 || v > max)
		usage_err(opt, s);
	return v;
}

static int listen_on(int port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				   .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, zero = 0;
	int fd;

	/* Dual-stack where IPv6 is there, plain IPv4 otherwise. */
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (!bind(fd, (struct sockaddr *)&a6, sizeof(a6)))
			goto bound;
		close(fd);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		perror("tcp_sink: socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4))) {
		fprintf(stderr, "tcp_sink: bind port %d: %s\n", port, strerror(errno));
		exit(1);
	}
bound:
	if (listen(fd, MAX_CONNS)) {
		perror("tcp_sink: listen");
		exit(1);
	}
	return fd;
}

static void peer_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (!getpeername(fd, (struct sockaddr *)&ss, &sl)) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			port = ntohs(s6->sin6_port);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			port = ntohs(s4->sin_port);
		}
	}
	snprintf(buf, len, "%s:%d", host, port);
}

/* Feed received bytes through the record checker; keep the first error. */
static void verify(struct conn *c, const uint8_t *p, size_t n)
{
	while (n && !c->err) {
		size_t take = PKTGEN_REC_LEN - c->rec_len;
		uint32_t flow;
		uint64_t seq;
		int err;

		if (take > n)
			take = n;
		memcpy(c->rec + c->rec_len, p, take);
		c->rec_len += take;
		p += take;
		n -= take;
		if (c->rec_len < PKTGEN_REC_LEN)
			break;
		c->rec_len = 0;
		err = pktgen_record_check(c->rec, &flow, &seq);
		if (!err && !c->next_seq)
			c->flow = flow;
		if (!err && flow != c->flow)
			err = -PKTGEN_EFLOW;
		if (!err && seq != c->next_seq)
			err = -PKTGEN_ESEQ;
		if (err) {
			c->err = err;
			c->err_off = c->next_seq * PKTGEN_REC_LEN;
		}
		c->next_seq++;
	}
}

/* At EOF a partial record must be the head of the next one. */
static void verify_end(struct conn *c)
{
	uint8_t want[PKTGEN_REC_LEN];

	if (c->err || !c->rec_len)
		return;
	pktgen_record_fill(want, c->flow, c->next_seq);
	if (memcmp(want, c->rec, c->rec_len)) {
		c->err = -PKTGEN_EDATA;
		c->err_off = c->next_seq * PKTGEN_REC_LEN;
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verify", no_argument, NULL, 'v' },
		{ }
	};
	static struct conn conns[MAX_CONNS];
	static uint8_t buf[256 * 1024];
	struct pollfd pfd[MAX_CONNS + 1];
	long port = 9100, want = 1, timeout = 120;
	long done = 0, failed = 0, open_conns = 0;
	uint64_t total = 0;
	bool check = false;
	double t0, t_first = 0;
	int lfd, c, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': port = parse_num("bad --port: ", optarg, 65535); break;
		case 'n': want = parse_num("bad --conns: ", optarg, 1000000); break;
		case 't': timeout = parse_num("bad --timeout: ", optarg, 86400); break;
		case 'v': check = true; break;
		default: usage_err("unknown or incomplete option ", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_err("unexpected argument ", argv[optind]);
	if (!port)
		usage_err("--port must not be 0", NULL);

	lfd = listen_on(port);
	for (i = 0; i < MAX_CONNS; i++)
		conns[i].fd = -1;
	printf("tcp_sink: listening on port %ld for %ld connections\n", port, want);
	t0 = now();

	while (!want || done < want) {
		double left = t0 + timeout - now();
		int n;

		if (left <= 0) {
			if (!want)
				break;
			fprintf(stderr, "tcp_sink: error: timeout after %ld s: %ld of %ld connections done, %ld open\n",
				timeout, done, want, open_conns);
			return 1;
		}
		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i < MAX_CONNS; i++)
			pfd[i + 1] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		n = poll(pfd, MAX_CONNS + 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("tcp_sink: poll");
			return 1;
		}
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

			if (fd >= 0) {
				for (i = 0; i < MAX_CONNS && conns[i].fd >= 0; i++)
					;
				if (i == MAX_CONNS) {
					fprintf(stderr, "tcp_sink: too many connections, closing one\n");
					close(fd);
				} else {
					conns[i] = (struct conn){ .fd = fd };
					peer_name(fd, conns[i].peer, sizeof(conns[i].peer));
					open_conns++;
					if (!t_first)
						t_first = now();
				}
			}
		}
		for (i = 0; i < MAX_CONNS; i++) {
			struct conn *k = &conns[i];
			ssize_t r;

			if (k->fd < 0 || !(pfd[i + 1].revents & (POLLIN | POLLERR | POLLHUP)))
				continue;
			/* Read until EAGAIN so one busy stream cannot starve the loop forever. */
			for (int rounds = 0; rounds < 16; rounds++) {
				r = recv(k->fd, buf, sizeof(buf), 0);
				if (r <= 0)
					break;
				k->bytes += r;
				total += r;
				if (check)
					verify(k, buf, r);
			}
			if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)))
				continue;
			if (r < 0)
				fprintf(stderr, "tcp_sink: %s: %s\n", k->peer, strerror(errno));
			if (check)
				verify_end(k);
			if (check && k->err) {
				printf("tcp_sink: %s: %llu bytes, VERIFY FAILED at stream offset %llu: %s\n",
				       k->peer, (unsigned long long)k->bytes,
				       (unsigned long long)k->err_off, pktgen_strerror(k->err));
				failed++;
			} else {
				printf("tcp_sink: %s: %llu bytes%s\n", k->peer, (unsigned long long)k->bytes,
				       check ? ", records ok" : "");
			}
			if (r < 0)
				failed++;
			close(k->fd);
			k->fd = -1;
			open_conns--;
			done++;
		}
	}
	{
		double t = t_first ? now() - t_first : 0;

		printf("tcp_sink: %ld connections, %llu bytes in %.3f s (%.1f Mbit/s)%s\n", done,
		       (unsigned long long)total, t, t > 0 ? total * 8 / t / 1e6 : 0.0,
		       failed ? ", FAILED" : "");
	}
	return failed ? 1 : 0;
}
