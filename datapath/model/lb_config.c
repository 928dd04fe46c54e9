/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service keys of the Cluster's cilium-config (`spec.config`), validated once when the
 * Cluster document is parsed into struct m_lb_config (docs/SERVICES.md, "Configuration").
 * Other keys are kept as strings for cluster_config() and not checked here.
 */
#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ipaddr.h"

void lb_config_defaults(struct m_cluster *cl)
{
	struct m_lb_config *lb = &cl->lb;

	memset(lb, 0, sizeof(*lb));
	lb->kube_proxy_replacement = true;
	lb->mode = LB_MODE_SNAT;
	lb->algorithm = LB_ALG_RANDOM;
	lb->maglev_table_size = MAGLEV_TABLE_SIZE_DEFAULT;
	maglev_seed_parse(MAGLEV_HASH_SEED_DEFAULT, &lb->maglev_seed, NULL);
	lb->dsr_dispatch = DSR_DISPATCH_OPT;
	lb->bpf_masquerade = false;
	lb->native_routing_cidr = cl->pod_cidr;
	lb->native_routing_cidr_len = cl->pod_cidr_len;
	lb->health_check_nodeport = true;
}

static int bool_value(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		      bool *out)
{
	const char *v = yt_scalar(n);

	if (v && !strcasecmp(v, "true"))
		*out = true;
	else if (v && !strcasecmp(v, "false"))
		*out = false;
	else
		return yt_fail(c, n, path, "bad value \"%s\" (want true or false)", v ? v : "");
	return 0;
}

/* names: NULL-terminated, at most 4; *out gets the index. */
static int enum_value(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		      const char *const *names, int *out)
{
	const char *v = yt_scalar(n);
	int i;

	for (i = 0; v && names[i]; i++) {
		if (!strcmp(v, names[i])) {
			*out = i;
			return 0;
		}
	}
	return yt_fail(c, n, path, "bad value \"%s\" (want %s%s%s%s%s%s%s)", v ? v : "",
		       names[0], names[1] ? " | " : "", names[1] ? names[1] : "",
		       names[1] && names[2] ? " | " : "", names[1] && names[2] ? names[2] : "",
		       names[1] && names[2] && names[3] ? " | " : "",
		       names[1] && names[2] && names[3] ? names[3] : "");
}

static int table_size_value(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			    uint32_t *out)
{
	const char *v = yt_scalar(n);
	unsigned long x = 0;
	char *end = NULL;

	if (v && *v >= '0' && *v <= '9')
		x = strtoul(v, &end, 10);
	if (!end || *end || x > UINT32_MAX || !maglev_table_size_valid((uint32_t)x))
		return yt_fail(c, n, path,
			       "bad value \"%s\" (want one of the primes 251, 509, 1021, 2039, "
			       "4093, 8191, 16381, 32749, 65521, 131071)", v ? v : "");
	*out = (uint32_t)x;
	return 0;
}

static int seed_value(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		      struct maglev_seed *out)
{
	struct diag why = { { 0 } };
	const char *v = yt_scalar(n);

	if (!maglev_seed_parse(v ? v : "", out, &why))
		return 0;
	/* why.msg starts with the key: keep its reason only */
	return yt_fail(c, n, path, "%s",
		       !strncmp(why.msg, MAGLEV_SEED_KEY ": ", strlen(MAGLEV_SEED_KEY) + 2)
			       ? why.msg + strlen(MAGLEV_SEED_KEY) + 2
			       : why.msg);
}

static int cidr_value(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
		      struct m_lb_config *lb)
{
	const char *v = yt_scalar(n);

	if (!v || cidr4_parse(v, true, &lb->native_routing_cidr, &lb->native_routing_cidr_len))
		return yt_fail(c, n, path, "bad CIDR \"%s\" (want A.B.C.D/N with no host bits)",
			       v ? v : "");
	lb->native_routing_cidr_set = true;
	return 0;
}

/* prefilter-deny-cidrs: IPv4 CIDRs separated by commas and/or spaces (a ConfigMap value is
 * one string). Each must be canonical (no host bits), as Cilium's prefilter wants them. */
static int prefilter_value(const struct yt_ctx *c, const yaml_node_t *n, const char *path,
			   struct m_lb_config *lb)
{
	const char *v = yt_scalar(n), *s;
	char one[64];
	size_t len;

	if (!v)
		return yt_fail(c, n, path, "bad value (want a string of CIDRs, e.g. "
					   "\"198.51.100.0/24,203.0.113.7/32\")");
	lb->nprefilter = 0;
	for (s = v; *s;) {
		s += strspn(s, ", \t\n");
		len = strcspn(s, ", \t\n");
		if (!len)
			break;
		if (len >= sizeof(one))
			return yt_fail(c, n, path, "entry %zu: \"%.*s...\" is too long for a CIDR",
				       lb->nprefilter + 1, 32, s);
		memcpy(one, s, len);
		one[len] = '\0';
		if (lb->nprefilter == LB_PREFILTER_CIDRS_MAX)
			return yt_fail(c, n, path, "more than %d CIDRs", LB_PREFILTER_CIDRS_MAX);
		if (cidr4_parse(one, true, &lb->prefilter_net[lb->nprefilter],
				&lb->prefilter_len[lb->nprefilter]))
			return yt_fail(c, n, path,
				       "entry %zu: bad CIDR \"%s\" (want A.B.C.D/N with no host "
				       "bits; IPv6 prefixes are not supported yet)",
				       lb->nprefilter + 1, one);
		lb->nprefilter++;
		s += len;
	}
	return 0;
}

/* One key of spec.config; keys this file does not know are left alone. */
static int lb_config_key(const struct yt_ctx *c, const char *key, const yaml_node_t *n,
			 const char *path, struct m_lb_config *lb)
{
	static const char *const modes[] = { "snat", "dsr", "hybrid", "annotation", NULL };
	static const char *const algs[] = { "random", "maglev", NULL };
	static const char *const dispatch[] = { "opt", "ipip", "geneve", NULL };
	int v, err;

	if (!strcmp(key, "kube-proxy-replacement"))
		return bool_value(c, n, path, &lb->kube_proxy_replacement);
	if (!strcmp(key, "enable-bpf-masquerade"))
		return bool_value(c, n, path, &lb->bpf_masquerade);
	if (!strcmp(key, "enable-health-check-nodeport"))
		return bool_value(c, n, path, &lb->health_check_nodeport);
	if (!strcmp(key, MAGLEV_TABLE_SIZE_KEY))
		return table_size_value(c, n, path, &lb->maglev_table_size);
	if (!strcmp(key, MAGLEV_SEED_KEY))
		return seed_value(c, n, path, &lb->maglev_seed);
	if (!strcmp(key, "ipv4-native-routing-cidr"))
		return cidr_value(c, n, path, lb);
	if (!strcmp(key, "bpf-lb-mode")) {
		err = enum_value(c, n, path, modes, &v);
		lb->mode = err ? lb->mode : (enum m_lb_mode)v;
		return err;
	}
	if (!strcmp(key, "bpf-lb-algorithm")) {
		err = enum_value(c, n, path, algs, &v);
		lb->algorithm = err ? lb->algorithm : (enum m_lb_algorithm)v;
		return err;
	}
	if (!strcmp(key, "bpf-lb-acceleration")) {
		/* Cilium's best-effort and generic modes are not offered: XDP runs natively on
		 * the fabric device or not at all (docs/XDP.md) */
		static const char *const accel[] = { "disabled", "native", NULL };

		err = enum_value(c, n, path, accel, &v);
		lb->xdp_acceleration = err ? lb->xdp_acceleration : v == 1;
		return err;
	}
	if (!strcmp(key, "prefilter-deny-cidrs"))
		return prefilter_value(c, n, path, lb);
	if (!strcmp(key, "bpf-lb-dsr-dispatch")) {
		err = enum_value(c, n, path, dispatch, &v);
		lb->dsr_dispatch = err ? lb->dsr_dispatch : (enum m_dsr_dispatch)v;
		return err;
	}
	return 0;
}

int lb_config_parse(struct parse_ctx *p, struct m_cluster *cl, const yaml_node_t *config)
{
	const struct yt_ctx *c = &p->yt;
	char path[YT_PATH_MAX];
	yaml_node_pair_t *pr;
	int err;

	lb_config_defaults(cl);
	if (!config)
		return 0;
	for (pr = config->data.mapping.pairs.start; pr < config->data.mapping.pairs.top; pr++) {
		const char *key = yt_scalar(yt_node(c, pr->key));

		err = lb_config_key(c, key, yt_node(c, pr->value),
				    yt_path(path, "spec.config.%s", key), &cl->lb);
		if (err)
			return err;
	}
	return 0;
}
