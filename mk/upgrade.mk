# tests/upgrade: an "older agent's" pinned maps (a BPF object never part of the datapath) and
# the helper that pins them and checks what the loader made of them (docs/ARCHITECTURE.md,
# "Pinning and upgrades").
all: $(BUILD)/tests/upgrade/old_layout.bpf.o $(BUILD)/tests/upgrade_pin_old

$(BUILD)/tests/upgrade/old_layout.bpf.o: tests/upgrade/old_layout.bpf.c $(BPF_HDRS) | deps
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/tests/upgrade_pin_old: $(BUILD)/obj/tests/upgrade/pin_old.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
