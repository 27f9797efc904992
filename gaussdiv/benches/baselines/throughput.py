#!/usr/bin/env python3
"""Throughput baselines: cross-entropy + KL of N univariate Gaussian pairs in
float32, NumPy / JAX / PyTorch / a memory-copy reference against `gaussdiv bench`.

    python3 gaussdiv/benches/baselines/throughput.py --pairs 1e7 --runs 5

Options (all optional):

    --pairs 1e6,1e7       batch sizes, comma-separated (default 10_000_000)
    --runs R              rounds; every reported figure is the median over R (default 7)
    --gaussdiv PATH       gaussdiv binary (default: target/release/gaussdiv at the repo root,
                          or $GAUSSDIV); --no-gaussdiv to leave it out
    --methods a,b,...     subset of: numpy_f32, numpy_f32_blocked, jax_jit_f32,
                          jax_jit_f32_e2e, torch_f32, np_copyto_24B, np_copyto_12B, gaussdiv
    --numpy-block K       block length of numpy_f32_blocked (default 16384 elements)
    --seed S              seed of the random batch (default 7)
    --json                also print the results as JSON (after the table)

Requires NumPy. JAX (`pip install jax`, CPU jaxlib), PyTorch and threadpoolctl are
used when they import; otherwise their rows say "not installed" (with the reason).

The batch: mu ~ U[-10, 10], sigma = 10**U[-2, 2], float32, shape (N, 4) in C
order (mu1, sigma1, mu2, sigma2), plus contiguous copies of the four columns,
which is what the Python methods read. Every method computes BOTH the
cross-entropy and the KL divergence, with the textbook formulas (v = sigma**2):

    CE = 0.5*log(2*pi*v2) + ((mu1 - mu2)**2 + v1) / (2*v2)
    KL = 0.5*((mu1 - mu2)**2/v2 + v1/v2 - log(v1/v2) - 1)

Methods:

  numpy_f32          whole-array ufuncs with out= into preallocated outputs and
                     reused temporaries (15 passes over the data; single thread).
  numpy_f32_blocked  the same ufunc sequence on blocks of --numpy-block elements
                     (temporaries stay in cache); informative, not in the ratios.
  jax_jit_f32        the formulas under jax.jit on float32 arrays already on the
                     device (jax.device_put before timing); includes block_until_ready().
  jax_jit_f32_e2e    device_put of the four columns + the jitted call + np.asarray
                     of both results (on the CPU backend, transfers may be zero-copy).
  torch_f32          torch.distributions.kl_divergence(Normal, Normal) plus the CE
                     formula in torch ops, torch.no_grad(), validate_args=False,
                     torch.set_num_threads(2).
  np_copyto_24B      np.copyto of a float32 array of 6*N elements into a preallocated
                     one: 24 bytes copied per pair (24 B read + 24 B written).
  np_copyto_12B      the same with 3*N elements: 12 B read + 12 B written = 24 B of
                     traffic per pair, i.e. the traffic of a fused pass that reads 16 B
                     and writes 8 B per pair.
  gaussdiv_cpu, gaussdiv_gpu, gaussdiv_gpu_kernel
                     one `GAUSSDIV bench --pairs N --runs 1 --json --backend cpu,gpu`
                     per round (it builds its own batch — same distributions, but
                     every 16th pair has sigma2 = sigma1*(1+1e-6), mu2 = mu1 — and does
                     its own warm-up run before its timed run); gaussdiv_gpu is
                     end to end (host memory in and out), gaussdiv_gpu_kernel has the
                     data already on the device. The binary is copied to a temporary
                     file first and the copy is run, since the tree may be rebuilt
                     meanwhile.

Fairness on a shared, noisy machine: after one warm-up run of every Python
method, the measurements run in R rounds; each round times one run of every
method (and calls gaussdiv once), in an order rotated by one each round, and
the reported time is the median over the rounds. Thread counts are left at
their defaults (NumPy ufuncs are single-threaded; XLA CPU and gaussdiv use the
cores they find); they are printed at the start.
"""
import argparse
import gc
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
LOG_2PI = np.float32(math.log(2.0 * math.pi))
TWO_PI = np.float32(2.0 * math.pi)

ALL_METHODS = [
    "numpy_f32",
    "numpy_f32_blocked",
    "jax_jit_f32",
    "jax_jit_f32_e2e",
    "torch_f32",
    "np_copyto_24B",
    "np_copyto_12B",
    "gaussdiv",
]


# ----------------------------------------------------------------------------
# data


def make_batch(n, seed):
    """(N, 4) float32 C-order batch (mu1, sigma1, mu2, sigma2) and its columns."""
    rng = np.random.default_rng(seed)
    batch = np.empty((n, 4), dtype=np.float32)
    for j in (0, 2):
        batch[:, j] = rng.uniform(-10.0, 10.0, n)
    for j in (1, 3):
        batch[:, j] = 10.0 ** rng.uniform(-2.0, 2.0, n)
    cols = tuple(np.ascontiguousarray(batch[:, j]) for j in range(4))
    return batch, cols


# ----------------------------------------------------------------------------
# NumPy


class NumpyF32:
    """Textbook CE and KL with ufuncs writing into preallocated arrays.

    15 ufunc passes; 3 temporaries of N float32 and the two outputs are
    allocated once. (d^2 + v1)/v2 is shared by both formulas.
    """

    def __init__(self, cols, block=0):
        self.cols = cols
        n = cols[0].shape[0]
        self.ce = np.empty(n, np.float32)
        self.kl = np.empty(n, np.float32)
        t = min(n, block) if block > 0 else n
        self.block = block
        self.tmp = [np.empty(t, np.float32) for _ in range(3)]

    @staticmethod
    def _kernel(m1, s1, m2, s2, ce, kl, a, v1, v2):
        np.multiply(s1, s1, out=v1)  # v1
        np.multiply(s2, s2, out=v2)  # v2
        np.subtract(m1, m2, out=a)  # d
        np.multiply(a, a, out=a)  # d^2
        np.add(a, v1, out=a)  # d^2 + v1
        np.divide(a, v2, out=a)  # (d^2 + v1)/v2 = d^2/v2 + v1/v2
        np.multiply(v2, TWO_PI, out=ce)
        np.log(ce, out=ce)  # log(2 pi v2)
        np.add(ce, a, out=ce)
        np.multiply(ce, np.float32(0.5), out=ce)  # CE
        np.divide(v1, v2, out=v1)  # v1/v2
        np.log(v1, out=v1)
        np.subtract(a, v1, out=kl)
        np.subtract(kl, np.float32(1.0), out=kl)
        np.multiply(kl, np.float32(0.5), out=kl)  # KL

    def __call__(self):
        m1, s1, m2, s2 = self.cols
        n = m1.shape[0]
        if self.block <= 0 or self.block >= n:
            self._kernel(m1, s1, m2, s2, self.ce, self.kl, *self.tmp)
        else:
            b = self.block
            a, v1, v2 = self.tmp
            for i in range(0, n, b):
                j = min(n, i + b)
                k = j - i
                self._kernel(
                    m1[i:j], s1[i:j], m2[i:j], s2[i:j], self.ce[i:j], self.kl[i:j], a[:k], v1[:k], v2[:k]
                )
        return self.ce, self.kl


class CopyTo:
    def __init__(self, n, floats_per_pair):
        self.src = np.full(n * floats_per_pair, 1.5, np.float32)
        self.dst = np.zeros_like(self.src)  # touched: no first-touch page faults when timed

    def __call__(self):
        np.copyto(self.dst, self.src)
        return self.dst


# ----------------------------------------------------------------------------
# JAX


def jax_import():
    try:
        import jax
        import jax.numpy as jnp

        return jax, jnp, None
    except Exception as e:  # not installed or broken
        return None, None, f"not installed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"


def jax_fn(jax, jnp):
    def f(m1, s1, m2, s2):
        v1 = s1 * s1
        v2 = s2 * s2
        d = m1 - m2
        d2 = d * d
        ce = 0.5 * jnp.log(2.0 * jnp.pi * v2) + (d2 + v1) / (2.0 * v2)
        kl = 0.5 * (d2 / v2 + v1 / v2 - jnp.log(v1 / v2) - 1.0)
        return ce, kl

    return jax.jit(f)


class JaxJit:
    def __init__(self, jax, jnp, cols, e2e):
        self.jax = jax
        self.f = jax_fn(jax, jnp)
        self.e2e = e2e
        self.cols = cols
        if not e2e:
            self.dev = tuple(jax.device_put(c) for c in cols)
            jax.block_until_ready(self.dev)

    def __call__(self):
        jax = self.jax
        if self.e2e:
            dev = tuple(jax.device_put(c) for c in self.cols)
            ce, kl = self.f(*dev)
            out = (np.asarray(ce), np.asarray(kl))
            return out
        out = self.f(*self.dev)
        jax.block_until_ready(out)
        return out


# ----------------------------------------------------------------------------
# PyTorch


def torch_import():
    try:
        import torch
        from torch.distributions import Normal, kl_divergence

        return torch, Normal, kl_divergence, None
    except Exception as e:
        return None, None, None, f"not installed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"


class TorchF32:
    def __init__(self, torch, Normal, kl_divergence, cols):
        self.torch = torch
        self.Normal = Normal
        self.kl_divergence = kl_divergence
        self.t = tuple(torch.from_numpy(c) for c in cols)

    def __call__(self):
        torch = self.torch
        m1, s1, m2, s2 = self.t
        with torch.no_grad():
            p = self.Normal(m1, s1, validate_args=False)
            q = self.Normal(m2, s2, validate_args=False)
            kl = self.kl_divergence(p, q)
            v1 = s1 * s1
            v2 = s2 * s2
            d = m1 - m2
            ce = 0.5 * torch.log(v2 * (2.0 * math.pi)) + (d * d + v1) / (2.0 * v2)  # Python float: stays f32
        return ce, kl


# ----------------------------------------------------------------------------
# gaussdiv


class Gaussdiv:
    """Runs a private copy of the gaussdiv binary: one `bench --runs 1` per round."""

    def __init__(self, path, n):
        self.n = n
        self.tmpdir = tempfile.mkdtemp(prefix="gaussdiv-throughput-")
        self.exe = os.path.join(self.tmpdir, "gaussdiv")
        shutil.copy2(path, self.exe)
        os.chmod(self.exe, 0o755)
        self.backends = "cpu,gpu"
        self.note = None

    def close(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def run_once(self):
        """Returns {row_name: seconds} for this round."""
        cmd = [self.exe, "bench", "--pairs", str(self.n), "--runs", "1", "--json", "--backend", self.backends]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0 and self.backends == "cpu,gpu":
            # no adapter (or GPU failure): keep measuring the CPU backend, say why
            self.note = f"gpu backend failed (exit {p.returncode}): {p.stderr.strip()[:300]}"
            self.backends = "cpu"
            return self.run_once()
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[:500]}")
        rows = json.loads(p.stdout)
        out = {}
        for r in rows:
            pairs = r.get("pairs", self.n)
            if r["backend"] == "cpu":
                out["gaussdiv_cpu"] = pairs / (r["mpairs_per_s"] * 1e6)
            elif r["backend"] == "gpu":
                out["gaussdiv_gpu"] = pairs / (r["mpairs_per_s"] * 1e6)
                if r.get("kernel_mpairs_per_s"):
                    out["gaussdiv_gpu_kernel"] = pairs / (r["kernel_mpairs_per_s"] * 1e6)
            dev = r.get("device")
            if dev:
                out.setdefault("_devices", {})[r["backend"]] = dev
        return out


# ----------------------------------------------------------------------------
# environment report


def environment(jax, torch):
    env = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "os.cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
              "OPENBLAS_L2_SIZE", "XLA_FLAGS", "RAYON_NUM_THREADS"):
        if k in os.environ:
            env[k] = os.environ[k]
    try:
        from threadpoolctl import threadpool_info

        env["threadpoolctl"] = [
            {k: d.get(k) for k in ("user_api", "internal_api", "num_threads", "version", "architecture")}
            for d in threadpool_info()
        ]
    except Exception as e:
        env["threadpoolctl"] = f"not installed ({type(e).__name__})"
    if jax is not None:
        env["jax"] = jax.__version__
        try:
            import jaxlib

            env["jaxlib"] = jaxlib.__version__
        except Exception:
            pass
        env["jax_devices"] = [str(d) for d in jax.devices()]
        env["jax_enable_x64"] = bool(jax.config.jax_enable_x64)
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_num_threads"] = torch.get_num_threads()
        env["torch_num_interop_threads"] = torch.get_num_interop_threads()
    return env


# ----------------------------------------------------------------------------
# main


def parse_pairs(s):
    out = []
    for tok in s.split(","):
        tok = tok.strip()
        if not tok:
            continue
        try:
            out.append(int(tok))
        except ValueError:
            out.append(int(float(tok)))
    return out


def fmt_n(n):
    for div, suf in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suf}"
    return str(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default="10000000", help="comma-separated batch sizes, e.g. 1e6,1e7")
    ap.add_argument("--runs", type=int, default=7, help="rounds (median over them)")
    ap.add_argument("--gaussdiv", default=os.environ.get("GAUSSDIV", os.path.join(REPO, "target", "release", "gaussdiv")))
    ap.add_argument("--no-gaussdiv", action="store_true")
    ap.add_argument("--methods", default=",".join(ALL_METHODS))
    ap.add_argument("--numpy-block", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args()

    sizes = parse_pairs(args.pairs)
    if args.runs < 1 or not sizes or min(sizes) < 1:
        ap.error("--runs and --pairs must be positive")
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in wanted if m not in ALL_METHODS]
    if bad:
        ap.error(f"unknown methods {bad}; choose from {ALL_METHODS}")

    t_start = time.perf_counter()
    skipped = {}  # method -> reason

    jax = jnp = None
    if any(m.startswith("jax") for m in wanted):
        jax, jnp, why = jax_import()
        if why:
            for m in ("jax_jit_f32", "jax_jit_f32_e2e"):
                skipped[m] = why
    torch = Normal = kl_divergence = None
    if "torch_f32" in wanted:
        torch, Normal, kl_divergence, why = torch_import()
        if why:
            skipped["torch_f32"] = why
        else:
            torch.set_num_threads(2)
    gaussdiv_path = None
    if "gaussdiv" in wanted:
        if args.no_gaussdiv:
            skipped["gaussdiv"] = "left out (--no-gaussdiv)"
        elif os.path.isfile(args.gaussdiv) and os.access(args.gaussdiv, os.X_OK):
            gaussdiv_path = args.gaussdiv
        else:
            skipped["gaussdiv"] = f"binary not found: {args.gaussdiv} (cargo build --release)"

    env = environment(jax, torch)
    print("environment:")
    for k, v in env.items():
        print(f"  {k}: {v}")
    if gaussdiv_path:
        st = os.stat(gaussdiv_path)
        env["gaussdiv_binary"] = gaussdiv_path
        env["gaussdiv_mtime"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime))
        print(f"  gaussdiv: {gaussdiv_path} (modified {env['gaussdiv_mtime']})")
    for m, why in skipped.items():
        print(f"  {m}: {why}")
    print(f"rounds: {args.runs} (median over rounds; one warm-up run per Python method before)")
    print()

    results = []  # dicts: method, pairs, median_s, mpairs_per_s, min_s, max_s, runs
    notes = []
    for n in sizes:
        t_n = time.perf_counter()
        batch, cols = make_batch(n, args.seed)
        del batch  # the Python methods read the contiguous columns
        methods = {}  # name -> callable, run once per round
        for m in wanted:
            if m in skipped:
                continue
            if m == "numpy_f32":
                methods[m] = NumpyF32(cols)
            elif m == "numpy_f32_blocked":
                methods[m] = NumpyF32(cols, block=args.numpy_block)
            elif m == "jax_jit_f32":
                methods[m] = JaxJit(jax, jnp, cols, e2e=False)
            elif m == "jax_jit_f32_e2e":
                methods[m] = JaxJit(jax, jnp, cols, e2e=True)
            elif m == "torch_f32":
                methods[m] = TorchF32(torch, Normal, kl_divergence, cols)
            elif m == "np_copyto_24B":
                methods[m] = CopyTo(n, 6)
            elif m == "np_copyto_12B":
                methods[m] = CopyTo(n, 3)
        gd = Gaussdiv(gaussdiv_path, n) if gaussdiv_path else None

        # warm-up (also compiles the JAX function); gaussdiv warms up inside each call
        with np.errstate(all="ignore"):
            for f in methods.values():
                f()

        order = list(methods) + (["gaussdiv"] if gd else [])
        times = {}
        devices = {}
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for k in range(args.runs):
                rot = order[k % len(order):] + order[: k % len(order)]
                for name in rot:
                    if name == "gaussdiv":
                        r = gd.run_once()
                        devices.update(r.pop("_devices", {}))
                        for key, s in r.items():
                            times.setdefault(key, []).append(s)
                    else:
                        f = methods[name]
                        with np.errstate(all="ignore"):
                            t0 = time.perf_counter()
                            out = f()
                            t1 = time.perf_counter()
                        del out
                        times.setdefault(name, []).append(t1 - t0)
        finally:
            if gc_was:
                gc.enable()
            if gd:
                if gd.note:
                    notes.append(f"N={n}: {gd.note}")
                gd.close()
        del methods, cols
        gc.collect()

        for name, ts in times.items():
            med = statistics.median(ts)
            row = {
                "method": name,
                "pairs": n,
                "median_s": med,
                "mpairs_per_s": n / med / 1e6,
                "min_s": min(ts),
                "max_s": max(ts),
                "runs": len(ts),
            }
            if name.startswith("gaussdiv_"):
                row["device"] = devices.get("cpu" if name == "gaussdiv_cpu" else "gpu")
            results.append(row)
        print(f"N = {n}: measured in {time.perf_counter() - t_n:.1f} s", file=sys.stderr)

    # ---- table
    print(f"{'method':<22} {'N':>6} {'median s':>10} {'Mpairs/s':>10} {'min s':>10} {'max s':>10}")
    for r in results:
        print(
            f"{r['method']:<22} {fmt_n(r['pairs']):>6} {r['median_s']:>10.4f} {r['mpairs_per_s']:>10.1f} "
            f"{r['min_s']:>10.4f} {r['max_s']:>10.4f}"
        )
    for m, why in skipped.items():
        print(f"{m:<22} {'':>6} {why}")

    # ---- ratios (of Mpairs/s; > 1 means the numerator is faster)
    ratio_defs = [
        ("gaussdiv_cpu / jax_jit_f32", "gaussdiv_cpu", "jax_jit_f32"),
        ("gaussdiv_cpu / numpy_f32", "gaussdiv_cpu", "numpy_f32"),
        ("gaussdiv_cpu / np_copyto_24B", "gaussdiv_cpu", "np_copyto_24B"),
        ("gaussdiv_gpu_end_to_end / gaussdiv_gpu_kernel", "gaussdiv_gpu", "gaussdiv_gpu_kernel"),
    ]
    ratios = []
    print()
    print("ratios of Mpairs/s (medians; > 1: the first is faster):")
    for n in sizes:
        rate = {r["method"]: r["mpairs_per_s"] for r in results if r["pairs"] == n}
        for label, a, b in ratio_defs:
            if a in rate and b in rate:
                v = rate[a] / rate[b]
                ratios.append({"ratio": label, "pairs": n, "value": v})
                print(f"  N={fmt_n(n):>5}  {label:<46} {v:7.3f}")
            else:
                missing = [x for x in (a, b) if x not in rate]
                print(f"  N={fmt_n(n):>5}  {label:<46}     n/a (no {', '.join(missing)})")
    for note in notes:
        print(f"note: {note}")
    elapsed = time.perf_counter() - t_start
    print(f"total wall time: {elapsed:.1f} s", file=sys.stderr)

    if args.json:
        print(
            json.dumps(
                {
                    "environment": env,
                    "runs": args.runs,
                    "seed": args.seed,
                    "results": results,
                    "ratios": ratios,
                    "skipped": skipped,
                    "notes": notes,
                    "wall_s": elapsed,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
