/* SPDX-License-Identifier: Apache-2.0 */
/* The node whose pinned maps a `ciliate bpf ... list` command reads, and reading them (cli.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cli.h"
#include "loader/datapath.h"

int cli_pin_dir(const char *cmd, const char *usage, const char *pin_dir, const char *node,
		char *dir, size_t size)
{
	struct dirent *de;
	size_t n = 0;
	DIR *dh;

	if (pin_dir || node) {
		snprintf(dir, size, pin_dir ? "%s" : CILIATE_PIN_ROOT "/%s",
			 pin_dir ? pin_dir : node);
		return 0;
	}
	dh = opendir(CILIATE_PIN_ROOT);
	while (dh && (de = readdir(dh)) && n < 2) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(dir, size, "%s/%s", CILIATE_PIN_ROOT, de->d_name);
		n++;
	}
	if (dh)
		closedir(dh);
	if (n == 1)
		return 0;
	fprintf(stderr, "ciliate %s: %s under %s: give --node or --pin-dir\n%s\n", cmd,
		n ? "several nodes" : "no node", CILIATE_PIN_ROOT, usage);
	return EXIT_USAGE;
}

#define DUMP_MAX (1u << 20) /* entries read from one map at most */

/* Opens DIR/name and checks its key and value sizes. Returns the fd or -1 (said why). */
static int pin_open(const char *cmd, const char *dir, const char *name, size_t ksz, size_t vsz)
{
	struct bpf_map_info info = {0};
	uint32_t len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr, "ciliate %s: %s: %s\n", cmd, path, strerror(errno));
		return -1;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.key_size != ksz ||
	    info.value_size != vsz) {
		fprintf(stderr,
			"ciliate %s: %s: key/value sizes %u/%u, want %zu/%zu (another ABI?)\n", cmd,
			path, info.key_size, info.value_size, ksz, vsz);
		close(fd);
		return -1;
	}
	return fd;
}

int cli_pin_read(const char *cmd, const char *dir, const char *name, size_t ksz, size_t vsz,
		 size_t rec_size, size_t voff, void **recs, size_t *n)
{
	uint8_t key[64], next[64];
	size_t cap = 0;
	void *prev = NULL;
	int fd = pin_open(cmd, dir, name, ksz, vsz);

	*recs = NULL;
	*n = 0;
	if (fd < 0)
		return -1;
	while (*n < DUMP_MAX && bpf_map_get_next_key(fd, prev, next) == 0) {
		uint8_t *r;

		memcpy(key, next, ksz);
		prev = key;
		if (*n == cap) {
			void *g = realloc(*recs, (cap = cap ? 2 * cap : 64) * rec_size);

			if (!g) {
				close(fd);
				return -1;
			}
			*recs = g;
		}
		r = (uint8_t *)*recs + *n * rec_size;
		memset(r, 0, rec_size);
		memcpy(r, key, ksz);
		if (bpf_map_lookup_elem(fd, key, r + voff) == 0)
			(*n)++; /* else deleted meanwhile */
	}
	close(fd);
	return 0;
}

int cli_pin_args(const char *cmd, const char *usage, int argc, char **argv, bool *json,
		 const char **node, const char **pin_dir)
{
	int rc;

	*json = false;
	*node = NULL;
	*pin_dir = NULL;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			rc = cli_output_format(cmd, argv[++i], json);
			if (rc)
				return rc;
		} else if (!strcmp(argv[i], "--node") && i + 1 < argc) {
			*node = argv[++i];
		} else if (!strcmp(argv[i], "--pin-dir") && i + 1 < argc) {
			*pin_dir = argv[++i];
		} else {
			fprintf(stderr, "ciliate %s: unknown argument \"%s\"\n%s\n", cmd, argv[i],
				usage);
			return EXIT_USAGE;
		}
	}
	return 0;
}
