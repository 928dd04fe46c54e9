/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Assertions over compiled policy map entries, shared by the NetworkPolicy and
 * CiliumNetworkPolicy compiler tests. A fixture is a scenario loaded from a base cluster plus
 * policies and the state of one node. An endpoint's entries are rendered one per line as
 * "DIR PEER L4[ deny]" (PEER: any | host | world | remote-node | health | init | unmanaged |
 * kube-apiserver | cidr:PREFIX | ns/pod owning the identity; L4: any | tcp | tcp/PORT |
 * tcp/PORT/BITS | icmp/TYPE | icmpv6/TYPE), sorted, and compared with the expected set.
 * Every helper fails the running cmocka test on a mismatch.
 */
#ifndef CILIATE_TEST_POLICY_ASSERT_H
#define CILIATE_TEST_POLICY_ASSERT_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/policy.h"

/* A loaded scenario, its cluster model and the state of the node a pod runs on. */
struct policy_fixture {
	struct scenario *s;
	const struct cluster_model *m; /* &s->model */
	struct node_state ns;
	char *yaml;
};

/*
 * Loads base_yaml followed by policies as the file `file`; extra_config (or NULL) is spliced
 * in before the first "---", i.e. into the spec of the leading Cluster document.
 */
void policy_fixture_load(struct policy_fixture *f, const char *file, const char *base_yaml,
			 const char *policies, const char *extra_config);

/* Computes the state of `node` (freeing the previous one). */
void policy_fixture_node(struct policy_fixture *f, const char *node);
void policy_fixture_free(struct policy_fixture *f);

/* Asserts the exact entry set and EP_F_* flags of pod ns/name (on whichever node). */
void policy_expect_ep(struct policy_fixture *f, const char *pod, uint32_t flags, const char *want);

/* The rule name of the entry of pod with (dir, identity, prefixlen), or "". */
const char *policy_rule_of(struct policy_fixture *f, const char *pod, uint8_t dir,
			   uint32_t identity, uint32_t prefixlen);

/* Asserts that error case case_no's diagnostic msg starts with want. */
void policy_expect_diag(const char *msg, const char *want, size_t case_no);

#endif
