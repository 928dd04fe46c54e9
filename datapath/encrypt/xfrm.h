/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPsec: the kernel's XFRM states (SAs) and policies for ciliate's node-to-node encryption,
 * programmed over NETLINK_XFRM with libmnl (docs/IPSEC.md). Every call works in the calling
 * thread's network namespace.
 *
 * What one sync programs (IPv4), per peer P and per key K in {current, previous}:
 *   out SA   src=local node  dst=P's node  ESP spi=K.id  reqid=XFRM_CILIATE_REQID  mode
 *   in  SA   src=0.0.0.0     dst=local node  ESP spi=K.id  (one per key, shared by peers:
 *            the kernel finds inbound SAs by destination + SPI only)
 *   tunnel mode:    out policy local pod CIDR -> P's pod CIDR, template local node -> P's
 *                   node, spi = the out key; in + fwd policies P's pod CIDR -> local pod CIDR
 *                   (template: any SPI of ours, destination the local node)
 *   transport mode: out policy local node/32 -> P's node/32; in policy the reverse
 * The out key towards P is the current key, except when P announces our previous key as its
 * current (P has not rotated yet): then the previous key (Cilium's get_min_encrypt_key).
 * Ours = reqid XFRM_CILIATE_REQID (SAs) or a template with it (policies); nothing else is
 * ever changed or removed.
 */
#ifndef CILIATE_ENCRYPT_XFRM_H
#define CILIATE_ENCRYPT_XFRM_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/diag.h"
#include "encrypt/ipsec_keys.h"

#define XFRM_CILIATE_REQID 0x00c11a7eu
/* Policy priority of ciliate's policies (lower wins; iproute2's default is 0). */
#define XFRM_CILIATE_PRIORITY 0x2000u
#define XFRM_MAX_SEQ_32 0xffffffffull
#define XFRM_MAX_SEQ_ESN 0xffffffffffffffffull

enum ipsec_mode {
	IPSEC_MODE_TUNNEL = 0,    /* pod CIDR <-> pod CIDR, ESP between the node addresses */
	IPSEC_MODE_TRANSPORT = 1, /* node IP <-> node IP */
};

struct ipsec_peer {
	struct in_addr node_ip;
	struct in_addr pod_cidr; /* network address; unused in transport mode */
	uint8_t pod_prefix;
	/* The key id the peer announces as its current one (0: unknown, assume ours). */
	uint8_t key_id;
};

struct ipsec_sync_spec {
	struct in_addr local_ip;
	struct in_addr local_pod_cidr;
	uint8_t local_pod_prefix;
	enum ipsec_mode mode;
	const struct ipsec_peer *peers;
	size_t n_peers;
	const struct ipsec_key *current;  /* required */
	const struct ipsec_key *previous; /* still in its grace period, or NULL */
	/* Cilium's datapath marks: out SAs match or_encrypt_key(id)/0xFF00, the out policy
	 * 0x0E00/0x0F00, in SAs the decrypt mark 0x0D00/0x0F00. Off: no marks (traffic is
	 * selected by the policies alone; what the wire suite uses). */
	bool use_marks;
};

struct ipsec_sync_result {
	unsigned sa_added, sa_replaced, sa_removed;
	unsigned pol_added, pol_replaced, pol_removed;
};

enum xfrm_sa_dir { XFRM_SA_IN = 0, XFRM_SA_OUT = 1 };

struct xfrm_sa_info {
	uint32_t spi;
	enum xfrm_sa_dir dir; /* OUT when the source is set (ours: the local node) */
	struct in_addr src, dst;
	uint8_t mode;         /* XFRM_MODE_* */
	uint32_t reqid;
	uint32_t mark, mark_mask;
	bool esn;
	uint64_t oseq;        /* last sequence number sent */
	uint64_t seq;         /* highest sequence number received */
	uint64_t bytes, packets;
	char alg[IPSEC_ALG_NAME_MAX];
};

#define XFRM_STATUS_MAX_SAS 64
#define XFRM_STATUS_MAX_STATS 32

struct ipsec_status {
	size_t keys_in_use;     /* ciliate's SAs ("Keys in use") */
	uint64_t max_seq;       /* highest sent or received sequence number over them */
	uint64_t max_seq_limit; /* 0xffffffff, or 2^64-1 when some SA uses ESN */
	bool errors_known;      /* /proc/net/xfrm_stat was readable */
	uint64_t errors;        /* sum of its counters */
	size_t n_policies;      /* ciliate's policies */
	size_t n_sas;           /* entries in sas[] (at most XFRM_STATUS_MAX_SAS) */
	struct xfrm_sa_info sas[XFRM_STATUS_MAX_SAS];
	size_t n_stats; /* the nonzero xfrm_stat counters */
	struct {
		char name[64];
		uint64_t value;
	} stats[XFRM_STATUS_MAX_STATS];
};

/* 0 when this namespace's kernel can do ESP over XFRM netlink; else -errno and d->msg says
 * exactly what is missing (no NETLINK_XFRM, no esp4 ...). Adds and removes one probe SA of
 * ours (spi 0xc111a7e0... never on the wire: it has no policy). */
int xfrm_ipsec_probe(struct diag *d);

/* Reconciles the kernel with want: adds what is missing, replaces what changed, removes
 * ciliate's SAs and policies that are not wanted. res may be NULL. */
int xfrm_ipsec_sync(const struct ipsec_sync_spec *want, struct ipsec_sync_result *res,
		    struct diag *d);

/* Removes every SA and policy of ciliate's (n_removed may be NULL). */
int xfrm_ipsec_flush_ours(unsigned *n_removed, struct diag *d);

/* Removes ciliate's SAs with this SPI (n_removed may be NULL). */
int xfrm_ipsec_delete_spi(uint32_t spi, unsigned *n_removed, struct diag *d);

/* Lists ciliate's SAs, policies and the xfrm_stat error counters. */
int xfrm_ipsec_status(struct ipsec_status *st, struct diag *d);

/* "Encryption: IPsec\nKeys in use: N\nMax Seq. Number: 0x1e3/0xffffffff\nErrors: N\n" (and one
 * line per SA); returns the snprintf length. */
int xfrm_ipsec_status_format(const struct ipsec_status *st, char *buf, size_t len);

#endif
