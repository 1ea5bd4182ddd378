"""Structure decoder benchmarks: C++ nested DP vs a vectorised numpy Nussinov and ViennaRNA RNA.fold.

Run: pytest benchmarks/bench_structure.py --benchmark-only -p no:cacheprovider \
        --benchmark-json=benchmarks/results/structure.json
Cases: "dense" = i.i.d. N(0, 1) logits (about 19% of all pairs are candidates); "sparse" = a
realistic pair-head output: very negative background with a few positive partners per row.
"""

from __future__ import annotations

import os
import platform

import numpy as np
import pytest

from rnaernie.structure import decode, decode_batch, nussinov_numpy

SIZES = [100, 500, 1000, 2000]
ROUNDS = {100: 20, 500: 10, 1000: 5, 2000: 3}


def make_case(n: int, kind: str, seed: int = 0) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(seed + n)
    seq = "".join(rng.choice(list("ACGU"), n))
    if kind == "dense":
        return seq, rng.standard_normal((n, n)).astype(np.float32)
    s = rng.normal(-6.0, 1.0, (n, n)).astype(np.float32)
    rows = np.repeat(np.arange(n), 4)
    cols = rng.integers(0, n, rows.size)
    s[np.minimum(rows, cols), np.maximum(rows, cols)] = rng.uniform(0.1, 4.0, rows.size)
    return seq, s


@pytest.fixture(autouse=True)
def _describe_machine(benchmark):
    benchmark.extra_info.update(
        machine=platform.machine(), processor=platform.processor(), cpus=os.cpu_count()
    )


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("n", SIZES)
def test_decode_cpp(benchmark, n, kind):
    seq, s = make_case(n, kind)
    benchmark.group = f"decode-{kind}-L{n}"
    benchmark.pedantic(decode, args=(seq, s), rounds=ROUNDS[n], iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("n", [100, 500, 1000])
def test_decode_numpy_baseline(benchmark, n, kind):
    seq, s = make_case(n, kind)
    benchmark.group = f"decode-{kind}-L{n}"
    res = benchmark.pedantic(
        nussinov_numpy, args=(seq, s), rounds=1 if n >= 1000 else 3, iterations=1
    )
    assert res.score == pytest.approx(decode(seq, s).score, rel=1e-5)


@pytest.mark.parametrize("n", [100, 500, 1000])
def test_rnafold_baseline(benchmark, n):
    RNA = pytest.importorskip("RNA")
    seq, _ = make_case(n, "dense")
    benchmark.group = f"decode-dense-L{n}"
    benchmark.pedantic(RNA.fold, args=(seq,), rounds=1 if n >= 1000 else 3, iterations=1)


@pytest.mark.parametrize("mode", ["batch", "loop"])
@pytest.mark.parametrize("n", [500, 1000])
def test_decode_batch8(benchmark, n, mode):
    cases = [make_case(n, "dense", seed=k) for k in range(8)]
    seqs, mats = [c[0] for c in cases], [c[1] for c in cases]
    benchmark.group = f"batch8-dense-L{n}"
    if mode == "batch":
        benchmark.pedantic(decode_batch, args=(seqs, mats), rounds=3, iterations=1)
    else:
        benchmark.pedantic(lambda: [decode(q, m) for q, m in cases], rounds=3, iterations=1)
