"""A micro RNAErnie saved in the shipped model layout (random weights), for the API/CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from rnaernie.model import (
    RnaErnieConfig,
    RnaErnieForContactPrediction,
    RnaErnieForInteraction,
    RnaErnieForPreTraining,
    RnaErnieForSequenceClassification,
)

NRC_LABELS = ["5S_rRNA", "tRNA", "miRNA"]


def micro_config(**kw) -> RnaErnieConfig:
    return RnaErnieConfig.preset(
        "tiny",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **kw,
    )


def save_micro_model(d: Path, heads: tuple[str, ...] = ("nrc", "structure", "interaction")) -> Path:
    torch.manual_seed(0)
    RnaErnieForPreTraining(micro_config()).save_pretrained(d)
    if "nrc" in heads:
        RnaErnieForSequenceClassification(micro_config(num_labels=3)).save_pretrained(
            d / "heads/nrc"
        )
        (d / "heads/nrc/labels.json").write_text(json.dumps(NRC_LABELS))
    if "structure" in heads:
        m = RnaErnieForContactPrediction(micro_config(pair_channels=8, pair_kernel_size=3))
        with torch.no_grad():  # make pairs likely enough that structures are not empty
            m.conv2.bias.fill_(0.02)
        m.save_pretrained(d / "heads/structure")
    if "interaction" in heads:
        RnaErnieForInteraction(micro_config(num_labels=2)).save_pretrained(d / "heads/interaction")
    if "screen" in heads:
        save_micro_detector(d / "heads/screen")
    return d


SCREEN_LABELS = ["Gfam", "Cfam", "background"]
# the micro detector's homology library: two random 60-nt members of each family
SCREEN_MEMBERS = ["".join(np.random.default_rng(k).choice(list("ACGU"), 60)) for k in range(4)]
SCREEN_MEMBER_FAMILIES = [0, 0, 1, 1]


def save_micro_detector(d: Path, window: int = 40, stride: int = 20) -> Path:
    """A screening head whose CNN and k-mer classifier are set by hand: the CNN counts G (family
    ``Gfam``) and C (``Cfam``) in every 9-mer, so runs of G or C are hits and random sequence is
    background; the k-mer classifier (k = 1) does the same on a window's G and C shares. The
    filter threshold is 0 bits. Its homology library is :data:`SCREEN_MEMBERS` (6-nt seeds, a
    low ungapped gate, so that random background aligns and calibrates). Calibrated (every
    scorer) on random background; the default scorer stays ``cnn``."""
    from rnaernie.homology import HomologySettings
    from rnaernie.kmer import KmerClassifier
    from rnaernie.model.motif_cnn import MotifCNN
    from rnaernie.screen import SCORERS, calibrate
    from rnaernie.training.screen import add_library

    m = RnaErnieForSequenceClassification(micro_config(num_labels=3))
    # A C G U frequencies -> logits; background wins on balanced composition
    coef = np.array([[0, 0, 30, 0], [0, 30, 0, 0], [0, 0, 0, 0]], dtype=np.float64)
    intercept = np.array([-15.0, -15.0, 0.0])
    KmerClassifier(1, np.zeros(4), np.ones(4), coef, intercept, SCREEN_LABELS).save(
        _mkdir(d) / "kmer_logreg.safetensors"
    )
    cnn = MotifCNN(2, channels=2, kernel=9, dilations=(), labels=SCREEN_LABELS)
    with torch.no_grad():
        cnn.stem.weight.zero_()
        cnn.stem.weight[0, 2, :] = 1.0  # G count over 9 nt
        cnn.stem.weight[1, 1, :] = 1.0  # C count
        cnn.stem.bias.zero_()
        cnn.out.weight.copy_(3.0 * torch.eye(2)[:, :, None])
        cnn.out.bias.fill_(-20.0)  # 9 G: +7; a random 9-mer (about 2 G): -14
    cnn.save(d)
    m.config.extra = {"labels": SCREEN_LABELS, "type_guided": False,
                      "screen": {"window": window, "stride": stride, "background": "background",
                                 "scorer": "cnn",
                                 "filter": {"stage": "cnn", "threshold": 0.0, "sensitivity": 0.99}}}  # fmt: skip
    m.save_pretrained(d)
    (d / "labels.json").write_text(json.dumps(SCREEN_LABELS))
    settings = HomologySettings(k=6, ungapped=12, match=2, mismatch=-3, gap_open=5, gap_extend=2,
                                xdrop=20)  # fmt: skip
    add_library(d, SCREEN_MEMBERS, SCREEN_MEMBER_FAMILIES, settings=settings)
    rng = np.random.default_rng(0)
    background = ["".join(rng.choice(list("ACGU"), 2000)) for _ in range(20)]
    for scorer in SCORERS:
        calibrate(d, background, megabases=0.05, scorer=scorer)
    return d


def _mkdir(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d
