/* SPDX-License-Identifier: Apache-2.0 */
#include "datapath.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ciliate/abi.h"
#include "pin_layout.h"
#include "lxc.skel.h"
#include "overlay.skel.h"
#include "netdev.skel.h"
#include "xdp.skel.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

struct datapath {
	struct lxc *lxc;
	struct overlay *overlay;
	struct netdev *netdev;
	struct xdp *xdp;
	char pin_dir[PATH_MAX];
	struct pin_upgrade *upgrade; /* what was found pinned, and what became of it */
};

int bpffs_ensure_mounted(struct diag *d)
{
	struct statfs st;

	if (statfs(CILIATE_BPFFS, &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", CILIATE_BPFFS, "bpf", 0, "mode=0700") < 0)
		return diag_fail_errno(d, -errno, "mounting bpffs at %s: %s", CILIATE_BPFFS,
				       strerror(errno));
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int valid_node_name(const char *node)
{
	if (!*node || strlen(node) > 63 || node[0] == '.')
		return 0;
	for (const char *c = node; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
		      *c == '.' || *c == '_' || (*c >= 'A' && *c <= 'Z')))
			return 0;
	return 1;
}

/* Another object (overlay, netdev) uses every "ciliate_" map of the lxc object (already
 * loaded, pinned or not) instead of its own. */
static int share_maps(struct datapath *dp, struct bpf_object *obj, const char *what,
		      struct diag *d)
{
	struct bpf_map *map, *mine;
	int err;

	bpf_object__for_each_map(map, obj) {
		if (strncmp(bpf_map__name(map), "ciliate_", 8))
			continue;
		mine = bpf_object__find_map_by_name(dp->lxc->obj, bpf_map__name(map));
		if (!mine)
			return diag_fail_errno(d, -ENOENT, "%s map %s has no lxc counterpart", what,
					       bpf_map__name(map));
		err = bpf_map__reuse_fd(map, bpf_map__fd(mine));
		if (err)
			return diag_fail_errno(d, err, "sharing map %s with the %s programs: %s",
					       bpf_map__name(map), what, strerror(-err));
	}
	return 0;
}

static int overlay_load(struct datapath *dp, const struct datapath_opts *opts, struct diag *d)
{
	int err;

	dp->overlay = overlay__open();
	if (!dp->overlay)
		return diag_fail_errno(d, -errno, "opening overlay BPF object: %s", strerror(errno));
	dp->overlay->rodata->cfg_enable_ipv6 = opts->enable_ipv6;
	dp->overlay->rodata->cfg_trace_all = opts->trace_all;
	dp->overlay->rodata->cfg_no_events = opts->no_events;
	dp->overlay->rodata->cfg_every_drop = opts->every_drop;
	err = share_maps(dp, dp->overlay->obj, "overlay", d);
	if (err)
		return err;
	err = overlay__load(dp->overlay);
	if (err)
		return diag_fail_errno(d, err, "loading overlay BPF programs: %s", strerror(-err));
	return 0;
}

static int netdev_load(struct datapath *dp, const struct datapath_opts *opts, struct diag *d)
{
	int err;

	dp->netdev = netdev__open();
	if (!dp->netdev)
		return diag_fail_errno(d, -errno, "opening netdev BPF object: %s", strerror(errno));
	dp->netdev->rodata->cfg_enable_ipv6 = opts->enable_ipv6;
	dp->netdev->rodata->cfg_trace_all = opts->trace_all;
	dp->netdev->rodata->cfg_no_events = opts->no_events;
	dp->netdev->rodata->cfg_every_drop = opts->every_drop;
	if (opts->nat_port_min || opts->nat_port_max) {
		if (!opts->nat_port_min || opts->nat_port_min > opts->nat_port_max)
			return diag_fail(d, "NAT port range %u-%u is empty", opts->nat_port_min,
					 opts->nat_port_max);
		dp->netdev->rodata->cfg_nat_port_min = opts->nat_port_min;
		dp->netdev->rodata->cfg_nat_port_max = opts->nat_port_max;
	}
	err = share_maps(dp, dp->netdev->obj, "netdev", d);
	if (err)
		return err;
	err = netdev__load(dp->netdev);
	if (err)
		return diag_fail_errno(d, err, "loading netdev BPF programs: %s", strerror(-err));
	return 0;
}

/* The fabric device's XDP program (docs/XDP.md): prefilter and NodePort acceleration. */
static int xdp_load(struct datapath *dp, const struct datapath_opts *opts, struct diag *d)
{
	int err;

	dp->xdp = xdp__open();
	if (!dp->xdp)
		return diag_fail_errno(d, -errno, "opening xdp BPF object: %s", strerror(errno));
	dp->xdp->rodata->cfg_enable_ipv6 = opts->enable_ipv6;
	dp->xdp->rodata->cfg_trace_all = opts->trace_all;
	dp->xdp->rodata->cfg_no_events = opts->no_events;
	dp->xdp->rodata->cfg_every_drop = opts->every_drop;
	if (opts->nat_port_min || opts->nat_port_max) {
		dp->xdp->rodata->cfg_nat_port_min = opts->nat_port_min;
		dp->xdp->rodata->cfg_nat_port_max = opts->nat_port_max;
	}
	err = share_maps(dp, dp->xdp->obj, "xdp", d);
	if (err)
		return err;
	err = xdp__load(dp->xdp);
	if (err)
		return diag_fail_errno(d, err, "loading xdp BPF program: %s", strerror(-err));
	return 0;
}

int datapath_open(const struct datapath_opts *opts, struct datapath **out, struct diag *d)
{
	struct datapath *dp;
	struct bpf_map *map;
	int err;

	*out = NULL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return diag_fail_errno(d, -ENOMEM, "out of memory");

	if (opts->node) {
		if (!valid_node_name(opts->node)) {
			err = diag_fail(d, "invalid node name \"%s\"", opts->node);
			goto out;
		}
		err = bpffs_ensure_mounted(d);
		if (err)
			goto out;
		snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s/%s", CILIATE_PIN_ROOT, opts->node);
		err = mkdir_p(dp->pin_dir);
		if (err) {
			diag_fail_errno(d, err, "creating %s: %s", dp->pin_dir, strerror(-err));
			goto out;
		}
	}

	dp->lxc = lxc__open();
	if (!dp->lxc) {
		err = diag_fail_errno(d, -errno, "opening lxc BPF object: %s", strerror(errno));
		goto out;
	}
	dp->lxc->rodata->cfg_enable_ipv6 = opts->enable_ipv6;
	dp->lxc->rodata->cfg_trace_all = opts->trace_all;
	dp->lxc->rodata->cfg_no_events = opts->no_events;
	dp->lxc->rodata->cfg_every_drop = opts->every_drop;

	if (opts->node) {
		bpf_object__for_each_map(map, dp->lxc->obj) {
			char path[PATH_MAX + 64];

			if (strncmp(bpf_map__name(map), "ciliate_", 8))
				continue; /* .rodata etc. belong to the program */
			snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, bpf_map__name(map));
			err = bpf_map__set_pin_path(map, path);
			if (err) {
				diag_fail_errno(d, err, "pin path %s: %s", path, strerror(-err));
				goto out;
			}
		}
	}

	/* an earlier agent's pins: reused, migrated or replaced, never misread (pin_layout.h) */
	if (opts->node) {
		err = pin_layout_check(dp->lxc->obj, dp->pin_dir, &dp->upgrade, d);
		if (err)
			goto out;
	}
	err = lxc__load(dp->lxc);
	if (err) {
		diag_fail_errno(d, err,
				"loading lxc BPF programs: %s (a map pinned under %s with another "
				"layout? run 'ciliate-sim down' or remove the pins)",
				strerror(-err), dp->pin_dir[0] ? dp->pin_dir : "-");
		goto out;
	}
	err = overlay_load(dp, opts, d);
	if (!err)
		err = netdev_load(dp, opts, d);
	if (!err)
		err = xdp_load(dp, opts, d);
	if (!err && dp->upgrade)
		err = pin_layout_finish(dp->upgrade, dp->lxc->obj, dp->pin_dir, d);
	if (err)
		goto out;
	*out = dp;
	return 0;
out:
	datapath_close(dp);
	return err;
}

void datapath_close(struct datapath *dp)
{
	if (!dp)
		return;
	xdp__destroy(dp->xdp);
	netdev__destroy(dp->netdev);
	overlay__destroy(dp->overlay);
	lxc__destroy(dp->lxc);
	pin_layout_free(dp->upgrade);
	free(dp);
}

int datapath_prog_fd(const struct datapath *dp, int hook)
{
	switch (hook) {
	case HOOK_FROM_CONTAINER:
		return bpf_program__fd(dp->lxc->progs.from_container);
	case HOOK_TO_CONTAINER:
		return bpf_program__fd(dp->lxc->progs.to_container);
	case HOOK_FROM_OVERLAY:
		return bpf_program__fd(dp->overlay->progs.from_overlay);
	case HOOK_TO_OVERLAY:
		return bpf_program__fd(dp->overlay->progs.to_overlay);
	case HOOK_FROM_NETDEV:
		return bpf_program__fd(dp->netdev->progs.from_netdev);
	case HOOK_TO_NETDEV:
		return bpf_program__fd(dp->netdev->progs.to_netdev);
	case HOOK_XDP:
		return bpf_program__fd(dp->xdp->progs.xdp_netdev);
	default:
		return -ENOENT;
	}
}

int datapath_map_fd(const struct datapath *dp, const char *name)
{
	struct bpf_map *map = bpf_object__find_map_by_name(dp->lxc->obj, name);

	return map ? bpf_map__fd(map) : -ENOENT;
}

const char *datapath_upgrade_notes(const struct datapath *dp)
{
	return pin_layout_notes(dp->upgrade);
}

const char *datapath_pin_dir(const struct datapath *dp)
{
	return dp->pin_dir;
}

int datapath_unpin_node(const char *node, struct diag *d)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *dh;

	if (!valid_node_name(node))
		return diag_fail(d, "invalid node name \"%s\"", node);
	snprintf(dir, sizeof(dir), "%s/%s", CILIATE_PIN_ROOT, node);
	dh = opendir(dir);
	if (!dh)
		return errno == ENOENT ? 0 : diag_fail_errno(d, -errno, "%s: %s", dir, strerror(errno));
	while ((de = readdir(dh))) {
		char path[PATH_MAX + 256];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(dh);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return diag_fail_errno(d, -errno, "removing %s: %s", dir, strerror(errno));
	rmdir(CILIATE_PIN_ROOT); /* only succeeds when no other node is left */
	return 0;
}
