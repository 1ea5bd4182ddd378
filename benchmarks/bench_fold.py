"""Whole ``fold`` (tokenizer + encoder + pair head + C++ decoder) against ViennaRNA ``RNA.fold`` on
the same bpRNA TS0 sequences, one thread each, in the same run; per-sequence F1 beside the speed.

Sizes (environment variables):
  RNAERNIE_BENCH_FOLD_N   number of TS0 records (default 300, in file order)

Run:
  pytest benchmarks/bench_fold.py --benchmark-enable -p no:cacheprovider \\
      --benchmark-json=benchmarks/results/fold.json
Cases: ``rnaernie-float32`` (``rnaernie.load`` default), ``rnaernie-bfloat16``, the same two with
the pair head's convolutions run as ``conv2d`` (``pair_conv_reference``, ``F.conv2d``: what the
factored ``pair_conv`` / ``pair_conv_out`` replace), and ``rnafold``. The ratios
``speedup_vs_rnafold`` are per sequence. ``cli_default_dtype`` is what ``rnaernie fold``
(``--dtype auto``) runs on this CPU: bfloat16 where it multiplies bf16 natively.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import DATA, record

from rnaernie.structure import f1, read_dbn

N = int(os.environ.get("RNAERNIE_BENCH_FOLD_N", "300"))
TS0 = DATA / "bprna_ts0_vl0_tr0" / "TS0.dbn"


@pytest.fixture(scope="module")
def ts0():
    if not TS0.is_file():
        pytest.skip(f"{TS0} not found")
    return read_dbn(TS0)[:N]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _score(benchmark, recs, pairs) -> None:
    benchmark.extra_info["f1"] = float(np.mean([f1(p, r.pairs) for p, r in zip(pairs, recs)]))
    benchmark.extra_info["mean_length"] = float(np.mean([len(r.sequence) for r in recs]))


@pytest.mark.parametrize("convs", ["factored", "conv2d"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fold_rnaernie(benchmark, ts0, dtype, convs, monkeypatch):
    import torch.nn.functional as F

    from rnaernie.api import load, resolve_dtype
    from rnaernie.model import heads

    if convs == "conv2d":
        monkeypatch.setattr(heads, "pair_conv", heads.pair_conv_reference)
        monkeypatch.setattr(
            heads, "pair_conv_out", lambda z, w, b: F.conv2d(z, w, b, padding=w.shape[-1] // 2)
        )
    m = load("rnaernie-tiny", dtype=dtype, threads=1)
    seqs = [r.sequence for r in ts0]
    m.fold(seqs[:8])  # warm-up: weights, kernels
    benchmark.group = f"fold-ts0-{len(seqs)}"
    res = benchmark.pedantic(m.fold, args=(seqs,), rounds=2, iterations=1)
    impl = f"rnaernie-{dtype}" + ("-conv2d" if convs == "conv2d" else "")
    record(benchmark, f"fold-ts0-{len(seqs)}", impl, n_seqs=len(seqs))
    benchmark.extra_info["cli_default_dtype"] = str(resolve_dtype("auto")).removeprefix("torch.")
    _score(benchmark, ts0, [r.pairs for r in res])


def test_fold_rnafold(benchmark, ts0):
    RNA = pytest.importorskip("RNA")
    from rnaernie.structure import dot_bracket_to_pairs

    seqs = [r.sequence.upper().replace("T", "U") for r in ts0]
    benchmark.group = f"fold-ts0-{len(seqs)}"
    res = benchmark.pedantic(lambda: [RNA.fold(s)[0] for s in seqs], rounds=2, iterations=1)
    record(benchmark, f"fold-ts0-{len(seqs)}", "rnafold", n_seqs=len(seqs))
    _score(benchmark, ts0, [dot_bracket_to_pairs(db) for db in res])
