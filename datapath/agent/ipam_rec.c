/* SPDX-License-Identifier: Apache-2.0 */
#include "ipam_rec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "model/ipaddr.h"

static int rec_fail(char *err, size_t errsize, const char *what)
{
	if (err)
		snprintf(err, errsize, "%s", what);
	return -EINVAL;
}

static int cmp_alloc(const void *a, const void *b)
{
	uint32_t x = ntohl(((const struct ipam_alloc *)a)->ip);
	uint32_t y = ntohl(((const struct ipam_alloc *)b)->ip);

	return x < y ? -1 : x > y;
}

int ipam_key_split(const char *key, char *node, size_t node_size, uint32_t *ip)
{
	const char *n = key + strlen(IPAM_KEY_PREFIX), *slash;
	size_t nlen;

	*ip = 0;
	if (strncmp(key, IPAM_KEY_PREFIX, strlen(IPAM_KEY_PREFIX)))
		return -EINVAL;
	slash = strchr(n, '/');
	nlen = slash ? (size_t)(slash - n) : strlen(n);
	if (!nlen || nlen >= node_size)
		return -EINVAL;
	memcpy(node, n, nlen);
	node[nlen] = '\0';
	if (!slash)
		return 0;
	if (ip4_parse(slash + 1, ip) || !*ip)
		return -EINVAL;
	return 1;
}

void ipam_alloc_key(const char *node, uint32_t ip, char *buf, size_t size)
{
	char a[IP4_STR_MAX];

	snprintf(buf, size, "%s%s/%s", IPAM_KEY_PREFIX, node, ip4_format(ip, a));
}

int ipam_alloc_parse(const char *json, size_t len, uint32_t ip, struct ipam_alloc *al, char *err,
		     size_t errsize)
{
	const char *ips, *pod, *cid;
	json_t *root;
	uint32_t v;
	int rc = 0;

	memset(al, 0, sizeof(*al));
	root = json_loadb(json, len, 0, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return rec_fail(err, errsize, "not a JSON object");
	}
	ips = json_string_value(json_object_get(root, "ip"));
	pod = json_string_value(json_object_get(root, "pod"));
	cid = json_string_value(json_object_get(root, "containerID"));
	if (!ips || ip4_parse(ips, &v) || v != ip)
		rc = rec_fail(err, errsize, "ip: missing or not the key's address");
	else if (!pod || !*pod || strlen(pod) >= sizeof(al->pod))
		rc = rec_fail(err, errsize, "pod: missing or too long");
	else if (cid && strlen(cid) >= sizeof(al->container_id))
		rc = rec_fail(err, errsize, "containerID: too long");
	if (!rc) {
		al->ip = ip;
		snprintf(al->pod, sizeof(al->pod), "%s", pod);
		snprintf(al->container_id, sizeof(al->container_id), "%s", cid ? cid : "");
	}
	json_decref(root);
	return rc;
}

char *ipam_alloc_format(const struct ipam_alloc *al)
{
	char ip[IP4_STR_MAX], *out;
	json_t *j = json_pack("{s:s, s:s, s:s}", "ip", ip4_format(al->ip, ip), "pod", al->pod,
			      "containerID", al->container_id);

	out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	return out;
}

int ipam_rec_parse(const char *json, size_t len, struct ipam_rec *r, char *err, size_t errsize)
{
	json_t *root, *allocs, *it;
	const char *node, *cidr;
	json_error_t je;
	size_t i;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	root = json_loadb(json, len, 0, &je);
	if (!root)
		return rec_fail(err, errsize, "not JSON");
	node = json_string_value(json_object_get(root, "node"));
	cidr = json_string_value(json_object_get(root, "cidr"));
	allocs = json_object_get(root, "allocations");
	if (!node || strlen(node) >= sizeof(r->node)) {
		rc = rec_fail(err, errsize, "node: missing or too long");
		goto out;
	}
	snprintf(r->node, sizeof(r->node), "%s", node);
	if (!cidr || cidr4_parse(cidr, true, &r->cidr, &r->cidr_len) || r->cidr_len > 30) {
		rc = rec_fail(err, errsize, "cidr: missing or not A.B.C.D/N");
		goto out;
	}
	if (allocs && !json_is_array(allocs)) {
		rc = rec_fail(err, errsize, "allocations: not a list");
		goto out;
	}
	r->v = calloc(json_array_size(allocs) + 1, sizeof(*r->v));
	if (!r->v) {
		rc = -ENOMEM;
		goto out;
	}
	json_array_foreach(allocs, i, it)
	{
		const char *ip = json_string_value(json_object_get(it, "ip"));
		const char *pod = json_string_value(json_object_get(it, "pod"));
		const char *cid = json_string_value(json_object_get(it, "containerID"));
		struct ipam_alloc *a = &r->v[r->n];

		if (!ip || ip4_parse(ip, &a->ip) || !pod || strlen(pod) >= sizeof(a->pod) ||
		    (cid && strlen(cid) >= sizeof(a->container_id))) {
			rc = rec_fail(err, errsize, "allocations: an entry lacks ip or pod");
			goto out;
		}
		snprintf(a->pod, sizeof(a->pod), "%s", pod);
		snprintf(a->container_id, sizeof(a->container_id), "%s", cid ? cid : "");
		r->n++;
	}
	qsort(r->v, r->n, sizeof(*r->v), cmp_alloc);
out:
	json_decref(root);
	if (rc)
		ipam_rec_free(r);
	return rc;
}

char *ipam_rec_format(const struct ipam_rec *r)
{
	char ip[IP4_STR_MAX], cidr[CIDR4_STR_MAX];
	json_t *root, *arr;
	char *out;
	size_t i;

	arr = json_array();
	root = json_pack("{s:s, s:s, s:o}", "node", r->node, "cidr",
			 cidr4_format(r->cidr, r->cidr_len, cidr), "allocations", arr);
	if (!root)
		return NULL;
	for (i = 0; i < r->n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "ip",
						     ip4_format(r->v[i].ip, ip), "pod", r->v[i].pod,
						     "containerID", r->v[i].container_id));
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return out;
}

void ipam_rec_free(struct ipam_rec *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

const struct ipam_alloc *ipam_rec_find_pod(const struct ipam_rec *r, const char *pod)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].pod, pod))
			return &r->v[i];
	return NULL;
}

const struct ipam_alloc *ipam_rec_find_ip(const struct ipam_rec *r, uint32_t ip)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->v[i].ip == ip)
			return &r->v[i];
	return NULL;
}

static bool in_list(const uint32_t *v, size_t n, uint32_t ip)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == ip)
			return true;
	return false;
}

static int add(struct ipam_rec *r, const char *pod, const char *cid, uint32_t ip)
{
	struct ipam_alloc *v = realloc(r->v, (r->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	r->v = v;
	memset(&v[r->n], 0, sizeof(*v));
	v[r->n].ip = ip;
	snprintf(v[r->n].pod, sizeof(v->pod), "%s", pod);
	snprintf(v[r->n].container_id, sizeof(v->container_id), "%s", cid ? cid : "");
	r->n++;
	qsort(r->v, r->n, sizeof(*r->v), cmp_alloc);
	return 0;
}

int ipam_rec_allocate(struct ipam_rec *r, const char *pod, const char *container_id,
		      uint32_t requested, const uint32_t *reserved, size_t nreserved, uint32_t *ip,
		      bool *changed)
{
	uint32_t base = ntohl(r->cidr), size = 1u << (32 - r->cidr_len), off, cand = 0;
	struct ipam_alloc *have = (struct ipam_alloc *)ipam_rec_find_pod(r, pod);

	*changed = false;
	*ip = 0;
	if (have) {
		if (requested && requested != have->ip)
			return -EBUSY;
		if (container_id && *container_id && strcmp(have->container_id, container_id)) {
			snprintf(have->container_id, sizeof(have->container_id), "%s",
				 container_id);
			*changed = true;
		}
		*ip = have->ip;
		return 0;
	}
	if (requested) {
		off = ntohl(requested) - base;
		if (!cidr4_contains_ip(r->cidr, r->cidr_len, requested) || off == 0 ||
		    off == size - 1)
			return -ERANGE;
		if (ipam_rec_find_ip(r, requested) || in_list(reserved, nreserved, requested))
			return -EEXIST;
		*ip = requested;
	} else {
		for (off = IPAM_FIRST_OFFSET; off < size - 1; off++) {
			cand = htonl(base + off);
			if (!ipam_rec_find_ip(r, cand) && !in_list(reserved, nreserved, cand))
				break;
		}
		if (off >= size - 1)
			return -ENOSPC;
		*ip = cand;
	}
	*changed = true;
	return add(r, pod, container_id, *ip);
}

void ipam_rec_release(struct ipam_rec *r, const char *pod, const char *container_id, uint32_t *ip)
{
	size_t i;

	*ip = 0;
	for (i = 0; i < r->n; i++) {
		struct ipam_alloc *a = &r->v[i];

		if (pod && *pod) {
			if (strcmp(a->pod, pod))
				continue;
			if (container_id && *container_id && *a->container_id &&
			    strcmp(a->container_id, container_id))
				return; /* held by a newer sandbox of the same pod */
		} else if (!container_id || !*container_id ||
			   strcmp(a->container_id, container_id)) {
			continue;
		}
		*ip = a->ip;
		memmove(a, a + 1, (r->n - i - 1) * sizeof(*a));
		r->n--;
		return;
	}
}
