/* SPDX-License-Identifier: Apache-2.0 */
/* A scratch store for the unit tests that use one: the embedded store in a fresh temporary
 * directory, or, when CILIATE_TEST_ETCD=HOST:PORT is set (tests/store-etcd/run-suite.sh
 * sets it to a scratch etcd), that etcd with the test's keys deleted first. */
#ifndef CILIATE_TESTS_STORE_SCRATCH_H
#define CILIATE_TESTS_STORE_SCRATCH_H

#include <stdbool.h>
#include <stddef.h>

/* HOST:PORT from $CILIATE_TEST_ETCD, or NULL (the embedded store). */
const char *scratch_store_etcd(void);

/* Makes dir (a mkdtemp template, e.g. "/tmp/ciliate-x-XXXXXX", always created so teardown
 * can remove it on both backends) and writes the URI to open into uri: "file://DIR?OPTS" or
 * "etcd://HOST:PORT", in which case every key under wipe_prefix is deleted first (so each
 * test starts from an empty key range, as with a fresh directory). 0 or -1 (message on
 * stderr). */
int scratch_store_make(char *dir, char *uri, size_t urisz, const char *opts,
		       const char *wipe_prefix);

/* Deletes every key under prefix in the store at uri (a list, then one delete per key). */
int scratch_store_wipe(const char *uri, const char *prefix);

#endif
