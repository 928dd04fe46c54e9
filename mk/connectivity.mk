# `ciliate connectivity test` (datapath/connectivity/, docs/CONNECTIVITY-TEST.md): linked into
# the `ciliate` CLI with the simulator's pod plumbing (sim/kubelet.c, sim/netns.c: a network
# namespace per pod, ciliate-cni ADD in the node's namespace). Those objects come after
# libciliate.a on the CLI's link line, so the library is scanned once more after them.
# Suite: tests/connectivity-test/run-suite.sh.

CT_SRCS := $(wildcard datapath/connectivity/*.c)
CT_OBJS := $(CT_SRCS:%.c=$(BUILD)/obj/%.o)

$(CT_OBJS): CFLAGS += -Isim

$(BUILD)/bin/ciliate: $(CT_OBJS) $(BUILD)/obj/sim/kubelet.o $(BUILD)/obj/sim/netns.o
$(BUILD)/bin/ciliate: LDLIBS := $(LIB) $(LDLIBS)

# unit test of the JUnit writer (its object only)
$(BUILD)/tests/test_connectivity_junit: $(BUILD)/obj/tests/unit/test_connectivity_junit.o \
		$(BUILD)/obj/datapath/connectivity/junit.o $(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)
