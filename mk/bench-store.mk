# Store benches (docs/PERFORMANCE.md "Store operations"): tests/bench/bench_store.c is built by
# the Makefile's one-bench-per-file rule (build/bench/bench_store). The simulator bench
# tests/bench/bench_store_sim.sh uses tests/bench/store/enforce_wait.c (a subfolder, so that
# rule does not run it as a bench), built into build/bench-tools/: it runs `ciliate apply`
# and asks every node's agent (the API client) until its modelRevision covers the applied
# object's revision.

BENCH_STORE_ENFORCE_WAIT := $(BUILD)/bench-tools/enforce_wait

all: $(BENCH_STORE_ENFORCE_WAIT)

$(BENCH_STORE_ENFORCE_WAIT): $(BUILD)/obj/tests/bench/store/enforce_wait.o $(AGENT_CLIENT_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
