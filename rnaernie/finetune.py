"""Fine-tuning on downstream tasks, with RNAErnie's type-guided scheme (the paper's second idea).

Type guidance, as in the official code:

1. The frozen pretrained model (the *indicator*) reads ``[CLS] seq [IND] [MASK] [SEP]`` and its MLM
   head scores the 28 RNA-type tokens at the open slot; the top-k types (default 3) are kept with
   renormalised probabilities (for inputs longer than the model limit: windows, max over windows).
2. The task model reads ``[CLS] seq [IND] TYPE [SEP]`` once per kept type, and the task logits are
   the probability-weighted sum.

``type_guided=False`` trains and predicts on ``[CLS] seq [SEP]``, so the effect can be measured.

Tasks here: sequence classification (nRC families, lncRNA vs mRNA) and secondary structure (pair
logits on bpRNA TR0, decoded by the C++ decoder). Each task has a Python function and a
``rnaernie finetune <task>`` command.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .heads import (
    RnaErnieForContactPrediction,
    RnaErnieForPreTraining,
    RnaErnieForSequenceClassification,
)
from .inference import length_buckets, stitch_pair_windows
from .io import read_fasta
from .tokenizer import Tokenizer
from .vocab import MASK_ID, NUC_OFFSET, NUM_TYPES, TYPE_OFFSET, UNK_ID

__all__ = [
    "TypeIndicator",
    "evaluate_classifier",
    "evaluate_structure",
    "finetune_classifier",
    "finetune_structure",
    "predict_classifier",
    "predict_pair_logits",
    "read_labelled_fasta",
    "top_types",
]

log = logging.getLogger(__name__)
MAX_NUC = 508  # 512 positions − [CLS] [IND] TYPE [SEP]


def _batches_by_tokens(
    lengths: Sequence[int], batch_tokens: int, *, shuffle: bool, seed: int = 0
) -> list[list[int]]:
    """Index batches of :func:`rnaernie.inference.length_buckets`, optionally in shuffled order."""
    out = [idx.tolist() for idx in length_buckets(np.asarray(lengths), batch_tokens)]
    if shuffle:
        random.Random(seed).shuffle(out)
    return out


class TypeIndicator:
    """Top-k RNA types of sequences from the frozen pretrained model's open type slot.

    Example:
        >>> ind = TypeIndicator(RnaErnieForPreTraining.from_pretrained(path))  # doctest: +SKIP
        >>> types, probs = ind.predict(["GGGAAACCC"], top_k=3)  # (N, 3) token ids, (N, 3) weights
    """

    def __init__(
        self,
        model: RnaErnieForPreTraining,
        *,
        device: str | torch.device = "cpu",
        batch_tokens: int = 16384,
    ):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.batch_tokens = batch_tokens
        self.tokenizer = Tokenizer()

    @torch.inference_mode()
    def type_probs(self, seqs: Sequence[str]) -> np.ndarray:
        """(N, 28) probabilities over :data:`rnaernie.vocab.RNA_TYPES` (max over windows, renormalised)."""
        enc = self.tokenizer.encode_batch(
            list(seqs), types=[MASK_ID] * len(seqs), window=MAX_NUC, replace_invalid=True
        )
        probs = np.zeros((len(seqs), NUM_TYPES), np.float32)
        lengths = enc.lengths.tolist()
        for idx in _batches_by_tokens(lengths, self.batch_tokens, shuffle=False):
            n = max(lengths[i] for i in idx)
            ids = torch.from_numpy(enc.input_ids[idx, :n]).to(self.device)
            mask = torch.from_numpy(enc.attention_mask[idx, :n]).to(self.device)
            logits = self.model(ids, mask).logits  # (B, L, V)
            slot = torch.as_tensor(enc.lengths[idx] - 2, device=self.device)
            p = logits[
                torch.arange(len(idx), device=self.device),
                slot,
                TYPE_OFFSET : TYPE_OFFSET + NUM_TYPES,
            ]
            p = p.float().softmax(-1).cpu().numpy()
            np.maximum.at(probs, enc.seq_index[idx], p)
        return probs / probs.sum(1, keepdims=True)

    def predict(self, seqs: Sequence[str], top_k: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Top-k type token ids (N, k) and their renormalised probabilities (N, k)."""
        return top_types(self.type_probs(seqs), top_k)


def top_types(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28) type probabilities → the top-k type token ids (N, k) and their renormalised
    probabilities (N, k), most probable first (ties: the lower token id)."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(probs, top, 1)
    return top + TYPE_OFFSET, w / w.sum(1, keepdims=True)


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


@dataclass
class _Typed:
    """Per-sequence type tokens (N, k) and weights (N, k); k = 1 with weight 1 when unguided."""

    tokens: np.ndarray | None
    weights: np.ndarray


def _typing(seqs: Sequence[str], indicator: TypeIndicator | None, top_k: int) -> _Typed:
    if indicator is None:
        return _Typed(None, np.ones((len(seqs), 1), np.float32))
    t, w = indicator.predict(seqs, top_k)
    return _Typed(t, w.astype(np.float32))


def _subset(typed: _Typed, idx) -> _Typed:
    """The rows ``idx`` of a typing."""
    return _Typed(None if typed.tokens is None else typed.tokens[idx], typed.weights[idx])


def _encode_k(tok: Tokenizer, seqs: list[str], typed: _Typed, k: int):
    types = None if typed.tokens is None else typed.tokens[:, k].tolist()
    return tok.encode_batch(seqs, types=types, truncate=True, replace_invalid=True)


def _typed_mix(fn, tok: Tokenizer, seqs: list[str], typed: _Typed, device) -> Tensor:
    """Weighted sum over the k typed inputs of ``fn(input_ids, attention_mask)`` → (B, ...)."""
    total = None
    for k in range(typed.weights.shape[1]):
        enc = _encode_k(tok, seqs, typed, k)
        ids = torch.from_numpy(enc.input_ids).to(device)
        mask = torch.from_numpy(enc.attention_mask).to(device)
        out = fn(ids, mask)
        w = torch.from_numpy(typed.weights[:, k]).to(device, out.dtype)
        w = w.reshape(-1, *([1] * (out.dim() - 1)))
        total = out * w if total is None else total + out * w
    return total


def _classifier_logits(model, tok, seqs, typed: _Typed, idx, device, corrupt=None) -> Tensor:
    """Probability-weighted sum over the k typed inputs of the classifier logits (B, C);
    ``corrupt`` (``ids -> ids``), when given, alters each input first (training augmentation)."""
    return _typed_mix(
        lambda ids, mask: model(ids if corrupt is None else corrupt(ids), mask).logits,
        tok,
        [seqs[i] for i in idx],
        _subset(typed, idx),
        device,
    )


def _random_crops(seqs: list[str], width: int, rng: np.random.Generator) -> list[str]:
    """Each sequence longer than ``width`` cut to a window at a random offset (the rest as they are)."""
    return [
        s if len(s) <= width else s[(o := int(rng.integers(0, len(s) - width + 1))) : o + width]
        for s in seqs
    ]


def _nucleotide_masker(prob: float, seed: int) -> Callable[[Tensor], Tensor]:
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


def _frozen_indicator(
    pretrained: str | Path | None, type_guided: bool, device
) -> TypeIndicator | None:
    """The type indicator of a type-guided fine-tuning (``None`` when unguided)."""
    if not type_guided:
        return None
    if pretrained is None:
        raise ValueError("type-guided fine-tuning needs a pretrained model (the indicator)")
    return TypeIndicator(RnaErnieForPreTraining.from_pretrained(pretrained), device=device)


def _optimizer_step(model, loss: Tensor, opt, sched) -> None:
    """Backward, clip the gradient norm to 1, step the optimizer and the schedule, clear gradients."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.progress.step += 1
    sched.step()
    opt.zero_grad(set_to_none=True)


class _Progress:
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


def _training_batches(
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


def _shuffled_batches(lengths, batch_tokens: int, seed: int) -> Callable[[int], list[np.ndarray]]:
    """``epoch -> that epoch's batches`` of :func:`_batches_by_tokens`, shuffled with a seed of
    their own (for :func:`_training_batches`)."""
    return lambda ep: _batches_by_tokens(lengths, batch_tokens, shuffle=True, seed=seed * 1000 + ep)


def _schedule(opt, total_steps: int, warmup_frac: float, max_minutes: float | None = None):
    """Linear warm-up over the first ``warmup_frac`` of the run, then linear decay to zero, on
    :class:`_Progress` (``.progress`` of the returned scheduler; ``_optimizer_step`` advances it)."""
    progress = _Progress(total_steps, max_minutes)
    first = 1.0 / progress.total

    def f(_: int) -> float:
        p = progress()
        if p < warmup_frac:
            return min(1.0, (p + first) / warmup_frac)
        return max(0.0, (1.0 - p) / max(1e-9, 1.0 - warmup_frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    sched.progress = progress  # type: ignore[attr-defined]
    return sched


_DROPOUTS = ("hidden_dropout", "attention_dropout", "classifier_dropout")


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
) -> tuple[RnaErnieForSequenceClassification, TypeIndicator | None]:
    """Fine-tune a sequence classifier from ``pretrained`` (``None``: from scratch, preset ``preset``).

    With type guidance, training uses the top ``train_top_k`` types (cheaper: the model runs once per
    kept type) and prediction the top ``top_k``. Returns the model and the indicator (``None`` when
    unguided). ``max_minutes`` caps the wall time; the LR schedule then decays to zero by the cap.
    ``dropout`` (e.g. 0.1) sets the hidden, attention and classifier dropout of the fine-tuned model
    (default: the pretrained config's; the shipped base's is 0.1). ``mask_prob`` > 0 replaces that
    fraction of the training inputs' nucleotides by ``[MASK]``, fresh at every step (augmentation).
    """
    from .config import RnaErnieConfig

    corrupt = _nucleotide_masker(mask_prob, seed) if mask_prob != 0 else None

    torch.manual_seed(seed)
    n_labels = len(label_names)
    drop = {} if dropout is None else dict.fromkeys(_DROPOUTS, dropout)
    if pretrained is None:
        model = RnaErnieForSequenceClassification(
            RnaErnieConfig.preset(preset, num_labels=n_labels, **drop)
        )
    else:
        cfg = RnaErnieConfig.from_json_file(Path(pretrained) / "config.json")
        cfg.num_labels = n_labels
        for k, v in drop.items():
            setattr(cfg, k, v)
        model = RnaErnieForSequenceClassification.from_pretrained(pretrained, cfg)
    model.to(device)
    indicator = _frozen_indicator(pretrained, type_guided, device)
    full = list(train_seqs)
    typed = _typing(full, indicator, train_top_k)
    tok = Tokenizer()
    lengths = [min(len(s), MAX_NUC) + 4 for s in full]
    steps_per_epoch = len(_batches_by_tokens(lengths, batch_tokens, shuffle=False))
    total = epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = _schedule(opt, total, 0.1, max_minutes)
    y = torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
    model.train()
    from tqdm.auto import tqdm

    crops_epoch = -1
    batches = _shuffled_batches(lengths, batch_tokens, seed)
    with tqdm(total=total, desc="finetune classifier", unit="step", dynamic_ncols=True) as bar:
        for ep, idx in _training_batches(epochs, batches, sched, "finetune_classifier"):
            if ep != crops_epoch:  # a new random window of each long sequence every epoch
                seqs = _random_crops(full, MAX_NUC, np.random.default_rng([seed, ep]))
                crops_epoch = ep
            logits = _classifier_logits(model, tok, seqs, typed, idx, device, corrupt)
            loss = F.cross_entropy(logits, y[idx].to(device))
            _optimizer_step(model, loss, opt, sched)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    if out is not None:
        out = Path(out)
        model.config.extra = {
            **model.config.extra,
            "type_guided": type_guided,
            "top_k": top_k,
            "labels": list(label_names),
        }
        model.save_pretrained(out)
        (out / "labels.json").write_text(json.dumps(list(label_names)) + "\n")
    return model, indicator


@torch.inference_mode()
def predict_classifier(
    model: RnaErnieForSequenceClassification,
    seqs: Sequence[str],
    *,
    indicator: TypeIndicator | None = None,
    top_k: int = 3,
    batch_tokens: int = 16384,
    device: str = "cpu",
    max_windows: int | None = None,
) -> np.ndarray:
    """Class probabilities (N, C); type-guided (k typed passes, weighted logits) when given an indicator.

    Long sequences are read in half-overlapping windows (510 nt, 508 when typed, as
    :meth:`rnaernie.api.RnaErnie.classify` does), at most ``max_windows`` of them evenly spread
    (``None``: all); a sequence's probabilities are the mean over its windows of the softmax of the
    (type-mixed) window logits.
    """
    model.eval()
    seqs = list(seqs)
    typed = _typing(seqs, indicator, top_k)
    width = MAX_NUC if typed.tokens is not None else MAX_NUC + 2
    tok = Tokenizer()
    mixed = None
    for k in range(typed.weights.shape[1]):
        types = None if typed.tokens is None else typed.tokens[:, k].tolist()
        enc = tok.encode_batch(
            seqs, types=types, window=width, stride=width // 2, replace_invalid=True
        ).spread(max_windows)
        rows = np.zeros((len(enc.lengths), model.config.num_labels), np.float32)
        lengths = enc.lengths.tolist()
        for idx in _batches_by_tokens(lengths, batch_tokens, shuffle=False):
            n = max(lengths[i] for i in idx)
            ids = torch.from_numpy(enc.input_ids[idx, :n]).to(device)
            mask = torch.from_numpy(enc.attention_mask[idx, :n]).to(device)
            rows[idx] = model(ids, mask).logits.float().cpu().numpy()
        rows *= typed.weights[enc.seq_index, k][:, None]
        mixed = rows if mixed is None else mixed + rows
    probs = torch.from_numpy(mixed).softmax(-1).numpy()
    out = np.zeros((len(seqs), model.config.num_labels), np.float64)
    np.add.at(out, enc.seq_index, probs)
    counts = np.bincount(enc.seq_index, minlength=len(seqs)).clip(min=1)
    return (out / counts[:, None]).astype(np.float32)


def evaluate_classifier(probs: np.ndarray, labels: np.ndarray) -> dict:
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


# ----------------------------------------------------------------------------- structure


def _contact_labels(records, idx, L: int) -> Tensor:
    lab = torch.full((len(idx), L, L), -100, dtype=torch.float32)
    for b, i in enumerate(idx):
        n = len(records[i].sequence)
        lab[b, :n, :n] = 0
        p = np.asarray(records[i].pairs, dtype=np.int64).reshape(-1, 2)
        if len(p):
            lab[b, p[:, 0], p[:, 1]] = 1
            lab[b, p[:, 1], p[:, 0]] = 1
    return lab


def _contact_inputs(tok: Tokenizer, seqs: list[str], typed: _Typed, device):
    """Model arguments for a batch: ``(input_ids, attention_mask)`` of ``[CLS] seq [SEP]``, or, when
    typed, the (K, B, T) stacks of the K typed inputs plus ``type_weights`` (B, K)."""
    if typed.tokens is None:
        enc = tok.encode_batch(seqs, replace_invalid=True)
        return {
            "input_ids": torch.from_numpy(enc.input_ids).to(device),
            "attention_mask": torch.from_numpy(enc.attention_mask).to(device),
        }
    encs = [_encode_k(tok, seqs, typed, k) for k in range(typed.weights.shape[1])]
    return {
        "input_ids": torch.from_numpy(np.stack([e.input_ids for e in encs])).to(device),
        "attention_mask": torch.from_numpy(np.stack([e.attention_mask for e in encs])).to(device),
        "type_weights": torch.from_numpy(typed.weights).to(device),
    }


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
) -> tuple[RnaErnieForContactPrediction, TypeIndicator | None]:
    """Train the pair-logit head (and the encoder) on structure records (``.sequence``, ``.pairs``).

    Records longer than ``max_length`` are left out of training (the L×L head's cost grows as L²);
    ``pos_weight`` up-weights the rare paired entries in the BCE loss. With ``type_guided``, the
    pair head reads the weighted mean of the encodings with the indicator's top types in the slot
    (``train_top_k`` of them in training, ``top_k`` at prediction). Returns the model and the
    indicator (``None`` when unguided). ``max_minutes`` caps the wall time; the LR schedule then
    decays to zero by the cap.
    """
    from .config import RnaErnieConfig

    torch.manual_seed(seed)
    if pretrained is None:
        model = RnaErnieForContactPrediction(RnaErnieConfig.preset(preset))
    else:
        model = RnaErnieForContactPrediction.from_pretrained(pretrained)
    model.to(device).train()
    recs = [r for r in train_records if 0 < len(r.sequence) <= min(max_length, MAX_NUC)]
    indicator = _frozen_indicator(pretrained, type_guided, device)
    typed = _typing([r.sequence for r in recs], indicator, train_top_k)
    tok = Tokenizer()
    lengths = [len(r.sequence) + 4 for r in recs]
    total = epochs * len(_batches_by_tokens(lengths, batch_tokens, shuffle=False))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = _schedule(opt, total, 0.05, max_minutes)
    from tqdm.auto import tqdm

    pw = torch.tensor(pos_weight, device=device)
    batches = _shuffled_batches(lengths, batch_tokens, seed)
    with tqdm(total=total, desc="finetune structure", unit="step", dynamic_ncols=True) as bar:
        for _, idx in _training_batches(epochs, batches, sched, "finetune_structure"):
            args = _contact_inputs(
                tok, [recs[i].sequence for i in idx], _subset(typed, idx), device
            )
            o = model(**args)
            lab = _contact_labels(recs, idx, args["input_ids"].shape[-1] - 2).to(device)
            keep = o.pair_mask & (lab >= 0)
            loss = F.binary_cross_entropy_with_logits(
                o.logits[keep].float(), lab[keep], pos_weight=pw
            )
            _optimizer_step(model, loss, opt, sched)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    model.eval()
    model.config.extra = {**model.config.extra, "type_guided": type_guided, "top_k": top_k}
    if out is not None:
        model.save_pretrained(out)
    return model, indicator


@torch.inference_mode()
def predict_pair_logits(
    model: RnaErnieForContactPrediction,
    seqs: Sequence[str],
    *,
    indicator: TypeIndicator | None = None,
    top_k: int = 3,
    batch_tokens: int = 8192,
    device: str = "cpu",
) -> list[np.ndarray]:
    """Pair logits (L_i, L_i) float32 per sequence (type-guided when given an indicator).

    Sequences longer than 510 nt (508 when type-guided) are read in windows of that length every
    half window, stitched by :func:`~rnaernie.inference.stitch_pair_windows` (pairs that no
    window holds get a logit of -1e4).
    """
    model.eval()
    seqs = ["".join(s.split()) for s in seqs]  # the tokenizer's coordinates skip whitespace
    typed = _typing(seqs, indicator, top_k)
    tok = Tokenizer()
    width = MAX_NUC if typed.tokens is not None else MAX_NUC + 2
    plan = tok.encode_batch(seqs, window=width, stride=width // 2, replace_invalid=True)
    pieces = [seqs[i][a:b] for i, a, b in zip(plan.seq_index, plan.start, plan.end)]
    typed_rows = _subset(typed, plan.seq_index)
    lengths = [len(s) + 4 for s in pieces]
    rows: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(pieces)
    for idx in _batches_by_tokens(lengths, batch_tokens, shuffle=False):
        o = model(
            **_contact_inputs(tok, [pieces[i] for i in idx], _subset(typed_rows, idx), device)
        )
        z = o.logits.float().cpu().numpy()
        for b, i in enumerate(idx):
            n = len(pieces[i])
            rows[i] = np.ascontiguousarray(z[b, :n, :n])
    bounds = np.searchsorted(plan.seq_index, np.arange(len(seqs) + 1))  # rows are grouped
    return [
        stitch_pair_windows(len(s), plan.start[a:b].tolist(), rows[a:b])
        for s, a, b in zip(seqs, bounds[:-1], bounds[1:])
    ]


def evaluate_structure(
    logits: Sequence[np.ndarray], records: Sequence, *, threshold: float = 0.0, threads: int = 0
) -> dict:
    """Decode with the C++ Nussinov decoder and report mean per-sequence F1 (exact and ±1 shift)."""
    from .structure import decode_batch, f1

    res = decode_batch(
        [r.sequence for r in records],
        list(logits),
        threshold=threshold,
        num_threads=threads or None,
    )
    f_exact = [f1(p.pairs, r.pairs) for p, r in zip(res, records)]
    f_shift = [f1(p.pairs, r.pairs, shift=1) for p, r in zip(res, records)]
    return {
        "f1": float(np.mean(f_exact)),
        "f1_shift1": float(np.mean(f_shift)),
        "n": len(records),
        "threshold": threshold,
    }


def main(argv: list[str] | None = None) -> int:
    """``rnaernie finetune {classify,structure,interact} ...``"""
    import argparse

    p = argparse.ArgumentParser(
        prog="rnaernie finetune", description="Fine-tune a task head from a pretrained model."
    )
    sub = p.add_subparsers(dest="task", required=True)
    c = sub.add_parser(
        "classify",
        help="sequence classification; FASTA with the class name as first word of each description (nRC format)",
    )
    c.add_argument("train", help="training FASTA")
    c.add_argument("--test", help="test FASTA to report accuracy / macro-F1 on")
    c.add_argument("--no-type-guidance", action="store_true", help="plain [CLS] seq [SEP] inputs")
    c.add_argument("--top-k", type=int, default=3, help="types mixed at prediction time")
    c.add_argument("--train-top-k", type=int, default=1, help="types mixed during training")
    c.add_argument("--epochs", type=int, default=3)
    c.add_argument("--lr", type=float, default=1e-4)
    c.add_argument(
        "--dropout",
        type=float,
        default=None,
        help="hidden, attention and classifier dropout while fine-tuning (default: the pretrained config's)",
    )
    c.add_argument(
        "--mask-prob",
        type=float,
        default=0.0,
        help="augmentation: replace this fraction of the training nucleotides by [MASK], fresh each step",
    )
    c.add_argument(
        "--valid-fraction",
        type=float,
        default=None,
        help="hold out this fraction of each training class and report its metrics (metrics.json: valid)",
    )
    c.add_argument(
        "--kmer",
        action="store_true",
        help="also fit the k-mer classifier (k-mer spectrum + logistic regression; needs scikit-learn) "
        "on the training sequences and store it with the head, as `classify` multiplies its "
        "probabilities with the model's; metrics.json gains `kmer` and `kmer_hybrid`",
    )
    c.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="read at most this many evenly spread windows of a long sequence at prediction time "
        "(stored in the head's config; default: all)",
    )
    s = sub.add_parser("structure", help="pair-logit head; dot-bracket FASTA (3-line records)")
    s.add_argument("train", help="training .dbn (e.g. bpRNA TR0)")
    s.add_argument("--valid", help="validation .dbn: choose the decoder threshold on it (e.g. VL0)")
    s.add_argument("--test", help="test .dbn to report mean per-sequence F1 on")
    s.add_argument("--epochs", type=int, default=1)
    s.add_argument("--lr", type=float, default=3e-4)
    s.add_argument("--max-length", type=int, default=300, help="longest training sequence")
    s.add_argument("--type-guided", action="store_true", help="type-guided pair head")
    s.add_argument("--top-k", type=int, default=3, help="types mixed at prediction time (guided)")
    i = sub.add_parser(
        "interact",
        help="miRNA–target interaction (two-tower); MirTarRAW CSV a_name,a_seq,b_name,b_seq,label",
        description="Fine-tune on MirTarRAW. --split official: train.csv.gz / test.csv.gz of the "
        "data folder (RNAErnie's split); --split grouped: a stratified 80/20 split of "
        "MirTarRAW.csv.gz in which duplicated pairs never straddle train and test. The miRNA "
        "column, stored 3'->5' in the file, is reversed to 5'->3'.",
    )
    i.add_argument("data", help="folder with MirTarRAW.csv.gz, train.csv.gz, test.csv.gz")
    i.add_argument("--split", choices=["official", "grouped"], default="grouped")
    i.add_argument("--type-guided", action="store_true", help="type-guided pooled embeddings")
    i.add_argument("--top-k", type=int, default=3, help="types mixed at prediction time (guided)")
    i.add_argument("--epochs", type=int, default=3)
    i.add_argument("--lr", type=float, default=2e-4)
    i.add_argument("--batch-size", type=int, default=64, help="pairs per step")
    for q in (c, s, i):
        q.add_argument(
            "--pretrained", help="pretrained model directory ('' = from scratch)", default=""
        )
        q.add_argument("--preset", default="tiny", help="model size when training from scratch")
        q.add_argument("--out", required=True, help="output directory for the fine-tuned model")
        q.add_argument("--batch-tokens", type=int, default=None)
        q.add_argument(
            "--max-minutes",
            type=float,
            default=None,
            help="wall-time cap; the learning rate decays to zero by the cap or by the last epoch, whichever comes first",
        )
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    pre = a.pretrained or None
    out = Path(a.out)
    if a.task == "classify":
        seqs, y, names = read_labelled_fasta(a.train)
        held = np.zeros(0, dtype=np.int64)
        if a.valid_fraction is not None:
            held = stratified_holdout(y, a.valid_fraction, seed=a.seed)
        keep = np.setdiff1d(np.arange(len(seqs)), held)
        model, ind = finetune_classifier(
            pre, [seqs[i] for i in keep], y[keep], names, out=out, preset=a.preset,
            type_guided=not a.no_type_guidance, top_k=a.top_k, train_top_k=a.train_top_k,
            epochs=a.epochs, lr=a.lr, batch_tokens=a.batch_tokens or 8192, seed=a.seed,
            device=a.device, max_minutes=a.max_minutes, dropout=a.dropout, mask_prob=a.mask_prob,
        )  # fmt: skip
        if a.max_windows is not None:
            model.config.extra = {**model.config.extra, "max_windows": a.max_windows}
            model.save_pretrained(out)
        expert = None
        if a.kmer:
            from .kmer import KmerClassifier

            expert = KmerClassifier.fit(
                [seqs[i] for i in keep], y[keep], names, replace_invalid=True
            )
            expert.save(out)

        def score(sq, labels) -> dict:
            p = predict_classifier(
                model, sq, indicator=ind, top_k=a.top_k, device=a.device, max_windows=a.max_windows
            )
            res = evaluate_classifier(p, labels)
            if expert is not None:
                from .kmer import combine_experts

                pk = expert.predict_proba(sq, replace_invalid=True)
                res["kmer"] = evaluate_classifier(pk, labels)
                res["kmer_hybrid"] = evaluate_classifier(combine_experts(p, pk), labels)
            return res

        m: dict = {}
        if a.test:
            ts, ty, _ = read_labelled_fasta(a.test, labels=names)
            m = score(ts, ty)
        if len(held):
            m["valid"] = {**score([seqs[i] for i in held], y[held]), "n": len(held)}
        if m:
            (out / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
            print(json.dumps(m))
        return 0
    if a.task == "interact":
        from .interaction import (
            finetune_interaction,
            interaction_split,
            predict_interaction,
        )

        train, test = interaction_split(Path(a.data), a.split, seed=a.seed)
        model, ind = finetune_interaction(
            pre, train, out=out, preset=a.preset, type_guided=a.type_guided, top_k=a.top_k,
            epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, seed=a.seed, device=a.device,
            max_minutes=a.max_minutes, split=a.split,
        )  # fmt: skip
        p = predict_interaction(model, test, indicator=ind, top_k=a.top_k, device=a.device)
        m = {**evaluate_classifier(p, test.labels), "split": a.split, "n_test": len(test)}
        (out / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
        print(json.dumps(m))
        return 0
    from .evaluate import _model_structure, choose_decoding
    from .structure import read_dbn

    model, ind = finetune_structure(
        pre, read_dbn(a.train), preset=a.preset, epochs=a.epochs, lr=a.lr, batch_tokens=a.batch_tokens or 4096,
        max_length=a.max_length, type_guided=a.type_guided, top_k=a.top_k, seed=a.seed,
        device=a.device, max_minutes=a.max_minutes,
    )  # fmt: skip
    thr, nlp = (
        choose_decoding(model, read_dbn(a.valid), a.device, indicator=ind)
        if a.valid
        else (0.0, False)
    )
    model.config.extra = {
        **model.config.extra,
        "decode_threshold": thr,
        "decode_no_lonely_pairs": nlp,
    }
    model.save_pretrained(out)
    if a.test:
        m = _model_structure(model, read_dbn(a.test), a.device, indicator=ind)
        (out / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
        print(json.dumps(m))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
