# Kernel-version matrix (docs/KERNELS.md).
#   make static-tests   statically linked test tools for the guest initramfs
#   make kernel-smoke   one Debian kernel under qemu, verifier suite only (part of `make test`)
#   make kernels        the full matrix: host + Debian 6.1 + 6.12, every suite in
#                       ci/kernel-suites.txt; KERNEL_MATRIX_ARGS adds options (e.g. -o json)

STATIC_LDLIBS := -l:libbpf.a -lelf -lz
STATIC_TESTS  := $(BUILD)/static/bin/ciliate-verify
VERIFY_SRCS   := $(wildcard tests/verifier/*.c)

.PHONY: static-tests kernels kernel-smoke kernel-deps

all: static-tests

static-tests: $(STATIC_TESTS)

$(BUILD)/static/bin/ciliate-verify: $(VERIFY_SRCS) | deps
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -static -o $@ $(VERIFY_SRCS) $(STATIC_LDLIBS)

kernel-deps:
	@bash ci/install-deps.sh --kernels

kernels: all kernel-deps
	bash ci/kernel-matrix -b $(BUILD) $(KERNEL_MATRIX_ARGS)

kernel-smoke: bpf static-tests kernel-deps
	bash ci/kernel-matrix -b $(BUILD) --smoke $(KERNEL_MATRIX_ARGS)
