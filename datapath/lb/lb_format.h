/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Text forms of the service map entries (bpf/include/ciliate/abi.h, docs/SERVICES.md), for
 * the agent's service-list answer and the CLI's `service list` / `bpf lb list`, in the shapes
 * of `cilium-dbg service list` and `cilium-dbg bpf lb list` (REFERENCE.md section 3).
 */
#ifndef CILIATE_LB_FORMAT_H
#define CILIATE_LB_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ciliate/abi.h"
#include "loader/lb_maglev.h"

/* Room for "[ffff:...:ffff]:65535/SCTP/i (65535)" and the flag words. */
#define LB_TEXT_MAX 160

/* "10.96.0.10:80/TCP", "[fd00::1]:80/TCP" (port in host order). Returns buf. */
const char *lb_addr_format(char *buf, size_t size, uint8_t family, const union ciliate_addr *a,
			   uint16_t port, uint8_t proto);

/* "10.96.0.10" / "fd00::1". Returns buf. */
const char *lb_ip_format(char *buf, size_t size, uint8_t family, const union ciliate_addr *a);

/* The Cilium service type of the flags: ExternalIPs, NodePort, LoadBalancer, HostPort or
 * ClusterIP. */
const char *lb_svc_type(uint8_t flags);

/* Cilium's flag words: "ClusterIP, non-routable", "NodePort, Local, two-scopes, dsr". */
const char *lb_flags_format(char *buf, size_t size, uint8_t flags, uint8_t flags2);

/* "active", "terminating", "quarantined", "maintenance" (as Cilium's API). */
const char *lb_backend_state_name(uint8_t state);

/* A service map key as `bpf lb list` shows it: "10.96.0.10:80/TCP (0)", "/i" after the
 * protocol for the internal scope. */
const char *lb_scope_name(uint8_t scope);
const char *lb_key_format(char *buf, size_t size, const struct lb_key *k);

/* The second column of `bpf lb list` for one entry: slot 0 "0.0.0.0:0 (3) (0) [ClusterIP,
 * non-routable]", a backend slot "10.244.1.7:8080/TCP (3) (1)" (backend NULL: "backend 7 not
 * found"). */
const char *lb_entry_format(char *buf, size_t size, const struct lb_key *k,
			    const struct lb_service *v, const struct lb_backend *backend);

/* The contents of the three service maps (as read from the pins). */
struct lb_dump {
	struct lb_dump_svc {
		struct lb_key key;
		struct lb_service val;
	} *svc;
	size_t nsvc;
	struct lb_dump_backend {
		uint32_t id;
		struct lb_backend val;
	} *backends;
	size_t nbackends;
	struct lb_dump_revnat {
		uint32_t id;
		struct lb_reverse_nat val;
	} *revnat;
	size_t nrevnat;
};

/* Sorts the entries: services by family, address, port, protocol, scope and slot; backends
 * and reverse NAT by id. */
void lb_dump_sort(struct lb_dump *d);

/* The backend with id in a sorted dump, or NULL. */
const struct lb_backend *lb_dump_backend(const struct lb_dump *d, uint32_t id);

void lb_dump_free(struct lb_dump *d);

/* `bpf lb list`: columns SERVICE ADDRESS and BACKEND ADDRESS (REVNAT_ID) (SLOT), one row per
 * entry of the sorted dump. */
void lb_print_bpf_list(FILE *f, const struct lb_dump *d);

/* `bpf lb list -o json`: {"services":[...], "backends":[...], "revnat":[...]}. */
json_t *lb_bpf_list_json(const struct lb_dump *d);

/* `service list`: columns ID, Frontend, Service Type, Backend; one row per service of the
 * array (the agent's service-list objects: id, frontend, type, backends[].address/state),
 * continuation rows "2 => ..." for further backends. Sorted by id, then frontend. */
void lb_print_service_list(FILE *f, json_t *services);

/* `bpf lb maglev list`: columns SVC ID (the rev_nat_index, "/i" after it for a two-scope
 * service's internal-scope table) and LOOKUP TABLE ("[4 2 4 2 ...]", every entry), one row
 * per table of the sorted array, as `cilium-dbg bpf lb maglev list`. */
void lb_print_maglev_list(FILE *f, const struct lb_maglev_table *t, size_t n);

/* `bpf lb maglev list -o json`: [{"id", "scope", "size", "seed4", "seed6", "table": [...]}]. */
json_t *lb_maglev_list_json(const struct lb_maglev_table *t, size_t n);

#endif
