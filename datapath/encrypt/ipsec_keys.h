/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPsec key file (docs/IPSEC.md, REFERENCE.md 11): the format of Cilium's cilium-ipsec-keys
 * secret. One key per line, '#' starts a comment, blank lines are ignored:
 *
 *   KEYID[+] AEAD-ALGO AEAD-KEY ICV-BITS          e.g. 3+ rfc4106(gcm(aes)) 0x<40 hex> 128
 *   KEYID[+] AUTH-ALGO AUTH-KEY ENC-ALGO ENC-KEY [IP]
 *
 * KEYID is 1..15 and becomes the ESP SPI. '+' selects per-tunnel keys (and ESN); a key
 * without it is accepted, and the key set carries a deprecation warning for the caller to
 * log. Keys are hex, with an optional 0x prefix. An AEAD algorithm's name starts with "rfc";
 * its ICV is 96, 128 or 256 bits.
 *
 * The current key is the one on the LAST line of the file. Key ids increase by one per
 * rotation and roll over from 15 to 1, so the highest id is not the newest after a rollover;
 * during a rotation the file holds the new key (alone, or last). The previous key stays in
 * the kernel for the grace period; the caller keeps it (struct ipsec_sync_spec, xfrm.h).
 */
#ifndef CILIATE_ENCRYPT_IPSEC_KEYS_H
#define CILIATE_ENCRYPT_IPSEC_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"

#define IPSEC_KEY_ID_MIN 1
#define IPSEC_KEY_ID_MAX 15 /* Cilium's IPsecMaxKeyVersion */
#define IPSEC_KEYS_MAX 15   /* one line per distinct key id */
#define IPSEC_ALG_NAME_MAX 64 /* XFRM's alg_name[64], NUL included */
#define IPSEC_KEY_BYTES_MAX 64

/* Datapath marks (Cilium's common.h): MARK_MAGIC_ENCRYPT, MARK_MAGIC_DECRYPT. */
#define IPSEC_MARK_MAGIC_ENCRYPT 0x0E00u
#define IPSEC_MARK_MAGIC_DECRYPT 0x0D00u

enum ipsec_key_kind {
	IPSEC_KEY_AEAD = 1,     /* AEAD-ALGO AEAD-KEY ICV-BITS */
	IPSEC_KEY_AUTH_ENC = 2, /* AUTH-ALGO AUTH-KEY ENC-ALGO ENC-KEY */
};

struct ipsec_key {
	uint8_t id;        /* 1..15: the SPI */
	bool per_tunnel;   /* '+' after the id: per-tunnel keys, ESN on */
	enum ipsec_key_kind kind;
	unsigned line;     /* line in the file, for messages */
	/* AEAD: alg/key/icv_bits. AUTH_ENC: auth_* and alg/key (the cipher). */
	char alg[IPSEC_ALG_NAME_MAX];
	uint8_t key[IPSEC_KEY_BYTES_MAX];
	size_t key_len;
	unsigned icv_bits;
	char auth_alg[IPSEC_ALG_NAME_MAX];
	uint8_t auth_key[IPSEC_KEY_BYTES_MAX];
	size_t auth_key_len;
	char ip[64]; /* the optional trailing IP/CIDR of the auth+enc form (kept, unused) */
};

struct ipsec_keyset {
	size_t n;
	struct ipsec_key keys[IPSEC_KEYS_MAX]; /* in file order */
	/* Non-empty when some key has no '+': the deprecation warning to log (names the lines). */
	char warning[256];
};

/* Parses the key file text (name is used in messages as "name:line: reason"). 0 or -EINVAL
 * with d->msg set. An empty file (no key line) is an error. */
int ipsec_keys_parse(const char *text, size_t len, const char *name, struct ipsec_keyset *out,
		     struct diag *d);
/* Reads and parses the file at path (-errno when it cannot be read). */
int ipsec_keys_load(const char *path, struct ipsec_keyset *out, struct diag *d);

/* The current key: the last line's (NULL for an empty set). */
const struct ipsec_key *ipsec_keys_current(const struct ipsec_keyset *ks);
/* The key with this id, or NULL. */
const struct ipsec_key *ipsec_keys_find(const struct ipsec_keyset *ks, uint8_t id);

/* The id after id in rotation order: 1..14 -> id+1, 15 -> 1. */
uint8_t ipsec_key_id_next(uint8_t id);
/* Cilium's or_encrypt_key(): ((id & 0x0F) << 12) | 0x0E00. */
uint32_t ipsec_encrypt_mark(uint8_t id);

#endif
