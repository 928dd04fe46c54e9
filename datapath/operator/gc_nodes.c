/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Node garbage collection (docs/OPERATOR.md "Node GC"). A node is any name under
 * /ciliate/nodes/, /ciliate/ipam/ (range record or allocation), /ciliate/status/nodes/ or in
 * a /ciliate/podcidrs/ claim's value. Once its agent's heartbeat
 * (/ciliate/health/agents/<node>) has been absent in every pass for more than
 * --node-gc-timeout seconds, as this leader observed it, every one of those keys is deleted:
 * in transactions of at most OP_TXN_KEYS keys, each compared at the mod_revision listed, the
 * heartbeat compared absent and the leader key compared ours. A lost compare (the agent came
 * back, a key changed) is logged and the node is looked at again next pass.
 */
#include "operator.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

/* The node a podcidr claim names into out ("" when unreadable). */
static void claim_node(const struct store_kv *kv, char *out, size_t size)
{
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	const char *n = json_string_value(json_object_get(j, "node"));

	snprintf(out, size, "%s", n ? n : "");
	json_decref(j);
}

/* The node name key names (into out), or false when it names none. */
static bool key_node(const struct store_kv *kv, char *out, size_t size)
{
	const char *k = kv->key, *s;
	size_t len;

	if (has_prefix(k, OP_NODES_PREFIX)) {
		s = k + strlen(OP_NODES_PREFIX);
		len = strlen(s);
	} else if (has_prefix(k, OP_NODE_STATUS_PFX)) {
		s = k + strlen(OP_NODE_STATUS_PFX);
		len = strlen(s);
	} else if (has_prefix(k, "/ciliate/ipam/")) {
		s = k + strlen("/ciliate/ipam/");
		len = strchr(s, '/') ? (size_t)(strchr(s, '/') - s) : strlen(s);
	} else if (has_prefix(k, OP_PODCIDRS_PREFIX)) {
		claim_node(kv, out, size);
		return *out && strlen(out) < size - 1;
	} else {
		return false;
	}
	if (!len || len >= size - 1 || memchr(s, '/', len))
		return false;
	snprintf(out, size, "%.*s", (int)len, s);
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every node name in the view, sorted and unique (free each and the array). */
static int node_names(const struct op_view *v, char ***out, size_t *n)
{
	char **names = NULL, name[256];
	size_t i, k = 0, cap = 0;

	*n = 0;
	for (i = 0; i < v->l.n; i++) {
		if (!key_node(&v->l.items[i], name, sizeof(name)))
			continue;
		if (k && !strcmp(names[k - 1], name))
			continue;
		if (k == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*nn));

			if (!nn)
				goto nomem;
			names = nn;
		}
		if (!(names[k] = strdup(name)))
			goto nomem;
		k++;
	}
	qsort(names, k, sizeof(*names), cmp_str);
	for (i = 0, *n = 0; i < k; i++) {
		if (*n && !strcmp(names[*n - 1], names[i])) {
			free(names[i]);
			continue;
		}
		names[(*n)++] = names[i];
	}
	*out = names;
	return 0;
nomem:
	for (i = 0; i < k; i++)
		free(names[i]);
	free(names);
	return -ENOMEM;
}

static struct op_nodeclock *clock_get(struct op *op, const char *name)
{
	size_t i;

	for (i = 0; i < op->nndc; i++)
		if (!strcmp(op->ndc[i].name, name))
			return &op->ndc[i];
	if (op->nndc == op->capndc) {
		size_t cap = op->capndc ? op->capndc * 2 : 16;
		struct op_nodeclock *n = realloc(op->ndc, cap * sizeof(*n));

		if (!n)
			return NULL;
		op->ndc = n;
		op->capndc = cap;
	}
	op->ndc[op->nndc] = (struct op_nodeclock){.since_ms = -1};
	snprintf(op->ndc[op->nndc].name, sizeof(op->ndc[op->nndc].name), "%s", name);
	return &op->ndc[op->nndc++];
}

static void clocks_sweep(struct op *op)
{
	size_t i, k = 0;

	for (i = 0; i < op->nndc; i++)
		if (op->ndc[i].seen) {
			op->ndc[i].seen = false;
			op->ndc[k++] = op->ndc[i];
		}
	op->nndc = k;
}

/* Deletes every key of node; 0 done, -ECANCELED a compare failed (logged), else an error. */
static int release(struct op *op, const struct op_view *v, const char *node, int64_t absent_ms,
		   struct diag *d)
{
	const struct store_kv **keys = calloc(v->l.n + 1, sizeof(*keys));
	char hb[STORE_KEY_MAX + 1], ipam[STORE_KEY_MAX + 1], ipam_sub[STORE_KEY_MAX + 1];
	char reg[STORE_KEY_MAX + 1], st[STORE_KEY_MAX + 1], cidr[64] = "none", who[256];
	struct store_cmp cmps[OP_TXN_KEYS + 1];
	struct store_op ops[OP_TXN_KEYS];
	size_t i, n = 0, nipam = 0, done;
	int err = 0;

	if (!keys)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	snprintf(hb, sizeof(hb), "%s%s", OP_HEARTBEAT_PREFIX, node);
	snprintf(ipam, sizeof(ipam), "/ciliate/ipam/%s", node);
	snprintf(ipam_sub, sizeof(ipam_sub), "/ciliate/ipam/%s/", node);
	snprintf(reg, sizeof(reg), "%s%s", OP_NODES_PREFIX, node);
	snprintf(st, sizeof(st), "%s%s", OP_NODE_STATUS_PFX, node);
	/* the IPAM allocations first, the records naming the node last */
	for (i = 0; i < v->l.n; i++)
		if (has_prefix(v->l.items[i].key, ipam_sub))
			keys[n++] = &v->l.items[i];
	nipam = n;
	for (i = 0; i < v->l.n; i++) {
		const struct store_kv *kv = &v->l.items[i];

		if (has_prefix(kv->key, OP_PODCIDRS_PREFIX)) {
			claim_node(kv, who, sizeof(who));
			if (strcmp(who, node))
				continue;
			snprintf(cidr, sizeof(cidr), "%s", kv->key + strlen(OP_PODCIDRS_PREFIX));
			if (strrchr(cidr, '-'))
				*strrchr(cidr, '-') = '/';
			keys[n++] = kv;
		} else if (!strcmp(kv->key, ipam)) {
			keys[n++] = kv;
			nipam++;
		} else if (!strcmp(kv->key, reg) || !strcmp(kv->key, st)) {
			keys[n++] = kv;
		}
	}
	if (!strcmp(cidr, "none") && op_view_get(v, reg)) {
		const struct store_kv *kv = op_view_get(v, reg);
		json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
		const char *c = json_string_value(json_object_get(j, "podCIDR"));

		if (c)
			snprintf(cidr, sizeof(cidr), "%s", c);
		json_decref(j);
	}
	for (done = 0; done < n && !err;) {
		size_t k = 0;

		cmps[k] = (struct store_cmp){hb, 0};
		for (; k < OP_TXN_KEYS && done + k < n; k++) {
			cmps[k + 1] = (struct store_cmp){keys[done + k]->key,
							 keys[done + k]->mod_revision};
			ops[k] = (struct store_op){STORE_OP_DELETE, keys[done + k]->key, NULL, 0, 0};
		}
		err = op_txn(op, cmps, k + 1, ops, k, d);
		done += k;
	}
	if (!err) {
		op->nodes_released++;
		op_log(op, "node %s released (pod CIDR %s, %zu IPAM records): no heartbeat for %lld s",
		       node, cidr, nipam, (long long)(absent_ms / 1000));
	} else if (err == -ECANCELED) {
		op_log(op, "node %s not released, the store changed meanwhile: %s", node, d->msg);
	}
	free(keys);
	return err;
}

int op_gc_nodes(struct op *op, const struct op_view *v, struct diag *d)
{
	int64_t now = op_now_ms(), timeout_ms = (int64_t)op->o.node_gc_timeout_s * 1000;
	char **names = NULL;
	size_t i, n = 0;
	int err = 0;

	if (!timeout_ms)
		return 0;
	if (node_names(v, &names, &n))
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		struct op_nodeclock *c;
		int rc;

		if (err || !op->leader || op_view_heartbeat(v, names[i]))
			continue; /* alive: its clock is dropped by the sweep */
		c = clock_get(op, names[i]);
		if (!c) {
			err = diag_fail_errno(d, -ENOMEM, "out of memory");
			continue;
		}
		c->seen = true;
		if (c->since_ms < 0) {
			c->since_ms = now;
			op_log(op, "node %s has no agent heartbeat; released after %d s", names[i],
			       op->o.node_gc_timeout_s);
		}
		if (now - c->since_ms <= timeout_ms)
			continue;
		rc = release(op, v, names[i], now - c->since_ms, d);
		if (!rc)
			c->seen = false;
		else if (rc != -ECANCELED)
			err = rc;
		if (rc == -ECANCELED)
			d->msg[0] = '\0';
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	clocks_sweep(op);
	return err;
}
