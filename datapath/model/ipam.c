/* SPDX-License-Identifier: Apache-2.0 */
/* Pod IPAM: pods without status.podIP get, in manifest order, the first free address of
 * their node's pod range starting at .10 (pinned addresses are skipped). hostNetwork pods
 * use the node address and take none. */
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ipaddr.h"

#define IPAM_FIRST_HOST 10

static int assign_node(struct cluster_model *m, const struct m_node *node, struct diag *d)
{
	uint32_t base = ntohl(node->pod_cidr), size = 1u << (32 - node->pod_cidr_len);
	uint32_t next = IPAM_FIRST_HOST, off;
	char a[CIDR4_STR_MAX];
	uint8_t *used;
	size_t i;
	int err = 0;

	used = calloc(size, 1);
	if (!used)
		return diag_fail_errno(d, -ENOMEM, "ipam: out of memory");
	for (i = 0; i < m->npods; i++) {
		const struct m_pod *pod = &m->pods[i];

		if (!pod->host_network && pod->ip_pinned &&
		    cidr4_contains_ip(node->pod_cidr, node->pod_cidr_len, pod->ip))
			used[ntohl(pod->ip) - base] = 1;
	}
	for (i = 0; i < m->npods; i++) {
		struct m_pod *pod = &m->pods[i];

		if (pod->host_network || pod->ip_pinned || strcmp(pod->node, node->name))
			continue;
		while (next < size - 1 && used[next])
			next++;
		if (next >= size - 1) {
			err = diag_fail(d, "%s:%d: metadata.name: no free address left in node "
				       "\"%s\"'s pod range %s for pod \"%s/%s\"",
				       pod->file, pod->line, node->name,
				       cidr4_format(node->pod_cidr, node->pod_cidr_len, a), pod->ns,
				       pod->name);
			goto out;
		}
		off = next++;
		used[off] = 1;
		pod->ip = htonl(base + off);
	}
out:
	free(used);
	return err;
}

int ipam_assign(struct cluster_model *m, struct diag *d)
{
	size_t i;
	int err;

	for (i = 0; i < m->cluster.nnodes; i++) {
		err = assign_node(m, &m->cluster.nodes[i], d);
		if (err)
			return err;
	}
	return 0;
}
