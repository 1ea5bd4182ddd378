"""Fine-tuning on downstream tasks, with RNAErnie's type-guided scheme (the paper's second idea).

Type guidance, as in the official code:

1. The frozen pretrained model (the *indicator*) reads ``[CLS] seq [IND] [MASK] [SEP]`` and its MLM
   head scores the 28 RNA-type tokens at the open slot; the top-k types (default 3) are kept with
   renormalised probabilities (for inputs longer than the model limit: windows, max over windows).
2. The task model reads ``[CLS] seq [IND] TYPE [SEP]`` once per kept type, and the task logits are
   the probability-weighted sum.

``type_guided=False`` trains and predicts on ``[CLS] seq [SEP]``, so the effect can be measured.

This module: sequence classification (nRC families, lncRNA vs mRNA); its predictions are
:func:`rnaernie.predict.classifier_probs`. ``rnaernie finetune classify`` runs it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..model import (
    RnaErnieConfig,
    RnaErnieForPreTraining,
    RnaErnieForSequenceClassification,
    resolve_model_dir,
)
from ..predict import guidance, typed_mix
from ..tokenizer import Tokenizer
from .common import (
    DROPOUTS,
    MAX_NUC,
    batches_by_tokens,
    frozen_indicator,
    nucleotide_masker,
    optimizer_step,
    random_crops,
    schedule,
    shuffled_batches,
    training_batches,
)

__all__ = ["finetune_classifier"]


def finetune_classifier(
    pretrained: str | Path | None,
    train_seqs: Sequence[str],
    train_labels: np.ndarray,
    label_names: Sequence[str],
    *,
    out: str | Path | None = None,
    preset: str = "tiny",
    type_guided: bool = True,
    top_k: int = 3,
    train_top_k: int = 1,
    epochs: int = 3,
    lr: float = 1e-4,
    batch_tokens: int = 8192,
    seed: int = 0,
    device: str = "cpu",
    max_minutes: float | None = None,
    dropout: float | None = None,
    mask_prob: float = 0.0,
) -> tuple[RnaErnieForSequenceClassification, RnaErnieForPreTraining | None]:
    """Fine-tune a sequence classifier from ``pretrained`` (``None``: from scratch, preset ``preset``).

    With type guidance, training uses the top ``train_top_k`` types (cheaper: the model runs once per
    kept type) and prediction the top ``top_k``. Returns the model and the indicator (``None`` when
    unguided). ``max_minutes`` caps the wall time; the LR schedule then decays to zero by the cap.
    ``dropout`` (e.g. 0.1) sets the hidden, attention and classifier dropout of the fine-tuned model
    (default: the pretrained config's; the shipped base's is 0.1). ``mask_prob`` > 0 replaces that
    fraction of the training inputs' nucleotides by ``[MASK]``, fresh at every step (augmentation).
    """
    corrupt = nucleotide_masker(mask_prob, seed) if mask_prob != 0 else None

    torch.manual_seed(seed)
    n_labels = len(label_names)
    drop = {} if dropout is None else dict.fromkeys(DROPOUTS, dropout)
    if pretrained is None:
        model = RnaErnieForSequenceClassification(
            RnaErnieConfig.preset(preset, num_labels=n_labels, **drop)
        )
    else:
        cfg = RnaErnieConfig.from_json_file(resolve_model_dir(pretrained) / "config.json")
        cfg.num_labels = n_labels
        for k, v in drop.items():
            setattr(cfg, k, v)
        model = RnaErnieForSequenceClassification.from_pretrained(pretrained, cfg, new_head=True)
    model.to(device)
    indicator = frozen_indicator(pretrained, type_guided, device)
    full = list(train_seqs)
    typed = guidance(indicator, full, train_top_k)
    tok = Tokenizer()
    lengths = [min(len(s), MAX_NUC) + 4 for s in full]
    steps_per_epoch = len(batches_by_tokens(lengths, batch_tokens, shuffle=False))
    total = epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = schedule(opt, total, 0.1, max_minutes)
    y = torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
    model.train()
    crops_epoch = -1
    batches = shuffled_batches(lengths, batch_tokens, seed)
    with tqdm(total=total, desc="finetune classifier", unit="step", dynamic_ncols=True) as bar:
        for ep, idx in training_batches(epochs, batches, sched, "finetune_classifier"):
            if ep != crops_epoch:  # a new random window of each long sequence every epoch
                seqs = random_crops(full, MAX_NUC, np.random.default_rng([seed, ep]))
                crops_epoch = ep
            logits = typed_mix(
                lambda ids, mask: model(ids if corrupt is None else corrupt(ids), mask).logits,
                tok, [seqs[i] for i in idx], typed.rows(idx), device,
            )  # fmt: skip
            loss = F.cross_entropy(logits, y[idx].to(device))
            optimizer_step(model, loss, opt, sched)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    model.config.extra = {**model.config.extra, "type_guided": type_guided, "top_k": top_k,
                          "labels": list(label_names)}  # fmt: skip
    if out is not None:
        out = Path(out)
        model.save_pretrained(out)
        (out / "labels.json").write_text(json.dumps(list(label_names)) + "\n")
    return model, indicator
