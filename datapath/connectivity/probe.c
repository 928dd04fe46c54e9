/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Actions: one `ciliate-probe -o json` each, run inside the source's network namespace
 * (setns in the child, as the simulator does), all of a test's actions at once, each bounded
 * (the probe bounds itself; this kills it 3 s later at the latest, and at once on Ctrl-C).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ct.h"
#include "netns.h"

#define OUT_MAX 16384

struct running {
	pid_t pid;
	int fd;
	char out[OUT_MAX];
	size_t len;
	long long deadline;
};

static pid_t start_probe(const struct ct_ctx *c, const struct ct_action *a, int *fd)
{
	char bin[4200], port[16], timeout[16];
	char *argv[16];
	int p[2], k = 0;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/ciliate-probe", c->env.bin_dir);
	snprintf(port, sizeof(port), "%d", a->port);
	snprintf(timeout, sizeof(timeout), "%d", CT_PROBE_TIMEOUT_MS);
	argv[k++] = bin;
	argv[k++] = "--to";
	argv[k++] = (char *)a->to;
	if (a->port) {
		argv[k++] = "--port";
		argv[k++] = port;
	} else {
		argv[k++] = "--protocol";
		argv[k++] = "ICMP";
	}
	if (a->http)
		argv[k++] = "--http";
	argv[k++] = "--timeout-ms";
	argv[k++] = timeout;
	argv[k++] = "-o";
	argv[k++] = "json";
	argv[k] = NULL;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		struct diag d;
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		dup2(p[1], STDOUT_FILENO);
		dup2(null, STDIN_FILENO);
		dup2(null, STDERR_FILENO);
		if (a->netns[0] && netns_enter(a->netns, &d))
			_exit(126);
		execv(bin, argv);
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*fd = p[0];
	return pid;
}

static void reply_names(json_t *reply, char *out, size_t size)
{
	const char *ns = json_string_value(json_object_get(reply, "namespace")) ?: "";
	const char *pod = json_string_value(json_object_get(reply, "pod")) ?: "";

	snprintf(out, size, "%s%s%s", ns, *ns ? "/" : "", pod);
}

/* What the probe's answer alone decides: an allow needs an answer from the intended
 * target; a deny needs a timeout (a refusal is not a datapath drop). */
static void judge(struct ct_action *a, const char *out, int status)
{
	json_t *r = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
	const char *result = json_string_value(json_object_get(r, "result")) ?: "";
	const char *error = json_string_value(json_object_get(r, "error")) ?: "";
	const char *stage = json_string_value(json_object_get(r, "stage")) ?: "";
	json_t *reply = json_object_get(r, "reply");
	char who[300];

	a->ms = json_number_value(json_object_get(r, "latency_ms"));
	if (json_object_get(r, "local_port") && a->nsports < 8)
		a->sports[a->nsports++] =
			(uint16_t)json_integer_value(json_object_get(r, "local_port"));
	if (!r) {
		a->pass = false;
		if (WIFEXITED(status))
			snprintf(a->reason, sizeof(a->reason),
				 "ciliate-probe gave no result (exit status %d)",
				 WEXITSTATUS(status));
		else
			snprintf(a->reason, sizeof(a->reason),
				 "ciliate-probe gave no result (killed by signal %d)",
				 WTERMSIG(status));
		snprintf(a->observed, sizeof(a->observed), "no result");
		return;
	}
	reply_names(reply, who, sizeof(who));
	if (!strcmp(result, "allow"))
		snprintf(a->observed, sizeof(a->observed), "allow%s%s client=%s",
			 *who ? " backend=" : "", who,
			 json_string_value(json_object_get(reply, "client_ip")) ?: "-");
	else
		snprintf(a->observed, sizeof(a->observed), "deny %s (%s)", error, stage);
	if (a->expect == CT_ALLOW) {
		if (strcmp(result, "allow"))
			snprintf(a->reason, sizeof(a->reason), "expected an answer, got %s",
				 a->observed);
		else if (a->want[0] && strcmp(who, a->want))
			snprintf(a->reason, sizeof(a->reason), "answered by %s, not by %s",
				 *who ? who : "(unnamed)", a->want);
		else
			a->pass = true;
	} else {
		if (!strcmp(result, "allow"))
			snprintf(a->reason, sizeof(a->reason),
				 "expected a policy drop, got an "
				 "answer from %s",
				 *who ? who : a->to);
		else if (strcmp(error, "timeout"))
			snprintf(a->reason, sizeof(a->reason),
				 "%s: the packet was not dropped "
				 "silently by the datapath (a refusal is no policy drop)",
				 a->observed);
		else
			a->pass = true; /* for now: the drop event must still prove it */
	}
	json_decref(r);
}

static void run_once(struct ct_ctx *c, struct ct_action *a, size_t n);

/* An action whose probe gave no result at all (it could not start, or something killed
 * it) is run once more, on its own; an answer or a timeout is never retried. */
void ct_run_actions(struct ct_ctx *c, struct ct_action *a, size_t n)
{
	size_t i;

	run_once(c, a, n);
	for (i = 0; i < n; i++) {
		if (c->stop && *c->stop)
			return;
		if (!a[i].pass && !strcmp(a[i].observed, "no result"))
			run_once(c, &a[i], 1);
	}
}

static void run_once(struct ct_ctx *c, struct ct_action *a, size_t n)
{
	struct running *run = calloc(n ? n : 1, sizeof(*run));
	struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
	size_t i, open_n = 0;
	int status;

	if (!run || !pfd) {
		for (i = 0; i < n; i++)
			snprintf(a[i].reason, sizeof(a[i].reason), "out of memory");
		free(run);
		free(pfd);
		return;
	}
	for (i = 0; i < n; i++) {
		a[i].pass = false;
		a[i].reason[0] = a[i].observed[0] = '\0';
		a[i].nsports = 0;
		run[i].fd = -1;
		run[i].pid = start_probe(c, &a[i], &run[i].fd);
		run[i].deadline = ct_now_ms() + CT_PROBE_TIMEOUT_MS + 3000;
		if (run[i].pid < 0)
			snprintf(a[i].reason, sizeof(a[i].reason), "cannot start ciliate-probe: %s",
				 strerror(errno));
		else
			open_n++;
	}
	while (open_n) {
		size_t m = 0;
		long long now = ct_now_ms(), wait = 200;

		for (i = 0; i < n; i++) {
			if (run[i].fd < 0)
				continue;
			if (now > run[i].deadline || (c->stop && *c->stop)) {
				kill(run[i].pid, SIGKILL);
				close(run[i].fd);
				run[i].fd = -1;
				open_n--;
				continue;
			}
			pfd[m].fd = run[i].fd;
			pfd[m].events = POLLIN;
			pfd[m].revents = 0;
			m++;
		}
		if (!m)
			break;
		if (poll(pfd, m, (int)wait) < 0 && errno != EINTR)
			break;
		for (i = 0; i < n; i++) {
			ssize_t r;

			if (run[i].fd < 0)
				continue;
			r = read(run[i].fd, run[i].out + run[i].len, OUT_MAX - 1 - run[i].len);
			if (r > 0) {
				run[i].len += (size_t)r;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR) ||
				   run[i].len >= OUT_MAX - 1) {
				close(run[i].fd);
				run[i].fd = -1;
				open_n--;
			}
		}
	}
	for (i = 0; i < n; i++) {
		if (run[i].fd >= 0)
			close(run[i].fd);
		if (run[i].pid <= 0)
			continue;
		status = 0;
		while (waitpid(run[i].pid, &status, 0) < 0 && errno == EINTR)
			;
		run[i].out[run[i].len] = '\0';
		if (c->stop && *c->stop) {
			snprintf(a[i].reason, sizeof(a[i].reason), "interrupted");
			continue;
		}
		judge(&a[i], run[i].out, status);
	}
	free(run);
	free(pfd);
}
