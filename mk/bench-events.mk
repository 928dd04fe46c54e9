# Event throughput bench (tests/bench/bench_events_rate.sh, docs/PERFORMANCE.md "Events"):
# its traffic generator and meter, tests/bench/events/events_gen.c (a subfolder, so the
# Makefile's one-bench-per-file rule for tests/bench/*.c does not run it as a bench), built
# into build/bench-tools/ (run.sh runs everything in build/bench/). It runs the XDP program
# bpf/progs/bench_events_gen.bpf.c in live-frames mode and asks the agent for its status
# through the API client.

BENCH_EVENTS_GEN := $(BUILD)/bench-tools/events_gen

all: $(BENCH_EVENTS_GEN)

$(BENCH_EVENTS_GEN): $(BUILD)/obj/tests/bench/events/events_gen.o $(AGENT_CLIENT_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
