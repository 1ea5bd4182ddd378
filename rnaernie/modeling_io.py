"""Saving, loading and converting RNAErnie weights (safetensors only, never pickle).

A model directory holds ``config.json`` + ``model.safetensors``. Both are written to a temporary
name and renamed, so a killed run never leaves a file that looks complete.

``from_pretrained`` reads three layouts:

* ours (``config.json`` carries ``"library": "rnaernie"``). The encoder's keys are bare
  (``embeddings.…``, ``encoder.layers.N.…``, ``pooler.…``) in a saved :class:`RnaErnieModel` and
  prefixed ``ernie.`` in a saved head; either loads into either class — the encoder weights are
  shared, head weights not found are freshly initialised and logged;
* multimolecule's ``RnaErnie*`` ``save_pretrained`` output (28-token vocabulary), converted by
  :func:`convert_multimolecule_state_dict`;
* an official PaddlePaddle RNAErnie state dict (already read into tensors / arrays), converted by
  :func:`convert_official_state_dict`.

Vocabulary remapping from multimolecule: our rows take the multimolecule row of the same token
(:data:`rnaernie.vocab.OURS_TO_MULTIMOLECULE`); ``[DEL]``, ``[IND]`` and the 28 RNA-type tokens have
no counterpart there and are initialised from multimolecule's ``<unk>`` row (embedding and MLM bias),
so they behave like ``[UNK]`` until fine-tuned. Multimolecule's IUPAC/gap rows are dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .config import LIBRARY_TAG, RnaErnieConfig
from .vocab import OURS_TO_MULTIMOLECULE, VOCAB_SIZE

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
BASE_PREFIX = "ernie."
MM_UNK_ID = 3  # multimolecule's <unk>

T = TypeVar("T", bound="RnaErniePreTrainedModel")


# ----------------------------------------------------------------------------- base class


class RnaErniePreTrainedModel(nn.Module):
    """Weight init plus ``save_pretrained`` / ``from_pretrained`` for every RNAErnie class.

    ``base_model_prefix`` is ``""`` for the bare encoder and ``"ernie"`` for heads (the encoder then
    lives at ``self.ernie``).
    """

    base_model_prefix = "ernie"

    def __init__(self, config: RnaErnieConfig):
        super().__init__()
        self.config = config
        self.new_keys: list[str] = []  # weights freshly initialised by the last from_pretrained

    # -- init
    def _init_module(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def init_weights(self) -> None:
        self.apply(self._init_module)

    # -- save
    def save_pretrained(
        self, path: str | os.PathLike[str], *, dtype: torch.dtype | None = None
    ) -> None:
        """Write ``config.json`` and ``model.safetensors`` under ``path`` (created if needed).

        ``dtype`` (e.g. ``torch.float16``) stores the floating-point weights in that type, to halve
        a shipped file; loading casts them back to the model's own dtype.
        """
        if getattr(self, "_int8", False):
            raise ValueError("an int8-quantised model cannot be saved; save the fp32 model")
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".tmp", dir=path)
        os.close(fd)
        try:
            save_file(state, tmp, metadata={"format": "pt", "library": LIBRARY_TAG})
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved model is an ordinary readable file
            os.replace(tmp, os.path.join(path, WEIGHTS_NAME))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.config.to_json_file(os.path.join(path, CONFIG_NAME))

    # -- load
    @classmethod
    def from_pretrained(
        cls: type[T],
        path: str | os.PathLike[str],
        config: RnaErnieConfig | None = None,
        *,
        strict: bool = False,
        int8: bool = False,
        map_location: str | torch.device = "cpu",
        model_kwargs: dict[str, Any] | None = None,
        **config_overrides: Any,
    ) -> T:
        """Load a directory saved by this library or by multimolecule (returned in eval mode).

        Example:
            >>> model = RnaErnieForSequenceClassification.from_pretrained("ckpt/", num_labels=13)  # doctest: +SKIP
            >>> model.train()  # to fine-tune  # doctest: +SKIP

        Args:
            path: directory with ``config.json`` and ``model.safetensors``.
            config: use this config instead of the saved one (its sizes must match the weights).
            strict: raise if any weight of the model is missing from the file.
            int8: dynamically quantise the Linear layers to int8 after loading (CPU inference).
            map_location: device for the loaded tensors.
            model_kwargs: extra constructor arguments (e.g. ``{"add_pooling_layer": False}``).
            config_overrides: fields to change in the saved config (e.g. ``num_labels=3``,
                ``attn_implementation="sdpa"``, ``hidden_dropout=0.0``).
        """
        path = os.fspath(path)
        cfg_path, w_path = os.path.join(path, CONFIG_NAME), os.path.join(path, WEIGHTS_NAME)
        if not os.path.isfile(w_path):
            raise ValueError(f"no {WEIGHTS_NAME} in {path!r} (only safetensors weights are read)")
        raw = {}
        if os.path.isfile(cfg_path):
            with open(cfg_path, encoding="utf-8") as fh:
                raw = json.load(fh)
        state = load_file(w_path, device=str(map_location))
        if raw.get("library") == LIBRARY_TAG:
            saved = RnaErnieConfig.from_dict(raw)
        elif is_multimolecule_state_dict(state):
            logger.info("converting a multimolecule RnaErnie checkpoint from %s", path)
            saved = config_from_multimolecule(raw, state)
            state = convert_multimolecule_state_dict(state)
        elif is_official_state_dict(state):
            saved = config_from_official(raw, state)
            state = convert_official_state_dict(state)
        else:
            raise ValueError(
                f"{path!r} is neither an rnaernie nor a multimolecule RnaErnie checkpoint"
            )
        config = config if config is not None else saved
        for key, value in config_overrides.items():
            if not hasattr(config, key):
                raise ValueError(f"unknown config field {key!r}")
            setattr(config, key, value)
        config.__post_init__()
        model = cls(config, **(model_kwargs or {}))
        model.load_converted_state_dict(state, strict=strict)
        model.eval()
        if int8:
            from .model import quantize_int8

            quantize_int8(model)
        return model

    def load_converted_state_dict(self, state: Mapping[str, Tensor], strict: bool = False) -> None:
        """Load a state dict in our key layout, adapting the ``ernie.`` prefix to this class.

        Keys of this model absent from ``state`` keep their fresh init (logged at INFO); keys of
        ``state`` this model has no use for are ignored (logged at INFO).
        """
        state = align_prefix(state, self.base_model_prefix)
        own = self.state_dict()
        for k, v in state.items():
            if k in own and own[k].shape != v.shape:
                raise ValueError(
                    f"shape mismatch for {k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}"
                )
        result = self.load_state_dict(dict(state), strict=False)
        if result.missing_keys:
            if strict:
                raise ValueError(
                    f"weights missing from checkpoint: {', '.join(result.missing_keys)}"
                )
            logger.info("newly initialised weights: %s", ", ".join(result.missing_keys))
        if result.unexpected_keys:
            logger.info("unused checkpoint weights: %s", ", ".join(result.unexpected_keys))
        self.new_keys = list(result.missing_keys)


def align_prefix(state: Mapping[str, Tensor], base_prefix: str) -> dict[str, Tensor]:
    """Make encoder keys bare (``base_prefix == ""``) or ``ernie.``-prefixed (heads)."""
    has_prefix = any(k.startswith(BASE_PREFIX) for k in state)
    if base_prefix == "":
        if not has_prefix:
            return dict(state)
        return {k[len(BASE_PREFIX) :]: v for k, v in state.items() if k.startswith(BASE_PREFIX)}
    if has_prefix:
        return dict(state)
    return {BASE_PREFIX + k: v for k, v in state.items()}


# ----------------------------------------------------------------------------- vocabulary


def remap_vocab_rows(weight: Tensor) -> Tensor:
    """multimolecule (28, ...) rows → our (39, ...) rows; rows without a counterpart copy <unk>."""
    src = [OURS_TO_MULTIMOLECULE.get(i, MM_UNK_ID) for i in range(VOCAB_SIZE)]
    return weight[torch.tensor(src, device=weight.device)].clone()


# ----------------------------------------------------------------------------- multimolecule

_MM_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_MM_LAYER_MAP = {
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.layer_norm": "norm1",
    "intermediate.dense": "linear1",
    "output.dense": "linear2",
    "output.layer_norm": "norm2",
}
_MM_LM_MAP = {
    "lm_head.transform.dense.weight": "mlm_head.transform.weight",
    "lm_head.transform.dense.bias": "mlm_head.transform.bias",
    "lm_head.transform.layer_norm.weight": "mlm_head.layer_norm.weight",
    "lm_head.transform.layer_norm.bias": "mlm_head.layer_norm.bias",
}


def is_multimolecule_state_dict(state: Mapping[str, Any]) -> bool:
    return any("attention.self.query.weight" in k for k in state)


def config_from_multimolecule(raw: Mapping[str, Any], state: Mapping[str, Any]) -> RnaErnieConfig:
    """Our config from multimolecule's ``config.json`` (sizes), vocabulary set to our 39 tokens."""
    fields = (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
        "hidden_dropout", "attention_dropout", "max_position_embeddings", "initializer_range",
        "layer_norm_eps",
    )  # fmt: skip
    kw = {f: raw[f] for f in fields if f in raw}
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported")
    tt = next((v for k, v in state.items() if k.endswith("token_type_embeddings.weight")), None)
    if tt is not None:
        kw["type_vocab_size"] = int(tt.shape[0])
    return RnaErnieConfig(**kw)


def convert_multimolecule_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """multimolecule ``RnaErnie*`` state dict → ours (``ernie.``-prefixed when it was a head's).

    Fuses query/key/value into ``qkv``, renames the blocks and remaps the vocabulary rows.
    """
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str, int], dict[str, Tensor]] = {}
    for key, value in state.items():
        prefix, k = "", key
        if k.startswith("model."):
            prefix, k = BASE_PREFIX, k[len("model.") :]
        if k.startswith("lm_head."):
            if k in _MM_LM_MAP:
                out[_MM_LM_MAP[k]] = value
            elif k in ("lm_head.bias", "lm_head.decoder.bias"):
                out["mlm_head.bias"] = remap_vocab_rows(value)
            continue  # decoder.weight is tied to the word embeddings
        m = _MM_LAYER.match(k)
        if m is None:
            if k == "embeddings.word_embeddings.weight":
                value = remap_vocab_rows(value)
            elif not k.startswith(("embeddings.", "pooler.")):
                logger.info("multimolecule key %s not converted", key)
                continue
            out[prefix + k] = value
            continue
        i, rest = int(m.group(1)), m.group(2)
        sm = re.match(r"^attention\.self\.(query|key|value)\.(weight|bias)$", rest)
        if sm:
            qkv.setdefault((prefix, sm.group(2), i), {})[sm.group(1)] = value
            continue
        for src, dst in _MM_LAYER_MAP.items():
            if rest.startswith(src + "."):
                out[f"{prefix}encoder.layers.{i}.{dst}{rest[len(src) :]}"] = value
                break
        else:
            logger.info("multimolecule key %s not converted", key)
    for (prefix, kind, i), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise ValueError(f"layer {i}: incomplete query/key/value {kind}")
        out[f"{prefix}encoder.layers.{i}.self_attn.qkv.{kind}"] = torch.cat(
            [parts["query"], parts["key"], parts["value"]], dim=0
        )
    return out


# ----------------------------------------------------------------------------- official Paddle

_OFF_LAYER = re.compile(r"^ernie\.encoder\.layers\.(\d+)\.(.+)$")
_OFF_LAYER_MAP = {
    "self_attn.out_proj": "self_attn.out_proj",
    "linear1": "linear1",
    "linear2": "linear2",
    "norm1": "norm1",
    "norm2": "norm2",
}
_OFF_HEAD_MAP = {
    "cls.predictions.transform.weight": "mlm_head.transform.weight",
    "cls.predictions.transform.bias": "mlm_head.transform.bias",
    "cls.predictions.layer_norm.weight": "mlm_head.layer_norm.weight",
    "cls.predictions.layer_norm.bias": "mlm_head.layer_norm.bias",
    "cls.predictions.decoder_bias": "mlm_head.bias",
}
# Paddle Linear layers store (in, out); torch stores (out, in).
_OFF_TRANSPOSED = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight",
                   "linear1.weight", "linear2.weight", "pooler.dense.weight",
                   "predictions.transform.weight")  # fmt: skip


def _as_tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x)))


def _normalise_official_key(key: str) -> str:
    key = key.replace("LayerNorm", "layer_norm").replace(".gamma", ".weight")
    return key.replace(".beta", ".bias")


def is_official_state_dict(state: Mapping[str, Any]) -> bool:
    return any(k.startswith("ernie.encoder.layers.") and "q_proj" in k for k in state)


def config_from_official(raw: Mapping[str, Any], state: Mapping[str, Any]) -> RnaErnieConfig:
    """Our config from an official ``config.json`` (Paddle names) and the weight shapes."""
    word = _as_tensor(state["ernie.embeddings.word_embeddings.weight"])
    n_layers = 1 + max(int(m.group(1)) for k in state if (m := _OFF_LAYER.match(k)))
    lin1 = _as_tensor(state["ernie.encoder.layers.0.linear1.weight"])
    kw: dict[str, Any] = dict(
        vocab_size=word.shape[0],
        hidden_size=word.shape[1],
        num_hidden_layers=n_layers,
        intermediate_size=lin1.shape[1],
        max_position_embeddings=_as_tensor(
            state["ernie.embeddings.position_embeddings.weight"]
        ).shape[0],
        type_vocab_size=_as_tensor(state["ernie.embeddings.token_type_embeddings.weight"]).shape[0],
        num_attention_heads=raw.get("num_attention_heads", 12),
    )
    for ours, theirs in (
        ("hidden_act", "hidden_act"),
        ("hidden_dropout", "hidden_dropout_prob"),
        ("attention_dropout", "attention_probs_dropout_prob"),
        ("initializer_range", "initializer_range"),
        ("pad_token_id", "pad_token_id"),
    ):
        if theirs in raw:
            kw[ours] = raw[theirs]
    return RnaErnieConfig(**kw)


def convert_official_state_dict(state: Mapping[str, Any]) -> dict[str, Tensor]:
    """Official PaddlePaddle RNAErnie state dict → ours (``ernie.``-prefixed, plus ``mlm_head.``).

    Paddle names: ``ernie.embeddings.*``, ``ernie.encoder.layers.N.self_attn.{q,k,v,out}_proj``,
    ``linear1/linear2``, ``norm1/norm2``, ``ernie.pooler.dense``, ``cls.predictions.*``; Linear
    weights are stored (in, out) and are transposed here. Values may be tensors or numpy arrays.
    ``cls.predictions.decoder_weight`` is dropped (tied to the word embeddings).
    """
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, int], dict[str, Tensor]] = {}
    for key, value in state.items():
        k = _normalise_official_key(key)
        t = _as_tensor(value)
        if k.endswith(_OFF_TRANSPOSED):
            t = t.t().contiguous()
        if k in _OFF_HEAD_MAP:
            out[_OFF_HEAD_MAP[k]] = t
            continue
        m = _OFF_LAYER.match(k)
        if m is None:
            if k.startswith(("ernie.embeddings.", "ernie.pooler.")):
                out[k] = t
            else:
                logger.info("official key %s not converted", key)
            continue
        i, rest = int(m.group(1)), m.group(2)
        sm = re.match(r"^self_attn\.(q|k|v)_proj\.(weight|bias)$", rest)
        if sm:
            qkv.setdefault((sm.group(2), i), {})[sm.group(1)] = t
            continue
        for src, dst in _OFF_LAYER_MAP.items():
            if rest.startswith(src + "."):
                out[f"ernie.encoder.layers.{i}.{dst}{rest[len(src) :]}"] = t
                break
        else:
            logger.info("official key %s not converted", key)
    for (kind, i), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"layer {i}: incomplete q/k/v {kind}")
        out[f"ernie.encoder.layers.{i}.self_attn.qkv.{kind}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]], dim=0
        )
    return out


def to_official_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`convert_official_state_dict` (our keys → Paddle names and layouts)."""
    state = align_prefix(state, "ernie")
    inv_head = {v: k for k, v in _OFF_HEAD_MAP.items()}
    out: dict[str, Tensor] = {}
    for k, t in state.items():
        if k in inv_head:
            name = inv_head[k]
            out[name] = t.t().contiguous() if name.endswith(_OFF_TRANSPOSED) else t
            continue
        m = re.match(r"^ernie\.encoder\.layers\.(\d+)\.self_attn\.qkv\.(weight|bias)$", k)
        if m:
            i, kind = m.groups()
            for part, chunk in zip("qkv", t.chunk(3, dim=0)):
                name = f"ernie.encoder.layers.{i}.self_attn.{part}_proj.{kind}"
                out[name] = chunk.t().contiguous() if kind == "weight" else chunk.clone()
            continue
        if k.startswith("ernie."):
            out[k] = t.t().contiguous() if k.endswith(_OFF_TRANSPOSED) else t
    if "ernie.embeddings.word_embeddings.weight" in out and "mlm_head.bias" in state:
        out["cls.predictions.decoder_weight"] = out[
            "ernie.embeddings.word_embeddings.weight"
        ].clone()
    return out
