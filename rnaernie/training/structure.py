"""Fine-tuning the secondary-structure head (pair logits on bpRNA TR0, decoded by the C++
decoder), and the structure scores that fine-tuning and evaluation share: per-sequence F1 of
decoded structures, and the choice of decoder settings on a validation set. Predictions are
:func:`rnaernie.predict.pair_logits`; ``rnaernie finetune structure`` runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from ..model import RnaErnieConfig, RnaErnieForContactPrediction, RnaErnieForPreTraining
from ..predict import contact_inputs, guidance, head_decode_options, pair_logits
from ..structure import DecodeOptions, decode_batch, decoder_inputs, f1
from ..structure.prior import Fusion, add_pair_bonus
from ..tokenizer import Tokenizer
from .common import (
    MAX_NUC,
    batches_by_tokens,
    frozen_indicator,
    optimizer_step,
    schedule,
    shuffled_batches,
    training_batches,
)

__all__ = [
    "THRESHOLDS",
    "choose_decoding",
    "choose_prior",
    "contact_labels",
    "decoding_options",
    "finetune_structure",
    "fusion_scores",
    "per_sequence_f1",
    "score_structures",
    "structure_metrics",
]


def contact_labels(records, idx, L: int) -> Tensor:
    """(B, L, L) float targets of records ``idx``: 1 on pairs, 0 elsewhere, -100 on padding."""
    lab = torch.full((len(idx), L, L), -100, dtype=torch.float32)
    for b, i in enumerate(idx):
        n = len(records[i].sequence)
        lab[b, :n, :n] = 0
        p = np.asarray(records[i].pairs, dtype=np.int64).reshape(-1, 2)
        if len(p):
            lab[b, p[:, 0], p[:, 1]] = 1
            lab[b, p[:, 1], p[:, 0]] = 1
    return lab


def finetune_structure(
    pretrained: str | Path | None,
    train_records: Sequence,
    *,
    out: str | Path | None = None,
    preset: str = "tiny",
    epochs: int = 1,
    lr: float = 3e-4,
    batch_tokens: int = 4096,
    max_length: int = 300,
    pos_weight: float = 30.0,
    type_guided: bool = False,
    top_k: int = 3,
    train_top_k: int = 1,
    seed: int = 0,
    device: str = "cpu",
    max_minutes: float | None = None,
) -> tuple[RnaErnieForContactPrediction, RnaErnieForPreTraining | None]:
    """Train the pair-logit head (and the encoder) on structure records (``.sequence``, ``.pairs``).

    Records longer than ``max_length`` are left out of training (the L×L head's cost grows as L²);
    ``pos_weight`` up-weights the rare paired entries in the BCE loss. With ``type_guided``, the
    pair head reads the weighted mean of the encodings with the indicator's top types in the slot
    (``train_top_k`` of them in training, ``top_k`` at prediction). Returns the model and the
    indicator (``None`` when unguided). ``max_minutes`` caps the wall time; the LR schedule then
    decays to zero by the cap.
    """
    torch.manual_seed(seed)
    if pretrained is None:
        model = RnaErnieForContactPrediction(RnaErnieConfig.preset(preset))
    else:
        model = RnaErnieForContactPrediction.from_pretrained(pretrained, new_head=True)
    model.to(device).train()
    recs = [r for r in train_records if 0 < len(r.sequence) <= min(max_length, MAX_NUC)]
    indicator = frozen_indicator(pretrained, type_guided, device)
    typed = guidance(indicator, [r.sequence for r in recs], train_top_k)
    tok = Tokenizer()
    lengths = [len(r.sequence) + 4 for r in recs]
    total = epochs * len(batches_by_tokens(lengths, batch_tokens, shuffle=False))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = schedule(opt, total, 0.05, max_minutes)
    pw = torch.tensor(pos_weight, device=device)
    batches = shuffled_batches(lengths, batch_tokens, seed)
    with tqdm(total=total, desc="finetune structure", unit="step", dynamic_ncols=True) as bar:
        for _, idx in training_batches(epochs, batches, sched, "finetune_structure"):
            args = contact_inputs(tok, [recs[i].sequence for i in idx], typed.rows(idx), device)
            o = model(**args)
            lab = contact_labels(recs, idx, args["input_ids"].shape[-1] - 2).to(device)
            keep = o.pair_mask & (lab >= 0)
            loss = F.binary_cross_entropy_with_logits(
                o.logits[keep].float(), lab[keep], pos_weight=pw
            )
            optimizer_step(model, loss, opt, sched)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    model.eval()
    model.config.extra = {**model.config.extra, "type_guided": type_guided, "top_k": top_k}
    if out is not None:
        model.save_pretrained(out)
    return model, indicator


def per_sequence_f1(
    logits: list[np.ndarray], records, options: DecodeOptions
) -> tuple[np.ndarray, np.ndarray]:
    """F1 of each decoded structure against its record's pairs: exact and with a ±1 shift (``mea``
    and ``threshknot`` decode the sigmoid of the logits)."""
    res = decode_batch([r.sequence for r in records], decoder_inputs(logits, options), options)
    fe = np.asarray([f1(p.pairs, r.pairs) for p, r in zip(res, records)])
    fs = np.asarray([f1(p.pairs, r.pairs, shift=1) for p, r in zip(res, records)])
    return fe, fs


def score_structures(logits: list[np.ndarray], records, options: DecodeOptions) -> dict:
    """Mean per-sequence F1 (exact and ±1 shift) of the decoded structures, with the settings."""
    fe, fs = per_sequence_f1(logits, records, options)
    return {"f1": float(np.mean(fe)), "f1_shift1": float(np.mean(fs)), "n": len(records),
            "decode": options.to_dict()}  # fmt: skip


def decoding_options(model) -> DecodeOptions:
    """The decoder settings stored with a structure head (:func:`head_decode_options`)."""
    return head_decode_options(model.config.extra)


THRESHOLDS = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0)


def _grid(thresholds) -> list[DecodeOptions]:
    return [DecodeOptions(threshold=t, no_lonely_pairs=nlp) for nlp in (False, True)
            for t in thresholds]  # fmt: skip


def choose_decoding(model, records, grid=THRESHOLDS, indicator=None, logits=None) -> DecodeOptions:
    """The nested decoder's threshold and no-lonely-pairs rule with the best mean F1 on a
    validation set (VL0); ties go to the first in grid order, lonely pairs allowed before
    forbidden. ``logits``: the records' pair logits when already computed."""
    if logits is None:
        logits = pair_logits(
            model, [r.sequence for r in records], indicator=indicator, replace_invalid=True
        )
    options = _grid(grid)
    scores = [score_structures(logits, records, o)["f1"] for o in options]
    return options[int(np.argmax(scores))]


PRIOR_WEIGHTS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


def prior_scores(logits, records, mfe, settings: dict) -> dict:
    """:func:`score_structures` of the logits plus ``settings["weight"]`` on the MFE pairs,
    decoded with ``settings["decode"]`` (a head config's ``prior_rnafold`` entry)."""
    mats = [add_pair_bonus(z, p, settings["weight"]) for z, p in zip(logits, mfe)]
    opts = DecodeOptions.from_dict(settings["decode"])
    return {**score_structures(mats, records, opts), "prior_weight": settings["weight"]}


def fusion_scores(logits, records, parts, settings: dict) -> dict:
    """:func:`score_structures` of the logits fused with ViennaRNA's base-pair probabilities
    (``parts``: :class:`~rnaernie.structure.prior.Partition` per record) by a head config's
    ``prior_bpp`` entry, decoded with its settings."""
    fusion = Fusion.from_dict(settings)
    mats = [fusion(r.sequence.upper(), z, p) for z, r, p in zip(logits, records, parts)]
    return score_structures(mats, records, DecodeOptions.from_dict(fusion.decode))


def choose_prior(logits, records, mfe, weights=PRIOR_WEIGHTS, thresholds=THRESHOLDS) -> dict:
    """The RNAfold-prior weight and decoder settings with the best mean F1 on a validation set
    (ties: first in grid order), as a head config's ``prior_rnafold`` entry."""
    grid = [{"weight": w, "decode": o.to_dict()} for w in weights for o in _grid(thresholds)]
    scores = [prior_scores(logits, records, mfe, g)["f1"] for g in grid]
    return grid[int(np.argmax(scores))]


def structure_metrics(model, records, indicator=None) -> dict:
    """Mean per-sequence F1 of the head's structures (its own decoder settings) on ``records``."""
    logits = pair_logits(
        model, [r.sequence for r in records], indicator=indicator, replace_invalid=True
    )
    return score_structures(logits, records, decoding_options(model))
