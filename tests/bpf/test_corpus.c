/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Robustness: every packet of every capture in $CILIATE_SHARED/corpus/pcaps (../shared) (real traffic from
 * tcpdump, suricata and zeek test suites: tunnels, extension headers, fragments, malformed and
 * truncated frames) runs through every hook, with IPv6 disabled and enabled. Each must load,
 * never fail BPF_PROG_TEST_RUN except for frames the kernel cannot run, and get a verdict with
 * a reason: a drop event naming a drop code, or a trace event for a forwarded packet.
 *
 * The hook's endpoint is re-bound to each packet's own source (from-container) or destination
 * (to-container) address, so packets get past the anti-spoofing check into conntrack, policy
 * and forwarding instead of all stopping at INVALID_SOURCE_IP. For the overlay hooks every
 * other packet's destination is made known for that run only: a local endpoint (from-overlay:
 * conntrack, policy, redirect) or an ipcache entry with a tunnel endpoint (to-overlay: the
 * tunnel key is set); the other half takes the stack / no-tunnel-endpoint paths.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include "bpf_harness.h"
#include "common/names.h"
#include "decode/decode.h"
#include "loader/maps.h"
#include "pktbuild.h"
#include "shared_files.h"


struct corpus_stats {
	size_t files, packets, forwarded, dropped, not_run, not_run_eth;
	size_t by_reason[CILIATE_REASON_MAX];
};

struct corpus_ctx {
	struct harness *h;
	int hook;
	struct corpus_stats st;
	char file[1024];
	bool peer_ep, peer_ipc; /* overlay hooks: what bind_endpoint added for this packet */
	struct endpoint_info ep;
	struct ipcache_key ipc;
};

/* Overlay hooks: on every other packet, make the destination known for this run. */
static void bind_overlay_peer(struct corpus_ctx *c, const struct decoded_pkt *d)
{
	struct ipcache_value v = { .identity = 400, .tunnel_endpoint = PB_IP4(192, 0, 2, 2) };
	struct endpoint_info ep = harness_endpoint(0, 2, 301, EP_F_INGRESS_ENFORCED);
	struct diag dg = { "" };

	if ((c->st.packets & 1) || (d->family != AF_INET && d->family != AF_INET6))
		return;
	if (c->hook == HOOK_FROM_OVERLAY) {
		ep.family = d->family == AF_INET6 ? CILIATE_AF_INET6 : CILIATE_AF_INET;
		memcpy(ep.addr.bytes, d->daddr, d->family == AF_INET6 ? 16 : 4);
		if (dp_endpoint_upsert(c->h->dp, &ep, &dg))
			fail_msg("endpoint: %s", dg.msg);
		c->ep = ep;
		c->peer_ep = true;
		return;
	}
	memset(&c->ipc, 0, sizeof(c->ipc));
	c->ipc.family = d->family == AF_INET6 ? CILIATE_AF_INET6 : CILIATE_AF_INET;
	c->ipc.prefixlen = IPCACHE_PREFIX_BASE + (d->family == AF_INET6 ? 128 : 32);
	memcpy(c->ipc.addr.bytes, d->daddr, d->family == AF_INET6 ? 16 : 4);
	if (dp_ipcache_upsert(c->h->dp, &c->ipc, &v, &dg))
		fail_msg("ipcache: %s", dg.msg);
	c->peer_ipc = true;
}

static void unbind_overlay_peer(struct corpus_ctx *c)
{
	struct diag dg = { "" };

	if (c->peer_ep && dp_endpoint_delete(c->h->dp, &c->ep, &dg))
		fail_msg("endpoint delete: %s", dg.msg);
	if (c->peer_ipc && bpf_map_delete_elem(datapath_map_fd(c->h->dp, MAP_IPCACHE), &c->ipc))
		fail_msg("ipcache delete: %s", strerror(errno));
	c->peer_ep = c->peer_ipc = false;
}

static void bind_endpoint(struct corpus_ctx *c, const uint8_t *frame, size_t len)
{
	/* alternate enforcing and non-enforcing endpoints: policy drops on one half, conntrack
	 * creation and forwarding on the other */
	uint32_t flags = (c->st.packets & 1) ? EP_F_INGRESS_ENFORCED | EP_F_EGRESS_ENFORCED : 0;
	struct endpoint_info ep = harness_endpoint(0, 1, 300, flags);
	struct decoded_pkt d;
	struct diag dg = { "" };
	const uint8_t *addr;

	decode_parse(frame, len, &d);
	if (c->hook == HOOK_FROM_OVERLAY || c->hook == HOOK_TO_OVERLAY) {
		bind_overlay_peer(c, &d);
		return;
	}
	addr = c->hook == HOOK_FROM_CONTAINER ? d.saddr : d.daddr;
	if (d.family == AF_INET6) {
		ep.family = CILIATE_AF_INET6;
		memcpy(ep.addr.bytes, addr, 16);
	} else {
		memcpy(&ep.addr.v4, addr, 4);
	}
	if (dp_endpoint_bind_ifindex(c->h->dp, 1, &ep, &dg))
		fail_msg("bind: %s", dg.msg);
}

static int on_frame(void *arg, const uint8_t *frame, size_t len, size_t wire_len)
{
	struct corpus_ctx *c = arg;
	const struct ciliate_event *ev;
	int err;

	c->st.packets++;
	bind_endpoint(c, frame, len);
	err = harness_try_run(c->h, c->hook, frame, len);
	unbind_overlay_peer(c);
	if (err == -EINVAL) {
		/* the kernel refuses to build an skb from it (shorter than Ethernet, larger than a
		 * page, or an IP header it cannot pull): replay reports these as a documented drop */
		c->st.not_run++;
		if (len >= 14 && c->st.not_run_eth++ < 3)
			print_message("    not runnable: %s packet %zu (%zu bytes)\n", c->file,
				      c->st.packets, len);
		return 0;
	}
	if (err)
		fail_msg("%s: packet %zu: BPF_PROG_TEST_RUN: %s", c->file, c->st.packets,
			 strerror(-err));
	switch (c->h->retval) {
	case TC_ACT_SHOT:
		ev = harness_event(c->h, EVENT_DROP);
		if (!ev || ev->reason < CILIATE_DROP_REASON_MIN)
			fail_msg("%s: packet %zu: dropped without a drop reason", c->file,
				 c->st.packets);
		c->st.dropped++;
		c->st.by_reason[ev->reason]++;
		break;
	case TC_ACT_OK:
	case TC_ACT_REDIRECT:
		ev = harness_event(c->h, EVENT_TRACE);
		if (!ev)
			fail_msg("%s: packet %zu: forwarded without a trace event", c->file,
				 c->st.packets);
		c->st.forwarded++;
		c->st.by_reason[ev->reason % CILIATE_REASON_MAX]++;
		break;
	default:
		fail_msg("%s: packet %zu: unexpected TC verdict %d", c->file, c->st.packets,
			 c->h->retval);
	}
	return 0;
}

static void run_corpus(int hook, bool ipv6)
{
	struct datapath_opts opts = { .trace_all = true, .enable_ipv6 = ipv6 };
	struct corpus_ctx c = { .hook = hook };
	const char *shared = getenv("CILIATE_SHARED") ?: "../shared";
	struct dirent **groups;
	char corpus[256];
	int ngroups;

	snprintf(corpus, sizeof(corpus), "%s/corpus/pcaps", shared);
	ngroups = scandir(corpus, &groups, NULL, alphasort);
	if (ngroups < 0)
		SHARED_MISSING(corpus); /* fails under CI=true */
	c.h = harness_new_opts(&opts);
	for (int g = 0; g < ngroups; g++) {
		char dir[600];
		struct dirent **files;
		int nfiles;

		if (groups[g]->d_name[0] == '.')
			goto next_group;
		snprintf(dir, sizeof(dir), "%s/%s", corpus, groups[g]->d_name);
		nfiles = scandir(dir, &files, NULL, alphasort);
		for (int i = 0; i < nfiles; i++) {
			size_t n = strlen(files[i]->d_name);
			char err[256];

			if (n > 5 && !strcmp(files[i]->d_name + n - 5, ".pcap")) {
				snprintf(c.file, sizeof(c.file), "%s/%s", dir, files[i]->d_name);
				c.st.files++;
				if (pb_pcap_foreach(c.file, on_frame, &c, err, sizeof(err)) < 0)
					fail_msg("%s: %s", c.file, err);
			}
			free(files[i]);
		}
		free(files);
next_group:
		free(groups[g]);
	}
	free(groups);
	harness_free(c.h);

	print_message("%s ipv6=%d: %zu files, %zu packets: %zu forwarded, %zu dropped, %zu not "
		      "runnable (%zu of them >= 14 bytes)\n", hook_name(hook), ipv6, c.st.files,
		      c.st.packets, c.st.forwarded, c.st.dropped, c.st.not_run, c.st.not_run_eth);
	for (unsigned int r = 0; r < CILIATE_REASON_MAX; r++)
		if (c.st.by_reason[r])
			print_message("    %-42s %zu\n", reason_name(r), c.st.by_reason[r]);
	assert_true(c.st.files >= 300);
	/* refusals must stay the exception, or the test would prove nothing */
	assert_true(c.st.not_run_eth * 100 <= c.st.packets);
	assert_int_equal(c.st.packets, c.st.forwarded + c.st.dropped + c.st.not_run);
}

static void test_from_container_v4(void **state) { run_corpus(HOOK_FROM_CONTAINER, false); }
static void test_from_container_v6(void **state) { run_corpus(HOOK_FROM_CONTAINER, true); }
static void test_to_container_v4(void **state) { run_corpus(HOOK_TO_CONTAINER, false); }
static void test_to_container_v6(void **state) { run_corpus(HOOK_TO_CONTAINER, true); }
static void test_from_overlay_v4(void **state) { run_corpus(HOOK_FROM_OVERLAY, false); }
static void test_from_overlay_v6(void **state) { run_corpus(HOOK_FROM_OVERLAY, true); }
static void test_to_overlay_v4(void **state) { run_corpus(HOOK_TO_OVERLAY, false); }
static void test_to_overlay_v6(void **state) { run_corpus(HOOK_TO_OVERLAY, true); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_container_v4),
		cmocka_unit_test(test_from_container_v6),
		cmocka_unit_test(test_to_container_v4),
		cmocka_unit_test(test_to_container_v6),
		cmocka_unit_test(test_from_overlay_v4),
		cmocka_unit_test(test_from_overlay_v6),
		cmocka_unit_test(test_to_overlay_v4),
		cmocka_unit_test(test_to_overlay_v6),
	};

	return cmocka_run_group_tests_name("corpus", tests, NULL, NULL);
}
