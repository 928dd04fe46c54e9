/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ciliate bpf egress list [-o json] [--node NAME | --pin-dir DIR]`: the node's egress
 * gateway policy map (ciliate_egress_gw; docs/EGRESS.md), as `cilium-dbg bpf egress list`
 * shows Cilium's: source IP, destination CIDR, egress IP, gateway IP — the gateway column
 * naming the sentinels ("0.0.0.0 (no gateway)", "excluded CIDR").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <jansson.h>

#include "ciliate/abi.h"
#include "cli.h"
#include "loader/datapath.h"

#define BPF_EGRESS_USAGE "usage: ciliate bpf egress list [-o json] [--node NAME | --pin-dir DIR]"

struct egress_row {
	struct egress_gw_key k;
	struct egress_gw_value v;
};

static int row_cmp(const void *a, const void *b)
{
	const struct egress_row *x = a, *y = b;
	uint32_t xs = ntohl(x->k.saddr), ys = ntohl(y->k.saddr);
	uint32_t xd = ntohl(x->k.daddr), yd = ntohl(y->k.daddr);

	if (xs != ys)
		return xs < ys ? -1 : 1;
	if (xd != yd)
		return xd < yd ? -1 : 1;
	return x->k.prefixlen < y->k.prefixlen ? -1 : x->k.prefixlen > y->k.prefixlen;
}

static const char *gateway_text(uint32_t gw, char *buf, size_t size)
{
	if (gw == htonl(EGRESS_GW_EXCLUDED_CIDR)) {
		snprintf(buf, size, "excluded CIDR");
		return buf;
	}
	inet_ntop(AF_INET, &gw, buf, (socklen_t)size);
	if (gw == EGRESS_GW_NO_GATEWAY)
		strncat(buf, " (no gateway)", size - strlen(buf) - 1);
	return buf;
}

int cmd_bpf_egress(int argc, char **argv)
{
	const char *node, *pin_dir;
	char dir[PATH_MAX], src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN + 4];
	char eip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN + 16];
	struct egress_row *rows;
	json_t *arr = NULL;
	void *p;
	bool json;
	size_t n;
	int rc;

	if (argc < 2 || strcmp(argv[1], "list")) {
		fprintf(stderr, "%s\n", BPF_EGRESS_USAGE);
		return EXIT_USAGE;
	}
	rc = cli_pin_args("bpf egress list", BPF_EGRESS_USAGE, argc - 2, argv + 2, &json, &node,
			  &pin_dir);
	if (rc)
		return rc;
	rc = cli_pin_dir("bpf egress list", BPF_EGRESS_USAGE, pin_dir, node, dir, sizeof(dir));
	if (rc)
		return rc;
	if (cli_pin_read("bpf egress list", dir, MAP_EGRESS_GW, sizeof(struct egress_gw_key),
			 sizeof(struct egress_gw_value), sizeof(*rows),
			 offsetof(struct egress_row, v), &p, &n))
		return EXIT_FAILURE_;
	rows = p;
	if (n)
		qsort(rows, n, sizeof(*rows), row_cmp);
	if (json)
		arr = json_array();
	else
		printf("%-16s %-19s %-16s %s\n", "Source IP", "Destination CIDR", "Egress IP",
		       "Gateway IP");
	for (size_t i = 0; i < n; i++) {
		const struct egress_row *r = &rows[i];
		size_t l;

		inet_ntop(AF_INET, &r->k.saddr, src, sizeof(src));
		inet_ntop(AF_INET, &r->k.daddr, dst, sizeof(dst));
		l = strlen(dst);
		snprintf(dst + l, sizeof(dst) - l, "/%u", r->k.prefixlen - EGRESS_GW_PREFIX_BASE);
		inet_ntop(AF_INET, &r->v.egress_ip, eip, sizeof(eip));
		gateway_text(r->v.gateway_ip, gw, sizeof(gw));
		if (json)
			json_array_append_new(
				arr,
				json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "source_ip", src,
					  "destination_cidr", dst, "egress_ip", eip, "gateway_ip",
					  gw, "excluded",
					  r->v.gateway_ip == htonl(EGRESS_GW_EXCLUDED_CIDR),
					  "no_gateway", r->v.gateway_ip == EGRESS_GW_NO_GATEWAY));
		else
			printf("%-16s %-19s %-16s %s\n", src, dst, eip, gw);
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(arr);
	}
	free(rows);
	return EXIT_OK;
}
