# ciliate-agent and ciliate-cni (docs/AGENT.md, docs/CNI.md).
#
# The Makefile computes LIB_SRCS from LIB_DIRS with := before it includes mk/*.mk, so
# appending to LIB_DIRS here would not reach libciliate.a. The agent and CNI code therefore
# stays in the binaries; unit tests link the pure objects they test explicitly (below).
# The `ciliate` CLI links the agent API client (datapath/agent/api_client.c: libc + jansson
# only, so its place after libciliate.a on the link line is fine).

AGENT_SRCS := $(wildcard datapath/agent/*.c)
AGENT_OBJS := $(AGENT_SRCS:%.c=$(BUILD)/obj/%.o)
AGENT_CLIENT_OBJ := $(BUILD)/obj/datapath/agent/api_client.o
CNI_SRCS   := $(wildcard datapath/cni/*.c)
CNI_OBJS   := $(CNI_SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: agent
agent: $(BUILD)/bin/ciliate-agent $(BUILD)/bin/ciliate-cni

all: agent

$(BUILD)/bin/ciliate-agent: $(AGENT_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lcrypto

$(BUILD)/bin/ciliate-cni: $(CNI_OBJS) $(AGENT_CLIENT_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# the CLI's endpoint/status commands talk to agents
$(BUILD)/bin/ciliate: $(AGENT_CLIENT_OBJ)

# unit tests of the pure parts: objects first, then the library
$(BUILD)/tests/test_ipam_rec: $(BUILD)/obj/tests/unit/test_ipam_rec.o \
		$(BUILD)/obj/datapath/agent/ipam_rec.o $(BUILD)/obj/datapath/agent/kvset.o \
		$(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

$(BUILD)/tests/test_cni_util: $(BUILD)/obj/tests/unit/test_cni_util.o \
		$(BUILD)/obj/datapath/cni/cni_util.o $(AGENT_CLIENT_OBJ) $(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

AGENT_IDENTITY_OBJS := $(BUILD)/obj/datapath/agent/identities.o $(BUILD)/obj/datapath/agent/build.o \
		$(BUILD)/obj/datapath/agent/identity_alloc.o

$(BUILD)/tests/test_agent_model: $(BUILD)/obj/tests/unit/test_agent_model.o \
		$(BUILD)/obj/datapath/agent/objects.o $(BUILD)/obj/datapath/agent/ipam_rec.o \
		$(AGENT_IDENTITY_OBJS) $(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# the identity allocator against real stores (two handles = two agents)
$(BUILD)/tests/test_identity_alloc: $(BUILD)/obj/tests/unit/test_identity_alloc.o \
		$(BUILD)/obj/datapath/agent/objects.o $(BUILD)/obj/datapath/agent/ipam_rec.o \
		$(AGENT_IDENTITY_OBJS) $(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)

# the agent's IPAM against a real store (one key per allocation, stale caches, old records)
$(BUILD)/tests/test_ipam_store: $(BUILD)/obj/tests/unit/test_ipam_store.o \
		$(BUILD)/obj/datapath/agent/ipam.o $(BUILD)/obj/datapath/agent/objects.o \
		$(BUILD)/obj/datapath/agent/ipam_rec.o $(AGENT_IDENTITY_OBJS) $(TESTLIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)
