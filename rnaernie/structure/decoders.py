"""Structure decoders over an ``(L, L)`` pair-score matrix: thin wrappers over ``rnaernie._core``.

Every setting travels in one :class:`~rnaernie.structure.DecodeOptions` (``options.method`` picks
the decoder). Conventions (shared by the C++ decoders and the Python references in :mod:`.reference`):

* Only the upper triangle ``scores[i, j]`` with ``i < j`` is read; the diagonal and the lower
  triangle are ignored. Symmetrise first (``(S + S.T) / 2``) if your model does not.
* ``nested`` and ``greedy`` take any real scores (logits: threshold 0.0 is probability 0.5);
  ``mea`` and ``threshknot`` take base-pair probabilities in ``[0, 1]`` (else ``ValueError``).
* A pair ``(i, j)`` may be chosen only if ``scores[i, j] > threshold`` (``>=`` for threshknot),
  ``j - i - 1 >= min_loop`` and, with ``canonical_only``, the bases form AU, GC or GU (either
  orientation, case-insensitive, T counts as U; ``N`` and other letters never pair canonically).
* ``nested`` maximises ``sum(scores[i, j] - threshold)`` over nested (pseudoknot-free) sets of such
  pairs; ``mea`` maximises ``sum_{(i,j) paired} 2 gamma P_ij + sum_{i unpaired} q_i`` with
  ``q_i = 1 - sum_{j != i} P_ij`` (every ``P`` of the upper triangle, allowed or not).
  ``no_lonely_pairs=True`` also requires every pair to stack on ``(i+1, j-1)`` or ``(i-1, j+1)``.
* ``greedy`` / ``threshknot`` keep ``(i, j)`` when ``j`` is ``i``'s best allowed partner and ``i``
  is ``j``'s (ties go to the smaller index); crossing pairs are written with ``[] {} <>``.
* ``constraint`` (``nested`` and ``mea`` only) is a ViennaRNA-style hard-constraint string of the
  sequence's length: ``.`` no constraint; ``x`` unpaired; ``|`` paired with any allowed partner;
  ``<`` paired downstream (the base is the 5' end of its pair); ``>`` paired upstream (the 3' end);
  ``(`` ``)`` paired with each other (matched like brackets). Positions marked ``| < > ( )`` must
  pair, and their pairs are exempt from the threshold (a forced base may take a pair scoring below
  it). Forced ``( )`` pairs are also exempt from ``canonical_only`` and ``no_lonely_pairs``, but
  must respect ``min_loop``. Unlike ViennaRNA's default, ``<`` and ``>`` enforce pairing (ViennaRNA
  needs ``CONSTRAINT_DB_ENFORCE_BP`` for that). If no structure satisfies it, ``ValueError``.
* The DPs accumulate in float64 (scores near the float32 maximum cannot overflow them).
* Score matrices: numpy arrays or CPU torch tensors of a floating dtype (float32 is used without a
  copy; other float dtypes are converted to float32). Integer, bool, complex and object dtypes are
  rejected: integers are rarely meant as logits, so we refuse rather than cast silently.
* Every rejected input raises ``ValueError`` (batch calls name the batch index).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dotbracket import pairs_to_dot_bracket
from .options import NESTED_METHODS, DecodeOptions

__all__ = ["StructureResult", "decode", "decode_batch", "decoder_inputs", "pair_probabilities"]


@dataclass(frozen=True)
class StructureResult:
    """A decoded structure.

    Attributes:
        pairs: ``np.int64`` array ``(n, 2)``, 0-based ``i < j``, sorted by ``i``.
        dot_bracket: the structure as a string of length ``L`` (``[] {} <>`` for crossing pairs).
        score: ``sum(scores[i, j] - threshold)`` over the pairs, or for ``mea`` the MEA objective
            (float64).
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


def _as_options(options: Any) -> DecodeOptions:
    if options is None:
        return DecodeOptions()
    if not isinstance(options, DecodeOptions):
        raise ValueError(f"options must be a DecodeOptions, got {type(options).__name__}")
    return options


def _nested_result(pairs: np.ndarray, score: float, length: int) -> StructureResult:
    chars = np.full(length, ".", dtype="<U1")
    chars[pairs[:, 0]] = "("
    chars[pairs[:, 1]] = ")"
    return StructureResult(pairs, "".join(chars.tolist()), float(score))


def _result(
    pairs: np.ndarray, score: float, length: int, options: DecodeOptions
) -> StructureResult:
    if options.method in NESTED_METHODS:
        return _nested_result(pairs, score, length)
    return StructureResult(pairs, pairs_to_dot_bracket(pairs, length), float(score))


def decode(
    seq: str,
    scores: Any,
    options: DecodeOptions | None = None,
    *,
    constraint: str | None = None,
) -> StructureResult:
    """Decode one structure (see the module docstring for the exact rules of each method).

    Args:
        seq: sequence of length ``L`` (``ACGU``; other letters never pair canonically).
        scores: ``(L, L)`` floating pair scores (logits, or probabilities for ``mea`` and
            ``threshknot``); only ``scores[i, j]`` with ``i < j`` is read.
        options: the method and its settings; default ``DecodeOptions()`` (nested, threshold 0.0).
        constraint: ViennaRNA-style hard constraint (``. x | < > ( )``) of length ``L``; ``nested``
            and ``mea`` only.

    Returns:
        :class:`StructureResult` with ``pairs`` ``(n, 2)`` int64, ``dot_bracket`` and ``score``.

    Example:
        >>> import numpy as np
        >>> s = np.full((12, 12), -1.0, dtype=np.float32)
        >>> for k in range(4):
        ...     s[k, 11 - k] = 2.0
        >>> decode("GGGGAAAACCCC", s).dot_bracket
        '((((....))))'
        >>> p = np.where(s > 0, 0.9, 0.0).astype(np.float32)
        >>> decode("GGGGAAAACCCC", p, DecodeOptions(method="mea", gamma=2.0)).dot_bracket
        '((((....))))'
    """
    seq = _as_seq(seq)
    options = _as_options(options)
    pairs, score = _core().structure_decode(
        seq, _as_matrix(scores), options._to_core(), _as_constraint(constraint)
    )
    return _result(pairs, score, len(seq), options)


def decode_batch(
    seqs: Sequence[str],
    scores_list: Sequence[Any],
    options: DecodeOptions | None = None,
    *,
    constraints: Sequence[str | None] | None = None,
    num_threads: int | None = None,
) -> list[StructureResult]:
    """Decode a batch of sequences of different lengths on a thread pool (the GIL is released).

    Args:
        seqs: ``B`` sequences, lengths ``L_b``.
        scores_list: ``B`` score matrices, each ``(L_b, L_b)``.
        options: one :class:`DecodeOptions` for the whole batch (default ``DecodeOptions()``).
        constraints: ``None`` or ``B`` constraint strings (or ``None`` entries); nested and mea only.
        num_threads: worker threads; default ``os.cpu_count()``.

    Returns:
        ``B`` :class:`StructureResult`, equal to the single calls. An invalid item raises
        ``ValueError`` starting with ``"batch index k: "``.

    Example:
        >>> import numpy as np
        >>> out = decode_batch(["GGGAAACCC", "ACGU"], [np.zeros((9, 9)), np.zeros((4, 4))])
        >>> [r.dot_bracket for r in out]
        ['.........', '....']
    """
    options = _as_options(options)
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
        constraints = [_as_constraint(c, f"batch index {k}: ") for k, c in enumerate(constraints)]
    if num_threads is None:
        num_threads = os.cpu_count() or 1
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral):
        raise ValueError(f"num_threads must be an int, got {num_threads!r}")
    if not 1 <= int(num_threads) <= 4096:
        raise ValueError(f"num_threads must be in [1, 4096], got {num_threads}")
    raw = _core().structure_decode_batch(
        seqs, mats, options._to_core(), constraints, int(num_threads)
    )
    return [_result(p, sc, len(s), options) for (p, sc), s in zip(raw, seqs)]


PROBABILITY_METHODS = ("mea", "threshknot")


def decoder_inputs(logits: Sequence[np.ndarray], options: DecodeOptions) -> list[np.ndarray]:
    """What ``options``' decoder reads from pair logits: the logits (``nested``, ``greedy``) or
    their sigmoid probabilities, float32 (``mea``, ``threshknot``)."""
    if options.method not in PROBABILITY_METHODS:
        return list(logits)
    return [pair_probabilities(z) for z in logits]


def pair_probabilities(logits: np.ndarray) -> np.ndarray:
    """The sigmoid of pair logits, float32 (computed without overflow)."""
    z = np.asarray(logits, np.float32)
    return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)
