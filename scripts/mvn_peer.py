#!/usr/bin/env python3
"""Peer comparison for full-covariance KL (issue 15): PyTorch's arrangement of
`_kl_multivariatenormal_multivariatenormal`,

    sum log diag L2 - sum log diag L1 + 1/2 (|L2^-1 L1|_F^2 + |L2^-1 dmu|^2 - d),

emulated in float32 NumPy (LAPACK spotrf for the Cholesky factors, sgesv for
the solves; a precision matrix is inverted in float32 first, a scale_tril used
as given), on the f32 pairs of gaussdiv/tests/data/mvn_truth.csv, against the
mpmath truth. Prints the worst relative error per decade of the true KL for the
near-equal family (and the whole file's worst per family). gaussdiv's own
figures on the same rows are printed by `cargo test --release -p gaussdiv
--test mvn -- --nocapture peer`.

Run: python3 scripts/mvn_peer.py   (needs numpy)
"""
import collections
import math
import sys

import numpy as np

PATH = "gaussdiv/tests/data/mvn_truth.csv"


def hexes(s):
    return np.array([np.frombuffer(bytes.fromhex(h), ">f4")[0] for h in s.split(";")], np.float32)


def full(v, d, tril):
    m = np.zeros((d, d), np.float32)
    k = 0
    for i in range(d):
        for j in range(i + 1):
            m[i, j] = v[k]
            if not tril:
                m[j, i] = v[k]
            k += 1
    return m


def factor(m, param):
    if param == "tril":
        return m
    if param == "prec":
        m = np.linalg.inv(m).astype(np.float32)
        m = ((m + m.T) / np.float32(2)).astype(np.float32)
    return np.linalg.cholesky(m)


def torch_kl(mu1, m1, p1, mu2, m2, p2):
    d = len(mu1)
    l1, l2 = factor(m1, p1), factor(m2, p2)
    t = np.linalg.solve(l2, l1)
    z = np.linalg.solve(l2, (mu1 - mu2).astype(np.float32))
    half = np.float32(0.5)
    ld = np.sum(np.log(np.diag(l2))) - np.sum(np.log(np.diag(l1)))
    return float(ld + half * (np.sum(t * t) + np.sum(z * z) - np.float32(d)))


def main():
    lines = [l for l in open(PATH) if not l.startswith("#")]
    header = lines[0].strip().split(",")
    kl_col = header.index("kl")
    bands = collections.defaultdict(lambda: [0, 0.0])
    families = collections.defaultdict(float)
    for line in lines[1:]:
        c = line.strip().split(",")
        if c[0] != "32":
            continue
        d = int(c[2])
        p1, p2 = c[3], c[4]
        mu1, mu2 = hexes(c[5]), hexes(c[7])
        m1, m2 = full(hexes(c[6]), d, p1 == "tril"), full(hexes(c[8]), d, p2 == "tril")
        truth = float(c[kl_col])
        with np.errstate(all="ignore"):
            try:
                got = torch_kl(mu1, m1, p1, mu2, m2, p2)
            except np.linalg.LinAlgError:
                got = float("nan")
        if truth == 0:
            err = 0.0 if got == 0 else float("inf")
        else:
            err = abs(got - truth) / truth if math.isfinite(got) else float("inf")
        families[c[1]] = max(families[c[1]], err)
        if c[1] == "near":
            b = bands[math.floor(math.log10(truth))]
            b[0] += 1
            b[1] = max(b[1], err)
    print("near-equal f32 pairs: PyTorch's arrangement in float32 NumPy, worst relative KL error")
    print("  KL decade  pairs  worst error")
    for k in sorted(bands, reverse=True):
        n, e = bands[k]
        print(f"  1e{k:<7} {n:>6}  {e:.2e}")
    print("worst relative KL error per family (f32 rows):")
    for f, e in sorted(families.items()):
        print(f"  {f:<10} {e:.2e}")


if __name__ == "__main__":
    sys.exit(main())
