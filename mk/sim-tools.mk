# Simulator traffic endpoints (sim/echo, sim/probe; see docs/SIMULATOR.md):
#   ciliate-echo  - the echo server every simulated pod and external host runs
#   ciliate-probe - the client the scenario runner executes inside a source namespace
# Both need only libc and jansson. The tests/unit/test_echo_*.c unit tests link the pure
# helper objects (echo_proto.o, probe_proto.o) besides libciliate.a.

SIMTOOLS_ECHO_OBJS  := $(addprefix $(BUILD)/obj/sim/echo/,echo.o echo_config.o echo_log.o \
                       echo_listen.o echo_conn.o echo_udp.o echo_proto.o)
SIMTOOLS_PROBE_OBJS := $(BUILD)/obj/sim/probe/probe.o $(BUILD)/obj/sim/probe/probe_proto.o

.PHONY: sim-tools
sim-tools: $(BUILD)/bin/ciliate-echo $(BUILD)/bin/ciliate-probe

all: sim-tools

$(BUILD)/bin/ciliate-echo: $(SIMTOOLS_ECHO_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ -ljansson

$(BUILD)/bin/ciliate-probe: $(SIMTOOLS_PROBE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ -ljansson

$(BUILD)/obj/tests/unit/test_echo_%.o: CFLAGS += -Isim/echo -Isim/probe
$(BUILD)/tests/test_echo_proto: $(BUILD)/obj/sim/echo/echo_proto.o
$(BUILD)/tests/test_echo_probe: $(BUILD)/obj/sim/probe/probe_proto.o
