// SPDX-License-Identifier: GPL-2.0
/*
 * pcap_verify: check a pcap stream against what `pktgen udp` sent.
 *
 *	tcpdump -r capture.pcap -w - | pcap_verify --count N --flows F --size S
 *		[--flow-base B] [--dport P]
 *
 * pktgen sends packet k of a run as flow B + k % F, sequence k / F, each
 * with an S-byte self-describing payload (pktgen_payload.h). The stream must
 * hold exactly those N packets, each once, as Ethernet + IPv4/IPv6 + UDP to
 * port P with an intact payload, captured whole (caplen == len). Reading the
 * stream through tcpdump proves that tcpdump parses the file; this program
 * proves the bytes are the generator's.
 *
 * Prints one summary line; exits 0 if the stream matches, 1 if not, 2 on
 * bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pktgen_payload.h"

#define PCAP_MAGIC_US	0xa1b2c3d4u
#define PCAP_MAGIC_NS	0xa1b23c4du
#define LINKTYPE_ETHERNET 1
#define ETH_HLEN	14
#define MAX_ERRORS	10

struct options {
	unsigned long long count;
	unsigned int flows, size, flow_base, dport;
};

static unsigned int errors;

static void __attribute__((format(printf, 1, 2))) bad(const char *fmt, ...)
{
	va_list ap;

	if (errors++ >= MAX_ERRORS)
		return;
	fputs("pcap_verify: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static unsigned long long number(const char *opt, const char *s, unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > max) {
		fprintf(stderr, "pcap_verify: %s: bad number '%s' (0..%llu)\n", opt, s, max);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "flows", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "flow-base", required_argument, NULL, 'b' },
		{ "dport", required_argument, NULL, 'p' },
		{ 0 }
	};
	int c;

	*o = (struct options){ .flows = 1, .dport = 9000 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->count = number("--count", optarg, 1ull << 32); break;
		case 'f': o->flows = number("--flows", optarg, 1u << 20); break;
		case 's': o->size = number("--size", optarg, PKTGEN_MAX_LEN); break;
		case 'b': o->flow_base = number("--flow-base", optarg, UINT32_MAX); break;
		case 'p': o->dport = number("--dport", optarg, 65535); break;
		default: exit(2);
		}
	}
	if (optind != argc || !o->count || !o->flows || o->size < PKTGEN_HDR_LEN) {
		fprintf(stderr, "usage: tcpdump -r FILE -w - | pcap_verify --count N --flows F --size S"
				" [--flow-base B] [--dport P]   (S >= %d)\n", PKTGEN_HDR_LEN);
		exit(2);
	}
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

/* The UDP payload of an Ethernet frame, or NULL (with the reason reported). */
static const uint8_t *udp_payload(const uint8_t *pkt, uint32_t len, uint16_t dport,
				  uint32_t *plen, unsigned long long n)
{
	const uint8_t *l3 = pkt + ETH_HLEN, *udp;
	uint16_t ethertype;
	uint32_t l3len;

	if (len < ETH_HLEN + 8) {
		bad("packet %llu: %u bytes is too short", n, len);
		return NULL;
	}
	ethertype = get16(pkt + 12);
	l3len = len - ETH_HLEN;
	if (ethertype == 0x0800 && l3len >= 20 && (l3[0] >> 4) == 4 && l3[9] == 17 &&
	    (l3[0] & 15) * 4u + 8 <= l3len) {
		udp = l3 + (l3[0] & 15) * 4;
	} else if (ethertype == 0x86dd && l3len >= 48 && (l3[0] >> 4) == 6 && l3[6] == 17) {
		udp = l3 + 40;
	} else {
		bad("packet %llu: not UDP over IPv4/IPv6 (ethertype %#06x)", n, ethertype);
		return NULL;
	}
	if (get16(udp + 2) != dport) {
		bad("packet %llu: UDP port %u, expected %u", n, get16(udp + 2), dport);
		return NULL;
	}
	if (get16(udp + 4) < 8 || udp + get16(udp + 4) > pkt + len) {
		bad("packet %llu: UDP length %u does not fit the frame", n, get16(udp + 4));
		return NULL;
	}
	*plen = get16(udp + 4) - 8;
	return udp + 8;
}

int main(int argc, char **argv)
{
	struct options o;
	uint32_t hdr[6], rec[4];
	unsigned long long packets = 0, intact = 0, dups = 0, index;
	static uint8_t pkt[PKTGEN_MAX_LEN + 256];
	uint8_t *seen;
	bool swap;

	parse_args(argc, argv, &o);
	seen = calloc(o.count, 1);
	if (!seen) {
		perror("pcap_verify: calloc");
		return 1;
	}
	if (fread(hdr, sizeof(hdr), 1, stdin) != 1) {
		fprintf(stderr, "pcap_verify: no pcap file header on stdin\n");
		return 1;
	}
	swap = hdr[0] == __builtin_bswap32(PCAP_MAGIC_US) || hdr[0] == __builtin_bswap32(PCAP_MAGIC_NS);
	if (swap)
		for (int i = 1; i < 6; i++)
			hdr[i] = __builtin_bswap32(hdr[i]);
	if (!swap && hdr[0] != PCAP_MAGIC_US && hdr[0] != PCAP_MAGIC_NS) {
		fprintf(stderr, "pcap_verify: not a pcap stream (magic %#x)\n", hdr[0]);
		return 1;
	}
	if (hdr[5] != LINKTYPE_ETHERNET) {
		fprintf(stderr, "pcap_verify: link type %u, expected Ethernet (1)\n", hdr[5]);
		return 1;
	}

	while (fread(rec, sizeof(rec), 1, stdin) == 1) {
		uint32_t caplen = swap ? __builtin_bswap32(rec[2]) : rec[2];
		uint32_t len = swap ? __builtin_bswap32(rec[3]) : rec[3];
		const uint8_t *payload;
		uint32_t plen, flow;
		uint64_t seq;
		int err;

		packets++;
		if (caplen > sizeof(pkt) || fread(pkt, caplen, 1, stdin) != 1) {
			bad("packet %llu: record of %u bytes is cut short", packets, caplen);
			break;
		}
		if (caplen != len) {
			bad("packet %llu: %u of %u bytes captured", packets, caplen, len);
			continue;
		}
		payload = udp_payload(pkt, caplen, o.dport, &plen, packets);
		if (!payload)
			continue;
		err = pktgen_payload_check(payload, plen, &flow, &seq);
		if (err) {
			bad("packet %llu: payload: %s", packets, pktgen_strerror(err));
			continue;
		}
		if (plen != o.size || flow - o.flow_base >= o.flows) {
			bad("packet %llu: flow %u with %u bytes was not sent (flows %u..%u, %u bytes)",
			    packets, flow, plen, o.flow_base, o.flow_base + o.flows - 1, o.size);
			continue;
		}
		index = seq * o.flows + (flow - o.flow_base);
		if (index >= o.count) {
			bad("packet %llu: flow %u seq %llu is beyond the %llu sent", packets, flow,
			    (unsigned long long)seq, o.count);
			continue;
		}
		if (seen[index]++) {
			dups++;
			bad("packet %llu: flow %u seq %llu seen twice", packets, flow, (unsigned long long)seq);
			continue;
		}
		intact++;
	}
	if (ferror(stdin))
		bad("read error: %s", strerror(errno));

	printf("pcap_verify: %llu packets read, %llu intact and distinct of %llu sent, %llu duplicates, %u errors\n",
	       packets, intact, o.count, dups, errors);
	return !(packets == o.count && intact == o.count && !errors);
}
