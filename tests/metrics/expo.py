#!/usr/bin/python3
"""Reads an agent's /metrics answer with an independent parser (Debian's
python3-prometheus-client) for tests/metrics/run-suite.sh.

  expo.py check FILE NAME...      the exposition parses; every family has HELP and TYPE;
                                  no sample (name + labels) appears twice; each NAME (a
                                  sample name, e.g. cilium_drop_count_total) has a family
                                  of the right type (counter for *_total, else gauge)
  expo.py get FILE NAME [K=V...]  prints the sum of the samples NAME whose labels include
                                  every K=V (0 when none)

FILE is the HTTP body. Exit 0 ok, 1 a check failed (reason on stdout), 2 usage.
"""
import re
import sys

from prometheus_client.parser import text_string_to_metric_families


def families(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # the parser is lazy: list() makes it read (and reject) everything
    return text, list(text_string_to_metric_families(text))


def check(path, names):
    try:
        text, fams = families(path)
    except Exception as e:  # the parser's ValueError and friends
        print(f"{path}: does not parse: {e}")
        return 1
    problems = []
    # HELP then TYPE for every family, in the text itself (the parser tolerates neither
    # missing, so look at the lines)
    helped, typed = set(), {}
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+)(?: (.*))?$", line)
        if not m:
            continue
        if m.group(1) == "HELP":
            if not (m.group(3) or "").strip():
                problems.append(f"empty HELP for {m.group(2)}")
            helped.add(m.group(2))
        else:
            if m.group(2) not in helped:
                problems.append(f"TYPE {m.group(2)} without a HELP line before it")
            typed[m.group(2)] = m.group(3)
    seen = set()
    by_sample = {}
    for fam in fams:
        if fam.type == "unknown" or not fam.documentation:
            problems.append(f"family {fam.name}: type {fam.type!r}, help {fam.documentation!r}")
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in seen:
                problems.append(f"duplicate sample {s.name}{dict(s.labels)}")
            seen.add(key)
            by_sample.setdefault(s.name, fam)
    for fam in fams:  # families without samples still count as present
        by_sample.setdefault(fam.name + ("_total" if fam.type == "counter" else ""), fam)
    for n in names:
        fam = by_sample.get(n)
        want = "counter" if n.endswith("_total") else "gauge"
        if fam is None:
            problems.append(f"{n}: missing")
        elif fam.type != want:
            problems.append(f"{n}: type {fam.type}, want {want}")
        elif n not in typed and n[: -len("_total")] not in typed:
            problems.append(f"{n}: no TYPE line")
    for p in problems:
        print(f"{path}: {p}")
    return 1 if problems else 0


def get(path, name, selectors):
    want = {}
    for sel in selectors:
        k, sep, v = sel.partition("=")
        if not sep:
            print(f"bad selector {sel!r}")
            return 2
        want[k] = v
    _, fams = families(path)
    total = 0.0
    for fam in fams:
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in want.items()):
                total += s.value
    print(int(total) if total == int(total) else total)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "check":
        return check(argv[2], argv[3:])
    if len(argv) >= 4 and argv[1] == "get":
        return get(argv[2], argv[3], argv[4:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
