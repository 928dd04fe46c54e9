/* SPDX-License-Identifier: Apache-2.0 */
/* ciliate bpf ...: the datapath's vocabularies and maps. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ciliate/abi.h"

#include "cli.h"
#include "common/names.h"

static void print_reason_text(unsigned int code, const char *name, const char *desc, void *arg)
{
	printf("%-5u %-42s %s\n", code, name, desc);
}

static void add_reason_json(unsigned int code, const char *name, const char *desc, void *arg)
{
	json_t *o = json_pack("{s:i, s:s, s:s, s:b}", "code", (int)code, "name", name,
			      "description", desc, "drop", code >= CILIATE_DROP_REASON_MIN);

	json_array_append_new(arg, o);
}

static int reasons_list(int json)
{
	if (json) {
		json_t *arr = json_array();

		reason_foreach(add_reason_json, arr);
		json_dumpf(arr, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(arr);
		return EXIT_OK;
	}
	printf("%-5s %-42s %s\n", "CODE", "NAME", "DESCRIPTION");
	reason_foreach(print_reason_text, NULL);
	return EXIT_OK;
}

int cmd_bpf(int argc, char **argv)
{
	int json = argc >= 5 && !strcmp(argv[3], "-o") && !strcmp(argv[4], "json");

	if (argc >= 3 && !strcmp(argv[1], "reasons") && !strcmp(argv[2], "list") &&
	    (argc == 3 || json))
		return reasons_list(json);
	fprintf(stderr, "usage: ciliate bpf reasons list [-o json]\n");
	return EXIT_USAGE;
}
