/* SPDX-License-Identifier: Apache-2.0 */
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>

#include "ciliate/abi.h"

struct reason_entry {
	unsigned int code;
	const char *name;
	const char *desc;
};

static const struct reason_entry reasons[] = {
#define REASON_ENTRY(code, name, desc) { code, #name, desc },
	CILIATE_TRACE_REASONS(REASON_ENTRY) CILIATE_DROP_REASONS(REASON_ENTRY)
#undef REASON_ENTRY
};

#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

static const struct reason_entry *reason_find(unsigned int code)
{
	for (size_t i = 0; i < NREASONS; i++)
		if (reasons[i].code == code)
			return &reasons[i];
	return NULL;
}

const char *reason_name(unsigned int code)
{
	static __thread char buf[32];
	const struct reason_entry *r = reason_find(code);

	if (r)
		return r->name;
	snprintf(buf, sizeof(buf), "REASON_%u", code);
	return buf;
}

const char *reason_desc(unsigned int code)
{
	const struct reason_entry *r = reason_find(code);

	return r ? r->desc : "Unknown reason";
}

int reason_from_name(const char *name)
{
	char *end;
	long v;

	for (size_t i = 0; i < NREASONS; i++)
		if (!strcasecmp(reasons[i].name, name))
			return (int)reasons[i].code;
	v = strtol(name, &end, 10);
	if (*name && !*end && v >= 0 && v < CILIATE_REASON_MAX && reason_find((unsigned int)v))
		return (int)v;
	return -1;
}

void reason_foreach(void (*fn)(unsigned int code, const char *name, const char *desc, void *arg),
		    void *arg)
{
	for (size_t i = 0; i < NREASONS; i++)
		fn(reasons[i].code, reasons[i].name, reasons[i].desc, arg);
}

static const char *const hook_names[HOOK_MAX] = {
	[HOOK_UNSPEC] = "unknown",
	[HOOK_FROM_CONTAINER] = "from-container",
	[HOOK_TO_CONTAINER] = "to-container",
	[HOOK_FROM_NETDEV] = "from-netdev",
	[HOOK_TO_NETDEV] = "to-netdev",
	[HOOK_FROM_OVERLAY] = "from-overlay",
	[HOOK_XDP] = "xdp",
	[HOOK_TO_OVERLAY] = "to-overlay",
};

const char *hook_name(unsigned int hook)
{
	return hook < HOOK_MAX ? hook_names[hook] : "unknown";
}

int hook_from_name(const char *name)
{
	for (int i = 1; i < HOOK_MAX; i++)
		if (!strcmp(hook_names[i], name))
			return i;
	return -1;
}

const char *ct_status_name(unsigned int status)
{
	static const char *const names[] = { "new", "established", "reply", "related" };

	return status < 4 ? names[status] : "unknown";
}

const char *policy_match_name(unsigned int match)
{
	static const char *const names[] = { "none", "L3-Only", "L3-L4", "L4-Only", "all",
					     "not-enforced" };

	return match < 6 ? names[match] : "unknown";
}

const char *proto_name(uint8_t proto, char *buf, unsigned int buflen)
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_ICMP:
		return "ICMP";
	case IPPROTO_ICMPV6:
		return "ICMPv6";
	case IPPROTO_SCTP:
		return "SCTP";
	}
	snprintf(buf, buflen, "%u", proto);
	return buf;
}

int proto_from_name(const char *name)
{
	if (!strcasecmp(name, "TCP"))
		return IPPROTO_TCP;
	if (!strcasecmp(name, "UDP"))
		return IPPROTO_UDP;
	if (!strcasecmp(name, "ICMP"))
		return IPPROTO_ICMP;
	if (!strcasecmp(name, "ICMPv6"))
		return IPPROTO_ICMPV6;
	if (!strcasecmp(name, "SCTP"))
		return IPPROTO_SCTP;
	return -1;
}

static const char *const src_file_names[SRC_MAX] = {
	[SRC_UNKNOWN] = "unknown",     [SRC_LXC] = "lxc.bpf.c",	    [SRC_PARSE] = "parse.h",
	[SRC_CONNTRACK] = "conntrack.h", [SRC_POLICY] = "policy.h",	    [SRC_FORWARD] = "forward.h",
	[SRC_FRAG] = "frag.h",	       [SRC_NETDEV] = "netdev.bpf.c", [SRC_OVERLAY] = "overlay.bpf.c",
	[SRC_XDP] = "xdp.bpf.c",
};

const char *src_file_name(unsigned int file)
{
	return file < SRC_MAX && src_file_names[file] ? src_file_names[file] : "unknown";
}
