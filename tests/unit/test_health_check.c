/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The health-check NodePort's numbers and answer (datapath/lb/health_check.c;
 * docs/SERVICES.md, "Health-check NodePort"): which services have one, when the cluster
 * serves them, the local endpoint count as kube-proxy counts it, and the answer byte for
 * byte (kube-proxy's body and headers, 200/503). The agent's listeners are tested under the
 * simulator (tests/healthcheck/run-suite.sh).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/health_check.h"
#include "model/model.h"
#include "model/parse.h"

#define CLUSTER_HEAD                                                             \
	"apiVersion: sim.ciliate.dev/v1\nkind: Cluster\nmetadata: {name: t}\nspec:\n" \
	"  nodes: [{name: node-1}, {name: node-2}]\n"

/* web: LoadBalancer, ETP Local, selector app=web (derived slice: w1 on node-1, w2 and w3 on
 * node-2); plain: LoadBalancer, ETP Cluster; np: NodePort, ETP Local; manual: LoadBalancer,
 * ETP Local, given slices with every condition and two ports. */
static const char workloads[] =
	"---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: w1, namespace: shop, labels: {app: web}}\n"
	"spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 8080}]}]}\n"
	"status: {podIP: 10.244.0.10}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: w2, namespace: shop, labels: {app: web}}\n"
	"spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 8080}]}]}\n"
	"status: {podIP: 10.244.1.10}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: w3, namespace: shop, labels: {app: web}}\n"
	"spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 8080}]}]}\n"
	"status: {podIP: 10.244.1.11}\n"
	"---\napiVersion: v1\nkind: Pod\nmetadata: {name: m1, namespace: shop}\n"
	"spec: {nodeName: node-1, containers: [{name: c}]}\nstatus: {podIP: 10.244.0.20}\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
	"spec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: 31000\n"
	"  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: plain, namespace: shop}\n"
	"spec:\n  type: LoadBalancer\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: np, namespace: shop}\n"
	"spec:\n  type: NodePort\n  externalTrafficPolicy: Local\n  selector: {app: web}\n"
	"  ports: [{port: 80, targetPort: 8080}]\n"
	"---\napiVersion: v1\nkind: Service\nmetadata: {name: manual, namespace: shop}\n"
	"spec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n"
	"  ports: [{name: http, port: 80}, {name: metrics, port: 9090}]\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: manual-1, namespace: shop, labels: {kubernetes.io/service-name: manual}}\n"
	"addressType: IPv4\n"
	"ports: [{name: http, port: 8080, protocol: TCP}, {name: metrics, port: 9090}]\n"
	"endpoints:\n"
	/* counted on node-1: ready; two ports, so two address:port pairs (as kube-proxy) */
	"- {addresses: [10.244.0.30], conditions: {ready: true}, nodeName: node-1}\n"
	/* conditions unset: ready */
	"- {addresses: [10.244.0.31], nodeName: node-1}\n"
	/* not counted: ready but terminating, not ready, another node */
	"- {addresses: [10.244.0.32], conditions: {ready: true, terminating: true}, nodeName: node-1}\n"
	"- {addresses: [10.244.0.33], conditions: {ready: false, serving: true}, nodeName: node-1}\n"
	"- {addresses: [10.244.1.30], conditions: {ready: true}, nodeName: node-2}\n"
	/* no nodeName: the node of pod m1, which has the address */
	"- {addresses: [10.244.0.20]}\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: manual-2, namespace: shop, labels: {kubernetes.io/service-name: manual}}\n"
	"addressType: IPv4\n"
	/* the same endpoint again in a second slice: one pair; a port of no service port: none */
	"ports: [{name: http, port: 8080, protocol: TCP}]\n"
	"endpoints:\n- {addresses: [10.244.0.30], nodeName: node-1}\n"
	"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	"metadata: {name: manual-3, namespace: shop, labels: {kubernetes.io/service-name: manual}}\n"
	"addressType: IPv4\nports: [{name: admin, port: 7000, protocol: TCP}]\n"
	"endpoints:\n- {addresses: [10.244.0.40], nodeName: node-1}\n";

static struct scenario *load(const char *config)
{
	struct scenario *s = NULL;
	struct diag d = { { 0 } };
	char *text;

	assert_true(asprintf(&text, "%s%s%s", CLUSTER_HEAD, config, workloads) > 0);
	if (scenario_load_buffer("inline.yaml", text, strlen(text), &s, &d)) {
		print_error("scenario_load_buffer: %s\n", d.msg);
		fail();
	}
	free(text);
	return s;
}

static const struct m_service *svc(const struct cluster_model *m, const char *name)
{
	const struct m_service *v = cluster_find_service(m, name);

	assert_non_null(v);
	return v;
}

static void test_which_services(void **state)
{
	struct scenario *s = load("");
	const struct cluster_model *m = &s->model;

	(void)state;
	assert_true(health_check_enabled(m)); /* the default, as Cilium */
	assert_true(health_check_wanted(svc(m, "shop/web")));
	assert_int_equal(svc(m, "shop/web")->health_check_node_port, 31000);
	/* allocated, as the API server does, in the NodePort range, apart from the nodePorts */
	assert_true(health_check_wanted(svc(m, "shop/manual")));
	assert_in_range(svc(m, "shop/manual")->health_check_node_port, 30000, 32767);
	for (size_t i = 0; i < m->nservices; i++)
		for (size_t j = 0; j < m->services[i].nports; j++)
			assert_int_not_equal(m->services[i].ports[j].node_port,
					     svc(m, "shop/manual")->health_check_node_port);
	assert_false(health_check_wanted(svc(m, "shop/plain"))); /* ETP Cluster */
	assert_false(health_check_wanted(svc(m, "shop/np")));	  /* no port: NodePort */
	scenario_free(s);
}

static void test_switches(void **state)
{
	struct scenario *s;

	(void)state;
	s = load("  config: {enable-health-check-nodeport: \"false\"}\n");
	assert_false(health_check_enabled(&s->model));
	scenario_free(s);
	s = load("  config: {kube-proxy-replacement: \"false\"}\n");
	assert_false(health_check_enabled(&s->model));
	scenario_free(s);
	assert_false(health_check_enabled(NULL));
}

static void test_local_endpoints(void **state)
{
	struct scenario *s = load("");
	const struct cluster_model *m = &s->model;

	(void)state;
	assert_int_equal(health_check_local_endpoints(m, svc(m, "shop/web"), "node-1"), 1);
	assert_int_equal(health_check_local_endpoints(m, svc(m, "shop/web"), "node-2"), 2);
	assert_int_equal(health_check_local_endpoints(m, svc(m, "shop/web"), "node-3"), 0);
	/* node-1: .30 and .31 on two ports each (4 pairs), m1's .20 on two (2); .30 in
	 * manual-2 again adds nothing; .32 terminating, .33 not ready, .40 on no service port */
	assert_int_equal(health_check_local_endpoints(m, svc(m, "shop/manual"), "node-1"), 6);
	assert_int_equal(health_check_local_endpoints(m, svc(m, "shop/manual"), "node-2"), 2);
	scenario_free(s);
}

static void test_render(void **state)
{
	char body[HEALTH_CHECK_BODY_MAX], headers[HEALTH_CHECK_HEADERS_MAX];
	int status = 0;
	size_t n;

	(void)state;
	/* kube-proxy's text: its spacing, no trailing newline */
	n = health_check_render("shop", "web-lb", 1, true, &status, body, headers);
	assert_int_equal(status, 200);
	assert_string_equal(body, "{\"service\": {\"namespace\": \"shop\",\"name\": \"web-lb\"},"
				  "\"localEndpoints\": 1,\"serviceProxyHealthy\": true}");
	assert_int_equal(n, strlen(body));
	assert_string_equal(headers, "X-Content-Type-Options: nosniff\r\n"
				     "X-Load-Balancing-Endpoint-Weight: 1\r\n");

	n = health_check_render("shop", "web-lb", 0, true, &status, body, headers);
	assert_int_equal(status, 503);
	assert_string_equal(body, "{\"service\": {\"namespace\": \"shop\",\"name\": \"web-lb\"},"
				  "\"localEndpoints\": 0,\"serviceProxyHealthy\": true}");
	assert_int_equal(n, strlen(body));
	assert_string_equal(headers, "X-Content-Type-Options: nosniff\r\n"
				     "X-Load-Balancing-Endpoint-Weight: 0\r\n");

	/* endpoints, but the maps have not followed the store for a while: 503 */
	health_check_render("a", "b", 12, false, &status, body, headers);
	assert_int_equal(status, 503);
	assert_string_equal(body, "{\"service\": {\"namespace\": \"a\",\"name\": \"b\"},"
				  "\"localEndpoints\": 12,\"serviceProxyHealthy\": false}");
	assert_string_equal(headers, "X-Content-Type-Options: nosniff\r\n"
				     "X-Load-Balancing-Endpoint-Weight: 12\r\n");

	/* names are JSON-escaped (the model only lets DNS names through; still valid JSON) */
	health_check_render("n\"s", "a\\b\n", 2, true, &status, body, headers);
	assert_string_equal(body, "{\"service\": {\"namespace\": \"n\\\"s\",\"name\": "
				  "\"a\\\\b\\u000a\"},\"localEndpoints\": 2,"
				  "\"serviceProxyHealthy\": true}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which_services),
		cmocka_unit_test(test_switches),
		cmocka_unit_test(test_local_endpoints),
		cmocka_unit_test(test_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
