/* SPDX-License-Identifier: Apache-2.0 */
/* The `ciliate` CLI: one file per command group, dispatched from main.c. */
#ifndef CILIATE_CLI_H
#define CILIATE_CLI_H

/* Exit codes (SPEC section 7). */
#define EXIT_OK 0
#define EXIT_FAILURE_ 1
#define EXIT_USAGE 2

/* `ciliate replay ...` */
int cmd_replay(int argc, char **argv);

/* `ciliate bpf ...` */
int cmd_bpf(int argc, char **argv);

#endif
