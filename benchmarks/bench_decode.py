"""Decoder benchmarks by method (one DecodeOptions each): MEA against a vectorised numpy baseline,
and ViennaRNA's partition function (the probabilities MEA reads with ``fold --prior bpp``).

Run: pytest benchmarks/bench_decode.py --benchmark-enable -p no:cacheprovider \
        --benchmark-json=benchmarks/results/decode.json
Cases: "dense" = P = sigmoid(N(0, 1)): every P in (0, 1), row sums near L/2, so every canonical
pair is a candidate (the worst case of the sparse DP); "sparse" = a realistic probability head:
background sigmoid(N(-12, 1)) plus one likely partner per paired base (a random nested structure)
and a shifted alternative: row sums under 1, so few pairs have a positive MEA weight. The baseline is
``nussinov_numpy`` on the MEA pair weights ``2 gamma P_ij - q_i - q_j`` (the same optimum).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import record

from rnaernie.structure import DecodeOptions, decode, nussinov_numpy
from rnaernie.structure.reference import mea_unpaired

SIZES = [100, 500, 1000, 2000]
ROUNDS = {100: 30, 500: 15, 1000: 10, 2000: 3}
MEA = DecodeOptions(method="mea")


def random_nested_pairs(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random nested structure: a balanced bracket walk (opens, closes, dots), (m, 2) pairs."""
    pairs, stack = [], []
    for p in range(n):
        r = rng.random()
        if stack and p - stack[-1] > 4 and (r < 0.3 or n - p <= len(stack)):
            pairs.append((stack.pop(), p))
        elif r < 0.6 and n - p > len(stack) + 1:
            stack.append(p)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def make_probs(n: int, kind: str, seed: int = 0) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(seed + n)
    seq = "".join(rng.choice(list("ACGU"), n))
    if kind == "dense":
        return seq, (1.0 / (1.0 + np.exp(-rng.standard_normal((n, n))))).astype(np.float32)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-12.0, 1.0, (n, n))))
    pairs = random_nested_pairs(rng, n)
    p[pairs[:, 0], pairs[:, 1]] = rng.uniform(0.2, 0.9, len(pairs))
    p[pairs[:, 0], np.minimum(pairs[:, 1] + 1, n - 1)] = 0.05  # a shifted alternative
    return seq, p.astype(np.float32)


def mea_numpy(seq: str, probs: np.ndarray, gamma: float = 1.0) -> float:
    """The MEA objective by nussinov_numpy over the pair weights 2 gamma P - q_i - q_j."""
    q = np.asarray(mea_unpaired(probs))
    w = 2 * gamma * probs.astype(np.float64) - q[:, None] - q[None, :]
    return nussinov_numpy(seq, w, threshold=0.0, min_loop=3).score + float(q.sum())


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("n", SIZES)
def test_mea_cpp(benchmark, n, kind):
    seq, p = make_probs(n, kind)
    benchmark.group = f"mea-{kind}-L{n}"
    benchmark.pedantic(decode, args=(seq, p, MEA), rounds=ROUNDS[n], iterations=1, warmup_rounds=1)
    record(benchmark, f"mea-{kind}-L{n}", "cpp", n_seqs=1)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("n", [100, 500, 1000])
def test_mea_numpy_baseline(benchmark, n, kind):
    seq, p = make_probs(n, kind)
    benchmark.group = f"mea-{kind}-L{n}"
    score = benchmark.pedantic(mea_numpy, args=(seq, p), rounds=1 if n >= 1000 else 3, iterations=1)
    record(benchmark, f"mea-{kind}-L{n}", "numpy", n_seqs=1)
    assert score == pytest.approx(decode(seq, p, MEA).score, rel=1e-9)


@pytest.mark.parametrize("n", SIZES)
def test_nested_logits_cpp(benchmark, n):
    """The nested decoder on N(0, 1) logits, as in bench_structure.py (float64 DP since v0.1)."""
    rng = np.random.default_rng(n)
    seq = "".join(rng.choice(list("ACGU"), n))
    s = rng.standard_normal((n, n)).astype(np.float32)
    benchmark.group = f"nested-dense-L{n}"
    benchmark.pedantic(decode, args=(seq, s), rounds=ROUNDS[n], iterations=1, warmup_rounds=1)
    record(benchmark, f"nested-dense-L{n}", "cpp", n_seqs=1)


@pytest.mark.parametrize("n", SIZES)
def test_threshknot_cpp(benchmark, n):
    """On the sparse case (random dense P give more crossing levels than dot-bracket can write)."""
    seq, p = make_probs(n, "sparse")
    opt = DecodeOptions(method="threshknot", threshold=0.3)
    benchmark.group = f"threshknot-sparse-L{n}"
    benchmark.pedantic(decode, args=(seq, p, opt), rounds=ROUNDS[n], iterations=1, warmup_rounds=1)
    record(benchmark, f"threshknot-sparse-L{n}", "cpp", n_seqs=1)


@pytest.mark.parametrize("n", [100, 500, 1000])
def test_vienna_partition(benchmark, n):
    """ViennaRNA's MFE + partition function + base-pair probabilities of one random sequence (the
    input of ``fold --prior bpp``), beside the MEA decoder that reads them (mea-dense cases)."""
    pytest.importorskip("RNA")
    from rnaernie.structure.prior import vienna_partition

    seq, _ = make_probs(n, "dense")
    benchmark.group = f"mea-dense-L{n}"
    rounds = {100: 10, 500: 3, 1000: 2}[n]
    benchmark.pedantic(vienna_partition, args=([seq],), rounds=rounds, iterations=1)
    record(benchmark, f"vienna-pf-L{n}", "viennarna", n_seqs=1)
