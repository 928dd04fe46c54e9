/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tests/upgrade helper.
 *   upgrade_pin_old pin OBJ PIN_DIR   pins OBJ's maps under PIN_DIR in place of those there
 *                                     (as an older agent left them) and puts one conntrack
 *                                     entry (a fixed key, every old member set) into ciliate_ct
 *   upgrade_pin_old check PIN_DIR     looks that entry up in the pinned ciliate_ct and prints
 *                                     {"found", "prefixIntact", "appendedZero", "maxEntries"}
 *   upgrade_pin_old abi PIN_DIR N     writes N into the pinned ABI record (ciliate_abi)
 * Exit 0 ok, 1 failure (message on stderr).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ciliate/abi.h"

#define OLD_PREFIX offsetof(struct ct_entry, rev_nat_index) /* the members the old entry had */

static void fill_key(struct ct_key *k)
{
	memset(k, 0, sizeof(*k));
	memset(k, 0x5a, sizeof(*k) < 16 ? sizeof(*k) : 16);
}

static void fill_old_value(unsigned char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (unsigned char)(0x10 + i);
	/* far in the future: conntrack GC must keep it (expires_ns at offset 8) */
	*(__u64 *)(v + offsetof(struct ct_entry, expires_ns)) = ~0ull >> 2;
}

static int do_pin(const char *obj_path, const char *dir)
{
	struct bpf_object *obj = bpf_object__open_file(obj_path, NULL);
	unsigned char v[sizeof(struct ct_entry)] = { 0 };
	struct bpf_map *map;
	struct ct_key k;
	char path[512];

	if (!obj) {
		fprintf(stderr, "open %s: %s\n", obj_path, strerror(errno));
		return 1;
	}
	bpf_object__for_each_map(map, obj) {
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
		unlink(path);
		bpf_map__set_pin_path(map, path);
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "load %s: %s\n", obj_path, strerror(errno));
		return 1;
	}
	fill_key(&k);
	fill_old_value(v, OLD_PREFIX);
	if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "ciliate_ct")), &k, v, BPF_ANY)) {
		fprintf(stderr, "ct update: %s\n", strerror(errno));
		return 1;
	}
	bpf_object__close(obj);
	return 0;
}

static int do_check(const char *dir)
{
	unsigned char v[sizeof(struct ct_entry)], want[sizeof(struct ct_entry)] = { 0 };
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	char path[512];
	struct ct_key k;
	int fd, found, prefix = 0, zero = 1;

	snprintf(path, sizeof(path), "%s/ciliate_ct", dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	memset(&info, 0, sizeof(info));
	bpf_obj_get_info_by_fd(fd, &info, &len);
	fill_key(&k);
	found = !bpf_map_lookup_elem(fd, &k, v);
	if (found) {
		fill_old_value(want, OLD_PREFIX);
		prefix = !memcmp(v, want, OLD_PREFIX);
		for (size_t i = OLD_PREFIX; i < sizeof(v); i++)
			zero &= v[i] == 0;
	}
	printf("{\"found\":%s,\"prefixIntact\":%s,\"appendedZero\":%s,\"maxEntries\":%u}\n",
	       found ? "true" : "false", prefix ? "true" : "false", found && zero ? "true" : "false",
	       info.max_entries);
	close(fd);
	return 0;
}

static int do_abi(const char *dir, unsigned int n)
{
	__u32 key = 0, v = n;
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/ciliate_abi", dir);
	fd = bpf_obj_get(path);
	if (fd < 0 || bpf_map_update_elem(fd, &key, &v, BPF_ANY)) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "pin"))
		return do_pin(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "check"))
		return do_check(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "abi"))
		return do_abi(argv[2], (unsigned int)strtoul(argv[3], NULL, 10));
	fprintf(stderr, "usage: upgrade_pin_old pin OBJ PIN_DIR | check PIN_DIR | abi PIN_DIR N\n");
	return 2;
}
