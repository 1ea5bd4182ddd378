"""The ``rnaernie`` command line: every parser lives in this package (:mod:`.predict` for the
prediction commands, :mod:`.train` for pretraining, fine-tuning and evaluation, :mod:`.options`
for what they share). Bad input or options end with one line ``rnaernie CMD: error: ...`` and
exit status 2; no output file is left behind."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import predict, train

__all__ = ["build_parser", "main"]


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks").is_dir():
        raise ValueError(
            "the benchmarks live in the source tree (benchmarks/); run from a checkout"
        )
    script = root / "scripts" / "run_benchmarks.sh"
    cmd = (["bash", str(script), *args.args] if script.is_file() else
           [sys.executable, "-m", "pytest", str(root / "benchmarks"), "--benchmark-only",
            "-p", "no:cacheprovider", *args.args])  # fmt: skip
    print("running:", " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd, cwd=root)


def cmd_export(args: argparse.Namespace) -> int:
    from ..model.export import export_onnx

    print(export_onnx(args.model, args.output, head=args.head, int8=args.int8))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnaernie",
        description="RNA language model (RNAErnie): find motifs, embed, classify, fold and "
        "screen RNA; pretrain, fine-tune and evaluate models.",
        epilog="Inputs: FASTA/FASTQ, plain or gzipped, or '-' for stdin. Outputs are written to "
        "OUT.tmp and renamed when complete.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)
    predict.add_parsers(sub)
    train.add_parsers(sub)
    p = sub.add_parser("export", help="export a model to another format (onnx)",
                       description="ONNX graph of the encoder (inputs input_ids, attention_mask; "
                       "output last_hidden_state), or with --head of that classifier head too "
                       "(output logits); dynamic batch and length. Needs pip install 'rnaernie[onnx]'.")  # fmt: skip
    p.add_argument("format", choices=["onnx"])
    p.add_argument("model", help="shipped model name or model directory")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--head", default=None, help="a sequence-classification head (e.g. nrc)")
    p.add_argument("--int8", action="store_true",
                   help="ONNX Runtime dynamic int8 quantisation of the linear layers (a quarter "
                   "the size, about 1.6x faster on a CPU, cosine about 0.9999 to fp32)")  # fmt: skip
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("bench", help="run the benchmarks of a checkout (pytest benchmarks/)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed on to pytest")
    p.set_defaults(func=cmd_bench)
    return parser


HEAP_MMAP_THRESHOLD = 1 << 20  # bytes; see fixed_mmap_threshold


def fixed_mmap_threshold(nbytes: int = HEAP_MMAP_THRESHOLD) -> bool:
    """Keep glibc's malloc from growing the heap with the input (Linux; a no-op elsewhere, or when
    ``MALLOC_MMAP_THRESHOLD_`` is set): the commands' ``--low-memory``. glibc raises its mmap
    threshold every time a large block is freed, so later large tensors come from the heap, which
    fragments: ``embed`` peaks at 545 MB for 1,000 records and 676 MB for 10,000. With a fixed
    threshold, blocks above ``nbytes`` are mapped and given back to the system when freed: 364 and
    392 MB, but each large tensor then costs fresh pages (``embed`` about 35 % slower; see
    ``benchmarks/results/embed_memory.json``). Returns whether it was set."""
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, ...)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, nbytes)) and bool(
        libc.mallopt(m_trim_threshold, nbytes)
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "low_memory", False):
        fixed_mmap_threshold()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        return args.func(args)
    except (ValueError, OSError) as e:  # bad input, options, model folders, outputs
        if isinstance(e, BrokenPipeError):  # e.g. piped into `head`
            sys.stderr.close()
            return 0
        msg = e.strerror + f": {e.filename}" if isinstance(e, OSError) and e.filename else e
        print(f"rnaernie {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"rnaernie {args.command}: error: missing optional dependency: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnaernie {args.command}: interrupted (no output written)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
