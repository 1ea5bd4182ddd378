"""Fused Triton attention vs the plain PyTorch reference (flash-attention test style).

Without CUDA the kernels run in Triton's interpreter on CPU tensors (``TRITON_INTERPRET=1``,
set by ``conftest.py`` and again here before the kernels are imported), so shapes stay small.
The kernel's error against the fp32 reference must be at most 2x (plus a rounding-size atol)
the error of plain PyTorch at the same precision.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():  # must happen before triton.jit decorates the kernels
    os.environ.setdefault("TRITON_INTERPRET", "1")

attn_mod = pytest.importorskip("rnaernie.kernels.attention")
from rnaernie.kernels.reference import (  # noqa: E402
    attention_probs_ref,
    attention_ref,
    attention_varlen_ref,
)

attention = attn_mod.attention
DEVICE = "cuda" if torch.cuda.is_available() and not attn_mod.is_interpreted() else "cpu"

pytestmark = [
    pytest.mark.skipif(
        DEVICE == "cpu" and not attn_mod.is_interpreted(),
        reason="no CUDA and the kernels were imported before TRITON_INTERPRET=1 was set",
    ),
    pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION:UserWarning"),  # triton 3.9 on GPU
]

BF16_IN_INTERPRETER = pytest.mark.skipif(
    attn_mod.is_interpreted(),
    reason="Triton's interpreter computes tl.dot on bfloat16 operands wrongly (triton 3.9); "
    "bf16 is covered by tests/test_kernels_gpu.py on a GPU",
)


def _lengths(B: int, L: int, gen: torch.Generator) -> torch.Tensor:
    """Per-sequence lengths: full, 1, and random in [1, L]."""
    rand = torch.randint(1, L + 1, (max(B - 2, 0),), generator=gen)
    return torch.cat([torch.tensor([L, 1]), rand])[:B].to(DEVICE)


def _inputs(B, H, L, D, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (
        torch.randn(B, H, L, D, generator=gen).to(device=DEVICE, dtype=dtype).requires_grad_()
        for _ in range(3)
    )
    do = torch.randn(B, H, L, D, generator=gen).to(device=DEVICE, dtype=dtype)
    return q, k, v, do, _lengths(B, L, gen)


def _rounding_atol(x: torch.Tensor) -> float:
    """Size of one rounding step at the magnitude of ``x`` (flash-attention's atol trick)."""
    floor = 1e-5 if x.dtype == torch.float32 else 1e-6  # fp32: summation-order noise
    return 2 * (x + 0.3 - 0.3 - x).abs().max().item() + floor


def _check_close(name, fast, ref, pt):
    """|fast - ref| <= 2 |pt - ref| + atol, elementwise max over the tensor."""
    err = (fast.float() - ref.float()).abs().max().item()
    pt_err = (pt.float() - ref.float()).abs().max().item()
    atol = _rounding_atol(ref)
    assert torch.isfinite(fast).all(), f"{name}: non-finite values"
    assert err <= 2 * pt_err + atol, (
        f"{name}: kernel err {err:.3g} > 2 * pytorch err {pt_err:.3g} + {atol:.3g}"
    )


def _compare(q, k, v, do, lengths, sm_scale=None, backward=True):
    out = attention(q, k, v, lengths, sm_scale)
    out_ref = attention_ref(q, k, v, lengths, sm_scale, upcast=True)
    out_pt = attention_ref(q, k, v, lengths, sm_scale, upcast=False)
    _check_close("out", out, out_ref, out_pt)
    if not backward:
        return out
    grads = torch.autograd.grad(out, (q, k, v), do)
    grads_ref = torch.autograd.grad(out_ref, (q, k, v), do)
    grads_pt = torch.autograd.grad(out_pt, (q, k, v), do)
    for name, g, gr, gp in zip(("dq", "dk", "dv"), grads, grads_ref, grads_pt):
        _check_close(name, g, gr, gp)
    return out, grads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("D", [32, 64])
@pytest.mark.parametrize("L", [1, 7, 97, 130])
def test_forward_backward_matches_reference(L, D, dtype):
    q, k, v, do, lengths = _inputs(3, 2, L, D, dtype, seed=L * 1000 + D)
    _compare(q, k, v, do, lengths)


@BF16_IN_INTERPRETER
def test_bfloat16():
    q, k, v, do, lengths = _inputs(3, 2, 97, 64, torch.bfloat16)
    _compare(q, k, v, do, lengths)


@pytest.mark.parametrize("D", [16, 48, 80, 128])
def test_head_dim_padding(D):
    """D not a power of two (48, 80) is padded with masked loads; 16 and 128 are the edges."""
    q, k, v, do, lengths = _inputs(2, 1, 37, D, torch.float32, seed=D)
    _compare(q, k, v, do, lengths)


def test_no_lengths_and_custom_scale():
    q, k, v, do, _ = _inputs(2, 2, 40, 32, torch.float16, seed=3)
    _compare(q, k, v, do, None, sm_scale=0.3)


def test_padding_rows_are_zero_and_get_no_gradient():
    L = 45
    q, k, v, do, _ = _inputs(3, 2, L, 32, torch.float32, seed=4)
    lengths = torch.tensor([L, 0, 13], device=DEVICE)  # includes an empty sequence
    out, (dq, dk, dv) = _compare(q, k, v, do, lengths)
    for b, n in enumerate(lengths.tolist()):
        assert (out[b, :, n:] == 0).all()
        assert (dq[b, :, n:] == 0).all()
        assert (dk[b, :, n:] == 0).all()
        assert (dv[b, :, n:] == 0).all()
    # Keys past the length must not influence the valid rows.
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[2, :, 13:] = 1e4
    v2[2, :, 13:] = float("nan")
    out2 = attention(q.detach(), k2, v2, lengths)
    torch.testing.assert_close(out2, out.detach(), rtol=0, atol=0)


def test_non_contiguous_inputs_use_strides():
    """(B, L, H, D) layout seen through a transpose, a strided head dim, a strided grad."""
    B, H, L, D = 2, 3, 50, 32
    gen = torch.Generator().manual_seed(5)
    qkv = torch.randn(B, L, 3, H, 2 * D, generator=gen).to(DEVICE)  # (B, L, 3, H, 2D)
    q, k, v = (qkv[:, :, i, :, ::2].transpose(1, 2).requires_grad_() for i in range(3))
    assert not q.is_contiguous() and q.stride(-1) == 2
    do = torch.randn(B, H, D, L, generator=gen).to(DEVICE).transpose(-1, -2)
    lengths = torch.tensor([L, 21], device=DEVICE)
    _compare(q, k, v, do, lengths)


def test_return_probs():
    q, k, v, _, lengths = _inputs(2, 2, 33, 32, torch.float32, seed=6)
    out, probs = attention(q, k, v, lengths, return_probs=True)
    assert probs.shape == (2, 2, 33, 33) and probs.dtype == torch.float32
    torch.testing.assert_close(probs, attention_probs_ref(q, k, lengths))
    torch.testing.assert_close(probs @ v.float(), out.float(), rtol=1e-4, atol=1e-5)
    n = lengths[1].item()
    assert (probs[1, :, :, n:] == 0).all() and (probs[1, :, n:] == 0).all()


def _t(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype, device=DEVICE)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((_t(2, 2, 8, 32), _t(2, 2, 9, 32), _t(2, 2, 8, 32)), "same shape"),
        ((_t(2, 8, 32), _t(2, 8, 32), _t(2, 8, 32)), "4-D"),
        ((_t(1, 1, 8, 256),) * 3, "head dim"),
        ((_t(1, 1, 8, 32), _t(1, 1, 8, 32, dtype=torch.float16), _t(1, 1, 8, 32)), "dtype"),
        ((_t(1, 1, 8, 32, dtype=torch.float64),) * 3, "unsupported dtype"),
        ((_t(1, 1, 8, 32),) * 3 + (torch.tensor([9]),), "lengths must lie"),
        ((_t(1, 1, 8, 32),) * 3 + (torch.tensor([1, 2]),), "lengths must have shape"),
        ((_t(1, 1, 8, 32),) * 3 + (torch.tensor([1.0]),), "integer"),
    ],
)
def test_bad_inputs_raise_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        attention(*args)


def test_modules_import_without_triton(monkeypatch):
    """``rnaernie.kernels.*`` must import on a CPU-only install without Triton; ops then raise."""
    import importlib.util
    import sys
    from pathlib import Path

    monkeypatch.setitem(sys.modules, "triton", None)  # makes `import triton` raise ImportError
    monkeypatch.setitem(sys.modules, "triton.language", None)
    for name in ("attention", "masking"):
        path = Path(attn_mod.__file__).with_name(f"{name}.py")
        spec = importlib.util.spec_from_file_location(f"rnaernie.kernels._no_triton_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert mod.HAS_TRITON is False
        op = mod.attention if name == "attention" else mod.mlm_mask
        with pytest.raises(RuntimeError, match="triton is not installed"):
            op(torch.zeros(1, 1, 1, 16), torch.zeros(1, 1, 1, 16), torch.zeros(1, 1, 1, 16))


@pytest.mark.parametrize("lengths", [[97, 1, 0, 130, 33], [64], [5, 5, 5]])
@pytest.mark.parametrize("D", [64, 40])
def test_varlen_forward_matches_per_sequence_reference(lengths, D):
    """Packed tokens: every sequence attends to itself only (empty sequences included, D not a
    power of two padded), within the tolerance of the padded kernel."""
    gen = torch.Generator().manual_seed(sum(lengths) + D)
    T, H = sum(lengths), 3
    q, k, v = (torch.randn(T, H, D, generator=gen).to(DEVICE) for _ in range(3))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device=DEVICE)
    out = attn_mod.attention_varlen(q, k, v, cu)
    _check_close(
        "varlen",
        out,
        attention_varlen_ref(q, k, v, cu, upcast=True),
        attention_varlen_ref(q, k, v, cu),
    )
    # the same tokens as a padded batch through the padded kernel agree
    L = max(lengths)
    pad = torch.zeros(len(lengths), H, L, D, device=DEVICE)
    qp, kp, vp = pad.clone(), pad.clone(), pad.clone()
    for i, (a, b) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        for dst, src in ((qp, q), (kp, k), (vp, v)):
            dst[i, :, : b - a] = src[a:b].transpose(0, 1)
    padded = attention(qp, kp, vp, torch.tensor(lengths, device=DEVICE))
    for i, (a, b) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        torch.testing.assert_close(
            out[a:b], padded[i, :, : b - a].transpose(0, 1), atol=1e-5, rtol=1e-5
        )


def test_varlen_bad_inputs():
    q = torch.randn(10, 2, 16, device=DEVICE)
    for cu, match in (([0, 4, 9], "rise from 0 to T=10"), ([1, 10], "rise from 0"),
                      ([0, 6, 4, 10], "rise"), ([0.0, 10.0], "integer")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            attn_mod.attention_varlen(q, q, q, torch.tensor(cu, device=DEVICE))
    with pytest.raises(ValueError, match="max_seqlen=3 is shorter"):
        attn_mod.attention_varlen(q, q, q, torch.tensor([0, 10], device=DEVICE), max_seqlen=3)
    with pytest.raises(ValueError, match=r"\(T, H, D\)"):
        attn_mod.attention_varlen(q[None], q[None], q[None], torch.tensor([0, 10], device=DEVICE))
