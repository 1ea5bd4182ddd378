"""Motif-aware masked-language-model masking (RNAErnie's three levels), backed by the C++ core.

One level is drawn per row among those enabled:

* ``base`` — single tokens, as BERT;
* ``subsequence`` — contiguous spans of 5–8 nucleotides with p(k) ∝ 1/(k−4), as ERNIE;
* ``motif`` — whole occurrences of known motifs: database motifs (ATtRACT, SpliceAid-F) first in
  random order, then statistical k-mers in text order, non-overlapping.

The budget per row is ``min(max_predictions, max(1, round(0.15 · n)))`` for ``n`` maskable tokens
(nucleotides and ``[UNK]``; special and type tokens are never masked), as in the official code.
Selected positions get 80 % ``[MASK]`` / 10 % a random nucleotide / 10 % unchanged.

Deviations from the official code, on purpose: subsequence spans are shortened to fit the remaining
budget (the official code masks nothing at that level in sequences under ~34 nt); motifs are matched
after T→U normalisation (the official code matched only motifs without T).

Example:
    >>> from rnaernie import Tokenizer
    >>> from rnaernie.masking import mask_batch
    >>> enc = Tokenizer().encode_batch(["ACGUACGUACGUAAGG"])
    >>> out = mask_batch(enc.input_ids, seed=0)
    >>> out.input_ids.shape == out.labels.shape == enc.input_ids.shape
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import _core
from .motifs import MotifMatcher

__all__ = ["LEVELS", "MaskedBatch", "apply_mlm_replacement", "mask_batch", "select_mask_positions"]

LEVELS: tuple[str, ...] = ("base", "subsequence", "motif")


@dataclass(frozen=True)
class MaskedBatch:
    input_ids: np.ndarray  # (B, L) int64, with replacements applied
    labels: np.ndarray  # (B, L) int64, original id where selected, -100 elsewhere
    selected: np.ndarray  # (B, L) bool
    level: np.ndarray  # (B,) int8: index into LEVELS


def _as_ids(input_ids: np.ndarray) -> np.ndarray:
    arr = np.asarray(input_ids)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"input_ids must be integer token ids, got dtype {arr.dtype}")
    ids = np.ascontiguousarray(arr, dtype=np.int64)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be 2-D (batch, length), got shape {ids.shape}")
    return ids


def select_mask_positions(
    input_ids: np.ndarray,
    *,
    seed: int,
    levels: Sequence[str] = LEVELS,
    matcher: MotifMatcher | None = None,
    mask_prob: float = 0.15,
    max_predictions: int = 77,
    span_min: int = 5,
    span_max: int = 8,
    threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose positions to mask. Returns ``selected`` (B, L) bool and ``level`` (B,) int8.

    Deterministic in ``(seed, row index)``; ``matcher`` defaults to :meth:`MotifMatcher.default`.
    """
    unknown = set(levels) - set(LEVELS)
    if unknown or not levels:
        raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {tuple(levels)}")
    if "motif" in levels and matcher is None:
        matcher = MotifMatcher.default()
    core = matcher._core if matcher is not None else None
    tiers = matcher.tiers.tolist() if matcher is not None else []
    return _core.select_mask_positions(
        _as_ids(input_ids),
        core,
        tiers,
        seed=int(seed) % 2**64,
        mask_prob=mask_prob,
        max_predictions=max_predictions,
        span_min=span_min,
        span_max=span_max,
        base="base" in levels,
        subsequence="subsequence" in levels,
        motif="motif" in levels,
        threads=threads,
    )


def apply_mlm_replacement(
    input_ids: np.ndarray, selected: np.ndarray, *, seed: int, threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """80/10/10 replacement on ``selected`` positions; returns ``(masked_ids, labels)``.

    Uses the counter-based hash shared with the Triton kernel ``rnaernie.kernels.masking.mlm_mask``,
    so CPU and GPU give identical numbers for the same seed.
    """
    sel = np.ascontiguousarray(selected, dtype=bool)
    return _core.apply_mlm_replacement(
        _as_ids(input_ids), sel, seed=int(seed) % 2**32, threads=threads
    )


def mask_batch(input_ids: np.ndarray, *, seed: int, **kwargs) -> MaskedBatch:
    """Select positions (see :func:`select_mask_positions`) and apply the replacement in one call."""
    threads = kwargs.get("threads", 0)
    selected, level = select_mask_positions(input_ids, seed=seed, **kwargs)
    masked, labels = apply_mlm_replacement(input_ids, selected, seed=seed, threads=threads)
    return MaskedBatch(masked, labels, selected, level)
