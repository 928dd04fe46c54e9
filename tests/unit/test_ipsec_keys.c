/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The IPsec key file (datapath/encrypt/ipsec_keys.c, docs/IPSEC.md): both line forms, hex
 * with and without 0x, key ids 1..15, '+' and the deprecation warning, the current key (the
 * last line, also across the 15 -> 1 rollover), and errors naming file:line and the reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encrypt/ipsec_keys.h"

#define K40 "0123456789abcdef0123456789abcdef01234567"

static int parse(const char *text, struct ipsec_keyset *ks, struct diag *d)
{
	memset(d, 0, sizeof(*d));
	return ipsec_keys_parse(text, strlen(text), "keys", ks, d);
}

static void expect_error(const char *text, const char *want)
{
	struct ipsec_keyset ks;
	struct diag d;

	assert_int_not_equal(parse(text, &ks, &d), 0);
	if (!strstr(d.msg, want)) {
		print_error("input %s\nmessage '%s' lacks '%s'\n", text, d.msg, want);
		fail();
	}
}

static void test_aead_line(void **state)
{
	struct ipsec_keyset ks;
	struct diag d;
	const struct ipsec_key *k;

	assert_int_equal(parse("3+ rfc4106(gcm(aes)) " K40 " 128\n", &ks, &d), 0);
	assert_int_equal(ks.n, 1);
	k = ipsec_keys_current(&ks);
	assert_non_null(k);
	assert_int_equal(k->id, 3);
	assert_true(k->per_tunnel);
	assert_int_equal(k->kind, IPSEC_KEY_AEAD);
	assert_string_equal(k->alg, "rfc4106(gcm(aes))");
	assert_int_equal(k->key_len, 20);
	assert_int_equal(k->key[0], 0x01);
	assert_int_equal(k->key[19], 0x67);
	assert_int_equal(k->icv_bits, 128);
	assert_int_equal(k->line, 1);
	assert_string_equal(ks.warning, "");
}

static void test_hex_prefix_and_case(void **state)
{
	struct ipsec_keyset ks;
	struct diag d;

	assert_int_equal(parse("7+ rfc4106(gcm(aes)) 0xABCDEF0123456789ABCDEF0123456789ABCDEF01 96",
			       &ks, &d), 0);
	assert_int_equal(ks.keys[0].key[0], 0xab);
	assert_int_equal(ks.keys[0].key_len, 20);
	assert_int_equal(ks.keys[0].icv_bits, 96);
	/* AES-256 + salt */
	assert_int_equal(parse("1+ rfc4106(gcm(aes)) " K40 "0123456789abcdef0123456789abcdef 256", &ks,
			       &d), 0);
	assert_int_equal(ks.keys[0].key_len, 36);
}

static void test_auth_enc_line(void **state)
{
	struct ipsec_keyset ks;
	struct diag d;
	const struct ipsec_key *k;

	assert_int_equal(parse("# comment\n\n  5+ hmac(sha256) 0x000102030405060708090a0b0c0d0e0f "
			       "cbc(aes) 0xffeeddccbbaa99887766554433221100   # trailing\n",
			       &ks, &d), 0);
	k = &ks.keys[0];
	assert_int_equal(k->line, 3);
	assert_int_equal(k->kind, IPSEC_KEY_AUTH_ENC);
	assert_string_equal(k->auth_alg, "hmac(sha256)");
	assert_int_equal(k->auth_key_len, 16);
	assert_string_equal(k->alg, "cbc(aes)");
	assert_int_equal(k->key_len, 16);
	assert_int_equal(k->key[0], 0xff);
	/* optional trailing IP */
	assert_int_equal(parse("5+ hmac(sha256) 00112233 cbc(aes) 000102030405060708090a0b0c0d0e0f "
			       "10.0.0.0/8", &ks, &d), 0);
	assert_string_equal(ks.keys[0].ip, "10.0.0.0/8");
}

static void test_no_plus_warns(void **state)
{
	struct ipsec_keyset ks;
	struct diag d;

	assert_int_equal(parse("3 rfc4106(gcm(aes)) " K40 " 128\n4 rfc4106(gcm(aes)) " K40 " 128\n",
			       &ks, &d), 0);
	assert_false(ks.keys[0].per_tunnel);
	assert_non_null(strstr(ks.warning, "deprecated"));
	assert_non_null(strstr(ks.warning, "keys: key without '+'"));
	assert_non_null(strstr(ks.warning, "line 1, 2"));
}

static void test_current_is_last_line(void **state)
{
	struct ipsec_keyset ks;
	struct diag d;

	/* rollover: 15 then 1; the newest is 1 (the last line), not the highest id */
	assert_int_equal(parse("15+ rfc4106(gcm(aes)) " K40 " 128\n1+ rfc4106(gcm(aes)) " K40 " 128\n",
			       &ks, &d), 0);
	assert_int_equal(ks.n, 2);
	assert_int_equal(ipsec_keys_current(&ks)->id, 1);
	assert_non_null(ipsec_keys_find(&ks, 15));
	assert_null(ipsec_keys_find(&ks, 2));
	assert_int_equal(ipsec_key_id_next(15), 1);
	assert_int_equal(ipsec_key_id_next(3), 4);
}

static void test_mark(void **state)
{
	assert_int_equal(ipsec_encrypt_mark(3), 0x3E00);
	assert_int_equal(ipsec_encrypt_mark(15), 0xFE00);
	assert_int_equal(ipsec_encrypt_mark(1), 0x1E00);
}

static void test_errors(void **state)
{
	expect_error("0+ rfc4106(gcm(aes)) " K40 " 128", "keys:1: key id 0 out of range");
	expect_error("16+ rfc4106(gcm(aes)) " K40 " 128", "keys:1: key id 16 out of range");
	expect_error("\nx+ rfc4106(gcm(aes)) " K40 " 128", "keys:2: key id 'x' is not a number");
	expect_error("-1 rfc4106(gcm(aes)) " K40 " 128", "is not a number");
	expect_error("3+ gcm(aes) " K40 " 128", "keys:1: AEAD algorithm 'gcm(aes)' must start with 'rfc'");
	expect_error("3+ rfc4106(gcm(aes)) " K40 " 64", "ICV length '64' must be 96, 128 or 256");
	expect_error("3+ rfc4106(gcm(aes)) " K40 " 12x", "ICV length");
	expect_error("3+ rfc4106(gcm(aes)) 0123 128", "key is 2 bytes; it must be 20, 28 or 36");
	expect_error("3+ rfc4106(gcm(aes)) 012 128", "AEAD key has an odd number of hex digits");
	expect_error("3+ rfc4106(gcm(aes)) zz23456789abcdef0123456789abcdef01234567 128",
		     "AEAD key is not hex");
	expect_error("3+ rfc4106(gcm(aes)) 0x 128", "AEAD key is empty");
	expect_error("3+ rfc4106(gcm(aes)) " K40, "3 fields");
	expect_error("3+ hmac(sha256) 0011 cbc(aes) 0011", "cbc(aes) key is 2 bytes");
	expect_error("3+ hmac(sha256) 0011 cbc(aes) 000102030405060708090a0b0c0d0e0f nope",
		     "trailing field 'nope' is not an IP");
	expect_error("3+ hmac(sha256) 0g11 cbc(aes) 000102030405060708090a0b0c0d0e0f",
		     "authentication key is not hex");
	expect_error("3+ rfc4106(gcm(aes)) " K40 " 128\n3+ rfc4106(gcm(aes)) " K40 " 128",
		     "keys:2: key id 3 repeated (first on line 1)");
	expect_error("# only a comment\n\n", "keys: no key");
	expect_error("", "keys: no key");
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/ciliate-ipsec-keys-XXXXXX";
	struct ipsec_keyset ks;
	struct diag d = { { 0 } };
	int fd = mkstemp(path);
	const char *text = "3+ rfc4106(gcm(aes)) " K40 " 128\n4+ rfc4106(gcm(aes)) " K40 " 128\n";

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(ipsec_keys_load(path, &ks, &d), 0);
	assert_int_equal(ipsec_keys_current(&ks)->id, 4);
	unlink(path);
	assert_int_not_equal(ipsec_keys_load(path, &ks, &d), 0);
	assert_non_null(strstr(d.msg, path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aead_line),
		cmocka_unit_test(test_hex_prefix_and_case),
		cmocka_unit_test(test_auth_enc_line),
		cmocka_unit_test(test_no_plus_warns),
		cmocka_unit_test(test_current_is_last_line),
		cmocka_unit_test(test_mark),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_load_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
