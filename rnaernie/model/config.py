"""Configuration of the RNAErnie encoder and its heads.

The defaults are the official RNAErnie base model (12 layers × 768 hidden, 12 heads, ReLU FFN of
3072, 513 positions, 39-token vocabulary). ``type_vocab_size`` is 2 as in the official checkpoint
(multimolecule's converter loads it strictly into a 2-row token-type table); only row 0 is ever used
for single sequences. ``layer_norm_eps`` is 1e-12 (ERNIE / BERT).

Example:
    >>> cfg = RnaErnieConfig.preset("tiny")
    >>> cfg.hidden_size, cfg.num_hidden_layers
    (256, 4)
    >>> RnaErnieConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

from ..vocab import NUM_TYPES, PAD_ID, VOCAB_SIZE

logger = logging.getLogger(__name__)

ATTN_IMPLEMENTATIONS = ("auto", "eager", "sdpa", "triton")

_PRESETS: dict[str, dict[str, int]] = {
    "base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
    "small": dict(
        hidden_size=512, num_hidden_layers=6, num_attention_heads=8, intermediate_size=2048
    ),
    "tiny": dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024
    ),
}

_FIELD_TYPES: dict[str, Any] = {"int": int, "float": (int, float), "str": str,
                                 "float | None": (int, float, type(None)), "dict[str, Any]": dict}  # fmt: skip

# Marks a config.json written by this library (multimolecule's has no such key).
LIBRARY_TAG = "rnaernie"


@dataclass
class RnaErnieConfig:
    """Hyper-parameters of :class:`~rnaernie.model.RnaErnieModel` and the task heads."""

    vocab_size: int = VOCAB_SIZE
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "relu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    max_position_embeddings: int = 513
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = PAD_ID
    attn_implementation: str = "auto"
    # pretraining: RNA-type prediction from [CLS]
    num_rna_types: int = NUM_TYPES
    # task heads
    num_labels: int = 2
    classifier_dropout: float | None = None
    pair_channels: int = 32
    pair_kernel_size: int = 5
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # a config.json with wrong types fails here, by name
            v, want = getattr(self, f.name), _FIELD_TYPES[str(f.type)]
            if isinstance(v, bool) or not isinstance(v, want):
                raise ValueError(f"config field {f.name!r} must be {f.type}, got {v!r}")
            if f.type == "int" and v < (0 if f.name == "pad_token_id" else 1):
                raise ValueError(f"config field {f.name!r} must be positive, got {v}")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(
                f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, "
                f"got {self.attn_implementation!r}"
            )
        if self.hidden_act not in ("relu", "gelu", "gelu_new", "silu", "tanh"):
            raise ValueError(f"unsupported hidden_act {self.hidden_act!r}")
        if self.pair_kernel_size % 2 != 1:
            raise ValueError("pair_kernel_size must be odd")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> RnaErnieConfig:
        """A named size: ``"base"`` (12×768), ``"small"`` (6×512), ``"tiny"`` (4×256)."""
        if name not in _PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(_PRESETS)}")
        return cls(**{**_PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["library"] = LIBRARY_TAG
        d["model_type"] = "rnaernie"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RnaErnieConfig:
        """Build from a dict; unknown keys are ignored (logged at debug level)."""
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in d.items() if k in names}
        unknown = sorted(set(d) - names - {"library", "model_type"})
        if unknown:
            logger.debug("RnaErnieConfig.from_dict ignores keys: %s", ", ".join(unknown))
        return cls(**known)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (temporary file in the same folder, then ``os.replace``)."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.to_json_string())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved model is an ordinary readable file
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str]) -> RnaErnieConfig:
        """Read ``config.json``; a malformed file is a ``ValueError`` naming it."""
        try:
            with open(path, encoding="utf-8") as fh:
                return cls.from_dict(json.load(fh))
        except (ValueError, TypeError, UnicodeDecodeError) as e:
            raise ValueError(f"{os.fspath(path)}: not a valid rnaernie config ({e})") from None
