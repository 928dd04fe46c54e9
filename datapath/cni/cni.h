/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ciliate-cni: a CNI 1.1 plugin (docs/CNI.md). This header covers the pure parts (cni_util.c:
 * environment and CNI_ARGS parsing, network configuration checks, result and error JSON);
 * main.c does the netlink work and talks to the agent.
 */
#ifndef CILIATE_CNI_H
#define CILIATE_CNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define CNI_VERSION_LATEST "1.1.0"
#define CNI_TYPE	   "ciliate-cni"

/* Error codes of the CNI specification (1-99) and this plugin's own (100+). */
enum cni_code {
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_NETCONF = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_NOT_AVAILABLE = 50,
	CNI_ERR_LIMITED = 51,
	CNI_ERR_IF_EXISTS = 100, /* the host or container interface already exists */
	CNI_ERR_AGENT = 101,	 /* the agent refused the request */
	CNI_ERR_IPAM = 102,	 /* no address: conflict or range exhausted */
	CNI_ERR_CHECK = 103,	 /* CHECK found the container's networking not as set up */
	CNI_ERR_SETUP = 104,	 /* creating the interfaces failed */
};

struct cni_error {
	int code;
	char msg[512];
	char details[1024];
};

/* Fills e and returns -1 (for `return cni_fail(...)`). */
int cni_fail(struct cni_error *e, int code, const char *details, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* CNI_ARGS: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=name;IP=10.244.0.20;IgnoreUnknown=1". */
struct cni_args {
	char pod_ns[64];
	char pod_name[254];
	uint32_t ip; /* network order; 0 if not requested */
	bool ignore_unknown;
};

/* Parses CNI_ARGS (NULL or "" is fine); unknown keys are errors unless IgnoreUnknown is
 * true/1. Errors use CNI_ERR_INVALID_ENV. */
int cni_args_parse(const char *s, struct cni_args *out, struct cni_error *e);

/* True if v is a CNI version this plugin speaks. */
bool cni_version_supported(const char *v);

/* Compares two "X.Y.Z" versions like strcmp. */
int cni_version_cmp(const char *a, const char *b);

/* The network configuration from stdin. */
struct cni_netconf {
	char version[16];
	char name[128];
	char type[64];
	char agent_socket[256];
	unsigned int mtu;	   /* "mtu": both ends of the veth; 0: the kernel's default */
	json_t *root;		   /* the whole document */
	json_t *prev_result;	   /* CHECK/DEL: borrowed from root, may be NULL */
	json_t *valid_attachments; /* GC: cni.dev/valid-attachments, borrowed, may be NULL */
};

/* Parses and checks the configuration: 6 for bad JSON, 1 for an unsupported cniVersion,
 * 7 for missing name/type (or a wrong type), 2 for an unsupported "ipam" section. The
 * agent socket comes from "agentSocket", else env CILIATE_AGENT_SOCKET. An optional "mtu"
 * (68..65535, as in the reference plugins) is set on both ends of the pod's veth. */
int cni_netconf_parse(const char *text, size_t len, struct cni_netconf *nc, struct cni_error *e);

/* Frees the parsed document. */
void cni_netconf_free(struct cni_netconf *nc);

/* True if s is a valid CNI_CONTAINERID (non-empty, [A-Za-z0-9_.-], at most 1024 bytes). */
bool cni_container_id_valid(const char *s);

/* True if s is a valid interface name (1-15 bytes, not "." or "..", no '/', ':' or space). */
bool cni_ifname_valid(const char *s);

/* The error object: {"cniVersion","code","msg","details"}. */
json_t *cni_error_json(const char *version, const struct cni_error *e);

/* The ADD result: host veth, container interface (with sandbox), the /32 address on the
 * container interface and the default route via the gateway. ip is network order. */
json_t *cni_result_json(const char *version, const char *host_if, const char *ifname,
			const char *sandbox, uint32_t ip);

/* The VERSION answer: {"cniVersion", "supportedVersions"}. */
json_t *cni_version_json(const char *version);

#endif
