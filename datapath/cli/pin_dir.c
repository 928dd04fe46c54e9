/* SPDX-License-Identifier: Apache-2.0 */
/* The node whose pinned maps a `ciliate bpf ... list` command reads (cli.h). */
#include <dirent.h>
#include <stdio.h>

#include "cli.h"
#include "loader/datapath.h"

int cli_pin_dir(const char *cmd, const char *usage, const char *pin_dir, const char *node,
		char *dir, size_t size)
{
	struct dirent *de;
	size_t n = 0;
	DIR *dh;

	if (pin_dir || node) {
		snprintf(dir, size, pin_dir ? "%s" : CILIATE_PIN_ROOT "/%s", pin_dir ? pin_dir : node);
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
