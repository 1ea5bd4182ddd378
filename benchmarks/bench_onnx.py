"""CPU embedding with ONNX Runtime against rnaernie's PyTorch path, same weights, same batches.

Run:
    pytest benchmarks/bench_onnx.py --benchmark-only -p no:cacheprovider \
        --benchmark-json=benchmarks/results/onnx_cpu.json

Workload: the shipped ``rnaernie-tiny`` encoder on the first ``N`` sequences of
``$RNAERNIE_DATA/nrc/test.fasta`` (random 20–500 nt sequences without the data), tokenized once,
then the same length buckets (:func:`rnaernie.predict.length_buckets`, 8,192 padded tokens) run by
PyTorch fp32 (``inference_mode``, SDPA attention) and by an ONNX Runtime session of
``rnaernie export onnx`` (fp32, eager attention ops, all cores). ``extra_info``: real tokens/s;
the ORT case also its ratio to PyTorch and the largest hidden-state difference.
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


def test_embed_onnxruntime_fp32(benchmark, batches, session):
    def run():
        return [session.run(None, {"input_ids": i, "attention_mask": m})[0] for i, m in batches]

    got = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    TOKENS["onnx"] = _tokens(batches) / benchmark.stats["min"]
    model = RnaErnieModel.from_pretrained("rnaernie-tiny").eval()
    with torch.inference_mode():
        diff = max(
            float(np.abs(h - model(torch.from_numpy(i), torch.from_numpy(m), return_pooler=False)
                         .last_hidden_state.numpy())[m.astype(bool)].max())
            for h, (i, m) in zip(got, batches)
        )  # fmt: skip
    benchmark.extra_info.update({"tokens_per_s": round(TOKENS["onnx"]), "max_abs_diff": diff})
    if "pytorch" in TOKENS:
        benchmark.extra_info["ratio_vs_pytorch_fp32"] = round(TOKENS["onnx"] / TOKENS["pytorch"], 3)
    assert diff <= 1e-4
