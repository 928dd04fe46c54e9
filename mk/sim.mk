# The cluster simulator (sim/runner, sim/netns.c, sim/kubelet.c; see docs/SIMULATOR.md):
#   ciliate-sim - up / down / run / exec / status / capture of scenario clusters built from
#                 network namespaces; links the model from libciliate.a.
# Its suite is tests/sim/run-suite.sh (run by `make test`; skips without root/netns).

SIM_SRCS := $(wildcard sim/runner/*.c) sim/netns.c sim/kubelet.c
SIM_OBJS := $(SIM_SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: sim
sim: $(BUILD)/bin/ciliate-sim

all: sim

$(SIM_OBJS): CFLAGS += -Isim

# it runs the datapath: ciliate-agent per node, ciliate-cni per pod, `ciliate apply` per step
$(BUILD)/bin/ciliate-sim: $(SIM_OBJS) $(AGENT_CLIENT_OBJ) $(LIB) | sim-tools agent \
		$(BUILD)/bin/ciliate
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $(SIM_OBJS) $(AGENT_CLIENT_OBJ) $(LIB) $(LDLIBS)
