"""MLM masking kernel: bit-exact with the PyTorch reference, right proportions, fmix32 vectors."""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():  # must happen before triton.jit decorates the kernel
    os.environ.setdefault("TRITON_INTERPRET", "1")

masking = pytest.importorskip("rnaernie.kernels.masking")
from rnaernie.kernels.reference import fmix32, fmix32_torch, mlm_mask_ref  # noqa: E402

mlm_mask = masking.mlm_mask
DEVICE = "cuda" if torch.cuda.is_available() and not masking._INTERPRETED else "cpu"

pytestmark = [
    pytest.mark.skipif(
        DEVICE == "cpu" and not masking._INTERPRETED,
        reason="no CUDA and the kernel was imported before TRITON_INTERPRET=1 was set",
    ),
    pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION:UserWarning"),  # triton 3.9 on GPU
]

MASK, NUC_LO, N_NUC = 4, 35, 4


def _fmix32_plain(x: int) -> int:
    """Independent spelling of MurmurHash3's fmix32 (explicit modulo instead of masks)."""
    m = 2**32
    x %= m
    x ^= x >> 16
    x = (x * 2246822507) % m
    x ^= x >> 13
    x = (x * 3266489909) % m
    x ^= x >> 16
    return x


def test_fmix32_vectors():
    assert fmix32(0) == 0
    # Values computed with _fmix32_plain and pinned, so a change to either spelling shows up.
    expected = {1: 0x514E28B7, 2: 0x30F4C306, 0xDEADBEEF: 0x0DE5C6A9, 0xFFFFFFFF: 0x81F16F39}
    for x, h in expected.items():
        assert _fmix32_plain(x) == h
        assert fmix32(x) == h
    xs = torch.tensor([0, 1, 2, 12345, 2**31 - 1, 2**31, 2**32 - 1, 2**32 + 7])
    assert fmix32_torch(xs).tolist() == [_fmix32_plain(int(x)) for x in xs]
    gen = torch.Generator().manual_seed(0)
    xs = torch.randint(0, 2**32, (2000,), generator=gen)
    assert fmix32_torch(xs).tolist() == [fmix32(int(x)) for x in xs]


def test_reference_follows_the_formula_elementwise():
    """mlm_mask_ref against a scalar transcription of the spec, position by position."""
    B, L, seed = 3, 11, 2**32 + 99
    ids = torch.randint(0, 40, (B, L), generator=torch.Generator().manual_seed(1))
    sel = torch.ones(B, L, dtype=torch.bool)
    masked, labels = mlm_mask_ref(ids, sel, seed)
    s = _fmix32_plain(seed)
    for b in range(B):
        for col in range(L):
            h = _fmix32_plain(((b * L + col) % 2**32) ^ s)
            r = h % 10
            want = MASK if r < 8 else (NUC_LO + (h // 10) % N_NUC if r == 8 else int(ids[b, col]))
            assert int(masked[b, col]) == want
    assert torch.equal(labels, ids)


def _random_case(B, L, p, seed):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 39, (B, L), generator=gen)  # the 39 token ids
    sel = torch.rand(B, L, generator=gen) < p
    return ids.to(DEVICE), sel.to(DEVICE)


@pytest.mark.parametrize(
    ("B", "L", "p", "seed"),
    [
        (1, 1, 1.0, 0),
        (1, 1, 0.0, 5),
        (3, 7, 0.5, 2**32 - 1),
        (5, 97, 1.0, 123456789),
        (4, 130, 0.0, 42),
        (7, 1025, 0.15, -3),
        (2, 3000, 0.3, 2**40 + 17),
    ],
)
def test_kernel_equals_reference(B, L, p, seed):
    ids, sel = _random_case(B, L, p, seed=B * L)
    masked, labels = mlm_mask(ids, sel, seed)
    masked_ref, labels_ref = mlm_mask_ref(ids, sel, seed)
    assert masked.dtype == labels.dtype == torch.int64
    assert torch.equal(masked, masked_ref)
    assert torch.equal(labels, labels_ref)
    assert torch.equal(labels[~sel], torch.full_like(labels[~sel], -100))
    assert torch.equal(masked[~sel], ids[~sel])


def test_non_contiguous_and_int32_inputs():
    ids, sel = _random_case(6, 64, 0.5, seed=9)
    ids_t, sel_t = ids.t(), sel.t()  # (64, 6) views with column-major strides
    masked, labels = mlm_mask(ids_t.to(torch.int32), sel_t, 77)
    masked_ref, labels_ref = mlm_mask_ref(ids_t, sel_t, 77)
    assert torch.equal(masked, masked_ref) and torch.equal(labels, labels_ref)


def test_custom_ids():
    ids, sel = _random_case(3, 50, 1.0, seed=10)
    out = mlm_mask(ids, sel, 1, mask_id=1, nuc_lo=100, n_nuc=5)
    assert all(torch.equal(a, b) for a, b in zip(out, mlm_mask_ref(ids, sel, 1, 1, 100, 5)))


def test_seed_changes_the_draw():
    ids, sel = _random_case(4, 200, 1.0, seed=11)
    assert not torch.equal(mlm_mask(ids, sel, 1)[0], mlm_mask(ids, sel, 2)[0])
    assert torch.equal(mlm_mask(ids, sel, 3)[0], mlm_mask(ids, sel, 3 + 2**32)[0])


def test_proportions():
    """80 / 10 / 10 within 1 % over 128k selected positions; nucleotides uniform."""
    B, L = 64, 2000
    ids = torch.full((B, L), 99, dtype=torch.int64, device=DEVICE)  # distinguishable "unchanged"
    sel = torch.ones(B, L, dtype=torch.bool, device=DEVICE)
    masked, _ = mlm_mask(ids, sel, seed=20240501)
    n = B * L
    frac_mask = (masked == MASK).sum().item() / n
    is_nuc = (masked >= NUC_LO) & (masked < NUC_LO + N_NUC)
    frac_nuc = is_nuc.sum().item() / n
    frac_same = (masked == 99).sum().item() / n
    assert abs(frac_mask - 0.8) < 0.01
    assert abs(frac_nuc - 0.1) < 0.01
    assert abs(frac_same - 0.1) < 0.01
    assert frac_mask + frac_nuc + frac_same == pytest.approx(1.0)
    counts = torch.bincount(masked[is_nuc] - NUC_LO, minlength=N_NUC).double()
    share = counts / counts.sum()
    assert (share - 1 / N_NUC).abs().max().item() < 0.01


@pytest.mark.parametrize(
    ("ids", "sel", "match"),
    [
        (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool), r"\(B, L\)"),
        (torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.bool), r"\(B, L\)"),
        (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool), "integer"),
        (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), "bool"),
    ],
)
def test_bad_inputs(ids, sel, match):
    with pytest.raises(ValueError, match=match):
        mlm_mask(ids.to(DEVICE), sel.to(DEVICE), 0)


@pytest.mark.parametrize(("B", "L", "seed"), [(1, 1, 0), (5, 97, 2**32 + 5), (3, 1030, 77)])
def test_kernel_equals_cpu_path(B, L, seed):
    """The GPU/interpreter kernel gives the same numbers as the C++ CPU path for the same seed."""
    cpu = pytest.importorskip("rnaernie.masking", reason="C++ extension not built")
    ids, sel = _random_case(B, L, 0.5, seed=B + L)
    masked_cpu, labels_cpu = cpu.apply_mlm_replacement(
        ids.cpu().numpy(), sel.cpu().numpy(), seed=seed
    )
    masked, labels = mlm_mask(ids, sel, seed)
    assert masked.cpu().tolist() == masked_cpu.tolist()
    assert labels.cpu().tolist() == labels_cpu.tolist()
