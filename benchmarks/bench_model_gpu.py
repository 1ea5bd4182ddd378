"""GPU embedding throughput: the Triton attention path vs PyTorch SDPA, same model and weights.

Run on a CUDA machine (pytest's ini skips benchmarks by default; ``--benchmark-only`` overrides)::

    RNAERNIE_DATA=../shared/data pytest benchmarks/bench_model_gpu.py --benchmark-only \
        -p no:cacheprovider --benchmark-json=benchmarks/results/model_gpu_raw.json

Workload: every sequence of ``$RNAERNIE_DATA/nrc/test.fasta`` (its real length distribution;
sequences over 510 nt truncated), tokenizer, host-to-device copies and mean pooling included in
every timing (``embed_batches``, length buckets of ``BATCH_TOKENS``). ``tiny`` = the shipped
model; ``base`` = 12 × 768 with random weights. Cases per preset: SDPA in fp32 / fp16 / bf16, the
Triton kernel in fp16 / bf16, and the packed path (``embed_packed``: no padding, the Triton varlen
kernel) in fp16 / bf16. A summary with tokens/s, sequences/s and the Triton / SDPA ratio
per dtype is written to ``$RNAERNIE_BENCH_DIR`` (default ``benchmarks/results``) as
``model_gpu.json``. Numbers from another machine are only comparable within one file.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import pytest
import torch
from conftest import DATA

HAS_CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU"),
    pytest.mark.filterwarnings("ignore"),
]

from rnaernie import io  # noqa: E402
from rnaernie.model import RnaErnieConfig, RnaErnieModel  # noqa: E402
from rnaernie.predict import embed_batches, embed_packed  # noqa: E402

BATCH_TOKENS = 65536
ROUNDS = 5
CASES = [
    ("sdpa", torch.float32),
    ("sdpa", torch.float16),
    ("sdpa", torch.bfloat16),
    ("triton", torch.float16),
    ("triton", torch.bfloat16),
    ("packed", torch.float16),
    ("packed", torch.bfloat16),
]
RESULTS: dict[tuple[str, str, str], dict] = {}
_MODELS: dict[str, RnaErnieModel] = {}


@pytest.fixture(scope="module")
def seqs() -> list[str]:
    """The nRC test sequences, read once for every case."""
    fasta = DATA / "nrc" / "test.fasta"
    if not fasta.exists():
        pytest.skip(f"{fasta} not found (set RNAERNIE_DATA)")
    return [r.seq for r in io.read_fasta(fasta, allow_duplicates=True)]


def _model(preset: str) -> RnaErnieModel:
    if preset not in _MODELS:
        if preset == "tiny":
            from rnaernie.api import resolve_model_dir

            m = RnaErnieModel.from_pretrained(resolve_model_dir("rnaernie-tiny"))
        else:
            torch.manual_seed(0)
            m = RnaErnieModel(
                RnaErnieConfig.preset(preset, hidden_dropout=0.0, attention_dropout=0.0)
            )
        _MODELS[preset] = m.eval()
    return _MODELS[preset]


@pytest.mark.parametrize("preset", ["tiny", "base"])
@pytest.mark.parametrize(("impl", "dtype"), CASES, ids=[f"{i}-{str(d)[6:]}" for i, d in CASES])
def test_embed(benchmark, seqs, preset, impl, dtype):
    model = _model(preset).to("cuda", dtype)
    model.set_attn_implementation("sdpa" if impl == "packed" else impl)
    n_tokens = sum(min(len(s), 510) + 2 for s in seqs)

    def run():
        if impl == "packed":  # no padding: the Triton varlen kernel, linears on real tokens only
            out = embed_packed(model, seqs, batch_tokens=BATCH_TOKENS, truncate=True)
        else:
            out = embed_batches(model, seqs, batch_tokens=BATCH_TOKENS, truncate=True)
        torch.cuda.synchronize()
        return out

    ref = None
    if impl in ("triton", "packed"):  # same numbers as SDPA in the same dtype, before timing
        model.set_attn_implementation("sdpa")
        ref = embed_batches(model, seqs, batch_tokens=BATCH_TOKENS, truncate=True)
        model.set_attn_implementation("sdpa" if impl == "packed" else impl)
    out = run()  # warm-up (kernel compilation, autotuning)
    if ref is not None:
        torch.testing.assert_close(out, ref, atol=3e-2, rtol=3e-2)
    benchmark.group = f"model-gpu-{preset}"
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    med = benchmark.stats.stats.median
    row = dict(
        preset=preset,
        impl=impl,
        dtype=str(dtype)[6:],
        n_seqs=len(seqs),
        n_tokens=n_tokens,
        median_s=med,
        tokens_per_s=n_tokens / med,
        seqs_per_s=len(seqs) / med,
    )
    benchmark.extra_info.update(row)
    RESULTS[(preset, impl, row["dtype"])] = row


def teardown_module(module):
    if not RESULTS:
        return
    rows = []
    for (preset, impl, dt), row in sorted(RESULTS.items()):
        base = RESULTS.get((preset, "sdpa", dt))
        if impl in ("triton", "packed") and base:
            row = {**row, f"{impl}_over_sdpa": row["tokens_per_s"] / base["tokens_per_s"]}
        rows.append(row)
    props = torch.cuda.get_device_properties(0)
    summary = dict(
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=dict(
            gpu=props.name,
            torch=torch.__version__,
            cuda=torch.version.cuda,
            python=platform.python_version(),
        ),
        workload=f"nRC test set ({rows[0]['n_seqs']} sequences), batch_tokens={BATCH_TOKENS}, "
        f"median of {ROUNDS} rounds",
        rows=rows,
    )
    out = Path(os.environ.get("RNAERNIE_BENCH_DIR", "benchmarks/results")) / "model_gpu.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
