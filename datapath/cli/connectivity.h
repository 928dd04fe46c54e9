/* SPDX-License-Identifier: Apache-2.0 */
/* `ciliate connectivity test` (cmd_connectivity.c; docs/CONNECTIVITY-TEST.md). */
#ifndef CILIATE_CLI_CONNECTIVITY_H
#define CILIATE_CLI_CONNECTIVITY_H

/* `ciliate connectivity test ...`: exit 0 all passed, 1 a test failed, 2 usage, 130
 * interrupted. */
int cmd_connectivity(int argc, char **argv);

#endif
