"""The prediction commands: ``motifs``, ``embed``, ``classify``, ``fold``, ``screen``,
``interact``, ``merge``. Every command that reads sequences streams them through the one
reader and the one sharded runner of :mod:`rnaernie.io` (chunks, ``--skip-invalid``, shards,
``--resume``, merge), and writes through ``OUT.tmp``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..api import FOLD_MAX_NT
from ..io import check_output, component_path, iter_records, open_binary, open_text
from ..io.runner import merge_parts, run_sharded
from ..io.writers import EmbeddingWriter, NpyWriter, StructureWriter, TableWriter, is_special
from ..screen import CHUNK_NT, SCAN_CHUNKS, SCAN_NT, SCORERS
from .options import (
    example_fasta,
    ext,
    finite_float,
    load_model,
    model_args,
    positive_float,
    positive_int,
    run_options,
    stream_args,
)


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


def _run(args: argparse.Namespace, tags: list[str], open_out, process, desc: str,
         wrap=None) -> int:  # fmt: skip
    """Stream the input's records (``wrap``: records → the items to process) through the runner."""
    src = args.input or example_fasta()
    fh, name, close = open_binary(src)  # opened here so that progress can tell how far it read
    try:
        raw = getattr(fh, "fileobj", fh)  # a gzip stream: the compressed bytes read
        size = os.path.getsize(name) if close and os.path.isfile(name) else 0
        items = iter_records(fh, max_length=args.max_length)
        if wrap is not None:
            items = wrap(items)
        return run_sharded(run_options(args), items, str(src), tags, open_out, process, desc,
                           position=raw.tell, size=size)  # fmt: skip
    finally:
        if close:
            fh.close()


def _check_output(args: argparse.Namespace) -> None:
    if args.output not in (None, "-"):
        check_output(args.output)


def _table(columns: list[tuple[str, str]]):
    return lambda path: _Out(TableWriter(path, columns), lambda w, rows: w.write(rows))


_MOTIF_COLUMNS = [
    ("id", "str"),
    ("start", "int"),
    ("end", "int"),
    ("motif", "str"),
    ("source", "str"),
]


def cmd_motifs(args: argparse.Namespace) -> int:
    from ..motifs import MotifMatcher

    _check_output(args)
    matcher = MotifMatcher.default()

    def process(recs):
        ids, seqs = [r.id for r in recs], [r.seq for r in recs]
        hits = matcher.find(seqs, names=ids)
        yield [(ids[hits.seq_index[k]], int(hits.start[k]), int(hits.end[k]),
                matcher.motifs[int(hits.motif_id[k])], matcher.source_names[hits.source[k]])
               for k in range(len(hits))]  # fmt: skip

    return _run(args, [ext(args.output) or ".tsv"], _table(_MOTIF_COLUMNS), process, "motifs")


def cmd_embed(args: argparse.Namespace) -> int:
    if args.output in (None, "-"):
        raise ValueError("embed needs --output (.npy, .safetensors, .tsv, .csv or .parquet)")
    if ext(args.output) not in (".npy", ".safetensors", ".tsv", ".csv", ".parquet"):
        raise ValueError("embedding output must end in .npy, .safetensors, .tsv, .csv or "
                         f".parquet, got {args.output!r}")  # fmt: skip
    _check_output(args)
    m = load_model(args)

    def process(recs):
        yield (
            [r.id for r in recs],
            m.embed(recs, pooling=args.pooling, batch_tokens=args.batch_tokens),
        )

    def open_out(path):
        return _Out(EmbeddingWriter(path, m.hidden_size), lambda w, r: w.write(*r))

    return _run(args, EmbeddingWriter.tags(args.output), open_out, process, "embed")


_CLASSIFY_COLUMNS = [("id", "str"), ("label", "str"), ("probability", "float"), ("top_k", "str"),
                     ("rna_type", "str"), ("rna_type_probability", "float")]  # fmt: skip


def cmd_classify(args: argparse.Namespace) -> int:
    _check_output(args)
    m = load_model(args)
    m.classify([], head=args.head)  # a missing head fails before any output is opened

    def process(recs):
        res = m.classify(recs, top_k=args.top_k, batch_tokens=args.batch_tokens,
                         with_type=not args.no_type, head=args.head, kmer=not args.no_kmer)  # fmt: skip
        yield [
            (c.id, c.label, c.probability,
             ";".join(f"{lab}:{p:.4g}" for lab, p in zip(c.labels, c.probabilities)),
             c.rna_type.type if c.rna_type else None,
             c.rna_type.probability if c.rna_type else None)
            for c in res
        ]  # fmt: skip

    return _run(args, [ext(args.output) or ".tsv"], _table(_CLASSIFY_COLUMNS), process, "classify")


def cmd_fold(args: argparse.Namespace) -> int:
    from ..io.plot import plot_structure, safe_filename

    if ext(args.output) not in ("", ".dbn", ".fa", ".fasta", ".bpseq", ".tsv", ".csv", ".parquet"):
        raise ValueError("structure output must end in .dbn, .fa, .fasta, .bpseq, .tsv, .csv or "
                         f".parquet, got {args.output!r}")  # fmt: skip
    _check_output(args)
    plot_dir = Path(args.plot) if args.plot else None
    m = load_model(args)
    m.fold([])  # a missing structure head fails before any output is opened
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)

    def process(recs):
        res = m.fold(
            recs, threshold=args.threshold, decoder=args.decoder, batch_tokens=args.batch_tokens,
            return_probs=plot_dir is not None, no_lonely_pairs=args.no_lonely_pairs,
            max_length=args.max_length or FOLD_MAX_NT, prior=args.prior,
            prior_weight=args.prior_weight, gamma=args.gamma,
        )  # fmt: skip
        if plot_dir is not None:
            for r in res:
                plot_structure(plot_dir / f"{safe_filename(r.id)}.png", r.sequence, r.pairs,
                               r.probs, r.id, bpp=r.bpp)  # fmt: skip
        yield res

    def open_out(path):
        return _Out(StructureWriter(path), lambda w, r: w.write(r))

    return _run(args, [ext(args.output) or ".dbn"], open_out, process, "fold")


def cmd_screen(args: argparse.Namespace) -> int:
    """Loci of RNA genes (see :mod:`rnaernie.screen`). A single process keeps the window hits in
    memory; a sharded run writes them to part files (``OUT.hits.part-*.tsv``), merges them into
    ``OUT.hits.tsv`` and builds the loci from it, so that both give the same bytes."""
    from ..io import Invalid
    from ..io.runner import dist_env
    from ..screen import (
        FORMATS,
        HIT_COLUMNS,
        Detector,
        WindowHit,
        check_soft_masked,
        check_window,
        chunks,
        loci,
        locus_sequences,
        searched_megabases,
        write_loci,
    )

    out = args.output or "-"
    kind = ext(out) or ".tsv"
    if kind not in FORMATS:
        raise ValueError(f"screen output must end in {', '.join(FORMATS)}, got {out!r}")
    _check_output(args)
    m = load_model(args)
    det = Detector.from_model(m, scorer=args.scorer, families=args.families)
    if det.calibration is None:
        raise ValueError(f"{det.path}: the detector is not calibrated "
                         "(rnaernie finetune screen --calibrate-only)")  # fmt: skip
    window, stride = check_window(det, args.window, args.stride)
    check_soft_masked(det, args.soft_masked)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    bad = sorted(set(tasks) - {"structure", "embed"})
    if bad:
        raise ValueError(f"--tasks: unknown task(s) {', '.join(bad)}; choose from structure, embed")
    if tasks and args.input in (None, "-"):
        raise ValueError("--tasks reads the loci's sequences again: give the input as a file")
    if "structure" in tasks and kind == ".bed":
        raise ValueError("--tasks structure needs an output with room for it: .tsv, .csv, "
                         ".parquet or .gff3")  # fmt: skip
    if "embed" in tasks and (out == "-" or is_special(out)):
        raise ValueError("--tasks embed writes OUT.embeddings.npy: give --output FILE")
    if "structure" in tasks:
        m.fold([])  # a missing structure head fails before any output is opened
    _, world = dist_env()
    sharded = bool(args.shard_size) or world > 1
    if sharded and (out == "-" or is_special(out)):
        raise ValueError("sharded runs (--shard-size, WORLD_SIZE > 1) need --output FILE")
    if sharded and not args.shard_size:
        args.shard_size = SCREEN_SHARD_CHUNKS
    if sharded and args.resume and Path(out).is_file():
        print(f"rnaernie screen: {out} exists: nothing to do (--resume)", file=sys.stderr)
        return 0
    searched = {"nt": 0, "order": []}

    def wrap(records):
        for c in chunks(records, window, stride, args.chunk_nt, soft_masked=args.soft_masked):
            if not isinstance(c, Invalid) and c.offset == 0:
                searched["nt"] += c.length
                searched["order"].append(c.id)
            yield c

    def process(chs):
        yield [h for found, _ in det.scan_many(chs, args.strands, args.batch_tokens) for h in found]

    def finish(hits) -> None:
        mb = args.megabases or searched_megabases(searched["nt"], args.strands)
        found = loci(hits, det.calibration, max(mb, 1e-6), stride=stride, evalue=args.evalue,
                     order=searched["order"])  # fmt: skip
        emb = None
        if tasks and found:
            fh, _, close = open_binary(args.input)
            try:
                seqs = locus_sequences(iter_records(fh), found)
            finally:
                if close:
                    fh.close()
            if "structure" in tasks:
                for x, f in zip(found, m.fold(seqs, batch_tokens=args.batch_tokens,
                                              max_length=max(map(len, seqs)))):  # fmt: skip
                    x.extras.update(dot_bracket=f.dot_bracket, num_pairs=f.num_pairs)
            if "embed" in tasks:
                emb = m.embed(seqs, batch_tokens=args.batch_tokens)
        if "embed" in tasks:
            w = NpyWriter(component_path(out, ".embeddings.npy"), m.hidden_size)
            try:
                if emb is not None:
                    w.write(emb)
            except BaseException:
                w.abort()
                raise
            w.commit()
        write_loci(out, found)
        if not args.quiet:
            print(f"rnaernie screen: {len(found)} loci with E <= {args.evalue:g} in {mb:.4g} Mb "
                  "searched", file=sys.stderr)  # fmt: skip

    class Collect:  # a single process: the hits stay in memory, the loci are written on commit
        def __init__(self, path):
            self.hits: list[WindowHit] = []

        def write(self, hits):
            self.hits += hits

        def commit(self):
            finish(self.hits)

        def abort(self):
            pass

    if not sharded:
        return _run(args, [kind], Collect, process, "screen", wrap=wrap)
    hits_path = component_path(out, ".hits.tsv")
    args.output = str(hits_path)

    def open_hits(path):
        return _Out(
            TableWriter(path, HIT_COLUMNS), lambda w, hits: w.write([h.as_row() for h in hits])
        )

    rc = _run(args, [".tsv"], open_hits, process, "screen", wrap=wrap)
    if rc == 0 and dist_env()[0] == 0 and hits_path.is_file():
        import csv

        with open(hits_path, newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))[1:]
        finish([WindowHit(r[0], r[1], int(r[2]), int(r[3]), r[4], float(r[5]), float(r[6]),
                           r[7] if len(r) > 7 else "")
                for r in rows])  # fmt: skip
        if not args.keep_parts:
            hits_path.unlink()
    return rc


SCREEN_SHARD_CHUNKS = 16  # chunks per shard of a sharded screen (16 × 100 kb)


def cmd_interact(args: argparse.Namespace) -> int:
    columns = [("id", "str"), ("label", "str"), ("probability", "float"), ("probabilities", "str")]
    _check_output(args)
    m = load_model(args)
    m.interact([])  # a missing interaction head fails before any output is opened

    def flush(w: TableWriter, batch: list[tuple[str, str, str]]) -> int:
        res = m.interact(batch)
        w.write([(r.id, r.label, r.probability, ";".join(f"{p:.4g}" for p in r.probabilities))
                 for r in res])  # fmt: skip
        return len(res)

    src, n = args.input, 0
    with open_text(src) as fh:
        w = TableWriter(args.output or "-", columns)
        try:
            batch: list[tuple[str, str, str]] = []
            for lineno, line in enumerate(fh, start=1):
                f = line.rstrip("\r\n").split("\t")
                if not line.strip() or (lineno == 1 and f[0].lower() == "id"):
                    continue
                if len(f) != 3:
                    raise ValueError(f"{src}, line {lineno}: expected 3 tab-separated columns "
                                     f"(id, seq_a, seq_b), got {len(f)}")  # fmt: skip
                batch.append((f[0], f[1], f[2]))
                if len(batch) >= args.chunk_size:
                    n += flush(w, batch)
                    batch = []
            if batch:
                n += flush(w, batch)
            if n == 0:
                raise ValueError(f"{src}: no pairs (empty input)")
            w.commit()
        except UnicodeDecodeError:
            w.abort()
            raise ValueError(f"{src}: not a UTF-8 text file") from None
        except BaseException:
            w.abort()
            raise
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    merge_parts(args.output, keep_parts=args.keep_parts)
    return 0


def add_parsers(sub: Any) -> None:
    """The prediction commands' parsers."""
    p = sub.add_parser(
        "motifs", help="tokenize sequences and list every known-motif occurrence (TSV)"
    )
    stream_args(p, "output .tsv (default: stdout), .csv or .parquet", None)
    p.set_defaults(func=cmd_motifs)

    p = sub.add_parser(
        "embed", help="sequence embeddings (.npy + .ids.txt, .safetensors, .tsv, .csv, .parquet)",
        description="Mean (or [CLS]) embedding of each sequence from the final encoder layer. "
        "Sequences over 510 nt: mean of the embeddings of 510-nt windows (stride 255).",
    )  # fmt: skip
    stream_args(
        p, "output file: .npy (ids in OUT.ids.txt), .safetensors, .tsv, .csv or .parquet", 10**7
    )
    p.add_argument("--pooling", default="mean", choices=["mean", "cls"])
    model_args(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser(
        "classify", help="ncRNA family (classification head) and RNA type (pretraining head)",
        description="Top-k labels of one of the model's classifier heads (--head), plus the top RNA type of the "
        "pretraining type head. Sequences over 510 nt: probabilities averaged over windows. A head that "
        "carries a k-mer classifier (the shipped nrc head does) multiplies its probabilities with it.",
    )  # fmt: skip
    stream_args(p, "output .tsv (default: stdout), .csv or .parquet", 10**7)
    p.add_argument(
        "--top-k", type=positive_int, default=3, help="labels listed in the top_k column"
    )
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
    model_args(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "fold", help="secondary structure (structure head + Nussinov/greedy decoder)",
        description="Pair logits from the model's heads/structure, decoded to a structure. "
        "Records over 510 nt are read in half-overlapping 510-nt windows whose pair logits are "
        "averaged (pairs no window holds stay unpaired); decoding is cubic in length, so records "
        "over --max-length are rejected (use `screen --tasks structure` for genomes).",
    )  # fmt: skip
    stream_args(
        p,
        "output: dot-bracket FASTA (.dbn/.fa, default stdout), .bpseq, .tsv, .csv, .parquet",
        FOLD_MAX_NT,
    )
    p.add_argument("--decoder", default=None, choices=["nussinov", "greedy", "mea", "threshknot"],
                   help="nussinov (best nested), greedy (mutual best partners, pseudoknots), mea "
                   "(maximum expected accuracy over the pair probabilities), threshknot (mutual "
                   "best partners with probability >= --threshold, default 0.3); default: the "
                   "decoder and settings chosen on bpRNA VL0 (nussinov; with --prior bpp the "
                   "fusion's)")  # fmt: skip
    p.add_argument("--gamma", type=positive_float, default=None,
                   help="mea: weight of paired against unpaired accuracy (default 1)")  # fmt: skip
    p.add_argument(
        "--threshold",
        type=finite_float,
        default=None,
        help="pair logit threshold (default: the head's, chosen on the validation set)",
    )
    p.add_argument(
        "--prior",
        choices=["rnafold", "bpp"],
        default=None,
        help="a thermodynamic prior (needs viennarna): rnafold adds a bonus to the pair logits "
        "of ViennaRNA's MFE structure; bpp fuses them with the partition function's base-pair "
        "probabilities (a linear fusion and decoder chosen on bpRNA VL0, see "
        "docs/results.md)",
    )
    p.add_argument(
        "--prior-weight",
        type=finite_float,
        default=None,
        help="--prior rnafold: the MFE-pair bonus (default: the head's)",
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
        "--plot",
        metavar="DIR",
        help="write a PNG per structure (arc diagram + contact map; with "
        "--prior bpp also ViennaRNA's base-pair probability dot plot)",
    )
    model_args(p, batch_tokens=4096)
    p.set_defaults(func=cmd_fold)

    p = sub.add_parser(
        "screen", help="find RNA genes in genomes: loci with E-values, both strands (BED, GFF3, TSV)",
        description="Windows on both strands scored by the detector (heads/screen: by default "
        "seeded local alignment to its library of family members plus a scanning CNN on the "
        "aligned windows; --scorer picks another): "
        "overlapping hit windows of one family merge into loci; E-value = the calibrated rate of "
        "background loci scoring as high per Mb searched x the Mb searched (both strands). Output "
        "by extension: .tsv (default, stdout), .csv, .parquet (id, start, end, strand, family, "
        "score in bits, evalue, probability, windows, member: the library member the locus "
        "aligned to), .bed (BED6) or .gff3. Coordinates are "
        "0-based, end exclusive, on the forward strand (GFF3: 1-based). Long records are cut "
        "into chunks of whole windows; sharded runs (torchrun, --shard-size) share them out.",
    )  # fmt: skip
    stream_args(p, "output .tsv (default: stdout), .csv, .parquet, .bed or .gff3", None)
    p.add_argument("--evalue", type=positive_float, default=0.01,
                   help="report loci with E-value <= this")  # fmt: skip
    p.add_argument("--window", type=positive_int, default=None,
                   help="window length (nt; default: the detector's, 200)")  # fmt: skip
    p.add_argument("--stride", type=positive_int, default=None,
                   help="step between window starts (nt; default: the detector's, 100)")  # fmt: skip
    p.add_argument("--strands", default="both", choices=["both", "+", "-"])
    p.add_argument("--tasks", default="",
                   help="per locus, comma-separated: structure (dot_bracket, num_pairs columns; "
                   "GFF3 attribute), embed (OUT.embeddings.npy, row k = locus k)")  # fmt: skip
    p.add_argument("--scorer", default=None, choices=list(SCORERS),
                   help="fused: seeded local alignment to the detector's library of family "
                   "members plus the scanning CNN on the aligned windows; homology: the alignment "
                   "alone; cnn: the scanning CNN; model: the detector head on the windows the CNN "
                   "lets through; kmer: the k-mer classifier (the baseline); default: the "
                   "detector's (fused when it has a library)")  # fmt: skip
    p.add_argument("--families", default=None,
                   help="search only these families, comma-separated, as classify names them "
                   "(e.g. tRNA,miRNA; default: all of the detector's); each keeps its own E-values, "
                   "as cmsearch with those models")  # fmt: skip
    p.add_argument("--soft-masked", action="store_true",
                   help="the input is soft-masked: its lower-case letters (repeats) start no seed "
                   "of the homology search, as BLAST's -lcase_masking (a locus may still reach "
                   "into them; fused and homology scorers)")  # fmt: skip
    p.add_argument("--chunk-nt", type=positive_int, default=CHUNK_NT,
                   help="nt of window starts per chunk of a long record (the unit of sharding)")  # fmt: skip
    p.add_argument("--megabases", type=positive_float, default=None,
                   help="Mb searched for the E-values (default: the input's length, x2 for both "
                   "strands; as cmsearch -Z)")  # fmt: skip
    model_args(p)
    p.set_defaults(func=cmd_screen, chunk_size=SCAN_CHUNKS, batch_nt=SCAN_NT)

    p = sub.add_parser("interact", help="miRNA-target interaction (heads/interaction)",
                       description="Input: TSV with columns id, seq_a, seq_b (header line optional).")  # fmt: skip
    p.add_argument("input", help="TSV of pairs (plain or .gz, '-' for stdin)")
    p.add_argument("-o", "--output", help="output .tsv (default: stdout), .csv or .parquet")
    p.add_argument("--chunk-size", type=positive_int, default=512, help="pairs per model call")
    p.add_argument("-q", "--quiet", action="store_true", help="(no progress bar is shown)")
    model_args(p)
    p.set_defaults(func=cmd_interact)

    p = sub.add_parser("merge", help="concatenate the part files of a sharded run (in shard order)")
    p.add_argument("output", help="the OUT given to the sharded run")
    p.add_argument("--keep-parts", action="store_true", help="keep the part files")
    p.set_defaults(func=cmd_merge)
