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

class DecodeOptions:
    """Decoder settings; mirrored field by field by rnaernie.structure.DecodeOptions."""

    def __init__(
        self,
        *,
        method: str = "nested",
        threshold: float = 0.0,
        gamma: float = 1.0,
        canonical_only: bool = True,
        min_loop: int = 3,
        no_lonely_pairs: bool = False,
    ) -> None: ...
    @property
    def method(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    @property
    def gamma(self) -> float: ...
    @property
    def canonical_only(self) -> bool: ...
    @property
    def min_loop(self) -> int: ...
    @property
    def no_lonely_pairs(self) -> bool: ...

def structure_decode(
    seq: str, scores: np.ndarray, options: DecodeOptions, constraint: str | None = None
) -> tuple[np.ndarray, float]: ...
def structure_decode_batch(
    seqs: Sequence[str],
    scores: Sequence[np.ndarray],
    options: DecodeOptions,
    constraints: Sequence[str | None] | None = None,
    num_threads: int = 0,
) -> list[tuple[np.ndarray, float]]: ...
