"""The model's dispatch to fast kernels: attention (eager reference, PyTorch SDPA, or the Triton
kernel) and the MLM 80/10/10 replacement of pretraining (C++ on the CPU, Triton on a GPU).

Padding is on the right. A sequence is described either by ``key_padding_mask`` (B, L) bool with
True for real tokens, or by ``lengths`` (B,) = number of real tokens. Outputs at padding *queries*
are finite but meaningless: eager/SDPA let them attend to the real keys, the Triton kernel writes
zeros there; a sequence of length 0 attends uniformly over all positions (eager/SDPA), so no row
ever produces NaN. Compare implementations on real positions only.

The implementation is chosen by the config (``attn_implementation``). ``"auto"`` picks by measurement (``benchmarks/results/gpu_h100/attention_gpu.json``, H100, fp16,
D = 64): the Triton kernel reaches 0.51× / 0.72× of SDPA-flash's forward at L = 512 / 1024 and leads
only with a backward pass at L ≥ 2048, so ``auto`` is SDPA everywhere except for CUDA inputs that
need a gradient at L ≥ :data:`TRITON_MIN_TRAIN_LEN` without attention dropout (the kernel has none).
The environment variable ``RNAERNIE_ATTN_IMPL`` (``eager``, ``sdpa`` or ``triton``) replaces that
choice for every ``"auto"`` layer, e.g. to run a whole script on SDPA without touching its configs.

Example:
    >>> import torch
    >>> q = k = v = torch.randn(2, 4, 7, 16)
    >>> out = attention(q, k, v, lengths=torch.tensor([7, 3]), impl="eager")
    >>> out.shape
    torch.Size([2, 4, 7, 16])
"""

from __future__ import annotations

import functools
import logging
import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger(__name__)

IMPLEMENTATIONS = ("auto", "eager", "sdpa", "triton")
TRITON_MIN_TRAIN_LEN = (
    2048  # below this, SDPA-flash is the faster kernel on H100 (forward and training)
)


@functools.lru_cache(maxsize=1)
def _triton_module() -> Any | None:
    """``rnaernie.kernels.attention`` if Triton is importable, else None (imported lazily, once)."""
    try:
        import triton  # noqa: F401
    except Exception as exc:  # ImportError, or a broken Triton install
        logger.debug("Triton unavailable: %s", exc)
        return None
    try:
        from ..kernels import attention as mod  # type: ignore[attr-defined]
    except ImportError as exc:  # Triton is there but the package was not installed with kernels
        logger.warning("Triton is installed but rnaernie.kernels is not (%s); using PyTorch "
                       "kernels. Install the package (pip install -e .) to get them.", exc)  # fmt: skip
        return None
    return mod if hasattr(mod, "attention") else None


def mlm_replace(
    ids, selected, seed: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """The 80/10/10 MLM replacement of the ``selected`` positions of ``ids`` (numpy (B, L)):
    ``(masked ids, labels)`` as tensors on ``device``, by the Triton kernel on a GPU and by the C++
    routine otherwise (the same numbers for the same ``seed``)."""
    dev = torch.device(device)
    if dev.type == "cuda" and _triton_module() is not None:
        from ..kernels.masking import mlm_mask

        return mlm_mask(torch.from_numpy(ids).to(dev), torch.from_numpy(selected).to(dev), seed)
    from ..masking import apply_mlm_replacement

    m, lab = apply_mlm_replacement(ids, selected, seed=seed)
    return torch.from_numpy(m).to(dev), torch.from_numpy(lab).to(dev)


def triton_available(device: torch.device | str | None = None) -> bool:
    """Whether impl ``"triton"`` can run on ``device``: CUDA (or Triton's CPU interpreter)."""
    mod = _triton_module()
    if mod is None or not getattr(mod, "HAS_TRITON", True):
        return False
    dev = torch.device(device) if device is not None else None
    if dev is None or dev.type == "cuda":
        return torch.cuda.is_available()
    return bool(getattr(mod, "is_interpreted", lambda: False)())


def resolve_impl(impl: str, q: Tensor, dropout_p: float = 0.0) -> str:
    """The concrete implementation ``"auto"`` stands for with these inputs (see the module
    docstring for the measurement behind the choice)."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"attention impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    if impl != "auto":
        return impl
    forced = os.environ.get("RNAERNIE_ATTN_IMPL", "")
    if forced:
        if forced not in IMPLEMENTATIONS or forced == "auto":
            raise ValueError(
                f"RNAERNIE_ATTN_IMPL must be one of {IMPLEMENTATIONS[1:]}, got {forced!r}"
            )
        return forced
    if (q.is_cuda and q.requires_grad and q.shape[-2] >= TRITON_MIN_TRAIN_LEN and dropout_p == 0.0
            and triton_available(q.device)):  # fmt: skip
        return "triton"
    return "sdpa"


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths → (B, L) bool, True for positions ``< length``."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def _key_mask(key_padding_mask: Tensor | None, lengths: Tensor | None, L: int) -> Tensor | None:
    """(B, L) bool of keys to attend to, with empty rows opened up (no NaN), or None."""
    if key_padding_mask is None and lengths is None:
        return None
    mask = (
        key_padding_mask.to(torch.bool)
        if key_padding_mask is not None
        else lengths_to_mask(lengths, L)  # type: ignore[arg-type]
    )
    if mask.shape[-1] != L:
        raise ValueError(f"key_padding_mask has length {mask.shape[-1]}, keys have length {L}")
    empty = ~mask.any(dim=-1, keepdim=True)  # (B, 1)
    return mask | empty


def attention_eager(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    return_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Reference: matmul, masked softmax (fp32), matmul. ``mask`` (B, L) bool, True = attend."""
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-2, -1)).float() * scale  # (B, H, Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1).to(q.dtype)
    weights = probs if return_weights else None
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p)
    return torch.matmul(probs, v), weights  # (B, H, Lq, D)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    key_padding_mask: Tensor | None = None,
    lengths: Tensor | None = None,
    dropout_p: float = 0.0,
    impl: str = "auto",
    scale: float | None = None,
) -> Tensor:
    """Multi-head attention over right-padded sequences.

    Args:
        q, k, v: (B, H, L, D).
        key_padding_mask: (B, L), nonzero/True for real tokens. Or give ``lengths`` instead.
        lengths: (B,) int, number of real tokens per sequence (padding on the right).
        dropout_p: dropout on the attention probabilities (pass 0.0 in eval).
        impl: ``"auto" | "eager" | "sdpa" | "triton"``.
        scale: softmax scale, default ``D ** -0.5``.

    Returns:
        (B, H, L, D).
    """
    if q.dim() != 4 or k.shape != q.shape or v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"q, k, v must be (B, H, L, D); got {tuple(q.shape)}, {tuple(k.shape)}")
    impl = resolve_impl(impl, q, dropout_p)
    L = k.shape[-2]
    if impl == "triton":
        if not triton_available(q.device):
            raise ValueError(
                "impl='triton' needs an importable Triton and CUDA tensors "
                "(or TRITON_INTERPRET=1 for CPU tensors)"
            )
        mod = _triton_module()
        if dropout_p > 0.0:
            raise ValueError("the Triton attention kernel has no dropout; use impl='sdpa'")
        if lengths is None:
            if key_padding_mask is None:
                lengths = torch.full((q.shape[0],), L, dtype=torch.int32, device=q.device)
            else:
                lengths = key_padding_mask.to(torch.int32).sum(dim=-1)
        sm_scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
        return mod.attention(q, k, v, lengths=lengths, sm_scale=sm_scale)
    mask = _key_mask(key_padding_mask, lengths, L)
    if impl == "eager":
        return attention_eager(q, k, v, mask, dropout_p=dropout_p, scale=scale)[0]
    attn_mask = mask[:, None, None, :] if mask is not None else None  # (B, 1, 1, L)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale
    )


def attention_varlen(
    q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, max_seqlen: int
) -> Tensor:
    """Attention over packed sequences (q, k, v (T, H, D); sequence ``b`` = rows ``cu_seqlens[b]
    .. cu_seqlens[b + 1]``), forward only: the Triton varlen kernel where it runs (CUDA, or the
    CPU interpreter), else each sequence through PyTorch SDPA."""
    mod = _triton_module()
    if mod is not None and hasattr(mod, "attention_varlen") and triton_available(q.device):
        return mod.attention_varlen(q, k, v, cu_seqlens, max_seqlen)
    sizes = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
    parts = zip(*(torch.split(t.transpose(0, 1), sizes, dim=1) for t in (q, k, v)))
    return torch.cat([F.scaled_dot_product_attention(*p) for p in parts], dim=1).transpose(0, 1)
