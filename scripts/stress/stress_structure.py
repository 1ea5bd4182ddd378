"""Stress the structure entry points of ``rnaernie._core`` through the public Python API.

``run(n_iter, seed)`` feeds random and adversarial inputs (random shapes, NaN/inf, empty, wrong
dtypes, garbage constraint strings, mismatched lengths) to ``decode`` and ``decode_batch``
under every decoder method; every rejection must be a ``ValueError`` (anything else propagates). Meant to
run under an ASan/UBSan build.
"""

from __future__ import annotations

import random
import sys

import numpy as np

from rnaernie.structure import DecodeOptions, decode, decode_batch
from rnaernie.structure.options import METHODS

_DTYPES = [
    np.float32,
    np.float64,
    np.float16,
    np.int32,
    np.int64,
    np.bool_,
    np.complex64,
    np.uint8,
    object,
]


def _matrix(rng: random.Random, nrng: np.random.Generator, n: int) -> object:
    shape_kind = rng.random()
    if shape_kind < 0.7:
        shape: tuple[int, ...] = (n, n)
    elif shape_kind < 0.8:
        shape = (n, max(0, n + rng.choice([-1, 1])))
    elif shape_kind < 0.9:
        shape = rng.choice([(n,), (n, n, 1), (), (1, n, n)])
    else:
        m = rng.randint(0, 8)
        shape = (m, m)
    dtype = rng.choice(_DTYPES) if rng.random() < 0.2 else np.float32
    a = nrng.standard_normal(shape) * rng.choice([1.0, 10.0, 1e30])
    if a.size and rng.random() < 0.2:
        a.flat[rng.randrange(a.size)] = rng.choice([np.nan, np.inf, -np.inf])
    if rng.random() < 0.1 and a.ndim == 2:
        a = np.asfortranarray(a)[:, ::-1] if a.shape[1] else a
    try:
        with np.errstate(all="ignore"):
            return a.astype(dtype)
    except (TypeError, ValueError):
        return a


def _constraint(rng: random.Random, n: int) -> str | None:
    r = rng.random()
    if r < 0.4:
        return None
    m = n if r < 0.85 else max(0, n + rng.randint(-2, 2))
    alphabet = ".......x|<>()" if rng.random() < 0.8 else ".x|<>()[]?é\x00 "
    return "".join(rng.choice(alphabet) for _ in range(m))


def _seq(rng: random.Random, n: int) -> str:
    alphabet = "ACGU" if rng.random() < 0.8 else "ACGUNacgtu-X"
    if rng.random() < 0.05:
        n = max(0, n + rng.choice([-1, 1]))
    return "".join(rng.choice(alphabet) for _ in range(n))


def _kwargs(rng: random.Random, greedy: bool) -> dict:
    kw: dict = {"method": rng.choice(["greedy", "threshknot"] if greedy else METHODS)}
    if rng.random() < 0.3:
        kw["min_loop"] = rng.choice([0, 1, 3, 5, -1, 2**31, 2.5])
    if rng.random() < 0.3:
        kw["threshold"] = rng.choice([0.0, 0.5, -1.0, float("nan"), float("inf"), 1e300])
    if rng.random() < 0.2:
        kw["canonical_only"] = rng.random() < 0.5
    if rng.random() < 0.2:
        kw["gamma"] = rng.choice([1.0, 0.5, 0.0, -1.0, float("nan"), 1e300])
    if not greedy and rng.random() < 0.3:
        kw["no_lonely_pairs"] = True
    return kw


def _call(fn, *args, options: dict | None = None, **kw) -> None:
    try:  # bad options are rejected by DecodeOptions, which is part of the call
        fn(*args, DecodeOptions(**(options or {})), **kw)
    except ValueError:
        pass


def run(n_iter: int, seed: int) -> None:
    """Run ``n_iter`` random rounds over every structure entry point; raise on any non-ValueError."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    for _ in range(n_iter):
        n = rng.choice([0, 1, 2, 3, 5, 8, 13, 40, 100])
        seq, mat = _seq(rng, n), _matrix(rng, nrng, n)
        _call(decode, seq, mat, constraint=_constraint(rng, n), options=_kwargs(rng, False))
        _call(decode, seq, mat, options=_kwargs(rng, True))
        b = rng.randint(0, 4)
        lens = [rng.choice([0, 1, 4, 9, 30]) for _ in range(b)]
        seqs = [_seq(rng, m) for m in lens]
        mats = [_matrix(rng, nrng, m) for m in lens]
        if rng.random() < 0.1 and mats:
            mats.pop()
        cons = [_constraint(rng, m) for m in lens] if rng.random() < 0.5 else None
        threads = rng.choice([None, 1, 2])
        _call(decode_batch, seqs, mats, options=_kwargs(rng, False), constraints=cons,
              num_threads=threads)  # fmt: skip
        _call(decode_batch, seqs, mats, options={"method": "greedy"}, num_threads=2)


if __name__ == "__main__":
    run(
        int(sys.argv[1]) if len(sys.argv) > 1 else 500, int(sys.argv[2]) if len(sys.argv) > 2 else 0
    )
