/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What `ciliate apply` needs to keep Service allocations in the store, as the API server
 * does (docs/SERVICES.md "Allocations"): a re-applied Service keeps the stored object's
 * clusterIP, nodePorts and healthCheckNodePort it does not give, and the values allocated
 * for it (services_allocate, the model's allocator) are written into the object stored.
 */
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ipaddr.h"

/* A nodePort svc already gives on another port (a kept value must not double it). */
static bool port_given_elsewhere(const struct m_service *svc, size_t j, uint16_t port)
{
	size_t k;

	for (k = 0; k < svc->nports; k++)
		if (k != j && svc->ports[k].node_port_given && svc->ports[k].node_port == port)
			return true;
	return svc->health_check_given && svc->health_check_node_port == port;
}

static const struct m_service_port *stored_port(const struct m_service *stored,
						const struct m_service_port *sp)
{
	size_t k;

	for (k = 0; k < stored->nports; k++)
		if (stored->ports[k].port == sp->port && stored->ports[k].proto == sp->proto)
			return &stored->ports[k];
	return NULL;
}

int service_keep_allocations(struct m_service *svc, const struct m_service *stored)
{
	const struct m_service_port *old;
	int kept = 0;
	size_t j;

	if (!svc->headless && !svc->cluster_ip_given && !stored->headless &&
	    stored->cluster_ip_given) {
		svc->cluster_ip = stored->cluster_ip;
		svc->cluster_ip_given = true;
		svc->cluster_ip_line = svc->line;
		kept++;
	}
	if (service_needs_node_ports(svc) && service_needs_node_ports(stored)) {
		for (j = 0; j < svc->nports; j++) {
			struct m_service_port *sp = &svc->ports[j];

			if (sp->node_port_given)
				continue;
			old = stored_port(stored, sp);
			if (!old || !old->node_port_given ||
			    port_given_elsewhere(svc, j, old->node_port))
				continue;
			sp->node_port = old->node_port;
			sp->node_port_given = true;
			sp->node_port_line = svc->line;
			kept++;
		}
	}
	if (service_needs_health_check(svc) && !svc->health_check_given &&
	    service_needs_health_check(stored) && stored->health_check_given &&
	    !port_given_elsewhere(svc, svc->nports, stored->health_check_node_port)) {
		svc->health_check_node_port = stored->health_check_node_port;
		svc->health_check_given = true;
		svc->health_check_line = svc->line;
		kept++;
	}
	return kept;
}

/* True if the object's field is absent, null, "" or 0 (the API server's "not given"). */
static bool unset(const json_t *v)
{
	return !v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)) ||
	       (json_is_integer(v) && !json_integer_value(v));
}

int service_json_fill(const char *json, const struct m_service *svc, char **out)
{
	json_t *j = json_loads(json, 0, NULL), *spec, *ports, *p;
	char a[IP4_STR_MAX];
	size_t k;
	int err = 0;

	*out = NULL;
	if (!j)
		return -EINVAL;
	spec = json_object_get(j, "spec");
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(j, "spec", spec);
	}
	if (!svc->headless && svc->cluster_ip && unset(json_object_get(spec, "clusterIP")))
		json_object_set_new(spec, "clusterIP", json_string(ip4_format(svc->cluster_ip, a)));
	ports = json_object_get(spec, "ports");
	for (k = 0; service_needs_node_ports(svc) && k < svc->nports; k++) {
		p = json_array_get(ports, k);
		if (json_is_object(p) && svc->ports[k].node_port &&
		    unset(json_object_get(p, "nodePort")))
			json_object_set_new(p, "nodePort", json_integer(svc->ports[k].node_port));
	}
	if (service_needs_health_check(svc) && svc->health_check_node_port &&
	    unset(json_object_get(spec, "healthCheckNodePort")))
		json_object_set_new(spec, "healthCheckNodePort",
				    json_integer(svc->health_check_node_port));
	*out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!*out)
		err = -ENOMEM;
	json_decref(j);
	return err;
}
