/* SPDX-License-Identifier: Apache-2.0 */
/* IPsec key file parser (ipsec_keys.h, docs/IPSEC.md). */
#include "ipsec_keys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 8

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex (optional 0x) into out; returns the byte count or -1 with why set. */
static int parse_hex(const char *s, uint8_t *out, size_t cap, const char **why)
{
	size_t n, i;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	n = strlen(s);
	if (n == 0) {
		*why = "is empty";
		return -1;
	}
	if (n % 2) {
		*why = "has an odd number of hex digits";
		return -1;
	}
	if (n / 2 > cap) {
		*why = "is too long (more than 64 bytes)";
		return -1;
	}
	for (i = 0; i < n; i += 2) {
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0) {
			*why = "is not hex";
			return -1;
		}
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(n / 2);
}

static bool alg_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IPSEC_ALG_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '(' || *s == ')' || *s == '_' || *s == '-' || *s == ','))
			return false;
	return true;
}

static int parse_line(char *line, const char *name, unsigned lineno, struct ipsec_key *k,
		      struct diag *d)
{
	char *f[MAX_FIELDS], *save = NULL, *tok, *end;
	const char *why = NULL;
	size_t nf = 0;
	unsigned long id;
	int n;

	for (tok = strtok_r(line, " \t\r", &save); tok; tok = strtok_r(NULL, " \t\r", &save)) {
		if (nf == MAX_FIELDS)
			return diag_fail(d, "%s:%u: too many fields (a key line has 4, 5 or 6)", name,
					 lineno);
		f[nf++] = tok;
	}
	memset(k, 0, sizeof(*k));
	k->line = lineno;

	/* KEYID[+] */
	n = (int)strlen(f[0]);
	if (n > 0 && f[0][n - 1] == '+') {
		k->per_tunnel = true;
		f[0][n - 1] = '\0';
	}
	errno = 0;
	id = strtoul(f[0], &end, 10);
	if (f[0][0] < '0' || f[0][0] > '9' || *end || errno)
		return diag_fail(d, "%s:%u: key id '%s' is not a number (a key line starts with KEYID[+], 1..15)",
				 name, lineno, f[0]);
	if (id < IPSEC_KEY_ID_MIN || id > IPSEC_KEY_ID_MAX)
		return diag_fail(d, "%s:%u: key id %lu out of range (1..%d; 0 is reserved)", name, lineno,
				 id, IPSEC_KEY_ID_MAX);
	k->id = (uint8_t)id;

	if (nf != 4 && nf != 5 && nf != 6)
		return diag_fail(d, "%s:%u: %zu fields; expected 'KEYID[+] AEAD-ALGO AEAD-KEY ICV-BITS' or "
				 "'KEYID[+] AUTH-ALGO AUTH-KEY ENC-ALGO ENC-KEY [IP]'",
				 name, lineno, nf);

	if (nf == 4) {
		unsigned long icv;

		if (strncmp(f[1], "rfc", 3) != 0)
			return diag_fail(d, "%s:%u: AEAD algorithm '%s' must start with 'rfc' "
					 "(e.g. rfc4106(gcm(aes)))", name, lineno, f[1]);
		if (!alg_name_ok(f[1]))
			return diag_fail(d, "%s:%u: bad algorithm name '%s'", name, lineno, f[1]);
		k->kind = IPSEC_KEY_AEAD;
		snprintf(k->alg, sizeof(k->alg), "%s", f[1]);
		n = parse_hex(f[2], k->key, sizeof(k->key), &why);
		if (n < 0)
			return diag_fail(d, "%s:%u: AEAD key %s", name, lineno, why);
		k->key_len = (size_t)n;
		if (strcmp(k->alg, "rfc4106(gcm(aes))") == 0 && n != 20 && n != 28 && n != 36)
			return diag_fail(d, "%s:%u: rfc4106(gcm(aes)) key is %d bytes; it must be 20, 28 or 36 "
					 "(AES-128/192/256 key + 4-byte salt: 40, 56 or 72 hex digits)",
					 name, lineno, n);
		errno = 0;
		icv = strtoul(f[3], &end, 10);
		if (f[3][0] < '0' || f[3][0] > '9' || *end || errno || (icv != 96 && icv != 128 && icv != 256))
			return diag_fail(d, "%s:%u: ICV length '%s' must be 96, 128 or 256 bits", name, lineno,
					 f[3]);
		k->icv_bits = (unsigned)icv;
		return 0;
	}

	k->kind = IPSEC_KEY_AUTH_ENC;
	if (strncmp(f[1], "rfc", 3) == 0)
		return diag_fail(d, "%s:%u: AEAD algorithm '%s' takes 'KEY ICV-BITS' (4 fields), not %zu",
				 name, lineno, f[1], nf);
	if (!alg_name_ok(f[1]))
		return diag_fail(d, "%s:%u: bad authentication algorithm name '%s'", name, lineno, f[1]);
	if (!alg_name_ok(f[3]))
		return diag_fail(d, "%s:%u: bad encryption algorithm name '%s'", name, lineno, f[3]);
	snprintf(k->auth_alg, sizeof(k->auth_alg), "%s", f[1]);
	n = parse_hex(f[2], k->auth_key, sizeof(k->auth_key), &why);
	if (n < 0)
		return diag_fail(d, "%s:%u: authentication key %s", name, lineno, why);
	k->auth_key_len = (size_t)n;
	snprintf(k->alg, sizeof(k->alg), "%s", f[3]);
	n = parse_hex(f[4], k->key, sizeof(k->key), &why);
	if (n < 0)
		return diag_fail(d, "%s:%u: encryption key %s", name, lineno, why);
	k->key_len = (size_t)n;
	if (strcmp(k->alg, "cbc(aes)") == 0 && n != 16 && n != 24 && n != 32)
		return diag_fail(d, "%s:%u: cbc(aes) key is %d bytes; it must be 16, 24 or 32", name, lineno,
				 n);
	if (nf == 6) {
		char addr[64], *slash;
		struct in_addr a4;
		struct in6_addr a6;

		snprintf(addr, sizeof(addr), "%s", f[5]);
		slash = strchr(addr, '/');
		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, addr, &a4) != 1 && inet_pton(AF_INET6, addr, &a6) != 1)
			return diag_fail(d, "%s:%u: trailing field '%s' is not an IP address or CIDR", name,
					 lineno, f[5]);
		snprintf(k->ip, sizeof(k->ip), "%s", f[5]);
	}
	return 0;
}

int ipsec_keys_parse(const char *text, size_t len, const char *name, struct ipsec_keyset *out,
		     struct diag *d)
{
	char buf[1024];
	size_t pos = 0;
	unsigned lineno = 0;
	size_t wlen = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *hash, *p;
		struct ipsec_key k;
		size_t i;
		int err;

		lineno++;
		if (ll >= sizeof(buf))
			return diag_fail(d, "%s:%u: line longer than %zu characters", name, lineno,
					 sizeof(buf) - 1);
		memcpy(buf, text + pos, ll);
		buf[ll] = '\0';
		pos += ll + (nl ? 1 : 0);
		if (memchr(buf, '\0', ll))
			return diag_fail(d, "%s:%u: NUL byte in the line", name, lineno);
		hash = strchr(buf, '#');
		if (hash)
			*hash = '\0';
		for (p = buf; *p == ' ' || *p == '\t' || *p == '\r'; p++)
			;
		if (!*p)
			continue;
		err = parse_line(p, name, lineno, &k, d);
		if (err)
			return err;
		for (i = 0; i < out->n; i++)
			if (out->keys[i].id == k.id)
				return diag_fail(d, "%s:%u: key id %u repeated (first on line %u)", name, lineno,
						 k.id, out->keys[i].line);
		if (out->n == IPSEC_KEYS_MAX)
			return diag_fail(d, "%s:%u: more than %d keys", name, lineno, IPSEC_KEYS_MAX);
		if (!k.per_tunnel) {
			int w;

			if (!wlen)
				w = snprintf(out->warning, sizeof(out->warning),
					     "%s: key without '+' (global key, deprecated since Cilium 1.16, "
					     "GHSA-pwqm-x5x6-5586) on line %u", name, lineno);
			else
				w = snprintf(out->warning + wlen, sizeof(out->warning) - wlen, ", %u", lineno);
			if (w > 0)
				wlen = strnlen(out->warning, sizeof(out->warning));
		}
		out->keys[out->n++] = k;
	}
	if (out->n == 0)
		return diag_fail(d, "%s: no key (a key line is 'KEYID[+] rfc4106(gcm(aes)) HEXKEY 128')",
				 name);
	return 0;
}

int ipsec_keys_load(const char *path, struct ipsec_keyset *out, struct diag *d)
{
	char buf[16384];
	size_t n;
	FILE *f = fopen(path, "r");
	int err;

	if (!f)
		return diag_fail_errno(d, errno, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf), f);
	err = ferror(f) ? errno : 0;
	if (!err && n == sizeof(buf) && fgetc(f) != EOF) {
		fclose(f);
		return diag_fail(d, "%s: larger than %zu bytes", path, sizeof(buf));
	}
	fclose(f);
	if (err)
		return diag_fail_errno(d, err, "%s: %s", path, strerror(err));
	return ipsec_keys_parse(buf, n, path, out, d);
}

const struct ipsec_key *ipsec_keys_current(const struct ipsec_keyset *ks)
{
	return ks->n ? &ks->keys[ks->n - 1] : NULL;
}

const struct ipsec_key *ipsec_keys_find(const struct ipsec_keyset *ks, uint8_t id)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		if (ks->keys[i].id == id)
			return &ks->keys[i];
	return NULL;
}

uint8_t ipsec_key_id_next(uint8_t id)
{
	return id >= IPSEC_KEY_ID_MAX ? IPSEC_KEY_ID_MIN : (uint8_t)(id + 1);
}

uint32_t ipsec_encrypt_mark(uint8_t id)
{
	return ((uint32_t)(id & 0x0F) << 12) | IPSEC_MARK_MAGIC_ENCRYPT;
}
