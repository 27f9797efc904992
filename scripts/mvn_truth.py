#!/usr/bin/env python3
"""Seeded generator of full-covariance Gaussian pairs with high-precision
truth (issue 15; docs/ARCHITECTURE.md §9), independent of the crate.

Writes gaussdiv/tests/data/mvn_truth.csv: one line per pair,

  prec,family,d,param1,param2,mu1,m1,mu2,m2,cond1,cond2,lnl1,lnl2,<10 measures>

* prec: 32 or 64, the binary format of the inputs (and of the result judged).
* family: random, near (nearly equal, down to KL ~ 1e-12 in f32 and 1e-28 in
  f64, including single-ulp perturbations), identical (bitwise equal sides:
  every divergence exactly 0), mean_only (equal matrices, different means),
  extreme (scales 1e-30..1e30 in f32, 1e-150..1e150 in f64), far (means far
  apart), ill (condition numbers up to 1e4 in f32, 1e8 in f64), bc_large
  (D_B from 20 to 80 in f32 and to 650 in f64, by the means or by a scale
  ratio: where the coefficient e^-D_B is most sensitive).
* d: dimension. param1, param2: how each side's matrix is given, `cov`
  (covariance), `tril` (lower Cholesky factor of the covariance, "scale_tril")
  or `prec` (precision matrix, the inverse covariance); the sides may differ.
* mu1, mu2: d values; m1, m2: the d(d+1)/2 entries of the lower triangle,
  row by row ((0,0), (1,0), (1,1), (2,0), ...). For cov and prec the matrix is
  the symmetric one with this lower triangle; for tril the upper triangle is 0.
  Every value is the exact bit pattern of the input, lowercase hex (8 digits
  for f32, 16 for f64), values separated by ';'.
* cond1, cond2: 2-norm condition numbers of the covariances Sigma1, Sigma2.
* lnl1, lnl2: sum_i |ln L_ii| for the lower Cholesky factor L of Sigma1 and
  Sigma2 (the entropy scale of the tolerance model).
* the ten measures in the library's canonical order (Metric::ALL):
  cross_entropy, kl, entropy, entropy_q, reverse_kl, jeffreys, bhattacharyya,
  bhattacharyya_coefficient, hellinger, wasserstein2, 30 significant digits
  (exact zeros written as 0.0; the coefficient may be below the f64 range,
  and where D_B > 10000 it is written as 0.0, the value it rounds to in
  either format).

Truth: mpmath at DPS = 110 digits from the exact binary inputs, by the
definitions (no reformulation is needed at this precision):
  KL  = 1/2 (tr(S2^-1 S1) - d + ln det S2 - ln det S1 + dmu' S2^-1 dmu)
  H1  = d/2 (1 + ln 2 pi) + 1/2 ln det S1, CE = H1 + KL
  D_B = 1/8 dmu' Sb^-1 dmu + 1/2 ln det Sb - 1/4 ln det S1 - 1/4 ln det S2,
        Sb = (S1 + S2)/2; BC = exp(-D_B); Hellinger = sqrt(1 - BC)
  W2  = sqrt(|dmu|^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2)
Every row is recomputed at CHECK_DPS = 150 digits and must agree to 60
significant digits (values that are 0 in exact arithmetic, for bitwise identical
sides, must be below 1e-40 and are written as exact zeros).

Rows: d = 1-8 in every family, some of d = 16 and 32 (LARGE), then 16 rows of
d = 64 (D64: per precision two random, three near, one each of identical,
mean_only and ill). The d = 64 rows are a stage of their own, after all the
others, drawn from their own generator (seed + 2000, as bc_large's is seed +
1000), so adding them left every earlier line of the file byte for byte as it
was. Their truth is the same mpmath computation (110 digits, checked at 150 to
60 digits); a d = 64 pair takes about 45 s of it (two eigendecompositions per
precision in pure-Python mpmath), which is most of the run time.

Run (needs mpmath and numpy; about 3 minutes, then about 12 for d = 64, on
one core; mpmath 1.4.1 and numpy 2.4.6 made the committed file):
    python3 scripts/mvn_truth.py [--seed 15] [--out gaussdiv/tests/data/mvn_truth.csv]
"""
import argparse
import math
import sys
import time

import mpmath as mp
import numpy as np

DPS = 110
CHECK_DPS = 150
AGREE = 60
PARAMS = ("cov", "tril", "prec")
MEASURES = ("cross_entropy", "kl", "entropy", "entropy_q", "reverse_kl", "jeffreys",
            "bhattacharyya", "bhattacharyya_coefficient", "hellinger", "wasserstein2")
NP = {32: np.float32, 64: np.float64}
UINT = {32: np.uint32, 64: np.uint64}


# ---- inputs -----------------------------------------------------------------

def rnd(x, prec):
    """float64 array rounded to the format (float64 -> float32 rounds once)."""
    return np.asarray(x, dtype=np.float64).astype(NP[prec])


def hexes(a, prec):
    w = 8 if prec == 32 else 16
    return ";".join(format(int(b), f"0{w}x") for b in np.asarray(a, NP[prec]).view(UINT[prec]).ravel())


def lower(m):
    d = m.shape[0]
    return np.array([m[i, j] for i in range(d) for j in range(i + 1)], dtype=m.dtype)


def orthogonal(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def spd(rng, d, cond=None, scale=1.0):
    """A symmetric positive definite matrix (float64) of condition about `cond`."""
    if cond is None:
        g = rng.standard_normal((d, d))
        a = g @ g.T / d + rng.uniform(0.05, 1.0) * np.eye(d)
    else:
        e = np.logspace(0, -math.log10(cond), d) if d > 1 else np.ones(1)
        rng.shuffle(e)
        q = orthogonal(rng, d)
        a = (q * e) @ q.T
    a = (a + a.T) / 2
    return a * scale


def side_from_cov(a, param, prec):
    """The input matrix (format `prec`, full d x d) for covariance `a` (float64)."""
    if param == "cov":
        m = rnd(a, prec)
        return np.triu(m.T) + np.tril(m, -1)  # exactly symmetric (lower triangle mirrored)
    if param == "tril":
        return np.tril(rnd(np.linalg.cholesky(a), prec))
    p = np.linalg.inv(a)
    p = (p + p.T) / 2
    m = rnd(p, prec)
    return np.tril(m) + np.tril(m, -1).T


def perturb(m, param, prec, rng, eps=None, ulps=None):
    """The same input representation with entries perturbed relatively by
    about `eps`, or by a few ulps (`ulps` entries), kept symmetric/triangular."""
    d = m.shape[0]
    out = m.copy()
    idx = [(i, j) for i in range(d) for j in range(i + 1) if m[i, j] != 0]
    if ulps is not None:
        ui = UINT[prec]
        for k in rng.choice(len(idx), size=min(ulps, len(idx)), replace=False):
            i, j = idx[k]
            v = np.array([out[i, j]], NP[prec])
            step = int(rng.choice([-3, -2, -1, 1, 2, 3]))
            b = v.view(ui)
            b[0] = ui(int(b[0]) + step)  # magnitude up or down by |step| ulps
            out[i, j] = v[0]
    else:
        r = rng.uniform(-1, 1, size=(d, d))
        out = rnd(m.astype(np.float64) * (1 + eps * r), prec)
    low = np.tril(out)
    if param == "tril":
        return low
    return low + np.tril(low, -1).T


# ---- truth ------------------------------------------------------------------

def mpmat(m):
    d = m.shape[0]
    a = mp.matrix(d, d)
    for i in range(d):
        for j in range(d):
            a[i, j] = mp.mpf(float(m[i, j]))
    return a


def cov_of(m, param):
    """(Sigma, lower Cholesky factor of Sigma, ln det Sigma) in mpmath."""
    a = mpmat(m)
    d = a.rows
    if param == "tril":
        for i in range(d):
            if not a[i, i] > 0:
                raise ValueError("non-positive diagonal")
        s = mm(a, a, bt=True)
        ld = 2 * mp.fsum(mp.log(a[i, i]) for i in range(d))
        return s, a, ld
    if param == "prec":
        cp = mp.cholesky(a)
        s = mp.inverse(a)
        for i in range(d):
            for j in range(i):
                s[i, j] = s[j, i] = (s[i, j] + s[j, i]) / 2
        ld = -2 * mp.fsum(mp.log(cp[i, i]) for i in range(d))
        return s, mp.cholesky(s), ld
    c = mp.cholesky(a)
    return a, c, 2 * mp.fsum(mp.log(c[i, i]) for i in range(d))


def spd_check(s):
    e = mp.eigsy(s, eigvals_only=True)
    e = [e[i] for i in range(s.rows)]
    lo = min(e)
    if not lo > 0:
        raise ValueError("not positive definite")
    return e


def mm(a, b, bt=False):
    """a·b (a·bᵀ with bt) as an mp.matrix, also for 1 x 1 (where mpmath returns a scalar)."""
    n, k = a.rows, a.cols
    m = b.rows if bt else b.cols
    c = mp.matrix(n, m)
    for i in range(n):
        for j in range(m):
            c[i, j] = mp.fsum(a[i, t] * (b[j, t] if bt else b[t, j]) for t in range(k))
    return c


def quad(x, a):
    n = a.rows
    return mp.fsum(x[i] * a[i, j] * x[j] for i in range(n) for j in range(n))


def truth(mu1, m1, p1, mu2, m2, p2):
    d = len(mu1)
    s1, l1, ld1 = cov_of(m1, p1)
    s2, l2, ld2 = cov_of(m2, p2)
    e1, v1 = mp.eigsy(s1)
    e1 = [e1[i] for i in range(d)]
    e2 = spd_check(s2)
    if not min(e1) > 0:
        raise ValueError("not positive definite")
    dmu = mp.matrix([mp.mpf(float(a)) - mp.mpf(float(b)) for a, b in zip(mu1, mu2)])
    i2 = mp.inverse(s2)
    i1 = mp.inverse(s1)
    tr21 = mp.fsum(i2[i, j] * s1[j, i] for i in range(d) for j in range(d))
    tr12 = mp.fsum(i1[i, j] * s2[j, i] for i in range(d) for j in range(d))
    q2 = quad(dmu, i2)
    q1 = quad(dmu, i1)
    kl = (tr21 - d + ld2 - ld1 + q2) / 2
    rkl = (tr12 - d + ld1 - ld2 + q1) / 2
    h0 = (1 + mp.log(2 * mp.pi)) / 2
    h1 = d * h0 + ld1 / 2
    h2 = d * h0 + ld2 / 2
    sb = mp.matrix(d, d)
    for i in range(d):
        for j in range(d):
            sb[i, j] = (s1[i, j] + s2[i, j]) / 2
    cb = mp.cholesky(sb)
    ldb = 2 * mp.fsum(mp.log(cb[i, i]) for i in range(d))
    ib = mp.inverse(sb)
    qb = quad(dmu, ib)
    db = qb / 8 + ldb / 2 - ld1 / 4 - ld2 / 4
    bc = mp.exp(-db)
    hel = mp.sqrt(-mp.expm1(-db))
    # W2: tr (S1^1/2 S2 S1^1/2)^1/2 from two symmetric eigenproblems.
    r = mp.matrix(d, d)
    for i in range(d):
        for j in range(d):
            r[i, j] = mp.fsum(v1[i, t] * mp.sqrt(e1[t]) * v1[j, t] for t in range(d))
    c = mm(mm(r, s2), r)
    for i in range(d):
        for j in range(i):
            c[i, j] = c[j, i] = (c[i, j] + c[j, i]) / 2
    ec = mp.eigsy(c, eigvals_only=True)
    ec = [ec[i] for i in range(d)]
    trs = mp.fsum(mp.sqrt(max(x, 0)) for x in ec)
    w2sq = mp.fsum(x * x for x in dmu) + mp.fsum(s1[i, i] + s2[i, i] for i in range(d)) - 2 * trs
    w2 = mp.sqrt(max(w2sq, 0))
    vals = dict(cross_entropy=h1 + kl, kl=kl, entropy=h1, entropy_q=h2, reverse_kl=rkl,
                jeffreys=kl + rkl, bhattacharyya=db, bhattacharyya_coefficient=bc,
                hellinger=hel, wasserstein2=w2)
    cond1 = max(e1) / min(e1)
    cond2 = max(e2) / min(e2)
    lnl1 = mp.fsum(abs(mp.log(l1[i, i])) for i in range(d))
    lnl2 = mp.fsum(abs(mp.log(l2[i, i])) for i in range(d))
    return vals, cond1, cond2, lnl1, lnl2


def truth_checked(row):
    mu1, m1, p1, mu2, m2, p2, identical = row
    with mp.workdps(DPS):
        v, c1, c2, n1, n2 = truth(mu1, m1, p1, mu2, m2, p2)
    with mp.workdps(CHECK_DPS):
        w, _, _, _, _ = truth(mu1, m1, p1, mu2, m2, p2)
    zero_measures = ("kl", "reverse_kl", "jeffreys", "bhattacharyya", "hellinger")
    if identical:
        zero_measures += ("wasserstein2",)
    for k in MEASURES:
        a, b = v[k], w[k]
        if identical and k in zero_measures:
            if abs(b) > mp.mpf(10) ** -40:
                raise AssertionError(f"{k}: identical sides but truth {b}")
            v[k] = mp.mpf(0)
            continue
        if identical and k == "bhattacharyya_coefficient":
            v[k] = mp.mpf(1)
            continue
        if k == "bhattacharyya_coefficient" and w["bhattacharyya"] > 10000:
            # e^-D_B < 1e-4342, far below half the smallest subnormal of either
            # format: the right result is 0 (and its digits would need D_B to
            # more places than DPS gives when D_B is huge).
            v[k] = mp.mpf(0)
            continue
        if abs(a - b) > abs(b) * mp.mpf(10) ** -AGREE:
            raise AssertionError(f"{k}: {a} at {DPS} digits vs {b} at {CHECK_DPS}")
    return v, c1, c2, n1, n2


# ---- families ---------------------------------------------------------------

def dims(k):
    return 1 + k % 8


def pick_params(rng, same=False):
    p1 = PARAMS[rng.integers(3)]
    p2 = p1 if same else PARAMS[rng.integers(3)]
    return p1, p2


def mean(rng, d, scale=1.0):
    return rng.standard_normal(d) * scale


def fam_random(rng, prec, d):
    p1, p2 = pick_params(rng)
    s = 10 ** rng.uniform(-2, 2)
    a1, a2 = spd(rng, d, scale=s), spd(rng, d, scale=s * 10 ** rng.uniform(-1, 1))
    return mean(rng, d, math.sqrt(s)), side_from_cov(a1, p1, prec), p1, \
        mean(rng, d, math.sqrt(s)), side_from_cov(a2, p2, prec), p2


def fam_near(rng, prec, d, k):
    """Nearly equal sides. Same parameterisation: the second side's inputs are
    the first side's perturbed (relatively by eps, or by single ulps); mixed
    parameterisations: both from covariances within eps of each other (the
    rounding of the inputs sets a floor on KL there)."""
    mixed = k % 5 == 4
    p1, p2 = pick_params(rng, same=not mixed)
    s = 10 ** rng.uniform(-3, 3)
    a = spd(rng, d, cond=10 ** rng.uniform(0, 2) if rng.random() < 0.5 else None, scale=s)
    lo = 7.5 if prec == 32 else 15.5
    eps = 10 ** -rng.uniform(1, lo)
    mu1 = mean(rng, d, math.sqrt(s))
    dm = rng.standard_normal(d) * math.sqrt(s) * eps * rng.choice([0.0, 1.0])
    mu2 = rnd(mu1, prec).astype(np.float64) + dm
    if mixed:
        r = rng.uniform(-1, 1, size=(d, d))
        a2 = a * (1 + eps * (r + r.T) / 2)
        return mu1, side_from_cov(a, p1, prec), p1, mu2, side_from_cov(a2, p2, prec), p2
    m1 = side_from_cov(a, p1, prec)
    if k % 5 == 3:
        m2 = perturb(m1, p1, prec, rng, ulps=int(rng.integers(1, 4)))
        mu2 = rnd(mu1, prec)
    else:
        m2 = perturb(m1, p1, prec, rng, eps=eps)
    return mu1, m1, p1, mu2, m2, p2


def fam_identical(rng, prec, d):
    p1, _ = pick_params(rng)
    a = spd(rng, d, cond=10 ** rng.uniform(0, 3), scale=10 ** rng.uniform(-3, 3))
    m = side_from_cov(a, p1, prec)
    mu = rnd(mean(rng, d), prec)
    return mu, m, p1, mu.copy(), m.copy(), p1


def fam_mean_only(rng, prec, d):
    p1, _ = pick_params(rng)
    s = 10 ** rng.uniform(-3, 3)
    a = spd(rng, d, scale=s)
    m = side_from_cov(a, p1, prec)
    mu1 = rnd(mean(rng, d, math.sqrt(s)), prec)
    kind = rng.integers(3)
    if kind == 0:  # a few ulps in one coordinate
        mu2 = mu1.copy()
        i = int(rng.integers(d))
        mu2[i] = np.nextafter(mu2[i], NP[prec](np.inf))
    else:
        mu2 = mu1.astype(np.float64) + rng.standard_normal(d) * math.sqrt(s) * 10 ** rng.uniform(-6, 2)
    return mu1, m, p1, mu2, m.copy(), p1


def fam_extreme(rng, prec, d):
    p1, p2 = pick_params(rng)
    top = 30 if prec == 32 else 150
    e = rng.uniform(-top, top)
    s1 = 10.0 ** e
    s2 = s1 * 10 ** rng.uniform(-3, 3)
    a1 = spd(rng, d, cond=10 ** rng.uniform(0, 2), scale=s1)
    if rng.random() < 0.5:
        r = rng.uniform(-1, 1, size=(d, d))
        a2 = a1 * (1 + 1e-2 * (r + r.T) / 2)
    else:
        a2 = spd(rng, d, cond=10 ** rng.uniform(0, 2), scale=s2)
    mu1 = mean(rng, d, math.sqrt(s1))
    mu2 = mu1 + mean(rng, d, math.sqrt(s1)) * rng.choice([0.0, 1e-3, 1.0])
    return mu1, side_from_cov(a1, p1, prec), p1, mu2, side_from_cov(a2, p2, prec), p2


def fam_far(rng, prec, d):
    p1, p2 = pick_params(rng)
    s = 10 ** rng.uniform(-3, 3)
    a1, a2 = spd(rng, d, scale=s), spd(rng, d, scale=s)
    top = 15 if prec == 32 else 120
    mu1 = mean(rng, d, math.sqrt(s))
    mu2 = mu1 + mean(rng, d, math.sqrt(s) * 10 ** rng.uniform(2, top))
    if rng.random() < 0.3:  # far in scale too
        a2 = a2 * 10 ** rng.uniform(3, 8 if prec == 32 else 40)
    return mu1, side_from_cov(a1, p1, prec), p1, mu2, side_from_cov(a2, p2, prec), p2


def fam_ill(rng, prec, d):
    p1, p2 = pick_params(rng)
    top = 4 if prec == 32 else 8
    c = 10 ** rng.uniform(top - 2, top)
    s = 10 ** rng.uniform(-2, 2)
    a1 = spd(rng, d, cond=c, scale=s)
    kind = rng.integers(3)
    if kind == 0:
        a2 = spd(rng, d, cond=10 ** rng.uniform(0, top), scale=s)
    else:
        # the same ill-conditioned matrix perturbed (near-equal, ill-conditioned)
        g = rng.standard_normal((d, d))
        eps = 10 ** -rng.uniform(1, 6 if prec == 32 else 14)
        a2 = a1 + eps * (g @ g.T) * (s / c) if kind == 1 else a1 * (1 + eps)
        p2 = p1 if rng.random() < 0.7 else p2
    mu1 = mean(rng, d, math.sqrt(s))
    mu2 = mu1 + mean(rng, d, math.sqrt(s / c)) * rng.choice([0.0, 1.0])
    return mu1, side_from_cov(a1, p1, prec), p1, mu2, side_from_cov(a2, p2, prec), p2


def fam_bc_large(rng, prec, d, k):
    """D_B from 20 to near the end of the coefficient's normal range (87 in
    f32, 708 in f64), by the means (k even) or by a scale ratio (k odd): the
    coefficient's relative error is D_B times that of D_B."""
    targets = (20.0, 40.0, 60.0, 80.0) if prec == 32 else (20.0, 150.0, 400.0, 650.0)
    target = targets[(k // 2) % 4]
    p1, p2 = pick_params(rng)
    a1 = spd(rng, d)
    mu1 = np.zeros(d)
    if k % 2 == 0:
        a2 = spd(rng, d)
        u = rng.standard_normal(d)
        q = u @ np.linalg.solve((a1 + a2) / 2, u) / 8
        mu2 = u * math.sqrt(target / q)
    else:
        # Sigma2 = c Sigma1: D_B = d/2 ln((1 + c)/(2 sqrt c)) = target
        x = 2 * target / d
        c = min((math.exp(x) + math.sqrt(math.exp(2 * x) - 1)) ** 2, 1e30 if prec == 32 else 1e300)
        a2 = a1 * c
        mu2 = np.zeros(d)
    return mu1, side_from_cov(a1, p1, prec), p1, mu2, side_from_cov(a2, p2, prec), p2


COUNTS = dict(random=56, near=96, identical=16, mean_only=32, extreme=48, far=32, ill=48)
LATE = dict(bc_large=16)
LARGE = dict(bc_large=(32, 32, 32, 32), random=(16, 16, 32), near=(16, 16, 32, 16), ill=(16, 32), identical=(16,),
             mean_only=(32,), extreme=(16,), far=(16,))
# d = 64 rows per precision, by the k given to the family (for near, k picks
# the kind of perturbation, fam_near: k % 5 == 3 single ulps of the inputs,
# 4 both sides from covariances within eps with the forms drawn independently,
# else the inputs relatively by eps), drawn last from a generator of their own.
D64 = dict(random=(0, 1), near=(0, 3, 4), identical=(0,), mean_only=(0,), ill=(0,))


def generate(rng, prec, family, k, d):
    if family == "random":
        r = fam_random(rng, prec, d)
    elif family == "near":
        r = fam_near(rng, prec, d, k)
    elif family == "identical":
        r = fam_identical(rng, prec, d)
    elif family == "mean_only":
        r = fam_mean_only(rng, prec, d)
    elif family == "extreme":
        r = fam_extreme(rng, prec, d)
    elif family == "far":
        r = fam_far(rng, prec, d)
    elif family == "bc_large":
        r = fam_bc_large(rng, prec, d, k)
    else:
        r = fam_ill(rng, prec, d)
    mu1, m1, p1, mu2, m2, p2 = r
    mu1, mu2 = rnd(mu1, prec), rnd(mu2, prec)
    m1, m2 = np.asarray(m1, NP[prec]), np.asarray(m2, NP[prec])
    return mu1, m1, p1, mu2, m2, p2


def finite_in(v, prec):
    mx = mp.mpf(float(np.finfo(NP[prec]).max)) / 2
    return all(abs(v[k]) < mx for k in MEASURES if k != "bhattacharyya_coefficient")


def fmt(x):
    if x == 0:
        return "0.0"
    return mp.nstr(x, 30, min_fixed=0, max_fixed=0)


def pair_line(rng, prec, family, k, d):
    """One CSV line: the first valid pair that `rng` gives for (prec, family, k, d)."""
    for attempt in range(50):
        mu1, m1, p1, mu2, m2, p2 = generate(rng, prec, family, k, d)
        if not (np.all(np.isfinite(m1)) and np.all(np.isfinite(m2))
                and np.all(np.isfinite(mu1)) and np.all(np.isfinite(mu2))):
            continue
        identical = (p1 == p2 and np.array_equal(m1, m2) and np.array_equal(mu1, mu2))
        if identical != (family == "identical"):
            continue  # another family's pair came out bitwise identical
        try:
            v, c1, c2, n1, n2 = truth_checked((mu1, m1, p1, mu2, m2, p2, identical))
        except (ValueError, ZeroDivisionError):
            continue  # not positive definite after rounding
        if not finite_in(v, prec):
            continue
        if family == "near" and not v["kl"] > 0:
            continue  # the perturbation vanished in the rounding
        break
    else:
        raise SystemExit(f"{family} {prec} d={d}: no valid pair in 50 attempts")
    cols = [str(prec), family, str(d), p1, p2, hexes(mu1, prec), hexes(lower(m1), prec),
            hexes(mu2, prec), hexes(lower(m2), prec), mp.nstr(c1, 6), mp.nstr(c2, 6),
            mp.nstr(n1, 17), mp.nstr(n2, 17)] + [fmt(v[m]) for m in MEASURES]
    return ",".join(cols)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--out", default="gaussdiv/tests/data/mvn_truth.csv")
    args = ap.parse_args()
    main_rng = np.random.default_rng(args.seed)
    # Families added later draw from their own generator, so that the rows
    # of the others stay as they were.
    late_rng = np.random.default_rng(args.seed + 1000)
    lines = []
    t0 = time.time()
    for prec in (32, 64):
        for family, n in {**COUNTS, **LATE}.items():
            rng = late_rng if family in LATE else main_rng
            plan = [(k, dims(k)) for k in range(n)] + [(n + i, d) for i, d in enumerate(LARGE.get(family, ()))]
            for k, d in plan:
                lines.append(pair_line(rng, prec, family, k, d))
            print(f"f{prec} {family}: done ({time.time() - t0:.0f} s)", file=sys.stderr)
    # d = 64, a stage of its own after every row above, from a generator of
    # its own: the rows above stay byte for byte as they were.
    d64_rng = np.random.default_rng(args.seed + 2000)
    for prec in (32, 64):
        for family, ks in D64.items():
            for k in ks:
                lines.append(pair_line(d64_rng, prec, family, k, 64))
            print(f"f{prec} {family} d=64: done ({time.time() - t0:.0f} s)", file=sys.stderr)
    header = "prec,family,d,param1,param2,mu1,m1,mu2,m2,cond1,cond2,lnl1,lnl2," + ",".join(MEASURES)
    with open(args.out, "w") as f:
        f.write(f"# generated by scripts/mvn_truth.py --seed {args.seed}; "
                f"mpmath {mp.__version__}, {DPS} digits, checked at {CHECK_DPS}\n")
        f.write(header + "\n")
        for line in lines:
            f.write(line + "\n")
    print(f"{len(lines)} rows -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
