/* SPDX-License-Identifier: Apache-2.0 */
/* Names for the shared vocabularies: reasons, hooks, CT status, policy match, protocols. */
#ifndef CILIATE_NAMES_H
#define CILIATE_NAMES_H

#include <stdint.h>

/* "POLICY_DENIED" for 133; "REASON_<n>" for unknown codes (static buffer for those). */
const char *reason_name(unsigned int code);

/* Human description ("Policy denied"); "Unknown reason" for unknown codes. */
const char *reason_desc(unsigned int code);

/* Code for a name ("POLICY_DENIED" or "133"); -1 if unknown. */
int reason_from_name(const char *name);

/* Calls fn for every known reason, in code order. */
void reason_foreach(void (*fn)(unsigned int code, const char *name, const char *desc, void *arg),
		    void *arg);

/* "from-container" ... for enum ciliate_hook; "unknown" otherwise. */
const char *hook_name(unsigned int hook);

/* enum ciliate_hook for a name; -1 if unknown. */
int hook_from_name(const char *name);

/* The BPF source file of a drop's enum ciliate_src_file ("lxc.bpf.c", "policy.h"). */
const char *src_file_name(unsigned int file);

/* "new", "established", "reply", "related". */
const char *ct_status_name(unsigned int status);

/* "L3-Only", "L3-L4", "L4-Only", "all", "none", "not-enforced". */
const char *policy_match_name(unsigned int match);

/* "TCP", "UDP", "ICMP", "ICMPv6", "SCTP" or the number. */
const char *proto_name(uint8_t proto, char *buf, unsigned int buflen);

/* IPPROTO_* for "TCP"/"udp"/...; -1 if unknown. */
int proto_from_name(const char *name);

#endif
