"""The training and evaluation commands: ``pretrain``, ``finetune {classify,structure,interact}``
and ``evaluate``. The library modules they drive (:mod:`rnaernie.training`,
:mod:`rnaernie.evaluate`) own no argument parsing."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .options import non_negative_int, positive_float, positive_int, probability

log = logging.getLogger("rnaernie")


def cmd_pretrain(args: argparse.Namespace) -> int:
    from ..training.pretrain import PretrainConfig, pretrain

    if args.config:
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


def cmd_finetune(a: argparse.Namespace) -> int:
    """``rnaernie finetune {classify,structure,interact} ...``"""
    from ..kmer import KmerClassifier, combine_experts
    from ..predict import classifier_probs, interaction_probs
    from ..structure import DecodeOptions, read_dbn
    from ..training import classify, interaction, structure
    from ..training.common import classification_metrics, read_labelled_fasta, stratified_holdout

    pre = a.pretrained or None
    out = Path(a.out)
    if a.task == "classify":
        seqs, y, names = read_labelled_fasta(a.train)
        held = np.zeros(0, dtype=np.int64)
        if a.valid_fraction is not None:
            held = stratified_holdout(y, a.valid_fraction, seed=a.seed)
        keep = np.setdiff1d(np.arange(len(seqs)), held)
        model, ind = classify.finetune_classifier(
            pre, [seqs[i] for i in keep], y[keep], names, out=out, preset=a.preset,
            type_guided=not a.no_type_guidance, top_k=a.top_k, train_top_k=a.train_top_k,
            epochs=a.epochs, lr=a.lr, batch_tokens=a.batch_tokens or 8192, seed=a.seed,
            device=a.device, max_minutes=a.max_minutes, dropout=a.dropout, mask_prob=a.mask_prob,
        )  # fmt: skip
        if a.max_windows is not None:
            model.config.extra = {**model.config.extra, "max_windows": a.max_windows}
            model.save_pretrained(out)
        expert = None
        if a.kmer:
            expert = KmerClassifier.fit(
                [seqs[i] for i in keep], y[keep], names, replace_invalid=True
            )
            expert.save(out)

        def score(sq, labels) -> dict:
            p = classifier_probs(model, sq, indicator=ind, replace_invalid=True)
            res = classification_metrics(p, labels)
            if expert is not None:
                pk = expert.predict_proba(sq, replace_invalid=True)
                res["kmer"] = classification_metrics(pk, labels)
                res["kmer_hybrid"] = classification_metrics(combine_experts(p, pk), labels)
            return res

        m: dict = {}
        if a.test:
            ts, ty, _ = read_labelled_fasta(a.test, labels=names)
            m = score(ts, ty)
        if len(held):
            m["valid"] = {**score([seqs[i] for i in held], y[held]), "n": len(held)}
        if m:
            (out / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
            print(json.dumps(m))
        return 0
    if a.task == "interact":
        train, test = interaction.interaction_split(Path(a.data), a.split, seed=a.seed)
        model, ind = interaction.finetune_interaction(
            pre, train, out=out, preset=a.preset, type_guided=a.type_guided, top_k=a.top_k,
            epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, seed=a.seed, device=a.device,
            max_minutes=a.max_minutes, split=a.split,
        )  # fmt: skip
        p = interaction_probs(model, test.a, test.b, indicator=ind)
        m = {**classification_metrics(p, test.labels), "split": a.split, "n_test": len(test)}
        (out / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
        print(json.dumps(m))
        return 0
    if a.task == "screen":
        return _finetune_screen(a)
    model, ind = structure.finetune_structure(
        pre, read_dbn(a.train), preset=a.preset, epochs=a.epochs, lr=a.lr, batch_tokens=a.batch_tokens or 4096,
        max_length=a.max_length, type_guided=a.type_guided, top_k=a.top_k, seed=a.seed,
        device=a.device, max_minutes=a.max_minutes,
    )  # fmt: skip
    best = structure.choose_decoding(model, read_dbn(a.valid), indicator=ind) if a.valid else None
    model.config.extra = {**model.config.extra, "decode": (best or DecodeOptions()).to_dict()}
    model.save_pretrained(out)
    if a.test:
        m = structure.structure_metrics(model, read_dbn(a.test), indicator=ind)
        (out / "metrics.json").write_text(json.dumps(m, indent=1) + "\n")
        print(json.dumps(m))
    return 0


def _finetune_screen(a: argparse.Namespace) -> int:
    """Train the detector (unless --calibrate-only), then calibrate its scores to E-values."""
    from ..io import read_fasta
    from ..training import screen as ts
    from ..training.common import read_labelled_fasta, stratified_holdout

    out = Path(a.out)
    if a.library_only and a.no_library:
        raise ValueError("--library-only and --no-library contradict each other")
    rng = np.random.default_rng(a.seed)
    transcripts = [r.seq for r in read_fasta(a.transcripts, allow_duplicates=True)]
    order = rng.permutation(len(transcripts))
    n_cal = max(1, round(a.calibration_fraction * len(transcripts)))
    cal = [transcripts[i] for i in order[:n_cal]]  # never seen in training
    if not (a.calibrate_only or a.library_only):
        seqs, y, names = read_labelled_fasta(a.train)
        held = stratified_holdout(y, a.valid_fraction, seed=a.seed)
        keep = np.setdiff1d(np.arange(len(seqs)), held)
        bg = [transcripts[i] for i in order[n_cal:]]
        half = len(bg) // 2  # validation background from transcripts training does not see
        train = ts.detector_windows(
            [seqs[i] for i in keep], y[keep], names, bg[half:], a.window, rng
        )

        def fresh(epoch: int):  # new offsets, flanks and shuffles for every CNN epoch
            return ts.detector_windows([seqs[i] for i in keep], y[keep], names, bg[half:],
                                       a.window, np.random.default_rng([a.seed, epoch]))  # fmt: skip

        valid = ts.detector_windows(
            [seqs[i] for i in held], y[held], names, bg[:half], a.window, rng
        )
        figures = ts.train_detector(
            a.pretrained or None, train, valid, out, window=a.window, stride=a.stride,
            epochs=a.epochs, lr=a.lr, batch_tokens=a.batch_tokens or 8192, seed=a.seed,
            device=a.device, max_minutes=a.max_minutes, train_model=not a.keep_model,
            cnn_epochs=a.cnn_epochs, fresh=fresh,
        )  # fmt: skip
        (out / "metrics.json").write_text(json.dumps({"valid": figures}, indent=1) + "\n")
        print(json.dumps(figures))
    added = not (a.calibrate_only or a.no_library)
    if added:
        labels = json.loads((out / "config.json").read_text())["extra"]["labels"][:-1]
        seqs, y, _ = read_labelled_fasta(a.train, labels=labels)
        ids = [r.id for r in read_fasta(a.train, allow_duplicates=True)]
        exclude = [r.seq for f in a.library_exclude for r in read_fasta(f, allow_duplicates=True)]
        members, fams, names, counts = ts.library_members(seqs, y, ids, rfam=a.library_rfam,
                                                          exclude=exclude)  # fmt: skip
        real = [transcripts[i] for i in order[n_cal:]]  # never the calibration transcripts
        members, fams, names, counts["promiscuous_dropped"] = ts.purge_promiscuous(
            members, fams, labels, real, names=names
        )
        info = ts.add_library(out, members, fams, names=names)
        print(json.dumps({"library": {**counts, **info}}))
    from ..screen import HOMOLOGY_SCORERS, SCORERS, calibrate, update_screen_config

    screen_cfg = json.loads((out / "config.json").read_text())["extra"]["screen"]
    default = screen_cfg.get("scorer", "cnn")
    usable = [x for x in SCORERS if "homology" in screen_cfg or x not in HOMOLOGY_SCORERS]
    if a.scorers is not None:
        bad = sorted(set(a.scorers) - set(usable))
        if bad or not a.scorers:
            what = f"{', '.join(bad)} not among" if bad else "name at least one of"
            raise ValueError(f"--scorers: {what} this detector's scorers ({', '.join(usable)})")
        usable = [x for x in usable if x in a.scorers]
    for scorer in ([default] if default in usable else []) + [x for x in usable if x != default]:
        try:
            info = calibrate(out, cal, megabases=a.calibration_mb, seed=a.seed, device=a.device,
                             scorer=scorer)  # fmt: skip
        except ValueError as e:  # too few background windows pass for a scorer behind the filter
            if scorer == default:
                raise
            log.warning("the %s scorer is not calibrated: %s", scorer, e)
            continue
        print(json.dumps({"calibration": scorer, **info}))
        if added and scorer == "fused":
            update_screen_config(out, scorer="fused")  # the library's default once calibrated
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .. import evaluate
    from ..model import resolve_model_dir

    ablations = {}
    for item in args.ablation:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--ablation expects NAME=METRICS_JSON, got {item!r}")
        try:
            ablations[name] = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"--ablation {name}: cannot read {path}: {e}") from None
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = sorted(set(sections) - set(evaluate.SECTIONS))
    if bad:
        raise ValueError(
            f"--sections: unknown {', '.join(bad)}; choose from {', '.join(evaluate.SECTIONS)}"
        )
    evaluate.run(evaluate.data_dir(args.data_dir), resolve_model_dir(args.model), Path(args.out),
                 Path(args.cache) if args.cache else None, args.device, sections,
                 ablations=ablations or None)  # fmt: skip
    print(args.out)
    return 0


def add_parsers(sub: Any) -> None:
    """The training and evaluation commands' parsers."""
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
    p.add_argument("--steps", type=positive_int, default=1000, help="optimizer steps")
    p.add_argument(
        "--max-minutes",
        type=positive_float,
        default=None,
        help="wall-time cap: the cosine decay follows the time spent and the run ends at the cap",
    )
    p.add_argument(
        "--batch-tokens", type=positive_int, default=8192, help="padded tokens per batch (per rank)"
    )
    p.add_argument(
        "--grad-accum", type=positive_int, default=1, help="batches per optimizer step (per rank)"
    )
    p.add_argument("--lr", type=positive_float, default=5e-4, help="peak learning rate (AdamW)")
    p.add_argument(
        "--warmup-steps",
        type=non_negative_int,
        default=200,
        help="linear warm-up, then cosine decay",
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--split", default="train", help="TSV split to train on ('' = all rows)")
    p.add_argument("--valid-split", default="valid", help="TSV split for evaluation ('' = none)")
    p.add_argument("--eval-every", type=non_negative_int, default=500)
    p.add_argument("--checkpoint-every", type=positive_int, default=200)
    p.add_argument("--log-every", type=positive_int, default=10)
    p.add_argument(
        "--threads", type=non_negative_int, default=0, help="CPU threads (0 = torch default)"
    )
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    p.set_defaults(func=cmd_pretrain)

    f = sub.add_parser("finetune", help="fine-tune a task head from a pretrained model")
    fsub = f.add_subparsers(dest="task", required=True)
    c = fsub.add_parser(
        "classify",
        help="sequence classification; FASTA with the class name as first word of each description (nRC format)",
    )
    c.add_argument("train", help="training FASTA")
    c.add_argument("--test", help="test FASTA to report accuracy / macro-F1 on")
    c.add_argument("--no-type-guidance", action="store_true", help="plain [CLS] seq [SEP] inputs")
    c.add_argument("--top-k", type=positive_int, default=3, help="types mixed at prediction time")
    c.add_argument(
        "--train-top-k", type=positive_int, default=1, help="types mixed during training"
    )
    c.add_argument("--epochs", type=positive_int, default=3)
    c.add_argument("--lr", type=positive_float, default=1e-4)
    c.add_argument(
        "--dropout",
        type=probability,
        default=None,
        help="hidden, attention and classifier dropout while fine-tuning (default: the pretrained config's)",
    )
    c.add_argument(
        "--mask-prob",
        type=probability,
        default=0.0,
        help="augmentation: replace this fraction of the training nucleotides by [MASK], fresh each step",
    )
    c.add_argument(
        "--valid-fraction",
        type=probability,
        default=None,
        help="hold out this fraction of each training class and report its metrics (metrics.json: valid)",
    )
    c.add_argument(
        "--kmer",
        action="store_true",
        help="also fit the k-mer classifier (k-mer spectrum + logistic regression; needs scikit-learn) "
        "on the training sequences and store it with the head, as `classify` multiplies its "
        "probabilities with the model's; metrics.json gains `kmer` and `kmer_hybrid`",
    )
    c.add_argument(
        "--max-windows",
        type=positive_int,
        default=None,
        help="read at most this many evenly spread windows of a long sequence at prediction time "
        "(stored in the head's config; default: all)",
    )
    s = fsub.add_parser("structure", help="pair-logit head; dot-bracket FASTA (3-line records)")
    s.add_argument("train", help="training .dbn (e.g. bpRNA TR0)")
    s.add_argument("--valid", help="validation .dbn: choose the decoder threshold on it (e.g. VL0)")
    s.add_argument("--test", help="test .dbn to report mean per-sequence F1 on")
    s.add_argument("--epochs", type=positive_int, default=1)
    s.add_argument("--lr", type=positive_float, default=3e-4)
    s.add_argument("--max-length", type=positive_int, default=300, help="longest training sequence")
    s.add_argument("--type-guided", action="store_true", help="type-guided pair head")
    s.add_argument(
        "--top-k", type=positive_int, default=3, help="types mixed at prediction time (guided)"
    )
    i = fsub.add_parser(
        "interact",
        help="miRNA–target interaction (two-tower); MirTarRAW CSV a_name,a_seq,b_name,b_seq,label",
        description="Fine-tune on MirTarRAW. --split official: train.csv.gz / test.csv.gz of the "
        "data folder (RNAErnie's split); --split grouped: a stratified 80/20 split of "
        "MirTarRAW.csv.gz in which duplicated pairs never straddle train and test. The miRNA "
        "column, stored 3'->5' in the file, is reversed to 5'->3'.",
    )
    i.add_argument("data", help="folder with MirTarRAW.csv.gz, train.csv.gz, test.csv.gz")
    i.add_argument("--split", choices=["official", "grouped"], default="grouped")
    i.add_argument("--type-guided", action="store_true", help="type-guided pooled embeddings")
    i.add_argument(
        "--top-k", type=positive_int, default=3, help="types mixed at prediction time (guided)"
    )
    i.add_argument("--epochs", type=positive_int, default=3)
    i.add_argument("--lr", type=positive_float, default=2e-4)
    i.add_argument("--batch-size", type=positive_int, default=64, help="pairs per step")
    d = fsub.add_parser(
        "screen",
        help="the screening detector: families of a labelled FASTA + background; a homology "
        "library, a scanning CNN, the model head and a k-mer classifier; scores calibrated to "
        "E-values",
        description="Train the detector that `rnaernie screen` uses (see rnaernie.training.screen): "
        "windows holding a whole family member are positives; shuffled and real transcripts, "
        "shuffled positives, antisense and partial windows are background. The CNN filter "
        "threshold keeps 99 %% of validation positives. The training members (with "
        "--library-rfam, also their Rfam seed relatives; without those that align in 5 or more "
        "of the real transcripts) become the homology library, and the "
        "fused scorer (seeded local alignment + CNN) the default; without a library the default "
        "scorer is the best on validation data. Each scorer is calibrated on shuffled "
        "transcripts that training never sees (--calibration-fraction of --transcripts).",
    )
    d.add_argument(
        "train", help="labelled training FASTA (nRC format: class = first word of the description)"
    )
    d.add_argument("--transcripts", required=True,
                   help="FASTA of real transcripts (e.g. mRNAs and lncRNAs) for background")  # fmt: skip
    d.add_argument("--window", type=positive_int, default=200, help="window length (nt)")
    d.add_argument("--stride", type=positive_int, default=100, help="default screening stride (nt)")
    d.add_argument("--valid-fraction", type=probability, default=0.1,
                   help="share of each family held out to choose the filter threshold")  # fmt: skip
    d.add_argument("--calibration-fraction", type=probability, default=0.2,
                   help="share of the transcripts kept out of training for calibration")  # fmt: skip
    d.add_argument("--calibration-mb", type=positive_float, default=2.0,
                   help="megabases of shuffled background to calibrate on (both strands searched)")  # fmt: skip
    d.add_argument("--calibrate-only", action="store_true",
                   help="recalibrate the detector at --out without training it")  # fmt: skip
    d.add_argument("--library-rfam", default=None,
                   help="typed Rfam seed table (rfam_acc and sequence columns): its members of the "
                   "Rfam families the training ids name (nRC ids start with the accession) join "
                   "the homology library")  # fmt: skip
    d.add_argument("--library-exclude", action="append", default=[],
                   help="FASTA whose sequences are kept out of the homology library (e.g. a test "
                   "set); repeatable")  # fmt: skip
    d.add_argument("--library-only", action="store_true",
                   help="give the detector at --out its homology library (and recalibrate) "
                   "without training it")  # fmt: skip
    d.add_argument("--no-library", action="store_true",
                   help="no homology library: the CNN, model and k-mer scorers only")  # fmt: skip
    d.add_argument("--scorers", type=lambda v: [x.strip() for x in v.split(",") if x.strip()],
                   default=None,
                   help="calibrate only these scorers (comma-separated; default: all the detector "
                   "has)")  # fmt: skip
    d.add_argument("--keep-model", action="store_true",
                   help="keep the detector head already at --out; train the CNN and k-mer stages")  # fmt: skip
    d.add_argument("--cnn-epochs", type=positive_int, default=8, help="epochs of the scanning CNN")
    d.add_argument("--epochs", type=positive_int, default=2)
    d.add_argument("--lr", type=positive_float, default=1e-4)
    for q in (c, s, i, d):
        q.add_argument(
            "--pretrained", help="pretrained model directory ('' = from scratch)", default=""
        )
        q.add_argument("--preset", default="tiny", help="model size when training from scratch")
        q.add_argument("--out", required=True, help="output directory for the fine-tuned model")
        q.add_argument("--batch-tokens", type=positive_int, default=None)
        q.add_argument(
            "--max-minutes",
            type=positive_float,
            default=None,
            help="wall-time cap; the learning rate decays to zero by the cap or by the last epoch, whichever comes first",
        )
        q.add_argument("--seed", type=non_negative_int, default=0)
        q.add_argument("--device", default="cpu")
        q.set_defaults(func=cmd_finetune)

    p = sub.add_parser("evaluate", help="every accuracy figure, baselines recomputed in the same run",
                       description="Evaluate a model on the benchmark sets with every baseline "
                       "recomputed in the same run (see rnaernie.evaluate).")  # fmt: skip
    p.add_argument("--data-dir", default=None,
                   help="folder with nrc/, lncrna_mouse_prelnc/, mirtarraw/, bprna_ts0_vl0_tr0/, "
                   "archiveII/ (default: $RNAERNIE_DATA)")  # fmt: skip
    p.add_argument("--model", default="rnaernie-tiny", help="shipped model name or model directory")
    p.add_argument("--out", default="benchmarks/results/accuracy.json")
    p.add_argument("--cache", default="runs/eval-cache", help="per-section cache ('' = none)")
    p.add_argument("--sections", default="nrc,lncrna,interaction,structure,clustering")
    p.add_argument("--device", default="cpu")
    p.add_argument("--ablation", action="append", default=[], metavar="NAME=METRICS_JSON",
                   help="add the test metrics of another fine-tuning run (its metrics.json) under 'ablations'")  # fmt: skip
    p.set_defaults(func=cmd_evaluate)
