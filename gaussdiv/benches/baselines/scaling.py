#!/usr/bin/env python3
"""Time per call against N for each backend, from `gaussdiv bench --json`, as
a table and an SVG plot (no plotting library needed).

    python3 gaussdiv/benches/baselines/scaling.py [--gaussdiv target/release/gaussdiv] [--out gaussdiv/benches/scaling.svg]
"""
import argparse
import json
import math
import subprocess

SIZES = [100, 1_000, 10_000, 100_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000]


def measure(exe, n, runs):
    out = subprocess.run(
        [exe, "bench", "--pairs", str(n), "--runs", str(runs), "--json", "--backend", "cpu,gpu,auto"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def svg(series, path):
    w, h, m = 720, 440, 60
    xs = [math.log10(n) for n in SIZES]
    ys = [math.log10(t) for s in series.values() for (_, t) in s if t > 0]
    x0, x1, y0, y1 = min(xs), max(xs), math.floor(min(ys)), math.ceil(max(ys))
    X = lambda v: m + (math.log10(v) - x0) / (x1 - x0) * (w - 2 * m)
    Y = lambda v: h - m - (math.log10(v) - y0) / (y1 - y0) * (h - 2 * m)
    colors = {"cpu": "#1f77b4", "gpu": "#d62728", "gpu kernel-only": "#ff9896", "auto": "#2ca02c"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>']
    for e in range(int(y0), int(y1) + 1):
        y = Y(10 ** e)
        parts.append(f'<line x1="{m}" x2="{w - m}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{m - 8}" y="{y + 4:.1f}" text-anchor="end">1e{e} s</text>')
    for n in SIZES:
        x = X(n)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{m}" y2="{h - m}" stroke="#eee"/>')
        parts.append(f'<text x="{x:.1f}" y="{h - m + 16}" text-anchor="middle">{n:.0e}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">pairs per call (N)</text>')
    parts.append(f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="14">gaussdiv: time per call (median), CE+KL, f32</text>')
    for i, (name, pts) in enumerate(series.items()):
        c = colors.get(name, "#555")
        d = " ".join(f"{'M' if j == 0 else 'L'}{X(n):.1f},{Y(t):.1f}" for j, (n, t) in enumerate(pts) if t > 0)
        parts.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        parts.append(f'<text x="{m + 10}" y="{m + 16 * i}" fill="{c}">{name}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gaussdiv", default="target/release/gaussdiv")
    ap.add_argument("--out", default="gaussdiv/benches/scaling.svg")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    series = {"cpu": [], "gpu": [], "gpu kernel-only": [], "auto": []}
    print(f"{'N':>10} {'cpu s':>10} {'gpu s':>10} {'kernel s':>10} {'auto s':>10}  auto chose")
    for n in SIZES:
        rows = {r["backend"]: r for r in measure(a.gaussdiv, n, a.runs)}
        for b in ("cpu", "gpu", "auto"):
            if b in rows:
                series[b].append((n, rows[b]["median_s"]))
        if "gpu" in rows and "kernel_median_s" in rows["gpu"]:
            series["gpu kernel-only"].append((n, rows["gpu"]["kernel_median_s"]))
        g = rows.get("gpu", {})
        print(f"{n:>10} {rows['cpu']['median_s']:>10.2e} {g.get('median_s', float('nan')):>10.2e} "
              f"{g.get('kernel_median_s', float('nan')):>10.2e} {rows['auto']['median_s']:>10.2e}  {rows['auto'].get('chose')}")
    svg({k: v for k, v in series.items() if v}, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
