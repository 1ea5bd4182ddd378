"""Triton fused attention vs PyTorch SDPA (flash backend) on a CUDA GPU.

One benchmark function per case; sizes parametrized; the SDPA baseline runs in the same process.
Each result carries TFLOP/s in ``extra_info``; at the end a summary with the Triton / SDPA ratio
per case is written to ``$RNAERNIE_BENCH_DIR`` (default ``benchmarks/results``) as
``attention_gpu_summary.json`` together with a description of the machine.

Run (pytest's ini skips benchmarks by default; ``--benchmark-only`` overrides that)::

    pytest benchmarks/bench_attention_gpu.py --benchmark-only \
        --benchmark-json=benchmarks/results/attention_gpu.json

Both implementations run without padding (every sequence full length), since SDPA's flash
backend takes no mask. FLOPs: forward 4*B*H*L*L*D; forward+backward 3.5x that (the backward
is counted as 2.5 forwards, as in FlashAttention's benchmarks).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
pytestmark = [
    pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU"),
    pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION:UserWarning"),  # triton 3.9 on GPU
]

if HAS_CUDA:
    pytest.importorskip("triton")
    from rnaernie.kernels.attention import attention
    from torch.nn.attention import SDPBackend, sdpa_kernel

B, H, D = 4, 12, 64
LENGTHS = [512, 1024, 2048, 4096]
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
RESULTS: dict[tuple[str, str, int], dict[str, float]] = {}


def _sdpa(q, k, v):
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


IMPLS = {"triton": lambda q, k, v: attention(q, k, v), "sdpa_flash": _sdpa}


def _flops(L: int, mode: str) -> float:
    fwd = 4.0 * B * H * L * L * D
    return fwd if mode == "fwd" else 3.5 * fwd


def _machine() -> dict:
    props = torch.cuda.get_device_properties(0)
    import triton

    return {
        "gpu": props.name,
        "sm_count": props.multi_processor_count,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "shape": {"B": B, "H": H, "D": D},
    }


@pytest.fixture(scope="module", autouse=True)
def _write_summary():
    yield
    if not RESULTS:
        return
    rows = []
    for (mode, dtype, L), by_impl in sorted(RESULTS.items()):
        row = {
            "mode": mode,
            "dtype": dtype,
            "L": L,
            **{f"{k}_tflops": v for k, v in by_impl.items()},
        }
        if "triton" in by_impl and "sdpa_flash" in by_impl:
            row["triton_over_sdpa"] = by_impl["triton"] / by_impl["sdpa_flash"]
        rows.append(row)
    out_dir = Path(os.environ.get("RNAERNIE_BENCH_DIR", Path(__file__).parent / "results"))
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"machine": _machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "rows": rows}
    tmp = out_dir / "attention_gpu_summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out_dir / "attention_gpu_summary.json")


def _run(benchmark, impl: str, mode: str, dtype_name: str, L: int):
    dtype = DTYPES[dtype_name]
    fn = IMPLS[impl]
    q, k, v = (
        torch.randn(B, H, L, D, device="cuda", dtype=dtype, requires_grad=(mode != "fwd"))
        for _ in range(3)
    )
    do = torch.randn(B, H, L, D, device="cuda", dtype=dtype)

    if mode == "fwd":

        def step():
            with torch.no_grad():
                fn(q, k, v)
    else:

        def step():
            out = fn(q, k, v)
            torch.autograd.grad(out, (q, k, v), do)

    for _ in range(3):  # compile / autotune / warm up outside the timing
        step()
    torch.cuda.synchronize()

    def timed():
        step()
        torch.cuda.synchronize()

    benchmark.pedantic(timed, rounds=20, iterations=1, warmup_rounds=2)
    if benchmark.stats is None:  # --benchmark-disable: ran once, nothing measured
        return
    seconds = benchmark.stats.stats.median
    tflops = _flops(L, mode) / seconds / 1e12
    benchmark.extra_info.update(
        {"impl": impl, "mode": mode, "dtype": dtype_name, "L": L, "tflops": tflops}
    )
    RESULTS.setdefault((mode, dtype_name, L), {})[impl] = tflops


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("L", LENGTHS)
def test_attention_fwd(benchmark, L, dtype_name, impl):
    benchmark.group = f"fwd-{dtype_name}-L{L}"
    _run(benchmark, impl, "fwd", dtype_name, L)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("L", LENGTHS)
def test_attention_fwd_bwd(benchmark, L, dtype_name, impl):
    benchmark.group = f"fwd_bwd-{dtype_name}-L{L}"
    _run(benchmark, impl, "fwd_bwd", dtype_name, L)


# -- packed (varlen) forward against SDPA-flash on the same tokens padded, at B·L = 64k tokens


def _packed_case(lengths: list[int], dtype: torch.dtype):
    from rnaernie.kernels.attention import attention_varlen

    T, L = sum(lengths), max(lengths)
    q, k, v = (torch.randn(T, H, D, device="cuda", dtype=dtype) for _ in range(3))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], device="cuda")
    B_ = len(lengths)
    qp, kp, vp = (torch.zeros(B_, H, L, D, device="cuda", dtype=dtype) for _ in range(3))
    for i, (a, b) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        for dst, src in ((qp, q), (kp, k), (vp, v)):
            dst[i, :, : b - a] = src[a:b].transpose(0, 1)
    mask = torch.arange(L, device="cuda")[None, :] < torch.tensor(lengths, device="cuda")[:, None]
    bias = torch.zeros(B_, 1, 1, L, device="cuda", dtype=dtype).masked_fill(
        ~mask[:, None, None], float("-inf")
    )

    def packed():
        with torch.no_grad():
            attention_varlen(q, k, v, cu, max_seqlen=L)

    def padded_flash():  # every row padded to the longest, no mask: what flash can run
        with torch.no_grad(), sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            torch.nn.functional.scaled_dot_product_attention(qp, kp, vp)

    def padded_masked():  # the padded batch with its key mask (efficient-attention backend)
        with torch.no_grad():
            torch.nn.functional.scaled_dot_product_attention(qp, kp, vp, attn_mask=bias)

    flops = sum(4.0 * H * n * n * D for n in lengths)  # useful work: each sequence with itself
    return {"triton_varlen": packed, "sdpa_flash_padded": padded_flash,
            "sdpa_masked_padded": padded_masked}, flops  # fmt: skip


def _nrc_lengths() -> list[int]:
    """nRC test sequence lengths (+2 for [CLS]/[SEP]) up to 64k tokens; random 20-500 without data."""
    from conftest import DATA

    f = DATA / "nrc" / "test.fasta"
    if f.is_file():
        from rnaernie.io import read_fasta

        lens = [min(len(r.seq), 510) + 2 for r in read_fasta(f)]
    else:
        lens = torch.randint(20, 501, (2600,), generator=torch.Generator().manual_seed(0)).tolist()
    out, total = [], 0
    for n in lens:
        if total + n > 65536:
            break
        out.append(n)
        total += n
    return out


PACKED = {"L128": [128] * 512, "L256": [256] * 256, "L512": [512] * 128, "nrc_mix": None}


@pytest.mark.parametrize("impl", ["triton_varlen", "sdpa_flash_padded", "sdpa_masked_padded"])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("case", list(PACKED))
def test_attention_packed_fwd(benchmark, case, dtype_name, impl):
    lengths = PACKED[case] or _nrc_lengths()
    fns, flops = _packed_case(lengths, DTYPES[dtype_name])
    fn = fns[impl]
    benchmark.group = f"packed-fwd-{dtype_name}-{case}"
    for _ in range(3):
        fn()
    torch.cuda.synchronize()

    def timed():
        fn()
        torch.cuda.synchronize()

    benchmark.pedantic(timed, rounds=20, iterations=1, warmup_rounds=2)
    if benchmark.stats is None:
        return
    tflops = flops / benchmark.stats.stats.median / 1e12
    benchmark.extra_info.update({"impl": impl, "mode": "packed_fwd", "dtype": dtype_name,
                                 "case": case, "tokens": sum(lengths), "tflops": tflops})  # fmt: skip
