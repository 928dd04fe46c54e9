/* SPDX-License-Identifier: Apache-2.0 */
/*
 * operator_kv: raw key/value access to a store for tests/operator/run-suite.sh, which plays
 * the agents' part (heartbeat and node status keys) without BPF.
 *
 *   operator_kv URI get KEY          prints the value; exit 1 when absent
 *   operator_kv URI modrev KEY       prints the key's mod_revision; exit 1 when absent
 *   operator_kv URI put KEY VALUE    writes it (no lease); prints the new revision
 *   operator_kv URI del KEY          deletes it (absent is fine)
 *   operator_kv URI list PREFIX      prints "KEY VALUE" lines
 *   operator_kv URI rev              prints the store revision
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int main(int argc, char **argv)
{
	struct diag d = {{0}};
	struct store *st;
	struct store_kv kv;
	struct store_list l;
	int64_t rev = 0;
	const char *cmd;
	size_t i;
	int err;

	if (argc < 3) {
		fprintf(stderr, "usage: operator_kv URI get|modrev|put|del|list|rev [ARGS]\n");
		return 2;
	}
	cmd = argv[2];
	err = store_open(argv[1], &st, &d);
	if (err) {
		fprintf(stderr, "operator_kv: %s\n", d.msg);
		return 1;
	}
	if ((!strcmp(cmd, "get") || !strcmp(cmd, "modrev")) && argc == 4) {
		err = store_get(st, argv[3], &kv, &d);
		if (!err) {
			if (!strcmp(cmd, "get"))
				printf("%s\n", kv.value);
			else
				printf("%lld\n", (long long)kv.mod_revision);
			store_kv_free(&kv);
		}
	} else if (!strcmp(cmd, "put") && argc == 5) {
		err = store_put(st, argv[3], argv[4], strlen(argv[4]), 0, STORE_ANY_REV, &rev, &d);
		if (!err)
			printf("%lld\n", (long long)rev);
	} else if (!strcmp(cmd, "del") && argc == 4) {
		err = store_delete(st, argv[3], STORE_ANY_REV, NULL, &d);
		if (err == -ENOENT)
			err = 0;
	} else if (!strcmp(cmd, "list") && argc == 4) {
		err = store_list(st, argv[3], &l, &d);
		for (i = 0; !err && i < l.n; i++)
			printf("%s %s\n", l.items[i].key, l.items[i].value);
		if (!err)
			store_list_free(&l);
	} else if (!strcmp(cmd, "rev") && argc == 3) {
		err = store_revision(st, &rev, &d);
		if (!err)
			printf("%lld\n", (long long)rev);
	} else {
		fprintf(stderr, "operator_kv: bad command\n");
		store_close(st);
		return 2;
	}
	if (err && err != -ENOENT)
		fprintf(stderr, "operator_kv: %s\n", d.msg);
	store_close(st);
	return err ? 1 : 0;
}
