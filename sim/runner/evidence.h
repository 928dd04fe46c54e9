/* SPDX-License-Identifier: Apache-2.0 */
/* The drop events behind a step's denials (evidence.c; docs/SIMULATOR.md, Evidence). */
#ifndef CILIATE_SIM_EVIDENCE_H
#define CILIATE_SIM_EVIDENCE_H

#include <jansson.h>

#include "sim.h"

/* A datapath drop seen during a step: the flow of a drop event, or of a policy verdict that
 * denied. Addresses in network order; ICMP: sport/dport hold type/code. */
struct sim_drop {
	char node[64];
	char hook[24];
	char reason[64]; /* POLICY_DENIED */
	char file[32];	 /* lxc.bpf.c (drop events) */
	int line;
	char time[48];
	uint64_t seq;
	int event_type; /* 1 drop, 5 policy verdict */
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint8_t proto;
};

struct sim_evidence {
	bool active;	  /* begun: every node with an agent was asked */
	uint64_t *since;  /* per host index: the last flow seq before the step */
	uint64_t *lost;	  /* per host index: the agent's lost-event count before the step */
	struct sim_drop *drops;
	size_t ndrops, drops_cap;
	uint64_t lost_total;  /* events the nodes' rings lost during the step */
	uint64_t overwritten; /* flows overwritten in an agent's buffer before they were read */
	char error[512];      /* an agent that could not be asked ("" none) */
	json_t *log;	      /* during collect: where every flow goes (--flows) */
};

/* Notes where every node's flow buffer stands (before the step's probes). */
int sim_evidence_begin(const struct sim_cluster *c, struct sim_evidence *ev);

/* Reads the drops of every node since then; with log, every flow of the step is appended to
 * it (wrapped Hubble JSON, as `ciliate observe -o json` prints them). */
int sim_evidence_collect(const struct sim_cluster *c, struct sim_evidence *ev, json_t *log);

/* The drop of a probe's own flow: proto, source address, one of its source ports (the
 * probe's attempts), destination address and port (ICMP: addresses only). Drop events are
 * preferred to policy verdicts. NULL: none seen. */
const struct sim_drop *sim_evidence_match(const struct sim_evidence *ev, uint8_t proto,
					  uint32_t saddr, const uint16_t *sports, size_t nsports,
					  uint32_t daddr, uint16_t dport);

/* A destination a probe's packets may carry: a service frontend before DNAT, a backend
 * after it (addresses in network order). */
struct sim_flow_dst {
	uint32_t addr;
	uint16_t port;
};

/* The drop of a service probe's own flow: proto, source address, one of its source ports,
 * and a destination among dsts (the frontend and every backend: the drop may come before or
 * after DNAT). Drop events are preferred to policy verdicts. NULL: none seen. */
const struct sim_drop *sim_evidence_match_dsts(const struct sim_evidence *ev, uint8_t proto,
					       uint32_t saddr, const uint16_t *sports,
					       size_t nsports, const struct sim_flow_dst *dsts,
					       size_t ndsts);

void sim_evidence_free(struct sim_evidence *ev);

#endif
