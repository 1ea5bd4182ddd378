"""RNA secondary structure: decoders over pair-score matrices, formats and metrics.

* :func:`decode` / :func:`decode_batch` with one :class:`DecodeOptions`: ``method`` ``"nested"``
  (best nested structure, C++ sparse DP, constraints), ``"mea"`` (maximum expected accuracy over
  pair probabilities), ``"greedy"`` / ``"threshknot"`` (mutual best partners, pseudoknots allowed).
* :func:`decode_ref`: the plain-Python reference of every method.
* dot-bracket ↔ pairs ↔ contact map; ``.dbn`` / BPSEQ / CT readers and writers.
* base-pair precision / recall / F1 / MCC (exact or ±1 shift).
* :mod:`rnaernie.structure.prior`: RNAfold MFE pairs as a bonus on the pair logits (needs viennarna).

Example:
    >>> import numpy as np
    >>> from rnaernie.structure import decode, f1
    >>> s = np.full((12, 12), -1.0, dtype=np.float32)
    >>> for k in range(4):
    ...     s[k, 11 - k] = 2.0
    >>> res = decode("GGGGAAAACCCC", s)
    >>> res.dot_bracket, f1(res.pairs, "((((....))))")
    ('((((....))))', 1.0)
"""

from __future__ import annotations

from .decoders import StructureResult, decode, decode_batch, decoder_inputs, pair_probabilities
from .dotbracket import (
    contact_map_to_pairs,
    dot_bracket_to_pairs,
    normalize_pairs,
    pairs_to_contact_map,
    pairs_to_dot_bracket,
)
from .formats import Record, read_bpseq, read_ct, read_dbn, write_bpseq, write_ct, write_dbn
from .metrics import confusion, f1, mcc, mean_f1, precision, recall
from .options import DecodeOptions
from .reference import decode_ref, nussinov_numpy

__all__ = [
    "DecodeOptions",
    "Record",
    "StructureResult",
    "confusion",
    "contact_map_to_pairs",
    "decode",
    "decode_batch",
    "decode_ref",
    "decoder_inputs",
    "dot_bracket_to_pairs",
    "f1",
    "mcc",
    "mean_f1",
    "normalize_pairs",
    "nussinov_numpy",
    "pair_probabilities",
    "pairs_to_contact_map",
    "pairs_to_dot_bracket",
    "precision",
    "read_bpseq",
    "read_ct",
    "read_dbn",
    "recall",
    "write_bpseq",
    "write_ct",
    "write_dbn",
]
