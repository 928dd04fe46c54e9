# bench_policy_nft (tests/bench/bench_policy_nft.c): ciliate policy against nftables through
# veth. Its helpers live in tests/bench/nft/ (a subfolder, so the Makefile's one-binary-per-
# file rule for tests/bench/*.c does not pick them up); this explicit rule links them.
# The smoke suite tests/nftbench/run-suite.sh runs it end to end with small counts.

BENCH_NFT_SRCS := $(wildcard tests/bench/nft/*.c)
BENCH_NFT_OBJS := $(BENCH_NFT_SRCS:%.c=$(BUILD)/obj/%.o)

$(BUILD)/bench/bench_policy_nft: $(BUILD)/obj/tests/bench/bench_policy_nft.o $(BENCH_NFT_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
