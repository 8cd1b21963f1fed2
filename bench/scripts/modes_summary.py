#!/usr/bin/env python3
"""Table of a bench/scripts/modes.sh run: medians (min-max) per peer and scenario, the medians
of per-repeat ratios volley/node and volley/socketioxide, and per peer the server-ack rate
over the client-ack rate of the same shape (sack-X / cack-X).

    python3 bench/scripts/modes_summary.py bench/results/modes-....jsonl
"""
import json
import statistics
import sys

# The shared generator and sio-modes name two fields differently.
ALIASES = {"server_us_per_msg": "srv_cpu_us_per_msg", "server_cpu_pct": "srv_cpu_pct"}
METRICS = ["msgs_per_s", "srv_cpu_us_per_msg", "p50_us", "p99_us", "srv_cpu_pct", "gen_cpu_pct"]


def load(path):
    rows = []
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            for a, b in ALIASES.items():
                if a in r and b not in r:
                    r[b] = r[a]
            rows.append(r)
    return rows


def fmt(x):
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def values(rows, peer, sid, m):
    return {r["rep"]: r[m] for r in rows if r["peer"] == peer and r["id"] == sid and r.get(m) is not None}


def ratio(a, b):
    v = [a[k] / b[k] for k in a if k in b and b[k]]
    return f"{statistics.median(v):.2f}" if v else "-"


def main():
    rows = load(sys.argv[1])
    known = ("volley", "volley-before", "node", "socketioxide")
    peers = [p for p in known if any(r["peer"] == p for r in rows)]
    ids = list(dict.fromkeys(r["id"] for r in rows))
    others = [p for p in peers if p != "volley"]
    print("| scenario | metric | " + " | ".join(peers) + "".join(f" | volley/{o}" for o in others) + " |")
    print("|---|---|" + "---|" * (len(peers) + len(others)))
    for sid in ids:
        for m in METRICS:
            cells = []
            for p in peers:
                v = list(values(rows, p, sid, m).values())
                cells.append(f"{fmt(statistics.median(v))} ({fmt(min(v))}-{fmt(max(v))})" if v else "-")
            if all(c == "-" for c in cells):
                continue
            rs = [ratio(values(rows, "volley", sid, m), values(rows, o, sid, m)) for o in others]
            print(f"| {sid} | {m} | " + " | ".join(cells) + "".join(f" | {x}" for x in rs) + " |")
    pairs = [(s, "c" + s[1:]) for s in ids if s.startswith("sack") and "c" + s[1:] in ids]
    if pairs:
        print()
        print("| server-ack / client-ack (msgs/s, median of per-repeat ratios) | " + " | ".join(peers) + " |")
        print("|---|" + "---|" * len(peers))
        for s, c in pairs:
            cells = [ratio(values(rows, p, s, "msgs_per_s"), values(rows, p, c, "msgs_per_s")) for p in peers]
            print(f"| {s} / {c} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
