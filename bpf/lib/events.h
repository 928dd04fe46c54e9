/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Observability: trace, drop and policy-verdict events into the ring buffer, and per-CPU
 * metrics by (reason, direction). Every drop goes through drop_packet(), which records the
 * reason and the source file/line where it was decided (the DROP() macro).
 */
#ifndef CILIATE_BPF_EVENTS_H
#define CILIATE_BPF_EVENTS_H

#include "common.h"
#include "maps.h"
#include "parse.h"

/* Per-packet state passed (by pointer) through the pipeline: no skb->cb[] aliasing. */
struct pipeline {
	struct __sk_buff *skb;
	struct pkt pkt;
	__u8 hook;       /* enum ciliate_hook */
	__u8 dir;        /* enum ciliate_dir: metrics direction */
	__u8 ct_status;  /* enum ct_status */
	__u8 match;      /* enum policy_match of the decision */
	__u8 event_flags;
	__u8 peer_resolved; /* the peer identity field has been filled in */
	__u64 now;          /* clock_now_ns() once per packet */
	__u32 ep_id;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 rule_id;
	__u32 target_ifindex;
	__be32 tunnel_endpoint; /* overlay hooks: the node tunnelled to / from */
};

static __always_inline void metrics_count(const struct pipeline *pl, __u32 reason)
{
	__u32 idx = (reason & (CILIATE_REASON_MAX - 1)) * DIR_MAX + (pl->dir & 1);
	struct metrics_value *m = bpf_map_lookup_elem(&ciliate_metrics, &idx);

	if (m) {
		m->packets++;
		m->bytes += pl->pkt.len;
	}
}

/* `where` is (source file id << 16 | line) for drops, 0 otherwise (BPF calls take 5 args). */
__subprog void event_emit(const struct pipeline *pl, __u8 type, __u16 reason, __u32 where,
			  __u8 verdict)
{
	struct ciliate_event ev;
	__u32 zero = 0;
	__u64 *lost;

	if (cfg_no_events)
		return;
	__builtin_memset(&ev, 0, sizeof(ev));
	/* the precise clock, not the per-packet coarse one (4 ms steps): flows of several
	 * nodes are merged by time. Only packets that emit pay for it. */
	ev.ts_ns = bpf_ktime_get_ns();
	ev.type = type;
	ev.hook = pl->hook;
	ev.family = pl->pkt.family;
	ev.proto = pl->pkt.proto;
	ev.reason = reason;
	ev.src_line = where & 0xffff;
	ev.src_file = where >> 16;
	ev.ct_status = pl->ct_status;
	ev.dir = pl->dir;
	ev.flags = pl->event_flags;
	ev.match = pl->match;
	ev.tcp_flags = pl->pkt.tcp_flags;
	ev.verdict = verdict;
	ev.ifindex = pl->skb->ifindex;
	ev.target_ifindex = pl->target_ifindex;
	ev.ep_id = pl->ep_id;
	ev.src_identity = pl->src_identity;
	ev.dst_identity = pl->dst_identity;
	ev.rule_id = pl->rule_id;
	ev.pkt_len = pl->skb->len;
	ev.saddr = pl->pkt.saddr;
	ev.daddr = pl->pkt.daddr;
	ev.tunnel_endpoint = pl->tunnel_endpoint;
	if (pl->pkt.proto == IPPROTO_ICMP || pl->pkt.proto == IPPROTO_ICMPV6) {
		/* flows show ICMP type/code where the ports would be */
		ev.sport = pl->pkt.icmp_type;
		ev.dport = pl->pkt.icmp_code;
	} else {
		ev.sport = pl->pkt.sport;
		ev.dport = pl->pkt.dport;
	}
	if (bpf_ringbuf_output(&ciliate_events, &ev, sizeof(ev), 0) == 0)
		return;
	/* the ring is full: the consumer is behind. Counted, never hidden (agent status,
	 * observe's lost_events, metrics) */
	lost = bpf_map_lookup_elem(&ciliate_events_lost, &zero);
	if (lost)
		(*lost)++;
}

/* Records a drop (event + metric) and returns the TC verdict to use. */
static __always_inline int drop_packet(struct pipeline *pl, int reason, __u8 file, __u16 line)
{
	if (reason < 0)
		reason = -reason;
	metrics_count(pl, reason);
	event_emit(pl, EVENT_DROP, reason, ((__u32)file << 16) | line, TC_ACT_SHOT);
	return TC_ACT_SHOT;
}

#define DROP(pl, reason) drop_packet(pl, reason, CILIATE_SRC_FILE, __LINE__)

/*
 * Records a forwarded packet. Trace events are aggregated like Cilium's default monitor
 * aggregation: only for new connections and TCP SYN/FIN/RST, unless cfg_trace_all is set.
 */
static __always_inline int trace_wanted(const struct pipeline *pl)
{
	return cfg_trace_all || pl->ct_status == CT_NEW ||
	       (pl->pkt.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST));
}

static __always_inline int forward_packet(struct pipeline *pl, int verdict, __u16 reason)
{
	metrics_count(pl, REASON_FORWARDED);
	if (trace_wanted(pl))
		event_emit(pl, EVENT_TRACE, reason, 0, verdict);
	return verdict;
}

/* A policy decision for a new connection, in direction `dir` of pl->ep_id. */
static __always_inline void policy_verdict_emit(struct pipeline *pl, int allowed, __u8 dir)
{
	__u8 saved = pl->dir;

	pl->dir = dir;
	event_emit(pl, EVENT_POLICY_VERDICT, allowed ? REASON_FORWARDED : REASON_POLICY_DENIED, 0,
		   allowed ? TC_ACT_OK : TC_ACT_SHOT);
	pl->dir = saved;
}

#endif
