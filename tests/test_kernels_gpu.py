"""Kernel-vs-reference checks at real sizes on a CUDA GPU (skipped without one).

Run with ``pytest -m gpu tests/test_kernels_gpu.py`` on a machine with CUDA; ``scripts/gpu_checks.sh``
runs this file and the benchmarks and writes the results under ``$OUT``.
"""

from __future__ import annotations

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION:UserWarning"),  # triton 3.9 on GPU
    pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU"),
]

if HAS_CUDA:  # only import the kernels where they can be compiled
    triton = pytest.importorskip("triton")
    from rnaernie.kernels.attention import attention
    from rnaernie.kernels.masking import mlm_mask
    from rnaernie.kernels.reference import attention_ref, mlm_mask_ref

DTYPES = [torch.float16, torch.bfloat16]


def _rounding_atol(x: torch.Tensor) -> float:
    floor = 1e-5 if x.dtype == torch.float32 else 1e-6  # fp32: summation-order noise
    return 2 * (x + 0.3 - 0.3 - x).abs().max().item() + floor


def _check_close(name, fast, ref, pt):
    err = (fast.float() - ref.float()).abs().max().item()
    pt_err = (pt.float() - ref.float()).abs().max().item()
    atol = _rounding_atol(ref)
    assert torch.isfinite(fast).all(), f"{name}: non-finite values"
    assert err <= 2 * pt_err + atol, (
        f"{name}: kernel err {err:.3g} > 2 * pytorch err {pt_err:.3g} + {atol:.3g}"
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("L", [512, 1024, 2048])
def test_attention_real_sizes(L, dtype):
    B, H, D = 4, 12, 64
    gen = torch.Generator(device="cuda").manual_seed(L)
    q, k, v, do = (
        torch.randn(B, H, L, D, device="cuda", generator=gen, dtype=dtype) for _ in range(4)
    )
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    lengths = torch.tensor([L, 1, L // 2 + 3, L - 17], device="cuda")
    out = attention(q, k, v, lengths)
    out_ref = attention_ref(q, k, v, lengths, upcast=True)
    out_pt = attention_ref(q, k, v, lengths, upcast=False)
    _check_close("out", out, out_ref, out_pt)
    grads = torch.autograd.grad(out, (q, k, v), do)
    grads_ref = torch.autograd.grad(out_ref, (q, k, v), do)
    grads_pt = torch.autograd.grad(out_pt, (q, k, v), do)
    for name, g, gr, gp in zip(("dq", "dk", "dv"), grads, grads_ref, grads_pt):
        _check_close(name, g, gr, gp)
    for b, n in enumerate(lengths.tolist()):
        assert (out[b, :, n:] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_attention_padded_head_dim(dtype):
    """D = 96 (padded to 128) at a moderate size (fp32 is covered by the small-shape tests)."""
    B, H, L, D = 2, 4, 777, 96
    gen = torch.Generator(device="cuda").manual_seed(1)
    q, k, v = (
        torch.randn(B, H, L, D, device="cuda", generator=gen, dtype=dtype).requires_grad_()
        for _ in range(3)
    )
    lengths = torch.tensor([L, 300], device="cuda")
    out = attention(q, k, v, lengths)
    _check_close(
        "out",
        out,
        attention_ref(q, k, v, lengths, upcast=True),
        attention_ref(q, k, v, lengths, upcast=False),
    )


def test_mlm_mask_real_size():
    B, L = 256, 512
    gen = torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(5, 40, (B, L), device="cuda", generator=gen)
    sel = torch.rand(B, L, device="cuda", generator=gen) < 0.15
    for seed in (0, 12345, 2**32 - 1, 2**40 + 1):
        masked, labels = mlm_mask(ids, sel, seed)
        masked_ref, labels_ref = mlm_mask_ref(ids, sel, seed)
        assert torch.equal(masked, masked_ref)
        assert torch.equal(labels, labels_ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_attention_varlen_real_sizes(dtype):
    """The packed forward against each sequence through the padded reference, nRC-like lengths."""
    from rnaernie.kernels.attention import attention_varlen

    H, D = 12, 64
    gen = torch.Generator().manual_seed(0)
    lengths = [*torch.randint(20, 513, (64,), generator=gen).tolist(), 1, 0, 512]
    T = sum(lengths)
    q, k, v = (torch.randn(T, H, D, device="cuda", dtype=dtype) for _ in range(3))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device="cuda")
    out = attention_varlen(q, k, v, cu)
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist()):
        if b == a:
            continue
        x = [t[a:b].transpose(0, 1)[None] for t in (q, k, v)]
        ref = attention_ref(*x, None, upcast=True)[0].transpose(0, 1)
        pt = attention_ref(*x, None, upcast=False)[0].transpose(0, 1)
        _check_close(f"varlen[{a}:{b}]", out[a:b], ref, pt)
