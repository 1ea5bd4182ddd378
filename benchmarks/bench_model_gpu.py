"""GPU embedding throughput: the Triton attention path vs PyTorch SDPA, same model and weights.

Run on a CUDA machine (pytest's ini skips benchmarks by default; ``--benchmark-only`` overrides)::

    RNAERNIE_DATA=../shared/data pytest benchmarks/bench_model_gpu.py --benchmark-only \
        -p no:cacheprovider --benchmark-json=benchmarks/results/model_gpu_raw.json

Workload: every sequence of ``$RNAERNIE_DATA/nrc/test.fasta`` (its real length distribution;
sequences over 510 nt truncated), tokenizer, host-to-device copies and mean pooling included in
every timing (``embed_batches``, length buckets of ``BATCH_TOKENS``). ``tiny`` = the shipped
model; ``base`` = 12 × 768 with random weights. Cases per preset: SDPA in fp32 / fp16 / bf16, the
Triton kernel in fp16 / bf16, and the packed path (``embed_packed``: no padding, the Triton varlen
kernel) in fp16 / bf16; and, where ``multimolecule`` is installed (the GPU machine has no
package index: ``scripts/gpu_wheels.sh`` fetches its wheels to carry), multimolecule's
``RnaErnieModel`` at its best (SDPA, no pooler, sequences sorted by length, batches of the same
token budget, its tokenizer, mean pooling on the GPU) in bf16 / fp16, same config. A summary with
tokens/s, sequences/s, the Triton / SDPA and rnaernie / multimolecule ratios per dtype and the
model FLOP utilisation against the GPU's dense bf16 peak (forward FLOPs: 24·H² per token and
layer for the linear layers, 4·T·H per token and layer for attention) is written to
``$RNAERNIE_BENCH_DIR`` (default ``benchmarks/results``) as ``model_gpu.json``. Numbers from
another machine are only comparable within one file. Run pytest with ``python -P`` (or the
``pytest`` script) from the repository root: with the root on ``sys.path`` the source folder
``kernels/`` shadows the ``kernels`` package that transformers imports.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
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
from rnaernie.predict import embed_batches, embed_packed, length_buckets  # noqa: E402

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
SEQS: list[str] = []  # the workload, for the FLOP count of the summary
# dense bf16 tensor-core peaks (FLOP/s) of the GPUs this runs on, by a word of their name
BF16_PEAK = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}


def model_flops(model: RnaErnieModel, seqs: list[str]) -> float:
    """Forward FLOPs of the encoder over ``seqs`` (real tokens only: each sequence cut to 510 nt
    plus [CLS] and [SEP]): 24·H² per token and layer (Q, K, V, output and the 4H-wide FFN),
    4·T·H per token and layer for attention (scores and weighted sum)."""
    c = model.config
    H, n = c.hidden_size, c.num_hidden_layers
    ffn = 2 * H * c.intermediate_size  # multiply-adds per token, both FFN linears
    total = 0.0
    for s in seqs:
        T = min(len(s), 510) + 2
        total += n * (2 * (4 * H * H + ffn) * T + 4 * T * T * H)
    return total


@pytest.fixture(scope="module")
def seqs() -> list[str]:
    """The nRC test sequences, read once for every case."""
    fasta = DATA / "nrc" / "test.fasta"
    if not fasta.exists():
        pytest.skip(f"{fasta} not found (set RNAERNIE_DATA)")
    SEQS[:] = [r.seq for r in io.read_fasta(fasta, allow_duplicates=True)]
    return SEQS


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


@pytest.mark.parametrize("preset", ["tiny", "base"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
def test_embed_multimolecule(benchmark, seqs, preset, dtype, tmp_path):
    """multimolecule at its best, same config: SDPA, no pooler, sorted by length, batches of
    ``BATCH_TOKENS`` padded tokens, its tokenizer on the CPU, copies and mean pooling timed."""
    mm = pytest.importorskip("multimolecule")
    c = _model(preset).config
    mm_cfg = mm.RnaErnieConfig(hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
                               num_attention_heads=c.num_attention_heads,
                               intermediate_size=c.intermediate_size)  # fmt: skip
    torch.manual_seed(0)
    mm.RnaErnieModel(mm_cfg).save_pretrained(tmp_path)
    model = (
        mm.RnaErnieModel.from_pretrained(
            tmp_path, attn_implementation="sdpa", add_pooling_layer=False
        )
        .to("cuda", dtype)
        .eval()
    )
    tok = mm.RnaTokenizer()
    lengths = np.array([min(len(x), 510) + 2 for x in seqs])  # sorted buckets, as ours
    batches = [[seqs[i] for i in idx] for idx in length_buckets(lengths, BATCH_TOKENS)]
    n_tokens = sum(min(len(s), 510) + 2 for s in seqs)

    def run():
        out = []
        with torch.inference_mode():
            for batch in batches:
                enc = tok(batch, padding=True, truncation=True, max_length=512, return_tensors="pt")
                ids = enc["input_ids"].to("cuda", non_blocking=True)
                mask = enc["attention_mask"].to("cuda", non_blocking=True)
                h = model(input_ids=ids, attention_mask=mask).last_hidden_state
                w = mask.unsqueeze(-1).to(h.dtype)
                out.append(((h * w).sum(1) / w.sum(1)).float().cpu())
        torch.cuda.synchronize()
        return out

    run()  # warm-up
    benchmark.group = f"model-gpu-{preset}"
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    med = benchmark.stats.stats.median
    row = dict(preset=preset, impl="multimolecule", dtype=str(dtype)[6:], n_seqs=len(seqs),
               n_tokens=n_tokens, median_s=med, tokens_per_s=n_tokens / med,
               seqs_per_s=len(seqs) / med)  # fmt: skip
    benchmark.extra_info.update(row)
    RESULTS[(preset, "multimolecule", row["dtype"])] = row


def teardown_module(module):
    if not RESULTS:
        return
    props = torch.cuda.get_device_properties(0)
    peak = next((v for k, v in BF16_PEAK.items() if k in props.name), None)
    rows = []
    for (preset, impl, dt), row in sorted(RESULTS.items()):
        base = RESULTS.get((preset, "sdpa", dt))
        if impl in ("triton", "packed") and base:
            row = {**row, f"{impl}_over_sdpa": row["tokens_per_s"] / base["tokens_per_s"]}
        mm_row = RESULTS.get((preset, "multimolecule", dt))
        if impl != "multimolecule" and mm_row:
            row = {**row, "over_multimolecule": row["tokens_per_s"] / mm_row["tokens_per_s"]}
        if SEQS and preset in _MODELS:
            flops = model_flops(_MODELS[preset], SEQS)
            row = {**row, "tflops_per_s": flops / row["median_s"] / 1e12}
            if peak and dt in ("bfloat16", "float16"):
                row["mfu_vs_bf16_peak"] = flops / row["median_s"] / peak
        rows.append(row)
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
        bf16_peak_flops=peak,
        rows=rows,
    )
    out = Path(os.environ.get("RNAERNIE_BENCH_DIR", "benchmarks/results")) / "model_gpu.json"
    out.write_text(json.dumps(summary, indent=1) + "\n")
