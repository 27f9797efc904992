#!/usr/bin/env python3
"""Seeded generator of the accuracy-defect classes of tests/findings.rs, with
truth from mpmath (independent of the crate's formulas).

Writes gaussdiv/tests/data/findings.csv, one line per (row, measure):
  class,prec,param,dims,mu1,a1,mu2,a2,measure,verdict,truth
mu1..a2 are ';'-separated lists of `dims` values (exact decimal reprs of the
prec-bit inputs). verdict: `inf` (truth >= MAX + 1/2 ulp: +inf required),
`window` (MAX <= truth < MAX + 1/2 ulp: MAX or +inf), `value` (compare with
truth). Run: python3 scripts/findings_truth.py (needs mpmath, numpy)."""
import random, sys
import math, struct
from mpmath import mp, mpf, sqrt, exp, log, expm1, cosh, acosh

mp.dps = 200
SEED = 20240611
PARAMS = ["std", "var", "logstd", "logvar", "precision"]
FMT = {32: (None, 24, 128), 64: (None, 53, 1024)}

def rnd(x, prec):
    """x rounded to the format (as a Python float, exact); OverflowError beyond it."""
    v = float(x)
    if math.isinf(v):
        raise OverflowError
    if prec == 32:
        v = struct.unpack("f", struct.pack("f", v))[0]
    return v

def rep(v, prec):
    return repr(float(v))

def maxv(prec):
    _, p, e = FMT[prec]
    return (2 - mpf(2) ** (1 - p)) * mpf(2) ** (e - 1)

def halfulp(prec):
    _, p, e = FMT[prec]
    return mpf(2) ** (e - 1 - p)

def sigma_of(a, param):
    a = mpf(a)
    return {"std": lambda: a, "var": lambda: sqrt(a), "logstd": lambda: exp(a),
            "logvar": lambda: exp(a / 2), "precision": lambda: 1 / sqrt(a)}[param]()

def lnsig(a, param):
    a = mpf(a)
    return {"std": lambda: log(a), "var": lambda: log(a) / 2, "logstd": lambda: a,
            "logvar": lambda: a / 2, "precision": lambda: -log(a) / 2}[param]()

def a_of(sigma, param):
    """The parameter for sigma (mpf)."""
    return {"std": lambda: sigma, "var": lambda: sigma**2, "logstd": lambda: log(sigma),
            "logvar": lambda: 2 * log(sigma), "precision": lambda: 1 / sigma**2}[param]()

def truth(mu1, a1, mu2, a2, param):
    s1, s2 = sigma_of(a1, param), sigma_of(a2, param)
    l1, l2 = lnsig(a1, param), lnsig(a2, param)
    d = mpf(mu1) - mpf(mu2)
    lr = l1 - l2
    rho2 = exp(2 * lr)
    kl = -lr + (rho2 + d * d / s2**2) / 2 - mpf(1) / 2
    rkl = lr + (1 / rho2 + d * d / s1**2) / 2 - mpf(1) / 2
    ss = s1**2 + s2**2
    db = d * d / (4 * ss) + log(ss / (2 * s1 * s2)) / 2
    h1 = (1 + log(2 * mp.pi)) / 2 + l1
    return {"cross_entropy": h1 + kl, "kl": kl, "reverse_kl": rkl, "jeffreys": kl + rkl,
            "bhattacharyya": db, "bhattacharyya_coefficient": exp(-db),
            "hellinger": sqrt(-expm1(-db))}

def verdict(t, prec):
    m = maxv(prec)
    if t >= m + halfulp(prec):
        return "inf"
    if t >= m:
        return "window"
    return "value"

def emit(out, cls, prec, param, rows, measure, t):
    cols = [";".join(rep(r[i], prec) for r in rows) for i in range(4)]
    v = verdict(t, prec)
    ts = "" if v != "value" else mp.nstr(t, 40, min_fixed=0, max_fixed=0)
    out.append(f"{cls},{prec},{param},{len(rows)},{','.join(cols)},{measure},{v},{ts}")

def inputs(mu1, s1, mu2, s2, param, prec):
    """Rounded inputs (a from sigma in mpf); None if out of range."""
    try:
        a1 = rnd(a_of(mpf(s1), param), prec)
        a2 = rnd(a_of(mpf(s2), param), prec)
        m1, m2 = rnd(mu1, prec), rnd(mu2, prec)
    except (OverflowError, ValueError):
        return None
    vals = (m1, a1, m2, a2)
    if any(not math.isfinite(v) for v in vals):
        return None
    if param in ("std", "var", "precision") and (a1 <= 0 or a2 <= 0):
        return None
    tiny = 2.0 ** (-126 if prec == 32 else -1022)
    if param in ("std", "var", "precision") and (a1 < tiny or a2 < tiny):
        return None
    return vals

def class_bc_subnormal(rng, out, n):
    """BC truth below the smallest normal (and above the smallest subnormal)."""
    for prec in (32, 64):
        lo, hi = (87.5, 102.5) if prec == 32 else (708.6, 743.0)
        for param in PARAMS:
            k = 0
            while k < n:
                T = mpf(rng.uniform(lo, hi))
                f = rng.choice([0.0, 1.0, rng.random()])   # share of the log part
                ls2 = rng.uniform(-30, 30) if prec == 32 else rng.uniform(-300, 300)
                s2 = exp(mpf(ls2))
                y = acosh(exp(2 * f * T)) if f > 0 else mpf(0)
                s1 = s2 * exp(y if rng.random() < 0.5 else -y)
                X = (1 - f) * T
                dmu = sqrt(4 * X * (s1**2 + s2**2))
                mu2 = rng.choice([0.0, rng.uniform(-1, 1) * 10 ** rng.uniform(-3, 10)])
                r = inputs(mu2 + dmu, s1, mu2, s2, param, prec)
                if r is None:
                    continue
                t = truth(*r, param)["bhattacharyya_coefficient"]
                tiny = mpf(2) ** (-126 if prec == 32 else -1022)
                if not (mpf(2) ** (-149 if prec == 32 else -1074) * 4 < t < tiny):
                    continue
                emit(out, "bc_subnormal", prec, param, [r], "bhattacharyya_coefficient", t)
                k += 1

def class_overflow(rng, out, n):
    """KL, reverse KL, Jeffreys, D_B, cross-entropy within a few ulps of MAX + 1/2 ulp."""
    for prec in (32, 64):
        thr = maxv(prec) + halfulp(prec)
        ulp = 2 * halfulp(prec)
        for param in PARAMS:
            k = 0
            while k < n:
                meas = rng.choice(["kl", "reverse_kl", "jeffreys", "bhattacharyya", "cross_entropy"])
                T = thr + mpf(rng.uniform(-3, 3)) * ulp
                mode = rng.choice(["mean", "ratio", "mixed"])
                if meas == "bhattacharyya":
                    mode = "mean" if param not in ("logstd", "logvar") else rng.choice(["mean", "ratio"])
                if meas == "jeffreys" and mode == "mixed":
                    mode = "mean"
                f = {"mean": 1, "ratio": 0, "mixed": mpf(rng.uniform(0.2, 0.8))}[mode]
                lsig = rng.uniform(-20, 15) if prec == 32 else rng.uniform(-200, 150)
                if param in ("var", "precision"):
                    lsig /= 2.5
                s = exp(mpf(lsig))
                if meas in ("kl", "cross_entropy", "reverse_kl"):
                    # KL ~ 1/2 dmu^2/s2^2 + 1/2 rho^2 - ln rho
                    s2 = s
                    if mode == "ratio" and param in ("logstd", "logvar") and rng.random() < 0.5:
                        # -ln rho dominant: rho -> 0
                        s1 = None
                    else:
                        s1 = s2 * sqrt(2 * (1 - f) * T) if f < 1 else s2
                    dmu = sqrt(2 * f * T) * s2
                    if s1 is None:
                        # log parameters: a1 - a2 = -(T + 1/2) (logstd) so KL ~ T
                        a2v = mpf(rng.uniform(0.2, 0.9)) * maxv(prec) * (1 if param == "logstd" else 2) / 2
                        lr = -(T + mpf(1) / 2)
                        a1v = a2v + (lr if param == "logstd" else 2 * lr)
                        m = rnd(0.0, prec)
                        try:
                            r = (m, rnd(a1v, prec), m, rnd(a2v, prec))
                        except OverflowError:
                            continue
                        if not all(math.isfinite(v) for v in r):
                            continue
                    else:
                        if meas == "reverse_kl":
                            s1, s2 = s2, s1
                        r = inputs(dmu, s1, 0.0, s2, param, prec)
                elif meas == "jeffreys":
                    if mode == "mean":
                        r = inputs(sqrt(T) * s, s, 0.0, s, param, prec)
                    else:
                        r = inputs(0.0, s * sqrt(2 * T), 0.0, s, param, prec)
                else:  # bhattacharyya
                    if mode == "mean":
                        r = inputs(sqrt(8 * T) * s, s, 0.0, s, param, prec)
                    else:
                        a2v = -mpf(rng.uniform(0.2, 0.9)) * maxv(prec)
                        lr = 2 * T + log(mpf(2))
                        a1v = a2v + (lr if param == "logstd" else 2 * lr)
                        if a1v > maxv(prec):
                            continue
                        r = (0.0, rnd(a1v, prec), 0.0, rnd(a2v, prec))
                if r is None:
                    continue
                t = truth(*r, param)[meas]
                if abs(t / thr - 1) > 8 * ulp / thr:
                    continue
                emit(out, "overflow", prec, param, [r], meas, t)
                k += 1

def class_diagonal(rng, out, n):
    for prec in (32, 64):
        for param in PARAMS:
            # (a) tiny Hellinger: per-dim D_B below the range, sqrt(D_B) inside it
            k = 0
            while k < n:
                dims = rng.randint(1, 6)
                rows = []
                for _ in range(dims):
                    s = exp(mpf(rng.uniform(-5, 5)))
                    e = rng.uniform(-36, -22) if prec == 32 else rng.uniform(-300, -160)
                    dmu = s * mpf(10) ** e
                    r = inputs(dmu, s, 0.0, s, param, prec)
                    if r is None:
                        break
                    rows.append(r)
                if len(rows) < dims:
                    continue
                db = sum(truth(*r, param)["bhattacharyya"] for r in rows)
                emit(out, "diag_hellinger", prec, param, rows, "hellinger", sqrt(-expm1(-db)))
                k += 1
            # (b) coefficient with a large sum
            k = 0
            while k < n:
                dims = rng.randint(2, 8)
                total = rng.uniform(5, 85) if prec == 32 else rng.uniform(50, 700)
                rows = []
                for _ in range(dims):
                    T = mpf(total / dims * rng.uniform(0.5, 1.5))
                    f = rng.random()
                    s2 = exp(mpf(rng.uniform(-10, 10)))
                    y = acosh(exp(2 * f * T))
                    s1 = s2 * exp(y if rng.random() < 0.5 else -y)
                    dmu = sqrt(4 * (1 - f) * T * (s1**2 + s2**2))
                    mu2 = rng.uniform(-100, 100)
                    r = inputs(mu2 + dmu, s1, mu2, s2, param, prec)
                    if r is None:
                        break
                    rows.append(r)
                if len(rows) < dims:
                    continue
                db = sum(truth(*r, param)["bhattacharyya"] for r in rows)
                t = exp(-db)
                if t < mpf(2) ** (-126 if prec == 32 else -1022):
                    continue
                emit(out, "diag_coefficient", prec, param, rows, "bhattacharyya_coefficient", t)
                k += 1
            # (c) D_B sums around MAX + 1/2 ulp
            k = 0
            thr = maxv(prec) + halfulp(prec)
            ulp = 2 * halfulp(prec)
            while k < n:
                dims = rng.randint(1, 3)
                T = thr + mpf(rng.uniform(-3, 3)) * ulp
                rows = []
                for _ in range(dims):
                    s = exp(mpf(rng.uniform(-8, 8) if param in ("var", "precision") else rng.uniform(-15, 10)))
                    r = inputs(sqrt(8 * T / dims * mpf(rng.uniform(0.9, 1.1) if dims > 1 else 1)) * s, s, 0.0, s, param, prec)
                    if r is None:
                        break
                    rows.append(r)
                if len(rows) < dims:
                    continue
                t = sum(truth(*r, param)["bhattacharyya"] for r in rows)
                if abs(t / thr - 1) > 8 * ulp / thr:
                    continue
                emit(out, "diag_overflow", prec, param, rows, "bhattacharyya", t)
                k += 1

def f2_of(a2, param):
    """d sigma-form / d a2 as in the crate's gradients: 1/sigma (std), 1/(2 sigma^2)
    (var), 1 (logstd), 1/2 (logvar), -1/(2 tau) (precision)."""
    a2 = mpf(a2)
    s2 = sigma_of(a2, param)
    return {"std": lambda: 1 / s2, "var": lambda: 1 / (2 * s2**2), "logstd": lambda: mpf(1),
            "logvar": lambda: mpf(1) / 2, "precision": lambda: -1 / (2 * a2)}[param]()

def class_grad_a2(rng, out, n):
    """d/da2 of KL (= of the cross-entropy) = (1 - rho^2 - q^2) f2 where it
    cancels: rho < 1 and q^2 near 1 (q = 1 exactly in a quarter of the rows).
    Emitted as measure `d_a2`; the row's `truth` is the exact gradient of the
    rounded inputs, and the extra column-free scale rho^2 |f2| is recomputed
    by the test."""
    for prec in (32, 64):
        for param in PARAMS:
            k = 0
            while k < n:
                s2 = exp(mpf(rng.uniform(-6, 6)))
                rho = mpf(10) ** rng.uniform(-18 if prec == 32 else -150, -0.3)
                mode = rng.random()
                if mode < 0.25:
                    q2 = mpf(1)
                elif mode < 0.75:
                    e = rng.uniform(-12 if prec == 32 else -40, -1)
                    q2 = 1 + rng.choice([-1, 1]) * mpf(10) ** e
                else:
                    q2 = mpf(rng.uniform(0.55, 1.8))
                mu2 = rng.choice([0.0, rng.uniform(-3, 3)])
                dmu = sqrt(q2) * s2
                if mode < 0.25 and param == "std":
                    # q = 1 exactly: mu1 - mu2 = sigma2 in the format.
                    s2r = rnd(s2, prec)
                    r = inputs(s2r, rho * s2r, 0.0, s2r, param, prec)
                else:
                    r = inputs(mu2 + dmu, rho * s2, mu2, s2, param, prec)
                if r is None:
                    continue
                m1, a1, m2, a2 = r
                sg1, sg2 = sigma_of(a1, param), sigma_of(a2, param)
                qq = ((mpf(m1) - mpf(m2)) / sg2) ** 2
                rr = (sg1 / sg2) ** 2
                if rr >= 1:
                    continue
                t = (1 - rr - qq) * f2_of(a2, param)
                if t == 0:
                    continue
                emit(out, "grad_a2", prec, param, [r], "d_a2", t)
                k += 1

def main():
    rng = random.Random(SEED)
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    out = ["class,prec,param,dims,mu1,a1,mu2,a2,measure,verdict,truth"]
    class_bc_subnormal(rng, out, n)
    class_overflow(rng, out, n)
    class_diagonal(rng, out, n)
    class_grad_a2(random.Random(SEED + 5), out, n)
    path = "gaussdiv/tests/data/findings.csv"
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    print(f"{len(out) - 1} rows -> {path}")

if __name__ == "__main__":
    main()
