/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transparent encryption with IPsec (docs/IPSEC.md, docs/ENCRYPTION.md), run from every
 * reconcile when the Cluster says `encryption: ipsec` (or cilium-config enable-ipsec):
 *
 *   keys      the key file (cilium-config ipsec-key-file, default /etc/ipsec/keys, Cilium's
 *             format: datapath/encrypt/ipsec_keys.h), read again whenever it changes (the
 *             agent's 1 s tick looks at it); its last line is the current key. A file that
 *             does not parse is reported and the keys in force stay.
 *   rotation  a new current key id keeps the previous key for ipsec-key-rotation-duration
 *             (default 5m, as Cilium): inbound SAs for both, outbound to a peer with the key
 *             that peer announces (it may not have rotated yet)
 *   announce  /ciliate/encryption/ipsec/<node> = {"node","keyId"}: the key id this node uses
 *   kernel    XFRM states and policies (datapath/encrypt/xfrm.c): pod CIDR to pod CIDR between
 *             the node addresses in native routing (tunnel mode), node to node in tunnel
 *             routing (transport mode: the VXLAN packets are what crosses the fabric)
 *
 * A kernel without ESP (this machine's) fails the reconcile with the reason: pod traffic
 * never leaves in plaintext because the kernel cannot encrypt it; `status` and `encrypt
 * status` show why. The datapath needs no program for IPsec: the kernel's XFRM output path
 * encrypts what the policies select, and decrypts on the way in.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "encrypt/ipsec_keys.h"
#include "encrypt/xfrm.h"
#include "model/ipaddr.h"

#define IPSEC_STORE_PREFIX "/ciliate/encryption/ipsec/"
#define IPSEC_KEY_FILE_DEFAULT "/etc/ipsec/keys"
#define IPSEC_ROTATION_DEFAULT_MS (5 * 60 * 1000)

struct agent_ipsec {
	bool enabled;
	bool probed; /* the kernel can do ESP */
	char key_file[512];
	struct stat key_st; /* of the file last read */
	bool have_keys;
	struct ipsec_key current, previous;
	bool have_previous;
	int64_t previous_until_ms; /* CLOCK_MONOTONIC */
	int64_t rotation_ms;
	char key_error[1024]; /* the key file's last problem ("": none) */
	char error[1024];     /* the last sync's failure */
	struct ipsec_sync_result last;
	uint64_t syncs;
	bool announced;
};

static struct agent_ipsec *ipsec_of(struct agent *a)
{
	if (!a->ipsec)
		a->ipsec = calloc(1, sizeof(*a->ipsec));
	return a->ipsec;
}

static bool config_true(const struct cluster_model *m, const char *key)
{
	const char *v = cluster_config(m, key);

	return v && (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1"));
}

/* "5m", "30s", "1h", "5m0s", "300" (seconds) -> ms; -1 when malformed. */
static int64_t duration_ms(const char *s)
{
	int64_t total = 0, n;
	char *end;

	if (!*s)
		return -1;
	while (*s) {
		n = strtoll(s, &end, 10);
		if (end == s || n < 0)
			return -1;
		switch (*end) {
		case 'h': total += n * 3600000; end++; break;
		case 'm': total += n * 60000; end++; break;
		case 's': total += n * 1000; end++; break;
		case '\0': total += n * 1000; break;
		default: return -1;
		}
		s = end;
	}
	return total;
}

/* Reads the key file when it changed; a new current key starts a rotation. */
static int load_keys(struct agent *a, struct agent_ipsec *s, struct diag *d)
{
	struct ipsec_keyset ks;
	const struct ipsec_key *cur;
	struct diag kd = { 0 };
	struct stat st;

	if (stat(s->key_file, &st)) {
		snprintf(s->key_error, sizeof(s->key_error), "%s: %s", s->key_file, strerror(errno));
		goto bad;
	}
	if (s->have_keys && st.st_ino == s->key_st.st_ino && st.st_size == s->key_st.st_size &&
	    st.st_mtim.tv_sec == s->key_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == s->key_st.st_mtim.tv_nsec)
		return 0;
	s->key_st = st;
	if (ipsec_keys_load(s->key_file, &ks, &kd)) {
		snprintf(s->key_error, sizeof(s->key_error), "%s", kd.msg);
		goto bad;
	}
	if (ks.warning[0])
		agent_log(a, "ipsec: %s", ks.warning);
	cur = ipsec_keys_current(&ks);
	s->key_error[0] = '\0';
	if (s->have_keys && cur->id != s->current.id) {
		s->previous = s->current;
		s->have_previous = true;
		s->previous_until_ms = agent_now_ms() + s->rotation_ms;
		agent_log(a, "ipsec: key rotation %u -> %u (key %u kept for %lld ms)",
			  s->current.id, cur->id, s->previous.id, (long long)s->rotation_ms);
	} else if (!s->have_keys) {
		agent_log(a, "ipsec: key %u from %s", cur->id, s->key_file);
	}
	s->current = *cur;
	s->have_keys = true;
	return 0;
bad:
	if (s->have_keys) { /* the keys in force stay */
		agent_log(a, "ipsec: %s (keeping key %u)", s->key_error, s->current.id);
		return 0;
	}
	return diag_fail_errno(d, -EINVAL, "%s", s->key_error);
}

/* The key id each peer announces (0: none yet). */
static uint8_t peer_key_id(struct agent *a, const char *node)
{
	char key[STORE_KEY_MAX + 1];
	const struct agent_obj *o;
	json_int_t id = 0;
	json_t *j;

	snprintf(key, sizeof(key), "%s%s", IPSEC_STORE_PREFIX, node);
	o = agent_obj_find(a, key);
	if (!o)
		return 0;
	j = json_loadb(o->value, o->len, 0, NULL);
	id = json_integer_value(json_object_get(j, "keyId"));
	json_decref(j);
	return id >= IPSEC_KEY_ID_MIN && id <= IPSEC_KEY_ID_MAX ? (uint8_t)id : 0;
}

static int announce(struct agent *a, struct agent_ipsec *s, struct diag *d)
{
	char key[STORE_KEY_MAX + 1], val[256];
	const struct agent_obj *o;

	snprintf(key, sizeof(key), "%s%s", IPSEC_STORE_PREFIX, a->o.node);
	snprintf(val, sizeof(val), "{\"node\":\"%s\",\"keyId\":%u}", a->o.node, s->current.id);
	o = agent_obj_find(a, key);
	if (o && o->len == strlen(val) && !memcmp(o->value, val, o->len))
		return 0;
	s->announced = true;
	return store_put(a->st, key, val, strlen(val), 0, STORE_ANY_REV, NULL, d);
}

static void disable(struct agent *a, struct agent_ipsec *s)
{
	char key[STORE_KEY_MAX + 1];
	struct diag d = { 0 };
	unsigned n = 0;

	if (s->probed && !xfrm_ipsec_flush_ours(&n, &d))
		agent_log(a, "ipsec: encryption off: %u SA(s) and policies removed", n);
	if (s->announced && a->st) {
		snprintf(key, sizeof(key), "%s%s", IPSEC_STORE_PREFIX, a->o.node);
		store_delete(a->st, key, 0, NULL, &d);
	}
	memset(s, 0, sizeof(*s));
}

int agent_ipsec_sync(struct agent *a, struct diag *d)
{
	struct agent_ipsec *s = ipsec_of(a);
	const struct cluster_model *m = a->model;
	const struct m_node *me;
	struct ipsec_peer *peers = NULL;
	struct ipsec_sync_spec spec;
	const char *v;
	size_t i, n = 0;
	int err;

	if (!s)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	if (m->cluster.encryption != ENCRYPTION_IPSEC && !config_true(m, "enable-ipsec")) {
		if (s->enabled)
			disable(a, s);
		return 0;
	}
	s->enabled = true;
	s->syncs++;
	v = cluster_config(m, "ipsec-key-file");
	snprintf(s->key_file, sizeof(s->key_file), "%s", v && *v ? v : IPSEC_KEY_FILE_DEFAULT);
	v = cluster_config(m, "ipsec-key-rotation-duration");
	s->rotation_ms = v ? duration_ms(v) : IPSEC_ROTATION_DEFAULT_MS;
	if (s->rotation_ms < 0) {
		err = diag_fail(d, "cilium-config ipsec-key-rotation-duration: \"%s\" is not a "
			       "duration (e.g. 5m, 30s)", v);
		goto fail;
	}
	if (!s->probed) {
		err = xfrm_ipsec_probe(d);
		if (err) {
			diag_prefix(d, "this kernel cannot do IPsec, so pod traffic between nodes "
				    "would leave in plaintext: not forwarding it unencrypted");
			goto fail;
		}
		s->probed = true;
	}
	err = load_keys(a, s, d);
	if (err)
		goto fail;
	if (s->have_previous && agent_now_ms() >= s->previous_until_ms) {
		agent_log(a, "ipsec: key %u's grace period is over: removed", s->previous.id);
		s->have_previous = false;
	}
	me = cluster_find_node(m, a->o.node);
	if (!me) {
		err = diag_fail(d, "node %s is not in the Cluster", a->o.node);
		goto fail;
	}
	peers = calloc(m->cluster.nnodes + 1, sizeof(*peers));
	if (!peers) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < m->cluster.nnodes; i++) {
		const struct m_node *o = &m->cluster.nodes[i];

		if (o == me)
			continue;
		peers[n].node_ip.s_addr = o->ip;
		peers[n].pod_cidr.s_addr = o->pod_cidr;
		peers[n].pod_prefix = o->pod_cidr_len;
		peers[n].key_id = peer_key_id(a, o->name);
		n++;
	}
	memset(&spec, 0, sizeof(spec));
	spec.local_ip.s_addr = me->ip;
	spec.local_pod_cidr.s_addr = me->pod_cidr;
	spec.local_pod_prefix = me->pod_cidr_len;
	/* tunnel routing: the VXLAN packets between the nodes are what crosses the fabric */
	spec.mode = m->cluster.routing == ROUTING_TUNNEL ? IPSEC_MODE_TRANSPORT : IPSEC_MODE_TUNNEL;
	spec.peers = peers;
	spec.n_peers = n;
	spec.current = &s->current;
	spec.previous = s->have_previous ? &s->previous : NULL;
	err = xfrm_ipsec_sync(&spec, &s->last, d);
	free(peers);
	if (!err)
		err = announce(a, s, d);
	if (err)
		goto fail;
	s->error[0] = '\0';
	return 0;
fail:
	diag_prefix(d, "ipsec");
	snprintf(s->error, sizeof(s->error), "%.1000s", d->msg);
	return err;
}

bool agent_ipsec_changed(struct agent *a)
{
	struct agent_ipsec *s = a->ipsec;
	struct stat st;

	if (!s || !s->enabled || !s->have_keys)
		return false;
	if (s->have_previous && agent_now_ms() >= s->previous_until_ms)
		return true;
	if (stat(s->key_file, &st))
		return false; /* reported by the next sync; the keys in force stay */
	return st.st_ino != s->key_st.st_ino || st.st_size != s->key_st.st_size ||
	       st.st_mtim.tv_sec != s->key_st.st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != s->key_st.st_mtim.tv_nsec;
}

bool agent_ipsec_enabled(const struct agent *a)
{
	return a->ipsec && a->ipsec->enabled;
}

json_t *agent_ipsec_status(struct agent *a)
{
	struct agent_ipsec *s = ipsec_of(a);
	struct ipsec_status st;
	struct diag d = { 0 };
	char ip[INET_ADDRSTRLEN];
	json_t *r, *sas;
	size_t i;

	if (!s || !s->enabled)
		return json_pack("{s:s}", "mode", "disabled");
	r = json_pack("{s:s, s:s, s:s, s:s}", "mode", "ipsec", "keyFile", s->key_file, "error",
		      s->error, "keyFileError", s->key_error);
	json_object_set_new(r, "currentKeyId",
			    s->have_keys ? json_integer(s->current.id) : json_null());
	json_object_set_new(r, "previousKeyId",
			    s->have_previous ? json_integer(s->previous.id) : json_null());
	if (s->have_previous)
		json_object_set_new(r, "previousKeyRemovedInMs",
				    json_integer(s->previous_until_ms - agent_now_ms()));
	if (!s->probed || xfrm_ipsec_status(&st, &d)) {
		json_object_set_new(r, "xfrmError", json_string(s->probed ? d.msg : s->error));
		return r;
	}
	json_object_set_new(r, "keysInUse", json_integer((json_int_t)st.keys_in_use));
	json_object_set_new(r, "maxSeq", json_integer((json_int_t)st.max_seq));
	json_object_set_new(r, "maxSeqLimit", json_integer((json_int_t)st.max_seq_limit));
	json_object_set_new(r, "errors", st.errors_known ? json_integer((json_int_t)st.errors)
							 : json_null());
	json_object_set_new(r, "policies", json_integer((json_int_t)st.n_policies));
	sas = json_array();
	for (i = 0; i < st.n_sas; i++) {
		const struct xfrm_sa_info *sa = &st.sas[i];
		char src[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &sa->src, src, sizeof(src));
		inet_ntop(AF_INET, &sa->dst, ip, sizeof(ip));
		json_array_append_new(sas, json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
						     "spi", (json_int_t)sa->spi, "direction",
						     sa->dir == XFRM_SA_OUT ? "out" : "in", "src",
						     src, "dst", ip, "algorithm", sa->alg, "oseq",
						     (json_int_t)sa->oseq, "seq", (json_int_t)sa->seq,
						     "bytes", (json_int_t)sa->bytes));
	}
	json_object_set_new(r, "sas", sas);
	return r;
}

void agent_ipsec_free(struct agent *a)
{
	free(a->ipsec);
	a->ipsec = NULL;
}
