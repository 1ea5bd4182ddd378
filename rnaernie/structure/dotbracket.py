"""Conversions between dot-bracket strings, pair lists and contact maps (numpy only).

A pair list is an ``np.int64`` array of shape ``(n, 2)`` with 0-based ``i < j`` rows sorted by ``i``.
Dot-bracket strings use ``()`` for nested pairs and ``[] {} <>``, then ``Aa Bb ...`` (upper case opens,
lower case closes) for pseudoknots; ``. , : _ - ~`` are unpaired.

Example:
    >>> dot_bracket_to_pairs("((..))").tolist()
    [[0, 5], [1, 4]]
    >>> pairs_to_dot_bracket([[0, 5], [1, 4], [2, 7]], 8)
    '(([.)).]'
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

__all__ = [
    "contact_map_to_pairs",
    "dot_bracket_to_pairs",
    "normalize_pairs",
    "pairs_to_contact_map",
    "pairs_to_dot_bracket",
]

OPEN_BRACKETS = "([{<" + string.ascii_uppercase
CLOSE_BRACKETS = ")]}>" + string.ascii_lowercase
UNPAIRED_SYMBOLS = ".,:_-~"
_CLOSE_TO_LEVEL = {c: k for k, c in enumerate(CLOSE_BRACKETS)}
_OPEN_TO_LEVEL = {c: k for k, c in enumerate(OPEN_BRACKETS)}

PairsLike = np.ndarray | Sequence[Sequence[int]]


def _empty_pairs() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.int64)


def dot_bracket_to_pairs(dot_bracket: str) -> np.ndarray:
    """Parse a dot-bracket string (pseudoknot brackets allowed) into pairs ``(n, 2)`` int64.

    Raises ``ValueError`` naming the position of an unknown symbol or an unmatched bracket.
    """
    stacks: list[list[int]] = [[] for _ in OPEN_BRACKETS]
    pairs: list[tuple[int, int]] = []
    for pos, ch in enumerate(dot_bracket):
        if ch in UNPAIRED_SYMBOLS:
            continue
        level = _OPEN_TO_LEVEL.get(ch)
        if level is not None:
            stacks[level].append(pos)
            continue
        level = _CLOSE_TO_LEVEL.get(ch)
        if level is None:
            raise ValueError(f"dot-bracket: unknown symbol {ch!r} at position {pos}")
        if not stacks[level]:
            raise ValueError(f"dot-bracket: unmatched {ch!r} at position {pos}")
        pairs.append((stacks[level].pop(), pos))
    for level, stack in enumerate(stacks):
        if stack:
            raise ValueError(
                f"dot-bracket: unmatched {OPEN_BRACKETS[level]!r} at position {stack[-1]}"
            )
    if not pairs:
        return _empty_pairs()
    out = np.array(sorted(pairs), dtype=np.int64)
    return out


def normalize_pairs(pairs: PairsLike, length: int) -> np.ndarray:
    """Check a pair list against a sequence length and return it as sorted ``(n, 2)`` int64, i < j.

    Rows may come in either order within a pair. Raises ``ValueError`` on a wrong shape, an index
    out of ``[0, length)``, a base paired with itself, or a base in more than one pair.
    """
    arr = np.asarray(pairs)
    if arr.size == 0:
        return _empty_pairs()
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"pairs must have shape (n, 2), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"pairs must be integers, got dtype {arr.dtype}")
    arr = np.sort(arr.astype(np.int64), axis=1)
    if arr.min() < 0 or arr.max() >= length:
        raise ValueError(f"pair index out of range [0, {length})")
    if np.any(arr[:, 0] == arr[:, 1]):
        raise ValueError("a base cannot pair with itself")
    flat = arr.ravel()
    if np.unique(flat).size != flat.size:
        counts = np.bincount(flat, minlength=length)
        raise ValueError(f"base {int(np.argmax(counts > 1))} is in more than one pair")
    return arr[np.argsort(arr[:, 0], kind="stable")]


def pairs_to_dot_bracket(pairs: PairsLike, length: int) -> str:
    """Write pairs as a dot-bracket string of ``length``; crossing pairs get ``[] {} <> Aa ...``.

    Pairs are taken in order of their 5' base and each goes to the first bracket level where it
    crosses no pair already there (for a nested structure that is always ``()``).
    """
    arr = normalize_pairs(pairs, length)
    chars = np.full(length, ".", dtype="<U1")
    if arr.shape[0] == 0:
        return "".join(chars.tolist())
    levels: list[list[int]] = []  # per level, a stack of the 3' ends of open pairs
    for i, j in arr.tolist():
        level = 0
        while level < len(levels):
            stack = levels[level]
            while stack and stack[-1] < i:
                stack.pop()
            if not stack or j < stack[-1]:
                break
            level += 1
        if level == len(levels):
            if level >= len(OPEN_BRACKETS):
                raise ValueError("too many crossing pair levels for dot-bracket notation")
            levels.append([])
        levels[level].append(j)
        chars[i] = OPEN_BRACKETS[level]
        chars[j] = CLOSE_BRACKETS[level]
    return "".join(chars.tolist())


def pairs_to_contact_map(
    pairs: PairsLike, length: int, dtype: np.dtype | type = np.float32
) -> np.ndarray:
    """Symmetric ``(length, length)`` contact map with 1 at ``[i, j]`` and ``[j, i]`` for each pair."""
    arr = normalize_pairs(pairs, length)
    cmap = np.zeros((length, length), dtype=dtype)
    cmap[arr[:, 0], arr[:, 1]] = 1
    cmap[arr[:, 1], arr[:, 0]] = 1
    return cmap


def contact_map_to_pairs(contact_map: np.ndarray) -> np.ndarray:
    """Pairs ``(n, 2)`` of a binary symmetric ``(L, L)`` contact map (nonzero = paired).

    Raises ``ValueError`` if the map is not square, not symmetric, has a nonzero diagonal or gives a
    base more than one partner. To decode a score or probability map, use :func:`decode`.
    """
    cmap = np.asarray(contact_map)
    if cmap.ndim != 2 or cmap.shape[0] != cmap.shape[1]:
        raise ValueError(f"contact map must be square (L, L), got shape {cmap.shape}")
    nz = cmap != 0
    if not np.array_equal(nz, nz.T):
        raise ValueError("contact map is not symmetric")
    if np.any(np.diagonal(nz)):
        raise ValueError("contact map has a nonzero diagonal (a base paired with itself)")
    i, j = np.nonzero(np.triu(nz, 1))
    return normalize_pairs(np.stack([i, j], axis=1), cmap.shape[0])
