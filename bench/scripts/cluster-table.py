#!/usr/bin/env python3
"""The table of bench/scripts/cluster-95k.sh's results: medians (min-max) per peer and the
median of the per-repeat volley/<peer> ratios (a repeat is one file's repeat number, so
several run files pool without mixing their repeats).

    python3 bench/scripts/cluster-table.py bench/results/turn4-cluster-*.jsonl
"""
import json
import statistics
import sys

METRICS = [
    ("clients", "clients"),
    ("connect_per_s", "connect conn/s"),
    ("delivered_per_s", "deliveries/s"),
    ("all_p50_us", "reach-all p50 ms"),
    ("all_p99_us", "reach-all p99 ms"),
    ("server_us_per_delivery", "srv CPU us/delivery"),
    ("server_cpu_pct", "srv CPU % (of one core)"),
    ("server_runq_wait_pct", "srv runqueue wait %"),
    ("gen_cpu_pct", "gen CPU %"),
    ("redis_cpu_pct", "redis CPU %"),
    ("gen_rss_kib_connected", "gen RSS MiB, connected"),
    ("server_rss_kib_connected", "srv RSS MiB, connected"),
    ("server_rss_kib_per_conn", "srv RSS KiB/conn"),
    ("server_rss_kib_end", "srv RSS MiB, end"),
]
# Shown in other units than measured.
SCALE = {"all_p50_us": 1e-3, "all_p99_us": 1e-3, "server_rss_kib_connected": 1 / 1024,
         "server_rss_kib_end": 1 / 1024, "gen_rss_kib_connected": 1 / 1024}


def load(paths):
    rows = []
    for path in paths:
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                if "error" not in r:
                    r["run"] = (path, r["repeat"])
                    rows.append(r)
    return rows


def fmt(x):
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def main(paths):
    rows = load(paths)
    peers = sorted({r["peer"] for r in rows}, key=lambda p: (p != "volley", p))
    ratios = [("volley", b) for b in peers if b != "volley" and "volley" in peers]

    def values(peer, m):
        return [r[m] * SCALE.get(m, 1) for r in rows if r["peer"] == peer and r.get(m) is not None]

    def cell(peer, m):
        v = values(peer, m)
        if not v:
            return "-"
        return f"{fmt(statistics.median(v))} ({fmt(min(v))}-{fmt(max(v))}) n={len(v)}"

    def ratio(a, b, m):
        x = {r["run"]: r.get(m) for r in rows if r["peer"] == a}
        y = {r["run"]: r.get(m) for r in rows if r["peer"] == b}
        v = [x[k] / y[k] for k in x if k in y and x[k] is not None and y[k]]
        return f"{statistics.median(v):.2f}" if v else "-"

    head = [f"{p} (median, min-max)" for p in peers] + [f"{a}/{b}" for a, b in ratios]
    print("| metric | " + " | ".join(head) + " |")
    print("|---" * (1 + len(head)) + "|")
    for m, name in METRICS:
        cells = [cell(p, m) for p in peers] + [ratio(a, b, m) for a, b in ratios]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
