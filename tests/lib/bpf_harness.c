/* SPDX-License-Identifier: Apache-2.0 */
#include "bpf_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader/conntrack.h"
#include "loader/maps.h"

static int on_event(void *ctx, void *data, size_t size)
{
	struct harness *h = ctx;

	if (size >= sizeof(struct ciliate_event) && h->nevents < HARNESS_MAX_EVENTS)
		memcpy(&h->events[h->nevents++], data, sizeof(struct ciliate_event));
	return 0;
}

struct harness *harness_new(void)
{
	struct datapath_opts opts = { .trace_all = true };

	return harness_new_opts(&opts);
}

struct harness *harness_new_opts(const struct datapath_opts *opts)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct diag d = { "" };

	assert_non_null(h);
	if (datapath_open(opts, &h->dp, &d))
		fail_msg("datapath_open: %s", d.msg);
	h->rb = ring_buffer__new(datapath_map_fd(h->dp, MAP_EVENTS), on_event, h, NULL);
	assert_non_null(h->rb);
	return h;
}

void harness_free(struct harness *h)
{
	if (!h)
		return;
	ring_buffer__free(h->rb);
	datapath_close(h->dp);
	free(h);
}

struct endpoint_info harness_endpoint(uint32_t ip, uint32_t ep_id, uint32_t identity,
				      uint32_t flags)
{
	struct endpoint_info ep = { 0 };
	const uint8_t *b = (const uint8_t *)&ip;

	ep.ifindex = 1000 + ep_id;
	ep.ep_id = ep_id;
	ep.identity = identity;
	ep.flags = flags;
	ep.family = CILIATE_AF_INET;
	ep.addr.v4 = ip;
	ep.mac[0] = 0x0a, ep.mac[1] = 0x58;
	ep.node_mac[0] = 0x0e, ep.node_mac[1] = 0x58;
	memcpy(ep.mac + 2, b, 4);
	memcpy(ep.node_mac + 2, b, 4);
	return ep;
}

void harness_add_endpoint(struct harness *h, const struct endpoint_info *ep, bool bound)
{
	struct diag d = { "" };

	if (dp_endpoint_upsert(h->dp, ep, &d))
		fail_msg("endpoint: %s", d.msg);
	if (bound && dp_endpoint_bind_ifindex(h->dp, 1, ep, &d))
		fail_msg("bind: %s", d.msg);
}

void harness_add_ipcache(struct harness *h, uint32_t ip, uint8_t plen, uint32_t identity)
{
	harness_add_ipcache_tunnel(h, ip, plen, identity, 0, 0);
}

void harness_add_ipcache_tunnel(struct harness *h, uint32_t ip, uint8_t plen, uint32_t identity,
				uint32_t tunnel, uint8_t flags)
{
	struct ipcache_key k = { .prefixlen = IPCACHE_PREFIX_BASE + plen,
				 .family = CILIATE_AF_INET };
	struct ipcache_value v = { .identity = identity, .tunnel_endpoint = tunnel,
				   .flags = flags };
	struct diag d = { "" };

	k.addr.v4 = ip;
	if (dp_ipcache_upsert(h->dp, &k, &v, &d))
		fail_msg("ipcache: %s", d.msg);
}

void harness_add_policy(struct harness *h, uint32_t ep_id, uint32_t identity, uint8_t dir,
			uint8_t proto, uint16_t port, uint8_t port_plen, bool deny)
{
	struct policy_key k = { .ep_id = ep_id, .identity = identity, .dir = dir };
	struct policy_value v = { .flags = deny ? POLICY_F_DENY : 0, .rule_id = 7 };
	struct diag d = { "" };

	if (!proto) {
		k.prefixlen = POLICY_PREFIX_FIXED;
	} else {
		k.proto = proto;
		k.prefixlen = POLICY_PREFIX_PROTO + port_plen;
		k.dport = htons(port_plen ? (uint16_t)(port & (0xffff << (16 - port_plen))) : 0);
	}
	if (dp_policy_upsert(h->dp, &k, &v, &d))
		fail_msg("policy: %s", d.msg);
}

static int try_run_fd(struct harness *h, int fd, const uint8_t *frame, size_t len)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = (uint32_t)len,
		    .data_out = h->out, .data_size_out = sizeof(h->out), .repeat = 1);

	h->nevents = 0;
	if (fd < 0)
		return fd;
	if (bpf_prog_test_run_opts(fd, &o) < 0)
		return -errno;
	h->retval = (int)o.retval;
	h->out_len = o.data_size_out;
	ring_buffer__consume(h->rb);
	return 0;
}

int harness_try_run(struct harness *h, int hook, const uint8_t *frame, size_t len)
{
	return try_run_fd(h, datapath_prog_fd(h->dp, hook), frame, len);
}

int harness_run_fd(struct harness *h, int prog_fd, const uint8_t *frame, size_t len)
{
	int err = try_run_fd(h, prog_fd, frame, len);

	if (err)
		fail_msg("BPF_PROG_TEST_RUN failed: %s", strerror(-err));
	return h->retval;
}

int harness_run(struct harness *h, int hook, const uint8_t *frame, size_t len)
{
	int err = harness_try_run(h, hook, frame, len);

	if (err)
		fail_msg("BPF_PROG_TEST_RUN failed: %s", strerror(-err));
	return h->retval;
}

const struct ciliate_event *harness_event(const struct harness *h, int type)
{
	for (size_t i = h->nevents; i > 0; i--)
		if (h->events[i - 1].type == type)
			return &h->events[i - 1];
	return NULL;
}

bool harness_ct_get(struct harness *h, uint32_t saddr, uint32_t daddr, uint16_t sport,
		    uint16_t dport, uint8_t proto, uint8_t scope, struct ct_entry *out)
{
	struct ct_key k = { 0 };

	k.saddr.v4 = saddr;
	k.daddr.v4 = daddr;
	k.sport = htons(sport);
	k.dport = htons(dport);
	k.proto = proto;
	k.family = CILIATE_AF_INET;
	k.scope = scope;
	return ct_lookup_conn(datapath_map_fd(h->dp, MAP_CT), &k, out) == 0;
}

uint64_t harness_metric_packets(struct harness *h, unsigned int reason, unsigned int dir)
{
	int ncpu = libbpf_num_possible_cpus();
	struct metrics_value vals[ncpu > 0 ? ncpu : 1];
	uint32_t idx = reason * DIR_MAX + dir;
	uint64_t sum = 0;

	if (bpf_map_lookup_elem(datapath_map_fd(h->dp, MAP_METRICS), &idx, vals))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += vals[i].packets;
	return sum;
}

void harness_map_put(struct harness *h, const char *map, const void *k, const void *v)
{
	assert_int_equal(bpf_map_update_elem(datapath_map_fd(h->dp, map), k, v, BPF_ANY), 0);
}

void harness_lb_backend(struct harness *h, uint32_t id, uint32_t ip)
{
	struct lb_backend b;

	memset(&b, 0, sizeof(b));
	b.addr.v4 = ip;
	b.port = htons(8080);
	b.proto = IPPROTO_TCP;
	b.family = CILIATE_AF_INET;
	harness_map_put(h, MAP_LB_BACKENDS, &id, &b);
}

/* An external frontend with one backend slot and its reverse-NAT entry. */
void harness_lb_frontend(struct harness *h, uint32_t addr, uint16_t port, uint16_t rev,
			 uint32_t backend, uint8_t flags)
{
	struct lb_key k;
	struct lb_service s;
	struct lb_reverse_nat rn;
	uint32_t index = rev;

	memset(&k, 0, sizeof(k));
	k.addr.v4 = addr;
	k.dport = htons(port);
	k.proto = IPPROTO_TCP;
	k.family = CILIATE_AF_INET;
	memset(&s, 0, sizeof(s));
	s.count = 1;
	s.rev_nat_index = rev;
	s.flags = LB_SVC_F_ROUTABLE | flags;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	k.backend_slot = 1;
	s.count = 0;
	s.backend_id = backend;
	harness_map_put(h, MAP_LB_SERVICES, &k, &s);
	memset(&rn, 0, sizeof(rn));
	rn.addr.v4 = addr;
	rn.port = htons(port);
	rn.family = CILIATE_AF_INET;
	harness_map_put(h, MAP_LB_REVNAT, &index, &rn);
}

/* The verdict was a drop, and its drop event says why and where (file and line). */
void harness_assert_drop(const struct harness *h, unsigned int reason)
{
	const struct ciliate_event *ev = harness_event(h, EVENT_DROP);

	assert_int_equal(h->retval, TC_ACT_SHOT);
	assert_non_null(ev);
	assert_int_equal(ev->reason, reason);
	assert_true(ev->src_line > 0);
	assert_true(ev->src_file > SRC_UNKNOWN && ev->src_file < SRC_MAX);
}
