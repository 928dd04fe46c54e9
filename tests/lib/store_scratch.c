/* SPDX-License-Identifier: Apache-2.0 */
#include "store_scratch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

const char *scratch_store_etcd(void)
{
	const char *e = getenv("CILIATE_TEST_ETCD");

	return e && *e ? e : NULL;
}

int scratch_store_wipe(const char *uri, const char *prefix)
{
	struct diag d = {{0}};
	struct store_list l;
	struct store *s;
	size_t i;
	int err, listed;

	if (store_open(uri, &s, &d)) {
		fprintf(stderr, "scratch store %s: %s\n", uri, d.msg);
		return -1;
	}
	err = store_list(s, prefix, &l, &d);
	listed = !err;
	for (i = 0; !err && i < l.n; i++) {
		err = store_delete(s, l.items[i].key, STORE_ANY_REV, NULL, &d);
		if (err == -ENOENT) /* gone meanwhile (a lease) */
			err = 0;
	}
	if (err)
		fprintf(stderr, "wiping %s in %s: %s\n", prefix, uri, d.msg);
	if (listed)
		store_list_free(&l);
	store_close(s);
	return err ? -1 : 0;
}

int scratch_store_make(char *dir, char *uri, size_t urisz, const char *opts,
		       const char *wipe_prefix)
{
	const char *etcd = scratch_store_etcd();

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return -1;
	}
	if (!etcd) {
		snprintf(uri, urisz, "file://%s%s%s", dir, opts ? "?" : "", opts ? opts : "");
		return 0;
	}
	snprintf(uri, urisz, "etcd://%s", etcd);
	return scratch_store_wipe(uri, wipe_prefix);
}
