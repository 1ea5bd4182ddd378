"""Options shared by the commands: argparse types that check ranges at parse time (the API checks
the same rules), the model and streaming option groups, and model loading."""

from __future__ import annotations

import argparse
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

from ..io.runner import DEFAULT_SHARD_SIZE, RunOptions

log = logging.getLogger("rnaernie")


def _number(kind: type, low: float | None, high: float | None = None, low_open: bool = False):
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind.__name__}, got {text!r}") from None
        if kind is float and v != v:  # NaN
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
        if low is not None and (v <= low if low_open else v < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {v}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {v}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = _number(int, 1)
non_negative_int = _number(int, 0)
positive_float = _number(float, 0.0, low_open=True)
probability = _number(float, 0.0, 1.0)
finite_float = _number(float, None)


def example_fasta() -> Path:
    """Path of the bundled example FASTA (26 nRC test records, two per family)."""
    return Path(str(resources.files("rnaernie").joinpath("data", "example.fasta")))


def input_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="?", default=None,
                   help="FASTA/FASTQ file (plain or .gz) or '-' for stdin (default: the bundled example)")  # fmt: skip


def model_args(p: argparse.ArgumentParser, batch_tokens: int = 8192) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="rnaernie-tiny", help="shipped model name or model directory")
    g.add_argument("--device", default="cpu",
                   help="'cpu', 'cuda', 'cuda:1', 'auto' (under torchrun: cuda:LOCAL_RANK)")  # fmt: skip
    g.add_argument("--batch-tokens", type=positive_int, default=batch_tokens,
                   help="padded tokens per forward pass")  # fmt: skip
    g.add_argument("--threads", type=non_negative_int, default=0,
                   help="CPU threads (0 = torch default)")  # fmt: skip
    g.add_argument("--int8", action="store_true", help="dynamic int8 quantisation (CPU)")
    g.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="run the encoders in PyTorch (default) or ONNX Runtime (CPU, float32 or "
                   "--int8; slower than PyTorch here, see docs/results.md; pip install "
                   "'rnaernie[onnx]')")  # fmt: skip
    g.add_argument("--low-memory", action="store_true",
                   help="keep peak memory flat in the input size and a third lower, at about 35 %% "
                   "less throughput (a fixed glibc mmap threshold; Linux)")  # fmt: skip
    g.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                   help="weights and activations; auto = bfloat16 on a CPU with AMX or AVX-512 "
                   "BF16 or a bf16 GPU, "
                   "float16 on other GPUs, else float32 (use float32 for bit-stable outputs)")  # fmt: skip


def stream_args(p: argparse.ArgumentParser, out_help: str, max_length: int | None) -> None:
    input_arg(p)
    p.add_argument("-o", "--output", help=out_help)
    g = p.add_argument_group("input checks, streaming and scale-out")
    g.add_argument("--skip-invalid", action="store_true",
                   help="skip bad records (listed on stderr and in OUT.skipped.tsv) instead of stopping")  # fmt: skip
    g.add_argument("--max-length", type=positive_int, default=max_length,
                   help=f"reject records longer than this many nt (default: {max_length})")  # fmt: skip
    g.add_argument("--chunk-size", type=positive_int, default=512,
                   help="records read and processed at a time")  # fmt: skip
    g.add_argument("--shard-size", type=non_negative_int, default=0,
                   help="cut the input into shards of N records, one part file each "
                   f"(default under torchrun: {DEFAULT_SHARD_SIZE})")  # fmt: skip
    g.add_argument(
        "--resume", action="store_true", help="skip parts (or the output) already finished"
    )
    g.add_argument("--keep-parts", action="store_true", help="keep the part files after merging")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def run_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(args.output, args.chunk_size, args.shard_size, args.skip_invalid,
                      args.resume, args.keep_parts, args.quiet, args.command,
                      getattr(args, "batch_nt", 0))  # fmt: skip


def ext(path: str | None) -> str:
    return "" if path in (None, "-") else Path(path).suffix.lower()


def load_model(args: argparse.Namespace) -> Any:
    """The model the command's options name (``--model``, ``--device``, …), loaded once."""
    from ..api import load

    device = args.device
    if device.startswith("cuda") and ":" not in device and "LOCAL_RANK" in os.environ:
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"  # one GPU per torchrun rank
    auto32 = (args.int8 or args.backend == "onnx") and args.dtype == "auto"
    dtype = "float32" if auto32 else args.dtype
    m = load(args.model, device=device, threads=args.threads or None, int8=args.int8, dtype=dtype,
             backend=args.backend)  # fmt: skip
    log.info("loaded %r", m)
    return m
