/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Faults and streams of a Test step (docs/SIMULATOR.md):
 *   restart-agent NODE  SIGKILL the node's ciliate-agent (by its pid) and start it again on
 *                       the same pins, store and socket; waits until it answers
 *   link-down NODE      the fabric side of the node's underlay link goes down (the node's
 *                       eth0 loses carrier; its addresses and routes stay, as on a real
 *                       unplugged node)
 *   link-up NODE        and comes back; done once the nodes answer each other's ICMP
 *                       echo over the underlay again
 *   rekey-agent NODE    restart-agent after deleting the node's WireGuard private key
 *                       (<state dir>/wireguard/private.key): the agent makes a new one, sets
 *                       it on the running device and publishes it (docs/ENCRYPTION.md)
 *   withdraw-key NODE   SIGKILL the node's agent (not started again: restart-agent does) and
 *                       delete its published WireGuard key from the store, as when a node's
 *                       agent is gone; the other nodes drop the peer, and in strict mode pod
 *                       traffic to that node is dropped (UNENCRYPTED_TRAFFIC)
 * A stream is one ciliate-probe --stream: a TCP connection opened before the step's
 * changes and faults, exchanging a request every 20 ms until the step's probes are done.
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <netinet/in.h>
#include <limits.h>

#include "store/store.h"

#define STREAM_OPEN_MS 3000    /* the first answer must come within this */
#define STREAM_MAX_MS 300000   /* a stream never outlives this, whatever happens */
#define STREAM_STOP_MS 3000    /* time to report after SIGUSR1 */

/* SIGKILL of the node's agent, by its pid, if it still runs. */
static void kill_agent(struct sim_host *node)
{
	if (proc_alive(node->agent.pid, node->agent.start)) {
		kill(node->agent.pid, SIGKILL);
		waitpid(node->agent.pid, NULL, 0);
	}
}

static int restart_agent(struct sim_cluster *c, struct sim_host *node, struct diag *d)
{
	bool attached;
	int err;

	if (!c->datapath || !node->agent.pid)
		return diag_fail(d, "restart-agent %s: no agent runs there (--no-datapath?)",
				 node->name);
	kill_agent(node);
	node->agent_stopped = false;
	err = sim_attach_datapath(c, node, &attached, d);
	if (!err)
		err = sim_state_save(c, d);
	if (!err)
		err = sim_datapath_wait(c, d);
	if (!err)
		err = sim_datapath_settle(c, d);
	return err;
}

/* The node's WireGuard state in its agent's state dir (the agent's --instance is the node's
 * netns name, sim/runner/datapath.c). */
static void wg_key_path(const struct sim_host *node, char *buf, size_t size)
{
	snprintf(buf, size, "/run/ciliate/%s/wireguard/private.key", node->netns);
}

static int rekey_agent(struct sim_cluster *c, struct sim_host *node, struct diag *d)
{
	char path[PATH_MAX];

	wg_key_path(node, path, sizeof(path));
	if (unlink(path) && errno != ENOENT)
		return diag_fail_errno(d, -errno, "rekey-agent %s: %s: %s", node->name, path,
				       strerror(errno));
	return restart_agent(c, node, d);
}

static int withdraw_key(struct sim_cluster *c, struct sim_host *node, struct diag *d)
{
	char store[PATH_MAX], key[400];
	struct store *s;
	int err;

	if (!c->datapath || !node->agent.pid)
		return diag_fail(d, "withdraw-key %s: no agent runs there (--no-datapath?)",
				 node->name);
	kill_agent(node);
	node->agent_stopped = true;
	sim_store_uri(c, store, sizeof(store));
	err = store_open(store, &s, d);
	if (err)
		return err;
	snprintf(key, sizeof(key), "/ciliate/encryption/wireguard/%s", node->name);
	err = store_delete(s, key, STORE_ANY_REV, NULL, d);
	store_close(s);
	if (err == -ENOENT)
		return diag_fail(d, "withdraw-key %s: the node published no WireGuard key (is "
				 "encryption: wireguard on?)", node->name);
	if (err)
		return err;
	/* the other agents have dropped the peer once they reconciled the deletion */
	return sim_datapath_settle(c, d);
}

#define LINK_UP_WAIT_MS 5000

/* After link-up, until every other node and this one answer each other's ICMP echo over
 * the underlay (which also retries neighbour entries that failed while it was down). */
static int wait_underlay(struct sim_cluster *c, const struct sim_host *node, struct diag *d)
{
	long long deadline = sim_now_ms() + LINK_UP_WAIT_MS;
	struct sim_probe_job *jobs;
	size_t i, n = 0, ok;
	int err = 0;

	jobs = calloc(2 * c->nhosts + 1, sizeof(*jobs));
	if (!jobs)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	for (;;) {
		n = 0;
		for (i = 0; i < c->nhosts; i++) {
			const struct sim_host *o = &c->hosts[i];

			if (o->kind != SIM_NODE || o == node)
				continue;
			memset(&jobs[n], 0, 2 * sizeof(*jobs));
			snprintf(jobs[n].netns, sizeof(jobs[n].netns), "%s", o->netns);
			ip4_format(node->ip, jobs[n].to);
			snprintf(jobs[n + 1].netns, sizeof(jobs[n + 1].netns), "%s", node->netns);
			ip4_format(o->ip, jobs[n + 1].to);
			n += 2;
		}
		for (i = 0; i < n; i++) {
			jobs[i].proto = IPPROTO_ICMP;
			jobs[i].count = 1;
			jobs[i].timeout_ms = 200;
		}
		sim_probe_run(jobs, n, 16);
		for (ok = 0, i = 0; i < n; i++)
			ok += jobs[i].allowed == 1;
		if (ok == n)
			break;
		if (sim_now_ms() > deadline || sim_interrupted) {
			err = diag_fail_errno(d, -ETIMEDOUT, "link-up %s: the underlay still does not "
					      "answer after %d ms", node->name, LINK_UP_WAIT_MS);
			break;
		}
		usleep(50000);
	}
	free(jobs);
	return err;
}

int sim_fault_do(struct sim_cluster *c, const struct m_fault *f, struct diag *d)
{
	struct sim_host *node = sim_find_host(c, SIM_NODE, f->node);

	if (!node)
		return diag_fail(d, "fault: no node %s", f->node);
	switch (f->action) {
	case FAULT_RESTART_AGENT:
		return restart_agent(c, node, d);
	case FAULT_REKEY_AGENT:
		return rekey_agent(c, node, d);
	case FAULT_WITHDRAW_KEY:
		return withdraw_key(c, node, d);
	case FAULT_LINK_DOWN: {
		int err = SYS(d, "ip", "-n", c->fabric, "link", "set", node->ifname, "down");

		node->link_down = !err; /* what the runner then knows about lost probes */
		return err;
	}
	case FAULT_LINK_UP: {
		int err = SYS(d, "ip", "-n", c->fabric, "link", "set", node->ifname, "up");

		node->link_down = node->link_down && err;

		return err ? err : wait_underlay(c, node, d);
	}
	}
	return diag_fail(d, "fault: unknown action");
}

const char *sim_fault_name(const struct m_fault *f)
{
	return f->action == FAULT_RESTART_AGENT ? "restart-agent" :
	       f->action == FAULT_LINK_DOWN     ? "link-down" :
	       f->action == FAULT_REKEY_AGENT   ? "rekey-agent" :
	       f->action == FAULT_WITHDRAW_KEY  ? "withdraw-key" :
						  "link-up";
}

/* Reads what the stream printed until deadline or until want appears; true if it did. */
static bool stream_read(struct sim_stream *s, const char *want, long long deadline)
{
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	ssize_t n;

	for (;;) {
		s->out[s->len] = '\0';
		if (want && strstr(s->out, want))
			return true;
		if (s->eof || s->len == sizeof(s->out) - 1 || sim_now_ms() >= deadline)
			return false;
		if (poll(&pfd, 1, (int)(deadline - sim_now_ms())) <= 0)
			continue;
		n = read(s->fd, s->out + s->len, sizeof(s->out) - 1 - s->len);
		if (n <= 0)
			s->eof = true;
		else
			s->len += (size_t)n;
	}
}

int sim_stream_start(const char *netns, const char *to, uint16_t port, struct sim_stream *s)
{
	char p[8], max_ms[16], timeout[16];
	int err;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	snprintf(p, sizeof(p), "%u", port);
	snprintf(max_ms, sizeof(max_ms), "%d", STREAM_MAX_MS);
	snprintf(timeout, sizeof(timeout), "%d", SIM_PROBE_TIMEOUT_MS);
	err = sim_probe_spawn(netns, (char *const[]){
		"ciliate-probe", "--stream", "--to", (char *)to, "--port", p, "--timeout-ms",
		timeout, "--max-time-ms", max_ms, "-o", "json", NULL }, &s->pid, &s->fd);
	if (err)
		return err;
	s->open = stream_read(s, "\"stream\":\"open\"", sim_now_ms() + STREAM_OPEN_MS);
	return 0;
}

void sim_stream_finish(struct sim_stream *s, struct sim_check *chk)
{
	const char *p, *line = NULL;
	json_t *res;
	long long sent, answered;

	if (s->pid > 0) {
		kill(s->pid, SIGUSR1);
		stream_read(s, NULL, sim_now_ms() + STREAM_STOP_MS);
		kill(s->pid, SIGKILL); /* no-op when it already reported and exited */
		waitpid(s->pid, NULL, 0);
	}
	if (s->fd >= 0)
		close(s->fd);
	s->out[s->len] = '\0';
	for (p = s->out; (p = strstr(p, "{\"seq\"")); p++)
		line = p;
	res = line ? json_loads(line, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
	if (!res) {
		snprintf(chk->observed, sizeof(chk->observed), "no report");
		snprintf(chk->reason, sizeof(chk->reason), "stream prober said: %.300s", s->out);
		chk->pass = false;
		return;
	}
	sent = json_integer_value(json_object_get(res, "requests"));
	answered = json_integer_value(json_object_get(res, "answered"));
	snprintf(chk->observed, sizeof(chk->observed), "%lld/%lld requests answered on one "
		 "connection%s%s%s%s", answered, sent,
		 json_object_get(res, "error") ? ", then " : "",
		 json_string_value(json_object_get(res, "error")) ?: "",
		 json_object_get(res, "error") ? " at " : "",
		 json_string_value(json_object_get(res, "stage")) ?: "");
	chk->pass = s->open && sent > 0 && answered == sent &&
		    !strcmp(json_string_value(json_object_get(res, "result")) ?: "", "allow");
	if (!s->open)
		snprintf(chk->reason, sizeof(chk->reason), "the stream never opened (%s)",
			 chk->observed);
	else if (!chk->pass)
		snprintf(chk->reason, sizeof(chk->reason), "stream broken: %s", chk->observed);
	json_decref(res);
}
