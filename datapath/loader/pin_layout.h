/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upgrade safety for pinned maps (docs/ARCHITECTURE.md, "Pinning and upgrades").
 *
 * A restarted agent — possibly a new version — finds the node's maps pinned by its
 * predecessor. Before the BPF object is loaded, each pinned `ciliate_*` map is compared with
 * the object's definition: map type, key and value sizes, max_entries, flags, and the layout
 * of its key and value types as the kernel's BTF of the pinned map describes them (member
 * names, offsets, types), plus the meaning recorded in the pinned ABI record
 * (`ciliate_abi`: CILIATE_ABI_VERSION of the agent that pinned them). Then per map:
 *   - identical: reused (the agent's state, conntrack included, carries over);
 *   - same key, value grown by appended members, or only max_entries changed: migrated
 *     (entries copied into the new map, appended members zeroed);
 *   - anything else (or no BTF to prove the layout): replaced, never silently reused; the
 *     agent rewrites derived maps from the store, and the log says which state was lost.
 * Every decision is a line in the notes the agent logs.
 */
#ifndef CILIATE_PIN_LAYOUT_H
#define CILIATE_PIN_LAYOUT_H

#include <bpf/libbpf.h>

#include "common/diag.h"

#define PIN_ABI_MAP "ciliate_abi" /* array[1] of u32: the ABI version that pinned the maps */

struct pin_upgrade; /* pending migrations and the notes */

/* Before obj is loaded with its maps' pin paths under pin_dir: decides for each pinned map,
 * unpins those to migrate or replace (keeping an fd on the ones to migrate). */
int pin_layout_check(struct bpf_object *obj, const char *pin_dir, struct pin_upgrade **out,
		     struct diag *d);

/* After a successful load: copies the kept entries into the new maps and writes the ABI
 * record. */
int pin_layout_finish(struct pin_upgrade *u, struct bpf_object *obj, const char *pin_dir,
		      struct diag *d);

/* The decisions, one per line ("" when nothing was pinned). Owned by u. */
const char *pin_layout_notes(const struct pin_upgrade *u);

void pin_layout_free(struct pin_upgrade *u);

/* The canonical layout of BTF type id (typedefs and qualifiers resolved; struct members by
 * name, bit offset and type), as a malloc'd string; NULL without memory. For tests. */
char *pin_layout_type_string(const struct btf *btf, __u32 id);

#endif
