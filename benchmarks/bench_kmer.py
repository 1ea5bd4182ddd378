"""k-mer spectra and the cost of the k-mer expert in ``classify``.

* ``kmer_spectra`` (C++, all cores / 1 thread) against a numpy implementation (per-sequence rolling
  codes + ``bincount``), k = 1…5, on N random
  ACGU sequences of 50–300 nt (seeded). Both give the same float32 matrix (asserted outside timing).
* ``RnaErnie.classify`` of the shipped model on the first ``RNAERNIE_BENCH_NRC`` (default 600) nRC test
  records, on the CPU, with its k-mer expert (the default) and without (``kmer=False``), and the
  k-mer expert's ``predict_proba`` alone on the same records: its share of the hybrid's time (the
  two classify cases differ by less than their round-to-round noise).

Run: scripts/run_benchmarks.sh kmer      # -> benchmarks/results/kmer.json
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import DATA, random_rna, record

from rnaernie.kmer import kmer_spectra

SIZES = [10_000, 100_000]
ROUNDS = 5
N_NRC = int(os.environ.get("RNAERNIE_BENCH_NRC", "600"))
NRC = DATA / "nrc" / "test.fasta"


def spectra_numpy(seqs: list[str], kmax: int = 5) -> np.ndarray:
    """Per sequence: ACGU codes through a lookup table, rolling k-mer codes, bincount (no validation)."""
    lut = np.full(256, -1, np.int64)
    for c, v in zip("ACGUT", (0, 1, 2, 3, 3)):
        lut[ord(c)] = lut[ord(c.lower())] = v
    out = np.zeros((len(seqs), sum(4**k for k in range(1, kmax + 1))), np.float32)
    for i, s in enumerate(seqs):
        codes = lut[np.frombuffer(s.encode("ascii"), np.uint8)]
        col = 0
        for k in range(1, kmax + 1):
            n = len(codes) - k + 1
            if n > 0:
                idx = np.zeros(n, np.int64)
                bad = np.zeros(n, bool)
                for j in range(k):
                    c = codes[j : j + n]
                    idx = idx * 4 + c
                    bad |= c < 0
                out[i, col : col + 4**k] = np.bincount(idx[~bad], minlength=4**k) / n
            col += 4**k
    return out


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"n{n}")
def seqs(request) -> list[str]:
    return random_rna(request.param, 50, 300, seed=request.param)


@pytest.mark.parametrize("threads", [0, 1], ids=["all-cores", "1-thread"])
def test_kmer_spectra_rnaernie(benchmark, seqs, threads):
    key = f"kmer-n{len(seqs)}"
    benchmark.group = key
    x = benchmark.pedantic(
        kmer_spectra, args=(seqs,), kwargs={"threads": threads}, rounds=ROUNDS, warmup_rounds=1
    )
    assert x.shape == (len(seqs), 1364)
    impl = "rnaernie" if threads == 0 else "rnaernie-1thread"
    record(benchmark, key, impl, n_bytes=sum(map(len, seqs)), n_seqs=len(seqs))


def test_kmer_spectra_numpy_baseline(benchmark, seqs):
    sub = seqs[:10_000]  # the numpy loop is per sequence: compared per MB on a subset
    np.testing.assert_array_equal(spectra_numpy(sub[:500]), kmer_spectra(sub[:500]))
    key = f"kmer-n{len(seqs)}"
    benchmark.group = key
    benchmark.extra_info["subset_seqs"] = len(sub)
    benchmark.pedantic(spectra_numpy, args=(sub,), rounds=3, warmup_rounds=0)
    record(benchmark, key, "numpy", n_bytes=sum(map(len, sub)), n_seqs=len(sub))


@pytest.fixture(scope="module")
def nrc_seqs() -> list[str]:
    if not NRC.exists():
        pytest.skip(f"nRC test set not found at {NRC}")
    from rnaernie.io import read_fasta

    return [r.seq for r in read_fasta(NRC)][:N_NRC]


@pytest.fixture(scope="module")
def shipped():
    import rnaernie

    m = rnaernie.load("rnaernie-tiny", dtype="float32")
    m.classify(["ACGUACGU"])  # loads the heads outside timing
    return m


@pytest.mark.parametrize("kmer", [True, False], ids=["hybrid", "model-alone"])
def test_classify_shipped(benchmark, shipped, nrc_seqs, kmer):
    benchmark.group = "classify-nrc"
    out = benchmark.pedantic(
        shipped.classify, args=(nrc_seqs,), kwargs={"kmer": kmer, "with_type": False}, rounds=5
    )
    assert len(out) == len(nrc_seqs)
    impl = "model+kmer" if kmer else "model"
    record(benchmark, "classify-nrc", impl, n_bytes=sum(map(len, nrc_seqs)), n_seqs=len(nrc_seqs))


def test_kmer_expert_alone(benchmark, shipped, nrc_seqs):
    """The k-mer side of the hybrid by itself (spectra + logistic regression): its cost share."""
    expert = shipped._kmer_head("nrc")
    benchmark.group = "classify-nrc"
    p = benchmark.pedantic(expert.predict_proba, args=(nrc_seqs,), rounds=20, warmup_rounds=1)
    assert p.shape == (len(nrc_seqs), 13)
    record(
        benchmark,
        "classify-nrc",
        "kmer-expert",
        n_bytes=sum(map(len, nrc_seqs)),
        n_seqs=len(nrc_seqs),
    )
