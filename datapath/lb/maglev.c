/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Maglev lookup tables (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
 * Balancer", NSDI 2016) with Cilium's choices: backends sorted by name, MurmurHash3_x64_128
 * of the name for the permutation, weighted turns after Envoy PR #2982. docs/SERVICES.md.
 *
 * Memory is O(M + N): each backend's permutation is walked on the fly (slot += skip mod M)
 * instead of materialising the M x N permutation matrix.
 */
#include "lb/maglev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- table sizes ----------------------------------------------------------------------- */

static const uint32_t maglev_sizes[] = {251,  509,   1021,  2039,  4093,
					8191, 16381, 32749, 65521, 131071};

bool maglev_table_size_valid(uint32_t m)
{
	for (size_t i = 0; i < sizeof(maglev_sizes) / sizeof(maglev_sizes[0]); i++)
		if (maglev_sizes[i] == m)
			return true;
	return false;
}

/* ---- seed ------------------------------------------------------------------------------ */

#define SEED_BYTES 12

/* Value of a standard-alphabet base64 character, or -1. */
static int base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks s is padded standard base64 and returns how many bytes it decodes to, or -EINVAL
 * with the reason in d. */
static int base64_decoded_len(const char *s, size_t len, struct diag *d)
{
	size_t pad = 0;

	if (len % 4)
		return diag_fail(d,
				 MAGLEV_SEED_KEY
				 ": \"%.40s\" is not base64: length %zu is not a "
				 "multiple of 4 (want 16 characters: 12 bytes, e.g. head -c12 "
				 "/dev/urandom | base64 -w0)",
				 s, len);
	while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++)
		if (base64_value(s[i]) < 0)
			return diag_fail(d,
					 MAGLEV_SEED_KEY ": \"%.40s\" is not base64: character "
							 "'%c' at position %zu",
					 s, s[i], i);
	return (int)(len / 4 * 3 - pad);
}

int maglev_seed_parse(const char *base64, struct maglev_seed *out, struct diag *d)
{
	uint8_t b[SEED_BYTES];
	size_t len = base64 ? strlen(base64) : 0;
	int n;

	if (len == 0)
		return diag_fail(
			d, MAGLEV_SEED_KEY
			": empty (want base64 of 12 bytes, e.g. "
			"head -c12 /dev/urandom | base64 -w0; default \"" MAGLEV_HASH_SEED_DEFAULT
			"\")");
	n = base64_decoded_len(base64, len, d);
	if (n < 0)
		return n;
	if (n != SEED_BYTES)
		return diag_fail(d,
				 MAGLEV_SEED_KEY ": \"%.40s\" decodes to %d bytes, want exactly 12",
				 base64, n);
	/* 16 characters, no padding: 4 groups of 4 characters -> 3 bytes */
	for (int g = 0; g < 4; g++) {
		uint32_t v = 0;

		for (int k = 0; k < 4; k++)
			v = v << 6 | (uint32_t)base64_value(base64[g * 4 + k]);
		b[g * 3] = (uint8_t)(v >> 16);
		b[g * 3 + 1] = (uint8_t)(v >> 8);
		b[g * 3 + 2] = (uint8_t)v;
	}
	out->murmur = load_be32(b);
	out->jhash0 = load_be32(b + 4);
	out->jhash1 = load_be32(b + 8);
	return 0;
}

/* ---- MurmurHash3_x64_128 --------------------------------------------------------------- */

#define MURMUR_C1 0x87c37b91114253d5ULL
#define MURMUR_C2 0x4cf5ad432745937fULL

static uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

/* Little-endian whatever the host: the reference reads native words on x86. */
static uint64_t load_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static uint64_t murmur_mix_k1(uint64_t k1)
{
	return rotl64(k1 * MURMUR_C1, 31) * MURMUR_C2;
}

static uint64_t murmur_mix_k2(uint64_t k2)
{
	return rotl64(k2 * MURMUR_C2, 33) * MURMUR_C1;
}

void maglev_murmur3_x64_128(const void *data, size_t len, uint32_t seed, uint64_t out[2])
{
	const uint8_t *p = data;
	size_t nblocks = len / 16, tail = len % 16;
	uint64_t h1 = seed, h2 = seed;

	for (size_t i = 0; i < nblocks; i++, p += 16) {
		h1 ^= murmur_mix_k1(load_le(p, 8));
		h1 = rotl64(h1, 27) + h2;
		h1 = h1 * 5 + 0x52dce729;
		h2 ^= murmur_mix_k2(load_le(p + 8, 8));
		h2 = rotl64(h2, 31) + h1;
		h2 = h2 * 5 + 0x38495ab5;
	}
	/* the tail: bytes 0-7 into k1, 8-14 into k2 (mixing a zero word changes nothing) */
	h2 ^= murmur_mix_k2(tail > 8 ? load_le(p + 8, tail - 8) : 0);
	h1 ^= murmur_mix_k1(load_le(p, tail > 8 ? 8 : tail));

	h1 ^= (uint64_t)len;
	h2 ^= (uint64_t)len;
	h1 += h2;
	h2 += h1;
	h1 = fmix64(h1);
	h2 = fmix64(h2);
	h1 += h2;
	h2 += h1;
	out[0] = h1;
	out[1] = h2;
}

/* ---- backend names --------------------------------------------------------------------- */

int maglev_backend_name(char *buf, size_t len, int af, const void *addr, uint16_t port,
			const char *proto)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	if ((af != AF_INET && af != AF_INET6) || !proto || !*proto ||
	    !inet_ntop(af, addr, a, sizeof(a)))
		return -EINVAL;
	n = snprintf(buf, len, af == AF_INET6 ? "[%s]:%u/%s" : "%s:%u/%s", a, port, proto);
	return n < 0 || (size_t)n >= len ? -EINVAL : n;
}

/* ---- the table ------------------------------------------------------------------------- */

/* One selectable backend while the table fills. */
struct maglev_turn {
	const char *name;
	uint32_t id;
	uint32_t weight;
	uint32_t slot;	 /* its next candidate entry: offset + j*skip mod M */
	uint32_t skip;	 /* in [1, M-1]: with M prime the walk visits every entry once */
	uint64_t credit; /* Cilium's weightCntr: weight/N, then + the weight sum per turn taken */
};

static int turn_by_name(const void *a, const void *b)
{
	return strcmp(((const struct maglev_turn *)a)->name, ((const struct maglev_turn *)b)->name);
}

/* Copies the backends sorted by name (ids are node-local, names the same on every node), then
 * keeps those with a weight. Returns how many are selectable, or -EINVAL (NULL or repeated
 * name: a repeated name would make the order, hence the ids' placement, ambiguous). */
static int sorted_selectable(const struct maglev_backend *backends, size_t n, struct maglev_turn *t)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		if (!backends[i].name)
			return -EINVAL;
		t[i] = (struct maglev_turn){.name = backends[i].name,
					    .id = backends[i].id,
					    .weight = backends[i].weight};
	}
	qsort(t, n, sizeof(*t), turn_by_name);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(t[i - 1].name, t[i].name) == 0)
			return -EINVAL;
		if (t[i].weight > 0)
			t[kept++] = t[i];
	}
	return (int)kept;
}

/* offset = h1 % M, skip = h2 % (M-1) + 1 with (h1, h2) = MurmurHash3_x64_128(name, seed). */
static void start_permutation(struct maglev_turn *t, uint32_t m, uint32_t seed)
{
	uint64_t h[2];

	maglev_murmur3_x64_128(t->name, strlen(t->name), seed, h);
	t->slot = (uint32_t)(h[0] % m);
	t->skip = (uint32_t)(h[1] % (m - 1) + 1);
}

/*
 * Entry n goes to backend n mod N unless that backend is ahead of its weight: while
 * (n+1) * weight < credit the turn passes to the next backend. Whoever takes it adds the
 * weight sum to its credit. Equal weights never skip (plain round robin). A taker always
 * exists: after n turns the credits sum to at most (n+1) * weight_sum = sum of (n+1) * weight.
 */
static struct maglev_turn *whose_turn(struct maglev_turn *t, size_t count, uint64_t n,
				      uint64_t weight_sum)
{
	size_t i = n % count;

	while ((n + 1) * t[i].weight < t[i].credit)
		i = (i + 1) % count;
	t[i].credit += weight_sum;
	return &t[i];
}

static void advance(struct maglev_turn *t, uint32_t m)
{
	t->slot += t->skip;
	if (t->slot >= m)
		t->slot -= m;
}

/* The backend's first entry along its permutation that nobody claimed yet. */
static uint32_t claim_next_entry(struct maglev_turn *t, uint8_t *claimed, uint32_t m)
{
	uint32_t c;

	while (claimed[t->slot])
		advance(t, m);
	c = t->slot;
	claimed[c] = 1;
	advance(t, m);
	return c;
}

static void fill_table(struct maglev_turn *t, size_t count, uint32_t m, uint8_t *claimed,
		       uint32_t *table)
{
	uint64_t weight_sum = 0;

	for (size_t i = 0; i < count; i++) {
		weight_sum += t[i].weight;
		t[i].credit = t[i].weight / count;
	}
	for (uint64_t n = 0; n < m; n++) {
		struct maglev_turn *b = whose_turn(t, count, n, weight_sum);

		table[claim_next_entry(b, claimed, m)] = b->id;
	}
}

int maglev_build(const struct maglev_backend *backends, size_t n, uint32_t m,
		 const struct maglev_seed *seed, uint32_t *table_out)
{
	struct maglev_turn *turns;
	uint8_t *claimed;
	int count;

	if (!maglev_table_size_valid(m) || !seed || !table_out)
		return -EINVAL;
	if (n == 0)
		return -ENOENT;
	if (n > INT32_MAX)
		return -EINVAL;
	turns = calloc(n, sizeof(*turns));
	claimed = calloc(m, 1);
	if (!turns || !claimed) {
		free(turns);
		free(claimed);
		return -ENOMEM;
	}
	count = sorted_selectable(backends, n, turns);
	if (count > 0) {
		for (int i = 0; i < count; i++)
			start_permutation(&turns[i], m, seed->murmur);
		fill_table(turns, (size_t)count, m, claimed, table_out);
	}
	free(turns);
	free(claimed);
	return count > 0 ? 0 : count == 0 ? -ENOENT : count;
}

/* ---- the datapath's tuple hash ---------------------------------------------------------- */

static uint32_t rotl32(uint32_t x, unsigned int r)
{
	return (x << r) | (x >> (32 - r));
}

uint32_t maglev_jhash3(uint32_t a, uint32_t b, uint32_t c, uint32_t seed)
{
	uint32_t start = 0xdeadbeefu + 12u + seed;

	a += start;
	b += start;
	c += start;
	/* lookup3's final(a, b, c): seven rounds of xor, then subtract a rotation */
	static const struct {
		uint8_t which, rot;
	} rounds[7] = {{2, 14}, {0, 11}, {1, 25}, {2, 16}, {0, 4}, {1, 14}, {2, 24}};
	uint32_t v[3] = {a, b, c};

	for (int i = 0; i < 7; i++) {
		unsigned int x = rounds[i].which, prev = (x + 2) % 3; /* c<-b, a<-c, b<-a */

		v[x] ^= v[prev];
		v[x] -= rotl32(v[prev], rounds[i].rot);
	}
	return v[2];
}

uint32_t maglev_index4(uint32_t saddr_be, uint16_t sport_be, uint16_t dport_be, uint8_t proto,
		       uint32_t seed, uint32_t m)
{
	return m ? maglev_jhash3(saddr_be, ((uint32_t)dport_be << 16) | sport_be, proto, seed) % m
		 : 0;
}
