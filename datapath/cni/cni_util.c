/* SPDX-License-Identifier: Apache-2.0 */
/* Pure parts of ciliate-cni: parsing its inputs and formatting its outputs. */
#include "cni.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/api.h"

static const char *const supported[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0", NULL};

int cni_fail(struct cni_error *e, int code, const char *details, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	snprintf(e->details, sizeof(e->details), "%s", details ? details : "");
	return -1;
}

bool cni_version_supported(const char *v)
{
	size_t i;

	for (i = 0; v && supported[i]; i++)
		if (!strcmp(v, supported[i]))
			return true;
	return false;
}

int cni_version_cmp(const char *a, const char *b)
{
	unsigned int x[3] = {0}, y[3] = {0};
	int i;

	sscanf(a, "%u.%u.%u", &x[0], &x[1], &x[2]);
	sscanf(b, "%u.%u.%u", &y[0], &y[1], &y[2]);
	for (i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

static bool ipv4_ok(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*ip = a.s_addr;
	return true;
}

int cni_args_parse(const char *s, struct cni_args *out, struct cni_error *e)
{
	char *copy, *save = NULL, *tok, *eq;
	char bad[256] = "";
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return 0;
	copy = strdup(s);
	if (!copy)
		return cni_fail(e, CNI_ERR_IO, NULL, "out of memory");
	/* IgnoreUnknown applies to the whole string, wherever it appears */
	for (tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		eq = strchr(tok, '=');
		if (eq && !strncmp(tok, "IgnoreUnknown=", 14))
			out->ignore_unknown = !strcasecmp(eq + 1, "true") || !strcmp(eq + 1, "1");
	}
	free(copy);
	copy = strdup(s);
	if (!copy)
		return cni_fail(e, CNI_ERR_IO, NULL, "out of memory");
	for (tok = strtok_r(copy, ";", &save); tok && !rc; tok = strtok_r(NULL, ";", &save)) {
		if (!*tok)
			continue;
		eq = strchr(tok, '=');
		if (!eq) {
			rc = cni_fail(e, CNI_ERR_INVALID_ENV, s,
				      "CNI_ARGS: \"%.64s\" is not KEY=VALUE", tok);
			break;
		}
		*eq = '\0';
		if (!strcmp(tok, "K8S_POD_NAMESPACE")) {
			if (!*(eq + 1) || strlen(eq + 1) >= sizeof(out->pod_ns) ||
			    strchr(eq + 1, '/'))
				rc = cni_fail(e, CNI_ERR_INVALID_ENV, s,
					      "CNI_ARGS: K8S_POD_NAMESPACE: invalid namespace");
			else
				snprintf(out->pod_ns, sizeof(out->pod_ns), "%s", eq + 1);
		} else if (!strcmp(tok, "K8S_POD_NAME")) {
			if (!*(eq + 1) || strlen(eq + 1) >= sizeof(out->pod_name) ||
			    strchr(eq + 1, '/'))
				rc = cni_fail(e, CNI_ERR_INVALID_ENV, s,
					      "CNI_ARGS: K8S_POD_NAME: invalid pod name");
			else
				snprintf(out->pod_name, sizeof(out->pod_name), "%s", eq + 1);
		} else if (!strcmp(tok, "IP")) {
			if (!ipv4_ok(eq + 1, &out->ip))
				rc = cni_fail(e, CNI_ERR_INVALID_ENV, s,
					      "CNI_ARGS: IP: \"%.64s\" is not an IPv4 address",
					      eq + 1);
		} else if (!strcmp(tok, "IgnoreUnknown") || !strcmp(tok, "K8S_POD_UID") ||
			   !strcmp(tok, "K8S_POD_INFRA_CONTAINER_ID")) {
			continue;
		} else if (!out->ignore_unknown && !*bad) {
			snprintf(bad, sizeof(bad), "%.200s", tok);
		}
	}
	free(copy);
	if (!rc && *bad)
		rc = cni_fail(e, CNI_ERR_INVALID_ENV, s,
			      "CNI_ARGS: unknown key \"%s\" (add IgnoreUnknown=1 to allow it)",
			      bad);
	return rc;
}

int cni_netconf_parse(const char *text, size_t len, struct cni_netconf *nc, struct cni_error *e)
{
	const char *v, *name, *type, *sock;
	json_error_t je;
	json_t *ipam, *mtu;

	memset(nc, 0, sizeof(*nc));
	nc->root = json_loadb(text, len, 0, &je);
	if (!nc->root || !json_is_object(nc->root)) {
		json_decref(nc->root);
		nc->root = NULL;
		return cni_fail(e, CNI_ERR_DECODE, je.text,
				"network configuration on stdin is not a JSON object (line %d)",
				je.line);
	}
	v = json_string_value(json_object_get(nc->root, "cniVersion"));
	if (!v || !*v)
		return cni_fail(e, CNI_ERR_INVALID_NETCONF, NULL,
				"network configuration: cniVersion missing");
	snprintf(nc->version, sizeof(nc->version), "%s", v);
	if (!cni_version_supported(v))
		return cni_fail(e, CNI_ERR_INCOMPATIBLE_VERSION,
				"supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0",
				"incompatible CNI version \"%.32s\"", v);
	name = json_string_value(json_object_get(nc->root, "name"));
	type = json_string_value(json_object_get(nc->root, "type"));
	if (!name || !*name || strlen(name) >= sizeof(nc->name))
		return cni_fail(e, CNI_ERR_INVALID_NETCONF, NULL,
				"network configuration: name missing or invalid");
	if (!type || !*type || strlen(type) >= sizeof(nc->type))
		return cni_fail(e, CNI_ERR_INVALID_NETCONF, NULL,
				"network configuration: type missing or invalid");
	snprintf(nc->name, sizeof(nc->name), "%s", name);
	snprintf(nc->type, sizeof(nc->type), "%s", type);
	ipam = json_object_get(nc->root, "ipam");
	if (ipam && !(json_is_object(ipam) && json_object_size(ipam) == 0))
		return cni_fail(e, CNI_ERR_UNSUPPORTED_FIELD, "ipam",
				"network configuration: \"ipam\" is not supported (addresses come "
				"from the ciliate agent)");
	sock = json_string_value(json_object_get(nc->root, "agentSocket"));
	if (json_object_get(nc->root, "agentSocket") && !sock)
		return cni_fail(e, CNI_ERR_INVALID_NETCONF, "agentSocket",
				"network configuration: agentSocket must be a string");
	if (!sock || !*sock)
		sock = getenv("CILIATE_AGENT_SOCKET");
	if (!sock || !*sock || strlen(sock) >= sizeof(nc->agent_socket))
		return cni_fail(e, CNI_ERR_INVALID_NETCONF, "agentSocket",
				"network configuration: agentSocket missing (e.g. "
				"\"/run/ciliate/<node>/agent.sock\")");
	snprintf(nc->agent_socket, sizeof(nc->agent_socket), "%s", sock);
	mtu = json_object_get(nc->root, "mtu");
	if (mtu && (!json_is_integer(mtu) || json_integer_value(mtu) < 68 ||
		    json_integer_value(mtu) > 65535))
		return cni_fail(e, CNI_ERR_INVALID_NETCONF, "mtu",
				"network configuration: mtu must be an integer in 68..65535");
	nc->mtu = mtu ? (unsigned int)json_integer_value(mtu) : 0;
	nc->prev_result = json_object_get(nc->root, "prevResult");
	nc->valid_attachments = json_object_get(nc->root, "cni.dev/valid-attachments");
	if (nc->valid_attachments && !json_is_array(nc->valid_attachments))
		return cni_fail(e, CNI_ERR_INVALID_NETCONF, "cni.dev/valid-attachments",
				"network configuration: cni.dev/valid-attachments must be a list");
	return 0;
}

void cni_netconf_free(struct cni_netconf *nc)
{
	json_decref(nc->root);
	memset(nc, 0, sizeof(*nc));
}

bool cni_container_id_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0, i;

	if (!n || n > 1024)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

bool cni_ifname_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0, i;

	if (!n || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == ' ' || (unsigned char)s[i] < 0x21)
			return false;
	return true;
}

json_t *cni_error_json(const char *version, const struct cni_error *e)
{
	return json_pack("{s:s, s:i, s:s, s:s}", "cniVersion",
			 version && cni_version_supported(version) ? version : CNI_VERSION_LATEST,
			 "code", e->code, "msg", e->msg, "details", e->details);
}

json_t *cni_result_json(const char *version, const char *host_if, const char *ifname,
			const char *sandbox, uint32_t ip)
{
	char hmac[24], pmac[24], addr[INET_ADDRSTRLEN], cidr[INET_ADDRSTRLEN + 4];
	bool old = cni_version_cmp(version, "1.0.0") < 0;
	json_t *ipo, *r;

	inet_ntop(AF_INET, &ip, addr, sizeof(addr));
	snprintf(cidr, sizeof(cidr), "%s/32", addr);
	agent_mac_format(AGENT_HOST_MAC_PREFIX, ip, hmac, sizeof(hmac));
	agent_mac_format(AGENT_POD_MAC_PREFIX, ip, pmac, sizeof(pmac));
	ipo = json_pack("{s:s, s:s, s:i}", "address", cidr, "gateway", AGENT_GATEWAY, "interface",
			1);
	if (ipo && old)
		json_object_set_new(ipo, "version", json_string("4"));
	r = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s, s:s}], s:[o], s:[{s:s, s:s}], s:{}}",
		      "cniVersion", version, "interfaces", "name", host_if, "mac", hmac, "name",
		      ifname, "mac", pmac, "sandbox", sandbox, "ips", ipo, "routes", "dst",
		      "0.0.0.0/0", "gw", AGENT_GATEWAY, "dns");
	return r;
}

json_t *cni_version_json(const char *version)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; supported[i]; i++)
		json_array_append_new(arr, json_string(supported[i]));
	return json_pack("{s:s, s:o}", "cniVersion",
			 version && cni_version_supported(version) ? version : CNI_VERSION_LATEST,
			 "supportedVersions", arr);
}
