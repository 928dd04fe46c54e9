/* SPDX-License-Identifier: Apache-2.0 */
/* Small parsing helpers shared by the document parsers: metadata, paths, protocols and
 * probe endpoint references. */
#include "parse.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"

int sim_metadata_parse(struct parse_ctx *p, const yaml_node_t *root, bool required, char *buf,
		       size_t size)
{
	static const char *const fields[] = { "name", "labels", "annotations", NULL };
	const struct yt_ctx *c = &p->yt;
	yaml_node_t *md = yt_map_get(c, root, "metadata");
	int err;

	buf[0] = '\0';
	if (!md) {
		if (required)
			return yt_fail(c, root, "metadata.name", "required field missing");
		return 0;
	}
	err = yt_check_fields(c, md, "metadata", fields);
	if (err)
		return err;
	if (!yt_map_get(c, md, "name")) {
		if (required)
			return yt_fail(c, md, "metadata.name", "required field missing");
		return 0;
	}
	return yt_str(c, yt_map_get(c, md, "name"), "metadata.name", buf, size);
}

int path_resolve(const char *dir, const char *rel, char **out)
{
	if (rel[0] == '/' || !dir || !*dir || !strcmp(dir, "."))
		*out = strdup(rel);
	else if (asprintf(out, "%s/%s", dir, rel) < 0)
		*out = NULL;
	return *out ? 0 : -ENOMEM;
}

int proto_parse(const char *s, bool icmp_ok, uint8_t *proto)
{
	if (!strcmp(s, "TCP"))
		*proto = IPPROTO_TCP;
	else if (!strcmp(s, "UDP"))
		*proto = IPPROTO_UDP;
	else if (!strcmp(s, "SCTP"))
		*proto = IPPROTO_SCTP;
	else if (icmp_ok && !strcmp(s, "ICMP"))
		*proto = IPPROTO_ICMP;
	else
		return -EINVAL;
	return 0;
}

static bool ext_host_exists(const struct cluster_model *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->cluster.next_hosts; i++)
		if (!strcmp(m->cluster.ext_hosts[i].name, name))
			return true;
	return false;
}

int endpoint_ref_check(const struct cluster_model *m, const char *ref, char *why, size_t size)
{
	const char *slash = strchr(ref, '/');
	const char *rest = slash ? slash + 1 : NULL;
	uint32_t ip;

	if (!slash || slash == ref || !*rest) {
		snprintf(why, size, "\"%s\": expected ns/pod, svc/ns/name, node/NAME, ext/NAME or "
			 "ip/A.B.C.D", ref);
		return -EINVAL;
	}
	if (!strncmp(ref, "node/", 5)) {
		if (cluster_find_node(m, rest))
			return 0;
		snprintf(why, size, "\"%s\": no node named \"%s\" in the Cluster", ref, rest);
		return -EINVAL;
	}
	if (!strncmp(ref, "ext/", 4)) {
		if (ext_host_exists(m, rest))
			return 0;
		snprintf(why, size, "\"%s\": no external host named \"%s\" in the Cluster", ref,
			 rest);
		return -EINVAL;
	}
	if (!strncmp(ref, "ip/", 3)) {
		if (!ip4_parse(rest, &ip))
			return 0;
		snprintf(why, size, "\"%s\": bad IPv4 address", ref);
		return -EINVAL;
	}
	if (!strncmp(ref, "svc/", 4)) {
		slash = strchr(rest, '/');
		if (slash && slash != rest && slash[1] && !strchr(slash + 1, '/'))
			return 0;
		snprintf(why, size, "\"%s\": expected svc/NAMESPACE/NAME", ref);
		return -EINVAL;
	}
	if (strchr(rest, '/')) {
		snprintf(why, size, "\"%s\": expected ns/pod", ref);
		return -EINVAL;
	}
	return 0;
}

bool drop_reason_known(const char *name)
{
#define CILIATE_REASON_NAME(code, n, desc) #n,
	static const char *const names[] = { CILIATE_DROP_REASONS(CILIATE_REASON_NAME) };
#undef CILIATE_REASON_NAME
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

int list_items_each(struct parse_ctx *p, const yaml_node_t *list,
		    int (*fn)(struct parse_ctx *p, yaml_node_t *item, const char *path, void *arg),
		    void *arg)
{
	char sub[YT_PATH_MAX];
	yaml_node_item_t *it;
	yaml_node_t *items;
	size_t k = 0;
	int err;

	items = yt_map_get(&p->yt, list, "items");
	if (!items)
		return 0;
	err = yt_want_seq(&p->yt, items, "items");
	if (err)
		return err;
	for (it = items->data.sequence.items.start; it < items->data.sequence.items.top;
	     it++, k++) {
		err = fn(p, yt_node(&p->yt, *it), yt_path(sub, "items[%zu]", k), arg);
		if (err)
			return err;
	}
	return 0;
}
