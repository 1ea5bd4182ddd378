"""Plain PyTorch references for the Triton kernels (imports only torch).

Every kernel in ``rnaernie.kernels`` has a reference here, and the tests hold the two together:

* :func:`attention_ref` / :func:`attention_probs_ref` for :func:`rnaernie.kernels.attention.attention`;
* :func:`mlm_mask_ref` (with :func:`fmix32` / :func:`fmix32_torch`) for
  :func:`rnaernie.kernels.masking.mlm_mask`.
"""

from __future__ import annotations

import itertools
import math

import torch

__all__ = [
    "IGNORE_INDEX",
    "attention_probs_ref",
    "attention_ref",
    "attention_varlen_ref",
    "fmix32",
    "fmix32_torch",
    "key_padding_mask",
    "mlm_mask_ref",
]

IGNORE_INDEX = -100
_U32 = 0xFFFFFFFF


# --------------------------------------------------------------------------------------------
# attention
# --------------------------------------------------------------------------------------------
def key_padding_mask(lengths: torch.Tensor | None, B: int, L: int, device) -> torch.Tensor:
    """Boolean (B, L) mask, ``True`` at valid positions ``0 .. lengths[b] - 1`` (all if ``None``)."""
    if lengths is None:
        return torch.ones(B, L, dtype=torch.bool, device=device)
    pos = torch.arange(L, device=device)
    return pos[None, :] < lengths.to(device=device, dtype=torch.long)[:, None]


def _masked_scores(q, k, lengths, sm_scale):
    B, _, L, D = q.shape
    if sm_scale is None:
        sm_scale = 1.0 / math.sqrt(D)
    valid = key_padding_mask(lengths, B, L, q.device)  # (B, L)
    # A sequence of length 0 has no valid key; let its (all-padding) query rows attend to every
    # key so the softmax stays finite -- those rows are zeroed afterwards anyway.
    keys = valid | ~valid.any(dim=1, keepdim=True)
    scores = torch.matmul(q, k.transpose(-2, -1)) * sm_scale  # (B, H, L, L)
    scores = scores.masked_fill(~keys[:, None, None, :], float("-inf"))
    return scores, valid


def attention_probs_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    lengths: torch.Tensor | None = None,
    sm_scale: float | None = None,
    upcast: bool = True,
) -> torch.Tensor:
    """Attention probabilities (B, H, L, L) of ``softmax(q k^T * sm_scale)`` with key padding.

    Keys ``>= lengths[b]`` get probability 0; query rows ``>= lengths[b]`` are all zeros.
    Computed in fp32 when ``upcast`` (default), else in the input dtype.
    """
    if upcast:
        q, k = q.float(), k.float()
    scores, valid = _masked_scores(q, k, lengths, sm_scale)
    probs = torch.softmax(scores, dim=-1)
    return probs.masked_fill(~valid[:, None, :, None], 0.0)


def attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    lengths: torch.Tensor | None = None,
    sm_scale: float | None = None,
    upcast: bool = False,
) -> torch.Tensor:
    """Plain masked softmax attention, materialising the (B, H, L, L) scores.

    Args:
        q, k, v: (B, H, L, D).
        lengths: (B,) integer number of valid (left-aligned) keys per sequence, or ``None``.
        sm_scale: softmax scale, default ``1 / sqrt(D)``.
        upcast: compute in fp32 and cast the result back to the input dtype (the "fp32
            reference"); otherwise compute in the input dtype (the "same-precision reference").

    Returns:
        (B, H, L, D) in the input dtype; query rows ``>= lengths[b]`` are zeros.

    Example:
        >>> q = k = v = torch.randn(2, 4, 7, 32)
        >>> attention_ref(q, k, v, torch.tensor([7, 3])).shape
        torch.Size([2, 4, 7, 32])
    """
    dtype = q.dtype
    if upcast:
        q, k, v = q.float(), k.float(), v.float()
    scores, valid = _masked_scores(q, k, lengths, sm_scale)
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(probs, v)  # (B, H, L, D)
    out = out.masked_fill(~valid[:, None, :, None], 0.0)
    return out.to(dtype)


# --------------------------------------------------------------------------------------------
# MLM masking
# --------------------------------------------------------------------------------------------
def fmix32(x: int) -> int:
    """MurmurHash3's 32-bit finaliser on a Python int (taken modulo 2**32)."""
    x &= _U32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & _U32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & _U32
    x ^= x >> 16
    return x


def _mul_u32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``(x * c) mod 2**32`` for int64 ``x`` in [0, 2**32) without signed int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _U32


def fmix32_torch(x: torch.Tensor) -> torch.Tensor:
    """Elementwise :func:`fmix32` on an int64 tensor (values taken modulo 2**32)."""
    x = x.to(torch.int64) & _U32
    x = x ^ (x >> 16)
    x = _mul_u32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul_u32(x, 0xC2B2AE35)
    x = x ^ (x >> 16)
    return x


def mlm_mask_ref(
    input_ids: torch.Tensor,
    selected: torch.Tensor,
    seed: int,
    mask_id: int = 4,
    nuc_lo: int = 35,
    n_nuc: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style 80/10/10 corruption of the ``selected`` positions, deterministic in ``seed``.

    For row ``b`` and column ``l`` of the (B, L) tensors::

        h = fmix32(uint32(b * L + l) ^ fmix32(uint32(seed)))
        r = h % 10   # r < 8: mask_id;  r == 8: nuc_lo + (h // 10) % n_nuc;  r == 9: unchanged

    Returns:
        ``(masked_ids, labels)``, both (B, L) int64; ``labels`` is the original id where selected
        and ``-100`` elsewhere.
    """
    B, L = input_ids.shape
    ids = input_ids.to(torch.int64)
    sel = selected.to(torch.bool)
    counter = torch.arange(B * L, dtype=torch.int64, device=ids.device).view(B, L) & _U32
    h = fmix32_torch(counter ^ fmix32(int(seed)))
    r = h % 10
    nuc = nuc_lo + (h // 10) % n_nuc
    corrupted = torch.where(r < 8, torch.full_like(ids, mask_id), torch.where(r == 8, nuc, ids))
    masked = torch.where(sel, corrupted, ids)
    labels = torch.where(sel, ids, torch.full_like(ids, IGNORE_INDEX))
    return masked, labels


def attention_varlen_ref(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
    sm_scale: float | None = None, upcast: bool = False,
) -> torch.Tensor:  # fmt: skip
    """Packed-sequence attention, one sequence at a time through :func:`attention_ref`: q, k, v
    (T, H, D), sequence ``b`` = rows ``cu_seqlens[b] .. cu_seqlens[b + 1]``; returns (T, H, D).

    Example:
        >>> q = k = v = torch.randn(10, 4, 16)
        >>> attention_varlen_ref(q, k, v, torch.tensor([0, 7, 10])).shape
        torch.Size([10, 4, 16])
    """
    out = torch.zeros_like(q)
    bounds = torch.as_tensor(cu_seqlens).tolist()
    for a, b in itertools.pairwise(bounds):
        if b > a:
            x = [t[a:b].transpose(0, 1)[None] for t in (q, k, v)]  # (1, H, n, D)
            out[a:b] = attention_ref(*x, None, sm_scale, upcast=upcast)[0].transpose(0, 1)
    return out
