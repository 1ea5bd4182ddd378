"""The RNAErnie encoder in PyTorch, top-down: embeddings → attention → FFN → layer → encoder → model.

Architecture of the official RNAErnie (an ERNIE/BERT encoder): word + position + token-type
embeddings, LayerNorm, dropout; N post-LN blocks of multi-head self-attention and a ReLU FFN; a tanh
pooler on [CLS]. Shapes: B batch, L tokens (``[CLS] seq [SEP]`` then right padding), C hidden,
H heads, D = C / H.

Differences from a literal port, all invisible in the numbers: q/k/v are one fused (C → 3C)
projection (one GEMM instead of three), the token-type row 0 is broadcast instead of looked up when
``token_type_ids`` is None, and the pooler can be skipped.

Example:
    >>> import torch
    >>> from rnaernie.model import RnaErnieConfig
    >>> model = RnaErnieModel(RnaErnieConfig.preset("tiny")).eval()
    >>> ids = torch.tensor([[2, 35, 36, 37, 38, 3]])
    >>> model(ids).last_hidden_state.shape
    torch.Size([1, 6, 256])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .config import RnaErnieConfig
from .dispatch import attention, attention_eager, attention_varlen, resolve_impl
from .pretrained import RnaErniePreTrainedModel, quantize_int8

logger = logging.getLogger(__name__)

_ACTIVATIONS = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "tanh": torch.tanh,
}


@dataclass
class RnaErnieModelOutput:
    """``last_hidden_state`` (B, L, C); ``pooler_output`` (B, C) or None; ``hidden_states``: tuple of
    N+1 (B, L, C) (embeddings first) when asked; ``attentions``: tuple of N (B, H, L, L) when asked."""

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


# ----------------------------------------------------------------------------- linear fast path

_HAS_MKLDNN_LINEAR = torch.backends.mkldnn.is_available() and hasattr(
    torch.ops.mkldnn, "_linear_pointwise"
)
_MKLDNN_DTYPES = (torch.float32,)
if _HAS_MKLDNN_LINEAR and getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None) is not None:
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        _MKLDNN_DTYPES = (torch.float32, torch.bfloat16)


def linear(module: nn.Module, x: Tensor, act: str | None = None) -> Tensor:
    """``act(module(x))``; on CPU without autograd, one oneDNN call with bias (and ReLU) fused.

    The fast path is ``torch.ops.mkldnn._linear_pointwise`` (what ``torch.compile`` emits on CPU);
    it is taken only for a plain ``nn.Linear`` on fp32/bf16 CPU tensors when no gradient is being
    recorded, so training and int8 (quantised modules) always use the plain path. ``act`` is a
    :data:`_ACTIVATIONS` name.
    """
    if (
        _HAS_MKLDNN_LINEAR
        and type(module) is nn.Linear
        and x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and x.dtype in _MKLDNN_DTYPES
        and x.dtype == module.weight.dtype
    ):
        fused = act == "relu"
        y = torch.ops.mkldnn._linear_pointwise(
            x, module.weight, module.bias, "relu" if fused else "none", [], ""
        )
        return y if fused or act is None else _ACTIVATIONS[act](y)
    y = module(x)
    return y if act is None else _ACTIVATIONS[act](y)


# ----------------------------------------------------------------------------- embeddings


class RnaErnieEmbeddings(nn.Module):
    def __init__(self, config: RnaErnieConfig):
        super().__init__()
        C = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, C, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, C)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, C)
        self.layer_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self,
        input_ids: Tensor,  # (B, L)
        token_type_ids: Tensor | None = None,  # (B, L)
        position_ids: Tensor | None = None,  # (B, L) or (L,)
    ) -> Tensor:
        L = input_ids.shape[1]
        x = self.word_embeddings(input_ids)  # (B, L, C)
        if position_ids is None:
            if L > self.position_embeddings.num_embeddings:
                raise ValueError(
                    f"sequence of {L} tokens exceeds max_position_embeddings="
                    f"{self.position_embeddings.num_embeddings}"
                )
            x = x + self.position_embeddings.weight[:L]  # (L, C) broadcast
        else:
            x = x + self.position_embeddings(position_ids)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]  # (C,) broadcast
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.layer_norm(x))  # (B, L, C)


# ----------------------------------------------------------------------------- attention


class RnaErnieSelfAttention(nn.Module):
    """Fused q/k/v projection → :func:`rnaernie.model.dispatch.attention` → output projection."""

    def __init__(self, config: RnaErnieConfig):
        super().__init__()
        C = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.dropout_p = config.attention_dropout
        self.impl = config.attn_implementation
        self.qkv = nn.Linear(C, 3 * C)
        self.out_proj = nn.Linear(C, C)

    def forward(
        self,
        x: Tensor,  # (B, L, C)
        key_padding_mask: Tensor | None,  # (B, L) bool, True = real token; None = no padding
        lengths: Tensor | None,  # (B,) real tokens per sequence
        output_attentions: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        B, L, C = x.shape
        H, D = self.num_heads, self.head_dim
        qkv = linear(self.qkv, x).view(B, L, 3, H, D).permute(2, 0, 3, 1, 4)  # (3, B, H, L, D)
        q, k, v = qkv.unbind(0)  # each (B, H, L, D)
        dropout_p = self.dropout_p if self.training else 0.0
        weights = None
        if output_attentions:
            mask = key_padding_mask
            if mask is not None:
                mask = mask | ~mask.any(dim=-1, keepdim=True)
            y, weights = attention_eager(q, k, v, mask, dropout_p=dropout_p, return_weights=True)
        else:
            y = attention(
                q, k, v, key_padding_mask=key_padding_mask, lengths=lengths,
                dropout_p=dropout_p, impl=self.impl,
            )  # fmt: skip
        y = y.transpose(1, 2).reshape(B, L, C)  # (B, L, C)
        return linear(self.out_proj, y), weights


# ----------------------------------------------------------------------------- layer


class RnaErnieLayer(nn.Module):
    """Post-LN block: ``x = norm1(x + attn(x)); x = norm2(x + linear2(act(linear1(x))))``."""

    def __init__(self, config: RnaErnieConfig):
        super().__init__()
        C, F_ = config.hidden_size, config.intermediate_size
        self.self_attn = RnaErnieSelfAttention(config)
        self.norm1 = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.linear1 = nn.Linear(C, F_)
        self.linear2 = nn.Linear(F_, C)
        self.norm2 = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.act = config.hidden_act

    def forward(
        self,
        x: Tensor,  # (B, L, C)
        key_padding_mask: Tensor | None,
        lengths: Tensor | None,
        output_attentions: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        a, weights = self.self_attn(x, key_padding_mask, lengths, output_attentions)
        x = self.norm1(x + self.dropout(a))  # (B, L, C)
        h = linear(self.linear1, x, self.act)  # (B, L, F)
        x = self.norm2(x + self.dropout(linear(self.linear2, h)))  # (B, L, C)
        return x, weights


# ----------------------------------------------------------------------------- encoder


class RnaErnieEncoder(nn.Module):
    def __init__(self, config: RnaErnieConfig):
        super().__init__()
        self.layers = nn.ModuleList(RnaErnieLayer(config) for _ in range(config.num_hidden_layers))
        self.gradient_checkpointing = False

    def forward(
        self,
        x: Tensor,  # (B, L, C)
        key_padding_mask: Tensor | None,
        lengths: Tensor | None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, ...] | None, tuple[Tensor, ...] | None]:
        hidden: list[Tensor] = [x] if output_hidden_states else []
        attns: list[Tensor] = []
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x, w = checkpoint(
                    layer, x, key_padding_mask, lengths, output_attentions, use_reentrant=False
                )
            else:
                x, w = layer(x, key_padding_mask, lengths, output_attentions)
            if output_hidden_states:
                hidden.append(x)
            if output_attentions:
                attns.append(w)  # type: ignore[arg-type]
        return (
            x,
            tuple(hidden) if output_hidden_states else None,
            tuple(attns) if output_attentions else None,
        )


def encode_packed(model: RnaErnieModel, input_ids: Tensor, cu_seqlens: Tensor,
                  max_seqlen: int | None = None) -> Tensor:  # fmt: skip
    """Inference over packed sequences, no padding anywhere: ``input_ids`` (T,) holds the token
    rows of all sequences one after another (each ``[CLS] seq [SEP]``), sequence ``b`` = rows
    ``cu_seqlens[b] .. cu_seqlens[b + 1]``. Embeddings, every linear layer and the FFN run on the T
    real tokens only; attention through :func:`rnaernie.model.dispatch.attention_varlen` (the
    Triton varlen kernel on CUDA). Returns the last hidden states (T, C), equal to the padded
    forward's at the real positions. Token type 0, no dropout (``model`` in eval mode)."""
    if input_ids.dim() != 1:
        raise ValueError(f"input_ids must be (T,) packed rows, got shape {tuple(input_ids.shape)}")
    cu = cu_seqlens.to(device=input_ids.device, dtype=torch.long)
    lengths = cu[1:] - cu[:-1]
    if len(cu) < 2 or int(cu[0]) != 0 or int(cu[-1]) != len(input_ids) or bool((lengths < 0).any()):
        raise ValueError(f"cu_seqlens must rise from 0 to T={len(input_ids)}")
    longest = int(lengths.max())
    max_seqlen = longest if max_seqlen is None else int(max_seqlen)
    emb = model.embeddings
    if longest > emb.position_embeddings.num_embeddings:
        raise ValueError(f"a sequence of {longest} tokens exceeds max_position_embeddings="
                         f"{emb.position_embeddings.num_embeddings}")  # fmt: skip
    starts = torch.repeat_interleave(cu[:-1], lengths)
    positions = torch.arange(len(input_ids), device=input_ids.device) - starts
    x = emb.word_embeddings(input_ids) + emb.position_embeddings(positions)
    x = emb.layer_norm(x + emb.token_type_embeddings.weight[0])  # (T, C)
    T, C = x.shape
    for layer in model.encoder.layers:
        att = layer.self_attn
        H, D = att.num_heads, att.head_dim
        q, k, v = linear(att.qkv, x).view(T, 3, H, D).unbind(1)  # each (T, H, D)
        y = attention_varlen(q, k, v, cu, max_seqlen).reshape(T, C)
        x = layer.norm1(x + linear(att.out_proj, y))
        x = layer.norm2(x + linear(layer.linear2, linear(layer.linear1, x, layer.act)))
    return x


class RnaErniePooler(nn.Module):
    """tanh(dense(h[:, 0])): (B, L, C) → (B, C)."""

    def __init__(self, config: RnaErnieConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h: Tensor) -> Tensor:
        return torch.tanh(self.dense(h[:, 0]))


# ----------------------------------------------------------------------------- model


class RnaErnieModel(RnaErniePreTrainedModel):
    """The RNAErnie encoder.

    Feed our 39-token ids (:mod:`rnaernie.vocab`), laid out ``[CLS] seq [SEP]`` and right-padded
    with 0. ``from_pretrained`` also accepts a directory saved by multimolecule's ``RnaErnieModel``
    (its 28-token embeddings are remapped onto our layout; see :mod:`rnaernie.model.convert`).
    """

    base_model_prefix = ""

    def __init__(self, config: RnaErnieConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = RnaErnieEmbeddings(config)
        self.encoder = RnaErnieEncoder(config)
        self.pooler = RnaErniePooler(config) if add_pooling_layer else None
        self.init_weights()

    def set_attn_implementation(self, impl: str) -> None:
        """Switch every layer's attention to ``impl`` (``auto | eager | sdpa | triton``)."""
        resolve_impl(impl, torch.empty(0))  # validates the name
        self.config.attn_implementation = impl
        for layer in self.encoder.layers:
            layer.self_attn.impl = impl

    def forward(
        self,
        input_ids: Tensor,  # (B, L) int64
        attention_mask: Tensor | None = None,  # (B, L), 1 = real token
        token_type_ids: Tensor | None = None,  # (B, L)
        position_ids: Tensor | None = None,  # (B, L)
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_pooler: bool = True,
    ) -> RnaErnieModelOutput:
        """Encode a batch. Without ``attention_mask``, positions holding the pad id are padding.

        Padding must be on the right (the Triton path reads only per-row lengths).

        ``return_pooler=False`` skips the pooler (it is also skipped when the model has none).
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, L), got shape {tuple(input_ids.shape)}")
        if attention_mask is None:
            mask = input_ids != self.config.pad_token_id
        else:
            if attention_mask.shape != input_ids.shape:
                raise ValueError("attention_mask must have the shape of input_ids")
            mask = attention_mask.to(torch.bool)
        lengths = mask.sum(dim=-1)  # (B,)
        if not mask.is_cuda and not torch.compiler.is_compiling() and bool(mask.all()):
            mask = None  # no padding: the unmasked (fastest) attention path
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, L, C)
        x, hidden, attns = self.encoder(
            x, mask, lengths, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )  # fmt: skip
        pooled = self.pooler(x) if (self.pooler is not None and return_pooler) else None
        return RnaErnieModelOutput(x, pooled, hidden, attns)

    def quantize_int8(self) -> RnaErnieModel:
        """Dynamic int8 quantisation of every ``nn.Linear`` (CPU inference only), in place.

        Weights become int8 per-channel, activations are quantised on the fly. Embeddings and
        LayerNorms stay fp32. Returns ``self`` (now inference-only; do not train or save it).
        """
        return quantize_int8(self)
