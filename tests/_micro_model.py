"""A micro RNAErnie saved in the shipped model layout (random weights), for the API/CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

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
    return d
