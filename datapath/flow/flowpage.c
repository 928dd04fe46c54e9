/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The flow page (flowpage.h). The C side writes the document's skeleton, the header counts
 * (so they are right even without scripts) and the flows as JSON data; the page's own inline
 * script draws the service map and the table from that data. Nothing is fetched: the page
 * carries a Content-Security-Policy that forbids every load but its own inline code.
 *
 * Safety of the embedded data: it sits in <script type="application/json">, whose text ends
 * at the first "</script"; the JSON is dumped ASCII-only and every '<', '>' and '&' in it
 * (they can only occur inside JSON strings) is written as \u003c, \u003e, \u0026, so no
 * label, pod name or title can end the block, open a comment or reach the HTML parser. The
 * script renders strings with textContent / setAttribute only, never as markup.
 */
#include "flow/flowpage.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the page's style and script (kept here so the page is one self-contained file) ---- */

static const char page_css[] =
	"* { box-sizing: border-box; }\n"
	"body { margin: 0; background: #f4f6f8; color: #1f2328;\n"
	"  font: 13px/1.4 \"DejaVu Sans\", \"Liberation Sans\", Arial, sans-serif; }\n"
	"header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 28px;\n"
	"  padding: 10px 20px; background: #fff; border-bottom: 1px solid #d0d7de; }\n"
	"h1 { margin: 0; font-size: 18px; }\n"
	"h2 { margin: 0 0 8px; font-size: 13px; color: #57606a; text-transform: uppercase;\n"
	"  letter-spacing: .05em; }\n"
	".counts { display: flex; flex-wrap: wrap; gap: 6px 22px; margin: 0; padding: 0;\n"
	"  list-style: none; color: #57606a; }\n"
	".counts b { color: #1f2328; font-size: 15px; }\n"
	".counts .forwarded b { color: #1a7f37; }\n"
	".counts .dropped b { color: #cf222e; }\n"
	"#lost-by-node { margin-left: 6px; }\n"
	"#lost-by-node:not(:empty)::before { content: \"(\"; }\n"
	"#lost-by-node:not(:empty)::after { content: \")\"; }\n"
	".lost-node + .lost-node::before { content: \", \"; color: #57606a;\n"
	"  font-weight: normal; }\n"
	".lost-node.has-lost { color: #9a6700; font-weight: bold; }\n"
	"#time-range { color: #57606a; font-size: 12px; }\n"
	"main { padding: 12px 20px 20px; }\n"
	"section { margin-bottom: 14px; padding: 10px 14px 12px; background: #fff;\n"
	"  border: 1px solid #d0d7de; border-radius: 6px; }\n"
	"#map { max-height: 62vh; overflow: auto; }\n"
	"#map svg { display: block; }\n"
	"#map svg text { font: 12px \"DejaVu Sans\", \"Liberation Sans\", Arial, sans-serif; }\n"
	".legend { margin: 6px 0 0; color: #57606a; font-size: 12px; }\n"
	".legend .sw { display: inline-block; width: 18px; height: 0; margin: 0 4px 3px 10px;\n"
	"  border-top: 3px solid; vertical-align: middle; }\n"
	".ns-box { fill: #f6f8fa; stroke: #afb8c1; }\n"
	".ns-title { font-weight: bold; fill: #24292f; }\n"
	".node { cursor: pointer; }\n"
	".node-box { fill: #fff; stroke: #8c959f; }\n"
	".node.reserved .node-box { fill: #fff8e1; stroke: #bf8700; }\n"
	".node:hover .node-box { stroke: #0969da; stroke-width: 2; }\n"
	".edge { cursor: pointer; }\n"
	".edge path { fill: none; }\n"
	".edge.forwarded path { stroke: #2da44e; }\n"
	".edge.dropped path { stroke: #cf222e; }\n"
	".edge.other path { stroke: #8c959f; stroke-dasharray: 5 3; }\n"
	".edge-label { cursor: pointer; paint-order: stroke; stroke: #fff; stroke-width: 4px;\n"
	"  stroke-linejoin: round;\n"
	"  font-size: 11px !important; }\n"
	".edge-label.forwarded { fill: #116329; }\n"
	".edge-label.dropped { fill: #cf222e; font-weight: bold; }\n"
	".edge-label.other { fill: #57606a; }\n"
	".dim { opacity: .13; }\n"
	"#filters { display: flex; flex-wrap: wrap; align-items: center; gap: 10px;\n"
	"  margin-bottom: 8px; }\n"
	"#filter-text { width: 380px; padding: 4px 8px; font: inherit; border: 1px solid #afb8c1;\n"
	"  border-radius: 4px; }\n"
	"#filter-verdict { padding: 3px 4px; font: inherit; }\n"
	"#count-shown, #rows-note { color: #57606a; }\n"
	"#flow-table { width: 100%; border-collapse: collapse; font-size: 12px; }\n"
	"#flow-table th { position: sticky; top: 0; padding: 5px 8px; text-align: left;\n"
	"  white-space: nowrap; cursor: pointer; user-select: none; background: #f6f8fa;\n"
	"  border-bottom: 1px solid #d0d7de; }\n"
	"#flow-table th:hover { background: #eaeef2; }\n"
	"#flow-table th[aria-sort=ascending]::after { content: \" \\25B2\"; font-size: 9px; }\n"
	"#flow-table th[aria-sort=descending]::after { content: \" \\25BC\"; font-size: 9px; }\n"
	"#flow-table td { padding: 3px 8px; white-space: nowrap;\n"
	"  border-bottom: 1px solid #eaeef2; }\n"
	"#flow-table tbody tr:hover { background: #f6f8fa; }\n"
	"#flow-table .addr { display: block; color: #6e7781; font-size: 11px; }\n"
	"#flow-table tr[data-verdict=DROPPED] { background: #fff5f5; }\n"
	"#flow-table tr[data-verdict=DROPPED] .c-verdict, #flow-table .c-reason { color: #cf222e;\n"
	"  font-weight: bold; }\n"
	"#flow-table tr[data-verdict=FORWARDED] .c-verdict { color: #1a7f37; }\n"
	"#flow-table .c-time, #flow-table .c-l4 { font-family: \"DejaVu Sans Mono\", monospace;\n"
	"  font-size: 11px; }\n"
	"#flow-table .hook { color: #57606a; }\n"
	"#flow-table tr.empty td { padding: 12px; color: #57606a; text-align: center; }\n";

static const char page_js[] =
	"(function () {\n"
	"'use strict';\n"
	"var data = JSON.parse(document.getElementById('flow-data').textContent);\n"
	"var SVGNS = 'http://www.w3.org/2000/svg';\n"
	"var MAX_ROWS = 2000;\n"
	"var VERDICT_CLASS = { DROPPED: 'dropped', FORWARDED: 'forwarded' };\n"
	"\n"
	"function attrs(e, a) {\n"
	"  for (var k in a)\n"
	"    if (a[k] !== undefined && a[k] !== null) e.setAttribute(k, String(a[k]));\n"
	"  return e;\n"
	"}\n"
	"function html(tag, a, text) {\n"
	"  var e = attrs(document.createElement(tag), a || {});\n"
	"  if (text !== undefined) e.textContent = text;\n"
	"  return e;\n"
	"}\n"
	"function svg(tag, a, text) {\n"
	"  var e = attrs(document.createElementNS(SVGNS, tag), a || {});\n"
	"  if (text !== undefined) e.textContent = text;\n"
	"  return e;\n"
	"}\n"
	"function str(v) { return v === undefined || v === null ? '' : String(v); }\n"
	"\n"
	"/* ---- one row per flow ---- */\n"
	"\n"
	"/* Cilium's reserved identities, for ends that come with a number but no labels */\n"
	"var RESERVED = { 1: 'host', 2: 'world', 3: 'unmanaged', 4: 'health', 5: 'init',\n"
	"                 6: 'remote-node', 7: 'kube-apiserver', 8: 'ingress', 9: 'world-ipv4',\n"
	"                 10: 'world-ipv6' };\n"
	"\n"
	"/* Who one end of a flow is: namespace/pod, else its reserved label (or reserved\n"
	"   identity), else its address. */\n"
	"function endOf(ep, ip) {\n"
	"  ep = ep || {};\n"
	"  if (ep.pod_name)\n"
	"    return { id: str(ep.namespace) + '/' + ep.pod_name, group: str(ep.namespace),\n"
	"             label: str(ep.pod_name), reserved: false };\n"
	"  var labels = ep.labels || [];\n"
	"  for (var i = 0; i < labels.length; i++)\n"
	"    if (String(labels[i]).indexOf('reserved:') === 0)\n"
	"      return { id: String(labels[i]), group: '', label: String(labels[i]),\n"
	"               reserved: true };\n"
	"  if (!labels.length && RESERVED[ep.identity]) {\n"
	"    var r = 'reserved:' + RESERVED[ep.identity];\n"
	"    return { id: r, group: '', label: r, reserved: true };\n"
	"  }\n"
	"  var a = str(ip) || '(unknown)';\n"
	"  return { id: a, group: '', label: a, reserved: true };\n"
	"}\n"
	"\n"
	"var FLAGS = ['SYN', 'FIN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];\n"
	"function l4Of(f) {\n"
	"  var l4 = f.l4 || {}, p, x;\n"
	"  var ported = ['TCP', 'UDP', 'SCTP'], icmp = ['ICMPv4', 'ICMPv6'];\n"
	"  for (var i = 0; i < ported.length; i++) {\n"
	"    p = ported[i];\n"
	"    if (!l4[p]) continue;\n"
	"    x = l4[p];\n"
	"    var fl = x.flags || {};\n"
	"    return { proto: p, sport: x.source_port || 0, dport: x.destination_port || 0,\n"
	"             flags: p !== 'TCP' ? '' :\n"
	"               FLAGS.filter(function (k) { return fl[k]; }).join(',') };\n"
	"  }\n"
	"  for (i = 0; i < icmp.length; i++) {\n"
	"    p = icmp[i];\n"
	"    if (!l4[p]) continue;\n"
	"    x = l4[p];\n"
	"    return { proto: p, icmp: true, type: x.type || 0, code: x.code || 0, flags: '' };\n"
	"  }\n"
	"  return { proto: '', flags: '' };\n"
	"}\n"
	"\n"
	"/* A key that sorts RFC 3339 UTC times by instant (fractions of any length). */\n"
	"function timeKey(t) {\n"
	"  var m = /^(.*T\\d\\d:\\d\\d:\\d\\d)(?:\\.(\\d+))?/.exec(t);\n"
	"  if (!m) return t;\n"
	"  return m[1] + '.' + ((m[2] || '') + '000000000').slice(0, 9);\n"
	"}\n"
	"function shortTime(t) {\n"
	"  var m = /T(\\d\\d:\\d\\d:\\d\\d)(?:\\.(\\d{1,3})\\d*)?/.exec(t);\n"
	"  if (!m) return t;\n"
	"  return m[1] + '.' + ((m[2] || '') + '000').slice(0, 3);\n"
	"}\n"
	"\n"
	"/* Which flows are replies. is_reply says so where the datapath knew; a packet whose\n"
	"   addresses and ports are those of a known reply, or the reverse of a connection's\n"
	"   first SYN, or a SYN-ACK, is one too (some hooks see packets without their conntrack\n"
	"   state). */\n"
	"function tupleOf(f, reverse) {\n"
	"  var ip = f.IP || {}, l4 = f.l4 || {}, t = l4.TCP || l4.UDP || l4.SCTP;\n"
	"  if (!t || !ip.source) return null;\n"
	"  var a = ip.source + ' ' + (t.source_port || 0), b = ip.destination + ' ' +\n"
	"          (t.destination_port || 0);\n"
	"  return (l4.TCP ? 'T ' : l4.UDP ? 'U ' : 'S ') + (reverse ? b + ' ' + a : a + ' ' + b);\n"
	"}\n"
	"var replyTuples = {}, openTuples = {};\n"
	"(data.flows || []).forEach(function (w) {\n"
	"  var f = w.flow || {}, k = tupleOf(f, false);\n"
	"  var fl = ((f.l4 || {}).TCP || {}).flags || {};\n"
	"  if (!k) return;\n"
	"  if (f.is_reply === true) replyTuples[k] = true;\n"
	"  else if (f.is_reply === false && fl.SYN && !fl.ACK) openTuples[k] = true;\n"
	"});\n"
	"function isReply(f) {\n"
	"  if (f.is_reply === true) return true;\n"
	"  var fl = ((f.l4 || {}).TCP || {}).flags || {}, k = tupleOf(f, false);\n"
	"  if (fl.SYN && fl.ACK) return true;\n"
	"  return !!k && (replyTuples[k] === true || openTuples[tupleOf(f, true)] === true);\n"
	"}\n"
	"\n"
	"var rows = (data.flows || []).map(function (w, i) {\n"
	"  var f = w.flow || {};\n"
	"  var ip = f.IP || {};\n"
	"  var src = endOf(f.source, ip.source), dst = endOf(f.destination, ip.destination);\n"
	"  var l = l4Of(f);\n"
	"  var reply = isReply(f);\n"
	"  var et = (f.event_type || {}).type;\n"
	"  var cil = f.ciliate || {};\n"
	"  var r = { i: i, flow: f, reply: reply, src: src, dst: dst };\n"
	"  r.time = str(f.time || w.time);\n"
	"  r.tkey = timeKey(r.time);\n"
	"  r.node = str(w.node_name || f.node_name);\n"
	"  r.verdict = str(f.verdict);\n"
	"  r.reason = str(f.drop_reason_desc ||\n"
	"                 (f.drop_reason ? 'reason ' + f.drop_reason : ''));\n"
	"  r.srcAddr = str(ip.source) + (l.sport ? ':' + l.sport : '');\n"
	"  r.dstAddr = str(ip.destination) + (l.dport ? ':' + l.dport : '');\n"
	"  if (l.icmp) {\n"
	"    r.l4 = l.proto + ' ' + l.type + '/' + l.code;\n"
	"    r.edgePort = l.proto;\n"
	"    r.l4key = l.proto + ' ' + ('00000' + l.type).slice(-5);\n"
	"  } else if (l.proto) {\n"
	"    r.l4 = l.proto + '/' + (reply ? l.sport : l.dport) + (l.flags ? ' ' + l.flags : '');\n"
	"    r.edgePort = l.proto + '/' + (reply ? l.sport : l.dport);\n"
	"    r.l4key = l.proto + ' ' + ('00000' + (reply ? l.sport : l.dport)).slice(-5);\n"
	"  } else {\n"
	"    r.l4 = '';\n"
	"    r.edgePort = 'IP';\n"
	"    r.l4key = '';\n"
	"  }\n"
	"  r.type = et === 1 ? 'drop' : et === 4 ? 'trace' :\n"
	"           et === 5 ? 'policy-verdict' : str(f.Type);\n"
	"  if (et === 5 && cil.policy_match_name) r.type += ':' + cil.policy_match_name;\n"
	"  if (et === 5 && f.traffic_direction) r.type += ' ' + f.traffic_direction;\n"
	"  if (f.is_reply === true) r.type += ' (reply)';\n"
	"  r.point = str(f.trace_observation_point || cil.hook);\n"
	"  r.pointIsHook = !f.trace_observation_point && !!cil.hook;\n"
	"  r.search = [r.time, r.node, src.id, dst.id, r.srcAddr, r.dstAddr, r.l4, r.edgePort,\n"
	"              r.type,\n"
	"              r.verdict, r.reason, r.point, str(f.uuid), str(cil.ct_state),\n"
	"              ((f.source || {}).labels || []).join(' '),\n"
	"              ((f.destination || {}).labels || []).join(' ')].join(' ').toLowerCase();\n"
	"  return r;\n"
	"});\n"
	"\n"
	"/* ---- the service map: one edge per (from, to, port, verdict); replies count on\n"
	"   the edge of the connection they answer ---- */\n"
	"\n"
	"var edges = [], edgeByKey = {}, nodes = {}, groups = {};\n"
	"function addNode(n) {\n"
	"  if (nodes[n.id]) return nodes[n.id];\n"
	"  var g = groups[n.group] || (groups[n.group] = { name: n.group, nodes: [] });\n"
	"  var node = { id: n.id, group: n.group, label: n.label, reserved: n.reserved,\n"
	"               edges: [] };\n"
	"  g.nodes.push(node);\n"
	"  nodes[n.id] = node;\n"
	"  return node;\n"
	"}\n"
	"rows.forEach(function (r) {\n"
	"  var a = r.reply ? r.dst : r.src, b = r.reply ? r.src : r.dst;\n"
	"  var v = r.verdict || 'UNKNOWN';\n"
	"  var key = [a.id, b.id, r.edgePort, v].join('\\u0000');\n"
	"  var e = edgeByKey[key];\n"
	"  if (!e) {\n"
	"    e = edgeByKey[key] = { id: 'edge-' + edges.length, from: addNode(a), to: addNode(b),\n"
	"                           port: r.edgePort, verdict: v, count: 0, reasons: [] };\n"
	"    e.from.edges.push(e);\n"
	"    if (e.to !== e.from) e.to.edges.push(e);\n"
	"    edges.push(e);\n"
	"  }\n"
	"  e.count++;\n"
	"  if (r.reason && e.reasons.indexOf(r.reason) < 0) e.reasons.push(r.reason);\n"
	"  r.edge = e;\n"
	"});\n"
	"\n"
	"function byName(a, b) { return a < b ? -1 : a > b ? 1 : 0; }\n"
	"/* names with numbers in order (pod-2 before pod-10), independent of the locale */\n"
	"function natural(a, b) {\n"
	"  var x = a.match(/\\d+|\\D+/g) || [], y = b.match(/\\d+|\\D+/g) || [];\n"
	"  for (var i = 0; i < x.length && i < y.length; i++) {\n"
	"    if (x[i] === y[i]) continue;\n"
	"    var nx = /^\\d/.test(x[i]), ny = /^\\d/.test(y[i]);\n"
	"    if (nx && ny && x[i].length !== y[i].length) {\n"
	"      var p = x[i].replace(/^0+/, ''), q = y[i].replace(/^0+/, '');\n"
	"      if (p.length !== q.length) return p.length - q.length;\n"
	"    }\n"
	"    return byName(x[i], y[i]);\n"
	"  }\n"
	"  return (x.length - y.length) || byName(a, b);\n"
	"}\n"
	"\n"
	"/* Layout, deterministic: namespaces in columns, their workloads in rows (by name),\n"
	"   the ends that are not pods (reserved identities, addresses) in a column of their\n"
	"   own. Columns start alphabetical (that one last); with up to 6 columns the order\n"
	"   that keeps connected columns closest wins, ties going to the alphabetical one. */\n"
	"var groupList = Object.keys(groups).sort(function (a, b) {\n"
	"  if ((a === '') !== (b === '')) return a === '' ? 1 : -1;\n"
	"  return natural(a, b);\n"
	"}).map(function (k) { return groups[k]; });\n"
	"groupList.forEach(function (g) {\n"
	"  g.nodes.sort(function (a, b) { return natural(a.label, b.label); });\n"
	"});\n"
	"\n"
	"function spanCost(order) {\n"
	"  var col = {}, cost = 0;\n"
	"  order.forEach(function (g, c) { col[g.name] = c; });\n"
	"  edges.forEach(function (e) {\n"
	"    cost += Math.abs(col[e.from.group] - col[e.to.group]);\n"
	"  });\n"
	"  return cost;\n"
	"}\n"
	"function bestOrder(list) {\n"
	"  if (list.length < 3 || list.length > 6) return list;\n"
	"  var best = list, bestCost = spanCost(list);\n"
	"  (function permute(prefix, rest) {\n"
	"    if (!rest.length) {\n"
	"      var c = spanCost(prefix);\n"
	"      if (c < bestCost) { best = prefix; bestCost = c; }\n"
	"      return;\n"
	"    }\n"
	"    rest.forEach(function (g, i) {\n"
	"      permute(prefix.concat([g]), rest.slice(0, i).concat(rest.slice(i + 1)));\n"
	"    });\n"
	"  })([], list);\n"
	"  return best;\n"
	"}\n"
	"groupList = bestOrder(groupList);\n"
	"\n"
	"/* Inside a namespace, the workloads that call each other go left to right in layers\n"
	"   (longest path from the callers, cycles broken where a depth-first walk in name order\n"
	"   meets them, at most `cap`: fewer when the boxes would not fit the page's width),\n"
	"   each workload on a row of its own (by layer, then name), so an arrow leaving a box\n"
	"   sideways never runs through another workload. A namespace where only one pair of\n"
	"   workloads talks keeps a single column (its arrows loop beside it). */\n"
	"var MAX_LAYERS = 4;\n"
	"function layerGroup(g, cap) {\n"
	"  var inside = {}, succ = {}, state = {}, post = [];\n"
	"  g.nodes.forEach(function (n) { inside[n.id] = true; n.layer = 0; });\n"
	"  var pairs = {}, npairs = 0;\n"
	"  edges.forEach(function (e) {\n"
	"    if (e.from === e.to || !inside[e.from.id] || !inside[e.to.id]) return;\n"
	"    (succ[e.from.id] = succ[e.from.id] || []).push(e.to);\n"
	"    var k = [e.from.id, e.to.id].sort().join('\\u0000');\n"
	"    if (!pairs[k]) { pairs[k] = true; npairs++; }\n"
	"  });\n"
	"  if (npairs < 2) cap = 1;\n"
	"  var dag = {};\n"
	"  g.nodes.forEach(function (root) {\n"
	"    if (state[root.id]) return;\n"
	"    var stack = [[root, 0]];\n"
	"    state[root.id] = 1;\n"
	"    while (stack.length) {\n"
	"      var top = stack[stack.length - 1], next = (succ[top[0].id] || [])[top[1]++];\n"
	"      if (!next) {\n"
	"        state[top[0].id] = 2;\n"
	"        post.push(top[0]);\n"
	"        stack.pop();\n"
	"        continue;\n"
	"      }\n"
	"      if (state[next.id] === 1) continue; /* a back edge: leave it out */\n"
	"      (dag[top[0].id] = dag[top[0].id] || []).push(next);\n"
	"      if (!state[next.id]) {\n"
	"        state[next.id] = 1;\n"
	"        stack.push([next, 0]);\n"
	"      }\n"
	"    }\n"
	"  });\n"
	"  for (var i = post.length - 1; i >= 0; i--)\n"
	"    (dag[post[i].id] || []).forEach(function (m) {\n"
	"      m.layer = Math.min(cap - 1, Math.max(m.layer, post[i].layer + 1));\n"
	"    });\n"
	"  g.layers = 1 + g.nodes.reduce(function (m, n) { return Math.max(m, n.layer); }, 0);\n"
	"  g.nodes.sort(function (a, b) {\n"
	"    return (a.layer - b.layer) || natural(a.label, b.label);\n"
	"  });\n"
	"}\n"
	"\n"
	"var PAD = 16, NODE_W = 200, LAYER_GAP = 70, GAP = 160, HEAD = 34, ROW = 60;\n"
	"var NODE_H = 30, INSET = 14;\n"
	"var RIGHT_ROOM = 200;\n"
	"function boxWidth(g) {\n"
	"  return 2 * INSET + g.layers * NODE_W + (g.layers - 1) * LAYER_GAP;\n"
	"}\n"
	"function fit(text, max) {\n"
	"  return text.length > max ? text.slice(0, max - 1) + '\\u2026' : text;\n"
	"}\n"
	"\n"
	"function bezier(p, t) {\n"
	"  var u = 1 - t;\n"
	"  var a = u * u * u, b = 3 * u * u * t, c = 3 * u * t * t, d = t * t * t;\n"
	"  return [a * p[0] + b * p[2] + c * p[4] + d * p[6],\n"
	"          a * p[1] + b * p[3] + c * p[5] + d * p[7]];\n"
	"}\n"
	"function overlaps(a, b) {\n"
	"  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;\n"
	"}\n"
	"\n"
	"/* Which side of each end an edge leaves / enters: 'r' or 'l'. */\n"
	"function sides(e) {\n"
	"  var a = e.from, b = e.to;\n"
	"  if (a === b) return ['r', 'r'];\n"
	"  if (a.col === b.col) {\n"
	"    if (a.layer === b.layer) return ['r', 'r'];\n"
	"    return a.layer < b.layer ? ['r', 'l'] : ['l', 'r'];\n"
	"  }\n"
	"  return a.col < b.col ? ['r', 'l'] : ['l', 'r'];\n"
	"}\n"
	"\n"
	"/* Spreads the ends that meet one side of a workload along it, ordered by where\n"
	"   the other end is, so arrows into one box do not pile up on one point. */\n"
	"function assignPorts() {\n"
	"  var slots = {};\n"
	"  edges.forEach(function (e) {\n"
	"    if (e.from === e.to) { e.off = [-7, 7]; return; }\n"
	"    var sd = sides(e);\n"
	"    e.off = [0, 0];\n"
	"    [[e.from, sd[0], 0, e.to], [e.to, sd[1], 1, e.from]].forEach(function (x) {\n"
	"      var k = x[0].id + '\\u0000' + x[1];\n"
	"      (slots[k] = slots[k] || []).push({ e: e, end: x[2], other: x[3] });\n"
	"    });\n"
	"  });\n"
	"  Object.keys(slots).forEach(function (k) {\n"
	"    var list = slots[k];\n"
	"    list.sort(function (p, q) {\n"
	"      return (p.other.cy - q.other.cy) || (p.other.col - q.other.col) ||\n"
	"             (p.e.fan - q.e.fan) || (p.end - q.end);\n"
	"    });\n"
	"    var step = list.length > 1 ? Math.min(8, (NODE_H - 10) / (list.length - 1)) : 0;\n"
	"    list.forEach(function (x, i) {\n"
	"      x.e.off[x.end] = (i - (list.length - 1) / 2) * step;\n"
	"    });\n"
	"  });\n"
	"}\n"
	"\n"
	"/* The curve of one edge: [x0,y0, c1x,c1y, c2x,c2y, x1,y1]. */\n"
	"function edgeCurve(e, bottomOf) {\n"
	"  var a = e.from, b = e.to;\n"
	"  var bend = e.fan * 22;\n"
	"  var y1 = a.cy + e.off[0], y2 = b.cy + e.off[1];\n"
	"  if (a === b) {\n"
	"    var x0 = a.x + a.w;\n"
	"    return [x0, y1, x0 + 50, a.cy - 34, x0 + 50, a.cy + 34, x0, y2];\n"
	"  }\n"
	"  if (a.col === b.col && a.layer === b.layer) {\n"
	"    var out = 40 + Math.abs(a.cy - b.cy) * 0.35 + e.fan * 24;\n"
	"    return [a.x + a.w, y1, a.x + a.w + out, y1, b.x + b.w + out, y2, b.x + b.w, y2];\n"
	"  }\n"
	"  var right = a.col === b.col ? a.layer < b.layer : a.col < b.col;\n"
	"  var x1 = right ? a.x + a.w : a.x, x2 = right ? b.x : b.x + b.w;\n"
	"  var dx = (x2 - x1) * 0.4;\n"
	"  var lo = Math.min(a.col, b.col), hi = Math.max(a.col, b.col);\n"
	"  if (a.col !== b.col && hi - lo > 1) {\n"
	"    /* passing other columns: dip below their boxes */\n"
	"    var floor = 0;\n"
	"    for (var c = lo + 1; c < hi; c++) floor = Math.max(floor, bottomOf[c]);\n"
	"    var mid = floor + 22 + Math.abs(e.fan) * 14;\n"
	"    var cy = (8 * mid - y1 - y2) / 6;\n"
	"    return [x1, y1, x1 + dx, cy, x2 - dx, cy, x2, y2];\n"
	"  }\n"
	"  return [x1, y1, x1 + dx, y1 + bend, x2 - dx, y2 + bend, x2, y2];\n"
	"}\n"
	"\n"
	"function drawMap() {\n"
	"  var host = document.getElementById('map');\n"
	"  if (!edges.length) {\n"
	"    host.appendChild(html('p', { 'class': 'empty' }, 'No flows to draw.'));\n"
	"    return;\n"
	"  }\n"
	"  var n = groupList.length, last = groupList[n - 1];\n"
	"  var room = (host.clientWidth || 1300) - 2 * PAD;\n"
	"  for (var cap = MAX_LAYERS; cap >= 1; cap--) {\n"
	"    groupList.forEach(function (g) { layerGroup(g, cap); });\n"
	"    var need = groupList.reduce(function (sum, g) {\n"
	"      return sum + boxWidth(g) + GAP;\n"
	"    }, -GAP);\n"
	"    if (need <= room) break;\n"
	"  }\n"
	"  var loops = edges.some(function (e) {\n"
	"    return e.from.group === last.name && e.to.group === last.name &&\n"
	"           e.from.layer === e.to.layer;\n"
	"  });\n"
	"  var rightRoom = loops ? RIGHT_ROOM : PAD;\n"
	"  var boxes = groupList.reduce(function (sum, g) { return sum + boxWidth(g); }, 0);\n"
	"  var gap = GAP;\n"
	"  if (n > 1) {\n"
	"    var avail = (host.clientWidth || 1300) - PAD - boxes - rightRoom;\n"
	"    gap = Math.max(GAP, Math.min(340, Math.floor(avail / (n - 1))));\n"
	"  }\n"
	"  var tallest = 0, bottomOf = [], x = PAD;\n"
	"  groupList.forEach(function (g, c) {\n"
	"    g.x = x;\n"
	"    g.w = boxWidth(g);\n"
	"    x += g.w + gap;\n"
	"    g.h = HEAD + g.nodes.length * ROW;\n"
	"    tallest = Math.max(tallest, g.h);\n"
	"    bottomOf[c] = PAD + g.h;\n"
	"    g.nodes.forEach(function (n, k) {\n"
	"      n.x = g.x + INSET + n.layer * (NODE_W + LAYER_GAP);\n"
	"      n.w = NODE_W;\n"
	"      n.cx = n.x + n.w / 2;\n"
	"      n.cy = PAD + HEAD + k * ROW + NODE_H / 2 + 4;\n"
	"      n.col = c;\n"
	"    });\n"
	"  });\n"
	"  var width = PAD + boxes + (n - 1) * gap + rightRoom;\n"
	"  var root = svg('svg', { id: 'service-map', width: width, height: PAD * 2 + tallest,\n"
	"                          role: 'img', 'aria-label': 'service map' });\n"
	"  host.appendChild(root);\n"
	"  var defs = svg('defs');\n"
	"  var colors = [['forwarded', '#2da44e'], ['dropped', '#cf222e'], ['other', '#8c959f']];\n"
	"  colors.forEach(function (m) {\n"
	"    var mk = svg('marker', { id: 'arrow-' + m[0], viewBox: '0 0 10 10', refX: 9,\n"
	"                             refY: 5,\n"
	"                             markerWidth: 9, markerHeight: 9,\n"
	"                             markerUnits: 'userSpaceOnUse',\n"
	"                             orient: 'auto' });\n"
	"    mk.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: m[1] }));\n"
	"    defs.appendChild(mk);\n"
	"  });\n"
	"  root.appendChild(defs);\n"
	"\n"
	"  /* boxes labels must not cover (titles, workloads, placed labels), on a grid */\n"
	"  var GRID = 120, grid = {};\n"
	"  function cells(b, f) {\n"
	"    for (var gx = Math.floor(b.x / GRID); gx <= Math.floor((b.x + b.w) / GRID); gx++)\n"
	"      for (var gy = Math.floor(b.y / GRID); gy <= Math.floor((b.y + b.h) / GRID); gy++)\n"
	"        f(gx + ',' + gy);\n"
	"  }\n"
	"  function take(b) { cells(b, function (k) { (grid[k] = grid[k] || []).push(b); }); }\n"
	"  function free(b) {\n"
	"    var ok = true;\n"
	"    cells(b, function (k) {\n"
	"      if (ok && grid[k] && grid[k].some(function (o) { return overlaps(o, b); }))\n"
	"        ok = false;\n"
	"    });\n"
	"    return ok;\n"
	"  }\n"
	"  var gl = svg('g', { 'class': 'namespaces' });\n"
	"  groupList.forEach(function (g) {\n"
	"    var box = svg('g', { 'class': 'ns', 'data-namespace': g.name });\n"
	"    box.appendChild(svg('rect', { 'class': 'ns-box', x: g.x, y: PAD, width: g.w,\n"
	"                                  height: g.h,\n"
	"                                  rx: 6 }));\n"
	"    box.appendChild(svg('text', { 'class': 'ns-title', x: g.x + 10, y: PAD + 20 },\n"
	"                        g.name ? 'namespace ' + g.name : 'reserved & external'));\n"
	"    gl.appendChild(box);\n"
	"    take({ x: g.x, y: PAD, w: g.w, h: HEAD - 4 });\n"
	"  });\n"
	"  root.appendChild(gl);\n"
	"\n"
	"  var nl = svg('g', { 'class': 'nodes' });\n"
	"  groupList.forEach(function (g) {\n"
	"    g.nodes.forEach(function (n) {\n"
	"      var ng = svg('g', { 'class': 'node' + (n.reserved ? ' reserved' : ''),\n"
	"                          'data-node': n.id,\n"
	"                          'data-namespace': n.group });\n"
	"      ng.appendChild(svg('title', {}, n.id));\n"
	"      ng.appendChild(svg('rect', { 'class': 'node-box', x: n.x, y: n.cy - NODE_H / 2,\n"
	"                                   width: n.w, height: NODE_H, rx: 4 }));\n"
	"      ng.appendChild(svg('text', { x: n.x + 9, y: n.cy + 4 }, fit(n.label, 27)));\n"
	"      ng.addEventListener('click', function () { setText(n.id); });\n"
	"      n.el = ng;\n"
	"      nl.appendChild(ng);\n"
	"      take({ x: n.x - 4, y: n.cy - NODE_H / 2 - 2, w: n.w + 8, h: NODE_H + 4 });\n"
	"    });\n"
	"  });\n"
	"  root.appendChild(nl);\n"
	"\n"
	"  /* edges between the same two workloads fan out */\n"
	"  var pairs = {};\n"
	"  edges.forEach(function (e) {\n"
	"    var k = [e.from.id, e.to.id].sort().join('\\u0000');\n"
	"    (pairs[k] = pairs[k] || []).push(e);\n"
	"  });\n"
	"  Object.keys(pairs).forEach(function (k) {\n"
	"    var list = pairs[k];\n"
	"    list.forEach(function (e, j) { e.fan = j - (list.length - 1) / 2; });\n"
	"  });\n"
	"  assignPorts();\n"
	"\n"
	"  var el = svg('g', { 'class': 'edges' });\n"
	"  var maxY = PAD * 2 + tallest, maxX = 0;\n"
	"  edges.forEach(function (e) {\n"
	"    var a = e.from, b = e.to, p = edgeCurve(e, bottomOf);\n"
	"    var cls = VERDICT_CLASS[e.verdict] || 'other';\n"
	"    var g = svg('g', { 'class': 'edge ' + cls, 'data-verdict': e.verdict, id: e.id,\n"
	"                       'data-from': a.id, 'data-to': b.id, 'data-port': e.port,\n"
	"                       'data-count': e.count,\n"
	"                       'data-reason': e.reasons.join(',') || null });\n"
	"    g.appendChild(svg('title', {}, a.id + ' \\u2192 ' + b.id + '  ' + e.port + ': ' +\n"
	"                      e.count +\n"
	"                      ' flow' + (e.count === 1 ? '' : 's') + ' ' + e.verdict +\n"
	"                      (e.reasons.length ? ' (' + e.reasons.join(', ') + ')' : '')));\n"
	"    g.appendChild(svg('path', { d: 'M' + p[0] + ',' + p[1] + ' C' + p[2] + ',' + p[3] +\n"
	"                                   ' ' +\n"
	"                                   p[4] + ',' + p[5] + ' ' + p[6] + ',' + p[7],\n"
	"                                'stroke-width':\n"
	"                                  Math.min(4.5, 1.6 + Math.log(e.count) * 0.9),\n"
	"                                'marker-end': 'url(#arrow-' + cls + ')' }));\n"
	"    g.addEventListener('click', function () {\n"
	"      setText(a.id + ' ' + b.id + ' ' + e.port);\n"
	"    });\n"
	"    e.el = g;\n"
	"    e.curve = p;\n"
	"    el.appendChild(g);\n"
	"    for (var t = 0; t <= 1; t += 0.125) {\n"
	"      var q = bezier(p, t);\n"
	"      maxY = Math.max(maxY, q[1] + 10);\n"
	"      maxX = Math.max(maxX, q[0] + 12);\n"
	"    }\n"
	"  });\n"
	"  root.appendChild(el);\n"
	"  /* labels above every arrow, so no later arrow crosses out an earlier label */\n"
	"  var ll = svg('g', { 'class': 'edge-labels' });\n"
	"  root.appendChild(ll);\n"
	"\n"
	"  /* labels: drops first, each at the first spot along its curve that covers nothing */\n"
	"  var order = edges.slice().sort(function (x, y) {\n"
	"    return (y.verdict === 'DROPPED') - (x.verdict === 'DROPPED');\n"
	"  });\n"
	"  var TS = [0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74, 0.18, 0.82];\n"
	"  order.forEach(function (e) {\n"
	"    var label = e.port + ' \\u00d7' + e.count +\n"
	"                (e.reasons.length ? '  ' + e.reasons.join(',') : '');\n"
	"    var cls = VERDICT_CLASS[e.verdict] || 'other';\n"
	"    var text = svg('text', { 'class': 'edge-label ' + cls, 'data-verdict': e.verdict,\n"
	"                             'data-edge': e.id, 'text-anchor': 'middle' }, label);\n"
	"    text.addEventListener('click', function () {\n"
	"      setText(e.from.id + ' ' + e.to.id + ' ' + e.port);\n"
	"    });\n"
	"    e.label = text;\n"
	"    ll.appendChild(text);\n"
	"    var w = text.getComputedTextLength ? text.getComputedTextLength() : 0;\n"
	"    if (!w) w = label.length * 6.4;\n"
	"    var best = null;\n"
	"    for (var i = 0; i < TS.length && !best; i++) {\n"
	"      var pt = bezier(e.curve, TS[i]);\n"
	"      [-5, 14, -18, 27].forEach(function (dy) {\n"
	"        if (best) return;\n"
	"        var box = { x: pt[0] - w / 2 - 3, y: pt[1] + dy - 11, w: w + 6, h: 14 };\n"
	"        if (free(box))\n"
	"          best = { x: pt[0], y: pt[1] + dy, box: box };\n"
	"      });\n"
	"    }\n"
	"    if (!best) {\n"
	"      var mid = bezier(e.curve, 0.5);\n"
	"      best = { x: mid[0], y: mid[1] - 5,\n"
	"               box: { x: mid[0] - w / 2, y: mid[1] - 16, w: w, h: 14 } };\n"
	"    }\n"
	"    take(best.box);\n"
	"    text.setAttribute('x', best.x);\n"
	"    text.setAttribute('y', best.y);\n"
	"    maxY = Math.max(maxY, best.y + 8);\n"
	"    maxX = Math.max(maxX, best.box.x + best.box.w + 4);\n"
	"  });\n"
	"  root.setAttribute('height', Math.ceil(maxY + PAD));\n"
	"  root.setAttribute('width', Math.ceil(Math.max(width, maxX + PAD)));\n"
	"}\n"
	"\n"
	"/* ---- the table ---- */\n"
	"\n"
	"var COLUMNS = [\n"
	"  ['time', 'time'], ['node', 'node'], ['source', 'source'],\n"
	"  ['destination', 'destination'],\n"
	"  ['l4', 'protocol/port'], ['type', 'type'], ['verdict', 'verdict'],\n"
	"  ['reason', 'drop reason'], ['point', 'observation point']\n"
	"];\n"
	"var SORT = {\n"
	"  time: function (r) { return r.tkey; },\n"
	"  node: function (r) { return r.node; },\n"
	"  source: function (r) { return r.src.id; },\n"
	"  destination: function (r) { return r.dst.id; },\n"
	"  l4: function (r) { return r.l4key; },\n"
	"  type: function (r) { return r.type; },\n"
	"  verdict: function (r) { return r.verdict; },\n"
	"  reason: function (r) { return r.reason; },\n"
	"  point: function (r) { return r.point; }\n"
	"};\n"
	"var state = { q: '', verdict: '', sort: 'time', dir: 1 };\n"
	"\n"
	"var table = document.getElementById('flow-table');\n"
	"var tbody = table.tBodies[0];\n"
	"var textBox = document.getElementById('filter-text');\n"
	"var verdictBox = document.getElementById('filter-verdict');\n"
	"\n"
	"function buildHead() {\n"
	"  var tr = table.tHead.rows[0];\n"
	"  COLUMNS.forEach(function (c) {\n"
	"    var th = html('th', { 'data-key': c[0], scope: 'col', title: 'sort by ' + c[1] },\n"
	"                  c[1]);\n"
	"    th.addEventListener('click', function () {\n"
	"      if (state.sort === c[0]) state.dir = -state.dir;\n"
	"      else { state.sort = c[0]; state.dir = 1; }\n"
	"      apply();\n"
	"    });\n"
	"    tr.appendChild(th);\n"
	"  });\n"
	"}\n"
	"\n"
	"function addVerdictOption(v) {\n"
	"  for (var i = 0; i < verdictBox.options.length; i++)\n"
	"    if (verdictBox.options[i].value === v) return;\n"
	"  verdictBox.appendChild(html('option', { value: v }, v));\n"
	"}\n"
	"\n"
	"function cell(tr, cls, text, extra) {\n"
	"  var td = html('td', { 'class': cls }, text);\n"
	"  if (extra) td.appendChild(html('span', { 'class': 'addr' }, extra));\n"
	"  tr.appendChild(td);\n"
	"  return td;\n"
	"}\n"
	"\n"
	"function rowEl(r) {\n"
	"  var tr = html('tr', { 'data-verdict': r.verdict, 'data-node': r.node,\n"
	"                        'data-src': r.src.id,\n"
	"                        'data-dst': r.dst.id, 'data-edge': r.edge.id,\n"
	"                        'data-reason': r.reason || null,\n"
	"                        'data-uuid': r.flow.uuid || null });\n"
	"  cell(tr, 'c-time', shortTime(r.time)).title = r.time;\n"
	"  cell(tr, 'c-node', r.node);\n"
	"  cell(tr, 'c-src', r.src.id, r.srcAddr !== r.src.id ? r.srcAddr : '');\n"
	"  cell(tr, 'c-dst', r.dst.id, r.dstAddr !== r.dst.id ? r.dstAddr : '');\n"
	"  cell(tr, 'c-l4', r.l4);\n"
	"  cell(tr, 'c-type', r.type);\n"
	"  cell(tr, 'c-verdict', r.verdict);\n"
	"  cell(tr, 'c-reason', r.reason);\n"
	"  cell(tr, 'c-point' + (r.pointIsHook ? ' hook' : ''), r.point).title =\n"
	"    r.pointIsHook ? 'the hook that saw it' : 'trace observation point';\n"
	"  return tr;\n"
	"}\n"
	"\n"
	"function matches(r, terms) {\n"
	"  if (state.verdict && r.verdict !== state.verdict) return false;\n"
	"  for (var i = 0; i < terms.length; i++)\n"
	"    if (r.search.indexOf(terms[i]) < 0) return false;\n"
	"  return true;\n"
	"}\n"
	"\n"
	"function apply() {\n"
	"  var terms = state.q.toLowerCase().split(/\\s+/).filter(Boolean);\n"
	"  var shown = rows.filter(function (r) { return matches(r, terms); });\n"
	"  var key = SORT[state.sort] || SORT.time, dir = state.dir;\n"
	"  shown.sort(function (a, b) {\n"
	"    var x = key(a), y = key(b);\n"
	"    if (x !== y) return (x < y ? -1 : 1) * dir;\n"
	"    if (a.tkey !== b.tkey) return a.tkey < b.tkey ? -1 : 1;\n"
	"    return a.i - b.i;\n"
	"  });\n"
	"  var frag = document.createDocumentFragment();\n"
	"  shown.slice(0, MAX_ROWS).forEach(function (r) { frag.appendChild(rowEl(r)); });\n"
	"  if (!shown.length) {\n"
	"    var tr = html('tr', { 'class': 'empty' });\n"
	"    tr.appendChild(html('td', { colspan: COLUMNS.length },\n"
	"                        rows.length ? 'No flow matches the filter.' : 'No flows.'));\n"
	"    frag.appendChild(tr);\n"
	"  }\n"
	"  tbody.textContent = '';\n"
	"  tbody.appendChild(frag);\n"
	"  var countEl = document.getElementById('count-shown');\n"
	"  countEl.textContent = 'showing ' + shown.length + ' of ' + rows.length + ' flows';\n"
	"  countEl.setAttribute('data-count', shown.length);\n"
	"  document.getElementById('rows-note').textContent = shown.length > MAX_ROWS ?\n"
	"    '(the table lists the first ' + MAX_ROWS + '; narrow the filter to see the rest)' :\n"
	"    '';\n"
	"  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {\n"
	"    var k = th.getAttribute('data-key');\n"
	"    if (k === state.sort)\n"
	"      th.setAttribute('aria-sort', dir > 0 ? 'ascending' : 'descending');\n"
	"    else th.removeAttribute('aria-sort');\n"
	"  });\n"
	"  /* the map highlights what remains */\n"
	"  var filtering = terms.length > 0 || state.verdict !== '';\n"
	"  var live = {};\n"
	"  shown.forEach(function (r) { live[r.edge.id] = true; });\n"
	"  edges.forEach(function (e) {\n"
	"    if (!e.el) return;\n"
	"    var on = !filtering || live[e.id];\n"
	"    e.el.classList.toggle('dim', !on);\n"
	"    e.el.setAttribute('data-shown', on ? 'true' : 'false');\n"
	"    if (e.label) e.label.classList.toggle('dim', !on);\n"
	"  });\n"
	"  Object.keys(nodes).forEach(function (id) {\n"
	"    var n = nodes[id];\n"
	"    if (!n.el) return;\n"
	"    var on = !filtering || n.edges.some(function (e) { return live[e.id]; });\n"
	"    n.el.classList.toggle('dim', !on);\n"
	"    n.el.setAttribute('data-shown', on ? 'true' : 'false');\n"
	"  });\n"
	"  writeHash();\n"
	"}\n"
	"\n"
	"/* The filter lives in the URL's fragment (#verdict=DROPPED&q=ledger&sort=time:desc),\n"
	"   so a link or a reload shows the same view. */\n"
	"function readHash() {\n"
	"  var h = location.hash.replace(/^#/, '');\n"
	"  if (!h) return;\n"
	"  h.split('&').forEach(function (part) {\n"
	"    var eq = part.indexOf('='), k, v;\n"
	"    try {\n"
	"      k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));\n"
	"      v = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replace(/\\+/g, ' '));\n"
	"    } catch (err) {\n"
	"      return;\n"
	"    }\n"
	"    if (k === 'verdict') state.verdict = v.toUpperCase();\n"
	"    else if (k === 'q') state.q = v;\n"
	"    else if (k === 'sort') {\n"
	"      var s = v.split(':');\n"
	"      if (SORT[s[0]]) { state.sort = s[0]; state.dir = s[1] === 'desc' ? -1 : 1; }\n"
	"    }\n"
	"  });\n"
	"}\n"
	"function writeHash() {\n"
	"  var parts = [];\n"
	"  if (state.verdict) parts.push('verdict=' + encodeURIComponent(state.verdict));\n"
	"  if (state.q) parts.push('q=' + encodeURIComponent(state.q));\n"
	"  if (state.sort !== 'time' || state.dir !== 1)\n"
	"    parts.push('sort=' + state.sort + (state.dir < 0 ? ':desc' : ''));\n"
	"  var h = parts.length ? '#' + parts.join('&') : '';\n"
	"  if (h === location.hash || (!h && !location.hash)) return;\n"
	"  try {\n"
	"    history.replaceState(null, '', h || location.pathname + location.search);\n"
	"  } catch (err) {\n"
	"    /* some browsers refuse history changes for file:// pages; the view still works */\n"
	"  }\n"
	"}\n"
	"\n"
	"function setText(q) {\n"
	"  state.q = q;\n"
	"  textBox.value = q;\n"
	"  apply();\n"
	"}\n"
	"\n"
	"function showRange() {\n"
	"  if (!rows.length) return;\n"
	"  var lo = rows[0], hi = rows[0];\n"
	"  rows.forEach(function (r) {\n"
	"    if (r.tkey < lo.tkey) lo = r;\n"
	"    if (r.tkey > hi.tkey) hi = r;\n"
	"  });\n"
	"  var DAY = /^(\\d{4}-\\d\\d-\\d\\d)T/;\n"
	"  var a = DAY.exec(lo.time), b = DAY.exec(hi.time);\n"
	"  var el = document.getElementById('time-range');\n"
	"  el.title = lo.time + ' \\u2014 ' + hi.time;\n"
	"  if (a && b && /Z$/.test(lo.time) && /Z$/.test(hi.time))\n"
	"    el.textContent = a[1] + ' ' + shortTime(lo.time) + ' \\u2014 ' +\n"
	"                     (a[1] === b[1] ? '' : b[1] + ' ') + shortTime(hi.time) + ' UTC';\n"
	"  else\n"
	"    el.textContent = el.title;\n"
	"}\n"
	"\n"
	"buildHead();\n"
	"rows.map(function (r) { return r.verdict; }).filter(Boolean).sort()\n"
	"  .forEach(function (v) { addVerdictOption(v); });\n"
	"readHash();\n"
	"if (state.verdict) addVerdictOption(state.verdict);\n"
	"textBox.value = state.q;\n"
	"verdictBox.value = state.verdict;\n"
	"textBox.addEventListener('input', function () { state.q = textBox.value; apply(); });\n"
	"verdictBox.addEventListener('change', function () {\n"
	"  state.verdict = verdictBox.value;\n"
	"  apply();\n"
	"});\n"
	"window.addEventListener('hashchange', function () {\n"
	"  state = { q: '', verdict: '', sort: 'time', dir: 1 };\n"
	"  readHash();\n"
	"  if (state.verdict) addVerdictOption(state.verdict);\n"
	"  textBox.value = state.q;\n"
	"  verdictBox.value = state.verdict;\n"
	"  apply();\n"
	"});\n"
	"drawMap();\n"
	"showRange();\n"
	"apply();\n"
	"document.body.setAttribute('data-ready', 'true');\n"
	"})();\n";

/* ---- counts ---- */

struct node_count {
	const char *node; /* borrowed from a flow record */
	json_int_t lost;
};

struct page_sum {
	size_t flows, forwarded, dropped;
	json_int_t lost;
	struct node_count *nodes;
	size_t nnodes, cap;
};

/* Adds lost to node's count (creating it). */
static int sum_node(struct page_sum *s, const char *node, json_int_t lost)
{
	size_t i;

	for (i = 0; i < s->nnodes; i++) {
		if (strcmp(s->nodes[i].node, node) == 0) {
			s->nodes[i].lost += lost;
			return 0;
		}
	}
	if (s->nnodes == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct node_count *v = realloc(s->nodes, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->nodes = v;
		s->cap = cap;
	}
	s->nodes[s->nnodes].node = node;
	s->nodes[s->nnodes].lost = lost;
	s->nnodes++;
	return 0;
}

static int node_cmp(const void *a, const void *b)
{
	return strcmp(((const struct node_count *)a)->node, ((const struct node_count *)b)->node);
}

static const char *str_field(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

/* Splits the records into data.flows / data.lost (wrapped as given; a bare flow, as Hubble's
 * legacy output prints it, is wrapped) and counts them. Other records (agent_event, ...)
 * are skipped. */
static int collect(json_t *const *recs, size_t n, json_t *flows, json_t *lost, struct page_sum *s)
{
	size_t i;

	for (i = 0; i < n; i++) {
		json_t *rec = recs[i], *flow, *le;
		const char *node, *verdict;

		if (!json_is_object(rec))
			continue;
		flow = json_object_get(rec, "flow");
		le = json_object_get(rec, "lost_events");
		if (json_is_object(le)) {
			json_int_t num = json_integer_value(json_object_get(le, "num_events_lost"));

			node = str_field(rec, "node_name");
			if (!*node)
				node = "(unknown node)";
			if (json_array_append(lost, rec) || sum_node(s, node, num))
				return -ENOMEM;
			s->lost += num;
			continue;
		}
		if (!json_is_object(flow)) {
			if (!json_object_get(rec, "verdict") && !json_object_get(rec, "IP"))
				continue;
			flow = rec; /* a bare flow */
			rec = json_pack("{sOssss}", "flow", flow, "node_name",
					str_field(flow, "node_name"), "time",
					str_field(flow, "time"));
			if (!rec || json_array_append_new(flows, rec))
				return -ENOMEM;
		} else if (json_array_append(flows, rec)) {
			return -ENOMEM;
		}
		node = str_field(rec, "node_name");
		if (!*node)
			node = str_field(flow, "node_name");
		if (*node && sum_node(s, node, 0))
			return -ENOMEM;
		verdict = str_field(flow, "verdict");
		s->flows++;
		if (strcmp(verdict, "FORWARDED") == 0)
			s->forwarded++;
		else if (strcmp(verdict, "DROPPED") == 0)
			s->dropped++;
	}
	qsort(s->nodes, s->nnodes, sizeof(*s->nodes), node_cmp);
	return 0;
}

/* ---- writing ---- */

/* Text as HTML content or a quoted attribute value. */
static void put_html(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* JSON text inside <script type="application/json">: '<', '>', '&' as \u escapes. */
static void put_script_json(FILE *f, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '<'   ? "\\u003c"
				  : *s == '>' ? "\\u003e"
				  : *s == '&' ? "\\u0026"
					      : NULL;

		if (!esc)
			continue;
		fwrite(run, 1, (size_t)(s - run), f);
		fputs(esc, f);
		run = s + 1;
	}
	fwrite(run, 1, (size_t)(s - run), f);
}

static void put_counts(FILE *f, const struct page_sum *s)
{
	size_t i;

	fprintf(f,
		"<ul class=\"counts\">\n"
		"<li>flows <b id=\"count-flows\" data-count=\"%zu\">%zu</b></li>\n"
		"<li class=\"forwarded\">forwarded <b id=\"count-forwarded\" "
		"data-count=\"%zu\">%zu</b></li>\n"
		"<li class=\"dropped\">dropped <b id=\"count-dropped\" "
		"data-count=\"%zu\">%zu</b></li>\n"
		"<li class=\"lost\">lost events <b id=\"count-lost\" data-count=\"%lld\">%lld</b>"
		"<span id=\"lost-by-node\">",
		s->flows, s->flows, s->forwarded, s->forwarded, s->dropped, s->dropped,
		(long long)s->lost, (long long)s->lost);
	for (i = 0; i < s->nnodes; i++) {
		fprintf(f, "<span class=\"lost-node%s\" data-node=\"",
			s->nodes[i].lost ? " has-lost" : "");
		put_html(f, s->nodes[i].node);
		fprintf(f, "\" data-lost=\"%lld\">", (long long)s->nodes[i].lost);
		put_html(f, s->nodes[i].node);
		fprintf(f, ": %lld</span>", (long long)s->nodes[i].lost);
	}
	fputs("</span></li>\n</ul>\n", f);
}

static void put_page(FILE *f, const char *title, const struct page_sum *s, const char *json)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	      "<meta name=\"generator\" content=\"ciliate\">\n<title>",
	      f);
	put_html(f, title);
	fputs("</title>\n<style>\n", f);
	fputs(page_css, f);
	fputs("</style>\n</head>\n<body>\n<header id=\"summary\">\n<h1 id=\"page-title\">", f);
	put_html(f, title);
	fputs("</h1>\n", f);
	put_counts(f, s);
	fputs("<span id=\"time-range\"></span>\n</header>\n<main>\n"
	      "<section id=\"map-section\">\n<h2>Service map</h2>\n<div id=\"map\"></div>\n"
	      "<p class=\"legend\">Boxes are namespaces, rows their workloads; an arrow is one "
	      "(source, destination, port, verdict) with its flow count. Replies count on the "
	      "arrow of the connection they answer. Click a workload or an arrow to filter the "
	      "table."
	      "<span class=\"sw\" style=\"border-color:#2da44e\"></span>forwarded"
	      "<span class=\"sw\" style=\"border-color:#cf222e\"></span>dropped (with reason)"
	      "<span class=\"sw\" style=\"border-color:#8c959f;border-top-style:dashed\"></span>"
	      "other verdicts</p>\n</section>\n"
	      "<section id=\"table-section\">\n<h2>Flows</h2>\n<div id=\"filters\">\n"
	      "<input id=\"filter-text\" type=\"search\" placeholder=\"filter: pod, namespace, "
	      "address, port, reason, node\" aria-label=\"text filter\">\n"
	      "<select id=\"filter-verdict\" aria-label=\"verdict filter\">"
	      "<option value=\"\">all verdicts</option></select>\n"
	      "<span id=\"count-shown\"></span> <span id=\"rows-note\"></span>\n</div>\n"
	      "<table id=\"flow-table\">\n<thead><tr></tr></thead>\n<tbody></tbody>\n</table>\n"
	      "<noscript><p>The map and the table need JavaScript; the flows are in the "
	      "flow-data block of this file.</p></noscript>\n"
	      "</section>\n</main>\n"
	      "<script type=\"application/json\" id=\"flow-data\">",
	      f);
	put_script_json(f, json);
	fputs("</script>\n<script>\n", f);
	fputs(page_js, f);
	fputs("</script>\n</body>\n</html>\n", f);
}

int flowpage_write(const char *path, json_t *const *flows, size_t n, const char *title,
		   struct diag *d)
{
	struct page_sum sum = {0};
	json_t *data, *list = json_array(), *lost = json_array();
	char *json = NULL;
	bool to_stdout = strcmp(path, "-") == 0, regular = false;
	struct stat st;
	FILE *f;
	int err;

	if (!title || !*title)
		title = "ciliate flows";
	data = json_pack("{sssoso}", "title", title, "flows", list, "lost", lost);
	if (!data || collect(flows, n, list, lost, &sum) < 0 ||
	    !(json = json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII))) {
		err = diag_fail_errno(d, -ENOMEM, "%s: out of memory building the flow page", path);
		goto out;
	}
	f = to_stdout ? stdout : fopen(path, "w");
	if (!f) {
		err = errno;
		err = diag_fail_errno(d, -err, "%s: cannot write the flow page: %s", path,
				      strerror(err));
		goto out;
	}
	/* a failed write removes a half-written file, never a device or a pipe */
	regular = !to_stdout && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
	put_page(f, title, &sum, json);
	err = ferror(f) ? (errno ? errno : EIO) : 0;
	if (to_stdout) {
		if (fflush(f) && !err)
			err = errno;
	} else if (fclose(f) && !err) {
		err = errno;
	}
	if (err) {
		if (regular)
			unlink(path);
		err = diag_fail_errno(d, -err, "%s: cannot write the flow page: %s", path,
				      strerror(err));
	}
out:
	free(json);
	free(sum.nodes);
	json_decref(data);
	return err;
}
