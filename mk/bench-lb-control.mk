# bench_lb_control (tests/bench/bench_lb_control.c): the agent's service reconcile against
# iptables-restore and nft -f (docs/PERFORMANCE.md). It drives the agent's own code, which is
# not in libciliate.a (mk/agent.mk), so this rule links the agent objects but main.o (the
# bench defines agent_log and agent_now_ms). --wrap=datapath_map_fd lets the bench give the
# agent larger LB maps of the same type when a size does not fit the datapath's.
# The smoke suite tests/bench-smoke-lb/run-suite.sh runs it with 100 services.

BENCH_LBC_AGENT_OBJS := $(filter-out $(BUILD)/obj/datapath/agent/main.o, \
	$(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard datapath/agent/*.c)))

$(BUILD)/bench/bench_lb_control: $(BUILD)/obj/tests/bench/bench_lb_control.o \
		$(BENCH_LBC_AGENT_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wl,--wrap=datapath_map_fd -o $@ $^ $(LDLIBS) -lcrypto
