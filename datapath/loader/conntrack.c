/* SPDX-License-Identifier: Apache-2.0 */
#include "conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "common/names.h"

uint64_t ct_clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void ct_key_reverse(const struct ct_key *k, struct ct_key *out)
{
	*out = *k;
	out->saddr = k->daddr;
	out->daddr = k->saddr;
	out->sport = k->dport;
	out->dport = k->sport;
	out->scope = k->scope ^ 1; /* as the datapath: OUT <-> IN, CT_SVC <-> CT_SVC | 1 */
}

/* One side of a tuple as a number, exactly as the datapath orders them (bpf/lib/conntrack.h
 * ct_side): the address folded to 32 bits, above the port, each as loaded from memory. */
static uint64_t ct_side(const union ciliate_addr *a, uint16_t port)
{
	uint32_t fold = a->v6[0] ^ a->v6[1] ^ a->v6[2] ^ a->v6[3];

	return ((uint64_t)fold << 16) | port;
}

void ct_key_normalise(const struct ct_key *orig, struct ct_key *key, uint8_t *flags)
{
	/* a source above its destination: the slot holds the reversed member of the pair */
	if (ct_side(&orig->saddr, orig->sport) > ct_side(&orig->daddr, orig->dport)) {
		ct_key_reverse(orig, key);
		*flags = CT_F_REVERSED;
	} else {
		*key = *orig;
		*flags = 0;
	}
}

void ct_key_original(const struct ct_key *key, const struct ct_entry *e, struct ct_key *orig)
{
	if (e->flags & CT_F_REVERSED)
		ct_key_reverse(key, orig);
	else
		*orig = *key;
}

int ct_lookup_conn(int ct_fd, const struct ct_key *orig, struct ct_entry *e)
{
	struct ct_key key;
	uint8_t flags;

	ct_key_normalise(orig, &key, &flags);
	if (bpf_map_lookup_elem(ct_fd, &key, e) < 0)
		return -ENOENT;
	/* the slot holds one connection of the pair: is it this one or its reverse? */
	return (e->flags & CT_F_REVERSED) == flags ? 0 : -ENOENT;
}

int ct_foreach(int ct_fd, int (*fn)(const struct ct_key *k, const struct ct_entry *e, void *arg),
	       void *arg)
{
	struct ct_key key, next;
	struct ct_entry e;
	void *prev = NULL;
	int ret;

	while (bpf_map_get_next_key(ct_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(ct_fd, &key, &e))
			continue; /* deleted meanwhile */
		ret = fn(&key, &e, arg);
		if (ret)
			return ret;
	}
	return 0;
}

struct gc_ctx {
	uint64_t now;
	struct ct_key *doomed;
	size_t n, cap;
};

static int gc_collect(const struct ct_key *k, const struct ct_entry *e, void *arg)
{
	struct gc_ctx *g = arg;

	if (e->expires_ns > g->now)
		return 0;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 256;
		struct ct_key *n = realloc(g->doomed, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		g->doomed = n;
		g->cap = cap;
	}
	g->doomed[g->n++] = *k;
	return 0;
}

int ct_gc(int ct_fd, uint64_t now_ns, size_t *deleted, struct diag *d)
{
	struct gc_ctx g = { .now = now_ns };
	int err;

	*deleted = 0;
	/* collect first, delete after: deleting while iterating restarts hash walks */
	err = ct_foreach(ct_fd, gc_collect, &g);
	if (err) {
		free(g.doomed);
		return diag_fail_errno(d, err, "conntrack gc: %s", strerror(-err));
	}
	for (size_t i = 0; i < g.n; i++)
		if (bpf_map_delete_elem(ct_fd, &g.doomed[i]) == 0)
			(*deleted)++;
	free(g.doomed);
	return 0;
}

const char *ct_tcp_state_name(unsigned int state)
{
	static const char *const names[] = { "none", "syn_sent", "syn_recv", "established",
					     "closing", "closed" };

	return state < 6 ? names[state] : "unknown";
}

static void addr_str(uint8_t family, const union ciliate_addr *a, char *buf, size_t len)
{
	inet_ntop(family == CILIATE_AF_INET6 ? AF_INET6 : AF_INET, a->bytes, buf, (socklen_t)len);
}

void ct_format(const struct ct_key *key, const struct ct_entry *e, uint64_t now_ns, char *buf,
	       size_t len)
{
	char s[INET6_ADDRSTRLEN], dd[INET6_ADDRSTRLEN], pb[8];
	long long left = ((long long)e->expires_ns - (long long)now_ns) / 1000000000ll;
	struct ct_key orig;
	const struct ct_key *k = &orig;

	ct_key_original(key, e, &orig);
	addr_str(k->family, &k->saddr, s, sizeof(s));
	addr_str(k->family, &k->daddr, dd, sizeof(dd));
	snprintf(buf, len,
		 "%s %s:%u -> %s:%u %s expires=%llds state=%s packets=%llu/%llu bytes=%llu/%llu "
		 "src_identity=%u",
		 proto_name(k->proto, pb, sizeof(pb)), s, ntohs(k->sport), dd, ntohs(k->dport),
		 k->scope == CT_OUT ? "out" : k->scope == CT_SVC ? "svc" : "in", left,
		 ct_tcp_state_name(e->tcp_state), (unsigned long long)e->packets_fwd,
		 (unsigned long long)e->packets_rev, (unsigned long long)e->bytes_fwd,
		 (unsigned long long)e->bytes_rev, e->src_identity);
	/* service connections: the backend chosen (CT_SVC) and the frontend replies get */
	if (k->scope == CT_SVC)
		snprintf(buf + strlen(buf), len - strlen(buf), " backend_id=%u rev_nat=%u",
			 e->backend_id, e->rev_nat_index);
	else if (e->rev_nat_index)
		snprintf(buf + strlen(buf), len - strlen(buf), " rev_nat=%u", e->rev_nat_index);
}
