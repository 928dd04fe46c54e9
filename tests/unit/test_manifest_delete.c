/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ciliate delete -f` needs only what names each object (SPEC section 4, as `kubectl delete
 * -f`): kind, metadata.namespace and metadata.name. manifest_refs_load (datapath/model) reads
 * exactly that, for every kind the project knows, with the namespace rules of `apply`
 * (cluster-scoped kinds: none, a given one ignored; namespaced kinds: "default" when unset);
 * and the CLI deletes, by such references, what `ciliate apply -f` stored from full manifests.
 * The CLI case uses a scratch store (tests/lib/store_scratch.h): a temporary directory, or,
 * with CILIATE_TEST_ETCD=HOST:PORT (tests/store-etcd/run-suite.sh), that etcd, every key under
 * /ciliate/ deleted first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/model.h"
#include "store/store.h"
#include "store_scratch.h"
#include "tmpdir.h"

static char cli[4096]; /* BUILD/bin/ciliate, next to BUILD/tests/<this test> */

/* Every kind the store and the model take (SPEC section 4): full manifests as `apply` checks
 * them, then what `delete` needs. */
static const struct kind_case {
	const char *kind;
	bool cluster_scoped;
	const char *full; /* YAML document (its apiVersion and spec as apply wants them) */
} kinds[] = {
	{"Namespace", true, "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"},
	{"Pod", false,
	 "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: x, labels: {app: x}}\n"
	 "spec:\n  nodeName: node-1\n  containers: [{name: c, image: e, ports: "
	 "[{containerPort: 80}]}]\n"},
	{"Service", false,
	 "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: x}\n"
	 "spec: {selector: {app: x}, ports: [{port: 80}]}\n"},
	{"EndpointSlice", false,
	 "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: x, namespace: x}\n"
	 "addressType: IPv4\nendpoints: []\n"},
	{"NetworkPolicy", false,
	 "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: x}\n"
	 "spec: {podSelector: {}, policyTypes: [Ingress]}\n"},
	{"CiliumNetworkPolicy", false,
	 "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x, namespace: x}\n"
	 "spec:\n  endpointSelector: {matchLabels: {app: x}}\n  ingress: [{fromEndpoints: [{}]}]\n"},
	{"CiliumClusterwideNetworkPolicy", true,
	 "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: x}\n"
	 "spec:\n  endpointSelector: {}\n  ingress: [{fromEntities: [cluster]}]\n"},
	{"CiliumEgressGatewayPolicy", true,
	 "apiVersion: cilium.io/v2\nkind: CiliumEgressGatewayPolicy\nmetadata: {name: x}\n"
	 "spec: {selectors: [{podSelector: {}}], destinationCIDRs: [0.0.0.0/0],\n"
	 "  egressGateway: {nodeSelector: {}}}\n"},
	{"ConfigMap", false,
	 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: x}\n"
	 "data: {bpf-lb-mode: snat}\n"},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static struct manifest_obj *refs(const char *yaml, size_t *n, struct diag *d)
{
	struct manifest_obj *v = NULL;

	d->msg[0] = '\0';
	if (manifest_refs_load("refs.yaml", yaml, strlen(yaml), &v, n, NULL, d))
		return NULL;
	return v;
}

static void assert_ref(const struct manifest_obj *o, const char *kind, const char *ns,
		       const char *name)
{
	assert_string_equal(o->kind, kind);
	assert_string_equal(o->ns, ns);
	assert_string_equal(o->name, name);
	assert_null(o->json);
}

/* kind + metadata.name (+ namespace) is enough for every kind; the namespace follows the
 * same rules as apply's */
static void test_refs_every_kind(void **state)
{
	char yaml[512];
	struct diag d;
	size_t n, i;

	(void)state;
	for (i = 0; i < NKINDS; i++) {
		struct manifest_obj *v, *full = NULL;
		size_t nfull;

		/* with a namespace: namespaced kinds keep it, cluster-scoped ones ignore it */
		snprintf(yaml, sizeof(yaml), "kind: %s\nmetadata: {name: x, namespace: x}\n",
			 kinds[i].kind);
		v = refs(yaml, &n, &d);
		if (!v)
			fail_msg("%s: %s", kinds[i].kind, d.msg);
		assert_int_equal(n, 1);
		assert_ref(&v[0], kinds[i].kind, kinds[i].cluster_scoped ? "" : "x", "x");
		assert_null(v[0].api_version);
		/* ... and it names what apply stores from the full manifest */
		assert_int_equal(manifests_load("full.yaml", kinds[i].full, strlen(kinds[i].full),
						&full, &nfull, NULL, &d),
				 0);
		assert_int_equal(nfull, 1);
		assert_string_equal(full[0].kind, v[0].kind);
		assert_string_equal(full[0].ns, v[0].ns);
		assert_string_equal(full[0].name, v[0].name);
		manifests_free(full, nfull);
		manifests_free(v, n);

		/* without a namespace: "default" for namespaced kinds, as kubectl and apply */
		snprintf(yaml, sizeof(yaml), "kind: %s\nmetadata: {name: y}\n", kinds[i].kind);
		v = refs(yaml, &n, &d);
		if (!v)
			fail_msg("%s: %s", kinds[i].kind, d.msg);
		assert_ref(&v[0], kinds[i].kind, kinds[i].cluster_scoped ? "" : "default", "y");
		manifests_free(v, n);
	}
}

/* a spec that apply would reject is not looked at; an apiVersion may be given */
static void test_refs_ignore_the_rest(void **state)
{
	struct manifest_obj *v;
	struct diag d;
	size_t n;

	(void)state;
	v = refs("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
		 "metadata: {name: n, namespace: x, labels: {a: b}}\nspec: 5\n---\n"
		 "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\n",
		 &n, &d);
	if (!v)
		fail_msg("%s", d.msg);
	assert_int_equal(n, 2);
	assert_ref(&v[0], "CiliumNetworkPolicy", "x", "n");
	assert_string_equal(v[0].api_version, "cilium.io/v2");
	assert_ref(&v[1], "Pod", "x", "p");
	manifests_free(v, n);
	/* the same CNP through apply's check fails: it needs a spec */
	{
		static const char cnp[] = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n"
					  "metadata: {name: n, namespace: x}\n";

		assert_int_not_equal(manifests_load("full.yaml", cnp, strlen(cnp), &v, &n, NULL,
						    &d),
				     0);
	}
}

/* v1 List items are expanded, sim.ciliate.dev documents skipped, duplicates refused */
static void test_refs_lists_and_sim_docs(void **state)
{
	struct manifest_obj *v;
	struct diag d;
	size_t n, skipped = 0;
	const char *y = "apiVersion: sim.ciliate.dev/v1\nkind: Test\nmetadata: {name: t}\n---\n"
			"kind: List\nitems:\n- {kind: Namespace, metadata: {name: a}}\n"
			"- {kind: NetworkPolicy, metadata: {name: b, namespace: a}}\n";

	(void)state;
	assert_int_equal(manifest_refs_load("r.yaml", y, strlen(y), &v, &n, &skipped, &d), 0);
	assert_int_equal(skipped, 1);
	assert_int_equal(n, 2);
	assert_ref(&v[0], "Namespace", "", "a");
	assert_ref(&v[1], "NetworkPolicy", "a", "b");
	manifests_free(v, n);
	v = refs("kind: Pod\nmetadata: {name: p}\n---\nkind: Pod\nmetadata: {name: p, namespace: "
		 "default}\n",
		 &n, &d);
	assert_null(v);
	assert_non_null(strstr(d.msg, "refs.yaml:4: metadata.name: duplicate Pod \"default/p\""));
}

/* what names an object is still required, with file:line and field */
static void test_refs_errors(void **state)
{
	static const struct {
		const char *yaml, *msg;
	} bad[] = {
		{"metadata: {name: x}\n", "refs.yaml:1: kind: required field missing"},
		{"kind: Pod\n", "refs.yaml:1: metadata.name: required field missing"},
		{"kind: Pod\nmetadata: {namespace: x}\n",
		 "refs.yaml:2: metadata.name: required field missing"},
		{"kind: Pod\nmetadata: {name: \"a/b\"}\n", "metadata.name: \"a/b\" is not a valid"},
		{"kind: Pod\nmetadata: {name: a, namespace: \"\"}\n",
		 "metadata.namespace: must be a non-empty string"},
		{"kind: \"Pod/x\"\nmetadata: {name: a}\n", "kind: \"Pod/x\" is not a valid kind"},
		{"- kind: Pod\n", "a document must be a mapping with kind and metadata.name"},
	};
	struct diag d;
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(refs(bad[i].yaml, &n, &d));
		if (!strstr(d.msg, bad[i].msg))
			fail_msg("case %zu: want \"%s\" in \"%s\"", i, bad[i].msg, d.msg);
	}
}

/* a Test step's delete entries name objects the same way */
static void test_step_delete_refs(void **state)
{
	static const char y[] =
		"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: c}\n"
		"spec: {nodes: [{name: node-1}]}\n---\n"
		"apiVersion: sim.ciliate.dev/v1\nkind: Test\nmetadata: {name: t}\nspec:\n"
		"  steps:\n  - name: s\n    delete:\n"
		"    - {kind: CiliumNetworkPolicy, namespace: x, name: a}\n"
		"    - {kind: CiliumNetworkPolicy, name: b}\n"
		"    - {kind: CiliumClusterwideNetworkPolicy, name: c}\n"
		"    - {kind: CiliumClusterwideNetworkPolicy, namespace: x, name: d}\n"
		"    - {kind: ConfigMap, namespace: kube-system, name: cilium-config}\n";
	struct scenario *s;
	struct diag d;
	const struct m_step *st;

	(void)state;
	if (scenario_load_buffer("steps.yaml", y, strlen(y), &s, &d))
		fail_msg("%s", d.msg);
	assert_int_equal(s->ntests, 1);
	st = &s->tests[0].steps[0];
	assert_int_equal(st->ndeletes, 5);
	assert_string_equal(st->deletes[0].ns, "x");
	assert_string_equal(st->deletes[1].ns, "default");
	assert_string_equal(st->deletes[2].ns, "");
	assert_string_equal(st->deletes[3].ns, ""); /* cluster-scoped: ignored, as apply does */
	assert_string_equal(st->deletes[4].ns, "kube-system");
	assert_string_equal(st->deletes[4].name, "cilium-config");
	scenario_free(s);
}

static int run_cli(const char *args, char *out, size_t outsize)
{
	char cmd[8192];
	size_t len = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", cli, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	out[0] = '\0';
	while (len + 1 < outsize && fgets(out + len, (int)(outsize - len), p))
		len += strlen(out + len);
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* the CLI: apply full manifests of every kind, delete them by kind/namespace/name only */
static void test_cli_apply_then_delete_by_name(void **state)
{
	char dir[] = "/tmp/ciliate-t-delete-XXXXXX", uri[256], path[256], args[1024], out[16384];
	char full[8192] = "", refs_yaml[4096] = "", label[256];
	struct store_list l;
	struct store *s;
	struct diag d;
	size_t i;

	(void)state;
	if (access(cli, X_OK))
		fail_msg("%s is missing (make first)", cli);
	/* the embedded store in dir itself, or etcd with /ciliate/ emptied */
	if (scratch_store_make(dir, uri, sizeof(uri), "fsync=0", "/ciliate/"))
		fail_msg("no scratch store");
	for (i = 0; i < NKINDS; i++) {
		strcat(full, "---\n");
		strcat(full, kinds[i].full);
		/* the references leave the namespace out where "default" or none applies */
		snprintf(refs_yaml + strlen(refs_yaml), sizeof(refs_yaml) - strlen(refs_yaml),
			 "---\nkind: %s\nmetadata:\n  name: x\n%s", kinds[i].kind,
			 kinds[i].cluster_scoped ? "" : "  namespace: x\n");
	}
	strcat(refs_yaml, "---\nkind: ConfigMap\nmetadata: {name: d}\n");
	strcat(full, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\ndata: {}\n");
	snprintf(path, sizeof(path), "%s/full.yaml", dir);
	write_text(path, full);
	snprintf(args, sizeof(args), "apply -f %s --store '%s'", path, uri);
	if (run_cli(args, out, sizeof(out)))
		fail_msg("apply: %s", out);
	/* every object is in the store before it is deleted */
	assert_int_equal(store_open(uri, &s, &d), 0);
	assert_int_equal(store_list(s, "/ciliate/objects/", &l, &d), 0);
	assert_int_equal(l.n, NKINDS + 1);
	store_list_free(&l);
	store_close(s);
	snprintf(path, sizeof(path), "%s/refs.yaml", dir);
	write_text(path, refs_yaml);
	snprintf(args, sizeof(args), "delete -f %s --store '%s'", path, uri);
	if (run_cli(args, out, sizeof(out)))
		fail_msg("delete: %s", out);
	for (i = 0; i < NKINDS; i++) {
		snprintf(label, sizeof(label), "%s/%sx deleted\n", kinds[i].kind,
			 kinds[i].cluster_scoped ? "" : "x/");
		if (!strstr(out, label))
			fail_msg("no \"%s\" in: %s", label, out);
	}
	assert_non_null(strstr(out, "ConfigMap/default/d deleted\n"));
	assert_int_equal(store_open(uri, &s, &d), 0);
	assert_int_equal(store_list(s, "/ciliate/objects/", &l, &d), 0);
	assert_int_equal(l.n, 0);
	store_list_free(&l);
	store_close(s);
	/* deleting again: not found, named by file:line, unless --ignore-not-found */
	snprintf(args, sizeof(args), "delete -f %s --store '%s'", path, uri);
	assert_int_equal(run_cli(args, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "refs.yaml:2: Namespace/x not found"));
	snprintf(args, sizeof(args), "delete -f %s --store '%s' --ignore-not-found", path, uri);
	assert_int_equal(run_cli(args, out, sizeof(out)), 0);
	test_rm_dir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refs_every_kind),
		cmocka_unit_test(test_refs_ignore_the_rest),
		cmocka_unit_test(test_refs_lists_and_sim_docs),
		cmocka_unit_test(test_refs_errors),
		cmocka_unit_test(test_step_delete_refs),
		cmocka_unit_test(test_cli_apply_then_delete_by_name),
	};
	char self[4096];

	(void)argc;
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(cli, sizeof(cli), "%s/../bin/ciliate", dirname(self));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
