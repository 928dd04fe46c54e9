/* SPDX-License-Identifier: Apache-2.0 */
/* The state file /run/ciliate/sim/<tag>.json: what `up` created (namespaces, devices,
 * processes, pinned paths), written before each creation phase so `down` can undo exactly
 * that after a crash. */
#include "sim.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/ipaddr.h"

#define STATE_VERSION 1

static const char *const kind_names[] = { "node", "ext", "pod" };

void sim_state_path(const char *tag, char *buf, size_t size)
{
	snprintf(buf, size, SIM_STATE_DIR "/%s.json", tag);
}

void sim_run_dir(const char *tag, char *buf, size_t size)
{
	snprintf(buf, size, SIM_STATE_DIR "/%s", tag);
}

static json_t *proc_json(const struct sim_proc *p, bool live)
{
	json_t *o = json_pack("{s:i,s:I}", "pid", (int)p->pid, "start", (json_int_t)p->start);

	if (o && live)
		json_object_set_new(o, "alive", json_boolean(proc_alive(p->pid, p->start)));
	return o;
}

static json_t *host_json(const struct sim_host *h, bool live)
{
	char ip[IP4_STR_MAX], cidr[CIDR4_STR_MAX];
	json_t *o, *ports;
	size_t i;

	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:b}", "kind", kind_names[h->kind], "name",
		      h->name, "netns", h->netns, "ip", ip4_format(h->ip, ip), "if", h->ifname,
		      "host_network", h->host_network, "own_netns", h->own_netns);
	if (!o)
		return NULL;
	if (h->kind == SIM_POD)
		json_object_set_new(o, "node", json_string(h->node));
	if (h->kind == SIM_NODE)
		json_object_set_new(o, "pod_cidr",
				    json_string(cidr4_format(h->pod_cidr, h->pod_cidr_len, cidr)));
	ports = json_array();
	for (i = 0; i < h->nports; i++)
		json_array_append_new(ports, json_integer(h->ports[i]));
	json_object_set_new(o, "ports", ports);
	if (h->echo.pid)
		json_object_set_new(o, "echo", proc_json(&h->echo, live));
	if (h->agent.pid)
		json_object_set_new(o, "agent", proc_json(&h->agent, live));
	if (live && h->own_netns)
		json_object_set_new(o, "netns_present", json_boolean(netns_exists(h->netns)));
	return o;
}

static json_t *state_json(const struct sim_cluster *c, bool live)
{
	char cidr[CIDR4_STR_MAX];
	json_t *o, *hosts, *pins;
	size_t i;

	o = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:b,s:I}", "version", STATE_VERSION,
		      "tag", c->tag, "cluster", c->name, "scenario", c->scenario, "phase",
		      c->phase, "routing", c->tunnel ? "tunnel" : "native", "underlay",
		      cidr4_format(c->underlay, c->underlay_len, cidr), "fabric", c->fabric, "mtu",
		      (int)c->mtu, "datapath", c->datapath, "up_ms", (json_int_t)c->up_ms);
	if (!o)
		return NULL;
	json_object_set_new(o, "keep", json_boolean(c->keep));
	json_object_set_new(o, "store", json_string(c->store_uri[0] ? c->store_uri : "embedded"));
	if (c->operator_proc.pid)
		json_object_set_new(o, "operator", proc_json(&c->operator_proc, live));
	json_object_set_new(o, "owner", proc_json(&c->owner, false));
	hosts = json_array();
	for (i = 0; i < c->nhosts; i++)
		json_array_append_new(hosts, host_json(&c->hosts[i], live));
	json_object_set_new(o, "hosts", hosts);
	pins = json_array();
	for (i = 0; i < c->npins; i++)
		json_array_append_new(pins, json_string(c->pins[i]));
	json_object_set_new(o, "pins", pins);
	if (live)
		json_object_set_new(o, "fabric_present", json_boolean(netns_exists(c->fabric)));
	return o;
}

char *sim_state_dump(const struct sim_cluster *c, bool live)
{
	json_t *o = state_json(c, live);
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

int sim_state_save(const struct sim_cluster *c, struct diag *d)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	json_t *o;
	int err = 0;

	if (mkdir("/run/ciliate", 0755) < 0 && errno != EEXIST)
		return diag_fail_errno(d, -errno, "mkdir /run/ciliate: %s", strerror(errno));
	if (mkdir(SIM_STATE_DIR, 0755) < 0 && errno != EEXIST)
		return diag_fail_errno(d, -errno, "mkdir " SIM_STATE_DIR ": %s", strerror(errno));
	sim_state_path(c->tag, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	o = state_json(c, false);
	if (!o)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	if (json_dump_file(o, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0) {
		err = diag_fail_errno(d, -EIO, "cannot write %s", tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		err = diag_fail_errno(d, -errno, "rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
	}
out:
	json_decref(o);
	return err;
}

static void get_str(json_t *o, const char *key, char *buf, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));

	snprintf(buf, size, "%s", v ? v : "");
}

static void get_proc(json_t *o, const char *key, struct sim_proc *p)
{
	json_t *v = json_object_get(o, key);

	p->pid = (pid_t)json_integer_value(json_object_get(v, "pid"));
	p->start = (unsigned long long)json_integer_value(json_object_get(v, "start"));
}

static void get_ip(json_t *o, const char *key, uint32_t *ip)
{
	const char *v = json_string_value(json_object_get(o, key));

	if (!v || ip4_parse(v, ip))
		*ip = 0;
}

static void load_host(json_t *o, struct sim_host *h)
{
	char kind[16], cidr[CIDR4_STR_MAX];
	json_t *ports, *v;
	size_t i;

	get_str(o, "kind", kind, sizeof(kind));
	h->kind = !strcmp(kind, "node") ? SIM_NODE : !strcmp(kind, "ext") ? SIM_EXT : SIM_POD;
	get_str(o, "name", h->name, sizeof(h->name));
	get_str(o, "netns", h->netns, sizeof(h->netns));
	get_str(o, "node", h->node, sizeof(h->node));
	get_str(o, "if", h->ifname, sizeof(h->ifname));
	get_ip(o, "ip", &h->ip);
	get_str(o, "pod_cidr", cidr, sizeof(cidr));
	if (cidr[0])
		cidr4_parse(cidr, false, &h->pod_cidr, &h->pod_cidr_len);
	h->host_network = json_is_true(json_object_get(o, "host_network"));
	h->own_netns = json_is_true(json_object_get(o, "own_netns"));
	ports = json_object_get(o, "ports");
	json_array_foreach(ports, i, v)
		if (h->nports < SIM_MAX_PORTS)
			h->ports[h->nports++] = (uint16_t)json_integer_value(v);
	get_proc(o, "echo", &h->echo);
	get_proc(o, "agent", &h->agent);
}

int sim_state_load(const char *tag, struct sim_cluster *c, struct diag *d)
{
	char path[PATH_MAX], cidr[CIDR4_STR_MAX];
	json_error_t jerr;
	json_t *o, *hosts, *pins, *v;
	size_t i;
	int err = 0;

	memset(c, 0, sizeof(*c));
	sim_state_path(tag, path, sizeof(path));
	if (access(path, F_OK) < 0)
		return diag_fail_errno(d, -ENOENT, "no state file %s", path);
	o = json_load_file(path, 0, &jerr);
	if (!o)
		return diag_fail_errno(d, -EINVAL, "%s:%d: %s", path, jerr.line, jerr.text);
	snprintf(c->tag, sizeof(c->tag), "%s", tag);
	get_str(o, "cluster", c->name, sizeof(c->name));
	get_str(o, "scenario", c->scenario, sizeof(c->scenario));
	get_str(o, "phase", c->phase, sizeof(c->phase));
	get_str(o, "fabric", c->fabric, sizeof(c->fabric));
	get_str(o, "underlay", cidr, sizeof(cidr));
	cidr4_parse(cidr, false, &c->underlay, &c->underlay_len);
	v = json_object_get(o, "routing");
	c->tunnel = json_is_string(v) && !strcmp(json_string_value(v), "tunnel");
	c->mtu = (unsigned int)json_integer_value(json_object_get(o, "mtu"));
	c->datapath = json_is_true(json_object_get(o, "datapath"));
	c->keep = json_is_true(json_object_get(o, "keep"));
	c->up_ms = json_integer_value(json_object_get(o, "up_ms"));
	get_proc(o, "owner", &c->owner);
	get_proc(o, "operator", &c->operator_proc);
	v = json_object_get(o, "store");
	if (json_is_string(v) && strcmp(json_string_value(v), "embedded"))
		snprintf(c->store_uri, sizeof(c->store_uri), "%s", json_string_value(v));
	hosts = json_object_get(o, "hosts");
	c->hosts = calloc(json_array_size(hosts) + 1, sizeof(*c->hosts));
	pins = json_object_get(o, "pins");
	c->pins = calloc(json_array_size(pins) + 1, sizeof(*c->pins));
	if (!c->hosts || !c->pins) {
		err = diag_fail_errno(d, -ENOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(hosts, i, v)
		load_host(v, &c->hosts[c->nhosts++]);
	json_array_foreach(pins, i, v)
		if (json_is_string(v))
			c->pins[c->npins++] = strdup(json_string_value(v));
out:
	json_decref(o);
	if (err)
		sim_cluster_free(c);
	return err;
}

int sim_state_tags(char ***tags, size_t *n)
{
	size_t cnt = 0, cap = 0, len;
	char **v = NULL, **nv;
	struct dirent *e;
	DIR *dir;
	int err = 0;

	*tags = NULL;
	*n = 0;
	dir = opendir(SIM_STATE_DIR);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(dir))) {
		len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".json") || len - 5 > SIM_TAG_MAX)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				err = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[cnt] = strndup(e->d_name, len - 5);
		if (!v[cnt]) {
			err = -ENOMEM;
			goto out;
		}
		cnt++;
	}
out:
	closedir(dir);
	if (err) {
		strv_free(v, cnt);
		return err;
	}
	*tags = v;
	*n = cnt;
	return 0;
}
