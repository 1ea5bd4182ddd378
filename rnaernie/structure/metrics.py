"""Base-pair metrics: precision, recall, F1 and MCC per sequence, exact or with a ±1 shift.

Conventions:

* ``pred`` and ``true`` are pair lists ``(n, 2)`` (any order within a pair) or dot-bracket strings.
* ``shift=1``: a predicted pair ``(i, j)`` is correct if ``(i, j)``, ``(i±1, j)`` or ``(i, j±1)`` is a
  true pair (the ±1 tolerance of Mathews 1999, as in E2Efold/UFold's ``evaluate_shifted``):
  ``TP`` = correct predicted pairs, ``FP = n_pred - TP``, ``FN = max(n_true - TP, 0)``.
* Precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``, F1 ``2TP / (2TP + FP + FN)``, and MCC over all
  ``L (L - 1) / 2`` possible pairs. When both structures are empty every metric is 1.0; when only
  one is empty every metric is 0.0.
* :func:`mean_f1` is the mean of per-sequence F1 (not F1 of pooled counts), as RNAErnie, SPOT-RNA
  and MXfold2 report it.

Example:
    >>> f1("((...))", "((...))")
    1.0
    >>> f1("(((...)))", ".((...)).", shift=1)
    0.8
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .dotbracket import PairsLike, dot_bracket_to_pairs

__all__ = ["confusion", "f1", "mcc", "mean_f1", "precision", "recall"]

StructureLike = PairsLike | str


def _pair_set(x: StructureLike) -> set[tuple[int, int]]:
    arr = dot_bracket_to_pairs(x) if isinstance(x, str) else np.asarray(x)
    if arr.size == 0:
        return set()
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"pairs must have shape (n, 2), got {arr.shape}")
    return {(min(a, b), max(a, b)) for a, b in arr.tolist()}


def confusion(pred: StructureLike, true: StructureLike, *, shift: int = 0) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` of predicted against true base pairs (``shift`` 0 or 1)."""
    if shift not in (0, 1):
        raise ValueError(f"shift must be 0 or 1, got {shift!r}")
    p, t = _pair_set(pred), _pair_set(true)
    if shift == 0:
        tp = len(p & t)
    else:
        moves = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
        tp = sum(any((i + di, j + dj) in t for di, dj in moves) for i, j in p)
    return tp, len(p) - tp, max(len(t) - tp, 0)


def _ratio(num: float, den: float, tp: int, fp: int, fn: int) -> float:
    if den == 0:
        return 1.0 if tp + fp + fn == 0 else 0.0
    return num / den


def precision(pred: StructureLike, true: StructureLike, *, shift: int = 0) -> float:
    """``TP / (TP + FP)``; 1.0 if both are empty, 0.0 if only one is."""
    tp, fp, fn = confusion(pred, true, shift=shift)
    return _ratio(tp, tp + fp, tp, fp, fn)


def recall(pred: StructureLike, true: StructureLike, *, shift: int = 0) -> float:
    """``TP / (TP + FN)``; 1.0 if both are empty, 0.0 if only one is."""
    tp, fp, fn = confusion(pred, true, shift=shift)
    return _ratio(tp, tp + fn, tp, fp, fn)


def f1(pred: StructureLike, true: StructureLike, *, shift: int = 0) -> float:
    """``2TP / (2TP + FP + FN)``; 1.0 if both are empty."""
    tp, fp, fn = confusion(pred, true, shift=shift)
    return _ratio(2 * tp, 2 * tp + fp + fn, tp, fp, fn)


def mcc(pred: StructureLike, true: StructureLike, length: int, *, shift: int = 0) -> float:
    """Matthews correlation over all ``length * (length - 1) / 2`` possible pairs."""
    tp, fp, fn = confusion(pred, true, shift=shift)
    tn = length * (length - 1) // 2 - tp - fp - fn
    if tn < 0:
        raise ValueError(f"length {length} is too small for the given pairs")
    den = math.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return _ratio(tp * tn - fp * fn, den, tp, fp, fn)


def mean_f1(
    preds: Sequence[StructureLike], trues: Sequence[StructureLike], *, shift: int = 0
) -> float:
    """Mean of per-sequence F1 over a set (``nan`` for an empty set)."""
    if len(preds) != len(trues):
        raise ValueError(f"got {len(preds)} predictions but {len(trues)} true structures")
    if not preds:
        return math.nan
    return float(np.mean([f1(p, t, shift=shift) for p, t in zip(preds, trues)]))
