/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One pass's picture of the store: a single list of /ciliate/ (every key at one revision),
 * sorted into what the chores read: the leader and status keys, agent heartbeats, node
 * statuses (parsed), identity records, policy objects and policy status keys. Everything
 * points into the list, which the view owns.
 */
#include "operator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/identity_alloc.h"

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static int push(const struct store_kv ***v, size_t *n, const struct store_kv *kv)
{
	const struct store_kv **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = kv;
	*v = nv;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Parses a node status value; -EINVAL when it is not one. */
static int node_status_parse(const struct store_kv *kv, struct op_node_status *ns)
{
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL), *ids, *pol, *x;
	size_t i;

	memset(ns, 0, sizeof(*ns));
	ns->kv = kv;
	ns->node = kv->key + strlen(OP_NODE_STATUS_PFX);
	ids = json_object_get(j, "identities");
	pol = json_object_get(j, "policies");
	if (!json_is_object(j) || !json_is_integer(json_object_get(j, "revision")) ||
	    (ids && !json_is_array(ids)) || (pol && !json_is_object(pol))) {
		json_decref(j);
		return -EINVAL;
	}
	ns->revision = json_integer_value(json_object_get(j, "revision"));
	ns->ids = calloc(json_array_size(ids) + 1, sizeof(*ns->ids));
	if (!ns->ids) {
		json_decref(j);
		return -ENOMEM;
	}
	json_array_foreach(ids, i, x)
	{
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > UINT32_MAX) {
			json_decref(j);
			free(ns->ids);
			ns->ids = NULL;
			return -EINVAL;
		}
		ns->ids[ns->nids++] = (uint32_t)json_integer_value(x);
	}
	qsort(ns->ids, ns->nids, sizeof(*ns->ids), cmp_u32);
	ns->policies = pol ? json_incref(pol) : json_object();
	json_decref(j);
	return 0;
}

static int item_cmp(const void *key, const void *item)
{
	return strcmp(key, ((const struct store_kv *)item)->key);
}

const struct store_kv *op_view_get(const struct op_view *v, const char *key)
{
	return bsearch(key, v->l.items, v->l.n, sizeof(*v->l.items), item_cmp);
}

const struct store_kv *op_view_heartbeat(const struct op_view *v, const char *node)
{
	char key[STORE_KEY_MAX + 1];

	snprintf(key, sizeof(key), "%s%s", OP_HEARTBEAT_PREFIX, node);
	return op_view_get(v, key);
}

const struct op_node_status *op_view_node_status(const struct op_view *v, const char *node)
{
	size_t i;

	for (i = 0; i < v->nns; i++)
		if (!strcmp(v->ns[i].node, node))
			return &v->ns[i];
	return NULL;
}

static bool is_policy_key(const char *k)
{
	return has_prefix(k, OP_OBJECTS_PREFIX "NetworkPolicy/") ||
	       has_prefix(k, OP_OBJECTS_PREFIX "CiliumNetworkPolicy/") ||
	       has_prefix(k, OP_OBJECTS_PREFIX "CiliumClusterwideNetworkPolicy/");
}

int op_view_load(struct op *op, struct op_view *v, struct diag *d)
{
	size_t i;
	int err;

	memset(v, 0, sizeof(*v));
	err = store_list(op->st, "/ciliate/", &v->l, d);
	if (err)
		return err;
	for (i = 0; i < v->l.n && !err; i++) {
		const struct store_kv *kv = &v->l.items[i];
		const char *k = kv->key;

		if (!strcmp(k, OP_LEADER_KEY)) {
			v->leader = kv;
		} else if (!strcmp(k, OP_STATUS_KEY)) {
			v->status = kv;
		} else if (has_prefix(k, OP_HEARTBEAT_PREFIX) && k[strlen(OP_HEARTBEAT_PREFIX)]) {
			err = push(&v->heartbeats, &v->nheartbeats, kv);
		} else if (has_prefix(k, OP_NODE_STATUS_PFX) && k[strlen(OP_NODE_STATUS_PFX)]) {
			struct op_node_status *nv = realloc(v->ns, (v->nns + 1) * sizeof(*nv));

			if (!nv) {
				err = -ENOMEM;
				break;
			}
			v->ns = nv;
			err = node_status_parse(kv, &v->ns[v->nns]);
			if (err == -EINVAL) {
				v->bad_status++;
				err = 0;
				continue;
			}
			v->nns += !err;
		} else if (identity_key_is_record(k)) {
			err = push(&v->identities, &v->nidentities, kv);
		} else if (is_policy_key(k)) {
			err = push(&v->policies, &v->npolicies, kv);
		} else if (has_prefix(k, OP_POLICY_STATUS_PFX) && k[strlen(OP_POLICY_STATUS_PFX)]) {
			err = push(&v->pstatus, &v->npstatus, kv);
		}
	}
	for (i = 0; i < v->nns; i++)
		v->ns[i].live = op_view_heartbeat(v, v->ns[i].node) != NULL;
	if (err) {
		op_view_free(v);
		return diag_fail_errno(d, err, "out of memory reading the store");
	}
	return 0;
}

void op_view_free(struct op_view *v)
{
	size_t i;

	for (i = 0; i < v->nns; i++) {
		free(v->ns[i].ids);
		json_decref(v->ns[i].policies);
	}
	free(v->ns);
	free(v->heartbeats);
	free(v->identities);
	free(v->policies);
	free(v->pstatus);
	store_list_free(&v->l);
	memset(v, 0, sizeof(*v));
}
