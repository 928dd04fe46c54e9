/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loader tests: per-node pinning under /sys/fs/bpf/ciliate/<node>/, reuse of pinned maps on
 * reload (an agent restart keeps endpoints and conntrack), isolation between nodes, unpinning,
 * and refusing bad node names.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <bpf/bpf.h>

#include "bpf_harness.h"
#include "loader/datapath.h"
#include "loader/maps.h"
#include "pktbuild.h"

#define NODE_A "cil-t-loader-a"
#define NODE_B "cil-t-loader-b"

static int cleanup(void **state)
{
	datapath_unpin_node(NODE_A, NULL);
	datapath_unpin_node(NODE_B, NULL);
	return 0;
}

static struct datapath *open_node(const char *node)
{
	struct datapath_opts o = { .node = node };
	struct datapath *dp = NULL;
	struct diag d = { "" };

	if (datapath_open(&o, &dp, &d))
		fail_msg("datapath_open(%s): %s", node, d.msg);
	return dp;
}

static bool endpoint_present(struct datapath *dp, uint32_t ip)
{
	struct endpoint_key k = { .family = CILIATE_AF_INET };
	struct endpoint_info v;

	k.addr.v4 = ip;
	return bpf_map_lookup_elem(datapath_map_fd(dp, MAP_ENDPOINTS), &k, &v) == 0;
}

static void test_pins_survive_reload(void **state)
{
	struct endpoint_info ep = harness_endpoint(PB_IP4(10, 244, 0, 9), 9, 300, 0);
	struct diag d = { "" };
	struct datapath *dp;
	struct stat st;
	char path[256];

	dp = open_node(NODE_A);
	assert_int_equal(dp_endpoint_upsert(dp, &ep, &d), 0);
	snprintf(path, sizeof(path), "%s/%s/%s", CILIATE_PIN_ROOT, NODE_A, MAP_CT);
	assert_int_equal(stat(path, &st), 0);
	datapath_close(dp);

	/* a new process-equivalent load finds the same maps */
	dp = open_node(NODE_A);
	assert_true(endpoint_present(dp, ep.addr.v4));
	datapath_close(dp);

	/* another node's maps are separate */
	dp = open_node(NODE_B);
	assert_false(endpoint_present(dp, ep.addr.v4));
	datapath_close(dp);

	assert_int_equal(datapath_unpin_node(NODE_A, &d), 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(datapath_unpin_node(NODE_A, &d), 0); /* idempotent */
	dp = open_node(NODE_A);
	assert_false(endpoint_present(dp, ep.addr.v4));
	datapath_close(dp);
}

static void test_bad_node_name(void **state)
{
	struct datapath_opts o = { .node = "../escape" };
	struct datapath *dp = NULL;
	struct diag d = { "" };

	assert_int_equal(datapath_open(&o, &dp, &d), -EINVAL);
	assert_null(dp);
	assert_non_null(strstr(d.msg, "invalid node name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_pins_survive_reload, cleanup),
		cmocka_unit_test_teardown(test_bad_node_name, cleanup),
	};

	return cmocka_run_group_tests_name("loader", tests, NULL, cleanup);
}
