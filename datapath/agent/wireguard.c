/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transparent encryption with WireGuard (docs/ENCRYPTION.md), run from every reconcile:
 *
 *   key     the node's private key lives in <state dir>/wireguard/private.key (made on first
 *           use, kept across restarts: delete it to re-key); its public key is published at
 *           /ciliate/encryption/wireguard/<node> as {"node","publicKey","endpoint"}, like
 *           Cilium's network.cilium.io/wg-pub-key annotation on the CiliumNode
 *   device  ciliate_wg0, UDP 51871: the kernel's WireGuard where it has the module (made
 *           and configured over netlink, encrypt/wg_netlink.c), else wireguard-go started by
 *           the agent in the node's network namespace (wg_device.c: its UAPI socket); either
 *           is adopted by the next agent after a restart (it stays, as the pinned maps do)
 *   peers   one per other node of the cluster that published a key: endpoint = its address,
 *           allowed IPs = its pod CIDR (and in tunnel routing its address, which the VXLAN
 *           packets come from); added and removed one by one, so that a node joining or
 *           leaving does not reset the other peers' sessions
 *   marks   every ipcache entry hosted by a configured peer's node gets encrypt_key 1, which
 *           sends pod traffic for it into the device (bpf/lib/encrypt.h); the node config
 *           carries the device's ifindex and strict mode
 *
 * The device is configured before the maps are written, so a mark never points at a peer the
 * device does not have yet.
 */
#include "agent.h"
#include "agent/wg_device.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "model/ipaddr.h"

#define WG_STORE_PREFIX "/ciliate/encryption/wireguard/"
#define WG_PRIME_KEEPALIVE_S 25 /* only for the moment of priming (prime_handshakes) */
#define WG_REKEY_SETTLE_MS 150	/* a peer's new key is installed this much after it is seen */

struct wg_want {
	char node[64];
	uint8_t pub[WG_KEY_LEN];
	uint32_t ip; /* network order */
	uint32_t pod_cidr;
	uint8_t pod_cidr_len;
	/* configured peers only (not compared by same_peer): for the first handshake */
	int64_t added_ms; /* when this key of the peer was configured (CLOCK_MONOTONIC) */
	bool primed;	  /* a handshake was started for it (prime_handshakes) */
};

struct agent_wg {
	bool enabled;
	bool strict;
	uint32_t strict_cidr; /* network order */
	uint8_t strict_cidr_len;
	char dir[300];
	char sock[340];
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	bool have_key;
	bool key_set;	     /* the device holds priv */
	bool kernel;	     /* the kernel's WireGuard (netlink); else wireguard-go (UAPI) */
	pid_t pid;	     /* wireguard-go (0: not started by this agent) */
	uint32_t ifindex;    /* ciliate_wg0 (0: none) */
	char published[600]; /* the store value written last */
	struct wg_want *peers; /* configured on the device, sorted by node */
	bool peers_tunnel;     /* ... with the node addresses as allowed IPs (tunnel routing) */
	size_t npeers;
	char error[1024]; /* the last sync's failure ("": none) */
	uint64_t syncs, peer_changes;
};

static struct agent_wg *wg_of(struct agent *a)
{
	if (!a->wg)
		a->wg = calloc(1, sizeof(*a->wg));
	return a->wg;
}

static bool config_true(const struct cluster_model *m, const char *key)
{
	const char *v = cluster_config(m, key);

	return v && (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "1"));
}

/* WireGuard wanted by the model: `encryption: wireguard`, or enable-wireguard. */
static bool wg_wanted(const struct cluster_model *m)
{
	return m->cluster.encryption == ENCRYPTION_WIREGUARD || config_true(m, "enable-wireguard");
}

/* Strict mode from the cilium-config keys (both the 1.15 names and the 1.19 egress ones);
 * the CIDR defaults to the cluster's podCIDR. */
static int strict_config(struct agent_wg *w, const struct cluster_model *m, struct diag *d)
{
	const char *cidr = cluster_config(m, "encryption-strict-mode-cidr");
	const char *key = "encryption-strict-mode-cidr";

	w->strict = config_true(m, "enable-encryption-strict-mode") ||
		    config_true(m, "enable-encryption-strict-mode-egress");
	if (!cidr || !*cidr) {
		cidr = cluster_config(m, "encryption-strict-egress-cidr");
		key = "encryption-strict-egress-cidr";
	}
	if (!w->strict)
		return 0;
	if (!cidr || !*cidr) {
		w->strict_cidr = m->cluster.pod_cidr;
		w->strict_cidr_len = m->cluster.pod_cidr_len;
		return 0;
	}
	if (cidr4_parse(cidr, false, &w->strict_cidr, &w->strict_cidr_len))
		return diag_fail(d, "cilium-config %s: \"%s\" is not an IPv4 CIDR", key, cidr);
	return 0;
}

static bool pid_alive(pid_t pid)
{
	int status;

	if (pid <= 0)
		return false;
	if (waitpid(pid, &status, WNOHANG) == pid)
		return false; /* our child, exited: reaped */
	return kill(pid, 0) == 0;
}

/* One configuration change, to whichever implementation runs the device. */
static int dev_set(const struct agent_wg *w, const struct wg_nl_config *c, struct diag *d)
{
	return w->kernel ? wg_nl_set(WG_IFNAME, c, d) : wg_uapi_set_config(w->sock, c, d);
}

/* The device read back; *key_set tells whether it holds w->priv. */
static int dev_get(const struct agent_wg *w, struct wg_dev_state *st, bool *key_set,
		   struct diag *d)
{
	struct wg_nl_state nl;
	int err;

	if (!w->kernel) {
		err = wg_uapi_get(w->sock, st, d);
		if (!err && key_set)
			*key_set = st->has_private_key &&
				   !memcmp(st->private_key, w->priv, WG_KEY_LEN);
		return err;
	}
	err = wg_nl_get(WG_IFNAME, &nl, d);
	if (err)
		return err;
	if (key_set) /* the kernel gives back the public key only */
		*key_set = nl.has_private_key && nl.has_public_key &&
			   !memcmp(nl.public_key, w->pub, WG_KEY_LEN);
	err = wg_dev_state_from_nl(&nl, st) ? diag_fail_errno(d, -ENOMEM, "out of memory") : 0;
	wg_nl_state_free(&nl);
	return err;
}

/* The device answers (it may be a previous agent's wireguard-go, or a kernel device). */
static bool device_answers(struct agent_wg *w)
{
	struct wg_dev_state st;
	struct diag quiet = { 0 };
	bool key_set = false;

	if (dev_get(w, &st, &key_set, &quiet))
		return false;
	w->key_set = key_set;
	wg_dev_state_free(&st);
	return true;
}

static int write_pidfile(const struct agent_wg *w)
{
	char path[400];
	FILE *f;

	snprintf(path, sizeof(path), "%s/wireguard-go.pid", w->dir);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)w->pid);
	return fclose(f) ? -EIO : 0;
}

static pid_t read_pidfile(const struct agent_wg *w)
{
	char path[400];
	FILE *f;
	int pid = 0;

	snprintf(path, sizeof(path), "%s/wireguard-go.pid", w->dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid;
}

/* Writes v to /proc/sys/<path> (best effort: logged). */
static void sysctl_set(struct agent *a, const char *path, const char *v)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "/proc/sys/%s", path);
	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		agent_log(a, "wireguard: cannot set %s: %s", p, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/*
 * The device exists and answers: the kernel's device, or wireguard-go. An existing one is
 * adopted (a previous agent's); otherwise a kernel device is made where the kernel has
 * WireGuard, and wireguard-go started where it has not.
 */
static int ensure_device(struct agent *a, struct agent_wg *w, struct diag *d)
{
	struct diag kd = { 0 };
	pid_t pid;
	int err;

	if (w->kernel && device_answers(w))
		goto up;
	if (!w->kernel && w->pid && pid_alive(w->pid) && device_answers(w))
		goto up;
	if (!w->pid && !w->kernel) {
		if (device_answers(w)) {
			w->pid = read_pidfile(w);
			agent_log(a, "wireguard: adopted the running %s (wireguard-go pid %d)",
				  WG_IFNAME, (int)w->pid);
			goto up;
		}
		w->kernel = true;
		if (device_answers(w)) {
			agent_log(a, "wireguard: adopted the kernel's %s", WG_IFNAME);
			goto up;
		}
		w->kernel = false;
	}
	w->key_set = false;
	w->npeers = 0;
	err = wg_nl_link_add(WG_IFNAME, WG_MTU, &kd);
	if (!err) {
		w->kernel = true;
		w->pid = 0;
		agent_log(a, "wireguard: made the kernel's %s", WG_IFNAME);
		goto up;
	}
	w->kernel = false;
	if (err != -EOPNOTSUPP)
		agent_log(a, "wireguard: kernel device: %s; starting wireguard-go", kd.msg);
	pid = wg_go_spawn(w->dir, d);
	if (pid < 0)
		return (int)pid;
	w->pid = pid;
	write_pidfile(w);
	agent_log(a, "wireguard: started wireguard-go for %s (pid %d, socket %s)", WG_IFNAME,
		  (int)pid, w->sock);
up:
	w->ifindex = agent_ifindex(a, WG_IFNAME);
	if (!w->ifindex)
		return diag_fail_errno(d, -ENODEV, "wireguard: %s does not exist in this node's "
				       "namespace although its socket answers", WG_IFNAME);
	if (agent_link_up(a, WG_IFNAME, WG_MTU, d))
		return -EIO;
	/* decrypted packets arrive on the device from addresses routed elsewhere */
	sysctl_set(a, "net/ipv4/conf/" WG_IFNAME "/rp_filter", "0");
	return 0;
}

static int want_cmp(const void *x, const void *y)
{
	return strcmp(((const struct wg_want *)x)->node, ((const struct wg_want *)y)->node);
}

/* The peers the store and the model give: other nodes of the model with a published key. */
static int wanted_peers(struct agent *a, struct wg_want **out, size_t *n)
{
	size_t plen = strlen(WG_STORE_PREFIX), i = agent_objs_lower_bound(a, WG_STORE_PREFIX);
	struct wg_want *v = NULL;
	size_t cnt = 0;

	for (; i < a->nobjs && !strncmp(a->objs[i]->key, WG_STORE_PREFIX, plen); i++) {
		const char *node = a->objs[i]->key + plen;
		const struct m_node *mn = cluster_find_node(a->model, node);
		json_t *j;
		const char *key;
		uint8_t pub[WG_KEY_LEN];
		struct wg_want *nv;

		if (!mn || !strcmp(node, a->o.node))
			continue;
		j = json_loadb(a->objs[i]->value, a->objs[i]->len, 0, NULL);
		key = json_string_value(json_object_get(j, "publicKey"));
		if (!key || wg_key_from_b64(key, pub)) {
			agent_log(a, "wireguard: %s holds no valid publicKey: node %s gets no peer",
				  a->objs[i]->key, node);
			json_decref(j);
			continue;
		}
		json_decref(j);
		nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		memset(&v[cnt], 0, sizeof(v[cnt]));
		snprintf(v[cnt].node, sizeof(v[cnt].node), "%s", node);
		memcpy(v[cnt].pub, pub, WG_KEY_LEN);
		v[cnt].ip = mn->ip;
		v[cnt].pod_cidr = mn->pod_cidr;
		v[cnt].pod_cidr_len = mn->pod_cidr_len;
		cnt++;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), want_cmp);
	*out = v;
	*n = cnt;
	return 0;
}

static const struct wg_want *find_peer(const struct wg_want *v, size_t n, const char *node)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(v[i].node, node))
			return &v[i];
	return NULL;
}

static bool same_peer(const struct wg_want *x, const struct wg_want *y)
{
	return !memcmp(x->pub, y->pub, WG_KEY_LEN) && x->ip == y->ip &&
	       x->pod_cidr == y->pod_cidr && x->pod_cidr_len == y->pod_cidr_len;
}

/* A peer's entry for the device: endpoint, allowed IPs (its pod CIDR; in tunnel routing also
 * its address, which the VXLAN packets come from). allowed holds 2. */
static void peer_entry(struct wg_nl_peer *e, struct wg_nl_allowed_ip *allowed,
		       const struct wg_want *p, bool tunnel, bool prime)
{
	memset(e, 0, sizeof(*e));
	memset(allowed, 0, 2 * sizeof(*allowed));
	memcpy(e->public_key, p->pub, WG_KEY_LEN);
	e->has_endpoint = true;
	e->endpoint.s_addr = p->ip;
	e->endpoint_port = WG_PORT;
	/* a keepalive turned on is sent at once: see prime_handshakes() */
	e->keepalive = prime ? WG_PRIME_KEEPALIVE_S : -1;
	e->replace_allowed_ips = true;
	allowed[0].family = AF_INET;
	allowed[0].ip.s_addr = p->pod_cidr;
	allowed[0].prefix = p->pod_cidr_len;
	allowed[1].family = AF_INET;
	allowed[1].ip.s_addr = p->ip;
	allowed[1].prefix = 32;
	e->allowed_ips = allowed;
	e->n_allowed_ips = tunnel ? 2 : 1;
}

/*
 * Re-keying without a stall. WireGuard retries a handshake only 5 s (REKEY_TIMEOUT) after the
 * last one it started, and two handshakes that cross (each side answers the other's, and the
 * answer to its own is then dropped) also wait those 5 s. When a node re-keys:
 *   - the re-keyed node starts a handshake with every peer at once, before it publishes the
 *     new key: the peers reject it (they know the old key), and it starts no other for 5 s;
 *   - each peer, once it learns the new key, starts one at once, which the re-keyed node
 *     accepts: exactly one handshake per pair, none crossing.
 * "At once" is a keepalive interval given in the set that installs the key (turning it on
 * sends a keepalive, which needs a handshake); this second set turns it off again
 * (persistent keepalives stay Cilium's default: off). New peers (a node joining, the first
 * start) are not primed: a handshake starts with the first packet, from either side.
 */
static void prime_handshakes(struct agent *a, struct agent_wg *w, const struct wg_want *want,
			     size_t n, const bool *added)
{
	struct wg_nl_config c = { .listen_port = -1 };
	struct wg_nl_peer *e = calloc(n + 1, sizeof(*e));
	struct diag d = { 0 };
	size_t i;

	if (!e)
		return;
	for (i = 0; i < n; i++) {
		if (!added[i])
			continue;
		memcpy(e[c.n_peers].public_key, want[i].pub, WG_KEY_LEN);
		e[c.n_peers].update_only = true;
		e[c.n_peers].keepalive = 0;
		c.n_peers++;
	}
	c.peers = e;
	if (c.n_peers && dev_set(w, &c, &d))
		agent_log(a, "wireguard: %s", d.msg);
	free(e);
}

/* Brings the device's private key and peers in line with want (one UAPI set). rekeyed: this
 * node's key replaces one it had published (prime_handshakes). */
static int configure(struct agent *a, struct agent_wg *w, struct wg_want *want, size_t n,
		     bool rekeyed, struct diag *d)
{
	/* the overlay device exists where the node routes through the tunnel (attach.c) */
	bool tunnel = a->model->cluster.routing == ROUTING_TUNNEL &&
		      agent_ifindex(a, CILIATE_OVERLAY_DEV) != 0;
	struct wg_nl_config c = { .listen_port = -1 };
	struct wg_want *prev;
	size_t nprev;
	struct wg_nl_peer *e = calloc(n + w->npeers + 1, sizeof(*e));
	struct wg_nl_allowed_ip *allowed = calloc(2 * (n + 1), sizeof(*allowed));
	bool changed = false, peer_rekeyed = false;
	bool *added = calloc(n + 1, sizeof(bool)); /* primed */
	size_t i;
	int err;

	if (!e || !allowed || !added) {
		free(e);
		free(allowed);
		free(added);
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	}
	c.peers = e;
	if (!w->key_set) {
		c.has_private_key = true;
		memcpy(c.private_key, w->priv, WG_KEY_LEN);
		c.listen_port = WG_PORT;
		c.replace_peers = true;
		w->npeers = 0; /* every peer again */
		changed = true;
	}
	if (tunnel != w->peers_tunnel) /* the overlay came or went: every peer's allowed IPs */
		w->npeers = 0;
	for (i = 0; i < w->npeers; i++) {
		const struct wg_want *p = find_peer(want, n, w->peers[i].node);

		if (p && same_peer(p, &w->peers[i]))
			continue;
		memcpy(e[c.n_peers].public_key, w->peers[i].pub, WG_KEY_LEN);
		e[c.n_peers++].remove = true;
		changed = true;
	}
	for (i = 0; i < n; i++) {
		const struct wg_want *p = find_peer(w->peers, w->npeers, want[i].node);

		if (p && same_peer(p, &want[i]))
			continue;
		/* a re-key, of this node or of the peer */
		added[i] = (rekeyed && !w->key_set) || (p && memcmp(p->pub, want[i].pub, WG_KEY_LEN));
		peer_rekeyed = peer_rekeyed || (p && memcmp(p->pub, want[i].pub, WG_KEY_LEN));
		peer_entry(&e[c.n_peers++], &allowed[2 * i], &want[i], tunnel, added[i]);
		changed = true;
	}
	/* a peer re-keyed: the handshake it started before publishing the key (to be rejected,
	 * prime_handshakes) may still wait in the device's socket; installing the new key first
	 * would accept it, and it would cross ours */
	if (peer_rekeyed)
		usleep(WG_REKEY_SETTLE_MS * 1000);
	err = changed ? dev_set(w, &c, d) : 0;
	free(e);
	free(allowed);
	if (!err && changed)
		prime_handshakes(a, w, want, n, added);
	if (err) {
		free(added);
		return err;
	}
	if (changed) {
		w->peer_changes++;
		agent_log(a, "wireguard: %s configured: %zu peer(s)", WG_IFNAME, n);
	}
	w->key_set = true;
	w->peers_tunnel = tunnel;
	prev = w->peers;
	nprev = w->npeers;
	w->peers = n ? malloc(n * sizeof(*want)) : NULL;
	if (n && !w->peers) {
		w->peers = prev;
		w->key_set = false;
		free(added);
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		const struct wg_want *old = find_peer(prev, nprev, want[i].node);

		w->peers[i] = want[i];
		if (old && !added[i] && !memcmp(old->pub, want[i].pub, WG_KEY_LEN)) {
			w->peers[i].added_ms = old->added_ms; /* the same peer, still */
			w->peers[i].primed = old->primed;
		} else {
			w->peers[i].added_ms = agent_now_ms();
			w->peers[i].primed = added[i];
		}
	}
	free(prev);
	free(added);
	w->npeers = n;
	return 0;
}

/* This node published a key other than its current one (it re-keys). */
static bool published_other_key(struct agent *a, const struct agent_wg *w)
{
	char key[STORE_KEY_MAX + 1];
	const struct agent_obj *o;
	uint8_t pub[WG_KEY_LEN];
	const char *b64;
	bool other = false;
	json_t *j;

	snprintf(key, sizeof(key), "%s%s", WG_STORE_PREFIX, a->o.node);
	o = agent_obj_find(a, key);
	if (!o)
		return false;
	j = json_loadb(o->value, o->len, 0, NULL);
	b64 = json_string_value(json_object_get(j, "publicKey"));
	other = b64 && !wg_key_from_b64(b64, pub) && memcmp(pub, w->pub, WG_KEY_LEN);
	json_decref(j);
	return other;
}

/* Publishes this node's public key (only when it differs from what was written last). */
static int publish(struct agent *a, struct agent_wg *w, struct diag *d)
{
	char key[STORE_KEY_MAX + 1], b64[WG_KEY_B64_LEN + 1], ip[INET_ADDRSTRLEN], val[600];
	const struct m_node *me = cluster_find_node(a->model, a->o.node);
	const struct agent_obj *o;
	int err;

	wg_key_to_b64(w->pub, b64);
	snprintf(val, sizeof(val), "{\"node\":\"%s\",\"publicKey\":\"%s\",\"endpoint\":\"%s:%d\"}",
		 a->o.node, b64, ip4_format(me ? me->ip : 0, ip), WG_PORT);
	snprintf(key, sizeof(key), "%s%s", WG_STORE_PREFIX, a->o.node);
	o = agent_obj_find(a, key);
	if (o && o->len == strlen(val) && !memcmp(o->value, val, o->len)) {
		snprintf(w->published, sizeof(w->published), "%s", val);
		return 0;
	}
	err = store_put(a->st, key, val, strlen(val), 0, STORE_ANY_REV, NULL, d);
	if (err)
		return err;
	snprintf(w->published, sizeof(w->published), "%s", val);
	agent_log(a, "wireguard: published public key %s at %s", b64, key);
	return 0;
}

/* encrypt_key 1 on every ipcache entry hosted by a configured peer's node, 0 elsewhere. */
static void mark_ipcache(struct agent *a, const struct agent_wg *w)
{
	size_t i, j;

	for (i = 0; i < a->ns.nipcache; i++) {
		struct ipcache_value *v = &a->ns.ipcache[i].val;

		v->encrypt_key = 0;
		if (!w->enabled || !v->tunnel_endpoint)
			continue;
		for (j = 0; j < w->npeers; j++)
			if (w->peers[j].ip == v->tunnel_endpoint) {
				v->encrypt_key = 1;
				break;
			}
	}
}

/* Encryption turned off: stop the device this agent runs and withdraw the key. */
static void disable(struct agent *a, struct agent_wg *w)
{
	char key[STORE_KEY_MAX + 1];
	struct diag d = { 0 };
	pid_t pid = w->pid ? w->pid : read_pidfile(w);

	if (w->kernel) {
		if (!wg_nl_link_del(WG_IFNAME, &d))
			agent_log(a, "wireguard: encryption off: removed the kernel's %s", WG_IFNAME);
	} else if (pid > 0 && device_answers(w)) {
		kill(pid, SIGTERM);
		agent_log(a, "wireguard: encryption off: stopped wireguard-go (pid %d)", (int)pid);
	}
	if (w->published[0] && a->st) {
		snprintf(key, sizeof(key), "%s%s", WG_STORE_PREFIX, a->o.node);
		store_delete(a->st, key, 0, NULL, &d);
	}
	w->published[0] = '\0';
	w->pid = 0;
	w->kernel = false;
	w->ifindex = 0;
	w->key_set = false;
	w->npeers = 0;
}

int agent_wireguard_sync(struct agent *a, struct diag *d)
{
	struct agent_wg *w = wg_of(a);
	struct wg_want *want = NULL;
	bool created;
	size_t n = 0;
	int err;

	if (!w)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	if (!w->dir[0]) {
		snprintf(w->dir, sizeof(w->dir), "%s/wireguard", a->state_dir);
		wg_sock_path(w->dir, w->sock, sizeof(w->sock));
	}
	w->syncs++;
	if (!wg_wanted(a->model)) {
		if (w->enabled)
			disable(a, w);
		w->enabled = false;
		w->strict = false;
		mark_ipcache(a, w);
		return 0;
	}
	w->enabled = true;
	err = strict_config(w, a->model, d);
	if (err)
		goto fail;
	if (!w->have_key) {
		char path[400];

		if (mkdir(w->dir, 0700) && errno != EEXIST) {
			err = diag_fail_errno(d, -errno, "%s: %s", w->dir, strerror(errno));
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/private.key", w->dir);
		err = wg_key_load_or_create(path, w->priv, &created, d);
		if (!err)
			err = wg_key_public(w->priv, w->pub, d);
		if (err)
			goto fail;
		w->have_key = true;
		if (created)
			agent_log(a, "wireguard: made a new private key (%s)", path);
	}
	err = ensure_device(a, w, d);
	if (!err)
		err = wanted_peers(a, &want, &n) ? diag_fail_errno(d, -ENOMEM, "out of memory") : 0;
	if (!err)
		err = configure(a, w, want, n, published_other_key(a, w), d);
	free(want);
	if (!err)
		err = publish(a, w, d);
	if (err)
		goto fail;
	w->error[0] = '\0';
	mark_ipcache(a, w);
	return 0;
fail:
	snprintf(w->error, sizeof(w->error), "%.1000s", d->msg);
	diag_prefix(d, "wireguard");
	/* what the device has stays marked; nothing new is */
	mark_ipcache(a, w);
	return err;
}

void agent_wireguard_node_cfg(struct agent *a, struct node_config *cfg)
{
	const struct agent_wg *w = a->wg;

	cfg->encrypt = 0;
	cfg->wg_ifindex = 0;
	cfg->strict_cidr = 0;
	cfg->strict_cidr_len = 0;
	if (!w || !w->enabled)
		return;
	cfg->encrypt = NODE_ENC_F_WIREGUARD | (w->strict ? NODE_ENC_F_STRICT : 0);
	cfg->wg_ifindex = w->ifindex;
	cfg->strict_cidr = w->strict_cidr;
	cfg->strict_cidr_len = w->strict_cidr_len;
}

static const char *node_of_key(const struct agent_wg *w, const uint8_t pub[WG_KEY_LEN])
{
	size_t i;

	for (i = 0; i < w->npeers; i++)
		if (!memcmp(w->peers[i].pub, pub, WG_KEY_LEN))
			return w->peers[i].node;
	return NULL;
}

json_t *agent_wireguard_status(struct agent *a)
{
	struct agent_wg *w = wg_of(a);
	char b64[WG_KEY_B64_LEN + 1], ip[INET_ADDRSTRLEN], cidr[CIDR4_STR_MAX], ep[64];
	struct wg_dev_state st = { 0 };
	struct diag d = { 0 };
	json_t *r, *peers = json_array();
	size_t i, j;

	if (!w || !w->enabled)
		return json_pack("{s:s, s:o}", "mode", "disabled", "peers", peers);
	wg_key_to_b64(w->pub, b64);
	r = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:s, s:{s:b, s:s}, s:I}", "mode", "wireguard",
		      "interface", WG_IFNAME, "publicKey", b64, "listenPort", WG_PORT,
		      "implementation", w->kernel ? "kernel" : "wireguard-go", "pid",
		      (json_int_t)(w->kernel ? 0 : w->pid), "error",
		      w->error, "strictMode", "enabled", w->strict, "cidr",
		      w->strict ? cidr4_format(w->strict_cidr, w->strict_cidr_len, cidr) : "",
		      "peerChanges", (json_int_t)w->peer_changes);
	if (dev_get(w, &st, NULL, &d)) {
		json_object_set_new(r, "deviceError", json_string(d.msg));
	} else {
		for (i = 0; i < st.npeers; i++) {
			const struct wg_peer_conf *p = &st.peers[i];
			const char *node = node_of_key(w, p->pub);
			json_t *allowed = json_array();

			for (j = 0; j < p->nallowed; j++)
				json_array_append_new(allowed, json_string(cidr4_format(
					p->allowed[j], p->allowed_len[j], cidr)));
			wg_key_to_b64(p->pub, b64);
			snprintf(ep, sizeof(ep), "%s:%u", ip4_format(p->endpoint_ip, ip),
				 p->endpoint_port);
			json_array_append_new(
				peers, json_pack("{s:s?, s:s, s:s, s:o, s:I, s:I, s:I}", "node", node,
						 "publicKey", b64, "endpoint",
						 p->endpoint_ip ? ep : "", "allowedIPs", allowed,
						 "lastHandshakeTime", (json_int_t)p->handshake_sec,
						 "rxBytes", (json_int_t)p->rx_bytes, "txBytes",
						 (json_int_t)p->tx_bytes));
		}
		json_object_set_new(r, "listenPort", json_integer(st.listen_port));
		wg_dev_state_free(&st);
	}
	json_object_set_new(r, "peerCount", json_integer((json_int_t)json_array_size(peers)));
	json_object_set_new(r, "peers", peers);
	return r;
}

void agent_wireguard_free(struct agent *a)
{
	if (!a->wg)
		return;
	free(a->wg->peers);
	free(a->wg);
	a->wg = NULL;
}

bool agent_wireguard_changed(struct agent *a)
{
	struct agent_wg *w = a->wg;

	if (!w || !w->enabled)
		return false;
	if (w->kernel) /* someone deleted the device */
		return !if_nametoindex(WG_IFNAME);
	return w->pid && !pid_alive(w->pid);
}

int agent_link_up(struct agent *a, const char *name, unsigned int mtu, struct diag *d)
{
	struct ifreq ifr;

	if (a->ifreq_fd < 0)
		a->ifreq_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (a->ifreq_fd < 0)
		return diag_fail_errno(d, -errno, "socket: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (mtu) {
		ifr.ifr_mtu = (int)mtu;
		if (ioctl(a->ifreq_fd, SIOCSIFMTU, &ifr) < 0)
			return diag_fail_errno(d, -errno, "%s: set mtu %u: %s", name, mtu,
					       strerror(errno));
	}
	if (ioctl(a->ifreq_fd, SIOCGIFFLAGS, &ifr) < 0)
		return diag_fail_errno(d, -errno, "%s: %s", name, strerror(errno));
	if (ifr.ifr_flags & IFF_UP)
		return 0;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(a->ifreq_fd, SIOCSIFFLAGS, &ifr) < 0)
		return diag_fail_errno(d, -errno, "%s: set up: %s", name, strerror(errno));
	return 0;
}

/*
 * First handshakes. WireGuard starts a handshake with a new peer on its first packet; when
 * both nodes send their first packets at the same moment (pods talking both ways right
 * after a node came up), the two handshakes cross and both wait 5 s (see prime_handshakes).
 * So a handshake with every new peer is started ahead of any traffic, from one side first:
 * the node with the lower address 1 s after configuring the peer (by then the peer knows
 * its key: publication and reconcile take milliseconds), the other 2 s after, and only if
 * no handshake has happened by then (the first one was rejected: the peer did not know the
 * key yet). One start each, never at the same moment, so never crossing.
 */
#define WG_FIRST_HANDSHAKE_LOW_MS 1000
#define WG_FIRST_HANDSHAKE_HIGH_MS 2000

void agent_wireguard_tick(struct agent *a)
{
	struct agent_wg *w = a->wg;
	const struct m_node *me;
	struct wg_nl_config c = { .listen_port = -1 };
	struct wg_dev_state st;
	struct wg_nl_peer *e;
	struct diag d = { 0 };
	bool *due, any = false;
	int64_t now = agent_now_ms();
	size_t i, j;

	if (!w || !w->enabled || !w->key_set || !w->npeers || !a->model)
		return;
	me = cluster_find_node(a->model, a->o.node);
	if (!me)
		return;
	due = calloc(w->npeers, sizeof(*due));
	if (!due)
		return;
	for (i = 0; i < w->npeers; i++) {
		const struct wg_want *p = &w->peers[i];
		int64_t wait = ntohl(me->ip) < ntohl(p->ip) ? WG_FIRST_HANDSHAKE_LOW_MS
							    : WG_FIRST_HANDSHAKE_HIGH_MS;

		due[i] = !p->primed && now - p->added_ms >= wait;
		any = any || due[i];
	}
	if (!any || dev_get(w, &st, NULL, &d)) {
		free(due);
		return;
	}
	e = calloc(w->npeers, sizeof(*e));
	for (i = 0; e && i < w->npeers; i++) {
		if (!due[i])
			continue;
		w->peers[i].primed = true; /* one start; WireGuard retries on its own after */
		for (j = 0; j < st.npeers; j++)
			if (!memcmp(st.peers[j].pub, w->peers[i].pub, WG_KEY_LEN))
				break;
		if (j < st.npeers && st.peers[j].handshake_sec)
			continue; /* traffic did it already */
		memcpy(e[c.n_peers].public_key, w->peers[i].pub, WG_KEY_LEN);
		e[c.n_peers].update_only = true;
		e[c.n_peers].keepalive = WG_PRIME_KEEPALIVE_S;
		c.n_peers++;
	}
	wg_dev_state_free(&st);
	if (e && c.n_peers) {
		c.peers = e;
		if (dev_set(w, &c, &d)) {
			agent_log(a, "wireguard: first handshakes: %s", d.msg);
		} else {
			for (j = 0; j < c.n_peers; j++)
				e[j].keepalive = 0; /* off again: the keepalive went out */
			if (dev_set(w, &c, &d))
				agent_log(a, "wireguard: first handshakes: %s", d.msg);
		}
	}
	free(e);
	free(due);
}
