/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The health-check NodePort of services with externalTrafficPolicy Local (docs/SERVICES.md,
 * "Health-check NodePort"): which services a node serves one for, how many local endpoints
 * each has there, and the answer, in kube-proxy's shape (REFERENCE.md section 4). Pure: the
 * agent's listeners (datapath/agent/healthcheck.c) serve what these compute.
 */
#ifndef CILIATE_LB_HEALTH_CHECK_H
#define CILIATE_LB_HEALTH_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "model/cluster_model.h"

/* Room for the body with the longest namespace and name, and for the extra headers. */
#define HEALTH_CHECK_BODY_MAX	 1280
#define HEALTH_CHECK_HEADERS_MAX 128

/* Whether the cluster serves health-check NodePorts at all: enable-health-check-nodeport
 * and kube-proxy-replacement (without it kube-proxy serves them). */
bool health_check_enabled(const struct cluster_model *m);

/* Whether svc has a health-check NodePort: externalTrafficPolicy Local, a
 * healthCheckNodePort (the model gives LoadBalancer ones one), type NodePort or
 * LoadBalancer. */
bool health_check_wanted(const struct m_service *svc);

/* The service's local endpoints on node, as kube-proxy counts them: the distinct
 * address:port pairs, over every port of the service, of its EndpointSlice endpoints that
 * are ready and not terminating and are on node (nodeName, else the node of the pod with
 * the address). */
unsigned int health_check_local_endpoints(const struct cluster_model *m,
					  const struct m_service *svc, const char *node);

/* The answer: the status (200 when local > 0 and healthy, else 503), the body
 * {"service": {"namespace": "NS","name": "NAME"},"localEndpoints": N,"serviceProxyHealthy": B}
 * into body (its length returned; names JSON-escaped), and the header lines besides
 * Content-Type (application/json), each ending "\r\n", into headers:
 * X-Content-Type-Options: nosniff and X-Load-Balancing-Endpoint-Weight: N. */
size_t health_check_render(const char *ns, const char *name, unsigned int local, bool healthy,
			   int *status, char body[HEALTH_CHECK_BODY_MAX],
			   char headers[HEALTH_CHECK_HEADERS_MAX]);

#endif
