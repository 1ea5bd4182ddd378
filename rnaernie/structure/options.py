"""One options object for the structure decoders, mirrored field by field by the C++ struct.

:class:`DecodeOptions` is what :func:`~rnaernie.structure.decode` and
:func:`~rnaernie.structure.decode_batch` take, what a head config stores (:meth:`to_dict` /
:meth:`from_dict`), and what reaches ``rnaernie._core.DecodeOptions`` unchanged (same names).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["METHODS", "DecodeOptions"]

Method = Literal["nested", "greedy", "mea", "threshknot"]
METHODS: tuple[str, ...] = ("nested", "greedy", "mea", "threshknot")
NESTED_METHODS = ("nested", "mea")
_FLOAT32_MAX = 3.4028234663852886e38
_INT32_MAX = 2**31 - 1


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not abs(value) <= _FLOAT32_MAX:
        raise ValueError(f"{name} must be finite and within the float32 range, got {value}")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class DecodeOptions:
    """Decoder settings (fields mirror the C++ ``rnaernie::DecodeOptions`` one to one).

    Attributes:
        method: ``"nested"``: best nested structure by ``sum(score - threshold)`` (Nussinov DP);
            ``"mea"``: maximum expected accuracy over probabilities ``P``: the nested structure
            maximising ``sum_{(i,j) paired} 2 gamma P_ij + sum_{i unpaired} q_i``,
            ``q_i = 1 - sum_{j != i} P_ij`` (CONTRAfold / ViennaRNA); ``"greedy"``: mutual best
            partners with ``score > threshold`` (pseudoknots allowed); ``"threshknot"``: ThreshKnot,
            mutual best partners with ``P >= threshold`` (greedy with an inclusive threshold; the
            paper uses 0.3). ``mea`` and ``threshknot`` need scores in ``[0, 1]``.
        threshold: pairs need ``score > threshold`` (``>=`` for threshknot; for mea a cut-off on
            ``P``). Default 0.0: probability 0.5 for logits, any ``P > 0`` for mea.
        gamma: mea only: ``> 0``; larger favours pairs (sensitivity) over unpaired bases.
        canonical_only: allow only AU, GC, GU pairs.
        min_loop: minimum number of unpaired bases enclosed by a pair.
        no_lonely_pairs: every pair must stack on a neighbour (nested and mea only).

    Example:
        >>> DecodeOptions(method="mea", gamma=2.0).to_dict()["gamma"]
        2.0
        >>> DecodeOptions.from_dict({"method": "greedy", "threshold": 0.5}).method
        'greedy'
    """

    method: Method = "nested"
    threshold: float = 0.0
    gamma: float = 1.0
    canonical_only: bool = True
    min_loop: int = 3
    no_lonely_pairs: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        set_ = object.__setattr__  # frozen: normalise the types once, here
        set_(self, "threshold", _real("threshold", self.threshold))
        set_(self, "gamma", _real("gamma", self.gamma))
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        set_(self, "canonical_only", _flag("canonical_only", self.canonical_only))
        set_(self, "no_lonely_pairs", _flag("no_lonely_pairs", self.no_lonely_pairs))
        loop = self.min_loop
        if isinstance(loop, bool) or not isinstance(loop, numbers.Integral):
            raise ValueError(f"min_loop must be an int, got {loop!r}")
        if not 0 <= int(loop) <= _INT32_MAX:
            raise ValueError(f"min_loop must be in [0, 2**31 - 1], got {loop}")
        set_(self, "min_loop", int(loop))
        if self.no_lonely_pairs and self.method not in NESTED_METHODS:
            raise ValueError(f"no_lonely_pairs needs method 'nested' or 'mea', got {self.method!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecodeOptions:
        """From a head config's dict; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown DecodeOptions keys {unknown}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field (the inverse of :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> DecodeOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def _to_core(self) -> Any:
        from rnaernie import _core

        return _core.DecodeOptions(**self.to_dict())
