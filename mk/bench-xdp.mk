# tests/bench/bench_xdp.c uses a bench-only BPF program (tests/bpf/progs/xdp_restore.bpf.c,
# built by mk/bpf-tests.mk as build/skel/test/xdp_restore.skel.h).
$(BUILD)/obj/tests/bench/bench_xdp.o: $(BUILD)/skel/test/xdp_restore.skel.h
