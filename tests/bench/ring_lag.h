/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The benches' consumer of the event ring: between test runs it consumes every record but
 * the newest, so that
 *   - the ring never fills: every measured packet writes its events (a packet whose event
 *     output fails on a full ring is cheaper and is not a normal packet);
 *   - the consumer is never caught up: the kernel queues a consumer wakeup (irq_work) when a
 *     record is committed at the consumer's position, i.e. for the first event after the
 *     consumer read everything. A busy consumer (the agent's monitor under traffic) is
 *     behind and rarely woken; one that is woken for every packet measures the wakeup, not
 *     the datapath (in BPF_PROG_TEST_RUN on the 2-vCPU VM: several microseconds a packet).
 * libbpf 1.1 has no "consume n records", so this reads the ring's pages itself. Header only:
 * each bench is one .c file (every tests/bench .c file is a bench binary).
 */
#ifndef CILIATE_BENCH_RING_LAG_H
#define CILIATE_BENCH_RING_LAG_H

#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

struct ring_lag {
	uint64_t *consumer_pos; /* the consumer page (read-write) */
	uint64_t *producer_pos; /* the producer page, followed by the data pages (twice) */
	uint8_t *data;
	uint64_t mask;
	size_t page, size;
};

static inline void ring_lag_open(struct ring_lag *r, int map_fd)
{
	struct bpf_map_info info = {0};
	uint32_t len = sizeof(info);
	void *p;

	if (map_fd < 0 || bpf_obj_get_info_by_fd(map_fd, &info, &len)) {
		perror("ring_lag: event ring map");
		exit(1);
	}
	r->page = (size_t)sysconf(_SC_PAGESIZE);
	r->size = info.max_entries;
	r->mask = r->size - 1;
	p = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED) {
		perror("ring_lag: mmap consumer page");
		exit(1);
	}
	r->consumer_pos = p;
	p = mmap(NULL, r->page + 2 * r->size, PROT_READ, MAP_SHARED, map_fd, (off_t)r->page);
	if (p == MAP_FAILED) {
		perror("ring_lag: mmap producer pages");
		exit(1);
	}
	r->producer_pos = p;
	r->data = (uint8_t *)p + r->page;
}

static inline void ring_lag_close(struct ring_lag *r)
{
	munmap(r->consumer_pos, r->page);
	munmap(r->producer_pos, r->page + 2 * r->size);
}

/* Consumes every committed record but the newest. */
static inline void ring_lag_drain(struct ring_lag *r)
{
	uint64_t cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
	uint64_t prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	uint64_t pos = cons, last = cons;

	while (pos < prod) {
		uint32_t len = __atomic_load_n((uint32_t *)(r->data + (pos & r->mask)),
					       __ATOMIC_ACQUIRE);

		if (len & BPF_RINGBUF_BUSY_BIT)
			break;
		len &= ~(uint32_t)BPF_RINGBUF_DISCARD_BIT;
		last = pos;
		pos += (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
	}
	if (last != cons)
		__atomic_store_n(r->consumer_pos, last, __ATOMIC_RELEASE);
}

#endif
