"""Fused (FlashAttention-style) multi-head attention with a key-padding mask, in Triton.

Layers, bottom-up:

* ``_attn_fwd_kernel``: online-softmax forward; one program per (query block, batch*head); fp32
  accumulators; saves the base-2 log-sum-exp per query row for the backward pass.
* ``_attn_bwd_preprocess_kernel``: ``delta = rowsum(dO * O)``.
* ``_attn_bwd_dkdv_kernel``: one program per key block, loops over query blocks (dK, dV).
* ``_attn_bwd_dq_kernel``: one program per query block, loops over key blocks (dQ).
* ``_AttentionFunction``: the ``torch.autograd.Function`` gluing them together.
* :func:`attention`: the public op (validation, defaults, optional probabilities).
* ``_attn_varlen_fwd_kernel`` / :func:`attention_varlen`: the forward over packed (unpadded)
  sequences, FlashAttention's varlen layout: tokens (T, H, D) and ``cu_seqlens`` (B + 1,);
  inference only (no backward), autotuned on its own (smaller blocks for short sequences).

Masking: for sequence ``b`` keys ``>= lengths[b]`` are ignored and the loops stop at
``lengths[b]``; query rows ``>= lengths[b]`` produce zeros (and receive / pass on no gradient).
The ``L`` tail of the last block is masked with load masks and ``tl.where``. Head dims that are
not a power of two are padded to the next power of two (>= 16) with masked loads.

Triton is imported lazily-guarded: importing this module without Triton works, calling
:func:`attention` then raises. Without a GPU, set ``TRITON_INTERPRET=1`` *before* importing this
module to run the kernels on CPU tensors in Triton's interpreter (slow; small shapes only); the
interpreter path uses one fixed 32x32 block config.

On CUDA the three main kernels are autotuned, keyed on (next power of two of L, padded D, dtypes).
``RNAERNIE_TRITON_AUTOTUNE=0`` (read at import) swaps autotuning for one fixed config per kernel,
which bounds compile time when many shapes are tried (tests).

Not supported (yet): causal masking, dropout, attention bias, D > 128, fp8.
"""

from __future__ import annotations

import math
import os

import torch

from .reference import attention_probs_ref

try:  # Triton is optional: the package must import on a CPU-only install without it.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None

__all__ = ["HAS_TRITON", "MAX_HEAD_DIM", "attention", "attention_varlen", "is_interpreted"]

HAS_TRITON = triton is not None
MAX_HEAD_DIM = 128
_SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# RNAERNIE_TRITON_AUTOTUNE=0 (read at import) replaces autotuning by one fixed config per kernel.
_AUTOTUNE = os.environ.get("RNAERNIE_TRITON_AUTOTUNE", "1") != "0"

if HAS_TRITON:

    @triton.jit(do_not_specialize=["L_BUCKET"])
    def _attn_fwd_kernel(
        Q, K, V, Out, Lse, Lengths,
        sm_scale,
        stride_qb, stride_qh, stride_qm, stride_qd,
        stride_kb, stride_kh, stride_kn, stride_kd,
        stride_vb, stride_vh, stride_vn, stride_vd,
        stride_ob, stride_oh, stride_om, stride_od,
        H, L, D, L_BUCKET,
        D_PAD: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
    ):  # fmt: skip
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        seq_len = tl.load(Lengths + b)

        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, D_PAD)
        mask_d = offs_d < D
        row_in = offs_m < L

        q_ptrs = (Q + b * stride_qb + h * stride_qh
                  + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qd)  # fmt: skip
        q = tl.load(q_ptrs, mask=row_in[:, None] & mask_d[None, :], other=0.0)  # (M, Dp)
        k_base = K + b * stride_kb + h * stride_kh
        v_base = V + b * stride_vb + h * stride_vh

        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, D_PAD], dtype=tl.float32)
        qk_scale = sm_scale * 1.4426950408889634  # work in base 2: exp(x) = exp2(x * log2(e))

        # Query blocks entirely past the sequence end skip the loop and write zeros.
        hi = tl.where(pid_m * BLOCK_M < seq_len, seq_len, 0)
        for start_n in range(0, hi, BLOCK_N):
            cols = start_n + offs_n
            key_ok = cols < seq_len
            kT = tl.load(
                k_base + cols[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                mask=key_ok[None, :] & mask_d[:, None],
                other=0.0,
            )  # (Dp, N)
            qk = tl.dot(q, kT, input_precision=INPUT_PRECISION) * qk_scale  # (M, N)
            qk = tl.where(key_ok[None, :], qk, float("-inf"))
            # Every block has >= 1 valid key (start_n < seq_len), so m_new is finite.
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            p = tl.math.exp2(qk - m_new[:, None])
            alpha = tl.math.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(
                v_base + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                mask=key_ok[:, None] & mask_d[None, :],
                other=0.0,
            )  # (N, Dp)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=INPUT_PRECISION)
            m_i = m_new

        row_ok = offs_m < seq_len
        l_safe = tl.where(l_i == 0.0, 1.0, l_i)
        out = tl.where(row_ok[:, None], acc / l_safe[:, None], 0.0)
        lse = tl.where(row_ok, m_i + tl.math.log2(l_safe), 0.0)
        o_ptrs = (Out + b * stride_ob + h * stride_oh
                  + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od)  # fmt: skip
        tl.store(o_ptrs, out.to(Out.dtype.element_ty), mask=row_in[:, None] & mask_d[None, :])
        tl.store(Lse + pid_bh.to(tl.int64) * L + offs_m, lse, mask=row_in)

    @triton.jit(do_not_specialize=["L_BUCKET"])
    def _attn_varlen_fwd_kernel(
        Q, K, V, Out, CuSeqlens,
        sm_scale,
        stride_qt, stride_qh, stride_qd,
        stride_kt, stride_kh, stride_kd,
        stride_vt, stride_vh, stride_vd,
        stride_ot, stride_oh, stride_od,
        H, D, L_BUCKET,
        D_PAD: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
    ):  # fmt: skip
        # forward over packed sequences: tokens (T, H, D), sequence b = rows cu[b] .. cu[b+1]
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = pid_bh // H
        h = (pid_bh % H).to(tl.int64)
        start = tl.load(CuSeqlens + b).to(tl.int64)
        seq_len = (tl.load(CuSeqlens + b + 1) - tl.load(CuSeqlens + b)).to(tl.int32)

        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, D_PAD)
        mask_d = offs_d < D
        row_ok = offs_m < seq_len  # rows past the end belong to the next sequence: never touched
        rows = start + offs_m.to(tl.int64)

        q = tl.load(Q + rows[:, None] * stride_qt + h * stride_qh + offs_d[None, :] * stride_qd,
                    mask=row_ok[:, None] & mask_d[None, :], other=0.0)  # fmt: skip
        k_base = K + start * stride_kt + h * stride_kh
        v_base = V + start * stride_vt + h * stride_vh

        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, D_PAD], dtype=tl.float32)
        qk_scale = sm_scale * 1.4426950408889634

        hi = tl.where(pid_m * BLOCK_M < seq_len, seq_len, 0)
        for start_n in range(0, hi, BLOCK_N):
            cols = start_n + offs_n
            key_ok = cols < seq_len
            kT = tl.load(
                k_base + cols[None, :].to(tl.int64) * stride_kt + offs_d[:, None] * stride_kd,
                mask=key_ok[None, :] & mask_d[:, None],
                other=0.0,
            )  # (Dp, N)
            qk = tl.dot(q, kT, input_precision=INPUT_PRECISION) * qk_scale
            qk = tl.where(key_ok[None, :], qk, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(qk, 1))
            p = tl.math.exp2(qk - m_new[:, None])
            alpha = tl.math.exp2(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(
                v_base + cols[:, None].to(tl.int64) * stride_vt + offs_d[None, :] * stride_vd,
                mask=key_ok[:, None] & mask_d[None, :],
                other=0.0,
            )  # (N, Dp)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=INPUT_PRECISION)
            m_i = m_new

        l_safe = tl.where(l_i == 0.0, 1.0, l_i)
        out = acc / l_safe[:, None]
        tl.store(Out + rows[:, None] * stride_ot + h * stride_oh + offs_d[None, :] * stride_od,
                 out.to(Out.dtype.element_ty), mask=row_ok[:, None] & mask_d[None, :])  # fmt: skip

    @triton.jit
    def _attn_bwd_preprocess_kernel(
        Out, DO, Delta,
        stride_ob, stride_oh, stride_om, stride_od,
        stride_dob, stride_doh, stride_dom, stride_dod,
        H, L, D,
        D_PAD: tl.constexpr,
        BLOCK_M: tl.constexpr,
    ):  # fmt: skip
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, D_PAD)
        mask = (offs_m < L)[:, None] & (offs_d < D)[None, :]
        o = tl.load(
            Out + b * stride_ob + h * stride_oh
            + offs_m[:, None] * stride_om + offs_d[None, :] * stride_od,
            mask=mask, other=0.0,
        ).to(tl.float32)  # fmt: skip
        do = tl.load(
            DO + b * stride_dob + h * stride_doh
            + offs_m[:, None] * stride_dom + offs_d[None, :] * stride_dod,
            mask=mask, other=0.0,
        ).to(tl.float32)  # fmt: skip
        tl.store(Delta + pid_bh.to(tl.int64) * L + offs_m, tl.sum(o * do, 1), mask=offs_m < L)

    @triton.jit(do_not_specialize=["L_BUCKET"])
    def _attn_bwd_dkdv_kernel(
        Q, K, V, DO, DK, DV, Lse, Delta, Lengths,
        sm_scale,
        stride_qb, stride_qh, stride_qm, stride_qd,
        stride_kb, stride_kh, stride_kn, stride_kd,
        stride_vb, stride_vh, stride_vn, stride_vd,
        stride_dob, stride_doh, stride_dom, stride_dod,
        stride_dkb, stride_dkh, stride_dkn, stride_dkd,
        stride_dvb, stride_dvh, stride_dvn, stride_dvd,
        H, L, D, L_BUCKET,
        D_PAD: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
    ):  # fmt: skip
        pid_n = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        seq_len = tl.load(Lengths + b)

        cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_m = tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, D_PAD)
        mask_d = offs_d < D
        key_ok = cols < seq_len
        kv_mask = key_ok[:, None] & mask_d[None, :]

        k = tl.load(
            K + b * stride_kb + h * stride_kh
            + cols[:, None] * stride_kn + offs_d[None, :] * stride_kd,
            mask=kv_mask, other=0.0,
        )  # (N, Dp)  # fmt: skip
        v = tl.load(
            V + b * stride_vb + h * stride_vh
            + cols[:, None] * stride_vn + offs_d[None, :] * stride_vd,
            mask=kv_mask, other=0.0,
        )  # (N, Dp)  # fmt: skip
        q_base = Q + b * stride_qb + h * stride_qh
        do_base = DO + b * stride_dob + h * stride_doh
        row_base = pid_bh.to(tl.int64) * L

        dk = tl.zeros([BLOCK_N, D_PAD], dtype=tl.float32)
        dv = tl.zeros([BLOCK_N, D_PAD], dtype=tl.float32)
        qk_scale = sm_scale * 1.4426950408889634

        # Key blocks entirely past the sequence end skip the loop and write zero gradients.
        hi = tl.where(pid_n * BLOCK_N < seq_len, seq_len, 0)
        for start_m in range(0, hi, BLOCK_M):
            rows = start_m + offs_m
            row_ok = rows < seq_len
            qT = tl.load(
                q_base + rows[None, :] * stride_qm + offs_d[:, None] * stride_qd,
                mask=row_ok[None, :] & mask_d[:, None],
                other=0.0,
            )  # (Dp, M)
            lse = tl.load(Lse + row_base + rows, mask=row_ok, other=0.0)
            qkT = tl.dot(k, qT, input_precision=INPUT_PRECISION) * qk_scale  # (N, M)
            pT = tl.math.exp2(qkT - lse[None, :])
            pT = tl.where(key_ok[:, None] & row_ok[None, :], pT, 0.0)
            do = tl.load(
                do_base + rows[:, None] * stride_dom + offs_d[None, :] * stride_dod,
                mask=row_ok[:, None] & mask_d[None, :],
                other=0.0,
            )  # (M, Dp)
            dv += tl.dot(pT.to(do.dtype), do, input_precision=INPUT_PRECISION)
            delta = tl.load(Delta + row_base + rows, mask=row_ok, other=0.0)
            dpT = tl.dot(v, tl.trans(do), input_precision=INPUT_PRECISION)  # (N, M)
            dsT = pT * (dpT - delta[None, :])
            dk += tl.dot(dsT.to(qT.dtype), tl.trans(qT), input_precision=INPUT_PRECISION)

        dk *= sm_scale
        out_mask = (cols < L)[:, None] & mask_d[None, :]
        tl.store(
            DK + b * stride_dkb + h * stride_dkh
            + cols[:, None] * stride_dkn + offs_d[None, :] * stride_dkd,
            dk.to(DK.dtype.element_ty), mask=out_mask,
        )  # fmt: skip
        tl.store(
            DV + b * stride_dvb + h * stride_dvh
            + cols[:, None] * stride_dvn + offs_d[None, :] * stride_dvd,
            dv.to(DV.dtype.element_ty), mask=out_mask,
        )  # fmt: skip

    @triton.jit(do_not_specialize=["L_BUCKET"])
    def _attn_bwd_dq_kernel(
        Q, K, V, DO, DQ, Lse, Delta, Lengths,
        sm_scale,
        stride_qb, stride_qh, stride_qm, stride_qd,
        stride_kb, stride_kh, stride_kn, stride_kd,
        stride_vb, stride_vh, stride_vn, stride_vd,
        stride_dob, stride_doh, stride_dom, stride_dod,
        stride_dqb, stride_dqh, stride_dqm, stride_dqd,
        H, L, D, L_BUCKET,
        D_PAD: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        INPUT_PRECISION: tl.constexpr,
    ):  # fmt: skip
        pid_m = tl.program_id(0)
        pid_bh = tl.program_id(1)
        b = (pid_bh // H).to(tl.int64)
        h = (pid_bh % H).to(tl.int64)
        seq_len = tl.load(Lengths + b)

        rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = tl.arange(0, BLOCK_N)
        offs_d = tl.arange(0, D_PAD)
        mask_d = offs_d < D
        row_ok = rows < seq_len
        row_mask = row_ok[:, None] & mask_d[None, :]

        q = tl.load(
            Q + b * stride_qb + h * stride_qh
            + rows[:, None] * stride_qm + offs_d[None, :] * stride_qd,
            mask=row_mask, other=0.0,
        )  # (M, Dp)  # fmt: skip
        do = tl.load(
            DO + b * stride_dob + h * stride_doh
            + rows[:, None] * stride_dom + offs_d[None, :] * stride_dod,
            mask=row_mask, other=0.0,
        )  # (M, Dp)  # fmt: skip
        row_base = pid_bh.to(tl.int64) * L
        lse = tl.load(Lse + row_base + rows, mask=row_ok, other=0.0)
        delta = tl.load(Delta + row_base + rows, mask=row_ok, other=0.0)
        k_base = K + b * stride_kb + h * stride_kh
        v_base = V + b * stride_vb + h * stride_vh

        dq = tl.zeros([BLOCK_M, D_PAD], dtype=tl.float32)
        qk_scale = sm_scale * 1.4426950408889634

        hi = tl.where(pid_m * BLOCK_M < seq_len, seq_len, 0)
        for start_n in range(0, hi, BLOCK_N):
            cols = start_n + offs_n
            key_ok = cols < seq_len
            kvT_mask = key_ok[None, :] & mask_d[:, None]
            kT = tl.load(
                k_base + cols[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                mask=kvT_mask, other=0.0,
            )  # (Dp, N)  # fmt: skip
            vT = tl.load(
                v_base + cols[None, :] * stride_vn + offs_d[:, None] * stride_vd,
                mask=kvT_mask, other=0.0,
            )  # (Dp, N)  # fmt: skip
            qk = tl.dot(q, kT, input_precision=INPUT_PRECISION) * qk_scale  # (M, N)
            p = tl.math.exp2(qk - lse[:, None])
            p = tl.where(row_ok[:, None] & key_ok[None, :], p, 0.0)
            dp = tl.dot(do, vT, input_precision=INPUT_PRECISION)  # (M, N)
            ds = p * (dp - delta[:, None])
            dq += tl.dot(ds.to(kT.dtype), tl.trans(kT), input_precision=INPUT_PRECISION)

        dq *= sm_scale
        tl.store(
            DQ + b * stride_dqb + h * stride_dqh
            + rows[:, None] * stride_dqm + offs_d[None, :] * stride_dqd,
            dq.to(DQ.dtype.element_ty), mask=(rows < L)[:, None] & mask_d[None, :],
        )  # fmt: skip

    _INTERPRETED = type(_attn_fwd_kernel).__name__ == "InterpretedFunction"

    def _cfg(m, n, stages, warps):
        return triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_stages=stages, num_warps=warps)

    if _INTERPRETED:
        # One small config: the interpreter is slow and autotuning there would only add time.
        # 32 x 32 blocks make the test lengths (97, 130) span several blocks with a ragged tail.
        _FIXED = {name: {"BLOCK_M": 32, "BLOCK_N": 32} for name in ("fwd", "dkdv", "dq", "varlen")}
    elif not _AUTOTUNE:
        # RNAERNIE_TRITON_AUTOTUNE=0: one config per kernel that fits every supported D and dtype
        # (saves compile time when many shapes are tried, e.g. in tests).
        _FIXED = {
            "fwd": {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
            "dkdv": {"BLOCK_M": 32, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
            "dq": {"BLOCK_M": 64, "BLOCK_N": 32, "num_warps": 4, "num_stages": 2},
            "varlen": {"BLOCK_M": 64, "BLOCK_N": 64, "num_warps": 4, "num_stages": 2},
        }
    else:
        _FIXED = {"fwd": {}, "dkdv": {}, "dq": {}, "varlen": {}}

    if _INTERPRETED or not _AUTOTUNE:
        _attn_fwd = _attn_fwd_kernel
        _attn_varlen_fwd = _attn_varlen_fwd_kernel
        _attn_bwd_dkdv = _attn_bwd_dkdv_kernel
        _attn_bwd_dq = _attn_bwd_dq_kernel
    else:
        # Tuned per (length bucket, padded head dim, dtypes). A few configs keep the first-call
        # cost (compile + benchmark) to seconds; configs that run out of shared memory for
        # large D are skipped by the autotuner.
        _KEY = ["L_BUCKET", "D_PAD"]
        _attn_fwd = triton.autotune(
            configs=[
                _cfg(128, 64, 3, 4),
                _cfg(128, 64, 4, 8),
                _cfg(64, 64, 3, 4),
                _cfg(128, 128, 2, 8),
                _cfg(64, 32, 2, 4),
            ],
            key=_KEY,
        )(_attn_fwd_kernel)
        # the packed forward: the same search plus smaller blocks for short sequences (L <= 128)
        _attn_varlen_fwd = triton.autotune(
            configs=[
                _cfg(128, 64, 3, 4),
                _cfg(64, 64, 3, 4),
                _cfg(64, 32, 2, 4),
                _cfg(32, 32, 2, 4),
                _cfg(128, 128, 2, 8),
            ],
            key=_KEY,
        )(_attn_varlen_fwd_kernel)
        _attn_bwd_dkdv = triton.autotune(
            configs=[
                _cfg(32, 128, 3, 4),
                _cfg(64, 128, 2, 8),
                _cfg(32, 64, 3, 4),
                _cfg(64, 64, 2, 4),
            ],
            key=_KEY,
        )(_attn_bwd_dkdv_kernel)
        _attn_bwd_dq = triton.autotune(
            configs=[
                _cfg(128, 32, 3, 4),
                _cfg(128, 64, 2, 8),
                _cfg(64, 32, 3, 4),
                _cfg(64, 64, 2, 4),
            ],
            key=_KEY,
        )(_attn_bwd_dq_kernel)
else:  # pragma: no cover
    _INTERPRETED = False


def is_interpreted() -> bool:
    """Whether the kernels were built for Triton's CPU interpreter (``TRITON_INTERPRET=1``)."""
    return _INTERPRETED


def _head_dim_pad(D: int) -> int:
    return max(16, 1 << (D - 1).bit_length())


def _length_bucket(L: int) -> int:
    return max(16, 1 << (L - 1).bit_length())


def _strides(t: torch.Tensor) -> tuple[int, int, int, int]:
    return tuple(t.stride())  # type: ignore[return-value]


def _input_precision(dtype: torch.dtype) -> str:
    # fp32 inputs must not silently drop to tf32; for 16-bit inputs the setting is irrelevant.
    return "ieee" if dtype == torch.float32 else "tf32"


def _check_tensors(q, k, v, layout: str) -> None:
    """The checks both ops share: tensors of ``layout``'s rank, one shape, dtype and device, a
    supported dtype and head dim, and a device the kernels run on."""
    rank = layout.count(",") + 1
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != rank:
            raise ValueError(f"{name} must be {rank}-D {layout}, got shape {tuple(t.shape)}")
    if not (q.shape == k.shape == v.shape):
        raise ValueError(
            f"q, k, v must have the same shape {layout}, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.dtype not in _SUPPORTED_DTYPES:
        raise ValueError(f"unsupported dtype {q.dtype}; expected float16, bfloat16 or float32")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    D = q.shape[-1]
    if not 1 <= D <= MAX_HEAD_DIM:
        raise ValueError(f"head dim D={D} is not supported; expected 1 <= D <= {MAX_HEAD_DIM}")
    if q.device.type != "cuda" and not _INTERPRETED:
        raise ValueError(
            f"the Triton attention kernel needs CUDA tensors (got {q.device}); set "
            "TRITON_INTERPRET=1 before importing rnaernie.kernels to run it on CPU, or use "
            "rnaernie.kernels.reference.attention_ref"
        )


def _check_inputs(q, k, v, lengths) -> torch.Tensor:
    _check_tensors(q, k, v, "(B, H, L, D)")
    B, H, L, _ = q.shape
    if min(B, H, L) < 1:
        raise ValueError(f"B, H and L must be >= 1, got shape {tuple(q.shape)}")
    if lengths is None:
        return torch.full((B,), L, dtype=torch.int32, device=q.device)
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape (B,) = ({B},), got {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be an integer tensor, got {lengths.dtype}")
    lengths = lengths.to(device=q.device, dtype=torch.int32)
    if bool(((lengths < 0) | (lengths > L)).any()):
        raise ValueError(f"lengths must lie in [0, L={L}], got {lengths.tolist()}")
    return lengths.contiguous()


def _launch_fwd(q, k, v, lengths, sm_scale):
    B, H, L, D = q.shape
    out = torch.empty((B, H, L, D), dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, L), dtype=torch.float32, device=q.device)

    def grid(meta):
        return (triton.cdiv(L, meta["BLOCK_M"]), B * H)

    _attn_fwd[grid](
        q, k, v, out, lse, lengths,
        sm_scale,
        *_strides(q), *_strides(k), *_strides(v), *_strides(out),
        H, L, D, _length_bucket(L),
        D_PAD=_head_dim_pad(D),
        INPUT_PRECISION=_input_precision(q.dtype),
        **_FIXED["fwd"],
    )  # fmt: skip
    return out, lse


def _launch_bwd(do, q, k, v, out, lse, lengths, sm_scale):
    B, H, L, D = q.shape
    D_PAD = _head_dim_pad(D)
    precision = _input_precision(q.dtype)
    delta = torch.empty((B, H, L), dtype=torch.float32, device=q.device)
    pre_block = 64
    _attn_bwd_preprocess_kernel[(triton.cdiv(L, pre_block), B * H)](
        out, do, delta,
        *_strides(out), *_strides(do),
        H, L, D,
        D_PAD=D_PAD, BLOCK_M=pre_block,
    )  # fmt: skip

    dq = torch.empty((B, H, L, D), dtype=q.dtype, device=q.device)
    dk = torch.empty((B, H, L, D), dtype=k.dtype, device=q.device)
    dv = torch.empty((B, H, L, D), dtype=v.dtype, device=q.device)

    def grid_kv(meta):
        return (triton.cdiv(L, meta["BLOCK_N"]), B * H)

    _attn_bwd_dkdv[grid_kv](
        q, k, v, do, dk, dv, lse, delta, lengths,
        sm_scale,
        *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dk), *_strides(dv),
        H, L, D, _length_bucket(L),
        D_PAD=D_PAD, INPUT_PRECISION=precision,
        **_FIXED["dkdv"],
    )  # fmt: skip

    def grid_q(meta):
        return (triton.cdiv(L, meta["BLOCK_M"]), B * H)

    _attn_bwd_dq[grid_q](
        q, k, v, do, dq, lse, delta, lengths,
        sm_scale,
        *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dq),
        H, L, D, _length_bucket(L),
        D_PAD=D_PAD, INPUT_PRECISION=precision,
        **_FIXED["dq"],
    )  # fmt: skip
    return dq, dk, dv


class _AttentionFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, lengths, sm_scale):
        out, lse = _launch_fwd(q, k, v, lengths, sm_scale)
        ctx.save_for_backward(q, k, v, out, lse, lengths)
        ctx.sm_scale = sm_scale
        return out

    @staticmethod
    def backward(ctx, do):
        q, k, v, out, lse, lengths = ctx.saved_tensors
        dq, dk, dv = _launch_bwd(do, q, k, v, out, lse, lengths, ctx.sm_scale)
        return dq, dk, dv, None, None


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    lengths: torch.Tensor | None = None,
    sm_scale: float | None = None,
    return_probs: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Fused non-causal attention ``softmax(q k^T * sm_scale) v`` with key padding.

    Never materialises the (L, L) scores (except for ``return_probs``); differentiable in
    ``q``, ``k`` and ``v``.

    Args:
        q, k, v: (B, H, L, D) tensors of one dtype (float16, bfloat16 or float32) on one CUDA
            device (or CPU under ``TRITON_INTERPRET=1``); any strides. ``1 <= D <= 128``; a D that
            is not a power of two is padded internally.
        lengths: (B,) integers in ``[0, L]``: keys ``0 .. lengths[b] - 1`` are valid, the rest
            padding. ``None`` means every key is valid. Query rows ``>= lengths[b]`` output zeros.
        sm_scale: softmax scale, default ``1 / sqrt(D)``.
        return_probs: also return the (B, H, L, L) float32 attention probabilities. They are
            computed by the plain PyTorch reference (:func:`attention_probs_ref`), not by a
            kernel: O(L^2) memory, detached from autograd, meant for analysis only.

    Returns:
        (B, H, L, D) output in the input dtype, or ``(output, probs)`` with ``return_probs``.

    Raises:
        ValueError: on mismatched shapes/dtypes/devices, unsupported D or dtype, bad lengths,
            or CPU tensors without the interpreter. RuntimeError if Triton is not installed.

    Example:
        >>> q = k = v = torch.randn(2, 12, 130, 64, device="cuda", dtype=torch.float16)
        >>> out = attention(q, k, v, lengths=torch.tensor([130, 97], device="cuda"))
        >>> out.shape
        torch.Size([2, 12, 130, 64])
    """
    if not HAS_TRITON:
        raise RuntimeError(
            "triton is not installed; install rnaernie[triton] or use "
            "rnaernie.kernels.reference.attention_ref"
        )
    lengths_i32 = _check_inputs(q, k, v, lengths)
    if sm_scale is None:
        sm_scale = 1.0 / math.sqrt(q.shape[-1])
    sm_scale = float(sm_scale)
    out = _AttentionFunction.apply(q, k, v, lengths_i32, sm_scale)
    if not return_probs:
        return out
    with torch.no_grad():
        probs = attention_probs_ref(q, k, lengths_i32, sm_scale, upcast=True)
    return out, probs


def attention_varlen(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_seqlens: torch.Tensor,
    max_seqlen: int | None = None,
    sm_scale: float | None = None,
) -> torch.Tensor:
    """Non-causal attention over packed sequences (forward only, no autograd).

    Args:
        q, k, v: (T, H, D) tensors of one dtype on one CUDA device (or CPU under
            ``TRITON_INTERPRET=1``): the tokens of all sequences one after another, no padding.
        cu_seqlens: (B + 1,) non-decreasing integers, ``cu_seqlens[0] == 0`` and
            ``cu_seqlens[-1] == T``: sequence ``b`` is rows ``cu_seqlens[b] .. cu_seqlens[b+1]``.
        max_seqlen: the longest sequence (computed from ``cu_seqlens`` when not given).
        sm_scale: softmax scale, default ``1 / sqrt(D)``.

    Returns:
        (T, H, D) in the input dtype: each token attends to the tokens of its own sequence.

    Example:
        >>> q = k = v = torch.randn(130 + 97, 12, 64, device="cuda", dtype=torch.float16)
        >>> attention_varlen(q, k, v, torch.tensor([0, 130, 227], device="cuda")).shape
        torch.Size([227, 12, 64])
    """
    if not HAS_TRITON:
        raise RuntimeError("triton is not installed; install rnaernie[triton]")
    _check_tensors(q, k, v, "(T, H, D)")
    T, H, D = q.shape
    cu = torch.as_tensor(cu_seqlens)
    if cu.dim() != 1 or len(cu) < 2 or cu.dtype.is_floating_point or cu.dtype == torch.bool:
        raise ValueError("cu_seqlens must be a 1-D integer tensor of B + 1 >= 2 offsets")
    cu = cu.to(device=q.device, dtype=torch.int32).contiguous()
    steps = cu[1:] - cu[:-1]
    if int(cu[0]) != 0 or int(cu[-1]) != T or bool((steps < 0).any()):
        raise ValueError(f"cu_seqlens must rise from 0 to T={T}, got {cu.tolist()}")
    longest = int(steps.max())
    max_seqlen = longest if max_seqlen is None else int(max_seqlen)
    if max_seqlen < longest:
        raise ValueError(f"max_seqlen={max_seqlen} is shorter than a sequence ({longest})")
    sm_scale = 1.0 / math.sqrt(D) if sm_scale is None else float(sm_scale)
    out = torch.empty_like(q)
    if T == 0 or max_seqlen == 0:
        return out

    def grid(meta):
        return (triton.cdiv(max_seqlen, meta["BLOCK_M"]), (len(cu) - 1) * H)

    _attn_varlen_fwd[grid](
        q, k, v, out, cu,
        sm_scale,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        H, D, _length_bucket(max_seqlen),
        D_PAD=_head_dim_pad(D),
        INPUT_PRECISION=_input_precision(q.dtype),
        **_FIXED["varlen"],
    )  # fmt: skip
    return out
