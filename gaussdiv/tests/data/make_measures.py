#!/usr/bin/env python3
"""High-precision truth files for Gaussian information measures in five
parameterisations of the scale.

    p1 = N(mu1, s1^2), p2 = N(mu2, s2^2)

Usage (from the crate root; ~10 s on 2 cores):

    python3 tests/data/make_measures.py --seed 1 --count 2000

Needs `pip install mpmath numpy`.  Writes, next to this script (or to --outdir):

    golden_measures_<P>.csv      one file per parameterisation P
    golden_measures.meta.json    seed, count, precision, row/drop counts, ...

Inputs
------
(mu1, s1, mu2, s2) are drawn as exact float32 values by the generator families
of the project's reference generator (make_reference.py) (a_near_equal, b_tiny_mean_diff,
c_extreme_ratio, d_large_mean, e_random_wellcond, r_random_wide,
f_overflow_prone, g_edge).  That code is COPIED VERBATIM below (marked section)
so that this script works from a clean checkout without the design inputs; with the
same seed and count it reproduces exactly the rows of golden_public.csv.

Parameterisations P (a = parameter used in place of sigma):
    std        a = sigma               sigma = a
    var        a = sigma^2             sigma = sqrt(a)
    logstd     a = ln sigma            sigma = exp(a)
    logvar     a = ln sigma^2          sigma = exp(a/2)
    precision  a = 1/sigma^2           sigma = 1/sqrt(a)
For each row, a1 = P(s1), a2 = P(s2) are computed in high precision from the
exact float32 sigma and then CORRECTLY rounded to float32 (round-to-nearest-
even, subnormals honoured, exact arithmetic on the binary mpf value -- no
double rounding through float64).  Rows where a1 or a2 rounds to 0 or
overflows float32 (var / precision only) are dropped from that file (counted
in the meta json).  Subnormal a values are kept.  All truths are then computed
FROM THE FLOAT32 PARAMETER VALUES a1, a2 (so e.g. exp(a) for logstd need not
be a float32 and may even exceed FLT_MAX).

Truth columns (mpmath at 50 significant digits, every value re-computed at 100
digits and required to agree to >= 25 significant digits; exact zeros must be
exactly zero at both precisions):
    cross_entropy   H(p1,p2) = 1/2 ln(2 pi s2^2) + ((mu1-mu2)^2 + s1^2)/(2 s2^2)
    kl              KL(p1||p2) = ln(s2/s1) + (s1^2 + (mu1-mu2)^2)/(2 s2^2) - 1/2
    entropy         H(p1) = 1/2 ln(2 pi e s1^2)
    entropy_q       H(p2)
    reverse_kl      KL(p2||p1)
    jeffreys        KL(p1||p2) + KL(p2||p1)
    bhattacharyya   D_B = (mu1-mu2)^2/(4(s1^2+s2^2)) + 1/2 ln((s1^2+s2^2)/(2 s1 s2))
    bhattacharyya_coefficient   exp(-D_B)
    hellinger       sqrt(1 - exp(-D_B))
    wasserstein2    sqrt((mu1-mu2)^2 + (s1-s2)^2)
    dkl_dmu1, dkl_da1, dkl_dmu2, dkl_da2   gradient of kl w.r.t. (mu1,a1,mu2,a2)
    dce_dmu1, dce_da1, dce_dmu2, dce_da2   gradient of cross_entropy, same
(a-derivatives use the chain rule through sigma(a) of that parameterisation.)

Cancellation-free forms are used throughout (they are what makes 50 digits
enough): with delta = ln s1 - ln s2 computed directly from a1, a2 (log1p of a
relative difference, or a difference of logs), r - 1 = s1^2/s2^2 - 1 =
expm1(2 delta) (exact rational arithmetic for std/var/precision),
    kl          = ((mu1-mu2)^2/s2^2 + [expm1(2 delta) - 2 delta]) / 2
    ln((s1^2+s2^2)/(2 s1 s2)) = ln cosh(delta) = log1p(2 sinh^2(delta/2))
    s1 - s2     = s2 expm1(delta)
    hellinger   = sqrt(-expm1(-D_B))
and exp(-D_B) is evaluated with extra digits when D_B is large (its relative
error is D_B times that of D_B).  No intermediate goes through a Python float.

CSV format: header
    mu1,a1,mu2,a2,<14 truths>,<8 gradients>,family,bits
mu1,a1,mu2,a2 are the float32 inputs as the shortest decimal that round-trips
to that float32 (parse them as f32, not f64!); truths have 25 significant
digits (mpmath nstr; plain or e-notation, always parseable by Rust's f64
FromStr; values below the f64 range, e.g. bhattacharyya_coefficient
~ 3.49e-8002982717... (a 166-digit exponent) for mu1 = 3, mu2 = -1.7e38,
s1 = s2 = 1e-45, are written exactly and parse to 0.0); bits = float32 bit patterns of mu1:a1:mu2:a2 as 8-digit
lowercase hex.  No NaN or inf is ever written.  Rows keep generator order.
"""
import argparse
import csv
import json
import math
import multiprocessing
import os
import sys
import time
from fractions import Fraction

import mpmath as mp
import numpy as np

DPS = 50
CHECK_DPS = 100
ESCALATE_DPS = 200          # only used if 50 and 100 digits disagree
AGREE_DIGITS = 25
OUT_DIGITS = 25

# ============================================================================
# BEGIN COPY of the project's reference generator (make_reference.py) (lines 45-288,
# verbatim): float32 helpers, family parameter draws, family generators and
# generate_inputs().  Keep in sync with that file; seed semantics identical.
# ============================================================================
F32 = np.float32
FLT_MAX = float(np.finfo(F32).max)
FLT_TINY = float(np.finfo(F32).tiny)           # smallest normal, 1.1754944e-38
FLT_SUB = float(np.nextafter(F32(0), F32(1)))   # smallest subnormal, 1.4e-45

# Share of rows per family (sum = 1).
FAMILY_SHARES = [
    ("a_near_equal", 0.15),      # mu1 == mu2, s1 = s2*(1 +- d), d in ~[1e-8, 1e-1], or k ulps
    ("b_tiny_mean_diff", 0.12),  # mu2 = mu1 + e*s2, e in ~[1e-6, 1e-1]
    ("c_extreme_ratio", 0.15),   # s1/s2 in ~[1e-30, 1e30], both within float32 normal range
    ("d_large_mean", 0.12),      # |mu| ~ 1e6, small sigma
    ("e_random_wellcond", 0.12), # mu in [-M, M], sigma log-uniform in ~[0.5, 10]
    ("r_random_wide", 0.12),     # mu U[-10, 10], sigma U[0.01, 10] (throughput distribution)
    ("f_overflow_prone", 0.12),  # squares of inputs over/underflow float32, result representable
    ("g_edge", 0.10),            # FLT_MAX, subnormals, CE ~ 0, exact equality, signed zero
]


def f32(x):
    """Round a python float to nearest float32; return it as an (exact) python float."""
    with np.errstate(over="ignore", under="ignore"):
        return float(F32(x))


def ulp_step(x, k):
    """x moved k float32 ulps (k may be negative)."""
    v = F32(x)
    d = F32(np.inf) if k > 0 else F32(-np.inf)
    for _ in range(abs(int(k))):
        v = np.nextafter(v, d)
    return float(v)


def ulp_step_fast(x, k):
    """x moved k float32 ulps via the bit pattern (x > 0 finite)."""
    b = np.array([x], dtype=F32).view(np.uint32)[0]
    b = np.uint32(int(b) + int(k))
    return float(np.array([b], dtype=np.uint32).view(F32)[0])


# ----------------------------------------------------------------------------
# Family parameter draws (seed-dependent) and generators
# ----------------------------------------------------------------------------

def draw_params(rng):
    U = lambda a, b: float(rng.uniform(a, b))
    return {
        "a_near_equal": {"dexp_lo": U(-8.5, -7.5), "dexp_hi": U(-1.4, -0.7),
                         "s_exp_lo": U(-4.0, -2.0), "s_exp_hi": U(2.0, 4.0),
                         "mu_max": 10 ** U(0.0, 2.0), "ulp_log2_max": U(14, 18),
                         "frac_ulp": U(0.3, 0.5), "frac_exact": U(0.02, 0.06)},
        "b_tiny_mean_diff": {"eexp_lo": U(-6.5, -5.5), "eexp_hi": U(-1.4, -0.7),
                             "s_exp_lo": U(-4.0, -2.0), "s_exp_hi": U(2.0, 4.0),
                             "mu_rel_exp_max": U(1.0, 3.5), "frac_equal_s": U(0.5, 0.7)},
        "c_extreme_ratio": {"kmax": U(28.0, 30.0), "s_exp_lim": U(36.0, 37.5),
                            "mu_exp_lo": U(-3.0, -1.0), "mu_exp_hi": U(1.0, 3.0),
                            "frac_diff_on_s1": U(0.3, 0.7)},
        "d_large_mean": {"mexp_lo": U(5.0, 5.8), "mexp_hi": U(6.2, 7.5),
                         "s_exp_lo": U(-3.5, -2.5), "s_exp_hi": U(-0.3, 1.0),
                         "ulp_kmax": int(rng.integers(4, 64))},
        "e_random_wellcond": {"mu_max": U(5.0, 15.0), "s_lo": U(0.45, 0.6), "s_hi": U(8.0, 12.0)},
        "r_random_wide": {"mu_max": 10.0, "s_lo": 0.01, "s_hi": 10.0},
        "f_overflow_prone": {"big_lo": U(19.2, 20.5), "big_hi": U(36.5, 38.0),
                             "tiny_lo": U(-37.5, -36.0), "tiny_hi": U(-20.5, -19.2),
                             "ratio_exp": U(1.0, 4.0)},
        "g_edge": {"jitter_frac": U(0.3, 0.6)},
    }


def gen_a(rng, n, p):
    out = []
    for _ in range(n):
        mu = f32(rng.uniform(-p["mu_max"], p["mu_max"]))
        s2 = f32(10 ** rng.uniform(p["s_exp_lo"], p["s_exp_hi"]))
        u = rng.random()
        if u < p["frac_exact"]:
            s1 = s2
        elif u < p["frac_exact"] + p["frac_ulp"]:
            k = int(round(2 ** rng.uniform(0, p["ulp_log2_max"]))) * (1 if rng.random() < 0.5 else -1)
            s1 = ulp_step_fast(s2, k)
        else:
            d = 10 ** rng.uniform(p["dexp_lo"], p["dexp_hi"]) * (1 if rng.random() < 0.5 else -1)
            s1 = s2 * (1 + d)
        if rng.random() < 0.5:          # also perturb the other argument sometimes
            s1, s2 = s2, s1
        out.append((mu, s1, mu, s2))
    return out


def gen_b(rng, n, p):
    out = []
    for _ in range(n):
        s2 = f32(10 ** rng.uniform(p["s_exp_lo"], p["s_exp_hi"]))
        mu1 = f32(rng.uniform(-1, 1) * s2 * 10 ** rng.uniform(0, p["mu_rel_exp_max"]))
        e = 10 ** rng.uniform(p["eexp_lo"], p["eexp_hi"]) * (1 if rng.random() < 0.5 else -1)
        mu2 = mu1 + e * s2
        if rng.random() < p["frac_equal_s"]:
            s1 = s2
        else:
            dl = 10 ** rng.uniform(p["eexp_lo"], p["eexp_hi"]) * (1 if rng.random() < 0.5 else -1)
            s1 = s2 * (1 + dl)
        out.append((mu1, s1, mu2, s2))
    return out


def gen_c(rng, n, p):
    out = []
    L = p["s_exp_lim"]
    for _ in range(n):
        k = rng.uniform(-p["kmax"], p["kmax"])          # log10(s1/s2)
        lo, hi = max(-L, -L - k), min(L, L - k)          # both s1, s2 in [1e-L, 1e+L]
        e2 = rng.uniform(lo, hi)
        s2 = 10 ** e2
        s1 = 10 ** (e2 + k)
        mu1 = (1 if rng.random() < 0.5 else -1) * 10 ** rng.uniform(p["mu_exp_lo"], p["mu_exp_hi"])
        scale = s1 if rng.random() < p["frac_diff_on_s1"] else s2
        mu2 = mu1 + rng.standard_normal() * scale
        out.append((mu1, s1, mu2, s2))
    return out


def gen_d(rng, n, p):
    out = []
    for _ in range(n):
        mu1 = f32((1 if rng.random() < 0.5 else -1) * 10 ** rng.uniform(p["mexp_lo"], p["mexp_hi"]))
        s1 = 10 ** rng.uniform(p["s_exp_lo"], p["s_exp_hi"])
        s2 = 10 ** rng.uniform(p["s_exp_lo"], p["s_exp_hi"])
        u = rng.random()
        if u < 0.4:
            mu2 = mu1 + rng.standard_normal() * s2
        elif u < 0.6:
            mu2 = ulp_step(mu1, int(rng.integers(-p["ulp_kmax"], p["ulp_kmax"] + 1)))
        elif u < 0.8:
            mu2 = -mu1 if rng.random() < 0.5 else rng.uniform(-1, 1) * abs(mu1)
        else:
            mu2 = mu1
            if rng.random() < 0.5:
                s1 = s2 * (1 + 10 ** rng.uniform(-7, -2))
        out.append((mu1, s1, mu2, s2))
    return out


def gen_e(rng, n, p):
    lo, hi = math.log10(p["s_lo"]), math.log10(p["s_hi"])
    return [(rng.uniform(-p["mu_max"], p["mu_max"]), 10 ** rng.uniform(lo, hi),
             rng.uniform(-p["mu_max"], p["mu_max"]), 10 ** rng.uniform(lo, hi)) for _ in range(n)]


def gen_r(rng, n, p):
    return [(rng.uniform(-p["mu_max"], p["mu_max"]), rng.uniform(p["s_lo"], p["s_hi"]),
             rng.uniform(-p["mu_max"], p["mu_max"]), rng.uniform(p["s_lo"], p["s_hi"])) for _ in range(n)]


def gen_f(rng, n, p):
    out = []
    for _ in range(n):
        u = rng.random()
        sg = lambda: 1 if rng.random() < 0.5 else -1
        if u < 0.35:     # both sigmas huge: s^2 overflows float32
            e2 = rng.uniform(p["big_lo"], p["big_hi"])
            e1 = min(e2 + rng.uniform(-p["ratio_exp"], p["ratio_exp"]), 38.2)
            s1, s2 = 10 ** e1, 10 ** e2
            mu1 = sg() * 10 ** rng.uniform(0, e2)
            mu2 = mu1 + rng.standard_normal() * s2 * 10 ** rng.uniform(-2, 1)
        elif u < 0.7:    # both sigmas tiny: s^2 underflows float32
            e2 = rng.uniform(p["tiny_lo"], p["tiny_hi"])
            e1 = max(e2 + rng.uniform(-p["ratio_exp"], p["ratio_exp"]), -37.9)
            s1, s2 = 10 ** e1, 10 ** e2
            mu1 = sg() * 10 ** rng.uniform(e2 - 2, 0) if rng.random() < 0.5 else 0.0
            mu2 = mu1 + rng.standard_normal() * s2 * 10 ** rng.uniform(-2, 1)
        else:            # huge mean difference: (mu1-mu2)^2 overflows, ratio to s2 moderate
            em = rng.uniform(p["big_lo"], min(p["big_hi"], 38.0))
            mu1 = sg() * 10 ** em
            mu2 = -mu1 * rng.uniform(0, 1) if rng.random() < 0.5 else rng.uniform(-1, 1) * 10 ** em
            s2 = 10 ** (em - rng.uniform(0, 8))
            s1 = s2 * 10 ** rng.uniform(-p["ratio_exp"], p["ratio_exp"])
            if abs(s1) > 3e38:
                s1 = 3e38
        out.append((mu1, s1, mu2, s2))
    return out


G_MU = [0.0, -0.0, FLT_SUB, -FLT_SUB, FLT_TINY, 1.0, -1.0, 1e30, -1e30,
        FLT_MAX, -FLT_MAX, FLT_MAX / 2, -FLT_MAX / 2, 3.0, -7.5]
G_S = [FLT_SUB, 7 * FLT_SUB, FLT_TINY, 1e-30, 1 / math.sqrt(2 * math.pi * math.e),
       1 / math.sqrt(2 * math.pi), 1.0, 2.0, 1e30, FLT_MAX]


def gen_g(rng, n, p):
    out = [(0.0, 1.0, 0.0, 1.0),                                   # KL = 0
           (FLT_MAX, FLT_MAX, -FLT_MAX, FLT_MAX),                  # mu1-mu2 overflows f32
           (0.0, FLT_SUB, 0.0, FLT_MAX),                           # extreme ratio, both extremes
           (0.0, FLT_MAX, 0.0, FLT_SUB),
           (0.0, G_S[4], 0.0, G_S[4]),                             # CE = H ~ 0
           (1.0, G_S[4], 1.0, G_S[4]),
           (-0.0, FLT_SUB, 0.0, FLT_SUB)]                          # signed zero, subnormal s
    while len(out) < n:
        mu1, mu2 = G_MU[rng.integers(len(G_MU))], G_MU[rng.integers(len(G_MU))]
        s1, s2 = G_S[rng.integers(len(G_S))], G_S[rng.integers(len(G_S))]
        if rng.random() < p["jitter_frac"]:   # move s1 a few ulps off its special value
            s1 = ulp_step(s1, int(rng.integers(1, 5)) * (1 if s1 < FLT_MAX else -1))
        out.append((mu1, s1, mu2, s2))
    return out[:n]


GENERATORS = {"a_near_equal": gen_a, "b_tiny_mean_diff": gen_b, "c_extreme_ratio": gen_c,
              "d_large_mean": gen_d, "e_random_wellcond": gen_e, "r_random_wide": gen_r,
              "f_overflow_prone": gen_f, "g_edge": gen_g}


def _valid(row):
    mu1, s1, mu2, s2 = row
    return (all(math.isfinite(v) for v in row) and s1 > 0 and s2 > 0)


def generate_inputs(seed, count, families=None, per_family=None):
    """Return (rows, params); rows = list of (family, mu1, s1, mu2, s2) exact float32 values.

    per_family: if given, generate exactly this many rows for every family
    (used by accuracy studies); otherwise split `count` by FAMILY_SHARES.
    """
    rng = np.random.default_rng(seed)
    params = draw_params(rng)
    fams = [f for f, _ in FAMILY_SHARES if families is None or f in families]
    if per_family is None:
        shares = dict(FAMILY_SHARES)
        tot = sum(shares[f] for f in fams)
        sizes = {f: int(round(count * shares[f] / tot)) for f in fams}
        sizes[fams[-2 if len(fams) > 1 else -1]] += count - sum(sizes.values())
    else:
        sizes = {f: per_family for f in fams}
    rows = []
    for f in fams:
        frng = np.random.default_rng([seed, fams.index(f), 0xC0FFEE])
        got = []
        while len(got) < sizes[f]:
            for r in GENERATORS[f](frng, sizes[f] - len(got), params[f]):
                rr = tuple(f32(v) for v in r)
                if _valid(rr):
                    got.append(rr)
        rows.extend((f,) + r for r in got[:sizes[f]])
    return rows, params


# ============================================================================
# END COPY of make_reference.py
# ============================================================================


PARAMS = ["std", "var", "logstd", "logvar", "precision"]
RATIONAL = {"std", "var", "precision"}      # sigma^2 is a rational function of a

TRUTHS = ["cross_entropy", "kl", "entropy", "entropy_q", "reverse_kl", "jeffreys",
          "bhattacharyya", "bhattacharyya_coefficient", "hellinger", "wasserstein2",
          "dkl_dmu1", "dkl_da1", "dkl_dmu2", "dkl_da2",
          "dce_dmu1", "dce_da1", "dce_dmu2", "dce_da2"]
COLUMNS = ["mu1", "a1", "mu2", "a2"] + TRUTHS + ["family", "bits"]


# ----------------------------------------------------------------------------
# sigma -> parameter, correctly rounded to float32
# ----------------------------------------------------------------------------

def param_of_sigma(P, s):
    """High-precision parameter value for an exact sigma (mpf), current precision."""
    if P == "std":
        return +s
    if P == "var":
        return s * s
    if P == "logstd":
        return mp.log(s)
    if P == "logvar":
        return 2 * mp.log(s)
    if P == "precision":
        return 1 / (s * s)
    raise ValueError(P)


def round_to_f32(v):
    """Correctly round an mpf to float32 (nearest, ties to even, with subnormals).

    Works on the exact binary value of v (no float64 intermediate, hence no
    double rounding).  Returns a Python float holding the float32 value, or
    +-inf on overflow; +-0.0 on underflow.
    """
    if v == 0:
        return 0.0
    neg = v < 0
    x = -v if neg else +v
    _, e = mp.frexp(x)                      # x = m 2^e, 0.5 <= m < 1
    q = max(e - 24, -149)                   # float32 quantum at this binade
    n = mp.ldexp(x, -q)                     # exact (exponent shift)
    fl = int(mp.floor(n))
    frac = n - fl                           # exact
    half = mp.mpf(0.5)
    if frac > half or (frac == half and fl % 2 == 1):
        fl += 1
    if fl == 0:
        r = 0.0
    else:
        # fl <= 2^24, so fl * 2^q is exact in float64 unless it overflows float32
        if q + fl.bit_length() > 128:
            r = math.inf
        else:
            r = math.ldexp(float(fl), q)
            if r > FLT_MAX:
                r = math.inf
    assert r == 0 or math.isinf(r) or float(F32(r)) == r
    return -r if neg else r


def params_for_row(P, s1, s2):
    """(a1, a2) as float32-valued Python floats, or (None, reason)."""
    out = []
    for s in (s1, s2):
        got = []
        for dps in (DPS, CHECK_DPS):
            with mp.workdps(dps):
                got.append(round_to_f32(param_of_sigma(P, mp.mpf(s))))
        if got[0] != got[1] and not (got[0] == 0 and got[1] == 0):
            raise AssertionError(f"f32 rounding of {P}({s!r}) unstable: {got}")
        out.append(got[1])
    for a in out:
        if math.isinf(a) or math.isnan(a):
            return None, "overflow"
        if P in ("var", "precision") and a == 0:
            return None, "underflow_to_zero"
    return tuple(out), None


# ----------------------------------------------------------------------------
# Truth (everything from the exact float32 mu1, a1, mu2, a2)
# ----------------------------------------------------------------------------

def _q2mp(q):
    return mp.mpf(q.numerator) / mp.mpf(q.denominator)


def _G(t):
    """expm1(t) - t, accurate to full relative precision for tiny t."""
    if t == 0:
        return mp.mpf(0)
    with mp.extraprec(max(0, -int(mp.mag(t))) + 20):
        return +(mp.expm1(t) - t)


def _cancel_free_sum(terms_fn, max_extra_bits=4000):
    """Sum of the terms returned by terms_fn() (which must recompute them from
    the exact inputs at the current precision) to full relative precision: if
    the sum cancels k bits, it is recomputed with k + 32 extra bits."""
    extra = 0
    while True:
        with mp.extraprec(extra):
            terms = [t for t in terms_fn() if t != 0]
            if not terms:
                return mp.mpf(0)
            tot = mp.fsum(terms)
            lost = max(int(mp.mag(t)) for t in terms) - (int(mp.mag(tot)) if tot != 0 else -10 ** 9)
        if lost <= extra - 16 or extra >= max_extra_bits:
            if lost > extra - 16:
                raise AssertionError("unresolved cancellation")
            return +tot
        extra = min(max_extra_bits, max(lost, 0) + 32 + extra // 2)


def _frac(x):
    """Exact Fraction of a float32-valued Python float."""
    return Fraction(x)


def _scale(P, a):
    """(ln sigma, sigma^2, sigma, d ln sigma / d a) for one parameter value (mpf)."""
    if P == "std":
        return mp.log(a), a * a, +a, 1 / a
    if P == "var":
        return mp.log(a) / 2, +a, mp.sqrt(a), 1 / (2 * a)
    if P == "logstd":
        return +a, mp.exp(2 * a), mp.exp(a), mp.mpf(1)
    if P == "logvar":
        return a / 2, mp.exp(a), mp.exp(a / 2), mp.mpf(0.5)
    if P == "precision":
        return -mp.log(a) / 2, 1 / a, 1 / mp.sqrt(a), -1 / (2 * a)
    raise ValueError(P)


def _lnratio(a1, a2):
    """ln(a1/a2) for a1, a2 > 0 without cancellation: log1p of the relative
    difference when a1 ~ a2, a difference of logs otherwise."""
    u = (a1 - a2) / a2
    if abs(u) < 0.5:
        return mp.log1p(u)
    return mp.log(a1) - mp.log(a2)


def _delta(P, a1, a2):
    """delta = ln s1 - ln s2, without cancellation."""
    if P == "std":
        return _lnratio(a1, a2)
    if P == "var":
        return _lnratio(a1, a2) / 2
    if P == "logstd":
        return a1 - a2
    if P == "logvar":
        return (a1 - a2) / 2
    if P == "precision":
        return -_lnratio(a1, a2) / 2
    raise ValueError(P)


def _var_frac(P, a):
    """sigma^2 as an exact Fraction (rational parameterisations only)."""
    if P == "std":
        return a * a
    if P == "var":
        return a
    if P == "precision":
        return 1 / a
    raise ValueError(P)


def _db(P, mu1, a1, mu2, a2):
    d = mu1 - mu2
    _, v1, _, _ = _scale(P, a1)
    _, v2, _, _ = _scale(P, a2)
    dl = _delta(P, a1, a2)
    sh = mp.sinh(dl / 2)
    return d * d / (4 * (v1 + v2)) + mp.log1p(2 * sh * sh) / 2


def measures(P, x, dps):
    """All TRUTHS for the float32-valued inputs x = (mu1, a1, mu2, a2), at dps digits."""
    with mp.workdps(dps):
        mu1, a1, mu2, a2 = (mp.mpf(v) for v in x)        # exact binary values
        d = mu1 - mu2                                      # correctly rounded
        d2 = d * d
        L1, v1, s1, dL1 = _scale(P, a1)
        L2, v2, s2, dL2 = _scale(P, a2)
        dl = _delta(P, a1, a2)
        if P in RATIONAL:
            F = [_frac(v) for v in x]
            fv1, fv2 = _var_frac(P, F[1]), _var_frac(P, F[3])
            fd = F[0] - F[2]
            rm1 = _q2mp((fv1 - fv2) / fv2)                 # r - 1, r = s1^2/s2^2
            r = _q2mp(fv1 / fv2)
            gL2 = _q2mp(-(fv1 - fv2 + fd * fd) / fv2)      # d KL / d ln s2
        else:
            rm1 = mp.expm1(2 * dl)
            r = mp.exp(2 * dl)

            def _gl2_terms():            # -(d KL / d ln s2) = (r - 1) + d^2/s2^2
                m1, b1, m2, b2 = (mp.mpf(v) for v in x)
                dd = m1 - m2
                return [mp.expm1(2 * _delta(P, b1, b2)), dd * dd / _scale(P, b2)[1]]
            gL2 = -_cancel_free_sum(_gl2_terms)
        kl = (d2 / v2 + _G(2 * dl)) / 2
        rkl = (d2 / v1 + _G(-2 * dl)) / 2

        def _ent_terms(i):               # 1/2 ln(2 pi e) + ln s_i
            return lambda: [(mp.log(2 * mp.pi) + 1) / 2, _scale(P, mp.mpf(x[i]))[0]]

        def _ce_terms():                 # H(p1) + KL
            m1, b1, m2, b2 = (mp.mpf(v) for v in x)
            dd = m1 - m2
            dd2 = dd * dd
            return _ent_terms(1)() + [(dd2 / _scale(P, b2)[1] + _G(2 * _delta(P, b1, b2))) / 2]
        ent1 = _cancel_free_sum(_ent_terms(1))
        ent2 = _cancel_free_sum(_ent_terms(3))
        ce = _cancel_free_sum(_ce_terms)
        jef = kl + rkl
        sh = mp.sinh(dl / 2)
        db = d2 / (4 * (v1 + v2)) + mp.log1p(2 * sh * sh) / 2
        if db > 1:
            # exp(-db) has relative error db * rel.err(db): add the digits of db.
            extra = int(mp.ceil(mp.log10(db))) + 5
            with mp.extradps(extra):
                bc = mp.exp(-_db(P, mu1, a1, mu2, a2))
        else:
            bc = mp.exp(-db)
        hel = mp.sqrt(-mp.expm1(-db))
        w2 = mp.sqrt(d2 + (s2 * mp.expm1(dl)) ** 2)
        gmu = d / v2
        out = [ce, kl, ent1, ent2, rkl, jef, db, bc, hel, w2,
               gmu, rm1 * dL1, -gmu, gL2 * dL2,
               gmu, r * dL1, -gmu, gL2 * dL2]
        return [+v for v in out]


def _agree_digits(a, b):
    """Number of agreeing significant digits (inf if identical)."""
    if a == b:
        return math.inf
    if b == 0 or a == 0:
        return -math.inf
    rel = abs((a - b) / b)
    return float(-mp.log10(rel))


def truth_checked(P, x):
    """50-digit truth checked against 100 digits; escalates to 200 digits on
    disagreement (then the 100-digit value is used if 100 and 200 agree)."""
    lo = measures(P, x, DPS)
    hi = measures(P, x, CHECK_DPS)
    res, notes, mind = [], [], math.inf
    for name, a, b in zip(TRUTHS, lo, hi):
        with mp.workdps(CHECK_DPS):
            ag = _agree_digits(a, b)
        if ag >= AGREE_DIGITS:
            res.append(a)
            mind = min(mind, ag)
            continue
        top = measures(P, x, ESCALATE_DPS)[TRUTHS.index(name)]
        with mp.workdps(ESCALATE_DPS):
            ag2 = _agree_digits(b, top)
        if ag2 < 2 * AGREE_DIGITS:
            raise AssertionError(f"{P} {name} {x}: unstable truth {a} / {b} / {top}")
        notes.append({"param": P, "column": name, "x": list(x),
                      "agree_50_100": ag, "agree_100_200": ag2})
        res.append(b)
    return res, notes, mind


# ----------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------

def fmt_in(x):
    """Shortest decimal that round-trips to the float32 x."""
    s = str(F32(x))
    assert float(F32(s)) == x and math.copysign(1, float(F32(s))) == math.copysign(1, x)
    return s


def fmt_truth(v):
    s = mp.nstr(v, OUT_DIGITS, min_fixed=0, max_fixed=0)
    assert "nan" not in s.lower() and "mpf" not in s and "inf" not in s.lower(), s
    return s


def bits(x):
    return "%08x" % np.array([x], dtype=F32).view(np.uint32)[0]


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------

def work_row(job):
    """All parameterisations of one input row."""
    fam, mu1, s1, mu2, s2 = job
    out = {}
    for P in PARAMS:
        ab, why = params_for_row(P, s1, s2)
        if ab is None:
            out[P] = (None, why, [], None)
            continue
        x = (mu1, ab[0], mu2, ab[1])
        vals, notes, mind = truth_checked(P, x)
        line = [fmt_in(v) for v in x] + [fmt_truth(v) for v in vals] + \
               [fam, ":".join(bits(v) for v in x)]
        out[P] = (line, None, notes, mind)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--outdir", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()

    t0 = time.time()
    rows, fam_params = generate_inputs(a.seed, a.count)
    if a.jobs > 1:
        with multiprocessing.Pool(a.jobs) as pool:
            results = pool.map(work_row, rows, chunksize=8)
    else:
        results = [work_row(r) for r in rows]

    fams = [f for f, _ in FAMILY_SHARES]
    meta = {"seed": a.seed, "count": len(rows), "dps": DPS, "check_dps": CHECK_DPS,
            "escalate_dps": ESCALATE_DPS, "agree_digits_required": AGREE_DIGITS,
            "output_digits": OUT_DIGITS,
            "family_counts": {f: sum(1 for r in rows if r[0] == f) for f in fams},
            "parameterisations": {}, "escalations": []}
    for P in PARAMS:
        path = os.path.join(a.outdir, f"golden_measures_{P}.csv")
        kept, dropped, reasons, dfam, kfam = 0, 0, {}, {}, {}
        sub, mind = 0, math.inf
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(COLUMNS)
            for (fam, *_), res in zip(rows, results):
                line, why, notes, md = res[P]
                if line is None:
                    dropped += 1
                    reasons[why] = reasons.get(why, 0) + 1
                    dfam[fam] = dfam.get(fam, 0) + 1
                    continue
                w.writerow(line)
                kept += 1
                kfam[fam] = kfam.get(fam, 0) + 1
                meta["escalations"].extend(notes)
                mind = min(mind, md)
                for av in (line[1], line[3]):
                    f = abs(float(F32(av)))
                    if 0 < f < FLT_TINY:
                        sub += 1
        meta["parameterisations"][P] = {
            "file": os.path.basename(path), "rows": kept, "dropped": dropped,
            "dropped_by_reason": reasons, "dropped_by_family": dfam,
            "family_counts": kfam, "subnormal_parameter_values": sub,
            "min_agree_digits_50_vs_100": (None if math.isinf(mind) else round(mind, 2))}
        print(f"{P:10s} rows={kept} dropped={dropped} {reasons} -> {path}")
    meta.update({"family_params": fam_params, "numpy": np.__version__,
                 "mpmath": mp.__version__, "python": sys.version.split()[0]})
    with open(os.path.join(a.outdir, "golden_measures.meta.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    print(f"done in {time.time() - t0:.1f}s; escalations: {len(meta['escalations'])}")


if __name__ == "__main__":
    main()
