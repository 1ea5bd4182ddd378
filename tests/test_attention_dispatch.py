"""The attention dispatch: eager (reference) and SDPA agree, padding is honoured, no NaN."""

from __future__ import annotations

import math

import pytest
import torch

from rnaernie.model.dispatch import (
    attention,
    attention_eager,
    lengths_to_mask,
    resolve_impl,
    triton_available,
)


def _qkv(B=3, H=2, L=97, D=24, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, L, D, generator=g, dtype=dtype) for _ in range(3)]


def _naive(q, k, v, lengths):
    """Loop reference: each sequence on its real keys only, padding queries included."""
    out = torch.zeros_like(q)
    for b, n in enumerate(lengths.tolist()):
        n = max(n, 1) if n > 0 else q.shape[2]
        s = q[b] @ k[b, :, :n].transpose(-1, -2) / math.sqrt(q.shape[-1])
        out[b] = torch.softmax(s.double(), -1).float() @ v[b, :, :n]
    return out


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_matches_naive_with_padding(impl):
    q, k, v = _qkv()
    lengths = torch.tensor([97, 50, 1])
    out = attention(q, k, v, lengths=lengths, impl=impl)
    ref = _naive(q, k, v, lengths)
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-5)


def test_eager_vs_sdpa_fp32_padded():
    q, k, v = _qkv(B=4, H=3, L=65, D=16, seed=1)
    lengths = torch.tensor([65, 64, 17, 3])
    mask = lengths_to_mask(lengths, 65)
    a = attention(q, k, v, key_padding_mask=mask, impl="eager")
    b = attention(q, k, v, key_padding_mask=mask, impl="sdpa")
    real = mask[:, None, :, None].expand_as(a)
    assert (a - b)[real].abs().max() < 1e-5
    # mask and lengths describe the same thing
    torch.testing.assert_close(attention(q, k, v, lengths=lengths, impl="sdpa"), b)


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_empty_sequence_gives_no_nan(impl):
    q, k, v = _qkv(B=2, L=9)
    out = attention(q, k, v, lengths=torch.tensor([0, 4]), impl=impl)
    assert torch.isfinite(out).all()


def test_no_mask_is_full_attention():
    q, k, v = _qkv(B=2, L=11)
    full = attention(q, k, v, lengths=torch.tensor([11, 11]), impl="eager")
    torch.testing.assert_close(attention(q, k, v, impl="sdpa"), full, atol=1e-5, rtol=1e-5)


def test_eager_returns_weights_rows_sum_to_one():
    q, k, v = _qkv(B=2, L=10)
    mask = lengths_to_mask(torch.tensor([10, 6]), 10)
    _, w = attention_eager(q, k, v, mask, return_weights=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 10))
    assert w[1, :, :, 6:].abs().max() == 0


def test_gradients_agree():
    q, k, v = _qkv(B=2, L=13, D=8)
    lengths = torch.tensor([13, 7])
    grads = []
    for impl in ("eager", "sdpa"):
        qs = [t.clone().requires_grad_() for t in (q, k, v)]
        out = attention(*qs, lengths=lengths, impl=impl)
        keep = lengths_to_mask(lengths, 13)[:, None, :, None]  # padding queries carry no loss
        (out * keep * torch.linspace(0, 1, 8)).sum().backward()
        grads.append([t.grad for t in qs])
    for ga, gb in zip(*grads):
        torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4)


def test_resolve_and_validation():
    q, k, v = _qkv(B=1, L=4, D=8)
    assert resolve_impl("auto", q) == "sdpa"  # CPU tensors never pick Triton
    with pytest.raises(ValueError, match="impl"):
        attention(q, k, v, impl="flash")
    with pytest.raises(ValueError):
        attention(q[0], k[0], v[0])
    with pytest.raises(ValueError, match="length"):
        attention(q, k, v, key_padding_mask=torch.ones(1, 5, dtype=torch.bool), impl="eager")


@pytest.mark.skipif(
    not triton_available("cpu") and not torch.cuda.is_available(), reason="no Triton"
)
def test_triton_dispatch_matches_sdpa():
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    if not triton_available(dev):
        pytest.skip("Triton kernel not runnable here")
    q, k, v = (t.to(dev) for t in _qkv(B=2, H=2, L=19, D=16))
    lengths = torch.tensor([19, 7], device=dev)
    a = attention(q, k, v, lengths=lengths, impl="triton")
    b = attention(q, k, v, lengths=lengths, impl="sdpa")
    mask = lengths_to_mask(lengths, 19)[:, None, :, None].expand_as(a)
    assert (a - b)[mask].abs().max() < 1e-4
    with pytest.raises(ValueError, match="dropout"):
        attention(q, k, v, lengths=lengths, impl="triton", dropout_p=0.1)


def test_environment_forces_the_auto_choice(monkeypatch):
    q = torch.zeros(1, 1, 2, 4)
    monkeypatch.setenv("RNAERNIE_ATTN_IMPL", "eager")
    assert resolve_impl("auto", q) == "eager"
    assert resolve_impl("sdpa", q) == "sdpa"  # an explicit choice stays
    monkeypatch.setenv("RNAERNIE_ATTN_IMPL", "flash")
    with pytest.raises(ValueError, match="RNAERNIE_ATTN_IMPL"):
        resolve_impl("auto", q)
