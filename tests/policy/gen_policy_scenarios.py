#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes scenarios/netpol/*.yaml and scenarios/cnp/*.yaml: the Kubernetes e2e network-policy
model (namespaces x, y, z; pods a, b, c in each, spread over two nodes, serving 80 and 81 on
TCP, UDP and SCTP; external hosts) with one policy set per file, and a Test document whose
matrices hold the expected verdicts.

The expectations are NOT computed by ciliate: each case states, in plain Python below, what
upstream semantics (Kubernetes NetworkPolicy, Cilium's CNP/CCNP) say about its policies, as
two predicates: ingress(dst, src, port, proto) and egress(src, dst, port, proto), returning
OPEN (direction not isolated), ALLOW, DROP (isolated, nothing allows it) or DENY (a deny rule).
A connection is allowed when the source's egress and the destination's ingress both allow it
(only pods have policy). An isolated pod's ingress admits its own node (allow-localhost)
unless a deny rule matches or the Cluster sets allow-localhost: policy.

Usage: tests/policy/gen_policy_scenarios.py [REPO_ROOT]   (rewrites the files)
"""
import os
import sys
from collections import namedtuple

OPEN, ALLOW, DROP, DENY = "open", "allow", "drop", "deny"

Peer = namedtuple("Peer", "ref kind ns name node ip labels")  # kind: pod | node | ext

NODES = ["node-1", "node-2"]
NODE_IP = {"node-1": "192.0.2.1", "node-2": "192.0.2.2"}
EXT = {"client-1": "203.0.113.10", "client-2": "198.51.100.20", "client-3": "203.0.113.20"}
NSS = ["x", "y", "z"]
PODS = []
for i, (ns, name) in enumerate((ns, n) for ns in NSS for n in "abc"):
    PODS.append(Peer("%s/%s" % (ns, name), "pod", ns, name, NODES[i % 2], None,
                     {"pod": name}))
POD = {p.ref: p for p in PODS}
NODEP = {n: Peer("node/" + n, "node", None, None, n, NODE_IP[n], {}) for n in NODES}
EXTP = {n: Peer("ext/" + n, "ext", None, None, None, ip, {}) for n, ip in EXT.items()}
PORTS = [("serve-%d-%s" % (p, proto.lower()), p, proto)
         for proto in ("TCP", "UDP", "SCTP") for p in (80, 81)]


def in_cidr(ip, cidr):
    net, bits = cidr.split("/")
    def n(a):
        v = 0
        for o in a.split("."):
            v = v * 256 + int(o)
        return v
    bits = int(bits)
    mask = (0xffffffff << (32 - bits)) & 0xffffffff if bits else 0
    return (n(ip) & mask) == (n(net) & mask)


def header(name, config=""):
    docs = ["""apiVersion: sim.ciliate.dev/v1
kind: Cluster
metadata: {name: %s}
spec:
  nodes: [{name: node-1}, {name: node-2}]
  routing: tunnel
  podCIDR: 10.244.0.0/16
  underlayCIDR: 192.0.2.0/24
  externalHosts:
  - {name: client-1, ip: 203.0.113.10, ports: [80, 81]}
  - {name: client-2, ip: 198.51.100.20, ports: [80, 81]}
  - {name: client-3, ip: 203.0.113.20, ports: [80, 81]}
%s""" % (name, ("  config: {%s}\n" % config) if config else "")]
    for ns in NSS:
        docs.append("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s, labels: {ns: %s}}\n"
                    % (ns, ns))
    for p in PODS:
        docs.append(pod_doc(p))
    return docs


def pod_doc(p, extra=None):
    """The Pod document of p, with its pod=NAME label and the extra labels (a dict)."""
    ports = "".join("    - {name: %s, containerPort: %d, protocol: %s}\n" % q for q in PORTS)
    labels = "".join(", %s: %s" % kv for kv in sorted((extra or {}).items()))
    return ("apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: "
            "{pod: %s%s}}\nspec:\n  nodeName: %s\n  containers:\n  - name: server\n"
            "    image: agnhost\n    ports:\n%s" % (p.name, p.ns, p.name, labels, p.node, ports))


def role_ingress(roles):
    """Ingress of a pod of x labelled role=server under the policy `serve` of the
    label-change case: only pods of x labelled role=client; roles maps "ns/pod" to the
    role label of that step."""
    def ingress(d, s, port, pr):
        if not (pod(d, "x") and roles.get(d.ref) == "server"):
            return OPEN
        return sel(pod(s, "x") and roles.get(s.ref) == "client")
    return ingress


def relabel_steps(steps):
    """Steps (name, roles) -> Case steps: each re-applies the Pods whose role changed."""
    out, prev = [], {}
    for name, roles in steps:
        changed = [p for p in PODS if roles.get(p.ref) != prev.get(p.ref)]
        manifests = [pod_doc(p, {"role": roles[p.ref]} if p.ref in roles else None)
                     for p in changed]
        out.append((name, manifests or None, role_ingress(roles), None))
        prev = roles
    return out


def verdict(case, src, dst, port, proto):
    """The expected cell: True (allow) / False (deny)."""
    if src.kind == "pod":
        e = case.egress(src, dst, port, proto) if case.egress else OPEN
        if e in (DROP, DENY):
            return False
    if dst.kind == "pod":
        i = case.ingress(dst, src, port, proto) if case.ingress else OPEN
        if i == DROP and src.kind == "node" and src.node == dst.node and not case.localhost_policy:
            i = ALLOW
        if i in (DROP, DENY):
            return False
    return True


def table(case, rows, cols, port, proto):
    w = max(len(x) for x in ["-"] + rows) + 1
    out = "-".ljust(w) + " ".join(cols) + "\n"
    for r in rows:
        line = r.ljust(w)
        for c in cols:
            src = POD.get(r) or NODEP.get(r[5:]) or EXTP.get(r[4:])
            dst = POD.get(c) or NODEP.get(c[5:]) or EXTP.get(c[4:])
            line += ("." if r == c or verdict(case, src, dst, port, proto) else "X").ljust(
                len(c) + 1)
        out += line.rstrip() + "\n"
    return out


class Case:
    def __init__(self, group, name, desc, policies, ingress=None, egress=None,
                 matrices=(("TCP", 80), ("TCP", 81), ("UDP", 80), ("UDP", 81)),
                 extra_src=(), extra_dst=(), config="", steps=None):
        self.group, self.name, self.desc, self.policies = group, name, desc, policies
        self.ingress, self.egress, self.matrices = ingress, egress, matrices
        self.extra_src, self.extra_dst, self.config = list(extra_src), list(extra_dst), config
        self.localhost_policy = "allow-localhost: policy" in config
        self.steps = steps  # [(name, manifests or None, ingress, egress)]

    def render(self):
        docs = header(self.name, self.config)
        docs += [p.strip("\n") + "\n" for p in self.policies]
        rows = [p.ref for p in PODS] + self.extra_src
        cols = [p.ref for p in PODS] + self.extra_dst
        steps = self.steps or [("check", None, self.ingress, self.egress)]
        t = "apiVersion: sim.ciliate.dev/v1\nkind: Test\nmetadata: {name: %s}\nspec:\n  steps:\n" \
            % self.name
        for sname, manifests, ing, eg in steps:
            self.ingress, self.egress = ing, eg
            t += "  - name: %s\n" % sname
            if manifests:
                t += "    manifests:\n"
                for m in manifests:
                    lines = m.strip("\n").split("\n")
                    t += "    - " + lines[0] + "\n" + "".join("      " + l + "\n" for l in lines[1:])
            t += "    matrices:\n"
            for proto, port in self.matrices:
                t += "    - protocol: %s\n" % proto
                if proto != "ICMP":
                    t += "      port: %d\n" % port
                t += "      table: |\n"
                for l in table(self, rows, cols, port, proto).rstrip("\n").split("\n"):
                    t += "        " + l + "\n"
        docs.append(t)
        head = "# %s\n# %s\n# Generated by tests/policy/gen_policy_scenarios.py; expected matrices\n" \
               "# follow upstream semantics (see that script), not ciliate's compiler.\n" % (
                   self.name, self.desc)
        return head + "---\n".join(docs)


def NP(ns, name, spec):
    return ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: %s, "
            "namespace: %s}\nspec:\n%s" % (name, ns, spec))


def CNP(ns, name, spec):
    return ("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: %s, "
            "namespace: %s}\n%s" % (name, ns, spec))


def CCNP(name, spec):
    return ("apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: "
            "{name: %s}\n%s" % (name, spec))


def pod(p, ns=None, name=None):
    return p.kind == "pod" and (ns is None or p.ns == ns) and (name is None or p.name == name)


def sel(ok):
    return ALLOW if ok else DROP


ALL_NODES = ["node/node-1", "node/node-2"]
ALL_EXT = ["ext/client-1", "ext/client-2", "ext/client-3"]
TCP80 = (("TCP", 80),)

# ---- Kubernetes NetworkPolicy (networking.k8s.io/v1), after test/e2e/network/netpol ---------

NETPOL = [
    Case("netpol", "default-deny-ingress", "podSelector {} with no ingress rules isolates every "
         "pod of x for ingress; other namespaces and egress stay open",
         [NP("x", "deny-all", "  podSelector: {}\n  policyTypes: [Ingress]\n")],
         ingress=lambda d, s, port, pr: DROP if d.ns == "x" else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"], extra_dst=["ext/client-1"]),
    Case("netpol", "default-deny-all", "Ingress and Egress isolation without rules: x pods "
         "neither send nor receive",
         [NP("x", "deny-all", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n")],
         ingress=lambda d, s, port, pr: DROP if d.ns == "x" else OPEN,
         egress=lambda s, d, port, pr: DROP if s.ns == "x" else OPEN,
         extra_src=ALL_NODES, extra_dst=ALL_NODES + ["ext/client-1"]),
    Case("netpol", "podselector-same-namespace", "a podSelector peer without namespaceSelector "
         "selects pods of the policy's namespace only",
         [NP("x", "allow-b", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{podSelector: {matchLabels: {pod: b}}}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x", "b")) if pod(d, "x", "a") else OPEN),
    Case("netpol", "namespaceselector-all", "namespaceSelector {} selects every pod of every "
         "namespace, but not nodes or external hosts",
         [NP("x", "allow-all-ns", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{namespaceSelector: {}}]\n")],
         ingress=lambda d, s, port, pr: sel(s.kind == "pod") if pod(d, "x", "a") else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"]),
    Case("netpol", "namespaceselector-other", "every pod of x admits only pods of namespace y",
         [NP("x", "from-y", "  podSelector: {}\n  ingress:\n"
             "  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "y")) if d.ns == "x" else OPEN),
    Case("netpol", "podselector-expressions", "podSelector with matchExpressions (In)",
         [NP("x", "expr", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
             "    - podSelector:\n        matchExpressions: [{key: pod, operator: In, "
             "values: [b]}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x", "b")) if pod(d, "x", "a") else OPEN),
    Case("netpol", "namespaceselector-expressions", "namespaceSelector with matchExpressions "
         "(NotIn)",
         [NP("x", "expr", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
             "    - namespaceSelector:\n        matchExpressions: [{key: ns, operator: NotIn, "
             "values: [x]}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s) and s.ns != "x") if pod(d, "x", "a")
         else OPEN),
    Case("netpol", "pod-or-namespace", "two peers are ORed: namespace y, or pod b of x",
         [NP("x", "or", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
             "    - namespaceSelector: {matchLabels: {ns: y}}\n"
             "    - podSelector: {matchLabels: {pod: b}}\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "y") or pod(s, "x", "b"))
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "pod-and-namespace", "both selectors in one peer are ANDed: pod b of y",
         [NP("x", "and", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
             "    - namespaceSelector: {matchLabels: {ns: y}}\n"
             "      podSelector: {matchLabels: {pod: b}}\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "y", "b")) if pod(d, "x", "a") else OPEN),
    Case("netpol", "multiple-selectors", "namespace NotIn [x] AND pod In [b, c]",
         [NP("x", "multi", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
             "    - namespaceSelector:\n        matchExpressions: [{key: ns, operator: NotIn, "
             "values: [x]}]\n      podSelector:\n        matchExpressions: [{key: pod, "
             "operator: In, values: [b, c]}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s) and s.ns != "x" and s.name in "bc")
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "any-podselectors", "two podSelector peers: pods b and c of x",
         [NP("x", "b-or-c", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n"
             "    - podSelector: {matchLabels: {pod: b}}\n"
             "    - podSelector: {matchLabels: {pod: c}}\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x") and s.name in "bc")
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "port-81-only", "only TCP 81 is admitted, from any namespace",
         [NP("x", "port-81", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{namespaceSelector: {}}]\n    ports: [{port: 81, protocol: TCP}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s) and port == 81 and pr == "TCP")
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "stacked-policies", "allows of two policies on one pod add up (80 and 81)",
         [NP("x", "port-80", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{namespaceSelector: {}}]\n    ports: [{port: 80}]\n"),
          NP("x", "port-81", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{namespaceSelector: {}}]\n    ports: [{port: 81}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s) and pr == "TCP")
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "allow-all-ingress", "ingress [{}] admits every source and port, also from "
         "outside the cluster",
         [NP("x", "allow-all", "  podSelector: {}\n  ingress: [{}]\n")],
         ingress=lambda d, s, port, pr: ALLOW if d.ns == "x" else OPEN,
         extra_src=ALL_NODES + ALL_EXT),
    Case("netpol", "named-port-ingress", "a named port resolves against the selected pod's "
         "own container ports (serve-80-tcp = TCP 80)",
         [NP("x", "named", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{namespaceSelector: {}}]\n    ports: [{port: serve-80-tcp}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s) and port == 80 and pr == "TCP")
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "named-port-from-namespace", "named UDP port from namespace y only",
         [NP("x", "named", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]\n"
             "    ports: [{port: serve-81-udp, protocol: UDP}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "y") and port == 81 and pr == "UDP")
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "named-port-egress", "an egress named port resolves against the peers' "
         "container ports",
         [NP("x", "named", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
             "  egress:\n  - ports: [{port: serve-80-tcp}]\n")],
         egress=lambda s, d, port, pr: sel(pod(d) and port == 80 and pr == "TCP")
         if pod(s, "x", "a") else OPEN),
    Case("netpol", "deny-other-namespaces", "podSelector {} peer: x admits x only",
         [NP("x", "same-ns", "  podSelector: {}\n  ingress:\n  - from: [{podSelector: {}}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x")) if d.ns == "x" else OPEN,
         extra_src=ALL_NODES),
    Case("netpol", "egress-podselector", "x/a may only send to x/b",
         [NP("x", "to-b", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
             "  egress:\n  - to: [{podSelector: {matchLabels: {pod: b}}}]\n")],
         egress=lambda s, d, port, pr: sel(pod(d, "x", "b")) if pod(s, "x", "a") else OPEN,
         extra_dst=ALL_NODES + ["ext/client-1"]),
    Case("netpol", "egress-deny-all", "Egress isolation of every x pod, no rules",
         [NP("x", "no-egress", "  podSelector: {}\n  policyTypes: [Egress]\n  egress: []\n")],
         egress=lambda s, d, port, pr: DROP if s.ns == "x" else OPEN,
         extra_dst=["ext/client-1"]),
    Case("netpol", "ingress-and-egress", "one policy with both directions: x/a admits x/b and "
         "sends to y only",
         [NP("x", "both", "  podSelector: {matchLabels: {pod: a}}\n"
             "  policyTypes: [Ingress, Egress]\n"
             "  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b}}}]\n"
             "  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: y}}}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x", "b")) if pod(d, "x", "a") else OPEN,
         egress=lambda s, d, port, pr: sel(pod(d, "y")) if pod(s, "x", "a") else OPEN),
    Case("netpol", "client-side-egress-deny", "the client's egress policy denies even when "
         "the server admits everything",
         [NP("x", "to-y", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
             "  egress:\n  - to: [{namespaceSelector: {matchLabels: {ns: y}}}]\n"),
          NP("z", "allow-all", "  podSelector: {}\n  ingress: [{}]\n")],
         ingress=lambda d, s, port, pr: ALLOW if d.ns == "z" else OPEN,
         egress=lambda s, d, port, pr: sel(pod(d, "y")) if pod(s, "x", "a") else OPEN),
    Case("netpol", "egress-pod-and-namespace", "egress to pod b of namespace y (ANDed peer)",
         [NP("x", "to-y-b", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
             "  egress:\n  - to:\n    - namespaceSelector: {matchLabels: {ns: y}}\n"
             "      podSelector: {matchLabels: {pod: b}}\n")],
         egress=lambda s, d, port, pr: sel(pod(d, "y", "b")) if pod(s, "x", "a") else OPEN),
    Case("netpol", "protocol-only-udp", "a port entry with only protocol UDP admits every UDP "
         "port and no TCP",
         [NP("x", "udp", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - ports: [{protocol: UDP}]\n")],
         ingress=lambda d, s, port, pr: sel(pr == "UDP") if pod(d, "x", "a") else OPEN,
         extra_src=["ext/client-1"]),
    Case("netpol", "ingress-allow-all-precedence", "an allow-all policy next to a narrow one: "
         "allows are additive",
         [NP("x", "narrow", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{podSelector: {matchLabels: {pod: b}}}]\n    ports: [{port: 80}]\n"),
          NP("x", "all", "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{}]\n")],
         ingress=lambda d, s, port, pr: ALLOW if pod(d, "x", "a") else OPEN),
    Case("netpol", "egress-allow-all-precedence", "egress allow-all next to a narrow egress",
         [NP("x", "narrow", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
             "  egress:\n  - to: [{podSelector: {matchLabels: {pod: b}}}]\n    ports: [{port: 80}]\n"),
          NP("x", "all", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
             "  egress: [{}]\n")],
         egress=lambda s, d, port, pr: ALLOW if pod(s, "x", "a") else OPEN,
         extra_dst=["ext/client-1"]),
    Case("netpol", "ipblock-except-egress", "egress to 203.0.113.0/24 except 203.0.113.10/32",
         [NP("x", "cidr", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
             "  egress:\n  - to:\n    - ipBlock: {cidr: 203.0.113.0/24, except: "
             "[203.0.113.10/32]}\n")],
         egress=lambda s, d, port, pr: sel(d.kind == "ext" and in_cidr(d.ip, "203.0.113.0/24")
                                           and d.ip != "203.0.113.10")
         if pod(s, "x", "a") else OPEN,
         extra_dst=ALL_EXT, matrices=(("TCP", 80), ("UDP", 81))),
    Case("netpol", "ipblock-overlap", "an address in one policy's except and another policy's "
         "cidr is allowed",
         [NP("x", "cidr-except", "  podSelector: {matchLabels: {pod: a}}\n"
             "  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock: {cidr: 203.0.113.0/24, "
             "except: [203.0.113.10/32]}\n"),
          NP("x", "cidr-host", "  podSelector: {matchLabels: {pod: a}}\n"
             "  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 203.0.113.10/32}}]\n")],
         egress=lambda s, d, port, pr: sel(d.kind == "ext" and in_cidr(d.ip, "203.0.113.0/24"))
         if pod(s, "x", "a") else OPEN,
         extra_dst=ALL_EXT, matrices=TCP80),
    Case("netpol", "ipblock-ingress", "ingress from an external CIDR only",
         [NP("x", "from-cidr", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{ipBlock: {cidr: 203.0.113.0/24}}]\n")],
         ingress=lambda d, s, port, pr: sel(s.kind == "ext" and in_cidr(s.ip, "203.0.113.0/24"))
         if pod(d, "x", "a") else OPEN,
         extra_src=ALL_EXT + ALL_NODES, matrices=(("TCP", 80), ("UDP", 80))),
    Case("netpol", "independent-directions", "ingress open to all while egress is isolated",
         [NP("x", "in", "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{}]\n"),
          NP("x", "out", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n")],
         ingress=lambda d, s, port, pr: ALLOW if pod(d, "x", "a") else OPEN,
         egress=lambda s, d, port, pr: DROP if pod(s, "x", "a") else OPEN),
    Case("netpol", "sctp-is-not-tcp", "an SCTP port rule never opens TCP or UDP on that port",
         [NP("x", "sctp", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - ports: [{port: 80, protocol: SCTP}]\n")],
         ingress=lambda d, s, port, pr: sel(pr == "SCTP" and port == 80)
         if pod(d, "x", "a") else OPEN,
         matrices=(("TCP", 80), ("UDP", 80), ("SCTP", 80), ("SCTP", 81))),
    Case("netpol", "sctp-isolates", "a policy allowing only SCTP still isolates the pod",
         [NP("x", "sctp", "  podSelector: {}\n  ingress:\n"
             "  - from: [{namespaceSelector: {}}]\n    ports: [{port: 81, protocol: SCTP}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s) and pr == "SCTP" and port == 81)
         if d.ns == "x" else OPEN,
         matrices=(("TCP", 81), ("UDP", 81), ("SCTP", 80), ("SCTP", 81))),
    Case("netpol", "udp-only", "UDP 80 only: TCP 80 is denied",
         [NP("x", "udp-80", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - ports: [{port: 80, protocol: UDP}]\n")],
         ingress=lambda d, s, port, pr: sel(pr == "UDP" and port == 80)
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "default-namespace-label", "kubernetes.io/metadata.name is set on every "
         "namespace",
         [NP("x", "from-y", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "y")) if pod(d, "x", "a") else OPEN),
    Case("netpol", "default-namespace-label-expressions", "NotIn on kubernetes.io/metadata.name",
         [NP("x", "not-y", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from:\n    - namespaceSelector:\n        matchExpressions: [{key: "
             "kubernetes.io/metadata.name, operator: NotIn, values: [y]}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s) and s.ns != "y")
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "endport-ingress", "port 80 endPort 81 admits both ports",
         [NP("x", "range", "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n"
             "  - from: [{namespaceSelector: {}}]\n    ports: [{port: 80, endPort: 81}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s) and pr == "TCP" and 80 <= port <= 81)
         if pod(d, "x", "a") else OPEN),
    Case("netpol", "endport-egress", "egress UDP 81-90",
         [NP("x", "range", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n"
             "  egress:\n  - ports: [{port: 81, endPort: 90, protocol: UDP}]\n")],
         egress=lambda s, d, port, pr: sel(pr == "UDP" and 81 <= port <= 90)
         if pod(s, "x", "a") else OPEN,
         extra_dst=["ext/client-1"]),
    Case("netpol", "allow-localhost-policy", "with allow-localhost: policy the node is a peer "
         "like any other",
         [NP("x", "deny-all", "  podSelector: {}\n  policyTypes: [Ingress]\n")],
         ingress=lambda d, s, port, pr: DROP if d.ns == "x" else OPEN,
         extra_src=ALL_NODES, matrices=TCP80, config="allow-localhost: policy"),
    Case("netpol", "label-change", "re-applying a Pod with new labels (like kubectl label) "
         "moves it to another identity: policies follow the labels, not the pods",
         [NP("x", "serve", "  podSelector: {matchLabels: {role: server}}\n  ingress:\n"
             "  - from: [{podSelector: {matchLabels: {role: client}}}]\n")],
         steps=relabel_steps([
             ("nobody-selected", {}),
             ("a-becomes-server", {"x/a": "server"}),
             ("b-becomes-client", {"x/a": "server", "x/b": "client"}),
             ("client-moves-to-c", {"x/a": "server", "x/c": "client"}),
             ("a-stops-serving", {"x/c": "client"}),
         ]),
         matrices=TCP80),
]

# ---- CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy (cilium.io/v2) --------------------


def ent_cluster(p):
    return p.kind in ("pod", "node")


CNPS = [
    Case("cnp", "endpoints-same-namespace", "fromEndpoints without a namespace label selects "
         "the policy's namespace only",
         [CNP("x", "from-b", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints: [{matchLabels: {pod: b}}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x", "b")) if pod(d, "x", "a") else OPEN,
         extra_src=ALL_NODES),
    Case("cnp", "endpoints-other-namespace", "k8s:io.kubernetes.pod.namespace in the selector "
         "reaches another namespace",
         [CNP("x", "from-y-b", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints:\n    - matchLabels: {pod: b, k8s:io.kubernetes.pod.namespace: "
              "y}\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "y", "b")) if pod(d, "x", "a") else OPEN),
    Case("cnp", "endpoints-namespace-labels", "a namespace-label selector is not limited to "
         "the policy's namespace",
         [CNP("x", "from-z", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints:\n    - matchLabels: {io.cilium.k8s.namespace.labels.ns: z}\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "z")) if pod(d, "x", "a") else OPEN),
    Case("cnp", "empty-selector-namespaced", "{} in a CNP is every pod of its namespace",
         [CNP("x", "same-ns", "spec:\n  endpointSelector: {}\n  ingress:\n"
              "  - fromEndpoints: [{}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x")) if d.ns == "x" else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"]),
    Case("cnp", "empty-selector-clusterwide", "{} in a CCNP is every pod of the cluster (not "
         "nodes or the world)",
         [CCNP("a-from-pods", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
               "  - fromEndpoints: [{}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s)) if d.name == "a" else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"]),
    Case("cnp", "clusterwide-selector", "CCNP selectors span namespaces: every pod a admits "
         "every pod b",
         [CCNP("a-from-b", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
               "  - fromEndpoints: [{matchLabels: {pod: b}}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, None, "b")) if d.name == "a" else OPEN),
    Case("cnp", "l4-only", "toPorts without a peer field admits every peer on that port",
         [CNP("x", "tcp-80", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - toPorts:\n    - ports: [{port: \"80\", protocol: TCP}]\n")],
         ingress=lambda d, s, port, pr: sel(port == 80 and pr == "TCP")
         if pod(d, "x", "a") else OPEN,
         extra_src=ALL_NODES + ALL_EXT),
    Case("cnp", "protocol-any", "protocol ANY (and an omitted protocol) covers TCP, UDP and "
         "SCTP on the port",
         [CNP("x", "any-80", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints: [{matchLabels: {pod: b}}]\n    toPorts:\n"
              "    - ports: [{port: \"80\", protocol: ANY}]\n"
              "  - fromEndpoints: [{matchLabels: {pod: c}}]\n    toPorts:\n"
              "    - ports: [{port: \"81\"}]\n")],
         ingress=lambda d, s, port, pr: sel((pod(s, "x", "b") and port == 80) or
                                            (pod(s, "x", "c") and port == 81))
         if pod(d, "x", "a") else OPEN,
         matrices=(("TCP", 80), ("UDP", 80), ("SCTP", 80), ("TCP", 81), ("UDP", 81),
                   ("SCTP", 81))),
    Case("cnp", "port-range", "port 80 endPort 81 from the cluster entity",
         [CNP("x", "range", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEntities: [cluster]\n    toPorts:\n"
              "    - ports: [{port: \"80\", endPort: 81, protocol: TCP}]\n")],
         ingress=lambda d, s, port, pr: sel(ent_cluster(s) and pr == "TCP")
         if pod(d, "x", "a") else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"]),
    Case("cnp", "deny-precedence", "ingressDeny from pod b wins over fromEntities all",
         [CNP("x", "all-but-b", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n"
              "  ingress:\n  - fromEntities: [all]\n"
              "  ingressDeny:\n  - fromEndpoints: [{matchLabels: {pod: b}}]\n")],
         ingress=lambda d, s, port, pr: (DENY if pod(s, "x", "b") else ALLOW)
         if pod(d, "x", "a") else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"]),
    Case("cnp", "deny-port", "an L4-only deny beats every allow on that port, also the host's",
         [CNP("x", "no-80", "spec:\n  endpointSelector: {}\n  ingress:\n"
              "  - fromEntities: [all]\n  ingressDeny:\n  - toPorts:\n"
              "    - ports: [{port: \"80\", protocol: TCP}]\n")],
         ingress=lambda d, s, port, pr: (DENY if port == 80 and pr == "TCP" else ALLOW)
         if d.ns == "x" else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"]),
    Case("cnp", "deny-over-networkpolicy", "a CNP deny has precedence over a NetworkPolicy allow",
         [NP("x", "allow-all", "  podSelector: {}\n  ingress: [{}]\n"),
          CNP("x", "no-y", "spec:\n  endpointSelector: {}\n  ingressDeny:\n"
              "  - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]\n")],
         ingress=lambda d, s, port, pr: (DENY if pod(s, "y") else ALLOW)
         if d.ns == "x" else OPEN),
    Case("cnp", "egress-deny", "egressDeny to namespace z beside toEntities all",
         [CNP("x", "not-z", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n"
              "  egress:\n  - toEntities: [all]\n  egressDeny:\n"
              "  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: z}}]\n")],
         egress=lambda s, d, port, pr: (DENY if pod(d, "z") else ALLOW)
         if pod(s, "x", "a") else OPEN,
         extra_dst=ALL_NODES + ["ext/client-1"]),
    Case("cnp", "default-deny-disabled", "enableDefaultDeny.ingress false adds allows without "
         "isolating; a second policy that isolates makes them count",
         [CNP("x", "b-no-isolation", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n"
              "  enableDefaultDeny: {ingress: false}\n  ingress:\n"
              "  - fromEndpoints: [{matchLabels: {pod: b}}]\n")],
         steps=[("not-isolated", None, None, None),
                ("isolated", [NP("x", "isolate-a", "  podSelector: {matchLabels: {pod: a}}\n"
                                 "  policyTypes: [Ingress]\n")],
                 lambda d, s, port, pr: sel(pod(s, "x", "b")) if pod(d, "x", "a") else OPEN,
                 None)],
         matrices=(("TCP", 80), ("UDP", 81))),
    Case("cnp", "deny-only-isolates", "a policy with only ingressDeny still turns default deny "
         "on for ingress",
         [CNP("x", "no-c", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n"
              "  ingressDeny:\n  - fromEndpoints: [{matchLabels: {pod: c}}]\n")],
         ingress=lambda d, s, port, pr: (DENY if pod(s, "x", "c") else DROP)
         if pod(d, "x", "a") else OPEN,
         extra_src=ALL_NODES),
    Case("cnp", "deny-without-default-deny", "ingressDeny with enableDefaultDeny.ingress false "
         "denies only what it names",
         [CNP("x", "no-c", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n"
              "  enableDefaultDeny: {ingress: false, egress: false}\n"
              "  ingressDeny:\n  - fromEndpoints: [{matchLabels: {pod: c}}]\n"
              "  egressDeny:\n  - toPorts:\n    - ports: [{port: \"81\", protocol: ANY}]\n")],
         ingress=lambda d, s, port, pr: (DENY if pod(s, "x", "c") else OPEN)
         if pod(d, "x", "a") else OPEN,
         egress=lambda s, d, port, pr: (DENY if port == 81 else OPEN)
         if pod(s, "x", "a") else OPEN,
         extra_dst=["ext/client-1"]),
    Case("cnp", "entity-world", "toEntities world: outside the cluster only",
         [CNP("x", "world", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  egress:\n"
              "  - toEntities: [world]\n")],
         egress=lambda s, d, port, pr: sel(d.kind == "ext") if pod(s, "x", "a") else OPEN,
         extra_dst=ALL_NODES + ALL_EXT, matrices=(("TCP", 80), ("UDP", 81))),
    Case("cnp", "entity-cluster", "toEntities cluster: pods and nodes, not the world",
         [CNP("x", "cluster", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  egress:\n"
              "  - toEntities: [cluster]\n")],
         egress=lambda s, d, port, pr: sel(ent_cluster(d)) if pod(s, "x", "a") else OPEN,
         extra_dst=ALL_NODES + ALL_EXT, matrices=(("TCP", 80), ("UDP", 81))),
    Case("cnp", "entity-host", "fromEntities host with allow-localhost: policy: only each "
         "pod's own node",
         [CNP("x", "host", "spec:\n  endpointSelector: {}\n  ingress:\n"
              "  - fromEntities: [host]\n")],
         ingress=lambda d, s, port, pr: sel(s.kind == "node" and s.node == d.node)
         if d.ns == "x" else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"], matrices=TCP80,
         config="allow-localhost: policy"),
    Case("cnp", "entity-remote-node", "fromEntities remote-node: the other node (the local "
         "one by allow-localhost)",
         [CNP("x", "remote", "spec:\n  endpointSelector: {}\n  ingress:\n"
              "  - fromEntities: [remote-node]\n")],
         ingress=lambda d, s, port, pr: sel(s.kind == "node" and s.node != d.node)
         if d.ns == "x" else OPEN,
         extra_src=ALL_NODES + ["ext/client-1"], matrices=TCP80),
    Case("cnp", "to-cidr", "toCIDR 203.0.113.0/24",
         [CNP("x", "cidr", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  egress:\n"
              "  - toCIDR: [203.0.113.0/24]\n")],
         egress=lambda s, d, port, pr: sel(d.kind == "ext" and in_cidr(d.ip, "203.0.113.0/24"))
         if pod(s, "x", "a") else OPEN,
         extra_dst=ALL_EXT + ALL_NODES, matrices=(("TCP", 80), ("UDP", 80))),
    Case("cnp", "to-cidrset-except", "toCIDRSet with except",
         [CNP("x", "cidrset", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  egress:\n"
              "  - toCIDRSet:\n    - cidr: 203.0.113.0/24\n      except: [203.0.113.10/32]\n")],
         egress=lambda s, d, port, pr: sel(d.kind == "ext" and in_cidr(d.ip, "203.0.113.0/24")
                                           and d.ip != "203.0.113.10")
         if pod(s, "x", "a") else OPEN,
         extra_dst=ALL_EXT, matrices=TCP80),
    Case("cnp", "from-cidr", "fromCIDR with a bare address and a prefix",
         [CNP("x", "cidr", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromCIDR: [198.51.100.0/24, 203.0.113.20]\n")],
         ingress=lambda d, s, port, pr: sel(s.kind == "ext" and s.ip in ("198.51.100.20",
                                                                          "203.0.113.20"))
         if pod(d, "x", "a") else OPEN,
         extra_src=ALL_EXT + ALL_NODES, matrices=TCP80),
    Case("cnp", "specs-list", "specs: two rules with their own endpoint selectors",
         [CNP("x", "two", "specs:\n- endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints: [{matchLabels: {pod: b}}]\n"
              "- endpointSelector: {matchLabels: {pod: c}}\n  ingress:\n"
              "  - fromEndpoints: [{matchLabels: {pod: a}}]\n")],
         ingress=lambda d, s, port, pr: (sel(pod(s, "x", "b")) if pod(d, "x", "a") else
                                         sel(pod(s, "x", "a")) if pod(d, "x", "c") else OPEN)),
    Case("cnp", "icmp", "icmps type 8 admits echo requests only; no TCP",
         [CNP("x", "ping", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints: [{}]\n    icmps:\n    - fields: [{type: 8, family: IPv4}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x") and pr == "ICMP")
         if pod(d, "x", "a") else OPEN,
         matrices=(("ICMP", 0), ("TCP", 80))),
    Case("cnp", "l7-rules", "L7 rules are not enforced yet: the L3/L4 part applies (never "
         "allow-all)",
         [CNP("x", "http", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints: [{matchLabels: {pod: b}}]\n    toPorts:\n"
              "    - ports: [{port: \"80\", protocol: TCP}]\n      rules:\n"
              "        http: [{method: GET, path: /}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x", "b") and port == 80 and pr == "TCP")
         if pod(d, "x", "a") else OPEN),
    Case("cnp", "peers-or", "fromEndpoints and fromCIDR in one rule are alternatives, ANDed "
         "with toPorts",
         [CNP("x", "or", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints: [{matchLabels: {pod: b}}]\n    fromCIDR: [203.0.113.10/32]\n"
              "    toPorts:\n    - ports: [{port: \"80\", protocol: TCP}]\n")],
         ingress=lambda d, s, port, pr: sel((pod(s, "x", "b") or s.ref == "ext/client-1")
                                            and port == 80 and pr == "TCP")
         if pod(d, "x", "a") else OPEN,
         extra_src=ALL_EXT, matrices=(("TCP", 80), ("TCP", 81))),
    Case("cnp", "named-port", "a named port in toPorts",
         [CNP("x", "named", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEndpoints: [{}]\n    toPorts:\n    - ports: [{port: serve-81-tcp}]\n")],
         ingress=lambda d, s, port, pr: sel(pod(s, "x") and port == 81 and pr == "TCP")
         if pod(d, "x", "a") else OPEN),
    Case("cnp", "clusterwide-world-lockdown", "CCNP: deny the world, allow everything else",
         [CCNP("external-lockdown", "spec:\n  endpointSelector: {}\n  ingressDeny:\n"
               "  - fromEntities: [world]\n  ingress:\n  - fromEntities: [all]\n")],
         ingress=lambda d, s, port, pr: DENY if s.kind == "ext" else ALLOW,
         extra_src=ALL_NODES + ALL_EXT, matrices=(("TCP", 80), ("UDP", 81))),
    Case("cnp", "sctp-only", "an SCTP-only toPorts never opens TCP",
         [CNP("x", "sctp", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  ingress:\n"
              "  - fromEntities: [cluster]\n    toPorts:\n"
              "    - ports: [{port: \"80\", protocol: SCTP}]\n")],
         ingress=lambda d, s, port, pr: sel(pr == "SCTP" and port == 80)
         if pod(d, "x", "a") else OPEN,
         matrices=(("TCP", 80), ("SCTP", 80), ("SCTP", 81), ("UDP", 80))),
    Case("cnp", "egress-named-port-and-deny", "egress to the cluster on a named port, minus "
         "a deny to pod b of any namespace",
         [CNP("x", "out", "spec:\n  endpointSelector: {matchLabels: {pod: a}}\n  egress:\n"
              "  - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: y}}]\n"
              "    toPorts:\n    - ports: [{port: serve-80-udp, protocol: UDP}]\n"
              "  egressDeny:\n  - toEndpoints:\n    - matchExpressions:\n"
              "      - {key: k8s:io.kubernetes.pod.namespace, operator: Exists}\n"
              "      - {key: pod, operator: In, values: [b]}\n")],
         egress=lambda s, d, port, pr: (DENY if pod(d, None, "b") else
                                        sel(pod(d, "y") and port == 80 and pr == "UDP"))
         if pod(s, "x", "a") else OPEN),
]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    for case in NETPOL + CNPS:
        d = os.path.join(root, "scenarios", case.group)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, case.name + ".yaml"), "w") as f:
            f.write(case.render())
    print("wrote %d netpol and %d cnp scenarios" % (len(NETPOL), len(CNPS)))


if __name__ == "__main__":
    main()
