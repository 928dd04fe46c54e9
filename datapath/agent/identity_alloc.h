/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster identities allocated through the store (docs/STORE.md "Identities"): one record
 * per identity at /ciliate/identities/id/<n> holding its label set,
 *
 *   {"id":256,"labels":{"k8s:app":"web","k8s:io.kubernetes.pod.namespace":"shop"}}
 *
 * plus /ciliate/identities/version, which every allocation and release rewrites in the same
 * transaction. A writer lists the prefix (records and version at one revision), decides,
 * and commits only if the version is still the one it listed: allocations are serialised
 * cluster-wide, so one label set never gets two numbers and one number never two sets.
 * Numbers are the lowest free one from IDENTITY_CLUSTER_MIN (256) up to
 * IDENTITY_CLUSTER_MAX; for a fresh store fed label sets in manifest order that is exactly
 * the model's deterministic numbering (datapath/model/identity.c).
 */
#ifndef CILIATE_AGENT_IDENTITY_ALLOC_H
#define CILIATE_AGENT_IDENTITY_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "store/store.h"

#define IDENTITY_PREFIX	     "/ciliate/identities/"
#define IDENTITY_KEY_PREFIX  "/ciliate/identities/id/"
#define IDENTITY_VERSION_KEY "/ciliate/identities/version"
#define IDENTITY_CLUSTER_MAX 65535u /* cluster identities are 256..65535 (as Cilium's) */
#define IDENTITY_ALLOC_TRIES 64

/* One identity record as stored. */
struct identity_rec {
	uint32_t id;
	struct labelset labels; /* sorted */
	int64_t mod_rev;	/* of its store key (0 when not read from the store) */
};

/* Formats the record value (compact JSON, labels sorted; malloc'd, NULL on ENOMEM). */
char *identity_rec_format(uint32_t id, const struct labelset *labels);

/* Parses a record value; on error writes a reason into why and returns -EINVAL. */
int identity_rec_parse(const char *json, size_t len, struct identity_rec *r, char *why,
		       size_t whysize);

/* The store key of identity id. */
void identity_key(uint32_t id, char *key, size_t size);

/* True if key is an identity record's key (IDENTITY_KEY_PREFIX + a number). */
bool identity_key_is_record(const char *key);

/* Frees the labels of r and zeroes it. */
void identity_rec_free(struct identity_rec *r);

/*
 * Returns the cluster identity of labels (sorted): the stored one, or a new one with the
 * lowest free number, created in one transaction guarded by the allocator version (lost
 * races are retried). *created tells whether this call wrote it (may be NULL). Errors:
 * -ENOSPC every number up to IDENTITY_CLUSTER_MAX is taken; -EAGAIN the allocator kept
 * changing for IDENTITY_ALLOC_TRIES rounds; store errors.
 */
int identity_alloc(struct store *st, const struct labelset *labels, uint32_t *id, bool *created,
		   struct diag *d);

/*
 * Deletes the record of id if its mod_revision is still mod_rev (an unused identity found
 * by garbage collection), bumping the allocator version in the same transaction. -ECANCELED:
 * the record or the allocator changed meanwhile (check again later); -ENOENT: already gone.
 */
int identity_release(struct store *st, uint32_t id, int64_t mod_rev, struct diag *d);

/* Reads every identity record from the store, sorted by id (free with
 * identity_recs_free). Malformed records are skipped and counted in *bad (may be NULL). */
int identity_recs_list(struct store *st, struct identity_rec **out, size_t *n, size_t *bad,
		       struct diag *d);

/* Frees what identity_recs_list returned. */
void identity_recs_free(struct identity_rec *v, size_t n);

#endif
