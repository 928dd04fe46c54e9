# `make install` / `make uninstall` (docs/INSTALL.md). Variables (all overridable):
#   DESTDIR           staging root prepended to every path (packaging, tests/install)
#   PREFIX            /usr/local; BINDIR $(PREFIX)/bin; LIBEXECDIR $(PREFIX)/libexec/ciliate;
#                     DOCDIR $(PREFIX)/share/doc/ciliate; SYSTEMD_UNIT_DIR $(PREFIX)/lib/systemd/system
#   CNI_BIN_DIR       /opt/cni/bin (ciliate-cni); CNI_CONF_DIR /etc/cni/net.d (05-ciliate.conflist)
#   ENV_FILE          /etc/default/ciliate (the units' EnvironmentFile)
#   NODE_NAME         this node's name in ENV_FILE and in the conflist's agentSocket (hostname)
#   STORE             the store URL in ENV_FILE and the units' default (file:///var/lib/ciliate/store)
#
# Installed: ciliate, ciliate-agent, ciliate-operator in BINDIR; ciliate-cni in CNI_BIN_DIR;
# the simulator ciliate-sim with the two helpers it runs (ciliate-echo in every simulated pod,
# ciliate-probe for every check) in LIBEXECDIR, where ciliate-sim looks for every binary it
# runs (its own directory): symlinks there point at the installed ciliate, ciliate-agent,
# ciliate-operator and ciliate-cni, and BINDIR/ciliate-sim points at it. Not installed:
# ciliate-pktgen (regenerates the committed golden pcaps: a development tool) and the tests.
# `make uninstall` removes exactly these paths (and LIBEXECDIR/DOCDIR when left empty).

PREFIX           ?= /usr/local
BINDIR           ?= $(PREFIX)/bin
LIBEXECDIR       ?= $(PREFIX)/libexec/ciliate
DOCDIR           ?= $(PREFIX)/share/doc/ciliate
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
CNI_BIN_DIR      ?= /opt/cni/bin
CNI_CONF_DIR     ?= /etc/cni/net.d
CNI_CONF_NAME    ?= 05-ciliate.conflist
ENV_FILE         ?= /etc/default/ciliate
NODE_NAME        ?= $(shell hostname)
STORE            ?= file:///var/lib/ciliate/store
INSTALL          ?= install

INSTALL_BINS     := ciliate ciliate-agent ciliate-operator
INSTALL_SIM_BINS := ciliate-sim ciliate-echo ciliate-probe
INSTALL_UNITS    := ciliate-agent.service ciliate-operator.service
INSTALL_DOCS     := INSTALL.md AGENT.md CNI.md OPERATOR.md STORE.md SIMULATOR.md

# every path install creates (without DESTDIR), for uninstall and tests/install
INSTALL_PATHS := $(addprefix $(BINDIR)/,$(INSTALL_BINS) ciliate-sim) \
		 $(addprefix $(LIBEXECDIR)/,$(INSTALL_SIM_BINS) $(INSTALL_BINS) ciliate-cni) \
		 $(CNI_BIN_DIR)/ciliate-cni $(CNI_CONF_DIR)/$(CNI_CONF_NAME) $(ENV_FILE) \
		 $(addprefix $(SYSTEMD_UNIT_DIR)/,$(INSTALL_UNITS)) \
		 $(addprefix $(DOCDIR)/,$(INSTALL_DOCS))

# dist/*.in -> the installed text: @VAR@ replaced by the variables above
INSTALL_SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@ENV_FILE@|$(ENV_FILE)|g' \
		-e 's|@NODE_NAME@|$(NODE_NAME)|g' -e 's|@STORE@|$(STORE)|g' \
		-e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@CNI_CONF_DIR@|$(CNI_CONF_DIR)|g' \
		-e 's|@CNI_CONF_NAME@|$(CNI_CONF_NAME)|g'

.PHONY: install uninstall install-paths

install: $(addprefix $(BUILD)/bin/,$(INSTALL_BINS) $(INSTALL_SIM_BINS) ciliate-cni)
	@case "$(NODE_NAME)" in ''|*[!A-Za-z0-9._-]*) \
		echo "install: NODE_NAME \"$(NODE_NAME)\" must be letters, digits, . _ -" >&2; exit 2;; esac
	$(INSTALL) -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(CNI_BIN_DIR) \
		$(DESTDIR)$(CNI_CONF_DIR) $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(dir $(ENV_FILE))
	$(INSTALL) -m 0755 $(addprefix $(BUILD)/bin/,$(INSTALL_BINS)) $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0755 $(BUILD)/bin/ciliate-cni $(DESTDIR)$(CNI_BIN_DIR)/ciliate-cni
	$(INSTALL) -m 0755 $(addprefix $(BUILD)/bin/,$(INSTALL_SIM_BINS)) $(DESTDIR)$(LIBEXECDIR)/
	for b in $(INSTALL_BINS); do ln -sfn $(BINDIR)/$$b $(DESTDIR)$(LIBEXECDIR)/$$b; done
	ln -sfn $(CNI_BIN_DIR)/ciliate-cni $(DESTDIR)$(LIBEXECDIR)/ciliate-cni
	ln -sfn $(LIBEXECDIR)/ciliate-sim $(DESTDIR)$(BINDIR)/ciliate-sim
	$(INSTALL_SUBST) dist/05-ciliate.conflist.in >$(DESTDIR)$(CNI_CONF_DIR)/$(CNI_CONF_NAME)
	chmod 0644 $(DESTDIR)$(CNI_CONF_DIR)/$(CNI_CONF_NAME)
	$(INSTALL_SUBST) dist/ciliate.env.in >$(DESTDIR)$(ENV_FILE)
	chmod 0644 $(DESTDIR)$(ENV_FILE)
	for u in $(INSTALL_UNITS); do \
		$(INSTALL_SUBST) dist/systemd/$$u.in >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/$$u && \
		chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/$$u || exit 1; done
	$(INSTALL) -m 0644 $(addprefix docs/,$(INSTALL_DOCS)) $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALL_PATHS))
	rmdir $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# prints INSTALL_PATHS, one per line (tests/install compares the installed tree with it)
install-paths:
	@printf '%s\n' $(INSTALL_PATHS)
