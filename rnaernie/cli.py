"""The ``rnaernie`` command line. Uses only the public Python API."""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import resources
from pathlib import Path

__all__ = ["main"]

log = logging.getLogger("rnaernie")


def example_fasta() -> Path:
    """Path of the bundled example FASTA (26 nRC test records, two per family)."""
    return Path(str(resources.files("rnaernie").joinpath("data", "example.fasta")))


def _input_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        nargs="?",
        default=None,
        help="FASTA/FASTQ file (plain or .gz) or '-' for stdin (default: the bundled example)",
    )


def _open_out(path: str | None):
    return sys.stdout if path in (None, "-") else open(path, "w")


def cmd_motifs(args: argparse.Namespace) -> int:
    from .io import read_fasta
    from .motifs import MotifMatcher
    from .tokenizer import Tokenizer

    src = args.input or example_fasta()
    recs = list(read_fasta(src))
    ids, seqs = [r.id for r in recs], [r.seq for r in recs]
    enc = Tokenizer(max_length=10**9).encode_batch(seqs, names=ids)
    matcher = MotifMatcher.default()
    hits = matcher.find(seqs, names=ids)
    out = _open_out(args.output)
    try:
        out.write("id\tstart\tend\tmotif\tsource\n")
        for k in range(len(hits)):
            m = int(hits.motif_id[k])
            out.write(
                f"{ids[hits.seq_index[k]]}\t{hits.start[k]}\t{hits.end[k]}\t"
                f"{matcher.motifs[m]}\t{matcher.source_names[hits.source[k]]}\n"
            )
    finally:
        if out is not sys.stdout:
            out.close()
    log.warning(
        "%d sequences, %d tokens, %d motif occurrences", len(seqs), int(enc.lengths.sum()), len(hits)
    )
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .pretrain import PretrainConfig, pretrain

    if args.config:
        import json

        cfg = PretrainConfig(**json.loads(Path(args.config).read_text()))
    else:
        if not args.corpus:
            raise ValueError("give --corpus (or --config)")
        levels = tuple(x.strip() for x in args.levels.split(",") if x.strip())
        cfg = PretrainConfig(
            corpus=args.corpus, out=args.out, preset=args.preset, levels=levels, steps=args.steps,
            batch_tokens=args.batch_tokens, grad_accum=args.grad_accum, lr=args.lr,
            warmup_steps=args.warmup_steps, seed=args.seed, eval_every=args.eval_every,
            checkpoint_every=args.checkpoint_every, log_every=args.log_every, threads=args.threads,
            device=args.device, split=args.split or None, valid_split=args.valid_split or None,
        )  # fmt: skip
    final = pretrain(cfg)
    print(final)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnaernie",
        description="RNA language model (RNAErnie): tokenize, find motifs, embed, classify and fold RNA.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("motifs", help="tokenize sequences and list every known-motif occurrence (TSV)")
    _input_arg(p)
    p.add_argument("-o", "--output", help="output TSV (default: stdout)")
    p.set_defaults(func=cmd_motifs)

    p = sub.add_parser(
        "pretrain",
        help="motif-aware masked-LM pretraining with RNA-type tokens (resumable; torchrun for many GPUs)",
        description=(
            "Pretrain an RNAErnie model. The corpus is a FASTA/FASTQ file (type = first word of the "
            "description when it names an RNA type) or a TSV with 'sequence' and 'rna_type' columns. "
            "Rerun the same command to resume from OUT/checkpoint; run under torchrun for data "
            "parallelism. Logs go to OUT/log.jsonl, the model to OUT/final."
        ),
    )
    p.add_argument("--corpus", help="FASTA/FASTQ or TSV corpus (plain or .gz)")
    p.add_argument("--config", help="JSON file with PretrainConfig fields (overrides the flags)")
    p.add_argument("--out", default="runs/pretrain", help="run directory (checkpoints, log, final model)")
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"], help="model size")
    p.add_argument("--levels", default="base,subsequence,motif", help="masking levels, comma-separated")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    p.add_argument("--batch-tokens", type=int, default=8192, help="padded tokens per batch (per rank)")
    p.add_argument("--grad-accum", type=int, default=1, help="batches per optimizer step (per rank)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (AdamW)")
    p.add_argument("--warmup-steps", type=int, default=200, help="linear warm-up, then cosine decay")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train", help="TSV split to train on ('' = all rows)")
    p.add_argument("--valid-split", default="valid", help="TSV split for evaluation ('' = none)")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    p.set_defaults(func=cmd_pretrain)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"rnaernie {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
