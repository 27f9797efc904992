#!/usr/bin/env python3
"""Throughput of two gaussdiv builds, interleaved: `gaussdiv bench --json` of
build A, then of build B, repeated; the medians per backend and the ratio
B/A, so that both see the same machine load (a ratio in one run, medians).

    python3 gaussdiv/benches/baselines/ab.py OLD_BINARY NEW_BINARY \
        [--pairs 10000000] [--rounds 7] [--runs 5] [--backend cpu,gpu]
"""
import argparse
import json
import statistics
import subprocess


def bench(binary, args):
    cmd = [
        binary, "bench", "--json", "--pairs", str(args.pairs), "--runs", str(args.runs),
        "--backend", args.backend,
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {row["backend"]: row for row in json.loads(out)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a", help="baseline binary")
    ap.add_argument("b", help="binary under test")
    ap.add_argument("--pairs", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--backend", default="cpu,gpu")
    args = ap.parse_args()
    rates = {"a": {}, "b": {}}
    for r in range(args.rounds):
        # Alternate which goes first, so that neither always runs warm.
        order = ("a", "b") if r % 2 == 0 else ("b", "a")
        for which in order:
            rows = bench(getattr(args, which), args)
            for backend, row in rows.items():
                rates[which].setdefault(backend, []).append(row["mpairs_per_s"])
                if "kernel_mpairs_per_s" in row:
                    rates[which].setdefault(backend + " kernel", []).append(
                        row["kernel_mpairs_per_s"]
                    )
    print(f"{args.pairs} pairs, {args.rounds} interleaved rounds of {args.runs} runs; "
          "M pairs/s, medians")
    print(f"{'backend':<12} {'A':>9} {'B':>9} {'B/A':>7}")
    for backend in rates["a"]:
        a = statistics.median(rates["a"][backend])
        b = statistics.median(rates["b"].get(backend, [float("nan")]))
        print(f"{backend:<12} {a:9.1f} {b:9.1f} {b / a:7.3f}")


if __name__ == "__main__":
    main()
