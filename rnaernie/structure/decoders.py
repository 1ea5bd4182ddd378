"""Structure decoders over an ``(L, L)`` pair-score matrix: thin wrappers over ``rnaernie._core``.

Conventions (shared by the C++ decoders and the Python references in :mod:`.reference`):

* Only the upper triangle ``scores[i, j]`` with ``i < j`` is read; the diagonal and the lower
  triangle are ignored. Symmetrise first (``(S + S.T) / 2``) if your model does not.
* ``kind="logits"`` (default threshold 0.0, i.e. probability 0.5) or ``kind="probs"`` (default
  threshold 0.5). ``kind`` only sets the default threshold; the scores are used as given.
* A pair ``(i, j)`` may be chosen only if ``scores[i, j] > threshold``, ``j - i - 1 >= min_loop``
  and, with ``canonical_only``, the bases form AU, GC or GU (either orientation, case-insensitive,
  T counts as U; ``N`` and other letters never pair canonically).
* :func:`decode` maximises ``sum(scores[i, j] - threshold)`` over nested (pseudoknot-free) sets of such
  pairs. ``no_lonely_pairs=True`` also requires every pair to stack on ``(i+1, j-1)`` or ``(i-1, j+1)``.
* ``constraint`` is a ViennaRNA-style hard-constraint string of the sequence's length:
  ``.`` no constraint; ``x`` unpaired; ``|`` paired with any allowed partner; ``<`` paired downstream
  (the base is the 5' end of its pair); ``>`` paired upstream (the 3' end); ``(`` ``)`` paired with
  each other (matched like brackets). Positions marked ``| < > ( )`` must pair, and their pairs are
  exempt from the threshold (a forced base may take a pair scoring below it). Forced ``( )`` pairs
  are also exempt from ``canonical_only`` and ``no_lonely_pairs``, but must respect ``min_loop``.
  Unlike ViennaRNA's default, ``<`` and ``>`` enforce pairing (ViennaRNA needs
  ``CONSTRAINT_DB_ENFORCE_BP`` for that). If no structure satisfies the constraint, ``ValueError``.
* The DP accumulates in float32, so among structures whose totals differ by less than float32
  rounding (about 1e-6 relative) any may be returned; ``score`` is recomputed in float64.
* Score matrices: numpy arrays or CPU torch tensors of a floating dtype (float32 is used without a
  copy; other float dtypes are converted). Integer, bool, complex and object dtypes are rejected:
  integers are rarely meant as logits, so we refuse rather than cast silently.
* Every rejected input raises ``ValueError`` (batch calls name the batch index).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .dotbracket import pairs_to_dot_bracket

__all__ = ["StructureResult", "decode", "decode_batch", "decode_greedy"]

Kind = Literal["logits", "probs"]
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class StructureResult:
    """A decoded structure.

    Attributes:
        pairs: ``np.int64`` array ``(n, 2)``, 0-based ``i < j``, sorted by ``i``.
        dot_bracket: the structure as a string of length ``L`` (``[] {} <>`` for crossing pairs).
        score: ``sum(scores[i, j] - threshold)`` over the pairs (float64).
    """

    pairs: np.ndarray
    dot_bracket: str
    score: float

    def __len__(self) -> int:
        return len(self.dot_bracket)


def _core() -> Any:
    from rnaernie import _core

    return _core


def _as_matrix(scores: Any) -> np.ndarray:
    """A numpy view of ``scores`` (numpy array, array-like, or torch tensor, duck-typed)."""
    if hasattr(scores, "detach") and hasattr(
        scores, "numpy"
    ):  # torch.Tensor, without importing torch
        t = scores.detach()
        if getattr(t, "device", None) is not None and t.device.type != "cpu":
            t = t.cpu()
        if not t.is_floating_point():
            raise ValueError(f"scores must have a floating dtype, got {t.dtype}")
        try:
            return t.numpy()
        except TypeError:  # bfloat16 and other dtypes numpy lacks
            return t.float().numpy()
    try:
        return np.asarray(scores)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scores could not be read as an array: {exc}") from exc


def _as_seq(seq: Any, where: str = "") -> str:
    if isinstance(seq, bytes):
        seq = seq.decode("ascii", errors="replace")
    if not isinstance(seq, str):
        raise ValueError(f"{where}sequence must be a str, got {type(seq).__name__}")
    if not seq.isascii():
        raise ValueError(f"{where}sequence must be ASCII")
    return seq


def _as_constraint(constraint: Any, where: str = "") -> str | None:
    if constraint is None:
        return None
    if not isinstance(constraint, str):
        raise ValueError(
            f"{where}constraint must be a str or None, got {type(constraint).__name__}"
        )
    if not constraint.isascii():
        bad = next(p for p, ch in enumerate(constraint) if not ch.isascii())
        raise ValueError(
            f"{where}constraint: unknown symbol {constraint[bad]!r} at position {bad} "
            "(allowed: . x | < > ( ))"
        )
    return constraint


def _options(threshold: Any, kind: Any, min_loop: Any) -> tuple[float, int]:
    if kind not in ("logits", "probs"):
        raise ValueError(f"kind must be 'logits' or 'probs', got {kind!r}")
    if threshold is None:
        threshold = 0.0 if kind == "logits" else 0.5
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a real number, got {threshold!r}")
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    if isinstance(min_loop, bool) or not isinstance(min_loop, numbers.Integral):
        raise ValueError(f"min_loop must be an int, got {min_loop!r}")
    if not 0 <= int(min_loop) <= _INT32_MAX:
        raise ValueError(f"min_loop must be >= 0, got {min_loop}")
    return threshold, int(min_loop)


def _nested_result(pairs: np.ndarray, score: float, length: int) -> StructureResult:
    chars = np.full(length, ".", dtype="<U1")
    chars[pairs[:, 0]] = "("
    chars[pairs[:, 1]] = ")"
    return StructureResult(pairs, "".join(chars.tolist()), float(score))


def decode(
    seq: str,
    scores: Any,
    *,
    threshold: float | None = None,
    canonical_only: bool = True,
    min_loop: int = 3,
    no_lonely_pairs: bool = False,
    constraint: str | None = None,
    kind: Kind = "logits",
) -> StructureResult:
    """Best nested structure for one sequence (see the module docstring for the exact rules).

    Args:
        seq: sequence of length ``L`` (``ACGU``; other letters never pair canonically).
        scores: ``(L, L)`` floating pair scores; only ``scores[i, j]`` with ``i < j`` is read.
        threshold: pairs need ``score > threshold``; default 0.0 for logits, 0.5 for probs.
        canonical_only: allow only AU, GC, GU pairs.
        min_loop: minimum number of unpaired bases enclosed by a pair.
        no_lonely_pairs: every pair must stack on a neighbouring pair.
        constraint: ViennaRNA-style hard constraint (``. x | < > ( )``) of length ``L``.
        kind: ``"logits"`` or ``"probs"``: sets the default threshold.

    Returns:
        :class:`StructureResult` with ``pairs`` ``(n, 2)`` int64, ``dot_bracket`` and ``score``.

    Example:
        >>> import numpy as np
        >>> s = np.full((12, 12), -1.0, dtype=np.float32)
        >>> for k in range(4):
        ...     s[k, 11 - k] = 2.0
        >>> decode("GGGGAAAACCCC", s).dot_bracket
        '((((....))))'
    """
    seq = _as_seq(seq)
    thr, loop = _options(threshold, kind, min_loop)
    pairs, score = _core().structure_decode_nested(
        seq,
        _as_matrix(scores),
        thr,
        bool(canonical_only),
        loop,
        bool(no_lonely_pairs),
        _as_constraint(constraint),
    )
    return _nested_result(pairs, score, len(seq))


def decode_greedy(
    seq: str,
    scores: Any,
    *,
    threshold: float | None = None,
    canonical_only: bool = True,
    min_loop: int = 3,
    kind: Kind = "logits",
) -> StructureResult:
    """Greedy mutual-best-partner decoding (pseudoknots allowed), ``O(L^2)``.

    Among allowed pairs (``score > threshold``, ``j - i - 1 >= min_loop``, canonical if requested),
    ``(i, j)`` is kept when ``j`` is ``i``'s best-scoring partner and ``i`` is ``j``'s; ties go to the
    smaller partner index. ``dot_bracket`` writes crossing pairs with ``[] {} <>``.

    Example:
        >>> import numpy as np
        >>> s = np.full((12, 12), -1.0, dtype=np.float32)
        >>> s[0, 11] = s[1, 10] = 3.0
        >>> decode_greedy("GGGGAAAACCCC", s).pairs.tolist()
        [[0, 11], [1, 10]]
    """
    seq = _as_seq(seq)
    thr, loop = _options(threshold, kind, min_loop)
    pairs, score = _core().structure_decode_greedy(
        seq, _as_matrix(scores), thr, bool(canonical_only), loop
    )
    return StructureResult(pairs, pairs_to_dot_bracket(pairs, len(seq)), float(score))


def decode_batch(
    seqs: Sequence[str],
    scores_list: Sequence[Any],
    *,
    threshold: float | None = None,
    canonical_only: bool = True,
    min_loop: int = 3,
    no_lonely_pairs: bool = False,
    constraints: Sequence[str | None] | None = None,
    kind: Kind = "logits",
    method: Literal["nested", "greedy"] = "nested",
    num_threads: int | None = None,
) -> list[StructureResult]:
    """Decode a batch of sequences of different lengths on a thread pool (the GIL is released).

    Args:
        seqs: ``B`` sequences, lengths ``L_b``.
        scores_list: ``B`` score matrices, each ``(L_b, L_b)``.
        constraints: ``None`` or ``B`` constraint strings (or ``None`` entries); nested only.
        method: ``"nested"`` (:func:`decode`) or ``"greedy"`` (:func:`decode_greedy`).
        num_threads: worker threads; default ``os.cpu_count()``.
        Other arguments as in :func:`decode`.

    Returns:
        ``B`` :class:`StructureResult`, equal to the single calls. An invalid item raises
        ``ValueError`` starting with ``"batch index k: "``.

    Example:
        >>> import numpy as np
        >>> out = decode_batch(["GGGAAACCC", "ACGU"], [np.zeros((9, 9)), np.zeros((4, 4))])
        >>> [r.dot_bracket for r in out]
        ['.........', '....']
    """
    if method not in ("nested", "greedy"):
        raise ValueError(f"method must be 'nested' or 'greedy', got {method!r}")
    if isinstance(seqs, str) or not isinstance(seqs, Sequence):
        raise ValueError("seqs must be a sequence of str")
    seqs = [_as_seq(s, f"batch index {k}: ") for k, s in enumerate(seqs)]
    if not isinstance(scores_list, Sequence) and not (
        isinstance(scores_list, np.ndarray) and scores_list.ndim == 3
    ):
        raise ValueError("scores_list must be a sequence of (L, L) matrices")
    if len(scores_list) != len(seqs):
        raise ValueError(f"got {len(seqs)} sequences but {len(scores_list)} score matrices")
    mats = []
    for k, s in enumerate(scores_list):
        try:
            mats.append(_as_matrix(s))
        except ValueError as exc:
            raise ValueError(f"batch index {k}: {exc}") from exc
    if constraints is not None:
        if isinstance(constraints, str) or not isinstance(constraints, Sequence):
            raise ValueError("constraints must be a sequence of str or None")
        if method == "greedy" and any(c is not None for c in constraints):
            raise ValueError("constraints are supported by the nested decoder only")
        constraints = [_as_constraint(c, f"batch index {k}: ") for k, c in enumerate(constraints)]
    thr, loop = _options(threshold, kind, min_loop)
    if num_threads is None:
        num_threads = os.cpu_count() or 1
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise ValueError(f"num_threads must be an int, got {num_threads!r}")
    if not 1 <= int(num_threads) <= 4096:
        raise ValueError(f"num_threads must be in [1, 4096], got {num_threads}")
    raw = _core().structure_decode_batch(
        method == "greedy",
        seqs,
        mats,
        thr,
        bool(canonical_only),
        loop,
        bool(no_lonely_pairs),
        constraints,
        int(num_threads),
    )
    if method == "greedy":
        return [
            StructureResult(p, pairs_to_dot_bracket(p, len(s)), float(sc))
            for (p, sc), s in zip(raw, seqs)
        ]
    return [_nested_result(p, sc, len(s)) for (p, sc), s in zip(raw, seqs)]
