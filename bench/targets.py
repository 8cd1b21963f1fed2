#!/usr/bin/env python3
"""Checks the performance targets of the issue against one interleaved results file.

usage: bench/targets.py RESULTS.jsonl [--peer volley] [--min-busy PCT]

Every ratio is taken within one repeat (same interleaved round), then the median over the
repeats is reported with its min-max, as shared/bench/summarize.py does.

--min-busy PCT keeps, for the closed-loop scenarios (echo, ack, broadcast), only the rows in
which the server or the load generator was busy at least PCT % of the time. A closed loop
that neither process saturates was held back by something else: on a shared host, other
processes taking the pinned cores.
"""
import json
import statistics
import sys
from collections import defaultdict


def load(path):
    # data[(peer, scenario id)][rep] -> row
    data = defaultdict(dict)
    for line in open(path):
        line = line.strip()
        if line:
            r = json.loads(line)
            data[(r["peer"], r["id"])][r["rep"]] = r
    return data


MIN_BUSY = 0.0


def busy_enough(row):
    if row.get("scenario") == "connect" or MIN_BUSY <= 0:
        return True
    busy = max(row.get("server_cpu_pct") or 0, row.get("gen_cpu_pct") or 0)
    return busy >= MIN_BUSY


def per_rep(data, f, *keys):
    """f(rows...) for every repeat in which all (peer, id) keys have a row."""
    reps = set.intersection(*(set(data[k]) for k in keys)) if keys else set()
    out = []
    for rep in sorted(reps):
        rows = [data[k][rep] for k in keys]
        if not all(busy_enough(r) for r in rows):
            continue
        try:
            v = f(*rows)
        except (TypeError, KeyError, ZeroDivisionError):
            continue
        if v is not None:
            out.append(v)
    return out


def fmt(vals, unit=""):
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    lo, hi = min(vals), max(vals)
    if unit == "x":
        return f"{m:.2f}x ({lo:.2f}-{hi:.2f}, n={len(vals)})"
    return f"{m:.2f}{unit} ({lo:.2f}-{hi:.2f}, n={len(vals)})"


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        sys.exit(2)
    peer = "volley"
    if "--peer" in args:
        i = args.index("--peer")
        peer = args[i + 1]
        del args[i : i + 2]
    if "--min-busy" in args:
        i = args.index("--min-busy")
        global MIN_BUSY
        MIN_BUSY = float(args[i + 1])
        del args[i : i + 2]
    data = load(args[0])
    v, raw, sx = peer, "raw-ws", "socketioxide"
    rows = []

    def target(name, goal, vals, unit, ok):
        met = "n/a" if not vals else ("yes" if ok(statistics.median(vals)) else "**no**")
        rows.append((name, goal, fmt(vals, unit), met))

    r = per_rep(data, lambda a, b: a["msgs_per_s"] / b["msgs_per_s"], (v, "echo-c100"), (raw, "echo-c100"))
    target("echo-c100 msg/s", ">= 0.95x raw-ws", r, "x", lambda m: m >= 0.95)
    r = per_rep(data, lambda a, b: a["msgs_per_s"] / b["msgs_per_s"], (v, "echo-c100-p16"), (raw, "echo-c100-p16"))
    target("echo-c100-p16 msg/s", ">= 0.6x raw-ws", r, "x", lambda m: m >= 0.6)
    r = per_rep(data, lambda a: a["p99_us"] / a["p50_us"], (v, "echo-c100-p16"))
    target("echo-c100-p16 p99/p50", "<= 3", r, "", lambda m: m <= 3)
    r = per_rep(data, lambda a, b: a["msgs_per_s"] / b["msgs_per_s"], (v, "ack-c100-p16"), (sx, "ack-c100-p16"))
    target("ack-c100-p16 acks/s", ">= 2x socketioxide", r, "x", lambda m: m >= 2)
    r = per_rep(data, lambda a: a["p99_us"] / a["p50_us"], (v, "ack-c100-p16"))
    target("ack-c100-p16 p99/p50", "<= 3", r, "", lambda m: m <= 3)
    r = per_rep(data, lambda a, b: a["delivered_per_s"] / b["delivered_per_s"], (v, "bcast-10k"), (sx, "bcast-10k"))
    target("bcast-10k deliveries/s", ">= 3x socketioxide", r, "x", lambda m: m >= 3)
    r = per_rep(data, lambda a, b: a["all_p99_us"] / b["all_p99_us"], (v, "bcast-10k"), (sx, "bcast-10k"))
    target("bcast-10k reach-all p99", "<= 0.5x socketioxide", r, "x", lambda m: m <= 0.5)
    r = per_rep(data, lambda a: a["rss_per_conn_kib"], (v, "connect-19k"))
    target("RSS per idle connection at 19k", "<= 8 KiB", r, " KiB", lambda m: m <= 8)
    r = per_rep(data, lambda a, b: a["conn_per_s"] / b["conn_per_s"], (v, "connect-19k"), (raw, "connect-19k"))
    target("connect-19k conn/s", ">= 0.9x raw-ws", r, "x", lambda m: m >= 0.9)
    r = per_rep(data, lambda a, b: a["server_us_per_msg"] / b["server_us_per_msg"], (v, "echo-c100"), (raw, "echo-c100"))
    target("server CPU per message (echo-c100)", "<= 1.1x raw-ws", r, "x", lambda m: m <= 1.1)

    note = f", repeats with a process >= {MIN_BUSY:g} % busy" if MIN_BUSY > 0 else ""
    print(f"| target ({peer}{note}) | goal | measured: median (min-max, repeats) | met |")
    print("|---|---|---|---|")
    for name, goal, val, met in rows:
        print(f"| {name} | {goal} | {val} | {met} |")


if __name__ == "__main__":
    main()
