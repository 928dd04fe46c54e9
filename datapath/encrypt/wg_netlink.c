/* SPDX-License-Identifier: Apache-2.0 */
/* Kernel WireGuard over netlink: see wg_netlink.h. Attribute layout from <linux/wireguard.h>. */
#include "encrypt/wg_netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define RECV_BUF 32768u      /* a dump message is at most 32 KiB (the kernel's cap) */
#define MAX_RECV_ROUNDS 200000 /* ~65536 peers in 8 KiB messages stays well below */
#define RECV_TIMEOUT_S 10

/* ---- one netlink conversation ------------------------------------------------------------ */

struct nl_ctx {
	mnl_cb_t cb;
	void *data;
	char ext[256]; /* the kernel's extended-ack message, if any */
};

static int attr_ext_cb(const struct nlattr *a, void *data)
{
	struct nl_ctx *x = data;

	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
		snprintf(x->ext, sizeof(x->ext), "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static int ctl_error(const struct nlmsghdr *nlh, void *data)
{
	struct nl_ctx *x = data;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		size_t off = sizeof(*e);

		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len >= sizeof(struct nlmsghdr) ?
				       e->msg.nlmsg_len - sizeof(struct nlmsghdr) : 0;
		off = MNL_ALIGN(off);
		if (mnl_nlmsg_size(off) < nlh->nlmsg_len)
			mnl_attr_parse(nlh, (unsigned)off, attr_ext_cb, x);
	}
	if (e->error == 0)
		return MNL_CB_STOP;
	errno = -e->error;
	return MNL_CB_ERROR;
}

/* NLMSG_DONE of a dump carries the dump's error code */
static int ctl_done(const struct nlmsghdr *nlh, void *data)
{
	(void)data;
	if (nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(int))) {
		int v;

		memcpy(&v, mnl_nlmsg_get_payload(nlh), sizeof(v));
		if (v < 0) {
			errno = -v;
			return MNL_CB_ERROR;
		}
	}
	return MNL_CB_STOP;
}

static int ctl_noop(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_OK;
}

static int data_wrap(const struct nlmsghdr *nlh, void *data)
{
	struct nl_ctx *x = data;

	return x->cb ? x->cb(nlh, x->data) : MNL_CB_OK;
}

static struct mnl_socket *nl_open(int proto, int *err)
{
	struct mnl_socket *s = mnl_socket_open(proto);
	struct timeval tv = { .tv_sec = RECV_TIMEOUT_S };
	int one = 1;

	if (!s) {
		*err = -errno;
		return NULL;
	}
	if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
		*err = -errno;
		mnl_socket_close(s);
		return NULL;
	}
	/* best effort: the kernel's reason for a refusal, and never block forever */
	mnl_socket_setsockopt(s, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(s), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*err = 0;
	return s;
}

static unsigned next_seq(void)
{
	static unsigned seq;

	if (!seq)
		seq = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
	return ++seq;
}

/* Sends req on s and runs cb over the answer until the ack / NLMSG_DONE. 0 or -errno; the
 * kernel's extended-ack message goes to ext. */
static int nl_talk(struct mnl_socket *s, struct nlmsghdr *req, mnl_cb_t cb, void *data, char *ext,
		   size_t extlen)
{
	struct nl_ctx x = { .cb = cb, .data = data };
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = { 0 };
	char *buf = malloc(RECV_BUF);
	unsigned seq = req->nlmsg_seq = next_seq();
	unsigned portid = mnl_socket_get_portid(s);
	int ret = -EIO, rounds = 0;

	if (ext && extlen)
		ext[0] = '\0';
	if (!buf)
		return -ENOMEM;
	ctl[NLMSG_NOOP] = ctl_noop;
	ctl[NLMSG_ERROR] = ctl_error;
	ctl[NLMSG_DONE] = ctl_done;
	if (mnl_socket_sendto(s, req, req->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	while (rounds++ < MAX_RECV_ROUNDS) {
		ssize_t n = mnl_socket_recvfrom(s, buf, RECV_BUF);
		int r;

		if (n < 0) {
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		errno = 0;
		r = mnl_cb_run2(buf, (size_t)n, seq, portid, data_wrap, &x, ctl, NLMSG_MIN_TYPE);
		if (r == MNL_CB_ERROR) {
			ret = errno ? -errno : -EIO;
			break;
		}
		if (r == MNL_CB_STOP) {
			ret = 0;
			break;
		}
	}
	if (rounds > MAX_RECV_ROUNDS)
		ret = -E2BIG;
out:
	if (ext && extlen && x.ext[0])
		snprintf(ext, extlen, " (kernel: %s)", x.ext);
	free(buf);
	return ret;
}

static int nl_once(int proto, struct nlmsghdr *req, mnl_cb_t cb, void *data, char *ext, size_t extlen)
{
	int err;
	struct mnl_socket *s = nl_open(proto, &err);

	if (!s)
		return err;
	err = nl_talk(s, req, cb, data, ext, extlen);
	mnl_socket_close(s);
	return err;
}

static const char *kernel_release(void)
{
	static struct utsname u;

	if (uname(&u) != 0)
		return "?";
	return u.release;
}

static int check_ifname(const char *ifname, struct diag *d)
{
	if (!ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ)
		return diag_fail(d, "wireguard: interface name \"%s\" is empty or longer than %d bytes",
				 ifname ? ifname : "(null)", IFNAMSIZ - 1);
	return 0;
}

/* ---- links (rtnetlink) ------------------------------------------------------------------- */

struct link_info {
	int found;
	char kind[32];
};

static int linkinfo_cb(const struct nlattr *a, void *data)
{
	struct link_info *li = data;

	if (mnl_attr_get_type(a) == IFLA_INFO_KIND && mnl_attr_validate(a, MNL_TYPE_STRING) == 0)
		snprintf(li->kind, sizeof(li->kind), "%.*s", (int)mnl_attr_get_payload_len(a),
			 (const char *)mnl_attr_get_payload(a));
	return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == IFLA_LINKINFO && mnl_attr_validate(a, MNL_TYPE_NESTED) == 0)
		mnl_attr_parse_nested(a, linkinfo_cb, data);
	return MNL_CB_OK;
}

static int link_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_info *li = data;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	li->found = 1;
	mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr_cb, li);
	return MNL_CB_OK;
}

/* 0 and the kind ("" when it has none) of ifname, or -ENODEV */
static int link_kind(const char *ifname, int *ifindex, char *kind, size_t kindlen)
{
	char buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;
	struct link_info li = { 0 };
	unsigned idx = if_nametoindex(ifname);
	int err;

	if (!idx)
		return -ENODEV;
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = (int)idx;
	err = nl_once(NETLINK_ROUTE, nlh, link_msg_cb, &li, NULL, 0);
	if (err)
		return err;
	if (!li.found)
		return -ENODEV;
	*ifindex = (int)idx;
	snprintf(kind, kindlen, "%s", li.kind);
	return 0;
}

static int link_up_mtu(int ifindex, unsigned mtu, char *ext, size_t extlen)
{
	char buf[512];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return nl_once(NETLINK_ROUTE, nlh, NULL, NULL, ext, extlen);
}

int wg_nl_link_add(const char *ifname, unsigned int mtu, struct diag *d)
{
	char buf[512], kind[32], ext[300];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct nlattr *li;
	int ifindex = 0, err;

	if ((err = check_ifname(ifname, d)))
		return err;
	err = link_kind(ifname, &ifindex, kind, sizeof(kind));
	if (err && err != -ENODEV)
		return diag_fail_errno(d, err, "%s: looking up the link: %s", ifname, strerror(-err));
	if (err == -ENODEV) {
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = RTM_NEWLINK;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
		ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
		ifi->ifi_family = AF_UNSPEC;
		mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
		li = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
		mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
		mnl_attr_nest_end(nlh, li);
		err = nl_once(NETLINK_ROUTE, nlh, NULL, NULL, ext, sizeof(ext));
		if (err == -EOPNOTSUPP)
			return diag_fail_errno(d, err,
					       "%s: kernel %s has no WireGuard: RTM_NEWLINK of kind \"wireguard\" "
					       "refused with %s%s (no wireguard module: CONFIG_WIREGUARD)",
					       ifname, kernel_release(), strerror(-err), ext);
		if (err && err != -EEXIST)
			return diag_fail_errno(d, err, "%s: RTM_NEWLINK kind \"wireguard\": %s%s", ifname,
					       strerror(-err), ext);
		err = link_kind(ifname, &ifindex, kind, sizeof(kind));
		if (err)
			return diag_fail_errno(d, err, "%s: created, then not found: %s", ifname, strerror(-err));
	}
	if (strcmp(kind, "wireguard") != 0)
		return diag_fail_errno(d, -EEXIST, "%s exists and is not a wireguard link (kind \"%s\")",
				       ifname, kind[0] ? kind : "none");
	err = link_up_mtu(ifindex, mtu, ext, sizeof(ext));
	if (err)
		return diag_fail_errno(d, err, "%s: setting MTU %u and up: %s%s", ifname, mtu,
				       strerror(-err), ext);
	return 0;
}

int wg_nl_link_del(const char *ifname, struct diag *d)
{
	char buf[512], kind[32], ext[300];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int ifindex = 0, err;

	if ((err = check_ifname(ifname, d)))
		return err;
	err = link_kind(ifname, &ifindex, kind, sizeof(kind));
	if (err == -ENODEV)
		return 0;
	if (err)
		return diag_fail_errno(d, err, "%s: looking up the link: %s", ifname, strerror(-err));
	if (strcmp(kind, "wireguard") != 0)
		return diag_fail_errno(d, -EEXIST, "%s is not a wireguard link (kind \"%s\"): not deleted",
				       ifname, kind[0] ? kind : "none");
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_DELLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	err = nl_once(NETLINK_ROUTE, nlh, NULL, NULL, ext, sizeof(ext));
	if (err == -ENODEV)
		return 0;
	if (err)
		return diag_fail_errno(d, err, "%s: RTM_DELLINK: %s%s", ifname, strerror(-err), ext);
	return 0;
}

/* ---- the generic netlink family ---------------------------------------------------------- */

static int family_attr_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && mnl_attr_validate(a, MNL_TYPE_U16) == 0)
		*(int *)data = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static int family_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_attr_cb, data);
	return MNL_CB_OK;
}

int wg_nl_family(struct diag *d)
{
	char buf[256], ext[300];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;
	int id = 0, err;

	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	err = nl_once(NETLINK_GENERIC, nlh, family_msg_cb, &id, ext, sizeof(ext));
	if (err == -ENOENT)
		return diag_fail_errno(d, -EOPNOTSUPP,
				       "kernel %s has no generic netlink family \"" WG_GENL_NAME
				       "\" (no wireguard module: CONFIG_WIREGUARD)%s",
				       kernel_release(), ext);
	if (err)
		return diag_fail_errno(d, err, "resolving generic netlink family \"" WG_GENL_NAME "\": %s%s",
				       strerror(-err), ext);
	if (id <= 0)
		return diag_fail_errno(d, -EPROTO, "generic netlink family \"" WG_GENL_NAME
						   "\": the answer carried no family id");
	return id;
}

/* ---- WG_CMD_SET_DEVICE: building ----------------------------------------------------------- */

struct builder {
	const char *ifname;
	uint16_t family;
	size_t size;
	struct wg_nl_msgs *out;
	struct nlmsghdr *nlh;
	struct nlattr *peers; /* open WGDEVICE_A_PEERS nest of the current message */
	size_t peers_in_msg;
};

static struct nlattr *nest_start(struct builder *b, uint16_t type)
{
	struct nlattr *n = mnl_attr_nest_start_check(b->nlh, b->size, type);

	if (n)
		n->nla_type |= NLA_F_NESTED;
	return n;
}

static int msg_new(struct builder *b)
{
	void **grown;
	void *buf;
	struct genlmsghdr *g;

	grown = realloc(b->out->msg, (b->out->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	b->out->msg = grown;
	buf = calloc(1, b->size);
	if (!buf)
		return -ENOMEM;
	grown[b->out->n++] = buf;
	b->nlh = mnl_nlmsg_put_header(buf);
	b->nlh->nlmsg_type = b->family;
	b->nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(b->nlh, sizeof(*g));
	g->cmd = WG_CMD_SET_DEVICE;
	g->version = WG_GENL_VERSION;
	if (!mnl_attr_put_strz_check(b->nlh, b->size, WGDEVICE_A_IFNAME, b->ifname))
		return -EMSGSIZE;
	b->peers = NULL;
	b->peers_in_msg = 0;
	return 0;
}

static void peers_close(struct builder *b)
{
	if (!b->peers)
		return;
	if (b->peers_in_msg)
		mnl_attr_nest_end(b->nlh, b->peers);
	else
		mnl_attr_nest_cancel(b->nlh, b->peers);
	b->peers = NULL;
}

/* closes the current message and opens the next, with an open peers nest */
static int msg_next(struct builder *b)
{
	int err;

	peers_close(b);
	if ((err = msg_new(b)))
		return err;
	b->peers = nest_start(b, WGDEVICE_A_PEERS);
	return b->peers ? 0 : -EMSGSIZE;
}

/* the peer's nest with its key and, in its first fragment, flags, endpoint, keepalive */
static struct nlattr *peer_head(struct builder *b, const struct wg_nl_peer *p, int first)
{
	struct nlattr *pn = nest_start(b, 0);
	uint32_t flags = 0;

	if (!pn)
		return NULL;
	if (!mnl_attr_put_check(b->nlh, b->size, WGPEER_A_PUBLIC_KEY, WG_NL_KEY_LEN, p->public_key))
		goto cancel;
	if (first) {
		if (p->remove)
			flags |= WGPEER_F_REMOVE_ME;
		if (p->update_only)
			flags |= WGPEER_F_UPDATE_ONLY;
		if (p->replace_allowed_ips && !p->remove)
			flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
	} else {
		/* a continuation: the first fragment created the peer (or, update-only, did not):
		 * never create it here without its endpoint */
		flags = WGPEER_F_UPDATE_ONLY;
	}
	if (flags && !mnl_attr_put_u32_check(b->nlh, b->size, WGPEER_A_FLAGS, flags))
		goto cancel;
	if (first && !p->remove) {
		if (p->has_endpoint) {
			struct sockaddr_in sin = { .sin_family = AF_INET,
						   .sin_port = htons(p->endpoint_port),
						   .sin_addr = p->endpoint };

			if (!mnl_attr_put_check(b->nlh, b->size, WGPEER_A_ENDPOINT, sizeof(sin), &sin))
				goto cancel;
		}
		if (p->keepalive >= 0 &&
		    !mnl_attr_put_u16_check(b->nlh, b->size, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
					    (uint16_t)p->keepalive))
			goto cancel;
	}
	return pn;
cancel:
	mnl_attr_nest_cancel(b->nlh, pn);
	return NULL;
}

static int put_allowed_ip(struct builder *b, const struct wg_nl_allowed_ip *a)
{
	struct nlattr *n = nest_start(b, 0);

	if (!n)
		return 0;
	if (!mnl_attr_put_u16_check(b->nlh, b->size, WGALLOWEDIP_A_FAMILY, AF_INET) ||
	    !mnl_attr_put_check(b->nlh, b->size, WGALLOWEDIP_A_IPADDR, sizeof(a->ip), &a->ip) ||
	    !mnl_attr_put_u8_check(b->nlh, b->size, WGALLOWEDIP_A_CIDR_MASK, a->prefix)) {
		mnl_attr_nest_cancel(b->nlh, n);
		return 0;
	}
	mnl_attr_nest_end(b->nlh, n);
	return 1;
}

/* one peer, over as many messages as it needs */
static int put_peer(struct builder *b, const struct wg_nl_peer *p, size_t idx, struct diag *d)
{
	size_t ai = 0, n_ai = p->remove ? 0 : p->n_allowed_ips;
	int first = 1, guard = 0, err;

	while (guard++ < 1000000) {
		struct nlattr *pn = peer_head(b, p, first), *an;
		size_t added = 0;
		int fresh = b->peers_in_msg == 0;

		if (pn && ai < n_ai) {
			an = nest_start(b, WGPEER_A_ALLOWEDIPS);
			while (an && ai < n_ai && put_allowed_ip(b, &p->allowed_ips[ai])) {
				ai++;
				added++;
			}
			if (an && added)
				mnl_attr_nest_end(b->nlh, an);
			else if (an)
				mnl_attr_nest_cancel(b->nlh, an);
		}
		if (!pn || (ai < n_ai && added == 0)) {
			/* nothing of this fragment fits: start a new message (once per fragment) */
			if (pn)
				mnl_attr_nest_cancel(b->nlh, pn);
			if (fresh && b->out->n > 1)
				return diag_fail_errno(d, -EMSGSIZE,
						       "%s: peer %zu does not fit in a %zu-byte netlink message",
						       b->ifname, idx, b->size);
			if ((err = msg_next(b)))
				return diag_fail_errno(d, err, "%s: building message %zu: %s", b->ifname,
						       b->out->n, strerror(-err));
			continue;
		}
		mnl_attr_nest_end(b->nlh, pn);
		b->peers_in_msg++;
		first = 0;
		if (ai >= n_ai)
			return 0;
		if ((err = msg_next(b)))
			return diag_fail_errno(d, err, "%s: building message %zu: %s", b->ifname, b->out->n,
					       strerror(-err));
	}
	return diag_fail_errno(d, -E2BIG, "%s: peer %zu: too many fragments", b->ifname, idx);
}

void wg_nl_msgs_free(struct wg_nl_msgs *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		free(m->msg[i]);
	free(m->msg);
	m->msg = NULL;
	m->n = 0;
}

int wg_nl_build_set(const char *ifname, uint16_t family, const struct wg_nl_config *c,
		    size_t msg_size, struct wg_nl_msgs *out, struct diag *d)
{
	struct builder b = { .ifname = ifname, .family = family, .size = msg_size, .out = out };
	size_t i, j;
	int err;

	out->n = 0;
	out->msg = NULL;
	if ((err = check_ifname(ifname, d)))
		return err;
	if (msg_size < 256 || msg_size > (1u << 20))
		return diag_fail(d, "%s: message size %zu out of range (256..1 MiB)", ifname, msg_size);
	if (c->listen_port > 65535)
		return diag_fail(d, "%s: listen port %d out of range", ifname, c->listen_port);
	if (c->n_peers && !c->peers)
		return diag_fail(d, "%s: %zu peers but no peer array", ifname, c->n_peers);
	for (i = 0; i < c->n_peers; i++) {
		const struct wg_nl_peer *p = &c->peers[i];

		if (p->keepalive > 65535)
			return diag_fail(d, "%s: peer %zu: keepalive %d out of range", ifname, i, p->keepalive);
		if (p->n_allowed_ips && !p->allowed_ips)
			return diag_fail(d, "%s: peer %zu: %zu allowed IPs but no array", ifname, i,
					 p->n_allowed_ips);
		for (j = 0; j < p->n_allowed_ips; j++)
			if ((p->allowed_ips[j].family && p->allowed_ips[j].family != AF_INET) ||
			    p->allowed_ips[j].prefix > 32)
				return diag_fail(d, "%s: peer %zu: allowed IP %zu is not an IPv4 CIDR (prefix %u)",
						 ifname, i, j, p->allowed_ips[j].prefix);
	}
	if ((err = msg_new(&b)))
		goto fail;
	err = -EMSGSIZE;
	if (c->replace_peers && !mnl_attr_put_u32_check(b.nlh, b.size, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS))
		goto fail;
	if (c->has_private_key &&
	    !mnl_attr_put_check(b.nlh, b.size, WGDEVICE_A_PRIVATE_KEY, WG_NL_KEY_LEN, c->private_key))
		goto fail;
	if (c->listen_port >= 0 &&
	    !mnl_attr_put_u16_check(b.nlh, b.size, WGDEVICE_A_LISTEN_PORT, (uint16_t)c->listen_port))
		goto fail;
	if (c->n_peers) {
		b.peers = nest_start(&b, WGDEVICE_A_PEERS);
		if (!b.peers && (err = msg_next(&b)))
			goto fail;
		for (i = 0; i < c->n_peers; i++)
			if ((err = put_peer(&b, &c->peers[i], i, d))) {
				wg_nl_msgs_free(out);
				return err;
			}
		peers_close(&b);
	}
	return 0;
fail:
	wg_nl_msgs_free(out);
	return diag_fail_errno(d, err, "%s: building WG_CMD_SET_DEVICE: %s", ifname, strerror(-err));
}

int wg_nl_set(const char *ifname, const struct wg_nl_config *c, struct diag *d)
{
	struct wg_nl_msgs m = { 0 };
	struct mnl_socket *s;
	char ext[300];
	size_t i;
	int family, err;

	if ((err = check_ifname(ifname, d)))
		return err;
	family = wg_nl_family(d);
	if (family < 0) {
		diag_prefix(d, "%s", ifname);
		return family;
	}
	if ((err = wg_nl_build_set(ifname, (uint16_t)family, c, WG_NL_MSG_SIZE, &m, d)))
		return err;
	s = nl_open(NETLINK_GENERIC, &err);
	if (!s) {
		wg_nl_msgs_free(&m);
		return diag_fail_errno(d, err, "%s: generic netlink socket: %s", ifname, strerror(-err));
	}
	for (i = 0; i < m.n; i++) {
		err = nl_talk(s, m.msg[i], NULL, NULL, ext, sizeof(ext));
		if (err) {
			if (m.n > 1)
				diag_fail_errno(d, err,
						"%s: WG_CMD_SET_DEVICE message %zu of %zu: %s%s (the %zu before "
						"it were applied)",
						ifname, i + 1, m.n, strerror(-err), ext, i);
			else
				diag_fail_errno(d, err, "%s: WG_CMD_SET_DEVICE: %s%s", ifname,
						strerror(-err), ext);
			break;
		}
	}
	mnl_socket_close(s);
	wg_nl_msgs_free(&m);
	return err;
}

/* ---- WG_CMD_GET_DEVICE ------------------------------------------------------------------- */

struct get_ctx {
	struct wg_nl_state *st;
	int err;
	const char *what;
};

/* appends room for element n; capacity is always the next power of two above n */
static int grow(void **arr, size_t n, size_t elem)
{
	void *p;

	if (n != 0 && (n & (n - 1)) != 0)
		return 0;
	p = realloc(*arr, (n ? n * 2 : 1) * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

static int aip_cb(const struct nlattr *a, void *data)
{
	struct wg_nl_allowed_ip *ip = data;

	switch (mnl_attr_get_type(a)) {
	case WGALLOWEDIP_A_FAMILY:
		if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
			ip->family = mnl_attr_get_u16(a);
		break;
	case WGALLOWEDIP_A_IPADDR:
		if (mnl_attr_get_payload_len(a) == 4)
			memcpy(&ip->ip, mnl_attr_get_payload(a), 4);
		else if (mnl_attr_get_payload_len(a) == 16)
			memcpy(&ip->ip6, mnl_attr_get_payload(a), 16);
		break;
	case WGALLOWEDIP_A_CIDR_MASK:
		if (mnl_attr_validate(a, MNL_TYPE_U8) == 0)
			ip->prefix = mnl_attr_get_u8(a);
		break;
	}
	return MNL_CB_OK;
}

struct peer_parse {
	struct get_ctx *g;
	struct wg_nl_peer_state *p;
	int has_key;
};

static int peer_cb(const struct nlattr *a, void *data)
{
	struct peer_parse *pp = data;
	struct wg_nl_peer_state *p = pp->p;
	const struct nlattr *ia;

	switch (mnl_attr_get_type(a)) {
	case WGPEER_A_PUBLIC_KEY:
		if (mnl_attr_get_payload_len(a) == WG_NL_KEY_LEN) {
			memcpy(p->public_key, mnl_attr_get_payload(a), WG_NL_KEY_LEN);
			pp->has_key = 1;
		}
		break;
	case WGPEER_A_PRESHARED_KEY:
		if (mnl_attr_get_payload_len(a) == WG_NL_KEY_LEN) {
			static const uint8_t zero[WG_NL_KEY_LEN];

			p->has_preshared_key = memcmp(mnl_attr_get_payload(a), zero, WG_NL_KEY_LEN) != 0;
		}
		break;
	case WGPEER_A_ENDPOINT:
		if (mnl_attr_get_payload_len(a) >= sizeof(struct sockaddr_in)) {
			struct sockaddr_in sin;

			memcpy(&sin, mnl_attr_get_payload(a), sizeof(sin));
			if (sin.sin_family == AF_INET) {
				p->endpoint_family = AF_INET;
				p->endpoint = sin.sin_addr;
				p->endpoint_port = ntohs(sin.sin_port);
			} else if (sin.sin_family == AF_INET6 &&
				   mnl_attr_get_payload_len(a) >= sizeof(struct sockaddr_in6)) {
				struct sockaddr_in6 s6;

				memcpy(&s6, mnl_attr_get_payload(a), sizeof(s6));
				p->endpoint_family = AF_INET6;
				p->endpoint6 = s6.sin6_addr;
				p->endpoint_port = ntohs(s6.sin6_port);
			}
		}
		break;
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
			p->keepalive = mnl_attr_get_u16(a);
		break;
	case WGPEER_A_LAST_HANDSHAKE_TIME:
		if (mnl_attr_get_payload_len(a) == 16) {
			int64_t ts[2];

			memcpy(ts, mnl_attr_get_payload(a), sizeof(ts));
			p->last_handshake_sec = ts[0];
			p->last_handshake_nsec = ts[1];
		}
		break;
	case WGPEER_A_RX_BYTES:
		if (mnl_attr_validate(a, MNL_TYPE_U64) == 0)
			p->rx_bytes = mnl_attr_get_u64(a);
		break;
	case WGPEER_A_TX_BYTES:
		if (mnl_attr_validate(a, MNL_TYPE_U64) == 0)
			p->tx_bytes = mnl_attr_get_u64(a);
		break;
	case WGPEER_A_ALLOWEDIPS:
		mnl_attr_for_each_nested(ia, a) {
			struct wg_nl_allowed_ip ip = { 0 };

			if (p->n_allowed_ips >= WG_NL_MAX_ALLOWED_IPS) {
				pp->g->err = -E2BIG;
				pp->g->what = "allowed IPs of one peer";
				return MNL_CB_ERROR;
			}
			mnl_attr_parse_nested(ia, aip_cb, &ip);
			if (grow((void **)&p->allowed_ips, p->n_allowed_ips, sizeof(ip))) {
				pp->g->err = -ENOMEM;
				return MNL_CB_ERROR;
			}
			p->allowed_ips[p->n_allowed_ips++] = ip;
		}
		break;
	}
	return MNL_CB_OK;
}

static void peer_state_free(struct wg_nl_peer_state *p)
{
	free(p->allowed_ips);
	p->allowed_ips = NULL;
	p->n_allowed_ips = 0;
}

/* one peer of a dump message: a new one, or the continuation of the last one */
static int add_peer(struct get_ctx *g, const struct nlattr *a)
{
	struct wg_nl_state *st = g->st;
	struct wg_nl_peer_state tmp = { 0 };
	struct peer_parse pp = { .g = g, .p = &tmp };
	struct wg_nl_peer_state *last = st->n_peers ? &st->peers[st->n_peers - 1] : NULL;

	if (mnl_attr_parse_nested(a, peer_cb, &pp) < 0) {
		peer_state_free(&tmp);
		return -1;
	}
	if (!pp.has_key) {
		peer_state_free(&tmp);
		return 0;
	}
	if (last && memcmp(last->public_key, tmp.public_key, WG_NL_KEY_LEN) == 0) {
		size_t i;

		for (i = 0; i < tmp.n_allowed_ips; i++) {
			if (last->n_allowed_ips >= WG_NL_MAX_ALLOWED_IPS) {
				g->err = -E2BIG;
				g->what = "allowed IPs of one peer";
				break;
			}
			if (grow((void **)&last->allowed_ips, last->n_allowed_ips, sizeof(*last->allowed_ips))) {
				g->err = -ENOMEM;
				break;
			}
			last->allowed_ips[last->n_allowed_ips++] = tmp.allowed_ips[i];
		}
		peer_state_free(&tmp);
		return g->err ? -1 : 0;
	}
	if (st->n_peers >= WG_NL_MAX_PEERS) {
		g->err = -E2BIG;
		g->what = "peers";
		peer_state_free(&tmp);
		return -1;
	}
	if (grow((void **)&st->peers, st->n_peers, sizeof(*st->peers))) {
		g->err = -ENOMEM;
		peer_state_free(&tmp);
		return -1;
	}
	st->peers[st->n_peers++] = tmp;
	return 0;
}

static int dev_cb(const struct nlattr *a, void *data)
{
	struct get_ctx *g = data;
	struct wg_nl_state *st = g->st;
	const struct nlattr *pa;

	switch (mnl_attr_get_type(a)) {
	case WGDEVICE_A_IFINDEX:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			st->ifindex = (int)mnl_attr_get_u32(a);
		break;
	case WGDEVICE_A_IFNAME:
		if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			snprintf(st->ifname, sizeof(st->ifname), "%s", mnl_attr_get_str(a));
		break;
	case WGDEVICE_A_PRIVATE_KEY:
		if (mnl_attr_get_payload_len(a) == WG_NL_KEY_LEN) {
			static const uint8_t zero[WG_NL_KEY_LEN];

			st->has_private_key = memcmp(mnl_attr_get_payload(a), zero, WG_NL_KEY_LEN) != 0;
		}
		break;
	case WGDEVICE_A_PUBLIC_KEY:
		if (mnl_attr_get_payload_len(a) == WG_NL_KEY_LEN) {
			memcpy(st->public_key, mnl_attr_get_payload(a), WG_NL_KEY_LEN);
			st->has_public_key = true;
		}
		break;
	case WGDEVICE_A_LISTEN_PORT:
		if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
			st->listen_port = mnl_attr_get_u16(a);
		break;
	case WGDEVICE_A_FWMARK:
		if (mnl_attr_validate(a, MNL_TYPE_U32) == 0)
			st->fwmark = mnl_attr_get_u32(a);
		break;
	case WGDEVICE_A_PEERS:
		mnl_attr_for_each_nested(pa, a) {
			if (add_peer(g, pa) < 0)
				return MNL_CB_ERROR;
		}
		break;
	}
	return MNL_CB_OK;
}

static int dev_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct get_ctx *g = data;

	if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), dev_cb, g) < 0) {
		if (!g->err)
			g->err = -EBADMSG;
		errno = -g->err;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

void wg_nl_state_free(struct wg_nl_state *st)
{
	size_t i;

	if (!st)
		return;
	for (i = 0; i < st->n_peers; i++)
		peer_state_free(&st->peers[i]);
	free(st->peers);
	st->peers = NULL;
	st->n_peers = 0;
}

int wg_nl_get(const char *ifname, struct wg_nl_state *st, struct diag *d)
{
	char buf[256], ext[300];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *gh;
	struct get_ctx g = { .st = st };
	int family, err;

	memset(st, 0, sizeof(*st));
	if ((err = check_ifname(ifname, d)))
		return err;
	family = wg_nl_family(d);
	if (family < 0) {
		diag_prefix(d, "%s", ifname);
		return family;
	}
	nlh->nlmsg_type = (uint16_t)family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	gh = mnl_nlmsg_put_extra_header(nlh, sizeof(*gh));
	gh->cmd = WG_CMD_GET_DEVICE;
	gh->version = WG_GENL_VERSION;
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	err = nl_once(NETLINK_GENERIC, nlh, dev_msg_cb, &g, ext, sizeof(ext));
	if (g.err)
		err = g.err;
	if (err) {
		wg_nl_state_free(st);
		if (g.what)
			return diag_fail_errno(d, err, "%s: WG_CMD_GET_DEVICE: more %s than ciliate reads",
					       ifname, g.what);
		return diag_fail_errno(d, err, "%s: WG_CMD_GET_DEVICE: %s%s", ifname, strerror(-err), ext);
	}
	return 0;
}

const struct wg_nl_peer_state *wg_nl_state_peer(const struct wg_nl_state *st,
						const uint8_t key[WG_NL_KEY_LEN])
{
	size_t i;

	for (i = 0; i < st->n_peers; i++)
		if (memcmp(st->peers[i].public_key, key, WG_NL_KEY_LEN) == 0)
			return &st->peers[i];
	return NULL;
}
