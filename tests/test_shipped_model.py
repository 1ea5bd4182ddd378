"""The model that ships inside the package: loads with no network and gives sane answers."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

import rnaernie
from rnaernie.cli import main
from rnaernie.cli.options import example_fasta
from rnaernie.io import read_fasta
from rnaernie.kmer import KmerClassifier
from rnaernie.structure import dot_bracket_to_pairs
from rnaernie.vocab import RNA_TYPES

SHIPPED = Path(str(resources.files("rnaernie").joinpath("data", "models", "rnaernie-tiny")))


@pytest.fixture(scope="module")
def model():
    return rnaernie.load("rnaernie-tiny")


def test_files_and_card():
    for f in ("config.json", "model.safetensors", "MODEL_CARD.md", "heads/nrc/labels.json",
              "heads/nrc/kmer_logreg.safetensors", "heads/structure/config.json",
              "heads/interaction/config.json", "heads/screen/cnn.safetensors",
              "heads/screen/kmer_logreg.safetensors", "heads/screen/library.fasta.gz"):  # fmt: skip
        assert (SHIPPED / f).is_file(), f
    kmer = KmerClassifier.load(SHIPPED / "heads/nrc")  # the k-mer classifier classify multiplies in
    assert kmer.labels == json.loads((SHIPPED / "heads/nrc/labels.json").read_text())
    for f in SHIPPED.rglob("*.safetensors"):
        assert f.stat().st_size < 16 * 2**20  # each weight file stays under 16 MiB
    assert "FINETUNE_SECTION" not in (SHIPPED / "MODEL_CARD.md").read_text()


def test_classify_example_above_chance(model):
    recs = list(read_fasta(example_fasta()))
    labels = json.loads((SHIPPED / "heads/nrc/labels.json").read_text())
    out = model.classify([r.seq for r in recs], top_k=3)
    assert all(c.label in labels and c.rna_type.type in RNA_TYPES for c in out)
    truth = [r.description.split()[0] for r in recs]
    acc = np.mean([c.label == t for c, t in zip(out, truth)])
    assert acc >= 0.2  # 13 classes: chance is 0.08 (the test-set figure is in the README)


def test_fold_gives_valid_structures(model):
    seqs = [r.seq for r in list(read_fasta(example_fasta()))[:4]]
    for s, f in zip(seqs, model.fold(seqs)):
        assert len(f.dot_bracket) == len(s)
        pairs = dot_bracket_to_pairs(f.dot_bracket)
        assert all(j - i > 3 for i, j in pairs)  # minimum hairpin loop respected


def test_cli_main_job(capsys):
    assert main(["classify", "-q"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 26  # header + one row per bundled record


def test_interaction_head_scores_pairs(model):
    let7 = "UGAGGUAGUAGGUUGUAUAGUU"  # hsa-let-7a-5p, 5'->3'
    site = "AAACUAUACAACCUACUACCUCAAA"  # its perfect complement
    out = model.interact([("p", let7, site), ("q", let7, "ACGU" * 10)])
    assert [o.id for o in out] == ["p", "q"]
    assert all(
        o.label in ("no_interaction", "interaction") and 0.5 <= o.probability <= 1 for o in out
    )


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_matches_float32(model, dtype):
    """bf16/fp16 inference (the CLI's --dtype; auto picks bf16 on AMX / AVX-512 BF16 CPUs) against fp32."""
    recs = list(read_fasta(example_fasta()))
    seqs = [r.seq for r in recs]
    half = rnaernie.load("rnaernie-tiny", dtype=dtype)
    e32, e16 = model.embed(seqs), half.embed(seqs)
    assert e16.dtype == np.float32
    cos = (e32 * e16).sum(1) / np.linalg.norm(e32, axis=1) / np.linalg.norm(e16, axis=1)
    assert cos.min() > 0.999, cos.min()
    c32, c16 = model.classify(seqs, top_k=2), half.classify(seqs, top_k=2)
    p32 = np.array([c.probabilities[0] for c in c32])
    p16 = np.array([dict(zip(b.labels, b.probabilities))[a.label] for a, b in zip(c32, c16)])
    assert np.abs(p32 - p16).max() < 0.05
    # labels may only swap where fp32's top two were nearly tied
    for a, b in zip(c32, c16):
        assert a.label == b.label or a.probabilities[0] - a.probabilities[1] < 0.05


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_auto_dtype_matches_cpu_float32(model):
    """The CLI default on a GPU (dtype auto: bf16, else fp16) against fp32 on the CPU."""
    seqs = [r.seq for r in read_fasta(example_fasta())]
    gpu = rnaernie.load("rnaernie-tiny", device="cuda", dtype="auto")
    assert gpu.dtype in (torch.bfloat16, torch.float16)
    e32, eg = model.embed(seqs), gpu.embed(seqs)
    cos = (e32 * eg).sum(1) / np.linalg.norm(e32, axis=1) / np.linalg.norm(eg, axis=1)
    assert cos.min() > 0.999, cos.min()
    folded = gpu.fold(seqs[:4])
    assert [len(f.dot_bracket) for f in folded] == [len(s) for s in seqs[:4]]


def test_shipped_detector_is_calibrated_and_quiet_on_shuffled_sequence(model):
    """The screening detector ships with the fused scorer (its homology library + the CNN) and an
    E-value calibration for every scorer; at the default E-value it calls nothing in 100 kb of
    dinucleotide-shuffled example sequences (both strands), and finds the example sequences (nRC
    test members, none in its library) planted in that background, family and strand right."""
    from rnaernie.kmer import shuffled_genome
    from rnaernie.screen import SCORERS
    from rnaernie.tokenizer import normalise, reverse_complement

    det = model.detector()
    assert det.scorer == "fused" and det.homology is not None
    assert all(model.detector(s).calibration is not None for s in SCORERS)
    nrc = json.loads((SHIPPED / "heads/nrc/labels.json").read_text())
    assert det.families == nrc  # a hit's family is spelled as classify spells it
    rng = np.random.default_rng(0)
    bg = shuffled_genome([r.seq for r in read_fasta(example_fasta())], 100_000, rng)
    assert model.screen([("bg", bg)]) == []
    examples = list(read_fasta(example_fasta()))
    assert not {normalise(r.seq) for r in examples} & set(det.homology.seqs)
    parts, planted = [], []
    for k, r in enumerate(examples):
        parts.append(bg[3000 * k : 3000 * (k + 1)])
        a = sum(map(len, parts))
        parts.append(r.seq if k % 2 == 0 else reverse_complement(r.seq))
        planted.append((a, a + len(r.seq), "+-"[k % 2], r.description))
    found = model.screen([("g", "".join(parts))])
    hits = sum(any(x.strand == st and x.family == f and min(x.end, b) - max(x.start, a) >= (b - a) / 2
                   for x in found) for a, b, st, f in planted)  # fmt: skip
    assert hits >= 22, hits  # 24 of 26 when shipped
