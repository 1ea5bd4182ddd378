"""Batch tokenizer backed by the C++ core.

Example:
    >>> from rnaernie import Tokenizer
    >>> enc = Tokenizer().encode_batch(["ACGU", "ggaUt"])
    >>> enc.input_ids.shape
    (2, 7)
    >>> Tokenizer().decode(enc.input_ids[1])
    'GGAUU'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from . import _core
from .vocab import MASK_ID, NUC_OFFSET, UNK_ID, VOCAB, VOCAB_SIZE, type_id

__all__ = ["Encoding", "Tokenizer", "normalise", "reverse_complement"]

_NORMALISE = str.maketrans("acgutT", "ACGUUU")
_COMPLEMENT = bytearray(b"N" * 256)  # byte -> its complement; anything but ACGU -> N
for _a, _b in zip(b"ACGU", b"UGCA"):
    _COMPLEMENT[_a] = _b
_COMPLEMENT = bytes(_COMPLEMENT)


# the same for ASCII text in one pass over bytes: upper-case, T -> U, the whitespace str.split()
# drops deleted
_NORMALISE_ASCII = bytes.maketrans(
    bytes(range(97, 123)) + b"tT", bytes(range(65, 91)).replace(b"T", b"U") + b"UU"
)
_ASCII_SPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def normalise(seq: str) -> str:
    """Upper-case, ``T``→``U``, whitespace removed (the tokenizer's normalisation)."""
    if seq.isascii():
        return seq.encode("ascii").translate(_NORMALISE_ASCII, _ASCII_SPACE).decode("ascii")
    return "".join(seq.split()).translate(_NORMALISE).upper()


def reverse_complement(seq: str, *, normalised: bool = False) -> str:
    """RNA reverse complement (``T`` read as ``U``; other letters become ``N``). ``normalised``:
    ``seq`` has been through :func:`normalise` already (it is not done again)."""
    if not normalised:
        seq = normalise(seq)
    # one byte per letter (a non-ASCII letter becomes "?", then N)
    return seq.encode("ascii", "replace").translate(_COMPLEMENT)[::-1].decode("ascii")


@dataclass(frozen=True)
class Encoding:
    """A padded batch of token rows.

    Attributes:
        input_ids: (R, L) int64 token ids, padded on the right with ``[PAD]`` (0).
        attention_mask: (R, L) int64, 1 on real tokens.
        lengths: (R,) tokens per row, special tokens included.
        seq_index: (R,) which input sequence each row comes from (rows == sequences unless windowed).
        start, end: (R,) the nucleotides ``[start, end)`` of that sequence the row holds (0-based,
            normalised coordinates: whitespace removed).
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    lengths: np.ndarray
    seq_index: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def spread(self, max_windows: int | None) -> Encoding:
        """At most ``max_windows`` rows per sequence, evenly spaced over its windows (first and last
        kept); ``None`` keeps every row. Rows stay in order."""
        if max_windows is None:
            return self
        if max_windows < 1:
            raise ValueError(f"max_windows must be >= 1, got {max_windows}")
        rows = window_rows(self.seq_index, max_windows)
        if len(rows) == len(self):
            return self
        return Encoding(*(np.ascontiguousarray(getattr(self, f.name)[rows]) for f in fields(self)))


def window_rows(seq_index: np.ndarray, max_windows: int) -> np.ndarray:
    """Row indices keeping at most ``max_windows`` evenly spaced rows of each run of equal
    ``seq_index`` (rows of one sequence are contiguous, as :meth:`Tokenizer.encode_batch` emits them)."""
    seq_index = np.asarray(seq_index)
    if len(seq_index) == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, seq_index[1:] != seq_index[:-1]])
    counts = np.diff(np.r_[starts, len(seq_index)])
    out = []
    for s, c in zip(starts.tolist(), counts.tolist()):
        if c <= max_windows:
            out.append(np.arange(s, s + c))
        else:
            out.append(s + np.unique(np.linspace(0, c - 1, max_windows).round().astype(np.int64)))
    return np.concatenate(out)


# id -> single-letter string for decode; special and type tokens decode to "" unless asked for.
_NUC_CHARS = np.array(["", "N"] + [""] * (NUC_OFFSET - 2) + ["A", "U", "C", "G"], dtype=object)


class Tokenizer:
    """Character-level RNA tokenizer with the official RNAErnie vocabulary (39 tokens).

    Normalisation: upper-case, ``T``→``U``, whitespace dropped; IUPAC ambiguity codes
    (``N R Y S W K M B D H V``) become ``[UNK]``; any other character raises ``ValueError`` naming the
    sequence and position, or becomes ``[UNK]`` with ``replace_invalid=True``.

    Args:
        max_length: default row limit including special tokens (the model's 512 positions).
        threads: worker threads for batch calls (0 = all cores).
    """

    vocab: tuple[str, ...] = VOCAB
    vocab_size: int = VOCAB_SIZE

    def __init__(self, max_length: int = 512, threads: int = 0) -> None:
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3, got {max_length}")
        self.max_length = max_length
        self.threads = threads

    def encode_batch(
        self,
        seqs: Sequence[str | bytes],
        *,
        types: Sequence[str | int] | None = None,
        max_length: int | None = None,
        truncate: bool = False,
        replace_invalid: bool = False,
        add_special_tokens: bool = True,
        window: int | None = None,
        stride: int | None = None,
        names: Sequence[str] | None = None,
    ) -> Encoding:
        """Encode sequences to a padded batch.

        Layout per row: ``[CLS] seq [SEP]``, or ``[CLS] seq [IND] TYPE [SEP]`` when ``types`` is given
        (an RNA-type name or token id per sequence; ``"[MASK]"`` leaves the type slot open).

        Args:
            seqs: sequences (``str`` or ``bytes``).
            max_length: row limit including special tokens (default: the tokenizer's).
            truncate: cut sequences that do not fit; otherwise they raise ``ValueError``.
            window, stride: emit overlapping windows of ``window`` nucleotides every ``stride``
                (default ``window``); the last window is aligned to the sequence end. Rows map back
                through ``seq_index``/``start``/``end``.
            names: sequence ids used in error messages.

        Returns:
            An :class:`Encoding` of R rows (R = number of sequences, or of windows).
        """
        if isinstance(seqs, (str, bytes)):
            raise TypeError(
                "encode_batch expects a sequence of strings; wrap a single one in a list"
            )
        type_ids = None
        if types is not None:
            type_ids = [_type_token(t, i) for i, t in enumerate(types)]
        out = _core.encode_batch(
            seqs,
            types=type_ids,
            max_length=self.max_length if max_length is None else max_length,
            truncate=truncate,
            replace_invalid=replace_invalid,
            add_special=add_special_tokens,
            window=window or 0,
            stride=stride or 0,
            threads=self.threads,
            names=list(names) if names is not None else None,
        )
        return Encoding(**out)

    def __call__(self, seqs: Sequence[str | bytes], **kwargs) -> Encoding:
        return self.encode_batch(seqs, **kwargs)

    def encode(self, seq: str | bytes, **kwargs) -> np.ndarray:
        """Token ids (1-D int64) of one sequence, special tokens included."""
        enc = self.encode_batch([seq], **kwargs)
        return enc.input_ids[0, : enc.lengths[0]]

    def decode(self, ids: np.ndarray | Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Decode one row of token ids to a nucleotide string (``[UNK]`` shows as ``N``).

        With ``skip_special_tokens=False`` special and type tokens appear by name.
        """
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= VOCAB_SIZE):
            raise ValueError(
                f"token ids must be in [0, {VOCAB_SIZE}), got {arr.min()}..{arr.max()}"
            )
        if skip_special_tokens:
            return "".join(_NUC_CHARS[arr])
        return "".join(VOCAB[i] if (i < NUC_OFFSET and i != UNK_ID) else _NUC_CHARS[i] for i in arr)

    def batch_decode(self, ids: np.ndarray, *, skip_special_tokens: bool = True) -> list[str]:
        return [
            self.decode(row, skip_special_tokens=skip_special_tokens) for row in np.asarray(ids)
        ]


def _type_token(t: str | int, i: int) -> int:
    if isinstance(t, (int, np.integer)):
        return int(t)
    if t == "[MASK]":
        return MASK_ID
    try:
        return type_id(t)
    except ValueError as e:
        raise ValueError(f"sequence {i}: {e}") from None
