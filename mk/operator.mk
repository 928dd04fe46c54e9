# ciliate-operator (docs/OPERATOR.md): the leader-elected cluster chores (identity GC, node
# GC, policy status). It links the agent's identity allocator object (identity_release) and
# libciliate.a (the store, labels). tests/operator/run-suite.sh drives it with a small
# key/value helper (build/tests/operator_kv: get/put/del/list on any store URI).

OPERATOR_SRCS := $(wildcard datapath/operator/*.c)
OPERATOR_OBJS := $(OPERATOR_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/datapath/agent/identity_alloc.o

.PHONY: operator
operator: $(BUILD)/bin/ciliate-operator $(BUILD)/tests/operator_kv

all: operator

$(BUILD)/bin/ciliate-operator: $(OPERATOR_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/operator_kv: $(BUILD)/obj/tests/operator/operator_kv.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
