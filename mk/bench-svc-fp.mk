# bench_svc_first_packet (tests/bench/bench_svc_first_packet.c): first-packet service cost
# through veth, ciliate against iptables (kube-proxy style), an nftables verdict map and no
# rules (docs/PERFORMANCE.md). It links the veth helpers of tests/bench/nft/ and wraps
# bpf_object__open_skeleton to load the datapath with LB maps large enough for 10,000
# services x 10 backends (the shipping maps hold 65,536 entries).

BENCH_SVCFP_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,tests/bench/nft/netlab.c \
	tests/bench/nft/tcattach.c tests/bench/nft/traffic.c)

$(BUILD)/bench/bench_svc_first_packet: $(BUILD)/obj/tests/bench/bench_svc_first_packet.o \
		$(BENCH_SVCFP_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Wl,--wrap=bpf_object__open_skeleton -o $@ $^ $(LDLIBS)
