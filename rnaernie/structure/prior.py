"""A thermodynamic prior for the pair logits: ViennaRNA's MFE pairs get a bonus before decoding.

The structure head and RNAfold fail on different families (on ArchiveII the head wins on tRNA and 5S
rRNA, RNAfold on SRP, tmRNA, RNase P and rRNA domains), so adding ``weight`` to the logits of the
pairs in RNAfold's minimum-free-energy structure lets the decoder keep a pair that either source
supports strongly. The weight, threshold and lonely-pair rule are chosen on a validation set (the
shipped head's ``prior_rnafold`` config entry; ``rnaernie evaluate`` chooses them on bpRNA VL0).

Needs ViennaRNA (``pip install viennarna``); RNAfold's run time comes on top of the model's (0.7 s
for one 1,000-nt sequence in ``benchmarks/results/structure.json``, against 9 ms for our decoder).

Example:
    >>> import numpy as np
    >>> z = np.zeros((4, 4), np.float32)
    >>> add_pair_bonus(z, np.array([[0, 3]]), 2.0)[[0, 3], [3, 0]].tolist()
    [2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .dotbracket import dot_bracket_to_pairs

__all__ = ["PRIORS", "add_pair_bonus", "rnafold_pairs"]

PRIORS = ("rnafold",)


def _rna() -> Any:
    try:
        import RNA
    except ImportError as exc:
        raise ValueError(
            "the 'rnafold' prior needs ViennaRNA's Python bindings: pip install viennarna"
        ) from exc
    return RNA


def _mfe_pairs(seq: str) -> np.ndarray:
    return dot_bracket_to_pairs(_rna().fold(seq.upper().replace("T", "U"))[0])


def rnafold_pairs(seqs: Sequence[str], processes: int = 1) -> list[np.ndarray]:
    """RNAfold MFE base pairs (default parameters, 37 °C) per sequence, (n, 2) int64 with i < j.

    ``processes > 1`` folds in a ``multiprocessing`` pool (ViennaRNA holds the GIL, so threads
    would not help).
    """
    _rna()  # a clear error before any work when ViennaRNA is missing
    seqs = [str(s) for s in seqs]
    if processes <= 1 or len(seqs) < 2:
        return [_mfe_pairs(s) for s in seqs]
    from multiprocessing import get_context

    with get_context("fork").Pool(processes) as pool:
        return pool.map(_mfe_pairs, seqs, chunksize=max(1, len(seqs) // (8 * processes)))


def add_pair_bonus(logits: np.ndarray, pairs: np.ndarray, weight: float) -> np.ndarray:
    """A copy of the symmetric (L, L) ``logits`` with ``weight`` added at every ``(i, j)`` and
    ``(j, i)`` of ``pairs``."""
    out = np.array(logits, dtype=np.float32, copy=True)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(p) and (p.min() < 0 or p.max() >= out.shape[0]):
        raise ValueError(f"pairs index outside a {out.shape[0]}-nt score matrix")
    out[p[:, 0], p[:, 1]] += weight
    out[p[:, 1], p[:, 0]] += weight
    return out
