/* SPDX-License-Identifier: Apache-2.0 */
/* A bounded pool of ciliate-probe processes, each run inside its source namespace. */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_MAX (256 * 1024)
#define SLACK_MS 8000 /* a probe bounds itself (--max-time-ms); this only covers a loaded machine scheduling it late */

struct slot {
	pid_t pid;
	int fd;
	size_t job;
	char *buf;
	size_t len;
	long long deadline;
	long long start;
	bool killed;
};

/* The child: enters netns, sends stdout/stderr to out_fd, execs ciliate-probe. */
static void child_exec_probe(const char *netns, int out_fd, char *const argv[])
{
	char bin[PATH_MAX];
	struct diag d;

	prctl(PR_SET_PDEATHSIG, SIGKILL); /* no probe outlives a killed runner */
	if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
		_exit(3);
	if (netns_enter(netns, &d)) {
		printf("cannot enter %s: %s\n", netns, d.msg);
		fflush(stdout);
		_exit(3);
	}
	snprintf(bin, sizeof(bin), "%s/ciliate-probe", sim_bin_dir());
	signal(SIGPIPE, SIG_DFL);
	execv(bin, argv);
	printf("exec %s: %s\n", bin, strerror(errno));
	fflush(stdout);
	_exit(3);
}

int sim_probe_spawn(const char *netns, char *const argv[], pid_t *pid, int *out_fd)
{
	int pfd[2];

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	*pid = fork();
	if (*pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (*pid == 0)
		child_exec_probe(netns, pfd[1], argv);
	close(pfd[1]);
	*out_fd = pfd[0];
	return 0;
}

static int start_job(struct sim_probe_job *j, struct slot *s)
{
	char port[8], timeout[24], count[24], max_time[24], payload[16];
	long long max_ms = (long long)j->count * j->timeout_ms + 1000;
	char *argv[24];
	int err, n = 0;

	if (max_ms > 600000)
		max_ms = 600000;
	snprintf(port, sizeof(port), "%u", j->port);
	snprintf(timeout, sizeof(timeout), "%d", j->timeout_ms);
	snprintf(count, sizeof(count), "%d", j->count);
	snprintf(max_time, sizeof(max_time), "%lld", max_ms);
	snprintf(payload, sizeof(payload), "%u", j->payload_bytes);
	argv[n++] = "ciliate-probe";
	argv[n++] = "--to";
	argv[n++] = j->to;
	argv[n++] = "--protocol";
	argv[n++] = j->proto == IPPROTO_UDP ? "UDP" : j->proto == IPPROTO_ICMP ? "ICMP" : "TCP";
	argv[n++] = "--timeout-ms";
	argv[n++] = timeout;
	argv[n++] = "--count";
	argv[n++] = count;
	argv[n++] = "--max-time-ms";
	argv[n++] = max_time;
	argv[n++] = "-o";
	argv[n++] = "json";
	if (j->payload_bytes) {
		argv[n++] = "--payload-bytes";
		argv[n++] = payload;
	}
	if (j->tcp_fast_open)
		argv[n++] = "--tcp-fastopen";
	if (j->proto != IPPROTO_ICMP) { /* ICMP has no port */
		argv[n++] = "--port";
		argv[n++] = port;
	}
	argv[n] = NULL;
	err = sim_probe_spawn(j->netns, argv, &s->pid, &s->fd);
	if (err)
		return err;
	s->len = 0;
	s->killed = false;
	s->start = sim_now_ms();
	s->deadline = s->start + (long long)j->count * j->timeout_ms + SLACK_MS;
	return 0;
}

/* Counts an answer of backend b (the first SIM_ANSWERS_MAX distinct ones are kept). */
static void count_answer(struct sim_probe_job *j, const char *b)
{
	int i;

	for (i = 0; i < j->nanswers; i++) {
		if (!strcmp(j->answers[i].name, b)) {
			j->answers[i].n++;
			return;
		}
	}
	if (j->nanswers < SIM_ANSWERS_MAX) {
		snprintf(j->answers[j->nanswers].name, KUBELET_ID_MAX, "%s", b);
		j->answers[j->nanswers++].n = 1;
	}
}

/* The first attempt's request size, path MTU outcome and TFO result (payload probes). */
static void parse_pmtu(struct sim_pmtu *m, json_t *o)
{
	json_t *pm = json_object_get(o, "pmtu"), *icmp = json_object_get(pm, "icmp");

	m->syn_data = json_is_integer(json_object_get(o, "syn_data")) ?
		(int)json_integer_value(json_object_get(o, "syn_data")) : -1;
	m->syn_data_acked = json_is_true(json_object_get(o, "syn_data_acked"));
	m->sent_bytes = (unsigned int)json_integer_value(json_object_get(o, "payload_bytes"));
	m->path_mtu = (unsigned int)json_integer_value(json_object_get(pm, "path_mtu"));
	m->retried = json_is_true(json_object_get(pm, "retried"));
	m->icmp_seen = json_is_object(icmp);
	if (!m->icmp_seen)
		return;
	m->icmp_type = (unsigned int)json_integer_value(json_object_get(icmp, "type"));
	m->icmp_code = (unsigned int)json_integer_value(json_object_get(icmp, "code"));
	m->icmp_mtu = (unsigned int)json_integer_value(json_object_get(icmp, "mtu"));
	m->quoted_port = (unsigned int)json_integer_value(json_object_get(icmp, "quoted_port"));
	snprintf(m->icmp_from, sizeof(m->icmp_from), "%s",
		 json_string_value(json_object_get(icmp, "from")) ?: "");
	snprintf(m->quoted_dst, sizeof(m->quoted_dst), "%s",
		 json_string_value(json_object_get(icmp, "quoted_dst")) ?: "");
}

static void parse_attempt(struct sim_probe_job *j, json_t *o)
{
	const char *res = json_string_value(json_object_get(o, "result"));
	json_t *reply = json_object_get(o, "reply");
	char backend[KUBELET_ID_MAX];
	const char *pod, *ns, *cip, *node;

	json_t *lport = json_object_get(o, "local_port");

	if (!j->attempts++) {
		j->latency_ms = json_real_value(json_object_get(o, "latency_ms"));
		parse_pmtu(&j->pmtu, o);
	}
	if (json_integer_value(lport) > 0 && j->nsports < SIM_PROBE_PORTS_MAX)
		j->sports[j->nsports++] = (uint16_t)json_integer_value(lport);
	if (!res || strcmp(res, "allow")) {
		if (!j->error[0]) {
			snprintf(j->error, sizeof(j->error), "%s",
				 json_string_value(json_object_get(o, "error")) ?: "error");
			snprintf(j->stage, sizeof(j->stage), "%s",
				 json_string_value(json_object_get(o, "stage")) ?: "");
		}
		return;
	}
	j->allowed++;
	pod = json_string_value(json_object_get(reply, "pod")) ?: "";
	ns = json_string_value(json_object_get(reply, "namespace")) ?: "";
	cip = json_string_value(json_object_get(reply, "client_ip")) ?: "";
	node = json_string_value(json_object_get(reply, "node")) ?: "";
	if (ns[0])
		snprintf(backend, sizeof(backend), "%s/%s", ns, pod);
	else if (node[0]) /* a node's own server */
		snprintf(backend, sizeof(backend), "node/%s", node);
	else
		snprintf(backend, sizeof(backend), "ext/%s", pod);
	if (j->answers)
		count_answer(j, backend);
	if (j->allowed == 1) {
		snprintf(j->backend, sizeof(j->backend), "%s", backend);
		snprintf(j->backend_node, sizeof(j->backend_node), "%s", node);
		snprintf(j->client_ip, sizeof(j->client_ip), "%s", cip);
	}
}

static void finish_job(struct sim_probe_job *j, struct slot *s, int status)
{
	char *line, *save = NULL;
	json_t *o;

	j->elapsed_ms = sim_now_ms() - s->start;
	s->buf[s->len] = '\0';
	free(j->answers);
	j->answers = calloc(SIM_ANSWERS_MAX, sizeof(*j->answers));
	j->nanswers = 0;
	for (line = strtok_r(s->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		o = line[0] == '{' ? json_loads(line, 0, NULL) : NULL;
		if (!o) {
			if (!j->failure[0])
				snprintf(j->failure, sizeof(j->failure), "ciliate-probe: %.200s", line);
			continue;
		}
		if (!json_object_get(o, "summary"))
			parse_attempt(j, o);
		json_decref(o);
	}
	j->distinct = j->nanswers;
	if (s->killed)
		snprintf(j->failure, sizeof(j->failure), "ciliate-probe exceeded %lld ms: killed",
			 s->deadline - s->start);
	else if (WIFEXITED(status) && WEXITSTATUS(status) > 1 && !j->failure[0])
		snprintf(j->failure, sizeof(j->failure), "ciliate-probe exited %d",
			 WEXITSTATUS(status));
	else if (j->attempts < j->count && !j->failure[0])
		snprintf(j->failure, sizeof(j->failure), "ciliate-probe made %d of %d attempts",
			 j->attempts, j->count);
	if (!j->failure[0])
		return;
	/* a probe that could not run is never an answer */
	j->allowed = 0;
}

void sim_probe_run(struct sim_probe_job *jobs, size_t n, int parallel)
{
	struct slot *slots = calloc((size_t)parallel, sizeof(*slots));
	struct pollfd *pfd = calloc((size_t)parallel, sizeof(*pfd));
	size_t next = 0, k;
	int running = 0, i, status;

	if (!slots || !pfd)
		goto out;
	for (i = 0; i < parallel; i++) {
		slots[i].pid = 0;
		slots[i].buf = malloc(OUT_MAX + 1);
		if (!slots[i].buf)
			goto out;
	}
	while (next < n || running) {
		long long now = sim_now_ms(), wait = 200;

		for (i = 0; i < parallel && next < n && !sim_interrupted; i++) {
			if (slots[i].pid)
				continue;
			slots[i].job = next;
			if (start_job(&jobs[next], &slots[i])) {
				snprintf(jobs[next].failure, sizeof(jobs[next].failure),
					 "cannot start ciliate-probe: %s", strerror(errno));
				slots[i].pid = 0;
			} else {
				running++;
			}
			next++;
		}
		if (sim_interrupted) {
			for (k = next; k < n; k++)
				snprintf(jobs[k].failure, sizeof(jobs[k].failure), "interrupted");
			next = n;
		}
		if (!running)
			continue;
		for (i = 0; i < parallel; i++) {
			pfd[i].fd = slots[i].pid ? slots[i].fd : -1;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			if (slots[i].pid && slots[i].deadline - now < wait)
				wait = slots[i].deadline - now;
		}
		if (poll(pfd, (nfds_t)parallel, wait < 0 ? 0 : (int)wait) < 0 && errno != EINTR)
			break;
		now = sim_now_ms();
		for (i = 0; i < parallel; i++) {
			struct slot *s = &slots[i];
			char scratch[4096];
			size_t room;
			ssize_t r;

			if (!s->pid)
				continue;
			if ((now > s->deadline || sim_interrupted) && !s->killed) {
				kill(s->pid, SIGKILL);
				s->killed = true;
			}
			if (!pfd[i].revents)
				continue;
			room = OUT_MAX - s->len;
			r = room ? read(s->fd, s->buf + s->len, room) :
				   read(s->fd, scratch, sizeof(scratch)); /* over the cap: drop */
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r > 0) {
				if (room)
					s->len += (size_t)r;
				continue;
			}
			close(s->fd);
			while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
				;
			finish_job(&jobs[s->job], s, status);
			s->pid = 0;
			running--;
		}
	}
out:
	for (i = 0; slots && i < parallel; i++)
		free(slots[i].buf);
	free(slots);
	free(pfd);
}

void sim_probe_jobs_free(struct sim_probe_job *jobs, size_t n)
{
	size_t i;

	for (i = 0; jobs && i < n; i++) {
		free(jobs[i].answers);
		jobs[i].answers = NULL;
		jobs[i].nanswers = 0;
	}
}
