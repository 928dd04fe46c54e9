/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of ciliate-cni's pure parts (datapath/cni/cni_util.c) and the naming
 * conventions shared with the agent and the simulator (datapath/agent/api_client.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "agent/api.h"
#include "cni/cni.h"

static int netconf(const char *text, struct cni_error *e)
{
	struct cni_netconf nc;
	int rc;

	memset(e, 0, sizeof(*e));
	rc = cni_netconf_parse(text, strlen(text), &nc, e);
	cni_netconf_free(&nc);
	return rc;
}

static void test_args(void **state)
{
	struct cni_args a;
	struct cni_error e;

	assert_int_equal(cni_args_parse(NULL, &a, &e), 0);
	assert_int_equal(cni_args_parse("K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;IP=10.244.0.7;"
					"K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u",
					&a, &e),
			 0);
	assert_string_equal(a.pod_ns, "shop");
	assert_string_equal(a.pod_name, "web-1");
	assert_int_equal(a.ip, inet_addr("10.244.0.7"));
	/* unknown keys: an error unless IgnoreUnknown (wherever it appears) */
	assert_int_equal(cni_args_parse("FOO=1;K8S_POD_NAME=x", &a, &e), -1);
	assert_int_equal(e.code, CNI_ERR_INVALID_ENV);
	assert_non_null(strstr(e.msg, "FOO"));
	assert_int_equal(cni_args_parse("FOO=1;IgnoreUnknown=1", &a, &e), 0);
	assert_int_equal(cni_args_parse("IgnoreUnknown=true;FOO=1", &a, &e), 0);
	assert_int_equal(cni_args_parse("IP=10.0.0", &a, &e), -1);
	assert_int_equal(cni_args_parse("K8S_POD_NAME=a/b", &a, &e), -1);
	assert_int_equal(cni_args_parse("novalue", &a, &e), -1);
}

static void test_versions(void **state)
{
	assert_true(cni_version_supported("1.1.0"));
	assert_true(cni_version_supported("0.3.1"));
	assert_false(cni_version_supported("0.2.0"));
	assert_false(cni_version_supported("1.2.0"));
	assert_false(cni_version_supported(NULL));
	assert_true(cni_version_cmp("0.4.0", "1.0.0") < 0);
	assert_true(cni_version_cmp("1.1.0", "1.0.0") > 0);
	assert_int_equal(cni_version_cmp("1.1.0", "1.1.0"), 0);
}

static void test_netconf(void **state)
{
	struct cni_error e;

	assert_int_equal(
		netconf("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"ciliate-cni\","
			"\"agentSocket\":\"/run/ciliate/n1/agent.sock\"}",
			&e),
		0);
	assert_int_equal(netconf("{\"cniVersion\":", &e), -1);
	assert_int_equal(e.code, CNI_ERR_DECODE);
	assert_int_equal(netconf("[]", &e), -1);
	assert_int_equal(e.code, CNI_ERR_DECODE);
	assert_int_equal(netconf("{\"cniVersion\":\"2.0.0\",\"name\":\"n\",\"type\":\"t\"}", &e),
			 -1);
	assert_int_equal(e.code, CNI_ERR_INCOMPATIBLE_VERSION);
	assert_int_equal(netconf("{\"cniVersion\":\"1.0.0\",\"type\":\"t\"}", &e), -1);
	assert_int_equal(e.code, CNI_ERR_INVALID_NETCONF);
	assert_int_equal(netconf("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\","
				 "\"agentSocket\":\"/s\",\"ipam\":{\"type\":\"host-local\"}}",
				 &e),
			 -1);
	assert_int_equal(e.code, CNI_ERR_UNSUPPORTED_FIELD);
	unsetenv("CILIATE_AGENT_SOCKET");
	assert_int_equal(netconf("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\"}", &e),
			 -1);
	assert_int_equal(e.code, CNI_ERR_INVALID_NETCONF);
	setenv("CILIATE_AGENT_SOCKET", "/run/ciliate/x/agent.sock", 1);
	assert_int_equal(netconf("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"t\"}", &e),
			 0);
	unsetenv("CILIATE_AGENT_SOCKET");
}

static void test_names(void **state)
{
	char a[16], b[16], mac[24];

	assert_true(cni_container_id_valid("abc-123_x.y"));
	assert_false(cni_container_id_valid(""));
	assert_false(cni_container_id_valid("a/b"));
	assert_false(cni_container_id_valid("a b"));
	assert_true(cni_ifname_valid("eth0"));
	assert_false(cni_ifname_valid("0123456789abcdef"));
	assert_false(cni_ifname_valid(".."));
	assert_false(cni_ifname_valid("a/b"));
	/* the host veth name: lxc + 8 hex digits, stable, distinct per pod */
	agent_lxc_ifname("shop/web-1", a, sizeof(a));
	agent_lxc_ifname("shop/web-1", b, sizeof(b));
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), 11);
	assert_memory_equal(a, "lxc", 3);
	agent_lxc_ifname("shop/web-2", b, sizeof(b));
	assert_string_not_equal(a, b);
	agent_lxc_ifname("", a, sizeof(a));
	assert_string_equal(a, "lxc811c9dc5"); /* FNV-1a offset basis */
	agent_mac_format(AGENT_POD_MAC_PREFIX, inet_addr("10.244.1.7"), mac, sizeof(mac));
	assert_string_equal(mac, "0a:58:0a:f4:01:07");
	agent_mac_format(AGENT_HOST_MAC_PREFIX, inet_addr("10.244.1.7"), mac, sizeof(mac));
	assert_string_equal(mac, "0e:58:0a:f4:01:07");
}

static void test_results(void **state)
{
	struct cni_error e = {.code = 3, .msg = "gone", .details = "d"};
	json_t *j = cni_result_json("1.1.0", "lxc00000001", "eth0", "/run/netns/x",
				    inet_addr("10.244.0.10"));
	char *s = json_dumps(j, JSON_COMPACT);

	assert_non_null(strstr(s, "\"cniVersion\":\"1.1.0\""));
	assert_non_null(strstr(s, "\"address\":\"10.244.0.10/32\""));
	assert_non_null(strstr(s, "\"interface\":1"));
	assert_non_null(strstr(s, "\"sandbox\":\"/run/netns/x\""));
	assert_null(strstr(s, "\"version\""));
	free(s);
	json_decref(j);
	j = cni_result_json("0.3.1", "lxc00000001", "eth0", "/run/netns/x", inet_addr("10.0.0.1"));
	s = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(s, "\"version\":\"4\""));
	free(s);
	json_decref(j);
	j = cni_error_json("0.4.0", &e);
	s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "{\"cniVersion\":\"0.4.0\",\"code\":3,\"msg\":\"gone\","
			       "\"details\":\"d\"}");
	free(s);
	json_decref(j);
	j = cni_error_json("bogus", &e);
	assert_string_equal(json_string_value(json_object_get(j, "cniVersion")), "1.1.0");
	json_decref(j);
	j = cni_version_json(NULL);
	assert_int_equal(json_array_size(json_object_get(j, "supportedVersions")), 5);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_args),	cmocka_unit_test(test_versions),
		cmocka_unit_test(test_netconf), cmocka_unit_test(test_names),
		cmocka_unit_test(test_results),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
