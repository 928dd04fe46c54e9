/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Service allocations kept in the store (docs/SERVICES.md "Allocations"): the model's
 * allocator as a function (services_allocate: the same numbers and errors as the model),
 * what `ciliate apply` keeps of a stored Service (service_keep_allocations) and writes into
 * the object (service_json_fill), and the CLI end to end: values written at creation, kept
 * across deletes of other services and re-applies without them, a taken nodePort rejected
 * with file, document and field, ClusterIP -> NodePort, and concurrent applies.
 * The CLI cases use a scratch store (tests/lib/store_scratch.h): a temporary directory, or,
 * with CILIATE_TEST_ETCD=HOST:PORT (tests/store-etcd/run-suite.sh), that etcd, every key under
 * /ciliate/ deleted first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "model/model.h"
#include "store/store.h"
#include "store_scratch.h"
#include "tmpdir.h"

static char cli[4096]; /* BUILD/bin/ciliate, next to BUILD/tests/<this test> */

#define CLUSTER                                                                            \
	"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: c}\n"             \
	"spec: {nodes: [{name: node-1}], serviceCIDR: 10.20.0.0/24}\n---\n"

static struct cluster_model *load_model(const char *yaml, struct diag *d)
{
	struct model_doc doc = {.name = "svc.yaml", .text = yaml, .len = strlen(yaml)};
	struct cluster_model *m = NULL;

	if (cluster_model_from_docs("t", &doc, 1, &m, NULL, d))
		return NULL;
	return m;
}

static const char *ip(uint32_t a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, 16);
}

/* the model's numbers come from services_allocate: the function gives the same again */
static void test_allocate_same_as_model(void **state)
{
	static const char y[] = CLUSTER
		"apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\n"
		"spec: {type: NodePort, ports: [{port: 80}]}\n---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: x}\n"
		"spec: {type: NodePort, clusterIP: 10.20.0.2, ports: [{port: 80, nodePort: 30000}]}\n"
		"---\n"
		"apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: x}\n"
		"spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}\n";
	struct cluster_model *m;
	struct m_service v[3];
	struct diag d;
	char a[16];
	size_t i, bad = 99;

	(void)state;
	m = load_model(y, &d);
	if (!m)
		fail_msg("%s", d.msg);
	assert_int_equal(m->nservices, 3);
	assert_string_equal(ip(m->services[0].cluster_ip, a), "10.20.0.3");
	assert_int_equal(m->services[0].ports[0].node_port, 30001);
	assert_string_equal(ip(m->services[2].cluster_ip, a), "10.20.0.4");
	assert_int_equal(m->services[2].ports[0].node_port, 30002);
	assert_int_equal(m->services[2].health_check_node_port, 30003);
	for (i = 0; i < 3; i++) {
		assert_int_equal(service_copy(&v[i], &m->services[i]), 0);
		if (!v[i].cluster_ip_given)
			v[i].cluster_ip = 0;
		if (!v[i].ports[0].node_port_given)
			v[i].ports[0].node_port = 0;
		v[i].health_check_node_port = 0;
	}
	assert_int_equal(services_allocate(v, 3, &m->cluster, true, &bad, &d), 0);
	assert_int_equal(bad, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(v[i].cluster_ip, m->services[i].cluster_ip);
		assert_int_equal(v[i].ports[0].node_port, m->services[i].ports[0].node_port);
		assert_int_equal(v[i].health_check_node_port, m->services[i].health_check_node_port);
	}
	/* a given value taken by an earlier service: the model's message, the culprit's index */
	v[2].ports[0].node_port = 30001;
	v[2].ports[0].node_port_given = true;
	v[0].ports[0].node_port_given = true;
	assert_int_not_equal(services_allocate(v, 3, &m->cluster, true, &bad, &d), 0);
	assert_int_equal(bad, 2);
	assert_non_null(strstr(d.msg, "spec.ports[0].nodePort: 30001 is already taken by service "
				      "\"x/a\""));
	/* outside the serviceCIDR: checked only when asked */
	v[2].ports[0].node_port = 30005;
	v[1].cluster_ip = htonl(0x0a630001);
	assert_int_not_equal(services_allocate(v, 3, &m->cluster, true, &bad, &d), 0);
	assert_int_equal(bad, 1);
	assert_non_null(strstr(d.msg, "spec.clusterIP: 10.99.0.1 is outside the serviceCIDR "
				      "10.20.0.0/24"));
	assert_int_equal(services_allocate(v, 3, &m->cluster, false, &bad, &d), 0);
	for (i = 0; i < 3; i++)
		service_clear(&v[i]);
	cluster_model_free(m);
}

/* a re-applied service keeps the stored values it does not give; writes them into JSON */
static void test_keep_and_fill(void **state)
{
	static const char stored_y[] = CLUSTER
		"apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\n"
		"spec: {type: NodePort, clusterIP: 10.20.0.9, ports: [{name: h, port: 80, "
		"nodePort: 30444}, {name: u, port: 53, protocol: UDP, nodePort: 30445}]}\n";
	static const char new_y[] = CLUSTER
		"apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\n"
		"spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{name: h, "
		"port: 80}, {name: u, port: 53}]}\n";
	struct cluster_model *old, *m;
	struct m_service v;
	struct diag d;
	char *out;
	json_t *j;
	char a[16];

	(void)state;
	old = load_model(stored_y, &d);
	if (!old)
		fail_msg("%s", d.msg);
	m = load_model(new_y, &d);
	if (!m)
		fail_msg("%s", d.msg);
	assert_int_equal(service_copy(&v, &m->services[0]), 0);
	v.cluster_ip = 0;
	v.ports[0].node_port = v.ports[1].node_port = 0;
	v.health_check_node_port = 0;
	/* clusterIP and port 80/TCP kept; 53 is UDP there, TCP here: not the same port */
	assert_int_equal(service_keep_allocations(&v, &old->services[0]), 2);
	assert_true(v.cluster_ip_given);
	assert_string_equal(ip(v.cluster_ip, a), "10.20.0.9");
	assert_int_equal(v.ports[0].node_port, 30444);
	assert_false(v.ports[1].node_port_given);
	assert_int_equal(services_allocate(&v, 1, &m->cluster, true, NULL, &d), 0);
	assert_int_equal(v.ports[1].node_port, 30000);
	assert_int_equal(v.health_check_node_port, 30001);
	assert_int_equal(service_json_fill("{\"spec\":{\"type\":\"LoadBalancer\","
					   "\"clusterIP\":\"\",\"ports\":[{\"port\":80},"
					   "{\"port\":53,\"nodePort\":0}]}}",
					   &v, &out),
			 0);
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "spec"),
							      "clusterIP")),
			    "10.20.0.9");
	assert_int_equal(json_integer_value(json_object_get(
				 json_array_get(json_object_get(json_object_get(j, "spec"), "ports"),
						1),
				 "nodePort")),
			 30000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "spec"),
							    "healthCheckNodePort")),
			 30001);
	json_decref(j);
	free(out);
	service_clear(&v);
	cluster_model_free(old);
	cluster_model_free(m);
}

/* ---- the CLI ----------------------------------------------------------------------------- */

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

struct svc_vals {
	char cluster_ip[32];
	long node_port; /* ports[0]; 0: none */
	bool present;
};

static struct svc_vals stored(const char *uri, const char *ns_name)
{
	struct svc_vals r = {0};
	char key[512];
	struct store_kv kv;
	struct store *s;
	struct diag d;
	json_t *j, *spec;

	snprintf(key, sizeof(key), "/ciliate/objects/Service/%s", ns_name);
	assert_int_equal(store_open(uri, &s, &d), 0);
	if (!store_get(s, key, &kv, &d)) {
		r.present = true;
		j = json_loads(kv.value, 0, NULL);
		spec = json_object_get(j, "spec");
		snprintf(r.cluster_ip, sizeof(r.cluster_ip), "%s",
			 json_string_value(json_object_get(spec, "clusterIP")) ?: "");
		r.node_port = (long)json_integer_value(json_object_get(
			json_array_get(json_object_get(spec, "ports"), 0), "nodePort"));
		json_decref(j);
		store_kv_free(&kv);
	}
	store_close(s);
	return r;
}

/* ciliate VERB -f DIR/NAME --store URI, NAME written from yaml first when given */
static int cli_file(const char *dir, const char *uri, const char *verb, const char *name,
		    const char *yaml, char *out, size_t size)
{
	char path[512], args[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (yaml)
		write_text(path, yaml);
	snprintf(args, sizeof(args), "%s -f %s --store '%s'", verb, path, uri);
	return run_cli(args, out, size);
}

#define SVC(name, type, extra)                                                             \
	"apiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: x}\n"        \
	"spec: {type: " type ", ports: [{port: 80" extra "}]}\n"

static void test_cli_allocations_kept(void **state)
{
	char dir[] = "/tmp/ciliate-t-svcalloc-XXXXXX", uri[256], out[8192], path[512];
	struct svc_vals a, b, b2;

	(void)state;
	if (access(cli, X_OK))
		fail_msg("%s is missing (make first)", cli);
	/* the embedded store in dir itself, or etcd with /ciliate/ emptied */
	if (scratch_store_make(dir, uri, sizeof(uri), "fsync=0", "/ciliate/"))
		fail_msg("no scratch store");
	/* the scenario's Cluster is stored: its serviceCIDR is the one allocated from */
	if (cli_file(dir, uri, "apply", "cluster.yaml", CLUSTER, out, sizeof(out)))
		fail_msg("apply cluster: %s", out);
	if (cli_file(dir, uri, "apply", "ab.yaml", SVC("a", "NodePort", "") "---\n"
		     SVC("b", "NodePort", ""), out, sizeof(out)))
		fail_msg("apply a, b: %s", out);
	a = stored(uri, "x/a");
	b = stored(uri, "x/b");
	assert_string_equal(a.cluster_ip, "10.20.0.2");
	assert_int_equal(a.node_port, 30000);
	assert_string_equal(b.cluster_ip, "10.20.0.3");
	assert_int_equal(b.node_port, 30001);
	/* delete a: b keeps its values; re-applying b's manifest without them changes nothing */
	if (cli_file(dir, uri, "delete", "a.yaml", SVC("a", "NodePort", ""), out, sizeof(out)))
		fail_msg("delete a: %s", out);
	assert_false(stored(uri, "x/a").present);
	if (cli_file(dir, uri, "apply", "b.yaml", SVC("b", "NodePort", ""), out, sizeof(out)))
		fail_msg("re-apply b: %s", out);
	assert_non_null(strstr(out, "Service/x/b unchanged"));
	b2 = stored(uri, "x/b");
	assert_string_equal(b2.cluster_ip, "10.20.0.3");
	assert_int_equal(b2.node_port, 30001);
	/* a new service takes the freed numbers, never b's */
	if (cli_file(dir, uri, "apply", "d.yaml", SVC("d", "NodePort", ""), out, sizeof(out)))
		fail_msg("apply d: %s", out);
	assert_string_equal(stored(uri, "x/d").cluster_ip, "10.20.0.2");
	assert_int_equal(stored(uri, "x/d").node_port, 30000);
	/* c with b's nodePort: rejected, naming file, line, field and the document */
	assert_int_equal(cli_file(dir, uri, "apply", "c.yaml",
				  SVC("c", "NodePort", ", nodePort: 30001"), out, sizeof(out)),
			 1);
	snprintf(path, sizeof(path), "%s/c.yaml:4: spec.ports[0].nodePort: 30001 is already "
		 "taken by service \"x/b\" (Service/x/c of %s/c.yaml:1)", dir, dir);
	if (!strstr(out, path))
		fail_msg("want \"%s\" in: %s", path, out);
	assert_false(stored(uri, "x/c").present);
	/* e: ClusterIP, then NodePort: the clusterIP stays, a nodePort is allocated */
	if (cli_file(dir, uri, "apply", "e.yaml", SVC("e", "ClusterIP", ""), out, sizeof(out)))
		fail_msg("apply e: %s", out);
	assert_string_equal(stored(uri, "x/e").cluster_ip, "10.20.0.4");
	assert_int_equal(stored(uri, "x/e").node_port, 0);
	if (cli_file(dir, uri, "apply", "e.yaml", SVC("e", "NodePort", ""), out, sizeof(out)))
		fail_msg("apply e as NodePort: %s", out);
	assert_non_null(strstr(out, "Service/x/e configured"));
	assert_string_equal(stored(uri, "x/e").cluster_ip, "10.20.0.4");
	assert_int_equal(stored(uri, "x/e").node_port, 30002);
	/* a given clusterIP outside the stored Cluster's serviceCIDR is refused at apply */
	assert_int_equal(cli_file(dir, uri, "apply", "f.yaml",
				  "apiVersion: v1\nkind: Service\nmetadata: {name: f, namespace: x}\n"
				  "spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n",
				  out, sizeof(out)),
			 1);
	assert_non_null(strstr(out, "f.yaml:4: spec.clusterIP: 10.96.0.10 is outside the "
				    "serviceCIDR 10.20.0.0/24"));
	test_rm_dir(dir);
}

/* applies racing each other never commit the same number */
static void test_cli_concurrent_applies(void **state)
{
	enum { N = 8 };
	char dir[] = "/tmp/ciliate-t-svcalloc-XXXXXX", uri[256], path[512], args[1024], name[8];
	long seen[N];
	pid_t pids[N];
	int i, k, st;

	(void)state;
	if (scratch_store_make(dir, uri, sizeof(uri), "fsync=0", "/ciliate/"))
		fail_msg("no scratch store");
	for (i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%s/s%d.yaml", dir, i);
		snprintf(args, sizeof(args),
			 "apiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: x}\n"
			 "spec: {type: NodePort, ports: [{port: 80}]}\n", i);
		write_text(path, args);
	}
	for (i = 0; i < N; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (!pids[i]) {
			snprintf(path, sizeof(path), "%s/s%d.yaml", dir, i);
			if (!freopen("/dev/null", "w", stdout))
				_exit(126);
			execl(cli, cli, "apply", "-f", path, "--store", uri, (char *)NULL);
			_exit(127);
		}
	}
	for (i = 0; i < N; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "x/s%d", i);
		seen[i] = stored(uri, name).node_port;
		assert_in_range(seen[i], 30000, 30000 + N - 1);
		for (k = 0; k < i; k++)
			assert_int_not_equal(seen[i], seen[k]);
	}
	test_rm_dir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocate_same_as_model),
		cmocka_unit_test(test_keep_and_fill),
		cmocka_unit_test(test_cli_allocations_kept),
		cmocka_unit_test(test_cli_concurrent_applies),
	};
	char self[4096];

	(void)argc;
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(cli, sizeof(cli), "%s/../bin/ciliate", dirname(self));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
