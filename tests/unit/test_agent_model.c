/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the agent's model building from its store cache (datapath/agent/objects.c):
 * pods enter the model with their IPAM address, allocations without a Pod object become
 * label-less stand-ins, and a bad object is reported and skipped, or replaced by its last
 * good version, while everything else stays in force.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "agent/agent.h"

/* objects.c logs through the agent's logger (main.c is not linked here) */
void agent_log(const struct agent *a, const char *fmt, ...)
{
	(void)a;
	(void)fmt;
}

#define CLUSTER                                                                               \
	"{\"apiVersion\":\"sim.ciliate.dev/v1\",\"kind\":\"Cluster\",\"metadata\":{\"name\":" \
	"\"t\"},\"spec\":{\"nodes\":[{\"name\":\"node-1\"},{\"name\":\"node-2\"}]}}"
#define IPAM1                                                                 \
	"{\"node\":\"node-1\",\"cidr\":\"10.244.0.0/24\",\"allocations\":["   \
	"{\"ip\":\"10.244.0.10\",\"pod\":\"shop/a\",\"containerID\":\"c1\"}," \
	"{\"ip\":\"10.244.0.11\",\"pod\":\"shop/cni-only\",\"containerID\":\"c2\"}]}"
#define POD_A                                                                                 \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":" \
	"\"shop\",\"labels\":{\"app\":\"a\"}},\"spec\":{\"nodeName\":\"node-1\"}}"
#define POD_UNALLOCATED                                                                           \
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"later\",\"namespace\":" \
	"\"shop\"},\"spec\":{\"nodeName\":\"node-1\"}}"
#define NP_GOOD                                                                             \
	"{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":" \
	"{\"name\":\"np\",\"namespace\":\"shop\",\"annotations\":{\"ciliate.dev/source\":"  \
	"\"np.yaml:3\"}},\"spec\":{\"podSelector\":{}}}"
#define NP_BAD                                                                              \
	"{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":" \
	"{\"name\":\"np\",\"namespace\":\"shop\",\"annotations\":{\"ciliate.dev/source\":"  \
	"\"np.yaml:3\"}},\"spec\":{\"podSelector\":5}}"

#define NP2_ALL                                                                              \
	"{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":"  \
	"{\"name\":\"np2\",\"namespace\":\"shop\"},\"spec\":{\"podSelector\":{},\"ingress\":" \
	"[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"a\"}}}]}]}}"
#define NP2_NONE                                                                            \
	"{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":" \
	"{\"name\":\"np2\",\"namespace\":\"shop\"},\"spec\":{\"podSelector\":{}}}"

static void put(struct agent *a, const char *key, const char *value, int64_t create, int64_t mod)
{
	struct store_kv kv = {.key = (char *)key, .value = (char *)value,
			      .value_len = strlen(value), .create_revision = create,
			      .mod_revision = mod};

	assert_int_equal(agent_objects_put(a, &kv), 0);
	a->rev = mod > a->rev ? mod : a->rev;
}

static struct agent *new_agent(void)
{
	struct agent *a = calloc(1, sizeof(*a));

	a->o.node = "node-1";
	a->cluster_text = strdup(CLUSTER);
	a->cluster_len = strlen(CLUSTER);
	strcpy(a->cluster_name, "cluster");
	put(a, "/ciliate/ipam/node-1", IPAM1, 1, 1);
	put(a, "/ciliate/objects/Pod/shop/a", POD_A, 2, 2);
	put(a, "/ciliate/objects/Pod/shop/later", POD_UNALLOCATED, 3, 3);
	put(a, "/ciliate/objects/NetworkPolicy/shop/np", NP_GOOD, 4, 4);
	return a;
}

static void free_agent(struct agent *a)
{
	cluster_model_free(a->model);
	agent_objects_free(a);
	agent_model_cache_free(a);
	free(a->cluster_text);
	free(a);
}

static void test_pods_and_stand_ins(void **state)
{
	struct agent *a = new_agent();
	struct diag d = {{0}};
	const struct m_pod *p;

	assert_int_equal(agent_model_build(a, &d), 0);
	assert_int_equal(a->model->npods, 2); /* "later" has no address yet */
	p = cluster_find_pod(a->model, "shop/a");
	assert_non_null(p);
	assert_int_equal(p->ip, inet_addr("10.244.0.10"));
	assert_string_equal(p->labels.v[0].key, "app");
	p = cluster_find_pod(a->model, "shop/cni-only");
	assert_non_null(p);
	assert_int_equal(p->ip, inet_addr("10.244.0.11"));
	assert_int_equal(p->labels.n, 0);
	assert_int_equal(a->model->npolicies, 1);
	assert_int_equal(a->pod_cidr, inet_addr("10.244.0.0"));
	free_agent(a);
}

static void test_bad_update_keeps_previous(void **state)
{
	struct agent *a = new_agent();
	struct diag d = {{0}};
	struct agent_obj *o;

	assert_int_equal(agent_model_build(a, &d), 0);
	put(a, "/ciliate/objects/NetworkPolicy/shop/np", NP_BAD, 4, 5);
	assert_int_equal(agent_model_build(a, &d), 0);
	o = agent_obj_find(a, "/ciliate/objects/NetworkPolicy/shop/np");
	assert_int_equal(o->bad_rev, 5);
	assert_non_null(o->error);
	assert_non_null(strstr(o->error, "/ciliate/objects/NetworkPolicy/shop/np (applied from "
					 "np.yaml:3): spec.podSelector:"));
	assert_int_equal(a->model->npolicies, 1); /* the good version stays in force */
	assert_int_equal(a->model->npods, 2);
	/* fixed again: no longer bad */
	put(a, "/ciliate/objects/NetworkPolicy/shop/np", NP_GOOD, 4, 6);
	assert_int_equal(agent_model_build(a, &d), 0);
	assert_int_equal(o->bad_rev, 0);
	free_agent(a);
}

static void test_bad_new_object_skipped(void **state)
{
	struct agent *a = new_agent();
	struct diag d = {{0}};
	struct agent_obj *o;

	put(a, "/ciliate/objects/NetworkPolicy/shop/np2", NP_BAD, 7, 7);
	put(a, "/ciliate/objects/Pod/shop/a", "{not json", 2, 8);
	assert_int_equal(agent_model_build(a, &d), 0);
	o = agent_obj_find(a, "/ciliate/objects/NetworkPolicy/shop/np2");
	assert_int_equal(o->bad_rev, 7);
	assert_int_equal(a->model->npolicies, 1);
	/* the broken Pod object never was good: its allocation stands in, without labels */
	o = agent_obj_find(a, "/ciliate/objects/Pod/shop/a");
	assert_int_equal(o->bad_rev, 8);
	assert_non_null(cluster_find_pod(a->model, "shop/a"));
	assert_int_equal(cluster_find_pod(a->model, "shop/a")->labels.n, 0);
	free_agent(a);
}

static void test_pod_on_unknown_node(void **state)
{
	struct agent *a = new_agent();
	struct diag d = {{0}};
	struct agent_obj *o;

	/* allocated on node-1 but the object moved to a node the Cluster does not have */
	put(a, "/ciliate/objects/Pod/shop/a",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":"
	    "\"shop\"},\"spec\":{\"nodeName\":\"node-9\"}}",
	    2, 9);
	assert_int_equal(agent_model_build(a, &d), 0);
	o = agent_obj_find(a, "/ciliate/objects/Pod/shop/a");
	assert_int_equal(o->bad_rev, 0); /* no address on node-9: simply not in the model yet */
	assert_non_null(cluster_find_pod(a->model, "shop/a")); /* the allocation stands in */
	free_agent(a);
}

/* An agent whose store holds n Pods of namespace "scale", each allocated on node-1. */
static void put_scale(struct agent *a, size_t n, int64_t rev)
{
	size_t cap = 128 + n * 96, len, i;
	char *ipam = malloc(cap), key[128], pod[512];

	len = (size_t)snprintf(ipam, cap,
			       "{\"node\":\"node-1\",\"cidr\":\"10.244.0.0/24\",\"allocations\":[");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(ipam + len, cap - len,
					"%s{\"ip\":\"10.244.0.%zu\",\"pod\":\"scale/p%zu\","
					"\"containerID\":\"c%zu\"}",
					i ? "," : "", 10 + i, i, i);
	snprintf(ipam + len, cap - len, "]}");
	put(a, "/ciliate/ipam/node-1", ipam, 1, rev);
	free(ipam);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "/ciliate/objects/Pod/scale/p%zu", i);
		if (agent_obj_find(a, key))
			continue;
		snprintf(pod, sizeof(pod),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p%zu\","
			 "\"namespace\":\"scale\",\"labels\":{\"app\":\"a%zu\"}},\"spec\":"
			 "{\"nodeName\":\"node-1\"}}",
			 i, i % 10);
		put(a, key, pod, rev, rev);
	}
}

/* Objects parsed by one build after one Pod (and its allocation) is added to a store of n. */
static uint64_t parsed_for_one_more(size_t n)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct diag d = {{0}};
	uint64_t before, after;

	a->o.node = "node-1";
	a->cluster_text = strdup(CLUSTER);
	a->cluster_len = strlen(CLUSTER);
	strcpy(a->cluster_name, "cluster");
	put_scale(a, n, 2);
	assert_int_equal(agent_model_build(a, &d), 0);
	assert_int_equal(a->model->npods, n);
	assert_int_equal(a->objects_parsed, n); /* each object once */
	/* nothing changed: nothing parsed */
	before = a->objects_parsed;
	assert_int_equal(agent_model_build(a, &d), 0);
	assert_int_equal(a->objects_parsed, before);
	put_scale(a, n + 1, 3);
	assert_int_equal(agent_model_build(a, &d), 0);
	after = a->objects_parsed;
	assert_int_equal(a->model->npods, n + 1);
	assert_non_null(cluster_find_pod(a->model, "scale/p0"));
	assert_int_equal(cluster_find_pod(a->model, "scale/p0")->labels.n, 1);
	assert_int_equal(a->full_builds, 0);
	free_agent(a);
	return after - before;
}

/* One more pod costs one parse whatever the store holds (a rebuild that parsed every object
 * made bring-up quadratic). */
static void test_parses_only_what_changed(void **state)
{
	assert_int_equal(parsed_for_one_more(20), 1);
	assert_int_equal(parsed_for_one_more(200), 1);
}

/* A conflict between objects (two keys, one pod) is named by the full parse, and only once:
 * the object is remembered as bad and later builds are put together from parts again. */
static void test_conflict_named_by_full_parse(void **state)
{
	struct agent *a = new_agent();
	struct diag d = {{0}};
	struct agent_obj *o;
	uint64_t full;

	assert_int_equal(agent_model_build(a, &d), 0);
	assert_int_equal(a->full_builds, 0);
	/* /Pod/shop/cni-only says it is shop/a */
	put(a, "/ciliate/objects/Pod/shop/cni-only",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\","
	    "\"namespace\":\"shop\"},\"spec\":{\"nodeName\":\"node-1\"}}",
	    5, 5);
	assert_int_equal(agent_model_build(a, &d), 0);
	o = agent_obj_find(a, "/ciliate/objects/Pod/shop/cni-only");
	assert_int_equal(o->bad_rev, 5);
	assert_non_null(o->error);
	assert_non_null(strstr(o->error, "duplicate Pod \"shop/a\""));
	full = a->full_builds;
	assert_true(full >= 1);
	assert_non_null(cluster_find_pod(a->model, "shop/a"));
	assert_int_equal(agent_model_build(a, &d), 0);
	assert_int_equal(a->full_builds, full);
	free_agent(a);
}

/* A policy added to a model put together from parts, then changed: every model computes
 * its node state (the policies and the pods' labels belong to the parts). */
static void test_policy_from_parts(void **state)
{
	struct agent *a = new_agent();
	struct diag d = {{0}};
	struct node_state ns;
	int64_t rev;

	assert_int_equal(agent_model_build(a, &d), 0);
	for (rev = 10; rev < 14; rev++) {
		put(a, "/ciliate/objects/NetworkPolicy/shop/np2",
		    rev % 2 ? NP2_ALL : NP2_NONE, 10, rev);
		put(a, "/ciliate/objects/Pod/shop/a", POD_A, 2, rev);
		assert_int_equal(agent_model_build(a, &d), 0);
		assert_int_equal(a->model->npolicies, 2);
		assert_int_equal(node_state_compute(a->model, "node-1", &ns, &d), 0);
		assert_true(ns.neps >= 1);
		node_state_free(&ns);
	}
	free_agent(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pods_and_stand_ins),
		cmocka_unit_test(test_bad_update_keeps_previous),
		cmocka_unit_test(test_bad_new_object_skipped),
		cmocka_unit_test(test_pod_on_unknown_node),
		cmocka_unit_test(test_parses_only_what_changed),
		cmocka_unit_test(test_conflict_named_by_full_parse),
		cmocka_unit_test(test_policy_from_parts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
