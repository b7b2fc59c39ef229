/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Self-describing test payloads, shared by the host traffic generator
 * (pktgen.c) and the guest-side verifiers. A captured frame can be checked
 * from its bytes alone: torn, mixed, truncated or foreign data is detected
 * without knowing what was sent.
 *
 * UDP datagram payload (len >= PKTGEN_HDR_LEN bytes):
 *
 *	off  0	u32 magic	PKTGEN_MAGIC
 *	off  4	u32 flow	flow number
 *	off  8	u64 seq		per-flow sequence number, from 0
 *	off 16	u32 len		payload length, this header included
 *	off 20	u32 csum	FNV-1a 32 of the whole payload, csum taken as 0
 *	off 24	filler		deterministic bytes derived from (flow, seq)
 *
 * TCP byte stream: back-to-back PKTGEN_REC_LEN-byte records, record i of a
 * stream at stream offset i * PKTGEN_REC_LEN:
 *
 *	off  0	u32 magic	PKTGEN_MAGIC
 *	off  4	u32 flow	stream (flow) number
 *	off  8	u64 rseq	record sequence number, from 0
 *	off 16	filler		44 bytes derived from (flow, rseq)
 *	off 60	u32 csum	FNV-1a 32 of the record, csum taken as 0
 *
 * All integers are big-endian (network order), so a hex dump shows "PKTR";
 * every access goes through memcpy-free byte helpers because frames in a
 * ring are not aligned.
 */
#ifndef PKTGEN_PAYLOAD_H
#define PKTGEN_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#define PKTGEN_MAGIC		0x504b5452u	/* "PKTR" */
#define PKTGEN_HDR_LEN		24
#define PKTGEN_MAX_LEN		65535
#define PKTGEN_REC_LEN		64
#define PKTGEN_REC_FILL_OFF	16
#define PKTGEN_REC_CSUM_OFF	60

/* Error codes; the check functions return them negated. */
enum {
	PKTGEN_OK = 0,
	PKTGEN_ETRUNC,		/* shorter than its header or its len field */
	PKTGEN_EMAGIC,		/* no magic where a header/record must start */
	PKTGEN_ELEN,		/* len field impossible or not the buffer's */
	PKTGEN_ECSUM,		/* checksum does not match the bytes */
	PKTGEN_EDATA,		/* filler is not what (flow, seq) gives */
	PKTGEN_EFLOW,		/* stream: flow changed inside one buffer */
	PKTGEN_ESEQ,		/* stream: record_seq did not increase by 1 */
	PKTGEN_EALIGN,		/* stream: no record boundary found */
	PKTGEN_NERR
};

static inline const char *pktgen_strerror(int err)
{
	static const char *const msg[PKTGEN_NERR] = {
		[PKTGEN_OK]	= "ok",
		[PKTGEN_ETRUNC]	= "truncated",
		[PKTGEN_EMAGIC]	= "bad magic",
		[PKTGEN_ELEN]	= "bad length",
		[PKTGEN_ECSUM]	= "bad checksum",
		[PKTGEN_EDATA]	= "bad filler data",
		[PKTGEN_EFLOW]	= "flow changed",
		[PKTGEN_ESEQ]	= "sequence gap",
		[PKTGEN_EALIGN]	= "no record boundary",
	};

	if (err < 0)
		err = -err;
	return err < PKTGEN_NERR ? msg[err] : "unknown error";
}

static inline void pktgen_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline uint32_t pktgen_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void pktgen_put64(uint8_t *p, uint64_t v)
{
	pktgen_put32(p, v >> 32);
	pktgen_put32(p + 4, (uint32_t)v);
}

static inline uint64_t pktgen_get64(const uint8_t *p)
{
	return (uint64_t)pktgen_get32(p) << 32 | pktgen_get32(p + 4);
}

#define PKTGEN_FNV_INIT		0x811c9dc5u

static inline uint32_t pktgen_fnv1a(uint32_t h, const uint8_t *p, size_t len)
{
	while (len--) {
		h ^= *p++;
		h *= 0x01000193u;
	}
	return h;
}

/* FNV-1a of buf[0, len) with the 4 bytes at csum_off read as zero. */
static inline uint32_t pktgen_csum(const uint8_t *buf, size_t len, size_t csum_off)
{
	static const uint8_t zero[4];
	uint32_t h = PKTGEN_FNV_INIT;

	h = pktgen_fnv1a(h, buf, csum_off);
	h = pktgen_fnv1a(h, zero, 4);
	return pktgen_fnv1a(h, buf + csum_off + 4, len - csum_off - 4);
}

/*
 * Filler: splitmix64 seeded from (domain, flow, seq). Datagrams and stream
 * records use different domains so one can never pass for the other.
 */
#define PKTGEN_DOMAIN_DGRAM	0x6467726d00000000ull	/* "dgrm" */
#define PKTGEN_DOMAIN_STREAM	0x7374726d00000000ull	/* "strm" */

static inline uint64_t pktgen_splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void pktgen_filler(uint8_t *p, size_t len, uint64_t domain,
				 uint32_t flow, uint64_t seq)
{
	uint64_t state = domain ^ ((uint64_t)flow << 40) ^ seq;
	uint64_t r = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (!(i & 7))
			r = pktgen_splitmix(&state);
		p[i] = (uint8_t)r;
		r >>= 8;
	}
}

/* Write a len-byte datagram payload for (flow, seq). */
static inline int pktgen_payload_fill(void *buf, size_t len, uint32_t flow, uint64_t seq)
{
	uint8_t *p = buf;

	if (len < PKTGEN_HDR_LEN || len > PKTGEN_MAX_LEN)
		return -PKTGEN_ELEN;
	pktgen_put32(p, PKTGEN_MAGIC);
	pktgen_put32(p + 4, flow);
	pktgen_put64(p + 8, seq);
	pktgen_put32(p + 16, (uint32_t)len);
	pktgen_filler(p + PKTGEN_HDR_LEN, len - PKTGEN_HDR_LEN, PKTGEN_DOMAIN_DGRAM, flow, seq);
	pktgen_put32(p + 20, pktgen_csum(p, len, 20));
	return 0;
}

/*
 * Check a datagram payload of exactly len bytes (the UDP payload, not a
 * padded frame). On success returns 0 and stores flow and seq (either
 * pointer may be NULL); otherwise returns -PKTGEN_E*.
 */
static inline int pktgen_payload_check(const void *buf, size_t len, uint32_t *flow, uint64_t *seq)
{
	const uint8_t *p = buf;
	uint8_t fill[256];
	uint32_t f, plen;
	uint64_t s;
	size_t off;

	if (len < PKTGEN_HDR_LEN)
		return -PKTGEN_ETRUNC;
	if (pktgen_get32(p) != PKTGEN_MAGIC)
		return -PKTGEN_EMAGIC;
	plen = pktgen_get32(p + 16);
	if (plen < PKTGEN_HDR_LEN || plen > PKTGEN_MAX_LEN)
		return -PKTGEN_ELEN;
	if (len < plen)
		return -PKTGEN_ETRUNC;
	if (len > plen)
		return -PKTGEN_ELEN;
	if (pktgen_csum(p, len, 20) != pktgen_get32(p + 20))
		return -PKTGEN_ECSUM;
	f = pktgen_get32(p + 4);
	s = pktgen_get64(p + 8);
	/* Regenerate the filler in chunks; the stream is one splitmix run. */
	{
		uint64_t state = PKTGEN_DOMAIN_DGRAM ^ ((uint64_t)f << 40) ^ s;
		uint64_t r = 0;
		size_t i, n;

		for (off = PKTGEN_HDR_LEN, i = 0; off < len; off += n) {
			n = len - off < sizeof(fill) ? len - off : sizeof(fill);
			for (size_t j = 0; j < n; j++, i++) {
				if (!(i & 7))
					r = pktgen_splitmix(&state);
				fill[j] = (uint8_t)r;
				r >>= 8;
			}
			for (size_t j = 0; j < n; j++)
				if (fill[j] != p[off + j])
					return -PKTGEN_EDATA;
		}
	}
	if (flow)
		*flow = f;
	if (seq)
		*seq = s;
	return 0;
}

/* Build stream record rseq of flow into rec[PKTGEN_REC_LEN]. */
static inline void pktgen_record_fill(uint8_t *rec, uint32_t flow, uint64_t rseq)
{
	pktgen_put32(rec, PKTGEN_MAGIC);
	pktgen_put32(rec + 4, flow);
	pktgen_put64(rec + 8, rseq);
	pktgen_filler(rec + PKTGEN_REC_FILL_OFF, PKTGEN_REC_CSUM_OFF - PKTGEN_REC_FILL_OFF,
		      PKTGEN_DOMAIN_STREAM, flow, rseq);
	pktgen_put32(rec + PKTGEN_REC_CSUM_OFF, pktgen_csum(rec, PKTGEN_REC_LEN, PKTGEN_REC_CSUM_OFF));
}

/*
 * Check one complete record on its own: magic, checksum and filler. Stores
 * its flow and rseq (pointers may be NULL). Returns 0 or -PKTGEN_E*.
 */
static inline int pktgen_record_check(const void *buf, uint32_t *flow, uint64_t *rseq)
{
	const uint8_t *p = buf;
	uint8_t want[PKTGEN_REC_LEN];
	uint32_t f;
	uint64_t s;

	if (pktgen_get32(p) != PKTGEN_MAGIC)
		return -PKTGEN_EMAGIC;
	if (pktgen_csum(p, PKTGEN_REC_LEN, PKTGEN_REC_CSUM_OFF) != pktgen_get32(p + PKTGEN_REC_CSUM_OFF))
		return -PKTGEN_ECSUM;
	f = pktgen_get32(p + 4);
	s = pktgen_get64(p + 8);
	pktgen_record_fill(want, f, s);
	for (size_t i = 0; i < PKTGEN_REC_LEN; i++)
		if (want[i] != p[i])
			return -PKTGEN_EDATA;
	if (flow)
		*flow = f;
	if (rseq)
		*rseq = s;
	return 0;
}

/* Fill buf with stream bytes [off, off + len) of flow. */
static inline void pktgen_stream_fill(void *buf, size_t len, uint32_t flow, uint64_t off)
{
	uint8_t *p = buf, rec[PKTGEN_REC_LEN];

	while (len) {
		uint64_t rseq = off / PKTGEN_REC_LEN;
		size_t in = off % PKTGEN_REC_LEN;
		size_t n = PKTGEN_REC_LEN - in;

		if (n > len)
			n = len;
		if (!in && n == PKTGEN_REC_LEN) {
			pktgen_record_fill(p, flow, rseq);
		} else {
			pktgen_record_fill(rec, flow, rseq);
			for (size_t i = 0; i < n; i++)
				p[i] = rec[in + i];
		}
		p += n;
		off += n;
		len -= n;
	}
}

/**
 * struct pktgen_stream_info - what pktgen_stream_check() found
 * @flow:	flow of the records
 * @first_seq:	rseq of the first complete record
 * @records:	complete records checked
 * @head:	bytes before the first complete record (the tail of record
 *		first_seq - 1, also checked)
 * @tail:	bytes after the last complete record (the head of the next
 *		record, also checked)
 * @stream_off:	stream offset of buf[0]
 */
struct pktgen_stream_info {
	uint32_t flow;
	uint64_t first_seq;
	size_t records;
	size_t head;
	size_t tail;
	uint64_t stream_off;
};

/*
 * Check a piece of a TCP stream (e.g. one segment's payload): find the first
 * record boundary, then check every complete record, that the flow stays the
 * same and that rseq increases by 1, and that the partial records at both
 * ends are the right bytes of their neighbours. Returns the number of
 * complete records (0 when the piece is too short to hold one at any
 * alignment) or -PKTGEN_E*. info may be NULL.
 */
static inline int pktgen_stream_check(const void *buf, size_t len, struct pktgen_stream_info *info)
{
	const uint8_t *p = buf;
	uint8_t want[PKTGEN_REC_LEN];
	int magic_seen = 0, err;
	uint32_t flow = 0, f;
	uint64_t first = 0, s;
	size_t o, n, i;

	for (o = 0; o < PKTGEN_REC_LEN && o + PKTGEN_REC_LEN <= len; o++) {
		if (pktgen_get32(p + o) != PKTGEN_MAGIC)
			continue;
		magic_seen = 1;
		if (!pktgen_record_check(p + o, &flow, &first))
			break;
	}
	if (o == PKTGEN_REC_LEN || o + PKTGEN_REC_LEN > len) {
		/* A piece of 2 * 64 - 1 bytes holds a whole record at any alignment. */
		if (len < 2 * PKTGEN_REC_LEN - 1 && !magic_seen)
			return 0;
		return magic_seen ? -PKTGEN_ECSUM : -PKTGEN_EALIGN;
	}
	if (o && !first)
		return -PKTGEN_EDATA;	/* nothing precedes record 0 */
	if (o) {
		pktgen_record_fill(want, flow, first - 1);
		for (i = 0; i < o; i++)
			if (p[i] != want[PKTGEN_REC_LEN - o + i])
				return -PKTGEN_EDATA;
	}
	n = (len - o) / PKTGEN_REC_LEN;
	for (i = 0; i < n; i++) {
		const uint8_t *r = p + o + i * PKTGEN_REC_LEN;

		err = pktgen_record_check(r, &f, &s);
		if (err)
			return err;
		if (f != flow)
			return -PKTGEN_EFLOW;
		if (s != first + i)
			return -PKTGEN_ESEQ;
	}
	{
		size_t t = len - o - n * PKTGEN_REC_LEN;

		if (t) {
			pktgen_record_fill(want, flow, first + n);
			for (i = 0; i < t; i++)
				if (p[o + n * PKTGEN_REC_LEN + i] != want[i])
					return -PKTGEN_EDATA;
		}
		if (info) {
			info->flow = flow;
			info->first_seq = first;
			info->records = n;
			info->head = o;
			info->tail = t;
			info->stream_off = first * PKTGEN_REC_LEN - o;
		}
	}
	return (int)n;
}

#endif /* PKTGEN_PAYLOAD_H */
