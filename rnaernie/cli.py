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
