/* SPDX-License-Identifier: Apache-2.0 */
/* XFRM states and policies over NETLINK_XFRM with libmnl (xfrm.h, docs/IPSEC.md). */
#include "xfrm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <libmnl/libmnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define RECV_BUF 32768
#define MAX_DUMP_ROUNDS 100000 /* recv() calls per dump: bounds a misbehaving kernel */
#define NL_TIMEOUT_S 10 /* longest wait for one netlink reply */
#define REPLAY_WINDOW 32
#define ESN_WINDOW 128
#define ESN_BMP_WORDS (ESN_WINDOW / 32)

/* ---- a netlink session ------------------------------------------------------------------ */

struct nl {
	struct mnl_socket *sock;
	unsigned portid;
	unsigned seq;
	char *buf;  /* replies */
	char *sbuf; /* the request being built (kept for a retry) */
	char ext[256]; /* the kernel's extended ack message of the last error, if any */
};

struct run_ctx {
	struct nl *nl;
	mnl_cb_t cb;
	void *data;
};

static int nl_data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct run_ctx *c = data;

	return c->cb ? c->cb(nlh, c->data) : MNL_CB_OK;
}

/* NLMSG_ERROR: the errno and the kernel's own words (NLMSGERR_ATTR_MSG). */
static int nl_err_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl *nl = ((struct run_ctx *)data)->nl;
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *a;
	size_t off;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
		if (mnl_nlmsg_size(off) <= nlh->nlmsg_len) {
			mnl_attr_for_each(a, nlh, off) {
				if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
				    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
					snprintf(nl->ext, sizeof(nl->ext), "%s", mnl_attr_get_str(a));
			}
		}
	}
	if (e->error == 0)
		return MNL_CB_STOP;
	errno = -e->error;
	return MNL_CB_ERROR;
}

static int nl_done_cb(const struct nlmsghdr *nlh, void *data)
{
	return MNL_CB_STOP;
}

static int nl_overrun_cb(const struct nlmsghdr *nlh, void *data)
{
	errno = ENOSPC;
	return MNL_CB_ERROR;
}

static int nl_run(struct nl *nl, size_t n, unsigned seq, mnl_cb_t cb, void *data)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = { 0 };
	struct run_ctx c = { .nl = nl, .cb = cb, .data = data };

	/* a control array replaces libmnl's defaults for every control type it covers */
	ctl[NLMSG_ERROR] = nl_err_cb;
	ctl[NLMSG_DONE] = nl_done_cb;
	ctl[NLMSG_OVERRUN] = nl_overrun_cb;
	return mnl_cb_run2(nl->buf, n, seq, nl->portid, nl_data_cb, &c, ctl, NLMSG_MIN_TYPE);
}

/* " (kernel: ...)" when the last error came with a message */
static const char *nl_why(const struct nl *nl)
{
	static __thread char b[300];

	if (!nl->ext[0])
		return "";
	snprintf(b, sizeof(b), " (kernel: %s)", nl->ext);
	return b;
}

static int nl_open(struct nl *nl, struct diag *d)
{
	memset(nl, 0, sizeof(*nl));
	nl->sock = mnl_socket_open(NETLINK_XFRM);
	if (!nl->sock) {
		int err = errno;

		return diag_fail_errno(d, err, "NETLINK_XFRM socket: %s%s", strerror(err),
				       err == EPROTONOSUPPORT ? " (kernel without CONFIG_XFRM_USER / xfrm_user module)" : "");
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		int err = errno;

		mnl_socket_close(nl->sock);
		return diag_fail_errno(d, err, "NETLINK_XFRM bind: %s", strerror(err));
	}
	{
		int one = 1;

		struct timeval tv = { .tv_sec = NL_TIMEOUT_S };

		/* best effort: older kernels have no extended acks */
		mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
		/* every wait for the kernel is bounded */
		setsockopt(mnl_socket_get_fd(nl->sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned)time(NULL);
	nl->buf = malloc(RECV_BUF);
	nl->sbuf = malloc(RECV_BUF);
	if (!nl->buf || !nl->sbuf) {
		free(nl->buf);
		free(nl->sbuf);
		mnl_socket_close(nl->sock);
		return diag_fail_errno(d, ENOMEM, "out of memory");
	}
	return 0;
}

static void nl_close(struct nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->buf);
	free(nl->sbuf);
	memset(nl, 0, sizeof(*nl));
}

static struct nlmsghdr *nl_msg(struct nl *nl, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->sbuf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	return nlh;
}

/* Sends nlh (built in nl->buf) and waits for the ack; returns 0 or -errno. */
static int nl_request(struct nl *nl, struct nlmsghdr *nlh)
{
	unsigned seq = nlh->nlmsg_seq;
	int rounds = 0;
	ssize_t n;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nl->ext[0] = '\0';
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	while (rounds++ < 64) {
		int ret;

		n = mnl_socket_recvfrom(nl->sock, nl->buf, RECV_BUF);
		if (n < 0)
			return -errno;
		ret = nl_run(nl, (size_t)n, seq, NULL, NULL);
		if (ret < 0)
			return -errno;
		if (ret == MNL_CB_STOP)
			return 0;
	}
	return -ETIMEDOUT;
}

/* Dumps message type `type`, calling cb for each reply. */
static int nl_dump(struct nl *nl, uint16_t type, mnl_cb_t cb, void *data)
{
	struct nlmsghdr *nlh = nl_msg(nl, type, NLM_F_DUMP);
	unsigned seq = nlh->nlmsg_seq;
	int rounds = 0;

	nl->ext[0] = '\0';
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	while (rounds++ < MAX_DUMP_ROUNDS) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, RECV_BUF);
		int ret;

		if (n < 0)
			return -errno;
		ret = nl_run(nl, (size_t)n, seq, cb, data);
		if (ret < 0)
			return errno ? -errno : -EIO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
	return -ETIMEDOUT;
}

/* ---- SAs -------------------------------------------------------------------------------- */

/* What identifies and describes one SA, wanted or found. */
struct sa {
	uint32_t daddr, saddr; /* network order */
	uint32_t spi;          /* host order */
	uint8_t mode;
	uint32_t reqid;
	uint32_t mark_v, mark_m;
	bool esn;
	/* algorithms: AEAD (alg/key/icv) or auth (+trunc) and crypt */
	bool aead;
	char alg[IPSEC_ALG_NAME_MAX];
	uint8_t key[IPSEC_KEY_BYTES_MAX];
	unsigned key_len, icv_bits;
	char auth[IPSEC_ALG_NAME_MAX];
	uint8_t auth_key[IPSEC_KEY_BYTES_MAX];
	unsigned auth_key_len, trunc_bits; /* trunc 0: not compared (kernel default) */
	/* found only */
	uint64_t oseq, seq, bytes, packets;
	bool matched;
};

struct sa_list {
	struct sa *v;
	size_t n, cap;
	int err;
};

static struct sa *sa_push(struct sa_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct sa *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

/* RFC 4868 / RFC 2404 truncation for the usual HMACs; 0 for others (the kernel's default). */
static unsigned auth_trunc_bits(const char *alg)
{
	static const struct {
		const char *name;
		unsigned bits;
	} t[] = {
		{ "hmac(md5)", 96 },	  { "hmac(sha1)", 96 },	  { "hmac(sha256)", 128 },
		{ "hmac(sha384)", 192 }, { "hmac(sha512)", 256 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(alg, t[i].name) == 0)
			return t[i].bits;
	return 0;
}

static void sa_set_key(struct sa *s, const struct ipsec_key *k)
{
	s->esn = k->per_tunnel;
	s->aead = k->kind == IPSEC_KEY_AEAD;
	snprintf(s->alg, sizeof(s->alg), "%s", k->alg);
	memcpy(s->key, k->key, k->key_len);
	s->key_len = (unsigned)k->key_len;
	if (s->aead) {
		s->icv_bits = k->icv_bits;
	} else {
		snprintf(s->auth, sizeof(s->auth), "%s", k->auth_alg);
		memcpy(s->auth_key, k->auth_key, k->auth_key_len);
		s->auth_key_len = (unsigned)k->auth_key_len;
		s->trunc_bits = auth_trunc_bits(k->auth_alg);
	}
}

static bool sa_same_id(const struct sa *a, const struct sa *b)
{
	return a->daddr == b->daddr && a->spi == b->spi;
}

/* want vs found: everything that is programmed */
static bool sa_equal(const struct sa *w, const struct sa *f)
{
	if (!sa_same_id(w, f) || w->saddr != f->saddr || w->mode != f->mode || w->reqid != f->reqid ||
	    w->mark_v != f->mark_v || w->mark_m != f->mark_m || w->esn != f->esn || w->aead != f->aead ||
	    strcmp(w->alg, f->alg) != 0 || w->key_len != f->key_len ||
	    memcmp(w->key, f->key, w->key_len) != 0)
		return false;
	if (w->aead)
		return w->icv_bits == f->icv_bits;
	return strcmp(w->auth, f->auth) == 0 && w->auth_key_len == f->auth_key_len &&
	       memcmp(w->auth_key, f->auth_key, w->auth_key_len) == 0 &&
	       (!w->trunc_bits || w->trunc_bits == f->trunc_bits);
}

static void fmt_sa(const struct sa *s, char *buf, size_t len)
{
	char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &s->saddr, src, sizeof(src));
	inet_ntop(AF_INET, &s->daddr, dst, sizeof(dst));
	snprintf(buf, len, "SA src %s dst %s spi 0x%x", src, dst, s->spi);
}

static int attr_collect(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type <= XFRMA_MAX)
		tb[type] = a;
	return MNL_CB_OK;
}

static void copy_alg_name(char *dst, const char *src)
{
	memcpy(dst, src, IPSEC_ALG_NAME_MAX - 1);
	dst[IPSEC_ALG_NAME_MAX - 1] = '\0';
}

static unsigned copy_key(uint8_t *dst, const char *src, unsigned bits, size_t have)
{
	unsigned bytes = (bits + 7) / 8;

	if (bytes > IPSEC_KEY_BYTES_MAX)
		bytes = IPSEC_KEY_BYTES_MAX;
	if (bytes > have)
		bytes = (unsigned)have;
	memcpy(dst, src, bytes);
	return bytes;
}

static int sa_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct sa_list *l = data;
	const struct nlattr *tb[XFRMA_MAX + 1] = { 0 };
	const struct xfrm_usersa_info *p;
	struct sa *s;

	if (nlh->nlmsg_type != XFRM_MSG_NEWSA ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(struct xfrm_usersa_info))
		return MNL_CB_OK;
	p = mnl_nlmsg_get_payload(nlh);
	if (p->family != AF_INET || p->id.proto != IPPROTO_ESP)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*p), attr_collect, tb);
	s = sa_push(l);
	if (!s) {
		l->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	s->daddr = p->id.daddr.a4;
	s->saddr = p->saddr.a4;
	s->spi = ntohl(p->id.spi);
	s->mode = p->mode;
	s->reqid = p->reqid;
	s->esn = !!(p->flags & XFRM_STATE_ESN);
	s->bytes = p->curlft.bytes;
	s->packets = p->curlft.packets;
	if (tb[XFRMA_MARK] && mnl_attr_get_payload_len(tb[XFRMA_MARK]) >= sizeof(struct xfrm_mark)) {
		const struct xfrm_mark *m = mnl_attr_get_payload(tb[XFRMA_MARK]);

		s->mark_v = m->v;
		s->mark_m = m->m;
	}
	if (tb[XFRMA_ALG_AEAD] &&
	    mnl_attr_get_payload_len(tb[XFRMA_ALG_AEAD]) >= sizeof(struct xfrm_algo_aead)) {
		const struct xfrm_algo_aead *a = mnl_attr_get_payload(tb[XFRMA_ALG_AEAD]);

		s->aead = true;
		copy_alg_name(s->alg, a->alg_name);
		s->key_len = copy_key(s->key, a->alg_key, a->alg_key_len,
				      mnl_attr_get_payload_len(tb[XFRMA_ALG_AEAD]) - sizeof(*a));
		s->icv_bits = a->alg_icv_len;
	}
	if (tb[XFRMA_ALG_CRYPT] &&
	    mnl_attr_get_payload_len(tb[XFRMA_ALG_CRYPT]) >= sizeof(struct xfrm_algo)) {
		const struct xfrm_algo *a = mnl_attr_get_payload(tb[XFRMA_ALG_CRYPT]);

		copy_alg_name(s->alg, a->alg_name);
		s->key_len = copy_key(s->key, a->alg_key, a->alg_key_len,
				      mnl_attr_get_payload_len(tb[XFRMA_ALG_CRYPT]) - sizeof(*a));
	}
	if (tb[XFRMA_ALG_AUTH_TRUNC] &&
	    mnl_attr_get_payload_len(tb[XFRMA_ALG_AUTH_TRUNC]) >= sizeof(struct xfrm_algo_auth)) {
		const struct xfrm_algo_auth *a = mnl_attr_get_payload(tb[XFRMA_ALG_AUTH_TRUNC]);

		copy_alg_name(s->auth, a->alg_name);
		s->auth_key_len = copy_key(s->auth_key, a->alg_key, a->alg_key_len,
					   mnl_attr_get_payload_len(tb[XFRMA_ALG_AUTH_TRUNC]) - sizeof(*a));
		s->trunc_bits = a->alg_trunc_len;
	} else if (tb[XFRMA_ALG_AUTH] &&
		   mnl_attr_get_payload_len(tb[XFRMA_ALG_AUTH]) >= sizeof(struct xfrm_algo)) {
		const struct xfrm_algo *a = mnl_attr_get_payload(tb[XFRMA_ALG_AUTH]);

		copy_alg_name(s->auth, a->alg_name);
		s->auth_key_len = copy_key(s->auth_key, a->alg_key, a->alg_key_len,
					   mnl_attr_get_payload_len(tb[XFRMA_ALG_AUTH]) - sizeof(*a));
	}
	if (tb[XFRMA_REPLAY_ESN_VAL] &&
	    mnl_attr_get_payload_len(tb[XFRMA_REPLAY_ESN_VAL]) >= sizeof(struct xfrm_replay_state_esn)) {
		const struct xfrm_replay_state_esn *r = mnl_attr_get_payload(tb[XFRMA_REPLAY_ESN_VAL]);

		s->oseq = (uint64_t)r->oseq_hi << 32 | r->oseq;
		s->seq = (uint64_t)r->seq_hi << 32 | r->seq;
	} else if (tb[XFRMA_REPLAY_VAL] &&
		   mnl_attr_get_payload_len(tb[XFRMA_REPLAY_VAL]) >= sizeof(struct xfrm_replay_state)) {
		const struct xfrm_replay_state *r = mnl_attr_get_payload(tb[XFRMA_REPLAY_VAL]);

		s->oseq = r->oseq;
		s->seq = r->seq;
	}
	return MNL_CB_OK;
}

static int sa_dump_ours(struct nl *nl, struct sa_list *out, struct diag *d)
{
	struct sa_list all = { 0 };
	size_t i;
	int err = nl_dump(nl, XFRM_MSG_GETSA, sa_dump_cb, &all);

	if (err || all.err) {
		err = err ? err : all.err;
		free(all.v);
		return diag_fail_errno(d, err, "dumping XFRM SAs: %s%s", strerror(-err), nl_why(nl));
	}
	memset(out, 0, sizeof(*out));
	for (i = 0; i < all.n; i++) {
		struct sa *s;

		if (all.v[i].reqid != XFRM_CILIATE_REQID)
			continue;
		s = sa_push(out);
		if (!s) {
			free(all.v);
			return diag_fail_errno(d, ENOMEM, "out of memory");
		}
		*s = all.v[i];
	}
	free(all.v);
	return 0;
}

static int sa_add(struct nl *nl, const struct sa *s, struct diag *d)
{
	struct nlmsghdr *nlh = nl_msg(nl, XFRM_MSG_NEWSA, NLM_F_CREATE | NLM_F_EXCL);
	struct xfrm_usersa_info *p = mnl_nlmsg_put_extra_header(nlh, sizeof(*p));
	char what[128];
	int err;

	p->sel.family = AF_INET;
	p->id.daddr.a4 = s->daddr;
	p->id.spi = htonl(s->spi);
	p->id.proto = IPPROTO_ESP;
	p->saddr.a4 = s->saddr;
	p->family = AF_INET;
	p->mode = s->mode;
	p->reqid = s->reqid;
	p->lft.soft_byte_limit = XFRM_INF;
	p->lft.hard_byte_limit = XFRM_INF;
	p->lft.soft_packet_limit = XFRM_INF;
	p->lft.hard_packet_limit = XFRM_INF;
	if (s->esn) {
		struct {
			struct xfrm_replay_state_esn r;
			uint32_t bmp[ESN_BMP_WORDS];
		} esn;

		memset(&esn, 0, sizeof(esn));
		esn.r.bmp_len = ESN_BMP_WORDS;
		esn.r.replay_window = ESN_WINDOW;
		p->flags |= XFRM_STATE_ESN;
		p->replay_window = 0;
		mnl_attr_put(nlh, XFRMA_REPLAY_ESN_VAL, sizeof(esn), &esn);
	} else {
		p->replay_window = REPLAY_WINDOW;
	}
	if (s->aead) {
		char b[sizeof(struct xfrm_algo_aead) + IPSEC_KEY_BYTES_MAX];
		struct xfrm_algo_aead *a = (struct xfrm_algo_aead *)b;

		memset(b, 0, sizeof(b));
		snprintf(a->alg_name, sizeof(a->alg_name), "%s", s->alg);
		a->alg_key_len = s->key_len * 8;
		a->alg_icv_len = s->icv_bits;
		memcpy(a->alg_key, s->key, s->key_len);
		mnl_attr_put(nlh, XFRMA_ALG_AEAD, sizeof(*a) + s->key_len, a);
	} else {
		char b[sizeof(struct xfrm_algo_auth) + IPSEC_KEY_BYTES_MAX];

		memset(b, 0, sizeof(b));
		if (s->trunc_bits) {
			struct xfrm_algo_auth *a = (struct xfrm_algo_auth *)b;

			snprintf(a->alg_name, sizeof(a->alg_name), "%s", s->auth);
			a->alg_key_len = s->auth_key_len * 8;
			a->alg_trunc_len = s->trunc_bits;
			memcpy(a->alg_key, s->auth_key, s->auth_key_len);
			mnl_attr_put(nlh, XFRMA_ALG_AUTH_TRUNC, sizeof(*a) + s->auth_key_len, a);
		} else {
			struct xfrm_algo *a = (struct xfrm_algo *)b;

			snprintf(a->alg_name, sizeof(a->alg_name), "%s", s->auth);
			a->alg_key_len = s->auth_key_len * 8;
			memcpy(a->alg_key, s->auth_key, s->auth_key_len);
			mnl_attr_put(nlh, XFRMA_ALG_AUTH, sizeof(*a) + s->auth_key_len, a);
		}
		memset(b, 0, sizeof(b));
		{
			struct xfrm_algo *a = (struct xfrm_algo *)b;

			snprintf(a->alg_name, sizeof(a->alg_name), "%s", s->alg);
			a->alg_key_len = s->key_len * 8;
			memcpy(a->alg_key, s->key, s->key_len);
			mnl_attr_put(nlh, XFRMA_ALG_CRYPT, sizeof(*a) + s->key_len, a);
		}
	}
	if (s->mark_v || s->mark_m) {
		struct xfrm_mark m = { .v = s->mark_v, .m = s->mark_m };

		mnl_attr_put(nlh, XFRMA_MARK, sizeof(m), &m);
	}
	err = nl_request(nl, nlh);
	if (!err)
		return 0;
	fmt_sa(s, what, sizeof(what));
	if (err == -EEXIST)
		return diag_fail_errno(d, err, "adding %s: an SA with this destination and SPI exists and "
				       "is not ciliate's (reqid is not 0x%x)", what, XFRM_CILIATE_REQID);
	return diag_fail_errno(d, err, "adding %s (%s%s%s): %s%s%s", what, s->aead ? "" : s->auth,
			       s->aead ? "" : " + ", s->alg, strerror(-err), nl_why(nl),
			       err == -EPROTONOSUPPORT ? " (no ESP in this kernel: esp4 module missing?)" :
			       err == -ENOSYS ? " (the kernel lacks this algorithm)" :
			       err == -ENOENT ? " (the kernel cannot build the ESP transform: a crypto module is "
						"missing, e.g. drbg for the IV generators seqiv/echainiv, authencesn "
						"for ESN with auth+enc, gcm/ghash_generic for rfc4106)" : "");
}

static int sa_del(struct nl *nl, const struct sa *s, struct diag *d)
{
	struct nlmsghdr *nlh = nl_msg(nl, XFRM_MSG_DELSA, 0);
	struct xfrm_usersa_id *id = mnl_nlmsg_put_extra_header(nlh, sizeof(*id));
	char what[128];
	int err;

	id->daddr.a4 = s->daddr;
	id->spi = htonl(s->spi);
	id->family = AF_INET;
	id->proto = IPPROTO_ESP;
	if (s->mark_v || s->mark_m) {
		struct xfrm_mark m = { .v = s->mark_v, .m = s->mark_m };

		mnl_attr_put(nlh, XFRMA_MARK, sizeof(m), &m);
	}
	err = nl_request(nl, nlh);
	if (!err || err == -ESRCH)
		return 0;
	fmt_sa(s, what, sizeof(what));
	return diag_fail_errno(d, err, "deleting %s: %s%s", what, strerror(-err), nl_why(nl));
}

/* ---- policies --------------------------------------------------------------------------- */

struct pol {
	uint32_t src, dst; /* selector, network order */
	uint8_t src_len, dst_len;
	uint8_t dir;
	uint32_t mark_v, mark_m;
	uint32_t priority;
	uint32_t index; /* found only */
	/* the template */
	uint32_t t_saddr, t_daddr, t_spi, t_reqid;
	uint8_t t_mode;
	bool matched;
};

struct pol_list {
	struct pol *v;
	size_t n, cap;
	int err;
};

static struct pol *pol_push(struct pol_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct pol *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

static bool pol_same_id(const struct pol *a, const struct pol *b)
{
	return a->src == b->src && a->dst == b->dst && a->src_len == b->src_len &&
	       a->dst_len == b->dst_len && a->dir == b->dir && a->mark_v == b->mark_v &&
	       a->mark_m == b->mark_m;
}

static bool pol_equal(const struct pol *a, const struct pol *b)
{
	return pol_same_id(a, b) && a->priority == b->priority && a->t_saddr == b->t_saddr &&
	       a->t_daddr == b->t_daddr && a->t_spi == b->t_spi && a->t_reqid == b->t_reqid &&
	       a->t_mode == b->t_mode;
}

static const char *dir_name(uint8_t dir)
{
	return dir == XFRM_POLICY_IN ? "in" : dir == XFRM_POLICY_OUT ? "out" : dir == XFRM_POLICY_FWD ? "fwd" : "?";
}

static void fmt_pol(const struct pol *p, char *buf, size_t len)
{
	char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &p->src, src, sizeof(src));
	inet_ntop(AF_INET, &p->dst, dst, sizeof(dst));
	snprintf(buf, len, "policy %s %s/%u -> %s/%u", dir_name(p->dir), src, p->src_len, dst, p->dst_len);
}

static int pol_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct pol_list *l = data;
	const struct nlattr *tb[XFRMA_MAX + 1] = { 0 };
	const struct xfrm_userpolicy_info *p;
	const struct xfrm_user_tmpl *t;
	size_t nt, i;
	struct pol *o;

	if (nlh->nlmsg_type != XFRM_MSG_NEWPOLICY ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(struct xfrm_userpolicy_info))
		return MNL_CB_OK;
	p = mnl_nlmsg_get_payload(nlh);
	if (p->sel.family != AF_INET || p->dir > XFRM_POLICY_FWD)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(*p), attr_collect, tb);
	if (tb[XFRMA_POLICY_TYPE] &&
	    mnl_attr_get_payload_len(tb[XFRMA_POLICY_TYPE]) >= sizeof(struct xfrm_userpolicy_type)) {
		const struct xfrm_userpolicy_type *ty = mnl_attr_get_payload(tb[XFRMA_POLICY_TYPE]);

		if (ty->type != XFRM_POLICY_TYPE_MAIN)
			return MNL_CB_OK;
	}
	if (!tb[XFRMA_TMPL])
		return MNL_CB_OK;
	t = mnl_attr_get_payload(tb[XFRMA_TMPL]);
	nt = mnl_attr_get_payload_len(tb[XFRMA_TMPL]) / sizeof(*t);
	for (i = 0; i < nt; i++)
		if (t[i].reqid == XFRM_CILIATE_REQID)
			break;
	if (i == nt)
		return MNL_CB_OK;
	o = pol_push(l);
	if (!o) {
		l->err = -ENOMEM;
		return MNL_CB_ERROR;
	}
	o->src = p->sel.saddr.a4;
	o->dst = p->sel.daddr.a4;
	o->src_len = p->sel.prefixlen_s;
	o->dst_len = p->sel.prefixlen_d;
	o->dir = p->dir;
	o->priority = p->priority;
	o->index = p->index;
	o->t_saddr = t[i].saddr.a4;
	o->t_daddr = t[i].id.daddr.a4;
	o->t_spi = ntohl(t[i].id.spi);
	o->t_reqid = t[i].reqid;
	o->t_mode = t[i].mode;
	if (nt != 1)
		o->t_reqid = 0; /* more than one template: never equal to ours, gets replaced */
	if (tb[XFRMA_MARK] && mnl_attr_get_payload_len(tb[XFRMA_MARK]) >= sizeof(struct xfrm_mark)) {
		const struct xfrm_mark *m = mnl_attr_get_payload(tb[XFRMA_MARK]);

		o->mark_v = m->v;
		o->mark_m = m->m;
	}
	return MNL_CB_OK;
}

static int pol_dump_ours(struct nl *nl, struct pol_list *out, struct diag *d)
{
	int err;

	memset(out, 0, sizeof(*out));
	err = nl_dump(nl, XFRM_MSG_GETPOLICY, pol_dump_cb, out);
	if (err || out->err) {
		err = err ? err : out->err;
		free(out->v);
		out->v = NULL;
		return diag_fail_errno(d, err, "dumping XFRM policies: %s%s", strerror(-err), nl_why(nl));
	}
	return 0;
}

static uint32_t prefix_mask(uint8_t len)
{
	return len ? htonl(~0u << (32 - len)) : 0;
}

/* replace: XFRM_MSG_UPDPOLICY (add or replace), else NEWPOLICY (fails if one exists) */
static int pol_put(struct nl *nl, const struct pol *o, bool replace, struct diag *d)
{
	struct nlmsghdr *nlh = nl_msg(nl, replace ? XFRM_MSG_UPDPOLICY : XFRM_MSG_NEWPOLICY,
				      replace ? 0 : NLM_F_CREATE | NLM_F_EXCL);
	struct xfrm_userpolicy_info *p = mnl_nlmsg_put_extra_header(nlh, sizeof(*p));
	struct xfrm_user_tmpl t;
	char what[128];
	int err;

	p->sel.family = AF_INET;
	p->sel.saddr.a4 = o->src;
	p->sel.daddr.a4 = o->dst;
	p->sel.prefixlen_s = o->src_len;
	p->sel.prefixlen_d = o->dst_len;
	p->lft.soft_byte_limit = XFRM_INF;
	p->lft.hard_byte_limit = XFRM_INF;
	p->lft.soft_packet_limit = XFRM_INF;
	p->lft.hard_packet_limit = XFRM_INF;
	p->priority = o->priority;
	p->dir = o->dir;
	p->action = XFRM_POLICY_ALLOW;
	memset(&t, 0, sizeof(t));
	t.id.daddr.a4 = o->t_daddr;
	t.id.spi = htonl(o->t_spi);
	t.id.proto = IPPROTO_ESP;
	t.family = AF_INET;
	t.saddr.a4 = o->t_saddr;
	t.reqid = o->t_reqid;
	t.mode = o->t_mode;
	t.aalgos = t.ealgos = t.calgos = ~0u;
	mnl_attr_put(nlh, XFRMA_TMPL, sizeof(t), &t);
	if (o->mark_v || o->mark_m) {
		struct xfrm_mark m = { .v = o->mark_v, .m = o->mark_m };

		mnl_attr_put(nlh, XFRMA_MARK, sizeof(m), &m);
	}
	err = nl_request(nl, nlh);
	if (!err)
		return 0;
	fmt_pol(o, what, sizeof(what));
	if (err == -EEXIST)
		return diag_fail_errno(d, err, "adding %s: a policy with this selector exists and is not "
				       "ciliate's", what);
	return diag_fail_errno(d, err, "%s %s: %s%s", replace ? "replacing" : "adding", what,
			       strerror(-err), nl_why(nl));
}

static int pol_del(struct nl *nl, const struct pol *o, struct diag *d)
{
	struct nlmsghdr *nlh = nl_msg(nl, XFRM_MSG_DELPOLICY, 0);
	struct xfrm_userpolicy_id *id = mnl_nlmsg_put_extra_header(nlh, sizeof(*id));
	char what[128];
	int err;

	id->index = o->index;
	id->dir = o->dir;
	if (o->mark_v || o->mark_m) {
		struct xfrm_mark m = { .v = o->mark_v, .m = o->mark_m };

		mnl_attr_put(nlh, XFRMA_MARK, sizeof(m), &m);
	}
	err = nl_request(nl, nlh);
	if (!err || err == -ENOENT)
		return 0;
	fmt_pol(o, what, sizeof(what));
	return diag_fail_errno(d, err, "deleting %s: %s%s", what, strerror(-err), nl_why(nl));
}

/* ---- what a spec wants ------------------------------------------------------------------ */

static int key_ok(const struct ipsec_key *k, const char *which, struct diag *d)
{
	if (k->id < IPSEC_KEY_ID_MIN || k->id > IPSEC_KEY_ID_MAX)
		return diag_fail(d, "%s key id %u out of range 1..15", which, k->id);
	if (k->kind != IPSEC_KEY_AEAD && k->kind != IPSEC_KEY_AUTH_ENC)
		return diag_fail(d, "%s key %u has no algorithm", which, k->id);
	return 0;
}

/* The key used towards a peer: ours, unless it announces our previous key (not rotated yet). */
static const struct ipsec_key *out_key(const struct ipsec_sync_spec *w, const struct ipsec_peer *p)
{
	if (w->previous && p->key_id && p->key_id == w->previous->id)
		return w->previous;
	return w->current;
}

static int want_build(const struct ipsec_sync_spec *w, struct sa_list *sas, struct pol_list *pols,
		      struct diag *d)
{
	const struct ipsec_key *keys[2] = { w->current, w->previous };
	uint8_t mode = w->mode == IPSEC_MODE_TRANSPORT ? XFRM_MODE_TRANSPORT : XFRM_MODE_TUNNEL;
	size_t i, j, k;
	int err;

	memset(sas, 0, sizeof(*sas));
	memset(pols, 0, sizeof(*pols));
	if (!w->current)
		return diag_fail(d, "IPsec sync: no current key");
	err = key_ok(w->current, "current", d);
	if (!err && w->previous)
		err = key_ok(w->previous, "previous", d);
	if (err)
		return err;
	if (w->previous && w->previous->id == w->current->id)
		return diag_fail(d, "IPsec sync: previous key has the current key's id %u", w->current->id);
	if (w->mode != IPSEC_MODE_TUNNEL && w->mode != IPSEC_MODE_TRANSPORT)
		return diag_fail(d, "IPsec sync: unknown mode %d", (int)w->mode);
	if (w->mode == IPSEC_MODE_TUNNEL && w->local_pod_prefix > 32)
		return diag_fail(d, "IPsec sync: local pod CIDR prefix /%u", w->local_pod_prefix);

	for (k = 0; k < 2; k++) {
		struct sa *s;

		if (!keys[k])
			continue;
		/* inbound: one per key (destination + SPI identify it for the kernel) */
		s = sa_push(sas);
		if (!s)
			goto nomem;
		s->daddr = w->local_ip.s_addr;
		s->spi = keys[k]->id;
		s->mode = mode;
		s->reqid = XFRM_CILIATE_REQID;
		if (w->use_marks) {
			s->mark_v = IPSEC_MARK_MAGIC_DECRYPT;
			s->mark_m = 0x0F00;
		}
		sa_set_key(s, keys[k]);
		for (i = 0; i < w->n_peers; i++) {
			const struct ipsec_peer *p = &w->peers[i];

			if (p->node_ip.s_addr == w->local_ip.s_addr)
				return diag_fail(d, "IPsec sync: peer %zu has the local node address", i);
			for (j = 0; j < i; j++) {
				if (w->peers[j].node_ip.s_addr == p->node_ip.s_addr)
					return diag_fail(d, "IPsec sync: peers %zu and %zu have the same node address",
							 j, i);
				if (w->mode == IPSEC_MODE_TUNNEL && w->peers[j].pod_prefix == p->pod_prefix &&
				    ((w->peers[j].pod_cidr.s_addr ^ p->pod_cidr.s_addr) & prefix_mask(p->pod_prefix)) == 0)
					return diag_fail(d, "IPsec sync: peers %zu and %zu have the same pod CIDR", j, i);
			}
			if (w->mode == IPSEC_MODE_TUNNEL && p->pod_prefix > 32)
				return diag_fail(d, "IPsec sync: peer %zu pod CIDR prefix /%u", i, p->pod_prefix);
			s = sa_push(sas);
			if (!s)
				goto nomem;
			s->daddr = p->node_ip.s_addr;
			s->saddr = w->local_ip.s_addr;
			s->spi = keys[k]->id;
			s->mode = mode;
			s->reqid = XFRM_CILIATE_REQID;
			if (w->use_marks) {
				s->mark_v = ipsec_encrypt_mark(keys[k]->id);
				s->mark_m = 0xFF00;
			}
			sa_set_key(s, keys[k]);
		}
	}

	for (i = 0; i < w->n_peers; i++) {
		const struct ipsec_peer *p = &w->peers[i];
		uint32_t lsrc, lsrc_len, rsrc, rsrc_len;
		struct pol *o;
		int dir;

		if (w->mode == IPSEC_MODE_TUNNEL) {
			lsrc = w->local_pod_cidr.s_addr & prefix_mask(w->local_pod_prefix);
			lsrc_len = w->local_pod_prefix;
			rsrc = p->pod_cidr.s_addr & prefix_mask(p->pod_prefix);
			rsrc_len = p->pod_prefix;
		} else {
			lsrc = w->local_ip.s_addr;
			rsrc = p->node_ip.s_addr;
			lsrc_len = rsrc_len = 32;
		}
		for (dir = XFRM_POLICY_IN; dir <= XFRM_POLICY_FWD; dir++) {
			if (dir == XFRM_POLICY_FWD && w->mode == IPSEC_MODE_TRANSPORT)
				continue;
			o = pol_push(pols);
			if (!o)
				goto nomem;
			o->dir = (uint8_t)dir;
			o->priority = XFRM_CILIATE_PRIORITY;
			o->t_reqid = XFRM_CILIATE_REQID;
			o->t_mode = mode;
			if (dir == XFRM_POLICY_OUT) {
				o->src = lsrc;
				o->src_len = (uint8_t)lsrc_len;
				o->dst = rsrc;
				o->dst_len = (uint8_t)rsrc_len;
				o->t_saddr = w->local_ip.s_addr;
				o->t_daddr = p->node_ip.s_addr;
				o->t_spi = out_key(w, p)->id;
				if (w->use_marks) {
					o->mark_v = IPSEC_MARK_MAGIC_ENCRYPT;
					o->mark_m = 0x0F00;
				}
			} else {
				/* any of our SPIs: old and new keys both decrypt during a rotation */
				o->src = rsrc;
				o->src_len = (uint8_t)rsrc_len;
				o->dst = lsrc;
				o->dst_len = (uint8_t)lsrc_len;
				o->t_daddr = w->local_ip.s_addr;
			}
		}
	}
	return 0;
nomem:
	return diag_fail_errno(d, ENOMEM, "out of memory");
}

/* ---- entry points ----------------------------------------------------------------------- */

int xfrm_ipsec_sync(const struct ipsec_sync_spec *want, struct ipsec_sync_result *res,
		    struct diag *d)
{
	struct ipsec_sync_result r = { 0 };
	struct sa_list wsa = { 0 }, fsa = { 0 };
	struct pol_list wpol = { 0 }, fpol = { 0 };
	struct nl nl = { 0 };
	size_t i, j;
	int err;

	err = want_build(want, &wsa, &wpol, d);
	if (err)
		goto out;
	err = nl_open(&nl, d);
	if (err)
		goto out;
	err = sa_dump_ours(&nl, &fsa, d);
	if (err)
		goto out;
	err = pol_dump_ours(&nl, &fpol, d);
	if (err)
		goto out;

	/* 1. SAs: keep the equal ones, replace changed ones, add missing ones */
	for (i = 0; i < wsa.n; i++) {
		struct sa *w = &wsa.v[i];
		bool replace = false;

		for (j = 0; j < fsa.n; j++) {
			if (fsa.v[j].matched || !sa_same_id(w, &fsa.v[j]))
				continue;
			fsa.v[j].matched = true;
			if (sa_equal(w, &fsa.v[j])) {
				w->matched = true;
			} else {
				err = sa_del(&nl, &fsa.v[j], d);
				if (err)
					goto out;
				replace = true;
			}
		}
		if (w->matched)
			continue;
		err = sa_add(&nl, w, d);
		if (err)
			goto out;
		if (replace)
			r.sa_replaced++;
		else
			r.sa_added++;
	}
	/* 2. policies: the out policy switches SPI here, after the new SAs exist */
	for (i = 0; i < wpol.n; i++) {
		struct pol *w = &wpol.v[i];
		bool exists = false;

		for (j = 0; j < fpol.n; j++) {
			if (fpol.v[j].matched || !pol_same_id(w, &fpol.v[j]))
				continue;
			fpol.v[j].matched = true;
			exists = true;
			w->matched = pol_equal(w, &fpol.v[j]);
			break;
		}
		if (w->matched)
			continue;
		err = pol_put(&nl, w, exists, d);
		if (err)
			goto out;
		if (exists)
			r.pol_replaced++;
		else
			r.pol_added++;
	}
	/* 3. what is ours and no longer wanted: policies first, then their SAs */
	for (j = 0; j < fpol.n; j++) {
		if (fpol.v[j].matched)
			continue;
		err = pol_del(&nl, &fpol.v[j], d);
		if (err)
			goto out;
		r.pol_removed++;
	}
	for (j = 0; j < fsa.n; j++) {
		if (fsa.v[j].matched)
			continue;
		err = sa_del(&nl, &fsa.v[j], d);
		if (err)
			goto out;
		r.sa_removed++;
	}
out:
	if (res)
		*res = r;
	nl_close(&nl);
	free(wsa.v);
	free(fsa.v);
	free(wpol.v);
	free(fpol.v);
	return err;
}

static int flush(bool only_spi, uint32_t spi, unsigned *n_removed, struct diag *d)
{
	struct sa_list fsa = { 0 };
	struct pol_list fpol = { 0 };
	struct nl nl;
	unsigned n = 0;
	size_t i;
	int err = nl_open(&nl, d);

	if (err)
		return err;
	if (!only_spi) {
		err = pol_dump_ours(&nl, &fpol, d);
		for (i = 0; !err && i < fpol.n; i++) {
			err = pol_del(&nl, &fpol.v[i], d);
			n += !err;
		}
	}
	if (!err)
		err = sa_dump_ours(&nl, &fsa, d);
	for (i = 0; !err && i < fsa.n; i++) {
		if (only_spi && fsa.v[i].spi != spi)
			continue;
		err = sa_del(&nl, &fsa.v[i], d);
		n += !err;
	}
	if (n_removed)
		*n_removed = n;
	nl_close(&nl);
	free(fsa.v);
	free(fpol.v);
	return err;
}

int xfrm_ipsec_flush_ours(unsigned *n_removed, struct diag *d)
{
	return flush(false, 0, n_removed, d);
}

int xfrm_ipsec_delete_spi(uint32_t spi, unsigned *n_removed, struct diag *d)
{
	return flush(true, spi, n_removed, d);
}

static void read_xfrm_stat(struct ipsec_status *st)
{
	FILE *f = fopen("/proc/net/xfrm_stat", "r");
	char name[64];
	unsigned long long v;
	int lines = 0;

	if (!f)
		return;
	st->errors_known = true;
	while (lines++ < 256 && fscanf(f, "%63s %llu", name, &v) == 2) {
		st->errors += v;
		if (v && st->n_stats < XFRM_STATUS_MAX_STATS) {
			snprintf(st->stats[st->n_stats].name, sizeof(st->stats[0].name), "%s", name);
			st->stats[st->n_stats++].value = v;
		}
	}
	fclose(f);
}

int xfrm_ipsec_status(struct ipsec_status *st, struct diag *d)
{
	struct sa_list fsa = { 0 };
	struct pol_list fpol = { 0 };
	struct nl nl;
	size_t i;
	int err;

	memset(st, 0, sizeof(*st));
	st->max_seq_limit = XFRM_MAX_SEQ_32;
	err = nl_open(&nl, d);
	if (err)
		return err;
	err = sa_dump_ours(&nl, &fsa, d);
	if (!err)
		err = pol_dump_ours(&nl, &fpol, d);
	nl_close(&nl);
	if (err)
		goto out;
	st->keys_in_use = fsa.n;
	st->n_policies = fpol.n;
	for (i = 0; i < fsa.n; i++) {
		const struct sa *s = &fsa.v[i];

		if (s->esn)
			st->max_seq_limit = XFRM_MAX_SEQ_ESN;
		if (s->oseq > st->max_seq)
			st->max_seq = s->oseq;
		if (s->seq > st->max_seq)
			st->max_seq = s->seq;
		if (st->n_sas < XFRM_STATUS_MAX_SAS) {
			struct xfrm_sa_info *o = &st->sas[st->n_sas++];

			o->spi = s->spi;
			o->dir = s->saddr ? XFRM_SA_OUT : XFRM_SA_IN;
			o->src.s_addr = s->saddr;
			o->dst.s_addr = s->daddr;
			o->mode = s->mode;
			o->reqid = s->reqid;
			o->mark = s->mark_v;
			o->mark_mask = s->mark_m;
			o->esn = s->esn;
			o->oseq = s->oseq;
			o->seq = s->seq;
			o->bytes = s->bytes;
			o->packets = s->packets;
			snprintf(o->alg, sizeof(o->alg), "%s", s->alg);
		}
	}
	read_xfrm_stat(st);
out:
	free(fsa.v);
	free(fpol.v);
	return err;
}

int xfrm_ipsec_status_format(const struct ipsec_status *st, char *buf, size_t len)
{
	size_t off = 0, i;
	int n;

#define PUT(...)                                                                   \
	do {                                                                       \
		n = snprintf(buf + off, off < len ? len - off : 0, __VA_ARGS__);   \
		if (n > 0)                                                         \
			off += (size_t)n;                                          \
	} while (0)
	if (len)
		buf[0] = '\0';
	PUT("Encryption: IPsec\n");
	PUT("Keys in use: %zu\n", st->keys_in_use);
	PUT("Max Seq. Number: 0x%llx/0x%llx\n", (unsigned long long)st->max_seq,
	    (unsigned long long)st->max_seq_limit);
	if (st->errors_known)
		PUT("Errors: %llu\n", (unsigned long long)st->errors);
	else
		PUT("Errors: unknown (no /proc/net/xfrm_stat)\n");
	for (i = 0; i < st->n_stats; i++)
		PUT("\t%s: %llu\n", st->stats[i].name, (unsigned long long)st->stats[i].value);
	for (i = 0; i < st->n_sas; i++) {
		const struct xfrm_sa_info *s = &st->sas[i];
		char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &s->src, src, sizeof(src));
		inet_ntop(AF_INET, &s->dst, dst, sizeof(dst));
		PUT("SA %s spi 0x%x %s -> %s %s oseq 0x%llx seq 0x%llx packets %llu\n",
		    s->dir == XFRM_SA_OUT ? "out" : "in ", s->spi, src, dst, s->alg,
		    (unsigned long long)s->oseq, (unsigned long long)s->seq,
		    (unsigned long long)s->packets);
	}
#undef PUT
	return (int)off;
}

int xfrm_ipsec_probe(struct diag *d)
{
	static const uint8_t key[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
	struct nl nl;
	struct sa s;
	int err;

	err = nl_open(&nl, d);
	if (err)
		return err;
	memset(&s, 0, sizeof(s));
	s.daddr = htonl(0x7f0000fe); /* 127.0.0.254: never used by a policy */
	s.spi = 0xc1a7e0ffu;
	s.mode = XFRM_MODE_TUNNEL;
	s.reqid = XFRM_CILIATE_REQID;
	s.aead = true;
	snprintf(s.alg, sizeof(s.alg), "rfc4106(gcm(aes))");
	memcpy(s.key, key, sizeof(key));
	s.key_len = sizeof(key);
	s.icv_bits = 128;
	err = sa_add(&nl, &s, d);
	if (err == -EEXIST) /* left over: remove and retry once */
		err = sa_del(&nl, &s, d) ? err : sa_add(&nl, &s, d);
	if (!err)
		err = sa_del(&nl, &s, d);
	else
		diag_prefix(d, "probing ESP");
	nl_close(&nl);
	return err;
}
