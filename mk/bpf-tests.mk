# BPF objects used only by the BPF program tests (tests/bpf/progs/): not datapath programs, so
# they are built outside build/bpf (ciliate-verify and the loader never see them) and reach
# the tests as skeletons under build/skel/test/.

TEST_BPF_SRCS := $(wildcard tests/bpf/progs/*.bpf.c)
TEST_SKELS    := $(TEST_BPF_SRCS:tests/bpf/progs/%.bpf.c=$(BUILD)/skel/test/%.skel.h)

$(BUILD)/bpf-test/%.bpf.o: tests/bpf/progs/%.bpf.c | deps
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/skel/test/%.skel.h: $(BUILD)/bpf-test/%.bpf.o
	@mkdir -p $(@D)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/tests/bpf/test_overlay.o: $(TEST_SKELS)
