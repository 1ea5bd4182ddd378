"""Pretraining throughput (real tokens/s; forward + backward + AdamW step): rnaernie vs multimolecule.

Same config (preset ``tiny``: 4 × 256, dropout 0.1 both sides) and the same nRC training sequences
(T→U), on this machine, in one run:

* ``multimolecule`` — ``RnaErnieForMaskedLM`` as its users train it: batches of 16 sequences in
  stream order (a seeded shuffle of nRC train), padded to the longest, tokenized by ``RnaTokenizer``, 15 % random masking in torch;
* ``rnaernie`` — ``RnaErnieForPreTraining`` with our pipeline: length-bucketed batches of ≤ 2,048
  padded tokens, C++ tokenizer + motif-aware span selection + 80/10/10, MLM + type loss.

Both count the real tokens they process: nucleotides + ``[CLS]`` + ``[SEP]`` (our type section is not
counted). Run:
``pytest benchmarks/bench_pretrain.py --benchmark-enable -p no:cacheprovider --benchmark-json=benchmarks/results/pretrain.json``
"""

from __future__ import annotations

import os
import random
import time
import warnings

import pytest
import torch
from conftest import DATA

from rnaernie.io import read_fasta
from rnaernie.model import RnaErnieConfig, RnaErnieForPreTraining
from rnaernie.motifs import MotifMatcher
from rnaernie.tokenizer import Tokenizer
from rnaernie.training.pretrain import CorpusRecord, build_batch, length_batches

mm = pytest.importorskip("multimolecule")

FASTA = DATA / "nrc" / "train.fasta"
N_SEQS = int(os.environ.get("RNAERNIE_BENCH_PRETRAIN_SEQS", "640"))
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def seqs() -> list[str]:
    if not FASTA.exists():
        pytest.skip(f"{FASTA} not found")
    seqs = [r.seq.upper().replace("T", "U")[:510] for r in read_fasta(FASTA)]
    random.Random(0).shuffle(seqs)  # a shuffled training stream, as a data loader gives it
    return seqs[:N_SEQS]


def _train_mm(seqs: list[str]) -> tuple[int, float]:
    cfg = RnaErnieConfig.preset("tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.RnaErnieForMaskedLM(
            mm.RnaErnieConfig(
                hidden_size=cfg.hidden_size,
                num_hidden_layers=cfg.num_hidden_layers,
                num_attention_heads=cfg.num_attention_heads,
                intermediate_size=cfg.intermediate_size,
            )
        ).train()
    tok = mm.RnaTokenizer()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    real = 0
    t0 = time.perf_counter()
    for i in range(0, len(seqs), 16):
        enc = tok(seqs[i : i + 16], padding=True, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        sel = (torch.rand(ids.shape, generator=g) < 0.15) & (mask.bool()) & (ids > 5)
        labels = torch.where(sel, ids, torch.full_like(ids, -100))
        inp = torch.where(sel, torch.full_like(ids, tok.mask_token_id), ids)
        loss = model(input_ids=inp, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        real += int(mask.sum())
    return real, time.perf_counter() - t0


def _train_ours(seqs: list[str]) -> tuple[int, float]:
    torch.manual_seed(0)
    model = RnaErnieForPreTraining(RnaErnieConfig.preset("tiny")).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tok, matcher = Tokenizer(), MotifMatcher.default()
    recs = [CorpusRecord(s, None) for s in seqs]
    real = 0
    t0 = time.perf_counter()
    for step, batch in enumerate(
        length_batches(lambda: iter(recs), batch_tokens=2048, max_length=512, seed=0, epoch=0)
    ):
        b = build_batch(batch, tokenizer=tok, matcher=matcher, seed=step)
        out = model(
            b["input_ids"], b["attention_mask"], labels=b["labels"], type_labels=b["type_labels"]
        )
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        real += int(b["attention_mask"].sum()) - 2 * len(
            batch
        )  # same count as multimolecule: no [IND] TYPE
    return real, time.perf_counter() - t0


@pytest.mark.parametrize("impl", ["multimolecule", "rnaernie"])
def test_pretrain_throughput(benchmark, seqs, impl):
    fn = _train_mm if impl == "multimolecule" else _train_ours
    real, secs = benchmark.pedantic(lambda: fn(seqs), rounds=1, iterations=1)
    RESULTS[impl] = real / secs
    benchmark.extra_info.update(
        impl=impl, sequences=len(seqs), real_tokens=real, seconds=round(secs, 2),
        real_tokens_per_s=round(real / secs, 1), threads=torch.get_num_threads(),
    )  # fmt: skip
    if impl == "rnaernie" and "multimolecule" in RESULTS:
        benchmark.extra_info["ratio_vs_multimolecule"] = round(
            RESULTS["rnaernie"] / RESULTS["multimolecule"], 2
        )
