# ciliate — top-level build. `make` builds everything; `make test` runs every suite;
# `make demo` shows a replay. Every target that needs Debian packages installs them first.

BUILD     ?= build
ARCH_INC  := /usr/include/$(shell gcc -dumpmachine)
CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool

CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -DPCAP_DONT_INCLUDE_PCAP_BPF_H \
             -Ibpf/include -I$(BUILD)/skel -Idatapath -Ipcaps/builder -Itests/lib
LDLIBS    := -lbpf -lelf -lz -lpcap -lyaml -ljansson -lm -lmnl -lcurl
TEST_LIBS := -lcmocka

BPF_CFLAGS := -O2 -g -target bpf -mcpu=v3 -Wall -Werror -I$(ARCH_INC) -Ibpf/include -Ibpf

# ---- sources by component (each folder is one concern; see docs/ARCHITECTURE.md) ----------
LIB_DIRS  := datapath/common datapath/model datapath/loader datapath/decode datapath/replay \
             datapath/store datapath/flow datapath/lb datapath/encrypt \
             pcaps/builder
LIB_SRCS  := $(filter-out pcaps/builder/gen_%.c,$(wildcard $(addsuffix /*.c,$(LIB_DIRS))))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libciliate.a

BPF_SRCS  := $(wildcard bpf/progs/*.bpf.c)
BPF_OBJS  := $(BPF_SRCS:bpf/progs/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
SKELS     := $(BPF_SRCS:bpf/progs/%.bpf.c=$(BUILD)/skel/%.skel.h)
BPF_HDRS  := $(wildcard bpf/include/ciliate/*.h bpf/lib/*.h)

CLI_SRCS  := $(wildcard datapath/cli/*.c)
BINS      := $(BUILD)/bin/ciliate $(BUILD)/bin/ciliate-pktgen

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(BPFT_SRCS:tests/bpf/%.c=$(BUILD)/tests/%)
TESTLIB_SRCS := $(wildcard tests/lib/*.c)
TESTLIB_OBJS := $(TESTLIB_SRCS:%.c=$(BUILD)/obj/%.o)
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps bpf test unit-test bpf-test replay-test demo bench pcaps clean format
.DEFAULT_GOAL := all
# keep objects between runs (they are intermediates of pattern rules)
.SECONDARY:

all: deps bpf $(BINS) $(UNIT_BINS) $(BPFT_BINS) $(BENCH_BINS)

deps:
	@bash ci/install-deps.sh

bpf: $(BPF_OBJS) $(SKELS)

$(BUILD)/bpf/%.bpf.o: bpf/progs/%.bpf.c $(BPF_HDRS) | deps
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/%.o: %.c $(SKELS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/ciliate: $(CLI_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/ciliate-pktgen: $(BUILD)/obj/pcaps/builder/gen_pcaps.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/bpf/%.o $(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# the kernel-matrix "ipsec" suite's wire test (docs/IPSEC.md)
all: $(BUILD)/tests/test_ipsec_wire
$(BUILD)/tests/test_ipsec_wire: $(BUILD)/obj/tests/ipsec/test_ipsec_wire.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# the kernel-matrix "wireguard-kernel" and "encryption-bench" suites (docs/ENCRYPTION-KERNEL.md)
WG_GUEST_BINS := $(BUILD)/tests/test_wg_kernel $(BUILD)/tests/test_encryption_bench
all: $(WG_GUEST_BINS)
$(WG_GUEST_BINS): $(BUILD)/tests/%: $(BUILD)/obj/tests/wireguard/%.o $(BUILD)/obj/tests/wireguard/wg_guest.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcrypto -lpthread

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# ---- test suites ---------------------------------------------------------------------------
test: all
	@bash tests/run-all.sh $(BUILD)

unit-test: all
	@bash tests/run-all.sh $(BUILD) unit

bpf-test: all
	@bash tests/run-all.sh $(BUILD) bpf

replay-test: all
	@bash tests/run-all.sh $(BUILD) replay

bench: all
	@bash tests/bench/run.sh $(BUILD)

# Regenerate the golden replay pcaps from the packet builder (they are committed).
pcaps: $(BUILD)/bin/ciliate-pktgen
	$(BUILD)/bin/ciliate-pktgen pcaps

demo: all
	@bash scenarios/demo.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)

-include $(wildcard mk/*.mk)
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
