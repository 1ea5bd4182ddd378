"""What every fine-tuning task shares: the frozen type indicator, batches, the learning-rate
schedule with its wall-time cap, the optimizer step, data helpers and classification metrics.

The tasks (:mod:`.classify`, :mod:`.structure`, :mod:`.interaction`) and the command line use
these public names; the predictions they score go through :mod:`rnaernie.predict`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..io import read_fasta
from ..model import RnaErnieForPreTraining
from ..predict import TYPED_NT, length_buckets
from ..vocab import MASK_ID, NUC_OFFSET, UNK_ID

__all__ = [
    "DROPOUTS",
    "batches_by_tokens",
    "classification_metrics",
    "frozen_indicator",
    "nucleotide_masker",
    "optimizer_step",
    "random_crops",
    "read_labelled_fasta",
    "schedule",
    "shuffled_batches",
    "stratified_holdout",
    "training_batches",
]

log = logging.getLogger(__name__)
MAX_NUC = TYPED_NT  # 512 positions − [CLS] [IND] TYPE [SEP]
DROPOUTS = ("hidden_dropout", "attention_dropout", "classifier_dropout")


def batches_by_tokens(
    lengths: Sequence[int], batch_tokens: int, *, shuffle: bool, seed: int = 0
) -> list[list[int]]:
    """Index batches of :func:`rnaernie.predict.length_buckets`, optionally in shuffled order."""
    out = [idx.tolist() for idx in length_buckets(np.asarray(lengths), batch_tokens)]
    if shuffle:
        random.Random(seed).shuffle(out)
    return out


def read_labelled_fasta(
    path: str | Path, labels: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, list[str]]:
    """Sequences with the class name as the first word of the description (the nRC format).

    Returns ``(seqs, label indices, label names)``; ``labels`` fixes the order (else sorted names).
    """
    recs = list(read_fasta(path, allow_duplicates=True))
    names = [r.description.split(" ")[0] for r in recs]
    if any(not n for n in names):
        bad = next(r for r, n in zip(recs, names) if not n)
        raise ValueError(
            f"{path}, line {bad.line}: record '{bad.id}' has no class name in its description"
        )
    order = list(labels) if labels is not None else sorted(set(names))
    index = {n: i for i, n in enumerate(order)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise ValueError(f"{path}: classes not in the label set: {', '.join(unknown[:5])}")
    return [r.seq for r in recs], np.array([index[n] for n in names]), order


def random_crops(seqs: list[str], width: int, rng: np.random.Generator) -> list[str]:
    """Each sequence longer than ``width`` cut to a window at a random offset (the rest as they are)."""
    return [
        s if len(s) <= width else s[(o := int(rng.integers(0, len(s) - width + 1))) : o + width]
        for s in seqs
    ]


def nucleotide_masker(prob: float, seed: int) -> Callable[[Tensor], Tensor]:
    """``ids -> ids`` with each nucleotide (and ``[UNK]``) token replaced by ``[MASK]`` with
    probability ``prob`` — the corruption the encoder learnt to read in pretraining, used as a
    fine-tuning augmentation. Special and RNA-type tokens are left alone."""
    if not 0.0 <= prob < 1.0:
        raise ValueError(f"the masking probability (--mask-prob) must be in [0, 1), got {prob}")
    gen = torch.Generator().manual_seed(seed)

    def corrupt(ids: Tensor) -> Tensor:
        hit = torch.rand(ids.shape, generator=gen) < prob
        hit = hit.to(ids.device) & ((ids >= NUC_OFFSET) | (ids == UNK_ID))
        return ids.masked_fill(hit, MASK_ID)

    return corrupt


def frozen_indicator(
    pretrained: str | Path | None, type_guided: bool, device
) -> RnaErnieForPreTraining | None:
    """The type indicator of a type-guided fine-tuning: the frozen pretraining model (``None``
    when unguided)."""
    if not type_guided:
        return None
    if pretrained is None:
        raise ValueError("type-guided fine-tuning needs a pretrained model (the indicator)")
    return RnaErnieForPreTraining.from_pretrained(pretrained).to(device).eval()


def optimizer_step(model, loss: Tensor, opt, sched) -> None:
    """Backward, clip the gradient norm to 1, step the optimizer and the schedule, clear gradients."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.progress.step += 1
    sched.step()
    opt.zero_grad(set_to_none=True)


class Progress:
    """How far a fine-tuning has come, in [0, 1]: steps done / ``total_steps`` or, under a
    wall-time cap, time spent / cap, whichever is further. The LR schedule follows it, so a
    capped run still warms up and decays to zero; training stops when it reaches 1."""

    def __init__(self, total_steps: int, max_minutes: float | None):
        if max_minutes is not None and not max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {max_minutes}")
        self.total = max(1, total_steps)
        self.cap_s = None if max_minutes is None else 60.0 * max_minutes
        self.t0 = time.perf_counter()
        self.step = 0

    def __call__(self) -> float:
        p = self.step / self.total
        if self.cap_s is not None:
            p = max(p, (time.perf_counter() - self.t0) / self.cap_s)
        return min(1.0, p)

    def done(self, what: str) -> bool:
        """True once training should stop; logs when the time cap, not the steps, ended it."""
        if self.step < self.total and self() < 1.0:
            return False
        if self.step < self.total:
            log.warning("%s: time cap reached after %d/%d steps", what, self.step, self.total)
        return True


def training_batches(
    epochs: int, batches: Callable[[int], Iterable[np.ndarray]], sched, what: str
) -> Iterator[tuple[int, np.ndarray]]:
    """``(epoch, batch indices)`` for each step, ``batches(epoch)`` giving an epoch's batches (called
    once per epoch, in order), until the scheduler's progress says the run is done (its last step
    or its time cap)."""
    for ep in range(epochs):
        for idx in batches(ep):
            yield ep, idx
            if sched.progress.done(what):
                return


def shuffled_batches(lengths, batch_tokens: int, seed: int) -> Callable[[int], list[np.ndarray]]:
    """``epoch -> that epoch's batches`` of :func:`batches_by_tokens`, shuffled with a seed of
    their own (for :func:`training_batches`)."""
    return lambda ep: batches_by_tokens(lengths, batch_tokens, shuffle=True, seed=seed * 1000 + ep)


def schedule(opt, total_steps: int, warmup_frac: float, max_minutes: float | None = None):
    """Linear warm-up over the first ``warmup_frac`` of the run, then linear decay to zero, on
    :class:`Progress` (``.progress`` of the returned scheduler; ``optimizer_step`` advances it)."""
    progress = Progress(total_steps, max_minutes)
    first = 1.0 / progress.total

    def f(_: int) -> float:
        p = progress()
        if p < warmup_frac:
            return min(1.0, (p + first) / warmup_frac)
        return max(0.0, (1.0 - p) / max(1e-9, 1.0 - warmup_frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    sched.progress = progress  # type: ignore[attr-defined]
    return sched


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of a validation part: ``fraction`` of each class (at least one row of every class
    that has two or more), drawn with ``seed``; the rest is for training."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        if len(idx) >= 2:
            held.append(idx[: min(len(idx) - 1, max(1, round(fraction * len(idx))))])
    return np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy and macro-F1 (and AUROC for two classes)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    pred = probs.argmax(1)
    res = {
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, average="macro")),
    }
    if probs.shape[1] == 2:
        res["auroc"] = float(roc_auc_score(labels, probs[:, 1]))
    return res
