/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The embedded store backend: one directory holding
 *   log   - JSON lines: a snapshot header, then one record per write (see docs/STORE.md)
 *   lock  - flock()ed by writers
 * Every handle (one per process) replays the log into memory and catches up incrementally
 * before each operation; writers append under the lock and fdatasync; compaction rewrites the
 * log (snapshot + recent history) and renames it into place; watches follow the log with
 * inotify on the directory (or a timer when inotify is unavailable).
 */
#include "store_backend.h"
#include "store_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define FS_LINE_MAX        (64u << 20) /* longest log line we write or accept */
#define FS_WATCH_BATCH     4096        /* events per store_watch_next() call, at most */
#define FS_COMPACT_BYTES   (64ull << 20)
#define FS_KEEP_REVS       10000
#define FS_POLL_MS         50   /* watch re-check period without inotify */
#define FS_SAFETY_POLL_MS  1000 /* re-check period with inotify (belt and braces) */

struct fs_reader {
	int fd;
	dev_t dev;
	ino_t ino;
	char *buf;
	size_t cap;
	size_t len;     /* valid bytes in buf */
	size_t pos;     /* consumed bytes in buf */
	off_t buf_off;  /* file offset of buf[0] */
};

struct fs_store {
	struct store base;
	char *dir;
	char *log_path;
	char *lock_path;
	char *tmp_path;
	int lock_fd;
	struct fs_reader r;
	off_t base_off;     /* end of the snapshot + copied history in the current log */
	struct fs_state st;
	bool fsync;
	bool inotify;
	bool readonly;      /* no write permission: reads only, no lease expiry */
	uint64_t compact_bytes;
	int64_t keep_revs;
	int poll_ms;
	unsigned long skipped; /* unparsable (torn) lines seen */
};

struct fs_watch {
	struct store_watch base;
	struct fs_store *s;
	struct fs_reader r;
	char *prefix;
	size_t plen;
	int64_t rev; /* last revision consumed */
	int epfd;
	int infd;
	int tfd;
	int poll_ms;
	bool stale;
};

static const struct store_backend_ops fs_ops;

/* ---- line reader ------------------------------------------------------------------------ */

static void fs_reader_close(struct fs_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static int fs_reader_open(struct fs_reader *r, const char *path, int flags)
{
	struct stat sb;
	int fd;

	fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		int err = -errno;

		close(fd);
		return err;
	}
	fs_reader_close(r);
	r->fd = fd;
	r->dev = sb.st_dev;
	r->ino = sb.st_ino;
	return 0;
}

static off_t fs_reader_off(const struct fs_reader *r)
{
	return r->buf_off + (off_t)r->pos;
}

/* Returns 1 with the next complete line (without '\n'), 0 when only a partial line is left. */
static int fs_reader_line(struct fs_reader *r, char **line, size_t *len)
{
	char *nl, *nb;
	ssize_t n;

	for (;;) {
		nl = r->len > r->pos ? memchr(r->buf + r->pos, '\n', r->len - r->pos) : NULL;
		if (nl) {
			*line = r->buf + r->pos;
			*len = (size_t)(nl - *line);
			r->pos = (size_t)(nl - r->buf) + 1;
			return 1;
		}
		if (r->pos) {
			memmove(r->buf, r->buf + r->pos, r->len - r->pos);
			r->buf_off += (off_t)r->pos;
			r->len -= r->pos;
			r->pos = 0;
		}
		if (r->len == r->cap) {
			size_t nc = r->cap ? r->cap * 2 : 64 * 1024;

			if (r->cap > FS_LINE_MAX + 1)
				return -EFBIG;
			nb = realloc(r->buf, nc);
			if (!nb)
				return -ENOMEM;
			r->buf = nb;
			r->cap = nc;
		}
		n = pread(r->fd, r->buf + r->len, r->cap - r->len, r->buf_off + (off_t)r->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		r->len += (size_t)n;
	}
}

/* True when path no longer names the file r has open (compaction renamed a new one in). */
static int fs_reader_replaced(const struct fs_reader *r, const char *path)
{
	struct stat sb;

	if (stat(path, &sb))
		return -errno;
	return sb.st_ino != r->ino || sb.st_dev != r->dev;
}

static json_t *fs_parse(const char *line, size_t len)
{
	return json_loadb(line, len, JSON_ALLOW_NUL, NULL);
}

/* ---- catching up ------------------------------------------------------------------------ */

/* Opens the current log and loads its snapshot header into the state. */
static int fs_load(struct fs_store *s, struct diag *d)
{
	struct fs_reader r = { .fd = -1 };
	json_t *hdr = NULL;
	char *line;
	size_t len;
	int err;

	err = fs_reader_open(&r, s->log_path, O_RDWR | O_APPEND);
	s->readonly = err == -EACCES || err == -EROFS;
	if (s->readonly)
		err = fs_reader_open(&r, s->log_path, O_RDONLY);
	if (err) {
		diag_fail_errno(d, err, "store %s: open: %s", s->log_path, strerror(-err));
		goto out;
	}
	err = fs_reader_line(&r, &line, &len);
	if (err <= 0 || !(hdr = fs_parse(line, len)) ||
	    strcmp(json_string_value(json_object_get(hdr, "type")) ?: "", "snapshot")) {
		err = diag_fail_errno(d, err < 0 ? err : -EIO, "store %s: first line is not a snapshot header",
				      s->log_path);
		goto out;
	}
	err = fs_state_load_snapshot(&s->st, hdr);
	if (err) {
		diag_fail_errno(d, err, "store %s: bad snapshot header", s->log_path);
		goto out;
	}
	fs_reader_close(&s->r);
	s->r = r;
	r.fd = -1;
	r.buf = NULL;
	s->base_off = fs_reader_off(&s->r);
out:
	json_decref(hdr);
	fs_reader_close(&r);
	return err;
}

static int fs_read_lines(struct fs_store *s, struct diag *d)
{
	char *line;
	size_t len;
	json_t *rec;
	int rc, err;

	while ((rc = fs_reader_line(&s->r, &line, &len)) > 0) {
		rec = fs_parse(line, len);
		if (!rec) {
			s->skipped++;
			continue;
		}
		if (fs_json_int(rec, "seq", 0) <= s->st.seq) {
			s->base_off = fs_reader_off(&s->r); /* copied history, already in the snapshot */
		} else {
			err = fs_state_apply(&s->st, rec);
			if (err) {
				json_decref(rec);
				return diag_fail_errno(d, err, "store %s: out of memory", s->log_path);
			}
		}
		json_decref(rec);
	}
	if (rc < 0)
		return diag_fail_errno(d, rc, "store %s: read: %s", s->log_path, strerror(-rc));
	return 0;
}

/* Brings the in-memory state up to the end of the log, following compactions. */
static int fs_catch_up(struct fs_store *s, struct diag *d)
{
	int err, i;

	for (i = 0; i < 100; i++) {
		err = fs_read_lines(s, d);
		if (err)
			return err;
		err = fs_reader_replaced(&s->r, s->log_path);
		if (err < 0)
			return diag_fail_errno(d, err, "store %s: %s", s->log_path, strerror(-err));
		if (!err)
			return 0;
		/* Everything written to the old file happened before the rename: drain it. */
		err = fs_read_lines(s, d);
		if (!err)
			err = fs_load(s, d);
		if (err)
			return err;
	}
	return diag_fail_errno(d, -EAGAIN, "store %s: log keeps being replaced", s->log_path);
}

/* ---- writing ---------------------------------------------------------------------------- */

static int fs_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fs_lock(struct fs_store *s, struct diag *d)
{
	struct stat sb;
	int err;

	if (s->readonly)
		return diag_fail_errno(d, -EACCES, "store %s: no write permission (opened read-only)", s->dir);
	while (flock(s->lock_fd, LOCK_EX)) {
		if (errno != EINTR)
			return diag_fail_errno(d, -errno, "store %s: lock: %m", s->lock_path);
	}
	err = fs_catch_up(s, d);
	if (err)
		goto out;
	if (fstat(s->r.fd, &sb)) {
		err = diag_fail_errno(d, -errno, "store %s: stat: %m", s->log_path);
		goto out;
	}
	if (sb.st_size > fs_reader_off(&s->r)) {
		/* A writer died mid-line: seal the torn line so that no record is appended to it. */
		err = fs_write_all(s->r.fd, "\n", 1);
		if (!err)
			err = fs_catch_up(s, d);
		else
			diag_fail_errno(d, err, "store %s: write: %s", s->log_path, strerror(-err));
	}
out:
	if (err)
		flock(s->lock_fd, LOCK_UN);
	return err;
}

static void fs_unlock(struct fs_store *s)
{
	flock(s->lock_fd, LOCK_UN);
}

/* Appends one record (under the lock) and applies it; bump: it changes keys. */
static int fs_append(struct fs_store *s, json_t *ops, bool bump, struct diag *d)
{
	json_t *rec;
	char *text = NULL;
	size_t len;
	int err;

	rec = json_pack("{s:I,s:I,s:I,s:O}", "seq", (json_int_t)(s->st.seq + 1), "rev",
			(json_int_t)(s->st.rev + (bump ? 1 : 0)), "t", (json_int_t)store_now_ms(), "ops", ops);
	if (rec)
		text = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	if (!text) {
		err = diag_fail_errno(d, -ENOMEM, "store %s: cannot encode record", s->log_path);
		goto out;
	}
	len = strlen(text);
	if (len >= FS_LINE_MAX) {
		err = diag_fail_errno(d, -EFBIG, "store %s: write of %zu bytes exceeds the %u-byte record limit",
				      s->log_path, len, FS_LINE_MAX);
		goto out;
	}
	text[len] = '\n'; /* replaces the NUL: we write len + 1 bytes */
	err = fs_write_all(s->r.fd, text, len + 1);
	if (err) {
		diag_fail_errno(d, err, "store %s: write: %s", s->log_path, strerror(-err));
		fs_write_all(s->r.fd, "\n", 1); /* seal a partial line; readers skip it */
		goto out;
	}
	if (s->fsync && fdatasync(s->r.fd)) {
		err = diag_fail_errno(d, -errno, "store %s: fdatasync: %m", s->log_path);
		goto out;
	}
	err = fs_catch_up(s, d);
out:
	free(text);
	return err;
}

/* Revokes one lease under the lock: one record deleting its keys. */
static int fs_revoke_locked(struct fs_store *s, int64_t id, struct diag *d)
{
	json_t *ops = json_array();
	struct fs_entry *e;
	size_t i, n = 0;
	int err = 0;

	if (!ops || json_array_append_new(ops, json_pack("{s:s,s:I}", "op", "revoke", "lease", (json_int_t)id))) {
		err = diag_fail_errno(d, -ENOMEM, "store: out of memory");
		goto out;
	}
	for (i = 0; i < s->st.nbuckets; i++) {
		for (e = s->st.buckets[i]; e; e = e->next) {
			if (e->kv.lease != id)
				continue;
			if (json_array_append_new(ops, json_pack("{s:s,s:s}", "op", "del", "key", e->kv.key))) {
				err = diag_fail_errno(d, -ENOMEM, "store: out of memory");
				goto out;
			}
			n++;
		}
	}
	err = fs_append(s, ops, n > 0, d);
out:
	json_decref(ops);
	return err;
}

/* Expires every lease past its deadline (under the lock). Returns how many. */
static int fs_expire_locked(struct fs_store *s, struct diag *d)
{
	int64_t id;
	int err, n = 0;

	while ((id = fs_state_expired_lease(&s->st, store_now_ms())) && n < 100000) {
		err = fs_revoke_locked(s, id, d);
		if (err)
			return err;
		n++;
	}
	return n;
}

static int fs_compact_locked(struct fs_store *s, int64_t rev, bool force, struct diag *d);

/* Compacts automatically once the log has grown by compact_bytes since the last compaction. */
static int fs_maybe_compact_locked(struct fs_store *s, struct diag *d)
{
	int64_t rev;

	if ((uint64_t)(fs_reader_off(&s->r) - s->base_off) < s->compact_bytes)
		return 0;
	rev = s->st.rev - s->keep_revs;
	if (rev < s->st.compact_rev)
		rev = s->st.compact_rev;
	return fs_compact_locked(s, rev, true, d);
}

/* Catches up and, if a lease is past its deadline, expires it. Returns >0 if it wrote. */
static int fs_sync(struct fs_store *s, struct diag *d)
{
	int err;

	err = fs_catch_up(s, d);
	if (err || s->readonly || fs_state_next_deadline(&s->st) > store_now_ms())
		return err;
	err = fs_lock(s, d);
	if (err)
		return err;
	err = fs_expire_locked(s, d);
	fs_unlock(s);
	return err;
}

/* ---- compaction ------------------------------------------------------------------------- */

/* Reads "seq" and "rev" of a whole record line (a sealed torn line is not one). */
static bool fs_line_seq_rev(const char *line, size_t len, int64_t *seq, int64_t *rev)
{
	json_t *rec = fs_parse(line, len);

	if (!rec)
		return false;
	*seq = fs_json_int(rec, "seq", -1);
	*rev = fs_json_int(rec, "rev", -1);
	json_decref(rec);
	return *seq >= 0 && *rev >= 0;
}

/* Writes the new log into fd: the snapshot line, then the history after rev. -errno on error. */
static int fs_compact_write(struct fs_store *s, int64_t rev, int fd)
{
	struct fs_reader old = { .fd = -1 };
	int64_t seq, lrev, prev = rev;
	char *text = NULL, *line;
	json_t *hdr;
	size_t len;
	int err, rc;

	hdr = fs_state_snapshot(&s->st, rev);
	if (hdr)
		text = json_dumps(hdr, JSON_COMPACT);
	json_decref(hdr);
	if (!text) {
		err = -ENOMEM;
		goto out;
	}
	len = strlen(text);
	text[len] = '\n';
	err = fs_write_all(fd, text, len + 1);
	if (!err)
		err = fs_reader_open(&old, s->log_path, O_RDONLY);
	if (err)
		goto out;
	/* Keep the history after rev (records that changed keys) for watchers that lag behind. */
	rc = fs_reader_line(&old, &line, &len); /* the old header */
	while (rc > 0 && (rc = fs_reader_line(&old, &line, &len)) > 0) {
		if (!len || !fs_line_seq_rev(line, len, &seq, &lrev) || lrev <= prev || seq > s->st.seq)
			continue;
		prev = lrev;
		line[len] = '\n'; /* it is the '\n' that ended the line */
		err = fs_write_all(fd, line, len + 1);
		if (err)
			goto out;
	}
	err = rc < 0 ? rc : 0;
	if (!err && fdatasync(fd))
		err = -errno;
out:
	fs_reader_close(&old);
	free(text);
	return err;
}

/* Rewrites the log as snapshot + history after rev and renames it into place (under the lock).
 * force: rewrite even if rev is already the compact revision (drops lease-only records). */
static int fs_compact_locked(struct fs_store *s, int64_t rev, bool force, struct diag *d)
{
	int err, fd = -1, dfd = -1;

	if (rev > s->st.rev)
		return diag_fail_errno(d, -EINVAL, "store %s: cannot compact at revision %lld: current revision is %lld",
				       s->dir, (long long)rev, (long long)s->st.rev);
	if (rev < s->st.compact_rev || (rev == s->st.compact_rev && !force))
		return 0;
	fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	err = fd < 0 ? -errno : fs_compact_write(s, rev, fd);
	if (!err && rename(s->tmp_path, s->log_path))
		err = -errno;
	if (err) {
		diag_fail_errno(d, err, "store %s: compaction: %s", s->dir, strerror(-err));
		unlink(s->tmp_path);
		goto out;
	}
	dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
	err = fs_catch_up(s, d);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return err;
}

/* ---- opening ---------------------------------------------------------------------------- */

static int fs_mkdirs(const char *dir)
{
	char buf[4096], *p;

	if (strlen(dir) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, dir);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static int fs_parse_opts(struct fs_store *s, const char *opts, struct diag *d)
{
	char key[64];
	const char *p = opts, *eq, *amp;
	unsigned long long v;
	char *end;

	while (p && *p) {
		eq = strchr(p, '=');
		amp = strchr(p, '&');
		if (!amp)
			amp = p + strlen(p);
		if (!eq || eq > amp || (size_t)(eq - p) >= sizeof(key))
			return diag_fail(d, "store %s: bad option \"%.*s\" (want name=value)", s->dir,
					 (int)(amp - p), p);
		memcpy(key, p, (size_t)(eq - p));
		key[eq - p] = '\0';
		errno = 0;
		v = strtoull(eq + 1, &end, 10);
		if (errno || end != amp || end == eq + 1)
			return diag_fail(d, "store %s: option %s: \"%.*s\" is not a number", s->dir, key,
					 (int)(amp - eq - 1), eq + 1);
		if (!strcmp(key, "fsync"))
			s->fsync = v != 0;
		else if (!strcmp(key, "inotify"))
			s->inotify = v != 0;
		else if (!strcmp(key, "compact_bytes"))
			s->compact_bytes = v ? v : FS_COMPACT_BYTES;
		else if (!strcmp(key, "keep_revisions") && v <= INT64_MAX / 2)
			s->keep_revs = (int64_t)v;
		else if (!strcmp(key, "poll_ms") && v >= 1 && v <= 60000)
			s->poll_ms = (int)v;
		else
			return diag_fail(d, "store %s: unknown option or value \"%s=%llu\" (known: fsync, inotify, "
					 "compact_bytes, keep_revisions, poll_ms)", s->dir, key, v);
		p = *amp ? amp + 1 : amp;
	}
	return 0;
}

static char *fs_path(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

/* Creates an empty log (header only) if there is none; called under the lock. */
static int fs_init_log(struct fs_store *s, struct diag *d)
{
	json_t *hdr;
	char *text = NULL;
	size_t len;
	int fd = -1, err = 0;

	if (!access(s->log_path, F_OK))
		return 0;
	fs_state_reset(&s->st);
	hdr = fs_state_snapshot(&s->st, 0);
	if (hdr)
		text = json_dumps(hdr, JSON_COMPACT);
	json_decref(hdr);
	if (!text) {
		err = diag_fail_errno(d, -ENOMEM, "store %s: out of memory", s->dir);
		goto out;
	}
	len = strlen(text);
	text[len] = '\n';
	fd = open(s->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0 || fs_write_all(fd, text, len + 1) || fdatasync(fd) || rename(s->tmp_path, s->log_path))
		err = diag_fail_errno(d, -errno, "store %s: cannot create the log: %m", s->log_path);
out:
	if (fd >= 0)
		close(fd);
	free(text);
	return err;
}

static void fs_close(struct store *base)
{
	struct fs_store *s = (struct fs_store *)base;

	fs_reader_close(&s->r);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	fs_state_reset(&s->st);
	free(s->dir);
	free(s->log_path);
	free(s->lock_path);
	free(s->tmp_path);
	free(s);
}

int store_file_open(const char *dir, const char *opts, struct store **out, struct diag *d)
{
	struct fs_store *s;
	int err;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return diag_fail_errno(d, -ENOMEM, "store: out of memory");
	s->base.ops = &fs_ops;
	s->lock_fd = -1;
	s->r.fd = -1;
	s->fsync = true;
	s->inotify = true;
	s->compact_bytes = FS_COMPACT_BYTES;
	s->keep_revs = FS_KEEP_REVS;
	s->poll_ms = FS_POLL_MS;
	fs_state_reset(&s->st);
	s->dir = strdup(dir);
	if (s->dir) {
		s->log_path = fs_path(dir, "log");
		s->lock_path = fs_path(dir, "lock");
		s->tmp_path = fs_path(dir, "log.compact");
	}
	if (!s->dir || !s->log_path || !s->lock_path || !s->tmp_path) {
		err = diag_fail_errno(d, -ENOMEM, "store: out of memory");
		goto out;
	}
	err = fs_parse_opts(s, opts, d);
	if (err)
		goto out;
	err = fs_mkdirs(dir);
	if (err) {
		diag_fail_errno(d, err, "store %s: cannot create directory: %s", dir, strerror(-err));
		goto out;
	}
	s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (s->lock_fd < 0 && (errno == EACCES || errno == EROFS))
		s->lock_fd = open(s->lock_path, O_RDONLY | O_CLOEXEC);
	if (s->lock_fd < 0) {
		err = diag_fail_errno(d, -errno, "store %s: %m", s->lock_path);
		goto out;
	}
	if (access(s->log_path, F_OK)) {
		while (flock(s->lock_fd, LOCK_EX) && errno == EINTR)
			;
		err = fs_init_log(s, d);
		fs_unlock(s);
		if (err)
			goto out;
	}
	err = fs_load(s, d);
	if (!err)
		err = fs_sync(s, d);
out:
	if (err < 0) {
		fs_close(&s->base);
		return err;
	}
	*out = &s->base;
	return 0;
}

/* ---- operations ------------------------------------------------------------------------- */

static int fs_revision(struct store *base, int64_t *rev, struct diag *d)
{
	struct fs_store *s = (struct fs_store *)base;
	int err = fs_sync(s, d);

	if (err < 0)
		return err;
	*rev = s->st.rev;
	return 0;
}

static int fs_get(struct store *base, const char *key, struct store_kv *out, struct diag *d)
{
	struct fs_store *s = (struct fs_store *)base;
	struct fs_entry *e;
	int err = fs_sync(s, d);

	if (err < 0)
		return err;
	e = fs_state_find(&s->st, key);
	if (!e)
		return diag_fail_errno(d, -ENOENT, "store: %s: no such key", key);
	*out = e->kv;
	err = store_kv_fill(out, key, e->kv.value, e->kv.value_len);
	if (err) {
		memset(out, 0, sizeof(*out));
		return diag_fail_errno(d, err, "store: out of memory");
	}
	return 0;
}

static int fs_list(struct store *base, const char *prefix, struct store_list *out, struct diag *d)
{
	struct fs_store *s = (struct fs_store *)base;
	int err = fs_sync(s, d);

	if (err < 0)
		return err;
	err = fs_state_list(&s->st, prefix, out);
	if (err)
		return diag_fail_errno(d, err, "store: out of memory");
	return 0;
}

/* Checks the compares (under the lock); -ECANCELED names the first one that fails. */
static int fs_txn_check(struct fs_store *s, const struct store_cmp *cmps, size_t ncmps, struct diag *d)
{
	struct fs_entry *e;
	int64_t have;
	size_t i;

	for (i = 0; i < ncmps; i++) {
		e = fs_state_find(&s->st, cmps[i].key);
		have = e ? e->kv.mod_revision : 0;
		if (have != cmps[i].mod_revision)
			return diag_fail_errno(d, -ECANCELED,
					       "store: %s: compare failed: mod_revision is %lld, expected %lld%s",
					       cmps[i].key, (long long)have, (long long)cmps[i].mod_revision,
					       cmps[i].mod_revision ? "" : " (absent)");
	}
	return 0;
}

/* Encodes one txn op as a log op, or sets *op = NULL for a no-op (deleting an absent key). */
static int fs_txn_op(struct fs_store *s, const struct store_op *o, json_t **op, struct diag *d)
{
	struct fs_entry *e = fs_state_find(&s->st, o->key);
	int64_t newrev = s->st.rev + 1;

	*op = NULL;
	if (o->type == STORE_OP_DELETE) {
		if (!e)
			return 0;
		*op = json_pack("{s:s,s:s}", "op", "del", "key", o->key);
	} else {
		if (o->lease && !fs_state_lease(&s->st, o->lease))
			return diag_fail_errno(d, -ENOENT, "store: put %s: lease %lld not found (expired?)", o->key,
					       (long long)o->lease);
		*op = json_pack("{s:s,s:s,s:I,s:I}", "op", "put", "key", o->key, "create_rev",
				(json_int_t)(e ? e->kv.create_revision : newrev), "version",
				(json_int_t)(e ? e->kv.version + 1 : 1));
		if (*op && ((o->lease && json_object_set_new(*op, "lease", json_integer(o->lease))) ||
			    fs_json_set_value(*op, o->value, o->value_len))) {
			json_decref(*op);
			return diag_fail_errno(d, -ENOMEM, "store: out of memory");
		}
	}
	if (!*op)
		return diag_fail(d, "store: %s: key is not valid UTF-8", o->key);
	return 0;
}

static int fs_txn(struct store *base, const struct store_cmp *cmps, size_t ncmps, const struct store_op *ops,
		  size_t nops, int64_t *rev, size_t *changed, struct diag *d)
{
	struct fs_store *s = (struct fs_store *)base;
	json_t *jops = NULL, *op;
	size_t i;
	int err;

	*changed = 0;
	err = fs_lock(s, d);
	if (err)
		return err;
	err = fs_expire_locked(s, d);
	if (err >= 0)
		err = fs_txn_check(s, cmps, ncmps, d);
	if (err < 0)
		goto out;
	jops = json_array();
	if (!jops) {
		err = diag_fail_errno(d, -ENOMEM, "store: out of memory");
		goto out;
	}
	for (i = 0; i < nops; i++) {
		err = fs_txn_op(s, &ops[i], &op, d);
		if (err)
			goto out;
		if (!op)
			continue;
		if (json_array_append_new(jops, op)) {
			err = diag_fail_errno(d, -ENOMEM, "store: out of memory");
			goto out;
		}
		(*changed)++;
	}
	if (*changed) {
		err = fs_append(s, jops, true, d);
		if (!err)
			fs_maybe_compact_locked(s, NULL); /* best effort: the write is done */
	}
	if (rev && !err)
		*rev = s->st.rev;
out:
	fs_unlock(s);
	json_decref(jops);
	return err;
}

static int fs_compact(struct store *base, int64_t revision, struct diag *d)
{
	struct fs_store *s = (struct fs_store *)base;
	int err = fs_lock(s, d);

	if (err)
		return err;
	err = fs_compact_locked(s, revision, false, d);
	fs_unlock(s);
	return err;
}

/* Runs one lease op ("grant": *id gets the new id, "keepalive", "revoke") under the lock. */
static int fs_lease_op(struct fs_store *s, const char *type, int64_t *id, int64_t ttl, struct diag *d)
{
	json_t *ops = NULL;
	int err = fs_lock(s, d);

	if (err)
		return err;
	err = fs_expire_locked(s, d);
	if (err < 0)
		goto out;
	err = 0;
	if (!strcmp(type, "grant")) {
		*id = s->st.next_lease;
		ops = json_pack("[{s:s,s:I,s:I}]", "op", type, "lease", (json_int_t)*id, "ttl", (json_int_t)ttl);
	} else if (!fs_state_lease(&s->st, *id)) {
		err = diag_fail_errno(d, -ENOENT, "store: lease %lld not found (expired or revoked)",
				      (long long)*id);
		goto out;
	} else if (!strcmp(type, "revoke")) {
		err = fs_revoke_locked(s, *id, d);
		goto out;
	} else {
		ops = json_pack("[{s:s,s:I}]", "op", type, "lease", (json_int_t)*id);
	}
	if (!ops) {
		err = diag_fail_errno(d, -ENOMEM, "store: out of memory");
		goto out;
	}
	err = fs_append(s, ops, false, d);
	if (!err)
		fs_maybe_compact_locked(s, NULL); /* best effort: the write is done */
out:
	fs_unlock(s);
	json_decref(ops);
	return err;
}

static int fs_lease_grant(struct store *base, int64_t ttl_seconds, int64_t *lease, struct diag *d)
{
	return fs_lease_op((struct fs_store *)base, "grant", lease, ttl_seconds, d);
}

static int fs_lease_keepalive(struct store *base, int64_t lease, struct diag *d)
{
	return fs_lease_op((struct fs_store *)base, "keepalive", &lease, 0, d);
}

static int fs_lease_revoke(struct store *base, int64_t lease, struct diag *d)
{
	return fs_lease_op((struct fs_store *)base, "revoke", &lease, 0, d);
}

/* ---- watches ---------------------------------------------------------------------------- */

/* Arms the timer behind store_watch_fd(): the next lease deadline or the poll period. */
static void fs_watch_arm(struct fs_watch *w)
{
	struct itimerspec its = { 0 };
	int64_t ms = w->poll_ms, left, dl = fs_state_next_deadline(&w->s->st);

	if (dl != INT64_MAX) {
		left = dl - store_now_ms();
		if (left < ms)
			ms = left < 1 ? 1 : left;
	}
	its.it_value.tv_sec = ms / 1000;
	its.it_value.tv_nsec = (ms % 1000) * 1000000;
	its.it_interval.tv_sec = w->poll_ms / 1000;
	its.it_interval.tv_nsec = (w->poll_ms % 1000) * 1000000L;
	timerfd_settime(w->tfd, 0, &its, NULL);
}

static void fs_watch_drain(struct fs_watch *w)
{
	char buf[4096] __attribute__((aligned(8)));
	int i;

	for (i = 0; w->infd >= 0 && i < 1024; i++)
		if (read(w->infd, buf, sizeof(buf)) <= 0)
			break;
	if (read(w->tfd, buf, sizeof(uint64_t)) < 0)
		buf[0] = 0;
}

/* (Re)opens the current log for the watch, checking its history still covers w->rev. */
static int fs_watch_switch(struct fs_watch *w, struct diag *d)
{
	struct fs_reader r = { .fd = -1 };
	int64_t compact_rev;
	json_t *hdr = NULL;
	char *line;
	size_t len;
	int err;

	err = fs_reader_open(&r, w->s->log_path, O_RDONLY);
	if (err) {
		diag_fail_errno(d, err, "store %s: open: %s", w->s->log_path, strerror(-err));
		goto out;
	}
	err = fs_reader_line(&r, &line, &len);
	if (err <= 0 || !(hdr = fs_parse(line, len))) {
		err = diag_fail_errno(d, err < 0 ? err : -EIO, "store %s: first line is not a snapshot header",
				      w->s->log_path);
		goto out;
	}
	err = 0;
	compact_rev = fs_json_int(hdr, "compact_rev", 0);
	if (w->rev < compact_rev) {
		w->stale = true;
		err = diag_fail_errno(d, -ESTALE,
				      "store %s: watch %s after revision %lld: history up to revision %lld was "
				      "compacted; list again and watch from the list's revision",
				      w->s->dir, w->prefix, (long long)w->rev, (long long)compact_rev);
		goto out;
	}
	fs_reader_close(&w->r);
	w->r = r;
	r.fd = -1;
	r.buf = NULL;
out:
	json_decref(hdr);
	fs_reader_close(&r);
	return err;
}

static int fs_watch_push(struct store_event **evs, size_t *n, size_t *cap, enum store_event_type type,
			 int64_t rev, json_t *op, const char *key)
{
	struct store_event *ne, *ev;
	char *value = NULL;
	size_t len = 0;
	int err;

	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;

		ne = realloc(*evs, nc * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		*evs = ne;
		*cap = nc;
	}
	ev = &(*evs)[*n];
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->revision = rev;
	if (type == STORE_EVENT_PUT) {
		err = fs_json_get_value(op, &value, &len);
		if (err)
			return err == -ENOMEM ? err : 0;
		err = store_kv_fill(&ev->kv, key, value, len);
		free(value);
		if (err)
			return err;
		ev->kv.create_revision = fs_json_int(op, "create_rev", rev);
		ev->kv.version = fs_json_int(op, "version", 1);
		ev->kv.lease = fs_json_int(op, "lease", 0);
	} else {
		err = store_kv_fill(&ev->kv, key, "", 0);
		if (err)
			return err;
	}
	ev->kv.mod_revision = rev;
	(*n)++;
	return 0;
}

/* Turns one log line into the events it holds for this watch. */
static int fs_watch_line(struct fs_watch *w, const char *line, size_t len, struct store_event **evs,
			 size_t *n, size_t *cap)
{
	json_t *rec = fs_parse(line, len), *ops, *op;
	const char *type, *key;
	int64_t rev;
	size_t i;
	int err = 0;

	if (!rec)
		return 0;
	rev = fs_json_int(rec, "rev", -1);
	ops = json_object_get(rec, "ops");
	if (rev <= w->rev || !json_is_array(ops))
		goto out;
	w->rev = rev;
	json_array_foreach(ops, i, op) {
		type = json_string_value(json_object_get(op, "op"));
		key = json_string_value(json_object_get(op, "key"));
		if (!type || !key || strncmp(key, w->prefix, w->plen))
			continue;
		if (!strcmp(type, "put"))
			err = fs_watch_push(evs, n, cap, STORE_EVENT_PUT, rev, op, key);
		else if (!strcmp(type, "del"))
			err = fs_watch_push(evs, n, cap, STORE_EVENT_DELETE, rev, op, key);
		if (err)
			goto out;
	}
out:
	json_decref(rec);
	return err;
}

static int fs_watch_lines(struct fs_watch *w, struct store_event **evs, size_t *n, size_t *cap,
			  struct diag *d)
{
	char *line;
	size_t len;
	int rc = 0, err;

	while (*n < FS_WATCH_BATCH && (rc = fs_reader_line(&w->r, &line, &len)) > 0) {
		err = fs_watch_line(w, line, len, evs, n, cap);
		if (err)
			return diag_fail_errno(d, err, "store: watch: out of memory");
	}
	if (rc < 0)
		return diag_fail_errno(d, rc, "store %s: read: %s", w->s->log_path, strerror(-rc));
	return 0;
}

/* Reads whatever the log has for the watch, following compactions; at most one batch. */
static int fs_watch_read(struct fs_watch *w, struct store_event **evs, size_t *n, struct diag *d)
{
	size_t cap = 0;
	int err, i;

	for (i = 0; i < 100; i++) {
		err = fs_watch_lines(w, evs, n, &cap, d);
		if (err || *n >= FS_WATCH_BATCH)
			return err;
		err = fs_reader_replaced(&w->r, w->s->log_path);
		if (err <= 0)
			return err < 0 ? diag_fail_errno(d, err, "store %s: %s", w->s->log_path, strerror(-err)) : 0;
		/* Drain the old file (all of it was written before the rename), then switch. */
		err = fs_watch_lines(w, evs, n, &cap, d);
		if (err || *n >= FS_WATCH_BATCH)
			return err;
		err = fs_watch_switch(w, d);
		if (err)
			return err;
	}
	return 0;
}

static int fs_watch_next(struct store_watch *base, int timeout_ms, struct store_event **evs, size_t *n,
			 struct diag *d)
{
	struct fs_watch *w = (struct fs_watch *)base;
	int64_t start = store_mono_ms(), elapsed, wait, dl;
	struct epoll_event ev[4];
	int err = 0;

	if (w->stale)
		return diag_fail_errno(d, -ESTALE, "store %s: watch %s is stale (history compacted); list again",
				       w->s->dir, w->prefix);
	for (;;) {
		fs_watch_drain(w);
		err = fs_watch_read(w, evs, n, d);
		if (err || *n)
			break;
		err = fs_sync(w->s, d); /* expires due leases: their DELETEs show up on the next read */
		if (err < 0)
			break;
		if (err > 0)
			continue;
		elapsed = store_mono_ms() - start;
		if (timeout_ms >= 0 && elapsed >= timeout_ms)
			break;
		wait = w->poll_ms;
		if (timeout_ms >= 0 && timeout_ms - elapsed < wait)
			wait = timeout_ms - elapsed;
		dl = fs_state_next_deadline(&w->s->st);
		if (dl != INT64_MAX && dl - store_now_ms() < wait)
			wait = dl - store_now_ms() < 0 ? 0 : dl - store_now_ms();
		if (epoll_wait(w->epfd, ev, 4, (int)wait) < 0 && errno != EINTR) {
			err = diag_fail_errno(d, -errno, "store: watch: epoll_wait: %m");
			break;
		}
	}
	fs_watch_arm(w);
	if (err < 0) {
		store_events_free(*evs, *n);
		*evs = NULL;
		*n = 0;
		return err;
	}
	return 0;
}

static int fs_watch_fd(const struct store_watch *base)
{
	return ((const struct fs_watch *)base)->epfd;
}

static void fs_watch_close(struct store_watch *base)
{
	struct fs_watch *w = (struct fs_watch *)base;

	fs_reader_close(&w->r);
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->infd >= 0)
		close(w->infd);
	if (w->tfd >= 0)
		close(w->tfd);
	free(w->prefix);
	free(w);
}

static int fs_watch_open(struct store *base, const char *prefix, int64_t after_rev, struct store_watch **out,
			 struct diag *d)
{
	struct fs_store *s = (struct fs_store *)base;
	struct epoll_event ev = { .events = EPOLLIN };
	struct fs_watch *w;
	int err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return diag_fail_errno(d, -ENOMEM, "store: out of memory");
	w->base.ops = &fs_ops;
	w->base.s = base;
	w->s = s;
	w->r.fd = -1;
	w->epfd = w->infd = w->tfd = -1;
	w->rev = after_rev;
	w->prefix = strdup(prefix);
	if (!w->prefix) {
		err = diag_fail_errno(d, -ENOMEM, "store: out of memory");
		goto out;
	}
	w->plen = strlen(prefix);
	err = fs_watch_switch(w, d);
	if (err)
		goto out;
	if (s->inotify) {
		w->infd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->infd >= 0 && inotify_add_watch(w->infd, s->dir, IN_MODIFY | IN_MOVED_TO | IN_CREATE) < 0) {
			close(w->infd);
			w->infd = -1;
		}
	}
	w->poll_ms = w->infd >= 0 ? FS_SAFETY_POLL_MS : s->poll_ms;
	w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->tfd < 0 || w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &ev) ||
	    (w->infd >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->infd, &ev))) {
		err = diag_fail_errno(d, -errno, "store: watch: %m");
		goto out;
	}
	fs_watch_arm(w);
out:
	if (err) {
		fs_watch_close(&w->base);
		return err;
	}
	*out = &w->base;
	return 0;
}

static const struct store_backend_ops fs_ops = {
	.name = "file",
	.close = fs_close,
	.revision = fs_revision,
	.get = fs_get,
	.list = fs_list,
	.txn = fs_txn,
	.compact = fs_compact,
	.lease_grant = fs_lease_grant,
	.lease_keepalive = fs_lease_keepalive,
	.lease_revoke = fs_lease_revoke,
	.watch_open = fs_watch_open,
	.watch_next = fs_watch_next,
	.watch_fd = fs_watch_fd,
	.watch_close = fs_watch_close,
};
