"""Shared fixtures: the golden files and whether a GPU must be there."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

import gaussdiv

DATA = Path(__file__).resolve().parents[2] / "gaussdiv" / "tests" / "data"


def require_gpu() -> bool:
    return os.environ.get("GAUSSDIV_REQUIRE_GPU") == "1"


def has_gpu() -> bool:
    return gaussdiv.info()["chosen"] is not None


@pytest.fixture(scope="session")
def gpu() -> bool:
    """Whether GPU tests run: skip without an adapter unless GAUSSDIV_REQUIRE_GPU=1."""
    if has_gpu():
        return True
    if require_gpu():
        pytest.fail("GAUSSDIV_REQUIRE_GPU=1 but no GPU adapter: " + str(gaussdiv.info()["reason"]))
    pytest.skip("no GPU adapter")
    return False


def read_golden(name: str) -> Dict[str, np.ndarray]:
    """A golden CSV as float64 columns (the inputs are exact f32 values, so
    ``astype(np.float32)`` recovers them bit for bit), ``family`` as text."""
    path = DATA / name
    with open(path) as f:
        header = f.readline().strip().split(",")
    raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=str)
    cols: Dict[str, np.ndarray] = {}
    for i, h in enumerate(header):
        cols[h] = raw[:, i] if h in ("family", "bits") else raw[:, i].astype(np.float64)
    if "s1" in cols:  # golden_public.csv
        cols["a1"], cols["a2"] = cols["s1"], cols["s2"]
        cols["cross_entropy"], cols["entropy"] = cols["ce"], cols["entropy1"]
    for h in ("mu1", "a1", "mu2", "a2"):
        # Shortest f32 spellings (golden_measures_*) read back as the exact f32 value.
        cols[h] = cols[h].astype(np.float32).astype(np.float64)
    return cols


@pytest.fixture(scope="session")
def public() -> Dict[str, np.ndarray]:
    return read_golden("golden_public.csv")
