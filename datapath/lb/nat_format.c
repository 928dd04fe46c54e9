/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ciliate bpf nat list` and `ciliate bpf ct list`: the NAT and conntrack map entries as
 * cilium-dbg prints its own. Shapes (written from their descriptions, docs/SERVICES.md):
 * - NAT: `cilium-dbg bpf nat list` (REFERENCE.md section 4): the tuple, "XLATE_SRC" (OUT) or
 *   "XLATE_DST" (IN) and the address:port, "Created=<N>sec ago NeedsCT=<0|1>".
 * - CT: `cilium-dbg bpf ct list global`, cilium/cilium pkg/maps/ctmap/types.go
 *   (CtKey4Global.Dump: "<PROTO> <OUT|IN> <src>:<port> -> <dst>:<port> [related ][service ]";
 *   CtEntry.StringWithTimeDiff: "expires=... RxPackets= RxBytes= RxFlagsSeen=%#02x
 *   LastRxReport= TxPackets= TxBytes= TxFlagsSeen=%#02x LastTxReport= Flags=%#04x [ words ]
 *   RevNAT= SourceSecurityID= IfIndex="), plus "BackendID=" on service entries.
 */
#include "lb/nat_format.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "loader/conntrack.h"

/* "10.0.0.1:80", "[fd00::1]:80" (port in network order). */
static const char *hostport(char *buf, size_t size, uint8_t family, const union ciliate_addr *a,
			    uint16_t port_be)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(family == CILIATE_AF_INET6 ? AF_INET6 : AF_INET, a->bytes, ip, sizeof(ip));
	snprintf(buf, size, family == CILIATE_AF_INET6 ? "[%s]:%u" : "%s:%u", ip, ntohs(port_be));
	return buf;
}

static const char *ip_text(char *buf, uint8_t family, const union ciliate_addr *a)
{
	inet_ntop(family == CILIATE_AF_INET6 ? AF_INET6 : AF_INET, a->bytes, buf,
		  INET6_ADDRSTRLEN);
	return buf;
}

static long long secs_between(uint64_t later, uint64_t earlier)
{
	return ((long long)later - (long long)earlier) / 1000000000ll;
}

/* ---- NAT --------------------------------------------------------------------------------- */

static int nat_cmp(const void *a, const void *b)
{
	const struct nat_key *x = &((const struct nat_dump_entry *)a)->key;
	const struct nat_key *y = &((const struct nat_dump_entry *)b)->key;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if ((c = memcmp(&x->saddr, &y->saddr, sizeof(x->saddr))))
		return c;
	if ((c = memcmp(&x->daddr, &y->daddr, sizeof(x->daddr))))
		return c;
	if (x->sport != y->sport)
		return ntohs(x->sport) < ntohs(y->sport) ? -1 : 1;
	if (x->dport != y->dport)
		return ntohs(x->dport) < ntohs(y->dport) ? -1 : 1;
	return (int)x->dir - (int)y->dir;
}

void nat_dump_sort(struct nat_dump_entry *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), nat_cmp);
}

const char *nat_entry_format(char *buf, size_t size, const struct nat_key *k,
			     const struct nat_entry *v, uint64_t now_ns)
{
	char s[64], d[64], t[64], pb[8];
	bool out = k->dir == NAT_DIR_EGRESS;

	snprintf(buf, size, "%s %s %s -> %s XLATE_%s %s Created=%lldsec ago NeedsCT=%d",
		 proto_name(k->proto, pb, sizeof(pb)), out ? "OUT" : "IN",
		 hostport(s, sizeof(s), k->family, &k->saddr, k->sport),
		 hostport(d, sizeof(d), k->family, &k->daddr, k->dport), out ? "SRC" : "DST",
		 hostport(t, sizeof(t), k->family, &v->to_addr, v->to_port),
		 secs_between(now_ns, v->created_ns), (v->flags & NAT_F_NEEDS_CT) ? 1 : 0);
	return buf;
}

void nat_print_list(FILE *f, const struct nat_dump_entry *v, size_t n, uint64_t now_ns)
{
	char line[320];

	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", nat_entry_format(line, sizeof(line), &v[i].key, &v[i].val,
						    now_ns));
}

json_t *nat_list_json(const struct nat_dump_entry *v, size_t n, uint64_t now_ns)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], t[INET6_ADDRSTRLEN], pb[8];
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct nat_key *k = &v[i].key;
		const struct nat_entry *e = &v[i].val;
		bool out = k->dir == NAT_DIR_EGRESS;
		json_t *o = json_object();

		json_object_set_new(o, "protocol", json_string(proto_name(k->proto, pb, sizeof(pb))));
		json_object_set_new(o, "direction", json_string(out ? "OUT" : "IN"));
		json_object_set_new(o, "source", json_string(ip_text(s, k->family, &k->saddr)));
		json_object_set_new(o, "source_port", json_integer(ntohs(k->sport)));
		json_object_set_new(o, "destination", json_string(ip_text(d, k->family, &k->daddr)));
		json_object_set_new(o, "destination_port", json_integer(ntohs(k->dport)));
		json_object_set_new(o, "xlate", json_string(out ? "SRC" : "DST"));
		json_object_set_new(o, "to_address", json_string(ip_text(t, k->family, &e->to_addr)));
		json_object_set_new(o, "to_port", json_integer(ntohs(e->to_port)));
		json_object_set_new(o, "created_ns", json_integer((json_int_t)e->created_ns));
		json_object_set_new(o, "created_sec_ago",
				    json_integer(secs_between(now_ns, e->created_ns)));
		json_object_set_new(o, "last_used_ns", json_integer((json_int_t)e->last_used_ns));
		json_object_set_new(o, "nodeport", json_boolean(e->flags & NAT_F_NODEPORT));
		json_object_set_new(o, "masquerade", json_boolean(e->flags & NAT_F_MASQUERADE));
		json_object_set_new(o, "needs_ct", json_boolean(e->flags & NAT_F_NEEDS_CT));
		json_object_set_new(o, "dsr", json_boolean(e->flags & NAT_F_DSR));
		json_object_set_new(o, "egress_gateway", json_boolean(e->flags & NAT_F_EGRESS_GW));
		json_object_set_new(o, "rev_nat_index", json_integer(e->rev_nat_index));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* ---- conntrack --------------------------------------------------------------------------- */

static int ct_cmp(const void *a, const void *b)
{
	const struct ct_dump_entry *x = a, *y = b;
	struct ct_key kx, ky;
	int c;

	ct_key_original(&x->key, &x->val, &kx);
	ct_key_original(&y->key, &y->val, &ky);
	if (kx.family != ky.family)
		return kx.family < ky.family ? -1 : 1;
	if (kx.proto != ky.proto)
		return kx.proto < ky.proto ? -1 : 1;
	if ((c = memcmp(&kx.saddr, &ky.saddr, sizeof(kx.saddr))))
		return c;
	if ((c = memcmp(&kx.daddr, &ky.daddr, sizeof(kx.daddr))))
		return c;
	if (kx.sport != ky.sport)
		return ntohs(kx.sport) < ntohs(ky.sport) ? -1 : 1;
	if (kx.dport != ky.dport)
		return ntohs(kx.dport) < ntohs(ky.dport) ? -1 : 1;
	return (int)kx.scope - (int)ky.scope;
}

void ct_dump_sort(struct ct_dump_entry *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), ct_cmp);
}

/* Cilium's CT entry flag bits (pkg/maps/ctmap: RxClosing, TxClosing, Nat64, LBLoopback,
 * SeenNonSyn, NodePort, ...). */
#define CIL_CT_RX_CLOSING 0x1
#define CIL_CT_TX_CLOSING 0x2
#define CIL_CT_SEEN_NON_SYN 0x10
#define CIL_CT_NODEPORT 0x20

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04

uint16_t ct_cilium_flags(const struct ct_entry *e, uint8_t proto)
{
	uint16_t f = 0;

	if (proto == IPPROTO_TCP) {
		/* Tx: the originator's direction, Rx: the replies' (Cilium's view of a CT_OUT
		 * entry); a RST closes both */
		if ((e->tcp_flags_fwd & (TCPF_FIN | TCPF_RST)) || (e->tcp_flags_rev & TCPF_RST) ||
		    e->tcp_state == CT_TCP_CLOSED)
			f |= CIL_CT_TX_CLOSING;
		if ((e->tcp_flags_rev & (TCPF_FIN | TCPF_RST)) || (e->tcp_flags_fwd & TCPF_RST) ||
		    e->tcp_state == CT_TCP_CLOSED)
			f |= CIL_CT_RX_CLOSING;
		/* a packet without SYN went by: the handshake's last ACK at the latest */
		if (e->tcp_state >= CT_TCP_ESTABLISHED)
			f |= CIL_CT_SEEN_NON_SYN;
	}
	if (e->flags & CT_F_NODEPORT)
		f |= CIL_CT_NODEPORT;
	return f;
}

static void ct_flag_words(char *buf, size_t size, uint16_t f)
{
	static const struct {
		uint16_t bit;
		const char *word;
	} words[] = {
		{ CIL_CT_RX_CLOSING, "RxClosing" },
		{ CIL_CT_TX_CLOSING, "TxClosing" },
		{ CIL_CT_SEEN_NON_SYN, "SeenNonSyn" },
		{ CIL_CT_NODEPORT, "NodePort" },
	};
	size_t len;

	snprintf(buf, size, "Flags=0x%02x [ ", f);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (!(f & words[i].bit))
			continue;
		len = strlen(buf);
		snprintf(buf + len, size - len, "%s ", words[i].word);
	}
	len = strlen(buf);
	snprintf(buf + len, size - len, "]");
}

static const char *ct_scope_word(uint8_t scope)
{
	return scope == CT_IN ? "IN" : "OUT"; /* CT_SVC: Cilium's TUPLE_F_OUT | TUPLE_F_SERVICE */
}

const char *ct_entry_format(char *buf, size_t size, const struct ct_key *key,
			    const struct ct_entry *e, uint64_t now_ns, int time_diff)
{
	char s[64], d[64], pb[8], flags[96], diff[48] = "";
	struct ct_key k;
	size_t len;

	ct_key_original(key, e, &k);
	if (time_diff)
		snprintf(diff, sizeof(diff), " (remaining: %lld sec(s))",
			 secs_between(e->expires_ns, now_ns));
	ct_flag_words(flags, sizeof(flags), ct_cilium_flags(e, k.proto));
	snprintf(buf, size,
		 "%s %s %s -> %s %sexpires=%llu%s RxPackets=%llu RxBytes=%llu RxFlagsSeen=0x%x "
		 "LastRxReport=0 TxPackets=%llu TxBytes=%llu TxFlagsSeen=0x%x LastTxReport=0 %s "
		 "RevNAT=%u SourceSecurityID=%u IfIndex=0",
		 proto_name(k.proto, pb, sizeof(pb)), ct_scope_word(k.scope),
		 hostport(s, sizeof(s), k.family, &k.saddr, k.sport),
		 hostport(d, sizeof(d), k.family, &k.daddr, k.dport),
		 k.scope == CT_SVC ? "service " : "",
		 (unsigned long long)(e->expires_ns / 1000000000ull), diff,
		 (unsigned long long)e->packets_rev, (unsigned long long)e->bytes_rev,
		 e->tcp_flags_rev, (unsigned long long)e->packets_fwd,
		 (unsigned long long)e->bytes_fwd, e->tcp_flags_fwd, flags, e->rev_nat_index,
		 e->src_identity);
	if (k.scope == CT_SVC) {
		len = strlen(buf);
		snprintf(buf + len, size - len, " BackendID=%u", e->backend_id);
	}
	return buf;
}

void ct_print_list(FILE *f, const struct ct_dump_entry *v, size_t n, uint64_t now_ns,
		   int time_diff)
{
	char line[512];

	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", ct_entry_format(line, sizeof(line), &v[i].key, &v[i].val, now_ns,
						   time_diff));
}

json_t *ct_list_json(const struct ct_dump_entry *v, size_t n, uint64_t now_ns)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], pb[8];
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct ct_entry *e = &v[i].val;
		json_t *o = json_object(), *fl = json_array();
		struct ct_key k;

		ct_key_original(&v[i].key, e, &k);
		json_object_set_new(o, "protocol", json_string(proto_name(k.proto, pb, sizeof(pb))));
		json_object_set_new(o, "scope", json_string(k.scope == CT_SVC ? "SERVICE" :
							     ct_scope_word(k.scope)));
		json_object_set_new(o, "source", json_string(ip_text(s, k.family, &k.saddr)));
		json_object_set_new(o, "source_port", json_integer(ntohs(k.sport)));
		json_object_set_new(o, "destination", json_string(ip_text(d, k.family, &k.daddr)));
		json_object_set_new(o, "destination_port", json_integer(ntohs(k.dport)));
		json_object_set_new(o, "expires_ns", json_integer((json_int_t)e->expires_ns));
		json_object_set_new(o, "expires_in_sec",
				    json_integer(secs_between(e->expires_ns, now_ns)));
		json_object_set_new(o, "created_ns", json_integer((json_int_t)e->created_ns));
		if (k.proto == IPPROTO_TCP)
			json_object_set_new(o, "tcp_state",
					    json_string(ct_tcp_state_name(e->tcp_state)));
		json_object_set_new(o, "packets_fwd", json_integer((json_int_t)e->packets_fwd));
		json_object_set_new(o, "bytes_fwd", json_integer((json_int_t)e->bytes_fwd));
		json_object_set_new(o, "packets_rev", json_integer((json_int_t)e->packets_rev));
		json_object_set_new(o, "bytes_rev", json_integer((json_int_t)e->bytes_rev));
		json_object_set_new(o, "tcp_flags_fwd", json_integer(e->tcp_flags_fwd));
		json_object_set_new(o, "tcp_flags_rev", json_integer(e->tcp_flags_rev));
		if (e->flags & CT_F_PEER_LOCAL)
			json_array_append_new(fl, json_string("peer-local"));
		if (e->flags & CT_F_REVERSED)
			json_array_append_new(fl, json_string("reversed-key"));
		if (e->flags & CT_F_NODEPORT)
			json_array_append_new(fl, json_string("nodeport"));
		json_object_set_new(o, "flags", fl);
		json_object_set_new(o, "cilium_flags", json_integer(ct_cilium_flags(e, k.proto)));
		json_object_set_new(o, "rev_nat_index", json_integer(e->rev_nat_index));
		json_object_set_new(o, "src_identity", json_integer(e->src_identity));
		if (k.scope == CT_SVC)
			json_object_set_new(o, "backend_id", json_integer(e->backend_id));
		else if (e->rule_id)
			json_object_set_new(o, "rule_id", json_integer(e->rule_id));
		json_array_append_new(arr, o);
	}
	return arr;
}
