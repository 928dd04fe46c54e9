/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Maglev table (datapath/lb/maglev.c): MurmurHash3 against its published
 * vectors, seed parsing, fill, shares, weights, order independence and disruption. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "lb/maglev.h"

static struct maglev_seed default_seed(void)
{
	struct maglev_seed s;
	struct diag d = {0};

	assert_int_equal(maglev_seed_parse(MAGLEV_HASH_SEED_DEFAULT, &s, &d), 0);
	return s;
}

/* ---- MurmurHash3_x64_128 --------------------------------------------------------------- */

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* SMHasher's VerificationTest: key i is the bytes 0..i-1 hashed with seed 256-i; the 256
 * digests (h1 then h2, little-endian) are hashed with seed 0 and the first 4 bytes read as a
 * little-endian u32 must be 0x6384BA69 for MurmurHash3_x64_128. Covers every tail length. */
static void test_murmur3_smhasher_verification(void **state)
{
	uint8_t key[256], digests[256 * 16], final[16];
	uint64_t h[2];

	for (int i = 0; i < 256; i++) {
		key[i] = (uint8_t)i;
		maglev_murmur3_x64_128(key, (size_t)i, 256u - (uint32_t)i, h);
		put_le64(digests + i * 16, h[0]);
		put_le64(digests + i * 16 + 8, h[1]);
	}
	maglev_murmur3_x64_128(digests, sizeof(digests), 0, h);
	put_le64(final, h[0]);
	assert_int_equal((uint32_t) final[0] | (uint32_t) final[1] << 8 |
				 (uint32_t) final[2] << 16 | (uint32_t) final[3] << 24,
			 0x6384BA69u);
}

/* Published single vectors: empty input with seed 0 hashes to zero; with seed 0x9747b28c
 * (NHasher's test set, digests printed as bytes: h1 then h2, each little-endian) "" ->
 * B3BBAA1D8A202B39 7A9502E38F60B093 and "The quick brown fox jumps over the lazy dog" ->
 * 213163D23B7F8A73 E516C07E727345F9. */
static void test_murmur3_vectors(void **state)
{
	const char *fox = "The quick brown fox jumps over the lazy dog";
	uint64_t h[2];

	maglev_murmur3_x64_128("", 0, 0, h);
	assert_true(h[0] == 0 && h[1] == 0);
	maglev_murmur3_x64_128("", 0, 0x9747b28c, h);
	assert_true(h[0] == 0x392B208A1DAABBB3ULL && h[1] == 0x93B0608FE302957AULL);
	maglev_murmur3_x64_128(fox, strlen(fox), 0x9747b28c, h);
	assert_true(h[0] == 0x738A7F3BD2633121ULL && h[1] == 0xF94573727EC016E5ULL);
}

/* ---- seed ------------------------------------------------------------------------------ */

static void test_seed_default(void **state)
{
	struct maglev_seed s = default_seed();

	/* "JLfvgnHc2kaSUFaI" = 24 b7 ef 82 | 71 dc da 46 | 92 50 56 88 */
	assert_int_equal(s.murmur, 0x24b7ef82u);
	assert_int_equal(s.jhash0, 0x71dcda46u);
	assert_int_equal(s.jhash1, 0x92505688u);
}

static void expect_seed_error(const char *seed, const char *why)
{
	struct maglev_seed s = {0};
	struct diag d = {0};

	assert_int_equal(maglev_seed_parse(seed, &s, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "bpf-lb-maglev-hash-seed"));
	if (!strstr(d.msg, why))
		fail_msg("seed %s: message \"%s\" lacks \"%s\"", seed ? seed : "(null)", d.msg,
			 why);
}

static void test_seed_errors(void **state)
{
	expect_seed_error(NULL, "empty");
	expect_seed_error("", "empty");
	expect_seed_error("JLfvgnHc2kaSUFa", "not a multiple of 4");
	expect_seed_error("JLfvgnHc2ka!UFaI", "character '!' at position 11");
	expect_seed_error("JLfv=nHc2kaSUFaI", "character '=' at position 4");
	expect_seed_error("AAAA", "decodes to 3 bytes, want exactly 12");
	expect_seed_error("JLfvgnHc2kaSUFaIAAAAAA==", "decodes to 16 bytes");
	expect_seed_error("JLfvgnHc2kaSUA==", "decodes to 10 bytes");
}

/* ---- the table ------------------------------------------------------------------------- */

#define MAXB 1024

struct set {
	struct maglev_backend b[MAXB];
	char names[MAXB][MAGLEV_NAME_MAX];
	size_t n;
};

/* Backend i is 10.0.(i/256).(i%256):8080/TCP with id first_id + i. */
static void make_set(struct set *s, size_t n, uint32_t first_id)
{
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		uint8_t a[4] = {10, 0, (uint8_t)(i / 256), (uint8_t)(i % 256)};

		assert_true(maglev_backend_name(s->names[i], MAGLEV_NAME_MAX, AF_INET, a, 8080,
						"TCP") > 0);
		s->b[i] = (struct maglev_backend){
			.name = s->names[i], .id = first_id + (uint32_t)i, .weight = 1};
	}
}

static uint32_t *build(const struct maglev_backend *b, size_t n, uint32_t m)
{
	struct maglev_seed seed = default_seed();
	uint32_t *t = malloc(m * sizeof(*t));

	assert_non_null(t);
	for (uint32_t i = 0; i < m; i++)
		t[i] = UINT32_MAX;
	assert_int_equal(maglev_build(b, n, m, &seed, t), 0);
	return t;
}

/* Entries held by each id in [first_id, first_id + n); fails on an id outside. */
static void count_ids(const uint32_t *t, uint32_t m, uint32_t first_id, size_t n, size_t *cnt)
{
	memset(cnt, 0, n * sizeof(*cnt));
	for (uint32_t i = 0; i < m; i++) {
		if (t[i] < first_id || t[i] - first_id >= n)
			fail_msg("entry %u holds id %u, not a backend's", i, t[i]);
		cnt[t[i] - first_id]++;
	}
}

static void test_names(void **state)
{
	uint8_t v4[4] = {10, 244, 1, 7}, v6[16] = {0xfd, 0, [15] = 7};
	char buf[MAGLEV_NAME_MAX];

	assert_int_equal(maglev_backend_name(buf, sizeof(buf), AF_INET, v4, 8080, "TCP"), 19);
	assert_string_equal(buf, "10.244.1.7:8080/TCP");
	assert_true(maglev_backend_name(buf, sizeof(buf), AF_INET6, v6, 53, "UDP") > 0);
	assert_string_equal(buf, "[fd00::7]:53/UDP");
	assert_int_equal(maglev_backend_name(buf, 8, AF_INET, v4, 8080, "TCP"), -EINVAL);
	assert_int_equal(maglev_backend_name(buf, sizeof(buf), 99, v4, 8080, "TCP"), -EINVAL);
}

static void test_sizes(void **state)
{
	static const uint32_t ok[] = {251,  509,   1021,  2039,	 4093,
				      8191, 16381, 32749, 65521, 131071};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(maglev_table_size_valid(ok[i]));
	assert_false(maglev_table_size_valid(0));
	assert_false(maglev_table_size_valid(16383));
	assert_false(maglev_table_size_valid(65537)); /* prime, but not one of Cilium's */
	assert_int_equal(MAGLEV_TABLE_SIZE_DEFAULT, 16381);
}

static void test_build_errors(void **state)
{
	struct maglev_seed seed = default_seed();
	struct maglev_backend b[2] = {{.name = "10.0.0.1:80/TCP", .id = 1, .weight = 0},
				      {.name = "10.0.0.2:80/TCP", .id = 2, .weight = 0}};
	uint32_t t[251] = {0};

	assert_int_equal(maglev_build(b, 0, 251, &seed, t), -ENOENT);
	assert_int_equal(maglev_build(b, 2, 251, &seed, t), -ENOENT); /* all in maintenance */
	b[0].weight = 1;
	assert_int_equal(maglev_build(b, 2, 250, &seed, t), -EINVAL);
	assert_int_equal(maglev_build(b, 2, 16383, &seed, t), -EINVAL);
	b[1].name = b[0].name;
	assert_int_equal(maglev_build(b, 2, 251, &seed, t), -EINVAL); /* same name twice */
	b[1].name = NULL;
	assert_int_equal(maglev_build(b, 2, 251, &seed, t), -EINVAL);
	for (size_t i = 0; i < 251; i++)
		assert_int_equal(t[i], 0); /* untouched on error */
}

/* Equal weights: every entry is some backend's, each gets floor or ceil of M/N. */
static void test_equal_shares(void **state)
{
	static const size_t ns[] = {1, 2, 3, 7, 100, 1000};
	static const uint32_t ms[] = {251, 1021, 16381, 65521};
	static struct set s;
	size_t cnt[MAXB];

	for (size_t a = 0; a < sizeof(ns) / sizeof(ns[0]); a++) {
		for (size_t c = 0; c < sizeof(ms) / sizeof(ms[0]); c++) {
			size_t n = ns[a];
			uint32_t m = ms[c], *t;

			make_set(&s, n, 1);
			t = build(s.b, n, m);
			count_ids(t, m, 1, n, cnt);
			for (size_t i = 0; i < n; i++)
				if (cnt[i] != m / n && cnt[i] != m / n + 1)
					fail_msg("N=%zu M=%u: backend %zu has %zu entries", n, m, i,
						 cnt[i]);
			free(t);
		}
	}
}

/* Cilium's maglev_test.go weighted case: M=1021, names one/three/two/tzwe weighted
 * 2/13/111/10 give 16/98/832/75 entries. Counts depend only on the turns (names' order and
 * weights), not on the hash, so the published numbers must come out exactly. */
static void test_weighted_shares_match_cilium(void **state)
{
	struct maglev_backend b[4] = {{.name = "two", .id = 2, .weight = 111},
				      {.name = "one", .id = 0, .weight = 2},
				      {.name = "tzwe", .id = 3, .weight = 10},
				      {.name = "three", .id = 1, .weight = 13}};
	size_t cnt[4];
	uint32_t *t = build(b, 4, 1021);

	count_ids(t, 1021, 0, 4, cnt);
	assert_int_equal(cnt[0], 16);
	assert_int_equal(cnt[1], 98);
	assert_int_equal(cnt[2], 832);
	assert_int_equal(cnt[3], 75);
	free(t);
}

/* Shares proportional to weights within N entries (a light backend's first turn comes early,
 * which can cost the heavy one an entry per light one), including small weights (1 vs 2)
 * that Cilium's "average weight > 1" gate would ignore. */
static void test_weighted_shares_proportional(void **state)
{
	static const uint16_t w[][4] = {{1, 2, 0, 0}, {1, 2, 3, 4}, {5, 5, 10, 80}, {100, 1, 1, 1}};
	static const size_t nw[] = {2, 4, 4, 4};
	static struct set s;
	size_t cnt[4];

	for (size_t k = 0; k < sizeof(nw) / sizeof(nw[0]); k++) {
		uint32_t m = 16381, *t;
		double sum = 0;

		make_set(&s, nw[k], 1);
		for (size_t i = 0; i < nw[k]; i++) {
			s.b[i].weight = w[k][i];
			sum += w[k][i];
		}
		t = build(s.b, nw[k], m);
		count_ids(t, m, 1, nw[k], cnt);
		for (size_t i = 0; i < nw[k]; i++) {
			double want = m * w[k][i] / sum;

			if (cnt[i] < want - (double)nw[k] || cnt[i] > want + (double)nw[k])
				fail_msg("weights set %zu: backend %zu has %zu entries, want ~%.1f",
					 k, i, cnt[i], want);
		}
		free(t);
	}
}

static void test_weight_zero_never_chosen(void **state)
{
	static struct set s;
	size_t cnt[10];
	uint32_t *t;

	make_set(&s, 10, 1);
	s.b[3].weight = 0;
	s.b[7].weight = 0;
	t = build(s.b, 10, 1021);
	count_ids(t, 1021, 1, 10, cnt);
	assert_int_equal(cnt[3], 0);
	assert_int_equal(cnt[7], 0);
	for (size_t i = 0; i < 10; i++)
		if (i != 3 && i != 7)
			assert_true(cnt[i] == 1021 / 8 || cnt[i] == 1021 / 8 + 1);
	free(t);
	/* weights 0 change nothing for the others: same table as without them */
	{
		static struct set r;
		uint32_t *u;
		size_t k = 0;

		for (size_t i = 0; i < 10; i++)
			if (s.b[i].weight)
				r.b[k++] = s.b[i];
		t = build(s.b, 10, 1021);
		u = build(r.b, k, 1021);
		assert_memory_equal(t, u, 1021 * sizeof(*t));
		free(t);
		free(u);
	}
}

/* Another node: the same backends listed in another order with other ids. Mapped back to
 * names, the two tables are identical. */
static void test_order_and_ids_do_not_matter(void **state)
{
	static struct set a, b;
	const size_t n = 50;
	const uint32_t m = 4093;
	uint32_t *ta, *tb;

	make_set(&a, n, 1);
	make_set(&b, n, 0);
	for (size_t i = 0; i < n; i++) { /* b: reversed, ids 1000 + 7*i */
		b.b[i] = a.b[n - 1 - i];
		b.b[i].id = 1000 + 7 * (uint32_t)i;
	}
	ta = build(a.b, n, m);
	tb = build(b.b, n, m);
	for (uint32_t e = 0; e < m; e++) {
		size_t ia = ta[e] - 1, ib = (tb[e] - 1000) / 7;

		assert_string_equal(a.b[ia].name, b.b[ib].name);
	}
	free(ta);
	free(tb);
}

/* Removes backend `gone` of n and returns the survivors' entries that changed backend, with
 * the number of survivors' entries in *theirs; checks the removed one's entries all went to
 * survivors. */
static size_t disrupted_after_removal(size_t n, uint32_t m, size_t gone, size_t *theirs)
{
	static struct set s, r;
	uint32_t *before, *after;
	size_t moved = 0, k = 0;

	make_set(&s, n, 1);
	for (size_t i = 0; i < n; i++)
		if (i != gone)
			r.b[k++] = s.b[i];
	before = build(s.b, n, m);
	after = build(r.b, k, m);
	*theirs = 0;
	for (uint32_t e = 0; e < m; e++) {
		assert_int_not_equal(after[e], (uint32_t)gone + 1);
		if (before[e] == (uint32_t)gone + 1)
			continue;
		(*theirs)++;
		moved += before[e] != after[e];
	}
	free(before);
	free(after);
	return moved;
}

/* Worst share of the survivors' entries that moved, over removals of evenly spread backends
 * (every one for small N, about 10 otherwise), in percent. */
static double worst_disruption_pct(size_t n, uint32_t m)
{
	double worst = 0;

	for (size_t gone = 0; gone < n; gone += (n > 10 ? n / 10 : 1)) {
		size_t theirs, moved = disrupted_after_removal(n, m, gone, &theirs);
		double pct = 100.0 * (double)moved / (double)theirs;

		if (pct > worst)
			worst = pct;
	}
	return worst;
}

static void expect_disruption_below(size_t n, uint32_t m, double limit_pct)
{
	double worst = worst_disruption_pct(n, m);

	if (worst >= limit_pct)
		fail_msg("N=%zu M=%u: removing one backend moved %.2f%% of the survivors' entries "
			 "(limit %.1f%%)",
			 n, m, worst, limit_pct);
}

/* maglev_test.go's case: M=1021, 3 backends, under 1% (measured 0.59% at worst). */
static void test_disruption_cilium_case(void **state)
{
	expect_disruption_below(3, 1021, 1.0);
}

/*
 * M > 100 x N. The paper's reason for that rule is balance (shares within 1%), and Cilium's
 * docs read it as "at most 1% reassigned". Measured with this implementation (identical to
 * the paper's materialised-permutation algorithm), it holds at the large tables but not at
 * the small ones: N=10 M=1021 moves up to 4.5%, N=100 M=16381 up to 1.6% (docs/SERVICES.md).
 * So: under 1% where that is true, and a bound that catches a broken fill (a modulo-style
 * table would move most entries) where it is not.
 */
static void test_disruption_m_over_100n(void **state)
{
	expect_disruption_below(2, 251, 1.0);
	expect_disruption_below(10, 16381, 1.1); /* worst 1.02% */
	expect_disruption_below(10, 65521, 1.0);
	expect_disruption_below(100, 65521, 1.0);
	expect_disruption_below(300, 65521, 1.0);
	expect_disruption_below(10, 1021, 5.0);
	expect_disruption_below(100, 16381, 2.0);
	expect_disruption_below(160, 16381, 2.0);
}

/* The datapath's tuple hash (bpf/lib/maglev.h has the BPF twin; tests/bpf/test_lb checks
 * that both pick the same entries): a function of (saddr, sport, dport, proto, seed) that
 * spreads clients evenly over the table and depends on every input. */
static void test_tuple_hash(void **state)
{
	enum { M = 251, N = 251 * 200 };
	static unsigned int count[M];
	uint32_t seed = 0x71dcda46, base = maglev_index4(0x0a00f40a, 0x1234, 0x5000, 6, seed, M);
	unsigned int lo = N, hi = 0, i;

	(void)state;
	assert_int_equal(maglev_index4(0x0a00f40a, 0x1234, 0x5000, 6, seed, M), base);
	assert_int_equal(maglev_index4(0x0a00f40a, 0x1234, 0x5000, 6, seed, 0), 0);
	assert_true(maglev_jhash3(1, 2, 3, 0) != maglev_jhash3(1, 2, 3, 1));
	assert_true(maglev_jhash3(1, 2, 3, 0) != maglev_jhash3(2, 2, 3, 0));
	assert_true(maglev_jhash3(1, 2, 3, 0) != maglev_jhash3(1, 3, 3, 0));
	assert_true(maglev_jhash3(1, 2, 3, 0) != maglev_jhash3(1, 2, 4, 0));
	/* 200 clients per entry on average: ports of a few clients, as a node sees them */
	for (i = 0; i < N; i++)
		count[maglev_index4(0x0a00f40a + ((i % 50) << 24), (uint16_t)(32768 + i / 50), 0x5000,
				    6, seed, M)]++;
	for (i = 0; i < M; i++) {
		lo = count[i] < lo ? count[i] : lo;
		hi = count[i] > hi ? count[i] : hi;
	}
	/* a binomial(N, 1/M) stays within about +-4.5 sigma (sigma ~ 14) of 200 */
	assert_in_range(lo, 130, 200);
	assert_in_range(hi, 200, 270);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_murmur3_smhasher_verification),
		cmocka_unit_test(test_murmur3_vectors),
		cmocka_unit_test(test_seed_default),
		cmocka_unit_test(test_seed_errors),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_equal_shares),
		cmocka_unit_test(test_weighted_shares_match_cilium),
		cmocka_unit_test(test_weighted_shares_proportional),
		cmocka_unit_test(test_weight_zero_never_chosen),
		cmocka_unit_test(test_order_and_ids_do_not_matter),
		cmocka_unit_test(test_disruption_cilium_case),
		cmocka_unit_test(test_disruption_m_over_100n),
		cmocka_unit_test(test_tuple_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
