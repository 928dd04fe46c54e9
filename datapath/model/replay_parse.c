/* SPDX-License-Identifier: Apache-2.0 */
/* The sim.ciliate.dev/v1 Replay document: which node and hook a pcap is pushed through, and
 * the expected per-packet verdicts and output. Strict: unknown fields are errors. */
#include "parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const hooks[] = { "from-container", "to-container", "from-netdev",
				     "to-netdev",      "from-overlay", "to-overlay",
				     "xdp",	       NULL };

static bool verdict_ok(const char *v)
{
	if (!strcmp(v, "ok") || !strcmp(v, "redirect") || !strcmp(v, "tx") || !strcmp(v, "pass"))
		return true;
	return !strncmp(v, "drop:", 5) && drop_reason_known(v + 5);
}

static int parse_expect(struct parse_ctx *p, const yaml_node_t *n, struct m_replay *r)
{
	static const char *const fields[] = { "verdicts", "output", NULL };
	const struct yt_ctx *c = &p->yt;
	char sub[YT_PATH_MAX], rel[4096];
	yaml_node_item_t *it;
	yaml_node_t *vs, *v;
	int err;

	err = yt_check_fields(c, n, "spec.expect", fields);
	if (err)
		return err;
	vs = yt_map_get(c, n, "verdicts");
	if (vs) {
		err = yt_want_seq(c, vs, "spec.expect.verdicts");
		if (err)
			return err;
		r->expect_verdicts = calloc((size_t)(vs->data.sequence.items.top -
						     vs->data.sequence.items.start) + 1,
					    sizeof(*r->expect_verdicts));
		if (!r->expect_verdicts)
			return -ENOMEM;
		for (it = vs->data.sequence.items.start; it < vs->data.sequence.items.top; it++) {
			v = yt_node(c, *it);
			yt_path(sub, "spec.expect.verdicts[%zu]", r->nexpect_verdicts);
			err = yt_strdup(c, v, sub, &r->expect_verdicts[r->nexpect_verdicts]);
			if (err)
				return err;
			r->nexpect_verdicts++;
			if (!verdict_ok(yt_scalar(v)))
				return yt_fail(c, v, sub,
					       "unknown verdict \"%s\" (ok | redirect | tx | pass | "
					       "drop:REASON with a reason of drop_reasons.h)",
					       yt_scalar(v));
		}
	}
	v = yt_map_get(c, n, "output");
	if (!v)
		return 0;
	err = yt_str(c, v, "spec.expect.output", rel, sizeof(rel));
	if (!err)
		err = path_resolve(p->dir, rel, &r->expect_output);
	return err;
}

static int check_endpoint(struct parse_ctx *p, const yaml_node_t *n, struct m_replay *r)
{
	const struct m_pod *pod;

	pod = cluster_find_pod(p->m, r->endpoint);
	if (!pod)
		return yt_fail(&p->yt, n, "spec.endpoint", "no pod \"%s\" in the scenario",
			       r->endpoint);
	if (pod->host_network)
		return yt_fail(&p->yt, n, "spec.endpoint",
			       "pod \"%s\" uses hostNetwork and is not an endpoint", r->endpoint);
	if (strcmp(pod->node, r->node))
		return yt_fail(&p->yt, n, "spec.endpoint",
			       "pod \"%s\" runs on node \"%s\", not \"%s\"", r->endpoint, pod->node,
			       r->node);
	return 0;
}

/* spec.hook: one hook, or a comma-separated list naming each packet's hook in order (the
 * replay engine runs them all on the same maps, so a reply can cross another hook than its
 * request). *pod_hook: one of them is a pod's (an endpoint is needed). */
static int check_hooks(struct parse_ctx *p, const yaml_node_t *n, const char *spec,
		       bool *pod_hook)
{
	const char *at = spec, *end;
	size_t i, len;

	do {
		end = strchr(at, ',');
		len = end ? (size_t)(end - at) : strlen(at);
		for (i = 0; hooks[i] && (strlen(hooks[i]) != len || strncmp(hooks[i], at, len));
		     i++)
			;
		if (!hooks[i])
			return yt_fail(&p->yt, n, "spec.hook",
				       "unknown hook \"%.*s\" (from-container | to-container | "
				       "from-netdev | to-netdev | from-overlay | to-overlay | xdp; or "
				       "a comma-separated list, one per packet)",
				       (int)len, at);
		*pod_hook |= i < 2;
		at = end ? end + 1 : NULL;
	} while (at);
	return 0;
}

int replay_parse(struct parse_ctx *p, const yaml_node_t *root)
{
	static const char *const top[] = { "apiVersion", "kind", "metadata", "spec", NULL };
	static const char *const fields[] = { "node", "hook", "endpoint", "pcap", "expect",
					      NULL };
	const struct yt_ctx *c = &p->yt;
	struct scenario *s = p->s;
	struct m_replay *v, *r;
	yaml_node_t *spec, *n;
	bool pod_hook = false;
	char rel[4096];
	size_t i;
	int err;

	v = realloc(s->replays, (s->nreplays + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->replays = v;
	r = &v[s->nreplays++];
	memset(r, 0, sizeof(*r));
	r->line = yt_line(root);
	err = yt_check_fields(c, root, "", top);
	if (!err)
		err = sim_metadata_parse(p, root, true, r->name, sizeof(r->name));
	if (!err)
		err = yt_require(c, root, "", "spec");
	if (err)
		return err;
	for (i = 0; i + 1 < s->nreplays; i++)
		if (!strcmp(s->replays[i].name, r->name))
			return yt_fail(c, root, "metadata.name", "duplicate Replay \"%s\"", r->name);
	spec = yt_map_get(c, root, "spec");
	err = yt_check_fields(c, spec, "spec", fields);
	if (!err)
		err = yt_require(c, spec, "spec", "node");
	if (!err)
		err = yt_require(c, spec, "spec", "hook");
	if (!err)
		err = yt_require(c, spec, "spec", "pcap");
	if (!err)
		err = yt_str(c, yt_map_get(c, spec, "node"), "spec.node", r->node, sizeof(r->node));
	if (!err)
		err = yt_str(c, yt_map_get(c, spec, "hook"), "spec.hook", r->hook, sizeof(r->hook));
	if (err)
		return err;
	if (!cluster_find_node(p->m, r->node))
		return yt_fail(c, yt_map_get(c, spec, "node"), "spec.node",
			       "no node named \"%s\" in the Cluster", r->node);
	err = check_hooks(p, yt_map_get(c, spec, "hook"), r->hook, &pod_hook);
	if (err)
		return err;
	n = yt_map_get(c, spec, "endpoint");
	if (n) {
		err = yt_str(c, n, "spec.endpoint", r->endpoint, sizeof(r->endpoint));
		if (!err)
			err = check_endpoint(p, n, r);
		if (err)
			return err;
	} else if (pod_hook) {
		return yt_fail(c, spec, "spec.endpoint", "required for hook %s", r->hook);
	}
	err = yt_str(c, yt_map_get(c, spec, "pcap"), "spec.pcap", rel, sizeof(rel));
	if (!err)
		err = path_resolve(p->dir, rel, &r->pcap);
	if (err)
		return err;
	n = yt_map_get(c, spec, "expect");
	return n ? parse_expect(p, n, r) : 0;
}
