"""End-to-end pipeline throughput: ``rnaernie embed`` against the same work
through multimolecule's ``RnaTokenizer`` + ``RnaErnieModel`` (same config, random weights), in the
same run; and peak memory of ``rnaernie embed`` as the input grows 10×.

Sizes (environment variables, so a quick run stays quick):
  RNAERNIE_BENCH_NRC        number of nRC test records for embed (default 600; all = 2600)
  RNAERNIE_BENCH_PRESET     model size (default "tiny", the shipped size)

Our CLI runs at ``--dtype float32`` and at its default ``--dtype auto`` (bfloat16 on a CPU with
AMX); multimolecule runs in float32 (its default) and cast to bfloat16, so every ratio has a
same-precision baseline.

Run:
  pytest benchmarks/bench_pipeline.py --benchmark-only --benchmark-json benchmarks/results/pipeline.json
Each case records sequences/s and tokens/s in ``extra_info``. Screening is measured against
Infernal by ``scripts/screen_benchmark.py`` (``screen.json``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import DATA

N_NRC = int(os.environ.get("RNAERNIE_BENCH_NRC", "600"))
PRESET = os.environ.get("RNAERNIE_BENCH_PRESET", "tiny")
NRC = DATA / "nrc" / "test.fasta"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from rnaernie.model import RnaErnieConfig, RnaErnieForPreTraining

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("model")
    RnaErnieForPreTraining(RnaErnieConfig.preset(PRESET)).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def mm():
    mmol = pytest.importorskip("multimolecule")
    from rnaernie.model import RnaErnieConfig

    c = RnaErnieConfig.preset(PRESET)
    cfg = mmol.RnaErnieConfig(
        hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads, intermediate_size=c.intermediate_size,
    )  # fmt: skip
    torch.manual_seed(0)
    return mmol.RnaTokenizer(), mmol.RnaErnieModel(cfg).eval()


DTYPES = ("float32", "auto")
MM_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@pytest.fixture(scope="module", params=list(MM_DTYPES))
def mm_dtype(request, mm):
    tok, model = mm
    return tok, model.to(MM_DTYPES[request.param])


@pytest.fixture(scope="module")
def nrc_fasta(tmp_path_factory):
    from rnaernie.io import read_fasta

    if not NRC.is_file():
        pytest.skip(f"{NRC} not found")
    recs = list(read_fasta(NRC))[:N_NRC]
    p = tmp_path_factory.mktemp("nrc") / "nrc.fa"
    p.write_text("".join(f">{r.id}\n{r.seq}\n" for r in recs))
    return p, [r.seq for r in recs]


def _mm_embed(mm, seqs: list[str], batch_size: int = 32) -> np.ndarray:
    """The baseline: multimolecule tokenizer + model, batches of 32 in input order, mean pool."""
    tok, model = mm
    out = []
    with torch.inference_mode():
        for s in range(0, len(seqs), batch_size):
            enc = tok(seqs[s : s + batch_size], padding=True, truncation=True, max_length=512,
                      return_tensors="pt")  # fmt: skip
            h = model(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
            ).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            out.append(((h * m).sum(1) / m.sum(1)).float().numpy())
    return np.concatenate(out)


def _record(benchmark, n_seq: int, n_tokens: int, unit: str, dtype: torch.dtype) -> None:
    t = benchmark.stats.stats.mean
    benchmark.extra_info.update({f"{unit}_per_s": n_seq / t, "tokens_per_s": n_tokens / t,
                                 unit: n_seq, "tokens": n_tokens, "threads": torch.get_num_threads(),
                                 "dtype": str(dtype).removeprefix("torch.")})  # fmt: skip


def _ours_dtype(dtype: str) -> torch.dtype:
    from rnaernie.api import resolve_dtype

    return resolve_dtype(dtype, "cpu")


# ----------------------------------------------------------------------------- embed, nRC


@pytest.mark.parametrize("dtype", DTYPES)
def test_embed_nrc_rnaernie_cli(benchmark, model_dir, nrc_fasta, tmp_path, dtype):
    from rnaernie.cli import main

    path, seqs = nrc_fasta
    out = tmp_path / "e.npy"
    argv = ["embed", str(path), "-o", str(out), "--model", str(model_dir), "-q", "--dtype", dtype]
    benchmark.pedantic(lambda: main(argv), rounds=2, warmup_rounds=1)
    _record(benchmark, len(seqs), sum(len(s) + 2 for s in seqs), "sequences", _ours_dtype(dtype))


def test_embed_nrc_multimolecule(benchmark, mm_dtype, nrc_fasta):
    from rnaernie.io import read_fasta

    path, seqs = nrc_fasta
    benchmark.pedantic(
        lambda: _mm_embed(mm_dtype, [r.seq for r in read_fasta(path)]), rounds=2, warmup_rounds=1
    )
    _record(benchmark, len(seqs), sum(len(s) + 2 for s in seqs), "sequences", mm_dtype[1].dtype)


# ----------------------------------------------------------------------------- memory


def _peak_rss_mb(argv: list[str]) -> float:
    code = (
        "import resource, sys; from rnaernie.cli import main; rc = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True
    )
    return float(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["nrc_records", "random_sequences"])
def test_peak_memory_flat_as_input_grows(benchmark, tmp_path, kind):
    """``rnaernie embed --low-memory`` (the shipped model, otherwise its defaults) on 1,000 and
    10,000 records: nRC test records drawn with replacement, or random sequences with nRC test's lengths (random 20–500 nt
    without the data). Peak RSS of the 10,000-record run must stay within 10 % of the 1,000's."""
    from rnaernie.io import read_fasta

    rng = np.random.default_rng(0)
    pool = [r.seq for r in read_fasta(NRC)] if NRC.is_file() else []
    if not pool:
        pool = ["".join(rng.choice(list("ACGU"), int(n))) for n in rng.integers(20, 500, 2000)]
    sizes = {}
    for n in (1000, 10000):
        p = tmp_path / f"x{n}.fa"
        with open(p, "w") as fh:
            for i, k in enumerate(rng.integers(0, len(pool), n)):
                s = (
                    pool[k]
                    if kind == "nrc_records"
                    else "".join(rng.choice(list("ACGU"), len(pool[k])))
                )
                fh.write(f">r{i}\n{s}\n")
        t0 = time.perf_counter()
        sizes[n] = (_peak_rss_mb(["embed", str(p), "-o", str(tmp_path / f"x{n}.npy"), "-q",
                                  "--low-memory"]),
                    time.perf_counter() - t0)  # fmt: skip
    benchmark.pedantic(lambda: None, rounds=1)
    benchmark.extra_info.update({
        "input": kind, "records_1x": 1000, "peak_rss_mb_1x": sizes[1000][0],
        "peak_rss_mb_10x": sizes[10000][0], "ratio_10x_to_1x": round(sizes[10000][0] / sizes[1000][0], 3),
        "seconds_1x": sizes[1000][1], "seconds_10x": sizes[10000][1],
    })  # fmt: skip
    assert sizes[10000][0] <= sizes[1000][0] * 1.10
