/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `--cluster TAG`: a simulated cluster left up by `ciliate-sim up`, named by the tag
 * `ciliate-sim status` prints. Its state file /run/ciliate/sim/TAG.json lists the nodes
 * (network namespace cil-TAG-NODE, address, pod CIDR), the external hosts and the store
 * URI ("embedded": the cluster's own file store). Every CLI command accepts it in place of
 * --store, and a --node NAME of such a command names the node's agent instance cil-TAG-NAME.
 */
#ifndef CILIATE_CLI_CLUSTER_OPT_H
#define CILIATE_CLI_CLUSTER_OPT_H

#include <stddef.h>

#define CLI_SIM_STATE_DIR "/run/ciliate/sim"
#define CLI_SIM_NAME_MAX  128

enum cli_sim_kind { CLI_SIM_NODE, CLI_SIM_EXT };

struct cli_sim_host {
	enum cli_sim_kind kind;
	char name[CLI_SIM_NAME_MAX];
	char netns[CLI_SIM_NAME_MAX]; /* its network namespace (/run/netns/NAME) */
	char ip[16];		      /* dotted quad */
	int ports[16];		      /* an external host's served ports */
	size_t nports;
};

struct cli_sim_cluster {
	char tag[64];
	char name[CLI_SIM_NAME_MAX];
	char store[1024]; /* the URI agents and CLI use */
	char routing[16];
	int mtu;
	struct cli_sim_host *hosts;
	size_t nhosts;
};

/* Reads /run/ciliate/sim/TAG.json (phase "up" required). 0, or -1 with err set. */
int cli_sim_load(const char *tag, struct cli_sim_cluster *c, char *err, size_t errsize);

/* Frees what cli_sim_load allocated. */
void cli_sim_free(struct cli_sim_cluster *c);

/* The host of that kind and name, or NULL. */
const struct cli_sim_host *cli_sim_find(const struct cli_sim_cluster *c, enum cli_sim_kind kind,
					const char *name);

/* Rewrites argv for `--cluster TAG` (not for commands that take it themselves: connectivity):
 * sets $CILIATE_STORE to the cluster's store, maps each --node NAME to cil-TAG-NAME (not
 * for `ipam`, whose --node is the store's node name) and, for observe/monitor without
 * --node/--socket, asks every node of the cluster. Returns the new argc (argv may be
 * replaced by a malloc'd vector), or -1 after printing the reason (a usage error). */
int cli_cluster_opt(int argc, char ***argv);

#endif
