"""Checkpoint conversion: multimolecule's ``RnaErnie*`` and the official PaddlePaddle RNAErnie
state dicts to our key layout and back.

Vocabulary remapping from multimolecule: our rows take the multimolecule row of the same token
(:data:`rnaernie.vocab.OURS_TO_MULTIMOLECULE`); ``[DEL]``, ``[IND]`` and the 28 RNA-type tokens have
no counterpart there and are initialised from multimolecule's ``<unk>`` row (embedding and MLM bias),
so they behave like ``[UNK]`` until fine-tuned. Multimolecule's IUPAC/gap rows are dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..vocab import OURS_TO_MULTIMOLECULE, VOCAB_SIZE
from .config import RnaErnieConfig

logger = logging.getLogger(__name__)

BASE_PREFIX = "ernie."  # the encoder's key prefix inside a head
MM_UNK_ID = 3  # multimolecule's <unk>


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
