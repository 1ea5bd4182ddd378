"""MLM masking (BERT 80/10/10 corruption) in one Triton launch, bit-exact with the CPU path.

The random decision for row ``b``, column ``l`` of a (B, L) batch comes from a counter-based hash,
so the GPU kernel, the PyTorch reference (:func:`rnaernie.kernels.reference.mlm_mask_ref`) and the
C++ CPU implementation give identical results for the same ``seed``::

    h = fmix32(uint32(b * L + l) ^ fmix32(uint32(seed)))       # MurmurHash3 finaliser
    r = h % 10   # r < 8: mask_id;  r == 8: nuc_lo + (h // 10) % n_nuc;  r == 9: unchanged

Triton is optional (guarded import); without a GPU set ``TRITON_INTERPRET=1`` before importing
this module to run the kernel on CPU tensors.
"""

from __future__ import annotations

import torch

from .reference import IGNORE_INDEX

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised only where triton is absent
    triton = None
    tl = None

__all__ = ["HAS_TRITON", "mlm_mask"]

HAS_TRITON = triton is not None

if HAS_TRITON:

    @triton.jit
    def _fmix32(x):
        # x: uint32 tensor; multiplications wrap modulo 2**32.
        x ^= x >> 16
        x *= 0x85EBCA6B
        x ^= x >> 13
        x *= 0xC2B2AE35
        x ^= x >> 16
        return x

    @triton.jit(do_not_specialize=["seed", "mask_id", "nuc_lo", "n_nuc"])
    def _mlm_mask_kernel(
        Ids, Sel, Masked, Labels,
        seed, mask_id, nuc_lo, n_nuc,
        stride_ib, stride_il, stride_sb, stride_sl,
        L,
        IGNORE: tl.constexpr,
        BLOCK_L: tl.constexpr,
    ):  # fmt: skip
        b = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1).to(tl.int64) * BLOCK_L + tl.arange(0, BLOCK_L)
        in_row = cols < L
        ids = tl.load(Ids + b * stride_ib + cols * stride_il, mask=in_row, other=0)
        sel = tl.load(Sel + b * stride_sb + cols * stride_sl, mask=in_row, other=0) != 0

        seed_mix = _fmix32(seed.to(tl.int64).to(tl.uint32))
        counter = (b * L + cols).to(tl.uint32)  # truncation = modulo 2**32
        h = _fmix32(counter ^ seed_mix)
        r = h % 10
        nuc = nuc_lo + ((h // 10) % n_nuc.to(tl.uint32)).to(tl.int64)
        corrupted = tl.where(r < 8, mask_id.to(tl.int64), tl.where(r == 8, nuc, ids))
        masked = tl.where(sel, corrupted, ids)
        labels = tl.where(sel, ids, IGNORE)
        out = b * L + cols  # outputs are allocated contiguous
        tl.store(Masked + out, masked, mask=in_row)
        tl.store(Labels + out, labels.to(tl.int64), mask=in_row)

    _INTERPRETED = type(_mlm_mask_kernel).__name__ == "InterpretedFunction"
else:  # pragma: no cover
    _INTERPRETED = False


def mlm_mask(
    input_ids: torch.Tensor,
    selected: torch.Tensor,
    seed: int,
    mask_id: int = 4,
    nuc_lo: int = 35,
    n_nuc: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt the ``selected`` positions of ``input_ids`` for masked-language-model training.

    Of the selected positions ~80 % become ``mask_id``, ~10 % a random nucleotide id in
    ``[nuc_lo, nuc_lo + n_nuc)`` and ~10 % stay unchanged; the choice is a pure function of
    ``(seed, b * L + l)``, identical to :func:`~rnaernie.kernels.reference.mlm_mask_ref` and the
    C++ CPU path.

    Args:
        input_ids: (B, L) integer token ids (any strides).
        selected: (B, L) bool, positions chosen for masking (e.g. by the span selector).
        seed: integer seed, taken modulo 2**32.
        mask_id, nuc_lo, n_nuc: the ``[MASK]`` id and the random-replacement id range.

    Returns:
        ``(masked_ids, labels)``: (B, L) int64 each; ``labels`` is the original id where
        selected and ``-100`` elsewhere.

    Example:
        >>> ids = torch.randint(35, 39, (8, 512), device="cuda")
        >>> sel = torch.rand(8, 512, device="cuda") < 0.15
        >>> masked, labels = mlm_mask(ids, sel, seed=1234)
    """
    if not HAS_TRITON:
        raise RuntimeError(
            "triton is not installed; install rnaernie[triton] or use "
            "rnaernie.kernels.reference.mlm_mask_ref"
        )
    if not isinstance(input_ids, torch.Tensor) or not isinstance(selected, torch.Tensor):
        raise ValueError("input_ids and selected must be torch.Tensors")
    if input_ids.dim() != 2 or selected.shape != input_ids.shape:
        raise ValueError(
            "input_ids and selected must both be (B, L), got "
            f"{tuple(input_ids.shape)} and {tuple(selected.shape)}"
        )
    if input_ids.dtype.is_floating_point or input_ids.dtype in (torch.bool, torch.complex64):
        raise ValueError(f"input_ids must be an integer tensor, got {input_ids.dtype}")
    if selected.dtype != torch.bool:
        raise ValueError(f"selected must be a bool tensor, got {selected.dtype}")
    if input_ids.device != selected.device:
        raise ValueError(f"device mismatch: {input_ids.device} vs {selected.device}")
    if input_ids.device.type != "cuda" and not _INTERPRETED:
        raise ValueError(
            f"the Triton masking kernel needs CUDA tensors (got {input_ids.device}); set "
            "TRITON_INTERPRET=1 before importing rnaernie.kernels to run it on CPU, or use "
            "rnaernie.kernels.reference.mlm_mask_ref"
        )
    if n_nuc < 1:
        raise ValueError(f"n_nuc must be >= 1, got {n_nuc}")
    B, L = input_ids.shape
    masked = torch.empty((B, L), dtype=torch.int64, device=input_ids.device)
    labels = torch.empty((B, L), dtype=torch.int64, device=input_ids.device)
    if B == 0 or L == 0:
        return masked, labels
    ids = input_ids.to(torch.int64)
    sel = selected.view(torch.uint8)  # Triton has no bool pointer loads on every backend
    block = min(1024, triton.next_power_of_2(L))
    _mlm_mask_kernel[(B, triton.cdiv(L, block))](
        ids, sel, masked, labels,
        int(seed) % (1 << 32), int(mask_id), int(nuc_lo), int(n_nuc),
        ids.stride(0), ids.stride(1), sel.stride(0), sel.stride(1),
        L,
        IGNORE=IGNORE_INDEX,
        BLOCK_L=block,
    )  # fmt: skip
    return masked, labels
