"""CPU embedding with ONNX Runtime against rnaernie's PyTorch path, same weights, same batches.

Run:
    pytest benchmarks/bench_onnx.py --benchmark-only -p no:cacheprovider \
        --benchmark-json=benchmarks/results/onnx_cpu.json

Workload: the shipped ``rnaernie-tiny`` encoder on the first ``N`` sequences of
``$RNAERNIE_DATA/nrc/test.fasta`` (random 20–500 nt sequences without the data), tokenized once,
then the same length buckets (:func:`rnaernie.predict.length_buckets`, 8,192 padded tokens) run by
PyTorch fp32 (``inference_mode``, SDPA attention), PyTorch bf16 (``rnaernie``'s CPU default
``--dtype auto`` where the CPU has bf16 instructions), and ONNX Runtime sessions of ``rnaernie
export onnx`` fp32 and ``--int8`` (eager attention ops, all cores). ``extra_info``: real tokens/s;
the other cases also their ratio to PyTorch fp32 and the largest hidden-state difference (fp32) or
the cosine of the hidden states to PyTorch fp32 (mean and minimum over real tokens).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import DATA

from rnaernie.io import read_fasta
from rnaernie.model import RnaErnieModel
from rnaernie.model.export import export_onnx
from rnaernie.predict import length_buckets
from rnaernie.tokenizer import Tokenizer

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.filterwarnings("ignore")
N = int(os.environ.get("RNAERNIE_BENCH_ONNX", "600"))
TOKENS: dict[str, float] = {}


@pytest.fixture(scope="module")
def batches():
    fasta = DATA / "nrc" / "test.fasta"
    if fasta.is_file():
        seqs = [r.seq for r in read_fasta(fasta)][:N]
    else:
        rng = np.random.default_rng(0)
        seqs = ["".join(rng.choice(list("ACGU"), int(n))) for n in rng.integers(20, 500, N)]
    enc = Tokenizer().encode_batch(seqs, truncate=True)
    out = []
    for idx in length_buckets(enc.lengths, 8192):
        L = int(enc.lengths[idx].max())
        out.append((enc.input_ids[idx, :L], enc.attention_mask[idx, :L]))
    return out


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = export_onnx("rnaernie-tiny", tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def session_int8(tmp_path_factory):
    path = export_onnx("rnaernie-tiny", tmp_path_factory.mktemp("onnx") / "int8.onnx", int8=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def reference(batches) -> list[np.ndarray]:
    """PyTorch fp32 hidden states of every batch, computed once (outside any timing)."""
    model = RnaErnieModel.from_pretrained("rnaernie-tiny").eval()
    with torch.inference_mode():
        return [model(torch.from_numpy(i), torch.from_numpy(m), return_pooler=False)
                .last_hidden_state.float().numpy() for i, m in batches]  # fmt: skip


def _cosine(got, reference, batches) -> dict:
    cos = []
    for h, r, (_, m) in zip(got, reference, batches):
        a, b = h[m.astype(bool)].astype(np.float64), r[m.astype(bool)].astype(np.float64)
        cos.append((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    c = np.concatenate(cos)
    return {"cosine_mean": float(c.mean()), "cosine_min": float(c.min())}


def _ratio(benchmark, name: str) -> None:
    if "pytorch" in TOKENS:
        benchmark.extra_info["ratio_vs_pytorch_fp32"] = round(TOKENS[name] / TOKENS["pytorch"], 3)


def _tokens(batches) -> int:
    return int(sum(m.sum() for _, m in batches))


def test_embed_pytorch_fp32(benchmark, batches):
    model = RnaErnieModel.from_pretrained("rnaernie-tiny", attn_implementation="sdpa").eval()

    def run():
        with torch.inference_mode():
            for ids, mask in batches:
                model(torch.from_numpy(ids), torch.from_numpy(mask), return_pooler=False)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    TOKENS["pytorch"] = _tokens(batches) / benchmark.stats["min"]
    benchmark.extra_info["tokens_per_s"] = round(TOKENS["pytorch"])


def test_embed_onnxruntime_fp32(benchmark, batches, session, reference):
    def run():
        return [session.run(None, {"input_ids": i, "attention_mask": m})[0] for i, m in batches]

    got = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    TOKENS["onnx"] = _tokens(batches) / benchmark.stats["min"]
    diff = max(
        float(np.abs(h - r)[m.astype(bool)].max()) for h, r, (_, m) in zip(got, reference, batches)
    )
    benchmark.extra_info.update({"tokens_per_s": round(TOKENS["onnx"]), "max_abs_diff": diff})
    _ratio(benchmark, "onnx")
    assert diff <= 1e-4


def test_embed_pytorch_bf16(benchmark, batches, reference):
    model = RnaErnieModel.from_pretrained("rnaernie-tiny", attn_implementation="sdpa").eval()
    model = model.to(torch.bfloat16)

    def run():
        with torch.inference_mode():
            return [model(torch.from_numpy(i), torch.from_numpy(m), return_pooler=False)
                    .last_hidden_state.float().numpy() for i, m in batches]  # fmt: skip

    got = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    TOKENS["pytorch_bf16"] = _tokens(batches) / benchmark.stats["min"]
    benchmark.extra_info.update(
        {"tokens_per_s": round(TOKENS["pytorch_bf16"]), **_cosine(got, reference, batches)}
    )
    _ratio(benchmark, "pytorch_bf16")


def test_embed_onnxruntime_int8(benchmark, batches, session_int8, reference):
    def run():
        return [
            session_int8.run(None, {"input_ids": i, "attention_mask": m})[0] for i, m in batches
        ]

    got = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    TOKENS["onnx_int8"] = _tokens(batches) / benchmark.stats["min"]
    benchmark.extra_info.update(
        {"tokens_per_s": round(TOKENS["onnx_int8"]), **_cosine(got, reference, batches)}
    )
    _ratio(benchmark, "onnx_int8")
    assert benchmark.extra_info["cosine_min"] > 0.99
