// SPDX-License-Identifier: GPL-2.0
/*
 * ciliate-verify: load every program of every BPF object, in every build
 * configuration, into the running kernel and report what the verifier said.
 *
 *   ciliate-verify [-c CONFIGS] [-o text|json] [-j FILE] [-m N] [-v] PATH...
 *
 * PATH is a *.bpf.o file or a directory searched for *.bpf.o files.  CONFIGS
 * lists build configurations, one per line:
 *
 *   CONFIG_NAME  object.bpf.o  global=value global=value ...
 *
 * The globals are `const volatile` variables in the object's .rodata (or
 * .data) sections; they are located by name through the object's BTF and set
 * before the object is loaded.  An object without any line in CONFIGS is
 * verified once, as configuration "default", with its compiled-in values.
 *
 * Text output is one line per program (machine-parseable key=value pairs),
 * followed by indented "log:" lines holding the verifier's last words for a
 * rejected program, and a closing "RESULT pass=N fail=N skip=N" line.
 *
 * Exit status: 0 every program loaded, 1 a program was rejected or a
 * configuration could not be applied, 2 usage error, 77 nothing to verify.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define STATS_LOG_SIZE (256u * 1024)
#define FULL_LOG_SIZE (16u * 1024 * 1024)
#define ERR_LINES 6
#define BIG_PROG_INSNS 100000
#define LIBBPF_MSG_SIZE 4096

static struct vopts {
	const char *configs;
	const char *json_file;
	bool json_stdout;
	bool verbose;
	unsigned int max_entries;
} opts;

/* Last libbpf warnings, used as the reason when the kernel left no log. */
static char libbpf_msgs[LIBBPF_MSG_SIZE];

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	size_t len = strlen(libbpf_msgs);

	if (level == LIBBPF_DEBUG)
		return 0;
	if (opts.verbose)
		vfprintf(stderr, fmt, ap);
	if (len < sizeof(libbpf_msgs) - 1)
		vsnprintf(libbpf_msgs + len, sizeof(libbpf_msgs) - len, fmt, ap);
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "ciliate-verify: out of memory\n");
		exit(2);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (!p) {
		fprintf(stderr, "ciliate-verify: out of memory\n");
		exit(2);
	}
	return p;
}

/* ---- results ------------------------------------------------------------ */

struct result {
	char *object;
	char *config;
	char *program;
	char *type;
	const char *verdict; /* loaded, rejected, config-error, open-error */
	long insns;          /* instructions in the object file */
	long processed;      /* "processed N insns" from the verifier log */
	long total_states;
	long peak_states;
	long verify_us;      /* "verification time N usec", -1 if absent */
	long verified_insns; /* bpf_prog_info.verified_insns, -1 if absent */
	long xlated_insns;
	long jited_bytes;
	double load_ms;      /* wall time of the load that verified it */
	char *error;         /* newline-separated verifier/libbpf lines */
};

static struct result *results;
static size_t nresults, cap_results;

static struct result *new_result(const char *object, const char *config,
				 const char *program)
{
	struct result *r;

	if (nresults == cap_results) {
		cap_results = cap_results ? cap_results * 2 : 32;
		results = realloc(results, cap_results * sizeof(*results));
		if (!results) {
			fprintf(stderr, "ciliate-verify: out of memory\n");
			exit(2);
		}
	}
	r = &results[nresults++];
	memset(r, 0, sizeof(*r));
	r->object = xstrdup(object);
	r->config = xstrdup(config);
	r->program = xstrdup(program);
	r->type = xstrdup("");
	r->verdict = "rejected";
	r->insns = r->processed = r->total_states = r->peak_states = -1;
	r->verify_us = r->verified_insns = r->xlated_insns = r->jited_bytes = -1;
	return r;
}

/* ---- verifier log parsing ---------------------------------------------- */

static long log_number(const char *log, const char *key)
{
	const char *p = log ? strstr(log, key) : NULL;

	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static bool is_stats_line(const char *line, size_t len)
{
	static const char *const prefixes[] = {
		"processed ", "verification time ", "stack depth ",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);

		if (len >= pl && !strncmp(line, prefixes[i], pl))
			return true;
	}
	return false;
}

/*
 * The last ERR_LINES non-statistics lines of a verifier log: the failing
 * instruction and the verifier's complaint are at the end.
 */
static char *log_tail(const char *log)
{
	const char *lines[ERR_LINES];
	size_t lens[ERR_LINES];
	size_t n = 0, out_len = 0;
	const char *p = log;
	char *out;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len && !is_stats_line(p, len)) {
			if (n == ERR_LINES) {
				memmove(lines, lines + 1, sizeof(lines[0]) * (ERR_LINES - 1));
				memmove(lens, lens + 1, sizeof(lens[0]) * (ERR_LINES - 1));
				n--;
			}
			lines[n] = p;
			lens[n++] = len;
		}
		p = nl ? nl + 1 : NULL;
	}
	if (!n)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out_len += lens[i] + 1;
	out = xcalloc(1, out_len + 1);
	for (size_t i = 0, o = 0; i < n; i++) {
		memcpy(out + o, lines[i], lens[i]);
		o += lens[i];
		out[o++] = '\n';
	}
	return out;
}

static void fill_from_log(struct result *r, const char *log)
{
	r->processed = log_number(log, "processed ");
	r->total_states = log_number(log, "total_states ");
	r->peak_states = log_number(log, "peak_states ");
	r->verify_us = log_number(log, "verification time ");
}

static void fill_from_fd(struct result *r, int fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return;
	r->xlated_insns = info.xlated_prog_len / sizeof(struct bpf_insn);
	r->jited_bytes = info.jited_prog_len;
	/* verified_insns exists since 5.16; older kernels leave it zero. */
	if (len >= offsetof(struct bpf_prog_info, verified_insns) +
			   sizeof(info.verified_insns) && info.verified_insns)
		r->verified_insns = info.verified_insns;
}

/* ---- build configurations ---------------------------------------------- */

struct config {
	char *name;
	char *object; /* basename the line applies to */
	char **assigns;
	size_t nassigns;
	bool used;
	int line;
};

static struct config *configs;
static size_t nconfigs;

static void load_configs(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;

	if (!f) {
		fprintf(stderr, "ciliate-verify: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *tok, *hash = strchr(line, '#');
		struct config c = { .line = ++lineno };

		if (hash)
			*hash = '\0';
		tok = strtok_r(line, " \t\r\n", &save);
		if (!tok)
			continue;
		c.name = xstrdup(tok);
		tok = strtok_r(NULL, " \t\r\n", &save);
		if (!tok) {
			fprintf(stderr, "ciliate-verify: %s:%d: missing object name\n",
				path, lineno);
			exit(2);
		}
		c.object = xstrdup(tok);
		while ((tok = strtok_r(NULL, " \t\r\n", &save))) {
			if (!strchr(tok, '=')) {
				fprintf(stderr,
					"ciliate-verify: %s:%d: '%s' is not global=value\n",
					path, lineno, tok);
				exit(2);
			}
			c.assigns = realloc(c.assigns,
					    (c.nassigns + 1) * sizeof(*c.assigns));
			if (!c.assigns)
				exit(2);
			c.assigns[c.nassigns++] = xstrdup(tok);
		}
		configs = realloc(configs, (nconfigs + 1) * sizeof(*configs));
		if (!configs)
			exit(2);
		configs[nconfigs++] = c;
	}
	free(line);
	fclose(f);
}

/* Strip modifiers and typedefs. */
static const struct btf_type *resolve(const struct btf *btf, __u32 id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	while (t && (btf_is_mod(t) || btf_is_typedef(t)))
		t = btf__type_by_id(btf, t->type);
	return t;
}

static int parse_scalar(const struct btf *btf, const struct btf_type *t,
			const char *val, unsigned long long *out)
{
	char *end;

	if (!strcmp(val, "true")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(val, "false")) {
		*out = 0;
		return 0;
	}
	if (btf_is_enum(t)) {
		const struct btf_enum *e = btf_enum(t);

		for (int i = 0; i < btf_vlen(t); i++)
			if (!strcmp(btf__name_by_offset(btf, e[i].name_off), val)) {
				*out = (unsigned long long)(long long)e[i].val;
				return 0;
			}
	}
	errno = 0;
	if (val[0] == '-')
		*out = (unsigned long long)strtoll(val, &end, 0);
	else
		*out = strtoull(val, &end, 0);
	if (errno || end == val || *end)
		return -EINVAL;
	return 0;
}

/* Write one value of `size` bytes (little or big endian host) at dst. */
static int store_scalar(void *dst, size_t size, unsigned long long v)
{
	switch (size) {
	case 1: { __u8 x = v; memcpy(dst, &x, 1); break; }
	case 2: { __u16 x = v; memcpy(dst, &x, 2); break; }
	case 4: { __u32 x = v; memcpy(dst, &x, 4); break; }
	case 8: { __u64 x = v; memcpy(dst, &x, 8); break; }
	default: return -EINVAL;
	}
	return 0;
}

/*
 * Find `name` among the variables of the object's .rodata / .data sections
 * and set it.  Scalars (int, bool, enum) take decimal/hex/negative numbers,
 * true/false or an enumerator name; char arrays take a string.
 */
static int set_global(struct bpf_object *obj, const char *assign, char *err,
		      size_t errlen)
{
	const struct btf *btf = bpf_object__btf(obj);
	const char *eq = strchr(assign, '=');
	char name[256];
	struct bpf_map *map;

	snprintf(name, sizeof(name), "%.*s", (int)(eq - assign), assign);
	if (!btf) {
		snprintf(err, errlen, "object has no BTF, cannot set %s", name);
		return -ENOENT;
	}
	bpf_object__for_each_map(map, obj) {
		const struct btf_type *sec;
		const struct btf_var_secinfo *vs;
		const char *secname;

		if (!bpf_map__is_internal(map))
			continue;
		sec = btf__type_by_id(btf, bpf_map__btf_value_type_id(map));
		if (!sec || !btf_is_datasec(sec))
			continue;
		secname = btf__name_by_offset(btf, sec->name_off);
		if (strncmp(secname, ".rodata", 7) && strncmp(secname, ".data", 5))
			continue;
		vs = btf_var_secinfos(sec);
		for (int i = 0; i < btf_vlen(sec); i++, vs++) {
			const struct btf_type *var = btf__type_by_id(btf, vs->type);
			const struct btf_type *t;
			size_t size;
			const void *init;
			unsigned char *buf;
			unsigned long long v;
			int ret = 0;

			if (strcmp(btf__name_by_offset(btf, var->name_off), name))
				continue;
			t = resolve(btf, var->type);
			init = bpf_map__initial_value(map, &size);
			if (!init || vs->offset + vs->size > size) {
				snprintf(err, errlen, "%s: no initial value", name);
				return -EINVAL;
			}
			buf = xcalloc(1, size);
			memcpy(buf, init, size);
			if (t && btf_is_array(t) &&
			    resolve(btf, btf_array(t)->type) &&
			    resolve(btf, btf_array(t)->type)->size == 1) {
				size_t n = strlen(eq + 1);

				if (n >= vs->size) {
					ret = -E2BIG;
				} else {
					memset(buf + vs->offset, 0, vs->size);
					memcpy(buf + vs->offset, eq + 1, n);
				}
			} else if (t && (btf_is_int(t) || btf_is_any_enum(t))) {
				ret = parse_scalar(btf, t, eq + 1, &v);
				if (!ret)
					ret = store_scalar(buf + vs->offset, vs->size, v);
			} else {
				ret = -ENOTSUP;
			}
			if (!ret)
				ret = bpf_map__set_initial_value(map, buf, size);
			free(buf);
			if (ret)
				snprintf(err, errlen, "cannot set %s to '%s' (%s)", name,
					 eq + 1, strerror(-ret));
			return ret;
		}
	}
	snprintf(err, errlen, "no global variable '%s' in .rodata/.data", name);
	return -ENOENT;
}

/* ---- loading ------------------------------------------------------------ */

static bool is_capped_type(enum bpf_map_type t)
{
	return t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_LRU_HASH ||
	       t == BPF_MAP_TYPE_PERCPU_HASH ||
	       t == BPF_MAP_TYPE_LRU_PERCPU_HASH || t == BPF_MAP_TYPE_LPM_TRIE;
}

/*
 * Open `path` and apply configuration `c`.  `only` (if not NULL) is the one
 * program to autoload.  On error returns NULL with a message in err.
 */
static struct bpf_object *open_configured(const char *path,
					  const struct config *c,
					  const char *only, char *err,
					  size_t errlen)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map;
	int ret;

	libbpf_msgs[0] = '\0';
	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		snprintf(err, errlen, "open: %s %s", strerror(errno), libbpf_msgs);
		return NULL;
	}
	for (size_t i = 0; c && i < c->nassigns; i++) {
		ret = set_global(obj, c->assigns[i], err, errlen);
		if (ret) {
			bpf_object__close(obj);
			return NULL;
		}
	}
	bpf_object__for_each_map(map, obj) {
		/* Never pin: verification must not touch /sys/fs/bpf. */
		bpf_map__set_pin_path(map, NULL);
		if (opts.max_entries && is_capped_type(bpf_map__type(map)) &&
		    bpf_map__max_entries(map) > opts.max_entries)
			bpf_map__set_max_entries(map, opts.max_entries);
	}
	bpf_object__for_each_program(prog, obj) {
		if (only)
			bpf_program__set_autoload(prog,
						  !strcmp(bpf_program__name(prog), only));
	}
	return obj;
}

static const char *prog_type_name(const struct bpf_program *prog)
{
	const char *s = libbpf_bpf_prog_type_str(bpf_program__type(prog));

	return s ? s : "unknown";
}

/* Load one program alone to find out why it is rejected. */
static void isolate(const char *path, const struct config *c,
		    struct result *r, const char *prior)
{
	static const __u32 levels[] = { 1 | 4, 4 };
	char err[512] = "";
	char *tail = log_tail(prior);

	/*
	 * The whole-object load already rejected this program.  A huge program
	 * takes long to verify (minutes under emulation): keep that verdict
	 * instead of verifying it twice more for the full log.
	 */
	if (tail && log_number(prior, "processed ") >= BIG_PROG_INSNS) {
		fill_from_log(r, prior);
		r->error = tail;
		return;
	}
	free(tail);

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		size_t size = levels[i] & 1 ? FULL_LOG_SIZE : STATS_LOG_SIZE;
		char *log = xcalloc(1, size);
		struct bpf_object *obj;
		struct bpf_program *prog;
		double t0;
		int ret;

		obj = open_configured(path, c, r->program, err, sizeof(err));
		if (!obj) {
			r->error = xstrdup(err);
			free(log);
			return;
		}
		prog = bpf_object__find_program_by_name(obj, r->program);
		bpf_program__set_log_buf(prog, log, size);
		bpf_program__set_log_level(prog, levels[i]);
		t0 = now_ms();
		ret = bpf_object__load(obj);
		r->load_ms = now_ms() - t0;
		if (!ret) {
			/* Loads alone: another program broke the object. */
			r->verdict = "loaded";
			fill_from_log(r, log);
			fill_from_fd(r, bpf_program__fd(prog));
			bpf_object__close(obj);
			free(log);
			return;
		}
		fill_from_log(r, log);
		/* A full log that overflowed lost its end; fall back to stats. */
		if (ret == -ENOSPC && i + 1 < sizeof(levels) / sizeof(levels[0])) {
			bpf_object__close(obj);
			free(log);
			continue;
		}
		free(r->error);
		r->error = log_tail(log);
		if (!r->error)
			r->error = log_tail(libbpf_msgs);
		if (!r->error)
			r->error = xstrdup(strerror(-ret));
		bpf_object__close(obj);
		free(log);
		return;
	}
}

static int verify_object(const char *path, const struct config *c)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const char *cname = c ? c->name : "default";
	struct bpf_program *prog;
	struct bpf_object *obj;
	char err[512] = "";
	char *whole_err;
	char **logs;
	size_t n = 0, first = nresults;
	double t0, total;
	int ret, bad = 0;

	obj = open_configured(path, c, NULL, err, sizeof(err));
	if (!obj) {
		struct result *r = new_result(base, cname, "-");

		r->verdict = c && c->nassigns ? "config-error" : "open-error";
		r->error = xstrdup(err);
		return 1;
	}
	bpf_object__for_each_program(prog, obj)
		n++;
	logs = xcalloc(n ? n : 1, sizeof(*logs));
	n = 0;
	bpf_object__for_each_program(prog, obj) {
		struct result *r = new_result(base, cname, bpf_program__name(prog));

		free(r->type);
		r->type = xstrdup(prog_type_name(prog));
		r->insns = bpf_program__insn_cnt(prog);
		logs[n] = xcalloc(1, STATS_LOG_SIZE);
		bpf_program__set_log_buf(prog, logs[n], STATS_LOG_SIZE);
		bpf_program__set_log_level(prog, 4);
		n++;
	}
	t0 = now_ms();
	ret = bpf_object__load(obj);
	total = now_ms() - t0;

	n = 0;
	bpf_object__for_each_program(prog, obj) {
		struct result *r = &results[first + n];

		if (!ret) {
			r->verdict = "loaded";
			r->load_ms = total;
			fill_from_log(r, logs[n]);
			fill_from_fd(r, bpf_program__fd(prog));
		}
		n++;
	}
	bpf_object__close(obj);
	if (!n) {
		struct result *r = new_result(base, cname, "-");

		free(logs);
		r->verdict = "open-error";
		r->error = xstrdup("object contains no programs");
		return 1;
	}
	whole_err = ret ? log_tail(libbpf_msgs) : NULL;
	/* Something was rejected: load each program alone to find which. */
	for (size_t i = 0; ret && i < n; i++) {
		isolate(path, c, &results[first + i], logs[i]);
		if (strcmp(results[first + i].verdict, "loaded"))
			bad = 1;
	}
	for (size_t i = 0; i < n; i++)
		free(logs[i]);
	free(logs);
	if (!ret)
		return 0;
	if (!bad) {
		/* Every program loads alone: report the object-level failure. */
		results[first].verdict = "rejected";
		free(results[first].error);
		results[first].error = whole_err ? whole_err :
				       xstrdup("object failed to load as a whole");
		whole_err = NULL;
	}
	free(whole_err);
	return 1;
}

/* ---- object discovery --------------------------------------------------- */

static char **objects;
static size_t nobjects;

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

static void add_object(const char *path)
{
	objects = realloc(objects, (nobjects + 1) * sizeof(*objects));
	if (!objects)
		exit(2);
	objects[nobjects++] = xstrdup(path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_path(const char *path)
{
	struct stat st;
	struct dirent **ents;
	int n;

	if (stat(path, &st)) {
		fprintf(stderr, "ciliate-verify: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		add_object(path);
		return 0;
	}
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "ciliate-verify: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char full[PATH_MAX];

		if (has_suffix(ents[i]->d_name, ".bpf.o")) {
			snprintf(full, sizeof(full), "%s/%s", path, ents[i]->d_name);
			add_object(full);
		}
		free(ents[i]);
	}
	free(ents);
	return 0;
}

/* ---- output ------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, const char *key, long v, bool comma)
{
	fprintf(f, "\"%s\": ", key);
	if (v < 0)
		fputs("null", f);
	else
		fprintf(f, "%ld", v);
	if (comma)
		fputs(", ", f);
}

static void print_json(FILE *f, size_t pass, size_t fail)
{
	struct utsname u;

	uname(&u);
	fputs("{\n  \"kernel\": ", f);
	json_str(f, u.release);
	fprintf(f, ",\n  \"pass\": %zu, \"fail\": %zu,\n  \"programs\": [", pass,
		fail);
	for (size_t i = 0; i < nresults; i++) {
		struct result *r = &results[i];

		fputs(i ? ",\n    {" : "\n    {", f);
		fputs("\"object\": ", f);
		json_str(f, r->object);
		fputs(", \"config\": ", f);
		json_str(f, r->config);
		fputs(", \"program\": ", f);
		json_str(f, r->program);
		fputs(", \"type\": ", f);
		json_str(f, r->type);
		fputs(", \"verdict\": ", f);
		json_str(f, r->verdict);
		fputs(", ", f);
		json_num(f, "insns", r->insns, true);
		json_num(f, "processed_insns", r->processed, true);
		json_num(f, "verified_insns", r->verified_insns, true);
		json_num(f, "total_states", r->total_states, true);
		json_num(f, "peak_states", r->peak_states, true);
		json_num(f, "verify_us", r->verify_us, true);
		json_num(f, "xlated_insns", r->xlated_insns, true);
		json_num(f, "jited_bytes", r->jited_bytes, true);
		fprintf(f, "\"load_ms\": %.3f, \"error\": ", r->load_ms);
		if (r->error)
			json_str(f, r->error);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fputs(nresults ? "\n  ]\n}\n" : "]\n}\n", f);
}

static void print_text(FILE *f)
{
	for (size_t i = 0; i < nresults; i++) {
		struct result *r = &results[i];

		fprintf(f,
			"VERIFY object=%s config=%s program=%s type=%s verdict=%s "
			"insns=%ld processed=%ld verified=%ld states=%ld peak_states=%ld "
			"verify_us=%ld xlated=%ld jited=%ld load_ms=%.1f\n",
			r->object, r->config, r->program, r->type[0] ? r->type : "-",
			r->verdict, r->insns, r->processed, r->verified_insns,
			r->total_states, r->peak_states, r->verify_us,
			r->xlated_insns, r->jited_bytes, r->load_ms);
		for (const char *p = r->error; p && *p;) {
			const char *nl = strchr(p, '\n');
			int len = nl ? (int)(nl - p) : (int)strlen(p);

			if (len)
				fprintf(f, "  log: %.*s\n", len, p);
			p = nl ? nl + 1 : NULL;
		}
	}
}

static void usage(FILE *f)
{
	fputs("usage: ciliate-verify [-c CONFIGS] [-o text|json] [-j FILE] [-m N] [-v] PATH...\n"
	      "  PATH        a *.bpf.o file or a directory of them\n"
	      "  -c CONFIGS  build configurations: NAME OBJECT global=value ...\n"
	      "  -o FORMAT   text (default) or json on stdout\n"
	      "  -j FILE     also write the JSON report to FILE\n"
	      "  -m N        cap hash/LRU/LPM map max_entries at N (saves memory; does\n"
	      "              not change what the verifier checks)\n"
	      "  -v          show libbpf warnings\n",
	      f);
}

int main(int argc, char **argv)
{
	size_t pass = 0, fail = 0;
	int opt, rc = 0;

	while ((opt = getopt(argc, argv, "c:o:j:m:vh")) != -1) {
		switch (opt) {
		case 'c':
			opts.configs = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json")) {
				opts.json_stdout = true;
			} else if (strcmp(optarg, "text")) {
				usage(stderr);
				return 2;
			}
			break;
		case 'j':
			opts.json_file = optarg;
			break;
		case 'm':
			opts.max_entries = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			opts.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (int i = optind; i < argc; i++)
		if (add_path(argv[i]))
			return 2;
	if (!nobjects) {
		printf("SKIP: no *.bpf.o objects found\n");
		return 77;
	}
	qsort(objects, nobjects, sizeof(*objects), cmp_str);
	if (opts.configs)
		load_configs(opts.configs);
	libbpf_set_print(libbpf_print);

	for (size_t o = 0; o < nobjects; o++) {
		const char *base = strrchr(objects[o], '/') ?
					   strrchr(objects[o], '/') + 1 : objects[o];
		bool any = false;

		for (size_t c = 0; c < nconfigs; c++) {
			if (strcmp(configs[c].object, base))
				continue;
			configs[c].used = any = true;
			rc |= verify_object(objects[o], &configs[c]);
		}
		if (!any)
			rc |= verify_object(objects[o], NULL);
	}
	for (size_t c = 0; c < nconfigs; c++)
		if (!configs[c].used)
			fprintf(stderr,
				"ciliate-verify: note: config '%s' (line %d): object %s not given\n",
				configs[c].name, configs[c].line, configs[c].object);

	for (size_t i = 0; i < nresults; i++) {
		if (!strcmp(results[i].verdict, "loaded"))
			pass++;
		else
			fail++;
	}
	if (opts.json_stdout)
		print_json(stdout, pass, fail);
	else
		print_text(stdout);
	if (opts.json_file) {
		FILE *f = fopen(opts.json_file, "w");

		if (!f) {
			fprintf(stderr, "ciliate-verify: %s: %s\n", opts.json_file,
				strerror(errno));
			return 2;
		}
		print_json(f, pass, fail);
		fclose(f);
	}
	if (!opts.json_stdout)
		printf("RESULT pass=%zu fail=%zu skip=0\n", pass, fail);
	return rc || fail ? 1 : 0;
}
