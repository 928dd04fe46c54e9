# The longer etcd target of issue 14: every connectivity, netpol and cnp scenario with the
# simulator on a real etcd (tests/store-sim/all-scenarios.sh; `make test` runs a subset).
.PHONY: test-etcd
test-etcd: all
	@bash tests/store-sim/all-scenarios.sh $(BUILD)
