/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kernel WireGuard over netlink (datapath/encrypt/wg_netlink.c), what runs without the module:
 * the WG_CMD_SET_DEVICE messages attribute by attribute (device attributes, peer flags,
 * endpoint, keepalive, allowed IPs), the split of 1000 peers and of one peer with 3000 allowed
 * IPs over several messages (device attributes only in the first, continuations update-only,
 * nothing lost, duplicated or reordered, every message within the size), input errors, and
 * wg_nl_link_add / wg_nl_set on a kernel without WireGuard (-EOPNOTSUPP, a message naming the
 * interface and the kernel) inside a private network namespace of a forked child. The real
 * device is tested in the kernel matrix (tests/wireguard/test_wg_kernel.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "encrypt/wg_netlink.h"

#define FAMILY 0x1d

/* ---- a decoder of built messages (independent of the builder) ---------------------------- */

struct dec_aip {
	uint16_t family;
	uint32_t ip; /* network order */
	uint8_t prefix;
};

struct dec_peer {
	uint8_t key[32];
	int has_flags;
	uint32_t flags;
	int has_endpoint;
	struct sockaddr_in endpoint;
	int keepalive; /* -1 absent */
	size_t n_aip;
	struct dec_aip aip[3072];
	int unknown; /* attributes the builder must not write */
};

struct dec_msg {
	int has_ifname;
	char ifname[32];
	int has_flags, has_priv, has_port, unknown;
	uint32_t flags;
	uint8_t priv[32];
	uint16_t port;
	size_t n_peers;
	struct dec_peer *peers; /* malloc'd */
};

static void decode_aip(const struct nlattr *n, struct dec_aip *a)
{
	const struct nlattr *x;

	assert_true(n->nla_type & NLA_F_NESTED);
	memset(a, 0, sizeof(*a));
	mnl_attr_for_each_nested(x, n) {
		switch (mnl_attr_get_type(x)) {
		case WGALLOWEDIP_A_FAMILY:
			assert_int_equal(mnl_attr_get_payload_len(x), 2);
			a->family = mnl_attr_get_u16(x);
			break;
		case WGALLOWEDIP_A_IPADDR:
			assert_int_equal(mnl_attr_get_payload_len(x), 4);
			memcpy(&a->ip, mnl_attr_get_payload(x), 4);
			break;
		case WGALLOWEDIP_A_CIDR_MASK:
			assert_int_equal(mnl_attr_get_payload_len(x), 1);
			a->prefix = mnl_attr_get_u8(x);
			break;
		default:
			fail_msg("unexpected allowed-IP attribute %u", mnl_attr_get_type(x));
		}
	}
}

static void decode_peer(const struct nlattr *n, struct dec_peer *p)
{
	const struct nlattr *x, *y;
	int has_key = 0;

	assert_true(n->nla_type & NLA_F_NESTED);
	memset(p, 0, sizeof(*p));
	p->keepalive = -1;
	mnl_attr_for_each_nested(x, n) {
		switch (mnl_attr_get_type(x)) {
		case WGPEER_A_PUBLIC_KEY:
			assert_int_equal(mnl_attr_get_payload_len(x), 32);
			memcpy(p->key, mnl_attr_get_payload(x), 32);
			has_key = 1;
			break;
		case WGPEER_A_FLAGS:
			assert_int_equal(mnl_attr_get_payload_len(x), 4);
			p->has_flags = 1;
			p->flags = mnl_attr_get_u32(x);
			break;
		case WGPEER_A_ENDPOINT:
			assert_int_equal(mnl_attr_get_payload_len(x), sizeof(struct sockaddr_in));
			memcpy(&p->endpoint, mnl_attr_get_payload(x), sizeof(p->endpoint));
			p->has_endpoint = 1;
			break;
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			assert_int_equal(mnl_attr_get_payload_len(x), 2);
			p->keepalive = mnl_attr_get_u16(x);
			break;
		case WGPEER_A_ALLOWEDIPS:
			assert_true(x->nla_type & NLA_F_NESTED);
			mnl_attr_for_each_nested(y, x) {
				assert_true(p->n_aip < 3072);
				decode_aip(y, &p->aip[p->n_aip++]);
			}
			assert_true(p->n_aip > 0); /* never an empty allowed-IPs nest */
			break;
		default:
			p->unknown++;
		}
	}
	assert_true(has_key);
}

static void decode(const void *buf, size_t max, struct dec_msg *m)
{
	const struct nlmsghdr *nlh = buf;
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a, *pa;

	memset(m, 0, sizeof(*m));
	assert_true(nlh->nlmsg_len <= max);
	assert_int_equal(nlh->nlmsg_type, FAMILY);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
	assert_int_equal(g->cmd, WG_CMD_SET_DEVICE);
	assert_int_equal(g->version, WG_GENL_VERSION);
	mnl_attr_for_each(a, nlh, sizeof(*g)) {
		switch (mnl_attr_get_type(a)) {
		case WGDEVICE_A_IFNAME:
			assert_int_equal(mnl_attr_validate(a, MNL_TYPE_NUL_STRING), 0);
			m->has_ifname = 1;
			snprintf(m->ifname, sizeof(m->ifname), "%s", mnl_attr_get_str(a));
			break;
		case WGDEVICE_A_FLAGS:
			m->has_flags = 1;
			m->flags = mnl_attr_get_u32(a);
			break;
		case WGDEVICE_A_PRIVATE_KEY:
			assert_int_equal(mnl_attr_get_payload_len(a), 32);
			m->has_priv = 1;
			memcpy(m->priv, mnl_attr_get_payload(a), 32);
			break;
		case WGDEVICE_A_LISTEN_PORT:
			assert_int_equal(mnl_attr_get_payload_len(a), 2);
			m->has_port = 1;
			m->port = mnl_attr_get_u16(a);
			break;
		case WGDEVICE_A_PEERS:
			assert_true(a->nla_type & NLA_F_NESTED);
			mnl_attr_for_each_nested(pa, a) {
				m->peers = realloc(m->peers, (m->n_peers + 1) * sizeof(*m->peers));
				assert_non_null(m->peers);
				decode_peer(pa, &m->peers[m->n_peers++]);
			}
			assert_true(m->n_peers > 0); /* never an empty peers nest */
			break;
		default:
			m->unknown++;
		}
	}
}

static void key_of(uint8_t key[32], unsigned n)
{
	unsigned i;

	for (i = 0; i < 32; i++)
		key[i] = (uint8_t)(n * 7 + i + (n >> 8));
	key[0] = (uint8_t)n;
	key[1] = (uint8_t)(n >> 8);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_set_single_message(void **state)
{
	struct wg_nl_allowed_ip aips[2] = { { .family = AF_INET, .prefix = 24 }, { .prefix = 32 } };
	struct wg_nl_peer peers[2];
	struct wg_nl_config c = { .has_private_key = true, .listen_port = 51871, .replace_peers = true,
				  .peers = peers, .n_peers = 2 };
	struct wg_nl_msgs m;
	struct dec_msg dm;
	struct diag d = { { 0 } };

	(void)state;
	memset(peers, 0, sizeof(peers));
	memset(c.private_key, 0xa5, 32);
	inet_pton(AF_INET, "10.244.1.0", &aips[0].ip);
	inet_pton(AF_INET, "192.0.2.2", &aips[1].ip);
	key_of(peers[0].public_key, 1);
	peers[0].has_endpoint = true;
	inet_pton(AF_INET, "192.0.2.2", &peers[0].endpoint);
	peers[0].endpoint_port = 51871;
	peers[0].keepalive = 25;
	peers[0].replace_allowed_ips = true;
	peers[0].allowed_ips = aips;
	peers[0].n_allowed_ips = 2;
	key_of(peers[1].public_key, 2);
	peers[1].remove = true;
	peers[1].keepalive = -1;
	peers[1].allowed_ips = aips; /* ignored for a removal */
	peers[1].n_allowed_ips = 2;

	assert_int_equal(wg_nl_build_set("ciliate_wg0", FAMILY, &c, WG_NL_MSG_SIZE, &m, &d), 0);
	assert_int_equal(m.n, 1);
	decode(m.msg[0], WG_NL_MSG_SIZE, &dm);
	assert_true(dm.has_ifname);
	assert_string_equal(dm.ifname, "ciliate_wg0");
	assert_true(dm.has_flags);
	assert_int_equal(dm.flags, WGDEVICE_F_REPLACE_PEERS);
	assert_true(dm.has_priv);
	assert_memory_equal(dm.priv, c.private_key, 32);
	assert_true(dm.has_port);
	assert_int_equal(dm.port, 51871);
	assert_int_equal(dm.unknown, 0);
	assert_int_equal(dm.n_peers, 2);

	assert_memory_equal(dm.peers[0].key, peers[0].public_key, 32);
	assert_true(dm.peers[0].has_flags);
	assert_int_equal(dm.peers[0].flags, WGPEER_F_REPLACE_ALLOWEDIPS);
	assert_true(dm.peers[0].has_endpoint);
	assert_int_equal(dm.peers[0].endpoint.sin_family, AF_INET);
	assert_int_equal(ntohs(dm.peers[0].endpoint.sin_port), 51871);
	assert_int_equal(dm.peers[0].endpoint.sin_addr.s_addr, peers[0].endpoint.s_addr);
	assert_int_equal(dm.peers[0].keepalive, 25);
	assert_int_equal(dm.peers[0].n_aip, 2);
	assert_int_equal(dm.peers[0].aip[0].family, AF_INET);
	assert_int_equal(dm.peers[0].aip[0].ip, aips[0].ip.s_addr);
	assert_int_equal(dm.peers[0].aip[0].prefix, 24);
	assert_int_equal(dm.peers[0].aip[1].family, AF_INET); /* family 0 means IPv4 */
	assert_int_equal(dm.peers[0].aip[1].ip, aips[1].ip.s_addr);
	assert_int_equal(dm.peers[0].aip[1].prefix, 32);
	assert_int_equal(dm.peers[0].unknown, 0);

	/* removal: key and flag only */
	assert_memory_equal(dm.peers[1].key, peers[1].public_key, 32);
	assert_int_equal(dm.peers[1].flags, WGPEER_F_REMOVE_ME);
	assert_false(dm.peers[1].has_endpoint);
	assert_int_equal(dm.peers[1].keepalive, -1);
	assert_int_equal(dm.peers[1].n_aip, 0);
	free(dm.peers);
	wg_nl_msgs_free(&m);

	/* nothing set: one message with the name only; update-only and keepalive 0 */
	{
		struct wg_nl_config e = { .listen_port = -1 };

		assert_int_equal(wg_nl_build_set("wg1", FAMILY, &e, 512, &m, &d), 0);
		assert_int_equal(m.n, 1);
		decode(m.msg[0], 512, &dm);
		assert_true(dm.has_ifname);
		assert_false(dm.has_flags || dm.has_priv || dm.has_port);
		assert_int_equal(dm.n_peers, 0);
		wg_nl_msgs_free(&m);

		memset(peers, 0, sizeof(peers));
		key_of(peers[0].public_key, 9);
		peers[0].update_only = true;
		peers[0].keepalive = 0;
		e.peers = peers;
		e.n_peers = 1;
		e.listen_port = 0;
		assert_int_equal(wg_nl_build_set("wg1", FAMILY, &e, 512, &m, &d), 0);
		decode(m.msg[0], 512, &dm);
		assert_true(dm.has_port);
		assert_int_equal(dm.port, 0);
		assert_int_equal(dm.n_peers, 1);
		assert_int_equal(dm.peers[0].flags, WGPEER_F_UPDATE_ONLY);
		assert_int_equal(dm.peers[0].keepalive, 0);
		assert_false(dm.peers[0].has_endpoint);
		free(dm.peers);
		wg_nl_msgs_free(&m);
	}
}

/* Reassembles messages into peers, checking the UAPI's split rules. */
struct reasm {
	size_t n_peers;
	struct dec_peer *peers; /* first fragment of each peer, allowed IPs of all fragments */
};

static void reassemble(const struct wg_nl_msgs *m, size_t size, struct reasm *r)
{
	size_t i, j, k;

	memset(r, 0, sizeof(*r));
	r->peers = calloc(1024, sizeof(*r->peers));
	assert_non_null(r->peers);
	for (i = 0; i < m->n; i++) {
		struct dec_msg dm;

		decode(m->msg[i], size, &dm);
		assert_true(dm.has_ifname);
		assert_string_equal(dm.ifname, "ciliate_wg0");
		if (i > 0) /* device attributes only in the first message */
			assert_false(dm.has_flags || dm.has_priv || dm.has_port);
		assert_true(i == 0 || dm.n_peers > 0); /* no empty follow-up message */
		for (j = 0; j < dm.n_peers; j++) {
			struct dec_peer *p = &dm.peers[j];
			struct dec_peer *last = r->n_peers ? &r->peers[r->n_peers - 1] : NULL;

			if (last && memcmp(last->key, p->key, 32) == 0) {
				/* a continuation: first in its message, update-only, nothing but IPs */
				assert_int_equal(j, 0);
				assert_true(p->has_flags);
				assert_int_equal(p->flags, WGPEER_F_UPDATE_ONLY);
				assert_false(p->has_endpoint);
				assert_int_equal(p->keepalive, -1);
				assert_true(p->n_aip > 0);
				for (k = 0; k < p->n_aip; k++) {
					assert_true(last->n_aip < 3072);
					last->aip[last->n_aip++] = p->aip[k];
				}
			} else {
				assert_true(r->n_peers < 1024);
				r->peers[r->n_peers++] = *p;
			}
		}
		free(dm.peers);
	}
}

static void test_set_1000_peers(void **state)
{
	enum { N = 1000 };
	struct wg_nl_peer *peers = calloc(N, sizeof(*peers));
	struct wg_nl_allowed_ip *aips = calloc(N * 2, sizeof(*aips));
	struct wg_nl_config c = { .has_private_key = true, .listen_port = 51871, .replace_peers = true,
				  .peers = peers, .n_peers = N };
	struct wg_nl_msgs m;
	struct reasm r;
	struct diag d = { { 0 } };
	size_t i, total = 0;

	(void)state;
	assert_non_null(peers);
	assert_non_null(aips);
	memset(c.private_key, 0x11, 32);
	for (i = 0; i < N; i++) {
		key_of(peers[i].public_key, (unsigned)i);
		peers[i].has_endpoint = true;
		peers[i].endpoint.s_addr = htonl(0xc0000000u + (unsigned)i);
		peers[i].endpoint_port = 51871;
		peers[i].keepalive = -1;
		aips[2 * i].ip.s_addr = htonl(0x0af40000u + ((unsigned)i << 8));
		aips[2 * i].prefix = 24;
		aips[2 * i + 1].ip.s_addr = htonl(0xc0000000u + (unsigned)i);
		aips[2 * i + 1].prefix = 32;
		peers[i].allowed_ips = &aips[2 * i];
		peers[i].n_allowed_ips = 2;
	}
	assert_int_equal(wg_nl_build_set("ciliate_wg0", FAMILY, &c, WG_NL_MSG_SIZE, &m, &d), 0);
	assert_true(m.n > 5);
	for (i = 0; i < m.n; i++) {
		total += ((struct nlmsghdr *)m.msg[i])->nlmsg_len;
		assert_true(((struct nlmsghdr *)m.msg[i])->nlmsg_len <= WG_NL_MSG_SIZE);
	}
	print_message("1000 peers: %zu messages, %zu bytes\n", m.n, total);
	reassemble(&m, WG_NL_MSG_SIZE, &r);
	assert_int_equal(r.n_peers, N);
	for (i = 0; i < N; i++) {
		assert_memory_equal(r.peers[i].key, peers[i].public_key, 32);
		assert_false(r.peers[i].has_flags); /* no flag asked for, none written */
		assert_true(r.peers[i].has_endpoint);
		assert_int_equal(r.peers[i].endpoint.sin_addr.s_addr, peers[i].endpoint.s_addr);
		assert_int_equal(r.peers[i].n_aip, 2);
		assert_int_equal(r.peers[i].aip[0].ip, aips[2 * i].ip.s_addr);
		assert_int_equal(r.peers[i].aip[1].ip, aips[2 * i + 1].ip.s_addr);
		assert_int_equal(r.peers[i].aip[1].prefix, 32);
	}
	{
		struct dec_msg first;

		decode(m.msg[0], WG_NL_MSG_SIZE, &first);
		assert_true(first.has_flags && first.has_priv && first.has_port);
		free(first.peers);
	}
	free(r.peers);
	wg_nl_msgs_free(&m);
	free(peers);
	free(aips);
}

static void test_set_many_allowed_ips(void **state)
{
	enum { N = 3000 };
	struct wg_nl_allowed_ip *aips = calloc(N, sizeof(*aips));
	struct wg_nl_peer peers[3];
	struct wg_nl_config c = { .listen_port = -1, .peers = peers, .n_peers = 3 };
	struct wg_nl_msgs m;
	struct reasm r;
	struct diag d = { { 0 } };
	size_t i;

	(void)state;
	assert_non_null(aips);
	memset(peers, 0, sizeof(peers));
	for (i = 0; i < N; i++) {
		aips[i].ip.s_addr = htonl(0x0a000000u + ((unsigned)i << 8));
		aips[i].prefix = 24;
	}
	key_of(peers[0].public_key, 100);
	peers[0].keepalive = -1;
	peers[0].allowed_ips = aips;
	peers[0].n_allowed_ips = 1;
	key_of(peers[1].public_key, 101);
	peers[1].has_endpoint = true;
	peers[1].endpoint.s_addr = htonl(0xc0000202u);
	peers[1].endpoint_port = 51871;
	peers[1].keepalive = 5;
	peers[1].replace_allowed_ips = true;
	peers[1].allowed_ips = aips;
	peers[1].n_allowed_ips = N;
	key_of(peers[2].public_key, 102);
	peers[2].keepalive = -1;
	peers[2].remove = true;

	assert_int_equal(wg_nl_build_set("ciliate_wg0", FAMILY, &c, 1024, &m, &d), 0);
	print_message("1 peer with %d allowed IPs in 1024-byte messages: %zu messages\n", N, m.n);
	assert_true(m.n > 50);
	reassemble(&m, 1024, &r);
	assert_int_equal(r.n_peers, 3);
	assert_int_equal(r.peers[0].n_aip, 1);
	/* the big peer: flags, endpoint, keepalive in its first fragment, every IP once, in order */
	assert_int_equal(r.peers[1].flags, WGPEER_F_REPLACE_ALLOWEDIPS);
	assert_true(r.peers[1].has_endpoint);
	assert_int_equal(r.peers[1].keepalive, 5);
	assert_int_equal(r.peers[1].n_aip, N);
	for (i = 0; i < N; i++)
		assert_int_equal(r.peers[1].aip[i].ip, aips[i].ip.s_addr);
	assert_int_equal(r.peers[2].flags, WGPEER_F_REMOVE_ME);
	free(r.peers);
	wg_nl_msgs_free(&m);
	free(aips);
}

static void test_errors(void **state)
{
	struct wg_nl_allowed_ip bad = { .prefix = 33 };
	struct wg_nl_peer p = { .keepalive = -1, .allowed_ips = &bad, .n_allowed_ips = 1 };
	struct wg_nl_config c = { .listen_port = -1, .peers = &p, .n_peers = 1 };
	struct wg_nl_msgs m;
	struct diag d = { { 0 } };

	(void)state;
	assert_int_equal(wg_nl_build_set("ciliate_wg0", FAMILY, &c, 8192, &m, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "ciliate_wg0: peer 0: allowed IP 0 is not an IPv4 CIDR"));
	assert_int_equal(m.n, 0);
	bad.prefix = 24;
	p.keepalive = 70000;
	assert_int_equal(wg_nl_build_set("ciliate_wg0", FAMILY, &c, 8192, &m, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "keepalive 70000"));
	p.keepalive = -1;
	c.listen_port = 65536;
	assert_int_equal(wg_nl_build_set("ciliate_wg0", FAMILY, &c, 8192, &m, &d), -EINVAL);
	c.listen_port = -1;
	assert_int_equal(wg_nl_build_set("a_name_much_too_long", FAMILY, &c, 8192, &m, &d), -EINVAL);
	assert_non_null(strstr(d.msg, "longer than 15"));
	assert_int_equal(wg_nl_link_add("", 1420, &d), -EINVAL);
}

/* In a forked child, in its own network namespace: exit 0 pass, 77 skip, 1 fail (+ message). */
static void test_no_wireguard_here(void **state)
{
	int pfd[2], status = 0;
	char msg[1200] = "";
	ssize_t n;
	pid_t pid;

	(void)state;
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct diag d = { { 0 } };
		struct wg_nl_config c = { .listen_port = 51871 };
		struct wg_nl_state st;
		int e, ok;

		close(pfd[0]);
		if (unshare(CLONE_NEWNET) != 0) {
			dprintf(pfd[1], "no private network namespace (unshare: %s): needs root", strerror(errno));
			_exit(77);
		}
		if (access("/sys/module/wireguard", F_OK) == 0) {
			/* this kernel has WireGuard: the device round trip instead */
			e = wg_nl_link_add("ciliate_wg0", 1420, &d);
			ok = e == 0 && wg_nl_set("ciliate_wg0", &c, &d) == 0 &&
			     wg_nl_get("ciliate_wg0", &st, &d) == 0 && st.listen_port == 51871 &&
			     wg_nl_link_del("ciliate_wg0", &d) == 0;
			dprintf(pfd[1], "kernel has wireguard: round trip %s %s", ok ? "ok" : "failed", d.msg);
			_exit(ok ? 0 : 1);
		}
		e = wg_nl_link_add("ciliate_wg0", 1420, &d);
		ok = e == -EOPNOTSUPP && strstr(d.msg, "ciliate_wg0: kernel ") &&
		     strstr(d.msg, "has no WireGuard");
		dprintf(pfd[1], "link_add=%d [%s]", e, d.msg);
		if (!ok)
			_exit(1);
		memset(&d, 0, sizeof(d));
		e = wg_nl_set("ciliate_wg0", &c, &d);
		dprintf(pfd[1], " set=%d [%s]", e, d.msg);
		if (e != -EOPNOTSUPP || !strstr(d.msg, "generic netlink family \"wireguard\""))
			_exit(1);
		memset(&d, 0, sizeof(d));
		e = wg_nl_get("ciliate_wg0", &st, &d);
		dprintf(pfd[1], " get=%d", e);
		if (e != -EOPNOTSUPP)
			_exit(1);
		/* nothing named ciliate_wg0: deleting is a no-op; "lo" is not wireguard's */
		e = wg_nl_link_del("ciliate_wg0", &d);
		if (e != 0)
			_exit(1);
		memset(&d, 0, sizeof(d));
		e = wg_nl_link_del("lo", &d);
		dprintf(pfd[1], " del(lo)=%d [%s]", e, d.msg);
		_exit(e == -EEXIST && strstr(d.msg, "lo is not a wireguard link") ? 0 : 1);
	}
	close(pfd[1]);
	{
		size_t off = 0;
		int rounds = 0;

		while (off < sizeof(msg) - 1 && rounds++ < 64 &&
		       (n = read(pfd[0], msg + off, sizeof(msg) - 1 - off)) > 0)
			off += (size_t)n;
		msg[off] = '\0';
	}
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	print_message("%s\n", msg);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		skip();
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_single_message),
		cmocka_unit_test(test_set_1000_peers),
		cmocka_unit_test(test_set_many_allowed_ips),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_no_wireguard_here),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
