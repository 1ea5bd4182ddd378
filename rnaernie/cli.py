"""The ``rnaernie`` command line. Uses only the public Python API."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from importlib import resources
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from .api import FOLD_MAX_NT

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
        "%d sequences, %d tokens, %d motif occurrences",
        len(seqs),
        int(enc.lengths.sum()),
        len(hits),
    )
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .pretrain import PretrainConfig, pretrain

    if args.config:
        import json

        try:
            cfg = PretrainConfig(**json.loads(Path(args.config).read_text()))
        except (TypeError, ValueError) as e:  # an unknown key, bad JSON or a bad value
            raise ValueError(f"{args.config}: {e}") from None
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
            init_from=args.init_from or None, max_minutes=args.max_minutes,
        )  # fmt: skip
    final = pretrain(cfg)
    print(final)
    return 0


# ----------------------------------------------------------------------------- model commands
#
# Every model command streams its input in chunks of records (--chunk-size), writes results as it
# goes to OUT.tmp and renames at the end. With --shard-size (or under torchrun, WORLD_SIZE > 1)
# the input is cut into shards of records, rank r takes shards s % world == r, writes
# OUT.part-NNNNN.*, and rank 0 merges the parts in shard order (see rnaernie.shards).

DEFAULT_SHARD_SIZE = 1000


def _model(args: argparse.Namespace):
    if getattr(args, "_model", None) is None:
        from .api import load

        device = args.device
        if device.startswith("cuda") and ":" not in device and "LOCAL_RANK" in os.environ:
            device = f"cuda:{int(os.environ['LOCAL_RANK'])}"  # one GPU per torchrun rank
        dtype = "float32" if args.int8 and args.dtype == "auto" else args.dtype
        args._model = load(
            args.model, device=device, threads=args.threads or None, int8=args.int8, dtype=dtype
        )
        log.info("loaded %r", args._model)
    return args._model


class _Out:
    """A writer plus how a processed result is written to it."""

    def __init__(self, writer: Any, write: Callable[[Any, Any], None]) -> None:
        self.writer, self._write = writer, write

    def write(self, result: Any) -> None:
        self._write(self.writer, result)

    def commit(self) -> None:
        self.writer.commit()

    def abort(self) -> None:
        self.writer.abort()


def _progress(args: argparse.Namespace, desc: str):
    from tqdm import tqdm

    return tqdm(desc=desc, unit="rec", file=sys.stderr, disable=True if args.quiet else None)


def _run_stream(args, items, out, open_out, process, skipped_path, bar) -> tuple[int, list]:
    """Process ``(index, item)`` pairs into ``out``; returns (items seen, skipped Invalids)."""
    from .io import FastaError
    from .shards import Invalid

    w = open_out(out)
    skipped: list[Invalid] = []
    seen = 0
    try:
        for _, chunk in groupby(items, key=lambda t: t[0] // args.chunk_size):
            recs = []
            for _, x in chunk:
                seen += 1
                if isinstance(x, Invalid):
                    if not args.skip_invalid:
                        raise FastaError(f"{x.message} (use --skip-invalid to skip such records)")
                    skipped.append(x)
                else:
                    recs.append(x)
            if recs:
                for result in process(recs):
                    w.write(result)
            bar.update(len(recs))
        if seen == 0:
            raise ValueError(f"{args.input or 'input'}: no sequence records (empty input)")
        if skipped_path is not None:
            _write_skipped(skipped_path, skipped)
        w.commit()
    except BaseException:
        w.abort()
        raise
    return seen, skipped


def _write_skipped(path: Path, skipped: list) -> None:
    from .io import write_atomic

    if not skipped:
        path.unlink(missing_ok=True)
        return
    text = "id\tline\treason\tsource\n" + "".join(
        f"{x.id}\t{x.line}\t{x.reason}\t{x.source}\n" for x in skipped
    )
    write_atomic(path, text)


def _report_skipped(args, skipped: list, where: str | None) -> None:
    if not skipped:
        return
    print(
        f"rnaernie {args.command}: skipped {len(skipped)} invalid record(s)"
        + (f" (listed in {where})" if where else ""),
        file=sys.stderr,
    )
    for x in skipped[:10]:
        print(f"  {x.message}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"  ... and {len(skipped) - 10} more", file=sys.stderr)


def _dist_init(world: int) -> bool:
    """Join the torchrun process group (gloo: only barriers travel over it)."""
    if world <= 1 or "MASTER_ADDR" not in os.environ:
        return False
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))
    return True


def _drive(args, tags: list[str], open_out, process, desc: str) -> int:
    """Read the input, process it in chunks (sharded if asked), write, merge. See the note above."""
    from .shards import (
        Manifest,
        component_path,
        dist_env,
        is_special,
        iter_records,
        iter_shards,
        merge_parts,
    )

    out = args.output or "-"
    src = args.input or example_fasta()
    _model(args)  # fail on a missing model before any output is opened
    if getattr(args, "_check", None):
        args._check(_model(args))  # e.g. the head this command needs
    items = iter_records(src, max_length=args.max_length)
    rank, world = dist_env()
    shard_size = args.shard_size or (DEFAULT_SHARD_SIZE if world > 1 else 0)
    bar = _progress(args, desc)
    try:
        if not shard_size:
            if out != "-" and args.resume and Path(out).is_file():
                log.warning("%s exists: nothing to do (--resume)", out)
                return 0
            special = out == "-" or is_special(out)  # stdout, /dev/null, a FIFO: no sidecar
            sk = None if special else component_path(out, ".skipped.tsv")
            _, skipped = _run_stream(args, enumerate(items), out, open_out, process, sk, bar)
            _report_skipped(args, skipped, str(sk) if sk else None)
            return 0
        if out == "-" or is_special(out):
            raise ValueError("sharded runs (--shard-size, WORLD_SIZE > 1) need --output FILE")
        if args.chunk_size > shard_size or shard_size % args.chunk_size:
            args.chunk_size = _largest_divisor(shard_size, args.chunk_size)
        distributed = _dist_init(world)
        n_shards, skipped_all = 0, []
        for shard, group in iter_shards(items, shard_size):
            n_shards = shard + 1
            stem = str(_part_stem(out, shard))
            if shard % world != rank or (args.resume and Path(stem + tags[0]).is_file()):
                for _ in group:  # other ranks' shards (or finished ones): read past them
                    pass
                continue
            _, sk = _run_stream(
                args, group, stem + tags[0], open_out, process, Path(stem + ".skipped.tsv"), bar
            )
            skipped_all += sk
        if n_shards == 0:
            raise ValueError(f"{src}: no sequence records (empty input)")
        _report_skipped(args, skipped_all, "the part .skipped.tsv files")
        man = Manifest(n_shards, shard_size, tags, [".skipped.tsv"])
        if rank == 0:
            man.write(out)
        if distributed:
            import torch.distributed as dist

            dist.barrier()
        if rank == 0:
            missing = man.missing(out)
            if missing:
                log.warning(
                    "%d of %d parts are not finished yet (other ranks); run `rnaernie merge %s` "
                    "once they are", len(missing), n_shards, out,
                )  # fmt: skip
            else:
                merge_parts(out, keep_parts=args.keep_parts)
                log.info("merged %d parts into %s", n_shards, out)
        if distributed:
            dist.barrier()
        return 0
    finally:
        bar.close()


def _part_stem(out: str, shard: int) -> Path:
    from .shards import part_stem

    return part_stem(out, shard)


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def _ext(path: str | None) -> str:
    return "" if path in (None, "-") else Path(path).suffix.lower()


def cmd_embed(args: argparse.Namespace) -> int:
    from .shards import EmbeddingWriter

    if args.output in (None, "-"):
        raise ValueError("embed needs --output (.npy, .safetensors, .tsv, .csv or .parquet)")
    EmbeddingWriter.tags(args.output)  # validates early
    if _ext(args.output) not in (".npy", ".safetensors", ".tsv", ".csv", ".parquet"):
        raise ValueError(
            f"embedding output must end in .npy, .safetensors, .tsv, .csv or .parquet, got {args.output!r}"
        )

    def process(recs):
        m = _model(args)
        yield (
            [r.id for r in recs],
            m.embed(recs, pooling=args.pooling, batch_tokens=args.batch_tokens),
        )

    def open_out(path):
        return _Out(EmbeddingWriter(path, _model(args).hidden_size), lambda w, r: w.write(*r))

    return _drive(args, EmbeddingWriter.tags(args.output), open_out, process, "embed")


_CLASSIFY_COLUMNS = [("id", "str"), ("label", "str"), ("probability", "float"), ("top_k", "str"),
                     ("rna_type", "str"), ("rna_type_probability", "float")]  # fmt: skip


def cmd_classify(args: argparse.Namespace) -> int:
    from .shards import TableWriter

    def process(recs):
        res = _model(args).classify(recs, top_k=args.top_k, batch_tokens=args.batch_tokens,
                                    with_type=not args.no_type, head=args.head,
                                    kmer=not args.no_kmer)  # fmt: skip
        yield [
            (c.id, c.label, c.probability,
             ";".join(f"{lab}:{p:.4g}" for lab, p in zip(c.labels, c.probabilities)),
             c.rna_type.type if c.rna_type else None,
             c.rna_type.probability if c.rna_type else None)
            for c in res
        ]  # fmt: skip

    def open_out(path):
        return _Out(TableWriter(path, _CLASSIFY_COLUMNS), lambda w, r: w.write(r))

    args._check = lambda m: m.classify([], head=args.head)  # raises if the head is missing
    return _drive(args, [_ext(args.output) or ".tsv"], open_out, process, "classify")


def cmd_fold(args: argparse.Namespace) -> int:
    from .plot import plot_structure, safe_filename
    from .shards import StructureWriter

    if _ext(args.output) not in ("", ".dbn", ".fa", ".fasta", ".bpseq", ".tsv", ".csv", ".parquet"):
        raise ValueError(
            f"structure output must end in .dbn, .fa, .fasta, .bpseq, .tsv, .csv or .parquet, got {args.output!r}"
        )
    plot_dir = Path(args.plot) if args.plot else None
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)

    def process(recs):
        res = _model(args).fold(
            recs, threshold=args.threshold, decoder=args.decoder, batch_tokens=args.batch_tokens,
            return_probs=plot_dir is not None, no_lonely_pairs=args.no_lonely_pairs,
            max_length=args.max_length or FOLD_MAX_NT, prior=args.prior,
            prior_weight=args.prior_weight,
        )  # fmt: skip
        if plot_dir is not None:
            for r in res:
                plot_structure(
                    plot_dir / f"{safe_filename(r.id)}.png", r.sequence, r.pairs, r.probs, r.id
                )
        yield res

    def open_out(path):
        return _Out(StructureWriter(path), lambda w, r: w.write(r))

    args._check = lambda m: m.fold([])  # raises if there is no structure head
    return _drive(args, [_ext(args.output) or ".dbn"], open_out, process, "fold")


def cmd_screen(args: argparse.Namespace) -> int:
    from .screen import ScreenRow, screen, windows
    from .shards import NpyWriter, TableWriter, component_path, is_special

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    with_emb = "embed" in tasks
    if with_emb and (args.output in (None, "-") or is_special(args.output)):
        raise ValueError("--tasks embed writes OUT.embeddings.npy: give --output FILE")
    main_ext = _ext(args.output) or ".tsv"
    if main_ext not in (".tsv", ".csv", ".parquet"):
        raise ValueError(f"screen output must end in .tsv, .csv or .parquet, got {args.output!r}")

    class Writer:
        def __init__(self, path):
            self.table = TableWriter(path, ScreenRow.COLUMNS)
            self.emb = None
            if with_emb:
                self.emb = NpyWriter(
                    component_path(path, ".embeddings.npy"), _model(args).hidden_size
                )

        def write(self, rows):
            self.table.write([r.as_row() for r in rows])
            if self.emb is not None and rows:
                self.emb.write(np.stack([r.embedding for r in rows]))

        def commit(self):
            if self.emb is not None:
                self.emb.commit()
            self.table.commit()

        def abort(self):
            if self.emb is not None:
                self.emb.abort()
            self.table.abort()

    def process(recs):
        yield from screen(
            _model(args), windows(recs, args.window, args.stride, args.strands), tasks,
            batch_windows=args.batch_windows, min_score=args.min_score,
            batch_tokens=args.batch_tokens, threshold=args.threshold,
        )  # fmt: skip

    tags = [main_ext] + ([".embeddings.npy"] if with_emb else [])
    if "structure" in tasks and args.window > 510:
        raise ValueError("--tasks structure needs --window <= 510 (one window of the model)")
    if "structure" in tasks:
        args._check = lambda m: m.fold([])  # raises if there is no structure head
    return _drive(args, tags, lambda p: _Out(Writer(p), lambda w, r: w.write(r)), process, "screen")


def cmd_interact(args: argparse.Namespace) -> int:
    from .shards import TableWriter

    src = args.input
    columns = [("id", "str"), ("label", "str"), ("probability", "float"), ("probabilities", "str")]
    _model(args).interact([])  # raises if there is no interaction head, before any output
    w = TableWriter(args.output or "-", columns)
    n = 0
    from .io import open_text

    fh = open_text(src)
    try:
        batch: list[tuple[str, str, str]] = []
        for lineno, line in enumerate(fh, start=1):
            f = line.rstrip("\r\n").split("\t")
            if not line.strip() or (lineno == 1 and f[0].lower() == "id"):
                continue
            if len(f) != 3:
                raise ValueError(
                    f"{src}, line {lineno}: expected 3 tab-separated columns (id, seq_a, seq_b), got {len(f)}"
                )
            batch.append((f[0], f[1], f[2]))
            if len(batch) >= args.chunk_size:
                n += _interact_write(args, w, batch)
                batch = []
        if batch:
            n += _interact_write(args, w, batch)
        if n == 0:
            raise ValueError(f"{src}: no pairs (empty input)")
        w.commit()
    except BaseException:
        w.abort()
        raise
    finally:
        if fh is not sys.stdin:
            fh.close()
    return 0


def _interact_write(args, w, batch) -> int:
    res = _model(args).interact(batch)
    w.write(
        [(r.id, r.label, r.probability, ";".join(f"{p:.4g}" for p in r.probabilities)) for r in res]
    )
    return len(res)


def cmd_merge(args: argparse.Namespace) -> int:
    from .shards import merge_parts

    merge_parts(args.output, keep_parts=args.keep_parts)
    return 0


def _delegate(module: str, what: str):
    def run(args: argparse.Namespace) -> int:
        import importlib

        try:
            mod = importlib.import_module(f"rnaernie.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"rnaernie.{module}":
                raise
            raise ValueError(
                f"`rnaernie {what}` is not available yet (rnaernie/{module}.py is missing)"
            ) from None
        if not hasattr(mod, "main"):
            raise ValueError(
                f"`rnaernie {what}`: rnaernie.{module} has no main(argv) entry point yet"
            )
        return int(mod.main(list(args.args)) or 0)

    return run


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    script = root / "scripts" / "run_benchmarks.sh"
    if script.is_file():
        cmd = ["bash", str(script), *args.args]
    elif (root / "benchmarks").is_dir():
        cmd = [sys.executable, "-m", "pytest", str(root / "benchmarks"), "--benchmark-only",
               "-p", "no:cacheprovider", *args.args]  # fmt: skip
    else:
        raise ValueError(
            "the benchmarks live in the source tree (benchmarks/); run from a checkout"
        )
    print("running:", " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd, cwd=root)


def _model_args(p: argparse.ArgumentParser, batch_tokens: int = 8192) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="rnaernie-tiny", help="shipped model name or model directory")
    g.add_argument(
        "--device",
        default="cpu",
        help="'cpu', 'cuda', 'cuda:1', 'auto' (under torchrun: cuda:LOCAL_RANK)",
    )
    g.add_argument(
        "--batch-tokens", type=int, default=batch_tokens, help="padded tokens per forward pass"
    )
    g.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    g.add_argument("--int8", action="store_true", help="dynamic int8 quantisation (CPU)")
    g.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", "float32", "bfloat16", "float16"),
        help="weights and activations; auto = bfloat16 on a CPU with AMX or a bf16 GPU, "
        "float16 on other GPUs, else float32 (use float32 for bit-stable outputs)",
    )


def _stream_args(p: argparse.ArgumentParser, out_help: str, max_length: int | None) -> None:
    _input_arg(p)
    p.add_argument("-o", "--output", help=out_help)
    g = p.add_argument_group("input checks, streaming and scale-out")
    g.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip bad records (listed on stderr and in OUT.skipped.tsv) instead of stopping",
    )
    g.add_argument(
        "--max-length",
        type=int,
        default=max_length,
        help=f"reject records longer than this many nt (default: {max_length})",
    )
    g.add_argument(
        "--chunk-size", type=int, default=512, help="records read and processed at a time"
    )
    g.add_argument(
        "--shard-size",
        type=int,
        default=0,
        help=f"cut the input into shards of N records, one part file each (default under torchrun: {DEFAULT_SHARD_SIZE})",
    )
    g.add_argument(
        "--resume", action="store_true", help="skip parts (or the output) already finished"
    )
    g.add_argument("--keep-parts", action="store_true", help="keep the part files after merging")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnaernie",
        description="RNA language model (RNAErnie): tokenize, find motifs, embed, classify and fold RNA.",
        epilog="Inputs: FASTA/FASTQ, plain or gzipped, or '-' for stdin. Outputs are written to "
        "OUT.tmp and renamed when complete.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more log output")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "motifs", help="tokenize sequences and list every known-motif occurrence (TSV)"
    )
    _input_arg(p)
    p.add_argument("-o", "--output", help="output TSV (default: stdout)")
    p.set_defaults(func=cmd_motifs)

    p = sub.add_parser(
        "embed", help="sequence embeddings (.npy + .ids.txt, .safetensors, .tsv, .csv, .parquet)",
        description="Mean (or [CLS]) embedding of each sequence from the final encoder layer. "
        "Sequences over 510 nt: mean of the embeddings of 510-nt windows (stride 255).",
    )  # fmt: skip
    _stream_args(
        p, "output file: .npy (ids in OUT.ids.txt), .safetensors, .tsv, .csv or .parquet", 10**7
    )
    p.add_argument("--pooling", default="mean", choices=["mean", "cls"])
    _model_args(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser(
        "classify", help="ncRNA family (classification head) and RNA type (pretraining head)",
        description="Top-k labels of one of the model's classifier heads (--head), plus the top RNA type of the "
        "pretraining type head. Sequences over 510 nt: probabilities averaged over windows. A head that "
        "carries a k-mer classifier (the shipped nrc head does) multiplies its probabilities with it.",
    )  # fmt: skip
    _stream_args(p, "output .tsv (default: stdout), .csv or .parquet", 10**7)
    p.add_argument("--top-k", type=int, default=3, help="labels listed in the top_k column")
    p.add_argument("--no-type", action="store_true", help="skip the RNA-type prediction")
    p.add_argument(
        "--no-kmer",
        action="store_true",
        help="the language model's probabilities alone, without the head's k-mer classifier",
    )
    p.add_argument(
        "--head",
        default="nrc",
        choices=["nrc", "lncrna"],
        help="nrc: 13 ncRNA families (default); lncrna: lncRNA vs protein-coding mRNA",
    )
    _model_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "fold", help="secondary structure (structure head + Nussinov/greedy decoder)",
        description="Pair logits from the model's heads/structure, decoded to a structure. "
        "Records over 510 nt are read in half-overlapping 510-nt windows whose pair logits are "
        "averaged (pairs no window holds stay unpaired); decoding is cubic in length, so records "
        "over --max-length are rejected (use `screen --tasks structure` for genomes).",
    )  # fmt: skip
    _stream_args(
        p,
        "output: dot-bracket FASTA (.dbn/.fa, default stdout), .bpseq, .tsv, .csv, .parquet",
        FOLD_MAX_NT,
    )
    p.add_argument("--decoder", default="nussinov", choices=["nussinov", "greedy"])
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="pair logit threshold (default: the head's, chosen on the validation set)",
    )
    p.add_argument(
        "--prior",
        choices=["rnafold"],
        default=None,
        help="add a bonus to the pair logits of ViennaRNA's MFE structure before decoding "
        "(needs viennarna; weight and decoder settings chosen on bpRNA VL0, see the README)",
    )
    p.add_argument(
        "--prior-weight", type=float, default=None, help="the MFE-pair bonus (default: the head's)"
    )
    lp = p.add_mutually_exclusive_group()
    lp.add_argument(
        "--no-lonely-pairs",
        dest="no_lonely_pairs",
        action="store_const",
        const=True,
        help="forbid isolated pairs, as RNAfold --noLP (default: the head's setting)",
    )
    lp.add_argument(
        "--lonely-pairs",
        dest="no_lonely_pairs",
        action="store_const",
        const=False,
        help="allow isolated pairs",
    )
    p.add_argument(
        "--plot", metavar="DIR", help="write a PNG per structure (arc diagram + contact map)"
    )
    _model_args(p, batch_tokens=4096)
    p.set_defaults(func=cmd_fold)

    p = sub.add_parser(
        "screen", help="slide windows along long sequences, both strands; type/structure/embedding per window",
        description="One row per window: id, strand, start, end (0-based, end exclusive, forward-strand "
        "coordinates for both strands), rna_type, type_probability, dot_bracket, num_pairs. "
        "With --tasks embed, row k's embedding is row k of OUT.embeddings.npy.",
    )  # fmt: skip
    _stream_args(p, "output .tsv (default: stdout), .csv or .parquet", None)
    p.add_argument("--window", type=int, default=200, help="window length (nt)")
    p.add_argument("--stride", type=int, default=100, help="step between window starts (nt)")
    p.add_argument("--strands", default="both", choices=["both", "+", "-"])
    p.add_argument(
        "--tasks", default="type,structure", help="comma-separated: type, structure, embed"
    )
    p.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="keep windows with top type probability >= this",
    )
    p.add_argument(
        "--threshold", type=float, default=None, help="pair logit threshold for structure"
    )
    p.add_argument("--batch-windows", type=int, default=256, help="windows per model call")
    _model_args(p)
    p.set_defaults(func=cmd_screen)

    p = sub.add_parser("interact", help="miRNA-target interaction (heads/interaction)",
                       description="Input: TSV with columns id, seq_a, seq_b (header line optional).")  # fmt: skip
    p.add_argument("input", help="TSV of pairs (plain or .gz, '-' for stdin)")
    p.add_argument("-o", "--output", help="output .tsv (default: stdout), .csv or .parquet")
    p.add_argument("--chunk-size", type=int, default=512, help="pairs per model call")
    p.add_argument("-q", "--quiet", action="store_true", help="(no progress bar is shown)")
    _model_args(p)
    p.set_defaults(func=cmd_interact)

    p = sub.add_parser("merge", help="concatenate the part files of a sharded run (in shard order)")
    p.add_argument("output", help="the OUT given to the sharded run")
    p.add_argument("--keep-parts", action="store_true", help="keep the part files")
    p.set_defaults(func=cmd_merge)

    for name, module, text in (("finetune", "finetune", "fine-tune a head (rnaernie.finetune)"),
                               ("evaluate", "evaluate", "evaluate on benchmark sets (rnaernie.evaluate)")):  # fmt: skip
        p = sub.add_parser(name, help=text, add_help=False,
                           description=f"Passes its arguments to rnaernie.{module}.main; try `rnaernie {name} --help`.")  # fmt: skip
        p.add_argument("args", nargs=argparse.REMAINDER)
        p.set_defaults(func=_delegate(module, name))

    p = sub.add_parser(
        "bench", help="run the benchmarks (scripts/run_benchmarks.sh or benchmarks/)"
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed on to the script / pytest")
    p.set_defaults(func=cmd_bench)

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
    p.add_argument(
        "--out", default="runs/pretrain", help="run directory (checkpoints, log, final model)"
    )
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"], help="model size")
    p.add_argument(
        "--init-from",
        default="",
        help="start from the weights in this model directory (continued pretraining; fresh optimizer)",
    )
    p.add_argument(
        "--levels", default="base,subsequence,motif", help="masking levels, comma-separated"
    )
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="wall-time cap: the cosine decay follows the time spent and the run ends at the cap",
    )
    p.add_argument(
        "--batch-tokens", type=int, default=8192, help="padded tokens per batch (per rank)"
    )
    p.add_argument(
        "--grad-accum", type=int, default=1, help="batches per optimizer step (per rank)"
    )
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (AdamW)")
    p.add_argument(
        "--warmup-steps", type=int, default=200, help="linear warm-up, then cosine decay"
    )
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
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "args", None) is None:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args = [*args.args, *extra]  # finetune / evaluate / bench pass options on
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, IsADirectoryError) as e:
        print(f"rnaernie {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"rnaernie {args.command}: error: missing optional dependency: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rnaernie {args.command}: interrupted (no output written)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
