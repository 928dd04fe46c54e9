/* SPDX-License-Identifier: Apache-2.0 */
/* The `ciliate` CLI: one file per command group, dispatched from main.c. */
#ifndef CILIATE_CLI_H
#define CILIATE_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Exit codes (SPEC section 7). */
#define EXIT_OK	      0
#define EXIT_FAILURE_ 1
#define EXIT_USAGE    2

/* `ciliate replay ...` */
int cmd_replay(int argc, char **argv);

/* `ciliate bpf ...` */
int cmd_bpf(int argc, char **argv);

/* `ciliate policy get|trace ...` */
int cmd_policy(int argc, char **argv);

/* `ciliate bpf policy get ...` (argv[0] is "policy") */
int cmd_bpf_policy(int argc, char **argv);

/* `ciliate apply -f FILE` (datapath/cli/cmd_store.c) */
int cmd_apply(int argc, char **argv);

/* `ciliate delete -f FILE` */
int cmd_delete(int argc, char **argv);

/* `ciliate ipam list` */
int cmd_ipam(int argc, char **argv);

/* `ciliate endpoint list` (asks the agents) */
int cmd_endpoint(int argc, char **argv);

/* `ciliate identity list` (the store, or an agent) */
int cmd_identity(int argc, char **argv);

/* `ciliate status` (the store and the agents) */
int cmd_status(int argc, char **argv);

/* `ciliate observe ...`: Hubble-style flows of every agent (datapath/cli/cmd_observe.c) */
int cmd_observe(int argc, char **argv);

/* `ciliate encrypt status` (asks the nodes' agents; datapath/cli/cmd_encrypt.c) */
int cmd_encrypt(int argc, char **argv);

/* `ciliate health status` (asks the nodes' agents; datapath/cli/cmd_health.c) */
int cmd_health(int argc, char **argv);

/* `ciliate service list` (asks the node's agent; datapath/cli/cmd_service.c) */
int cmd_service(int argc, char **argv);

/* `ciliate bpf lb list` (reads the node's pinned service maps; argv[0] is "lb") */
int cmd_bpf_lb(int argc, char **argv);
int cmd_bpf_nat(int argc, char **argv);
int cmd_bpf_egress(int argc, char **argv);

/* The pin directory of the node a `ciliate bpf ... list` command reads (pin_dir.c): DIR for
 * --pin-dir, CILIATE_PIN_ROOT/NAME for --node, else the only node pinned there. 0, or
 * EXIT_USAGE with the reason and usage printed (naming cmd). */
int cli_pin_dir(const char *cmd, const char *usage, const char *pin_dir, const char *node,
		char *dir, size_t size);

/* The arguments of a `ciliate bpf ... list` command: [-o json|table] [--node NAME] [--pin-dir
 * DIR]. 0, or EXIT_USAGE with the reason and usage printed. */
int cli_pin_args(const char *cmd, const char *usage, int argc, char **argv, bool *json,
		 const char **node, const char **pin_dir);

/* Reads every (key, value) of the pinned map DIR/name (key and value sizes checked) into
 * *recs (malloc'd): records of rec_size bytes, the key first and the value at voff. 0, or
 * -1 with the reason printed (naming cmd). */
int cli_pin_read(const char *cmd, const char *dir, const char *name, size_t ksz, size_t vsz,
		 size_t rec_size, size_t voff, void **recs, size_t *n);
int cmd_bpf_ct(int argc, char **argv);

/* `ciliate monitor ...`: cilium monitor lines, followed live */
int cmd_monitor(int argc, char **argv);

#define CLI_SOCKETS_MAX	    256
/* set by --cluster TAG to "cil-TAG-": agent discovery keeps that cluster's agents only */
#define CLI_AGENT_PREFIX_ENV "CILIATE_AGENT_PREFIX"
#define CLI_SOCKET_PATH_MAX 300

/* The agent sockets to ask (cmd_endpoint.c): socket if given, else node's
 * (/run/ciliate/<node>/agent.sock), else every agent socket found under /run/ciliate/.
 * Fills out[0..CLI_SOCKETS_MAX) and returns how many. */
size_t cli_agent_sockets(const char *node, const char *socket, char (*out)[CLI_SOCKET_PATH_MAX]);

/* Asks the agent at sock for op (no arguments): its answer when "ok" is true (the caller
 * decrefs), else NULL with the reason in err. */
json_t *cli_agent_ask(const char *sock, const char *op, char *err, size_t errsize);

/* A listing's -o value: json or table. Returns 0 (setting *json) or, after naming cmd and
 * the choices on stderr, EXIT_USAGE. */
int cli_output_format(const char *cmd, const char *arg, bool *json);

/* The store URI: the --store value if given, else $CILIATE_STORE, else the default. */
const char *cli_store_uri(const char *flag);

#endif
