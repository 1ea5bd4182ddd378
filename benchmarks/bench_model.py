"""CPU embedding throughput: rnaernie vs multimolecule's RnaErnieModel, same config and weights.

Run (a few minutes on 2 cores):
    pytest benchmarks/bench_model.py --benchmark-only -p no:cacheprovider \
        --benchmark-json=benchmarks/results/model_cpu.json

Workload: a fixed random subset (seed 0) of ``$RNAERNIE_DATA/nrc/test.fasta`` (default
``../shared/data``; its real length distribution; sequences over 510 nt truncated to 512 tokens),
tokenizer included in every timing.
``tiny`` = 4 × 256 on ``N_SEQS["tiny"]`` sequences, ``base`` = 12 × 768 on ``N_SEQS["base"]``.
Multimolecule's weights are random (``save_pretrained``); ours are loaded from that directory.

Cases (group = preset):
* ``mm_user``  — multimolecule as a user calls it: ``from_pretrained`` defaults, file order,
  batches of 32 padded per batch, ``torch.no_grad``.
* ``mm_best``  — multimolecule at its best: sorted by length, batches of 32, SDPA, no pooler,
  ``torch.inference_mode``.
* ``ours``     — ``embed_batches`` (C++ tokenizer, length buckets by token budget, inference mode,
  no pooler, fused oneDNN linears), fp32.
* ``ours_int8`` — the same after ``quantize_int8()`` (dynamic int8 Linear layers).
* ``ours_bf16`` — the same with the model cast to bfloat16 (uses AMX where the CPU has it).

``extra_info`` holds real tokens/s, sequences/s and the ratios to both baselines.
"""

from __future__ import annotations

import copy
import os
import platform
import random
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import DATA

from rnaernie import io
from rnaernie.model import RnaErnieConfig, RnaErnieModel
from rnaernie.predict import embed_batches

pytestmark = pytest.mark.filterwarnings("ignore")

FASTA = DATA / "nrc" / "test.fasta"
# sequences per preset; override with RNAERNIE_BENCH_TINY / RNAERNIE_BENCH_BASE (e.g. a smoke run)
N_SEQS = {
    k: int(os.environ.get(f"RNAERNIE_BENCH_{k.upper()}", v))
    for k, v in {"tiny": 192, "base": 24}.items()
}
ROUNDS = {"tiny": 2, "base": 1}
WARMUP = {
    "tiny": 1,
    "base": 0,
}  # base: one timed pass (first-call overheads are ms, runs are ~10 s)
BATCH = 32
BATCH_TOKENS = 4096
RESULTS: dict[tuple[str, str], float] = {}

mm = pytest.importorskip("multimolecule")


def read_fasta(path: Path) -> list[str]:
    return [r.seq for r in io.read_fasta(path, allow_duplicates=True)]


_CACHE: dict[str, dict] = {}


def setup_case(preset: str, tmp_root: Path) -> dict:
    if preset in _CACHE:
        return _CACHE[preset]
    if not FASTA.exists():
        pytest.skip(f"{FASTA} not found")
    seqs = read_fasta(FASTA)
    random.Random(0).shuffle(seqs)
    seqs = seqs[: N_SEQS[preset]]
    cfg = RnaErnieConfig.preset(preset)
    torch.manual_seed(0)
    mm_cfg = mm.RnaErnieConfig(
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size,
    )
    path = tmp_root / preset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.RnaErnieModel(mm_cfg).save_pretrained(path)
        mm_user = mm.RnaErnieModel.from_pretrained(path).eval()
        mm_best = mm.RnaErnieModel.from_pretrained(
            path, attn_implementation="sdpa", add_pooling_layer=False
        ).eval()
    ours = RnaErnieModel.from_pretrained(path)
    ours_int8 = copy.deepcopy(ours).quantize_int8()
    ours_bf16 = copy.deepcopy(ours).to(torch.bfloat16)
    n_tokens = sum(min(len(s), 510) + 2 for s in seqs)
    case = dict(
        seqs=seqs,
        n_tokens=n_tokens,
        tokenizer=mm.RnaTokenizer(),
        mm_user=mm_user,
        mm_best=mm_best,
        ours=ours,
        ours_int8=ours_int8,
        ours_bf16=ours_bf16,
        mm_user_attn=mm_user.config._attn_implementation,
    )
    _CACHE[preset] = case
    return case


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory):
    return tmp_path_factory.mktemp("bench_model")


def _run_mm(case: dict, model, order: list[int], ctx) -> None:
    tok, seqs = case["tokenizer"], case["seqs"]
    with ctx():
        for i in range(0, len(order), BATCH):
            batch = [seqs[j] for j in order[i : i + BATCH]]
            enc = tok(batch, padding=True, truncation=True, max_length=512, return_tensors="pt")
            model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])


def _run_ours(case: dict, model) -> None:
    embed_batches(model, case["seqs"], pooling="mean", batch_tokens=BATCH_TOKENS, truncate=True)


def _measure(benchmark, preset: str, name: str, fn) -> None:
    case = _CACHE[preset]
    benchmark.group = f"model-cpu-{preset}"
    # untimed warm-up calls (allocator, oneDNN primitive caches), then the timed rounds
    benchmark.pedantic(fn, rounds=ROUNDS[preset], iterations=1, warmup_rounds=WARMUP[preset])
    best = benchmark.stats.stats.min
    tps = case["n_tokens"] / best
    RESULTS[(preset, name)] = tps
    info = dict(
        preset=preset,
        case=name,
        n_seqs=len(case["seqs"]),
        n_tokens=case["n_tokens"],
        tokens_per_s=round(tps, 1),
        seqs_per_s=round(len(case["seqs"]) / best, 2),
        threads=torch.get_num_threads(),
        loadavg_1min=os.getloadavg()[0],
        machine=platform.machine(),
        processor=platform.processor() or platform.uname().machine,
        cpus=os.cpu_count(),
        torch=torch.__version__,
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    for base in ("mm_user", "mm_best"):
        if (preset, base) in RESULTS and name != base:
            info[f"ratio_vs_{base}"] = round(tps / RESULTS[(preset, base)], 3)
    if name == "mm_user":
        info["mm_user_attn_implementation"] = case["mm_user_attn"]
    benchmark.extra_info.update(info)


PRESETS = ["tiny", "base"]


@pytest.mark.parametrize("preset", PRESETS)
def test_mm_user(benchmark, preset, tmp_root):
    case = setup_case(preset, tmp_root)
    order = list(range(len(case["seqs"])))
    _measure(
        benchmark, preset, "mm_user", lambda: _run_mm(case, case["mm_user"], order, torch.no_grad)
    )


@pytest.mark.parametrize("preset", PRESETS)
def test_mm_best(benchmark, preset, tmp_root):
    case = setup_case(preset, tmp_root)
    order = sorted(range(len(case["seqs"])), key=lambda i: len(case["seqs"][i]))
    _measure(
        benchmark, preset, "mm_best",
        lambda: _run_mm(case, case["mm_best"], order, torch.inference_mode),
    )  # fmt: skip


@pytest.mark.parametrize("preset", PRESETS)
def test_ours(benchmark, preset, tmp_root):
    case = setup_case(preset, tmp_root)
    _measure(benchmark, preset, "ours", lambda: _run_ours(case, case["ours"]))


@pytest.mark.parametrize("preset", PRESETS)
def test_ours_int8(benchmark, preset, tmp_root):
    case = setup_case(preset, tmp_root)
    _measure(benchmark, preset, "ours_int8", lambda: _run_ours(case, case["ours_int8"]))


@pytest.mark.parametrize("preset", PRESETS)
def test_ours_bf16(benchmark, preset, tmp_root):
    case = setup_case(preset, tmp_root)
    _measure(benchmark, preset, "ours_bf16", lambda: _run_ours(case, case["ours_bf16"]))
