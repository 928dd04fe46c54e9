/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upgrade safety for pinned maps: reuse, migrate or replace each map an earlier agent pinned
 * (see pin_layout.h for the rules). The layout proof is the kernel's BTF of the pinned map
 * against the object's BTF, compared as canonical strings (typedef names and qualifiers do
 * not matter; member names, bit offsets and types do).
 */
#include "pin_layout.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ciliate/abi.h"

#define CANON_DEPTH_MAX 16

/* Meaning changes that keep a map's layout: a map pinned under an older ABI is replaced. */
static const struct {
	const char *map;
	unsigned int abi; /* the ABI version that changed its meaning */
	const char *what;
} meaning_changes[] = {
	{ "ciliate_ct", 2, "direction-normalised conntrack keys" },
};

/* Maps whose entries the agent cannot rewrite from the store: losing them costs state. */
static const char *const stateful_maps[] = { "ciliate_ct", "ciliate_nat", "ciliate_lb_affinity",
					     "ciliate_frag", "ciliate_metrics", "ciliate_events_lost" };

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

struct pending {
	char name[64];
	int old_fd;
	__u32 old_key_size, old_value_size, old_max, type;
};

struct pin_upgrade {
	struct pending *v;
	size_t n;
	struct sbuf notes;
	unsigned int reused, migrated, replaced;
	int pinned_abi; /* -1: no record */
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static const struct btf_type *skip_mods(const struct btf *btf, __u32 *id)
{
	const struct btf_type *t = btf__type_by_id(btf, *id);

	for (int i = 0; t && i < CANON_DEPTH_MAX; i++) {
		switch (btf_kind(t)) {
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_CONST:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_RESTRICT:
		case BTF_KIND_TYPE_TAG:
			*id = t->type;
			t = btf__type_by_id(btf, *id);
			continue;
		default:
			return t;
		}
	}
	return t;
}

static void canon(const struct btf *btf, __u32 id, struct sbuf *o, int depth);

static void canon_member(const struct btf *btf, const struct btf_type *t, int i, struct sbuf *o,
			 int depth)
{
	const struct btf_member *m = btf_members(t) + i;
	__u32 bits = btf_member_bitfield_size(t, i);

	sb_printf(o, "%s@%u", btf__name_by_offset(btf, m->name_off) ?: "", btf_member_bit_offset(t, i));
	if (bits)
		sb_printf(o, ":%u", bits);
	sb_printf(o, "=");
	canon(btf, m->type, o, depth + 1);
	sb_printf(o, ";");
}

static void canon(const struct btf *btf, __u32 id, struct sbuf *o, int depth)
{
	const struct btf_type *t;

	if (depth > CANON_DEPTH_MAX) {
		sb_printf(o, "...");
		return;
	}
	t = id ? skip_mods(btf, &id) : NULL;
	if (!t) {
		sb_printf(o, "v");
		return;
	}
	switch (btf_kind(t)) {
	case BTF_KIND_INT: {
		__u32 enc = btf_int_encoding(t);

		sb_printf(o, "i%u%s", t->size, enc & BTF_INT_SIGNED ? "s" : "");
		if (btf_int_bits(t) != t->size * 8 || btf_int_offset(t))
			sb_printf(o, ":%u+%u", btf_int_bits(t), btf_int_offset(t));
		return;
	}
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
		sb_printf(o, "e%u", t->size);
		return;
	case BTF_KIND_PTR:
		sb_printf(o, "p");
		return;
	case BTF_KIND_ARRAY:
		sb_printf(o, "a%u[", btf_array(t)->nelems);
		canon(btf, btf_array(t)->type, o, depth + 1);
		sb_printf(o, "]");
		return;
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		sb_printf(o, "%c%u{", btf_kind(t) == BTF_KIND_STRUCT ? 's' : 'u', t->size);
		for (int i = 0; i < btf_vlen(t); i++)
			canon_member(btf, t, i, o, depth);
		sb_printf(o, "}");
		return;
	default:
		sb_printf(o, "k%u/%u", btf_kind(t), t->size);
	}
}

char *pin_layout_type_string(const struct btf *btf, __u32 id)
{
	struct sbuf o = { 0 };

	canon(btf, id, &o, 0);
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	return o.p ? o.p : strdup("");
}

/* True if new_id is old_id with members appended: a struct whose first members are old's
 * (name, offset, type) and whose size is at least old's. */
static bool appended(const struct btf *ob, __u32 oid, const struct btf *nb, __u32 nid)
{
	const struct btf_type *ot = skip_mods(ob, &oid), *nt = skip_mods(nb, &nid);
	bool ok = true;

	if (!ot || !nt || btf_kind(ot) != BTF_KIND_STRUCT || btf_kind(nt) != BTF_KIND_STRUCT ||
	    btf_vlen(ot) > btf_vlen(nt) || ot->size > nt->size)
		return false;
	for (int i = 0; ok && i < btf_vlen(ot); i++) {
		struct sbuf a = { 0 }, b = { 0 };

		canon_member(ob, ot, i, &a, 0);
		canon_member(nb, nt, i, &b, 0);
		ok = !a.oom && !b.oom && a.p && b.p && !strcmp(a.p, b.p);
		free(a.p);
		free(b.p);
	}
	return ok;
}

static bool same_type(const struct btf *ob, __u32 oid, const struct btf *nb, __u32 nid)
{
	char *a = pin_layout_type_string(ob, oid), *b = pin_layout_type_string(nb, nid);
	bool same = a && b && !strcmp(a, b);

	free(a);
	free(b);
	return same;
}

static bool copyable(__u32 type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_LPM_TRIE:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return true;
	default:
		return false;
	}
}

static bool percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static bool is_stateful(const char *name)
{
	for (size_t i = 0; i < sizeof(stateful_maps) / sizeof(stateful_maps[0]); i++)
		if (!strcmp(name, stateful_maps[i]))
			return true;
	return false;
}

static int read_abi(const char *pin_dir)
{
	char path[PATH_MAX];
	__u32 key = 0, v = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, PIN_ABI_MAP);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -1;
	if (bpf_map_lookup_elem(fd, &key, &v))
		v = 0;
	close(fd);
	return (int)v;
}

enum verdict { V_REUSE, V_MIGRATE, V_REPLACE };

/* Decides for one pinned map; why gets the reason of a migration or replacement. */
static enum verdict decide(struct bpf_map *map, const struct btf *nbtf, const struct bpf_map_info *info,
			   const struct btf *obtf, int pinned_abi, char *why, size_t size)
{
	const char *name = bpf_map__name(map);
	__u32 nk = bpf_map__btf_key_type_id(map), nv = bpf_map__btf_value_type_id(map);
	/* the kernel keeps no key/value BTF for maps of maps (their values are map fds) */
	bool of_maps = info->type == BPF_MAP_TYPE_HASH_OF_MAPS || info->type == BPF_MAP_TYPE_ARRAY_OF_MAPS;
	bool new_btf = !of_maps && nbtf && (nk || nv);
	bool old_btf = obtf && (info->btf_key_type_id || info->btf_value_type_id);
	bool grown = false;
	size_t i;

	if (pinned_abi > CILIATE_ABI_VERSION) {
		snprintf(why, size, "pinned by a newer agent (ABI %d, this one %d)", pinned_abi,
			 CILIATE_ABI_VERSION);
		return V_REPLACE;
	}
	for (i = 0; i < sizeof(meaning_changes) / sizeof(meaning_changes[0]); i++)
		if (!strcmp(name, meaning_changes[i].map) && pinned_abi >= 0 &&
		    (unsigned int)pinned_abi < meaning_changes[i].abi) {
			snprintf(why, size, "its meaning changed in ABI %u (%s); pinned under ABI %d",
				 meaning_changes[i].abi, meaning_changes[i].what, pinned_abi);
			return V_REPLACE;
		}
	if (info->type != bpf_map__type(map)) {
		snprintf(why, size, "map type %u, now %u", info->type, bpf_map__type(map));
		return V_REPLACE;
	}
	if (info->key_size != bpf_map__key_size(map)) {
		snprintf(why, size, "key %u bytes, now %u", info->key_size, bpf_map__key_size(map));
		return V_REPLACE;
	}
	if (new_btf && !old_btf) {
		snprintf(why, size, "the pinned map carries no BTF, so its layout cannot be proven");
		return V_REPLACE;
	}
	if (new_btf) {
		if (!same_type(obtf, info->btf_key_type_id, nbtf, nk)) {
			snprintf(why, size, "key layout differs");
			return V_REPLACE;
		}
		if (!same_type(obtf, info->btf_value_type_id, nbtf, nv)) {
			if (!appended(obtf, info->btf_value_type_id, nbtf, nv) || !copyable(info->type)) {
				snprintf(why, size, "value layout differs (%u bytes, now %u)", info->value_size,
					 bpf_map__value_size(map));
				return V_REPLACE;
			}
			grown = true;
		}
	} else if (info->value_size != bpf_map__value_size(map)) {
		snprintf(why, size, "value %u bytes, now %u", info->value_size, bpf_map__value_size(map));
		return V_REPLACE;
	}
	if (grown) {
		snprintf(why, size, "value members appended (%u -> %u bytes)", info->value_size,
			 bpf_map__value_size(map));
		return V_MIGRATE;
	}
	if (info->max_entries != bpf_map__max_entries(map) || info->map_flags != bpf_map__map_flags(map)) {
		if (!copyable(info->type)) {
			snprintf(why, size, "max_entries %u, now %u (flags %#x, now %#x)", info->max_entries,
				 bpf_map__max_entries(map), info->map_flags, bpf_map__map_flags(map));
			return V_REPLACE;
		}
		snprintf(why, size, "max_entries %u -> %u, flags %#x -> %#x", info->max_entries,
			 bpf_map__max_entries(map), info->map_flags, bpf_map__map_flags(map));
		return V_MIGRATE;
	}
	return V_REUSE;
}

int pin_layout_check(struct bpf_object *obj, const char *pin_dir, struct pin_upgrade **out,
		     struct diag *d)
{
	struct btf *nbtf = bpf_object__btf(obj);
	struct pin_upgrade *u = calloc(1, sizeof(*u));
	struct bpf_map *map;
	int err = 0;

	*out = u;
	if (!u)
		return diag_fail_errno(d, -ENOMEM, "out of memory");
	u->pinned_abi = read_abi(pin_dir);
	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		char path[PATH_MAX], why[256] = "";
		struct btf *obtf = NULL;
		enum verdict v;
		int fd;

		if (strncmp(name, "ciliate_", 8))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
		fd = bpf_obj_get(path);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* a new map (or a first start) */
			return diag_fail_errno(d, -errno, "%s: %s", path, strerror(errno));
		}
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			err = diag_fail_errno(d, -errno, "%s: map info: %s", path, strerror(errno));
			close(fd);
			return err;
		}
		if (info.btf_id)
			obtf = btf__load_from_kernel_by_id(info.btf_id);
		v = decide(map, nbtf, &info, obtf, u->pinned_abi < 0 ? CILIATE_ABI_VERSION : u->pinned_abi,
			   why, sizeof(why));
		btf__free(obtf);
		if (v == V_REUSE) {
			u->reused++;
			close(fd);
			continue;
		}
		if (unlink(path) < 0) {
			err = diag_fail_errno(d, -errno, "unpinning %s (%s): %s", path, why, strerror(errno));
			close(fd);
			return err;
		}
		if (v == V_REPLACE) {
			u->replaced++;
			sb_printf(&u->notes, "pinned map %s replaced: %s; %s\n", name, why,
				  is_stateful(name) ? "its entries (state the store cannot restore) are lost"
						    : "the agent rewrites its entries from the store");
			close(fd);
			continue;
		}
		struct pending *nv = realloc(u->v, (u->n + 1) * sizeof(*nv));

		if (!nv) {
			close(fd);
			return diag_fail_errno(d, -ENOMEM, "out of memory");
		}
		u->v = nv;
		nv = &u->v[u->n++];
		memset(nv, 0, sizeof(*nv));
		snprintf(nv->name, sizeof(nv->name), "%s", name);
		nv->old_fd = fd;
		nv->old_key_size = info.key_size;
		nv->old_value_size = info.value_size;
		nv->old_max = info.max_entries;
		nv->type = info.type;
		sb_printf(&u->notes, "pinned map %s migrates: %s\n", name, why);
	}
	return 0;
}

/* Copies every entry of p's old map into new_fd; appended value bytes are zero. */
static int migrate(struct pending *p, int new_fd, __u32 new_value_size, unsigned long *copied,
		   unsigned long *dropped)
{
	int ncpu = percpu(p->type) ? libbpf_num_possible_cpus() : 1;
	size_t ostride = percpu(p->type) ? ((p->old_value_size + 7) & ~7u) : p->old_value_size;
	size_t nstride = percpu(p->type) ? ((new_value_size + 7) & ~7u) : new_value_size;
	void *key = calloc(1, p->old_key_size), *next = calloc(1, p->old_key_size);
	char *ov = calloc((size_t)ncpu, ostride), *nv = calloc((size_t)ncpu, nstride);
	bool array = p->type == BPF_MAP_TYPE_ARRAY || p->type == BPF_MAP_TYPE_PERCPU_ARRAY;
	void *prev = NULL;
	int err = 0;

	if (ncpu < 1 || !key || !next || !ov || !nv) {
		err = -ENOMEM;
		goto out;
	}
	for (__u64 i = 0; i <= p->old_max; i++) { /* bounded by the old map's size */
		if (array) {
			if (i >= p->old_max)
				break;
			*(__u32 *)next = (__u32)i;
		} else if (bpf_map_get_next_key(p->old_fd, prev, next)) {
			break;
		}
		prev = key;
		memcpy(key, next, p->old_key_size);
		if (bpf_map_lookup_elem(p->old_fd, key, ov))
			continue; /* gone meanwhile (LRU) */
		memset(nv, 0, (size_t)ncpu * nstride);
		for (int c = 0; c < ncpu; c++)
			memcpy(nv + (size_t)c * nstride, ov + (size_t)c * ostride,
			       p->old_value_size < new_value_size ? p->old_value_size : new_value_size);
		if (bpf_map_update_elem(new_fd, key, nv, BPF_ANY))
			(*dropped)++;
		else
			(*copied)++;
	}
out:
	free(key);
	free(next);
	free(ov);
	free(nv);
	return err;
}

static int write_abi(const char *pin_dir, struct diag *d)
{
	char path[PATH_MAX];
	__u32 key = 0, v = CILIATE_ABI_VERSION;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, PIN_ABI_MAP);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, PIN_ABI_MAP, sizeof(key), sizeof(v), 1, NULL);
		if (fd < 0)
			return diag_fail_errno(d, -errno, "creating %s: %s", PIN_ABI_MAP, strerror(errno));
		if (bpf_obj_pin(fd, path)) {
			err = diag_fail_errno(d, -errno, "pinning %s: %s", path, strerror(errno));
			close(fd);
			return err;
		}
	}
	if (bpf_map_update_elem(fd, &key, &v, BPF_ANY))
		err = diag_fail_errno(d, -errno, "writing %s: %s", path, strerror(errno));
	close(fd);
	return err;
}

int pin_layout_finish(struct pin_upgrade *u, struct bpf_object *obj, const char *pin_dir,
		      struct diag *d)
{
	for (size_t i = 0; i < u->n; i++) {
		struct pending *p = &u->v[i];
		struct bpf_map *map = bpf_object__find_map_by_name(obj, p->name);
		unsigned long copied = 0, dropped = 0;
		int err;

		if (!map)
			continue;
		err = migrate(p, bpf_map__fd(map), bpf_map__value_size(map), &copied, &dropped);
		if (err)
			return diag_fail_errno(d, err, "migrating %s: %s", p->name, strerror(-err));
		u->migrated++;
		sb_printf(&u->notes, "pinned map %s migrated: %lu entries copied%s", p->name, copied,
			  dropped ? "" : "\n");
		if (dropped)
			sb_printf(&u->notes, ", %lu did not fit%s\n", dropped,
				  is_stateful(p->name) ? " (their state is lost)" : "");
		close(p->old_fd);
		p->old_fd = -1;
	}
	if (u->reused || u->migrated || u->replaced)
		sb_printf(&u->notes, "pinned maps of ABI %d: %u reused, %u migrated, %u replaced (this agent: ABI %d)\n",
			  u->pinned_abi < 0 ? CILIATE_ABI_VERSION : u->pinned_abi, u->reused, u->migrated,
			  u->replaced, CILIATE_ABI_VERSION);
	return write_abi(pin_dir, d);
}

const char *pin_layout_notes(const struct pin_upgrade *u)
{
	return u && u->notes.p && !u->notes.oom ? u->notes.p : "";
}

void pin_layout_free(struct pin_upgrade *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++)
		if (u->v[i].old_fd >= 0)
			close(u->v[i].old_fd);
	free(u->v);
	free(u->notes.p);
	free(u);
}
