"""Type stub of the C++ extension (csrc/bindings.cpp). Use the wrappers in rnaernie.* instead."""

from collections.abc import Sequence

import numpy as np

def encode_batch(
    seqs: Sequence[str | bytes],
    types: Sequence[int] | None = None,
    max_length: int = 0,
    truncate: bool = False,
    replace_invalid: bool = False,
    add_special: bool = True,
    window: int = 0,
    stride: int = 0,
    threads: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]: ...
def normalized_lengths(
    seqs: Sequence[str | bytes],
    replace_invalid: bool = False,
    threads: int = 0,
    names: Sequence[str] | None = None,
) -> np.ndarray: ...
def kmer_spectra(
    seqs: Sequence[str | bytes],
    kmax: int = 5,
    replace_invalid: bool = False,
    threads: int = 0,
    names: Sequence[str] | None = None,
) -> np.ndarray: ...

class MotifMatcher:
    def __init__(self, motifs: Sequence[str]) -> None: ...
    @property
    def num_motifs(self) -> int: ...
    @property
    def num_states(self) -> int: ...
    @property
    def max_length(self) -> int: ...
    def find(
        self, seqs: Sequence[str | bytes], threads: int = 0, names: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]: ...

def select_mask_positions(
    input_ids: np.ndarray,
    matcher: MotifMatcher | None,
    motif_tier: Sequence[int],
    seed: int,
    mask_prob: float = 0.15,
    max_predictions: int = 77,
    span_min: int = 5,
    span_max: int = 8,
    base: bool = True,
    subsequence: bool = True,
    motif: bool = True,
    threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]: ...
def apply_mlm_replacement(
    input_ids: np.ndarray, selected: np.ndarray, seed: int, threads: int = 0
) -> tuple[np.ndarray, np.ndarray]: ...
def structure_decode_nested(
    seq: str,
    scores: np.ndarray,
    threshold: float,
    canonical_only: bool,
    min_loop: int,
    no_lonely_pairs: bool,
    constraint: str | None,
) -> tuple[np.ndarray, float]: ...
def structure_decode_greedy(
    seq: str, scores: np.ndarray, threshold: float, canonical_only: bool, min_loop: int
) -> tuple[np.ndarray, float]: ...
def structure_decode_batch(
    greedy: bool,
    seqs: Sequence[str],
    scores: Sequence[np.ndarray],
    threshold: float,
    canonical_only: bool,
    min_loop: int,
    no_lonely_pairs: bool,
    constraints: Sequence[str | None] | None,
    num_threads: int,
) -> list[tuple[np.ndarray, float]]: ...
