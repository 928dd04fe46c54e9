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
	__u64 event_ts;     /* bpf_ktime_get_ns() of the packet's first event (0: none yet) */
	__u8 drop_report;   /* enum drop_report: this packet's drops are reported or aggregated */
	__u16 rev_nat_index; /* a service connection's frontend (lb.h), for its conntrack entry */
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

/* The reader is woken only once this much is waiting (it also polls every few ms): a wakeup
 * per event cost the sending CPU a third of its time under a flood (docs/PERFORMANCE.md). */
#define EVENTS_WAKEUP_BYTES (EVENTS_RING_BYTES / 8)

/* The packet's event time: the precise clock (flows of all nodes merge by time), read once
 * per packet, only by packets that emit. */
static __always_inline __u64 event_time(struct pipeline *pl)
{
	if (!pl->event_ts)
		pl->event_ts = bpf_ktime_get_ns();
	return pl->event_ts;
}

/* A ring-buffer record for an event, or NULL (events off, or the ring is full: counted). */
static __always_inline struct ciliate_event *event_reserve(void)
{
	struct ciliate_event *ev;
	__u32 zero = 0;
	__u64 *lost;

	if (cfg_no_events)
		return NULL;
	ev = bpf_ringbuf_reserve(&ciliate_events, sizeof(*ev), 0);
	if (!ev) {
		/* the ring is full: the consumer is behind. Counted, never hidden (agent
		 * status, observe's lost_events, metrics) */
		lost = bpf_map_lookup_elem(&ciliate_events_lost, &zero);
		if (lost)
			(*lost)++;
	}
	return ev;
}

/* Fills and submits an event; ifindex and pkt_len come from the hook's context (TC: the
 * skb, XDP: the frame). */
static __always_inline void event_fill_submit(struct ciliate_event *ev, struct pipeline *pl,
					      __u8 type, __u16 reason, __u32 where, __u8 verdict,
					      __u32 ifindex, __u32 pkt_len)
{
	ev->ts_ns = event_time(pl);
	ev->type = type;
	ev->hook = pl->hook;
	ev->family = pl->pkt.family;
	ev->proto = pl->pkt.proto;
	ev->reason = reason;
	ev->src_line = where & 0xffff;
	ev->src_file = where >> 16;
	ev->ct_status = pl->ct_status;
	ev->dir = pl->dir;
	ev->flags = pl->event_flags;
	ev->match = pl->match;
	ev->tcp_flags = pl->pkt.tcp_flags;
	ev->verdict = verdict;
	ev->pad0 = 0;
	ev->ifindex = ifindex;
	ev->target_ifindex = pl->target_ifindex;
	ev->ep_id = pl->ep_id;
	ev->src_identity = pl->src_identity;
	ev->dst_identity = pl->dst_identity;
	ev->rule_id = pl->rule_id;
	ev->pkt_len = pkt_len;
	ev->saddr = pl->pkt.saddr;
	ev->daddr = pl->pkt.daddr;
	ev->tunnel_endpoint = pl->tunnel_endpoint;
	ev->rev_nat_index = pl->rev_nat_index;
	ev->pad1 = 0;
	if (pl->pkt.proto == IPPROTO_ICMP || pl->pkt.proto == IPPROTO_ICMPV6) {
		/* flows show ICMP type/code where the ports would be */
		ev->sport = pl->pkt.icmp_type;
		ev->dport = pl->pkt.icmp_code;
	} else {
		ev->sport = pl->pkt.sport;
		ev->dport = pl->pkt.dport;
	}
	bpf_ringbuf_submit(ev, bpf_ringbuf_query(&ciliate_events, BPF_RB_AVAIL_DATA) >=
				       EVENTS_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* `where` is (source file id << 16 | line) for drops, 0 otherwise (BPF calls take 5 args). */
__subprog void event_emit(struct pipeline *pl, __u8 type, __u16 reason, __u32 where,
			  __u8 verdict)
{
	struct ciliate_event *ev = event_reserve();

	if (ev)
		event_fill_submit(ev, pl, type, reason, where, verdict, pl->skb->ifindex,
				  pl->skb->len);
}

/*
 * Verdict aggregation, the counterpart of the trace aggregation below for policy verdicts
 * and drops: a flow's verdicts and drop are reported once, and the same flow decided again at
 * the same hook within DROP_AGGREGATION_NS is counted in the metrics only. Only packets that
 * do not establish anything repeat a decision that soon (retransmitted SYNs of a denied or
 * not yet answered connection, floods of one flow): an admitted connection's later packets
 * are conntrack hits and decide nothing. Every new flow is reported: the simulator's
 * evidence and users' `observe` see each one. Off with cfg_trace_all (replay and tests want
 * every packet's events) and cfg_every_drop (the benches' "every drop" rows). A per-CPU
 * direct-mapped cache of recent drops: a hash picks the slot, the slot holds the exact flow,
 * so two flows never share a report (a hash match alone once hid one flow's drop behind
 * another's with the same destination).
 */
#define DROP_AGGREGATION_NS 1000000000ULL
#define DROP_AGG_SLOTS 1024 /* a power of two */

enum drop_report { DROP_REPORT_UNKNOWN = 0, DROP_REPORT_EMIT, DROP_REPORT_AGGREGATED };

/* One flow at one hook, in one direction: what "the same flow decided again" means. */
struct drop_agg_slot {
	union ciliate_addr saddr;
	union ciliate_addr daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 hook;
	__u8 dir;
	__u8 pad;
	__u64 until; /* coarse clock ns */
};

/* Not pinned (no "ciliate_" prefix): a cache private to each loaded object. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_AGG_SLOTS);
	__type(key, __u32);
	__type(value, struct drop_agg_slot);
} drop_agg SEC(".maps");

#define DROP_AGG_MIX(h, w) (((h) ^ (__u64)(w)) * 0x9e3779b97f4a7c15ULL)

/* Multiplicative mixing of every word of the flow: the slot index comes from the top bits.
 * Read from the pipeline directly: no copy of the flow on the (nearly full) stack. */
static __always_inline __u32 drop_agg_slot_of(const struct pipeline *pl)
{
	const struct pkt *p = &pl->pkt;
	__u64 h = 0;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		h = DROP_AGG_MIX(h, p->saddr.v6[i]);
		h = DROP_AGG_MIX(h, p->daddr.v6[i]);
	}
	h = DROP_AGG_MIX(h, (__u32)p->sport << 16 | p->dport);
	h = DROP_AGG_MIX(h, (__u32)p->proto << 16 | (__u32)pl->hook << 8 | pl->dir);
	return (__u32)(h >> 54) & (DROP_AGG_SLOTS - 1);
}

static __always_inline int drop_agg_same(const struct drop_agg_slot *s,
					 const struct pipeline *pl)
{
	const struct pkt *p = &pl->pkt;

	return addr_eq(&s->saddr, &p->saddr) && addr_eq(&s->daddr, &p->daddr) &&
	       s->sport == p->sport && s->dport == p->dport && s->proto == p->proto &&
	       s->hook == pl->hook && s->dir == pl->dir;
}

/* Whether this packet's drop is to be reported (decided once per packet). */
static __always_inline int drop_reported(struct pipeline *pl)
{
	struct drop_agg_slot *s;
	__u32 slot;

	if (pl->drop_report)
		return pl->drop_report == DROP_REPORT_EMIT;
	pl->drop_report = DROP_REPORT_EMIT;
	if (cfg_trace_all || cfg_no_events || cfg_every_drop)
		return 1;
	slot = drop_agg_slot_of(pl);
	s = bpf_map_lookup_elem(&drop_agg, &slot);
	if (!s)
		return 1;
	if (pl->now < s->until && drop_agg_same(s, pl)) {
		pl->drop_report = DROP_REPORT_AGGREGATED;
		return 0;
	}
	s->saddr = pl->pkt.saddr;
	s->daddr = pl->pkt.daddr;
	s->sport = pl->pkt.sport;
	s->dport = pl->pkt.dport;
	s->proto = pl->pkt.proto;
	s->hook = pl->hook;
	s->dir = pl->dir;
	s->until = pl->now + DROP_AGGREGATION_NS;
	return 1;
}

/* Records a drop (event + metric) and returns the TC verdict to use. */
static __always_inline int drop_packet(struct pipeline *pl, int reason, __u8 file, __u16 line)
{
	if (reason < 0)
		reason = -reason;
	metrics_count(pl, reason);
	if (drop_reported(pl))
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
	if (drop_reported(pl))
		event_emit(pl, EVENT_POLICY_VERDICT,
			   allowed ? REASON_FORWARDED : REASON_POLICY_DENIED, 0,
			   allowed ? TC_ACT_OK : TC_ACT_SHOT);
	pl->dir = saved;
}

#endif
