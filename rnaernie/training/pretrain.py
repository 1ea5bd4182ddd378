"""Motif-aware pretraining with RNA-type tokens (RNAErnie's first idea), resumable and distributed.

Input layout (the official "PROMPT" scheme): ``[CLS] seq [IND] TYPE [SEP]``. The type token is never
masked, and the type head reads ``[CLS]`` to predict the type. Beyond the official code, in a fraction
``open_slot_prob`` of the samples (default 0.5) the type slot holds ``[MASK]`` instead, and the MLM head
is trained to fill it with the type token: that is what type-guided fine-tuning's indicator reads at
inference, where the type is unknown. Sequences of unknown type always get the open slot and no type
loss.

Masking: one level per sample (base / subsequence / motif) by the C++ span selector
(:mod:`rnaernie.masking`), the 80/10/10 replacement in C++ on the CPU or by the Triton kernel on a GPU
(identical numbers for the same seed).

Resume is exact: batches are a deterministic function of (seed, epoch), so a resumed run regenerates the
stream and skips what was consumed; model, optimizer, scheduler and RNG state live in the checkpoint
(safetensors and JSON, nothing pickled), written to a temporary name and renamed.

Example (a few steps on the bundled example FASTA)::

    rnaernie pretrain --corpus rnaernie/data/example.fasta --preset tiny --steps 5 --out runs/demo
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..io import open_text, read_fasta
from ..io.runner import dist_env
from ..masking import LEVELS, select_mask_positions
from ..model import RnaErnieConfig, RnaErnieForPreTraining
from ..model.dispatch import mlm_replace
from ..motifs import MotifMatcher
from ..predict import length_buckets
from ..tokenizer import Tokenizer
from ..vocab import MASK_ID, NUC_OFFSET, RNA_TYPES, TYPE_OFFSET, type_id

__all__ = [
    "RFAM_TO_RNACENTRAL",
    "CorpusRecord",
    "PretrainConfig",
    "build_batch",
    "evaluate_pretraining",
    "iter_corpus",
    "length_batches",
    "map_rfam_type",
    "pretrain",
]

log = logging.getLogger(__name__)

# Rfam 14.2 coarse classes of shared/data/rfam14_2_seed_typed -> the 28 RNAcentral type tokens.
# Refined by family id below (hammerhead ribozymes, RNase MRP). Several Rfam classes share a token;
# the table is the documented choice, see MODEL_CARD.md.
RFAM_TO_RNACENTRAL: dict[str, str] = {
    "sRNA": "sRNA",
    "cis-reg_other": "miscRNA",
    "miRNA": "premiRNA",  # Rfam miRNA families are the precursor hairpins
    "snoRNA_CD-box": "snoRNA",
    "snoRNA_HACA-box": "snoRNA",
    "scaRNA": "scaRNA",
    "riboswitch": "other",
    "lncRNA": "lncRNA",
    "Gene_other": "ncRNA",
    "Intron_gpII": "autocatalyticallysplicedintron",
    "Intron_gpI": "autocatalyticallysplicedintron",
    "rRNA": "rRNA",
    "antisense": "antisenseRNA",
    "snRNA": "snRNA",
    "7SK_RNA": "snRNA",
    "tRNA": "tRNA",
    "leader": "miscRNA",
    "IRES": "miscRNA",
    "frameshift_element": "miscRNA",
    "thermoregulator": "miscRNA",
    "RNaseP": "RNasePRNA",
    "ribozyme": "ribozyme",
    "CRISPR": "guideRNA",
    "tmRNA": "tmRNA",
    "antitoxin": "sRNA",
    "SRP_RNA": "SRPRNA",
    "Y_RNA": "YRNA",
    "vault_RNA": "vaultRNA",
    "telomerase_RNA": "telomeraseRNA",
}


def map_rfam_type(rna_type: str, rfam_id: str = "") -> str:
    """RNAcentral type-token name of an Rfam coarse class (see :data:`RFAM_TO_RNACENTRAL`)."""
    if rna_type == "ribozyme" and "hammerhead" in rfam_id.lower():
        return "hammerheadribozyme"
    if rna_type == "ribozyme" and "mrp" in rfam_id.lower():
        return "RNaseMRPRNA"
    try:
        return RFAM_TO_RNACENTRAL[rna_type]
    except KeyError:
        raise ValueError(f"unknown Rfam RNA type {rna_type!r}") from None


@dataclass(frozen=True)
class CorpusRecord:
    seq: str
    type_token: int | None  # an RNA-type token id, or None when unknown


def iter_corpus(path: str | os.PathLike, split: str | None = None) -> Iterator[CorpusRecord]:
    """Stream a pretraining corpus.

    * ``.tsv``/``.tsv.gz`` with columns ``sequence`` and ``rna_type`` (Rfam coarse class or an RNAcentral
      type name) and optionally ``rfam_id`` and ``split`` (rows of other splits are skipped when
      ``split`` is given);
    * FASTA/FASTQ (plain or gzipped): the type is the first word of the description when it names an
      RNA-type token, else unknown.
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".tsv", ".tsv.gz")):
        with open_text(p) as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            if reader.fieldnames is None or "sequence" not in reader.fieldnames:
                raise ValueError(f"{p}: a TSV corpus needs a 'sequence' column")
            for lineno, row in enumerate(reader, start=2):
                if split is not None and row.get("split", split) != split:
                    continue
                t = row.get("rna_type") or ""
                tok = None
                if t:
                    try:
                        tok = type_id(
                            t if t in RNA_TYPES else map_rfam_type(t, row.get("rfam_id", ""))
                        )
                    except ValueError as e:
                        raise ValueError(f"{p}, line {lineno}: {e}") from None
                yield CorpusRecord(row["sequence"], tok)
        return
    for rec in read_fasta(p, allow_duplicates=True):
        word = rec.description.split(" ")[0] if rec.description else ""
        yield CorpusRecord(rec.seq, type_id(word) if word in RNA_TYPES else None)


def length_batches(
    records: Callable[[], Iterator[CorpusRecord]],
    *,
    batch_tokens: int,
    max_length: int,
    seed: int,
    epoch: int,
    buffer_size: int = 20_000,
) -> Iterator[list[CorpusRecord]]:
    """Length-bucketed batches of at most ``batch_tokens`` padded tokens, deterministic in (seed, epoch).

    Reads the corpus as a stream through a shuffle buffer of ``buffer_size`` records; within a
    buffer, records are sorted by length, cut into batches, and the batches shuffled. Sequences
    longer than the model limit are cut into windows (the rest of a long sequence becomes further
    records).
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    room = max_length - 4  # [CLS] ... [IND] TYPE [SEP]

    def windows() -> Iterator[CorpusRecord]:
        for r in records():
            s = r.seq
            if len(s) <= room:
                yield r
                continue
            for b in range(0, len(s), room):
                yield CorpusRecord(s[b : b + room], r.type_token)

    def flush(buf: list[CorpusRecord]) -> list[list[CorpusRecord]]:
        rng.shuffle(buf)  # random order among equal lengths (length_buckets sorts stably)
        lengths = np.array([len(r.seq) + 4 for r in buf])
        out = [[buf[i] for i in idx] for idx in length_buckets(lengths, batch_tokens)]
        rng.shuffle(out)
        return out

    buf: list[CorpusRecord] = []
    for r in windows():
        buf.append(r)
        if len(buf) >= buffer_size:
            yield from flush(buf)
            buf = []
    if buf:
        yield from flush(buf)


def build_batch(
    records: list[CorpusRecord],
    *,
    tokenizer: Tokenizer,
    matcher: MotifMatcher | None,
    seed: int,
    levels: tuple[str, ...] = LEVELS,
    open_slot_prob: float = 0.5,
    device: torch.device | str = "cpu",
    mask_prob: float = 0.15,
) -> dict[str, Tensor]:
    """Tokenize, choose masked spans (C++) and apply the 80/10/10 replacement for one batch.

    Returns tensors: ``input_ids``, ``attention_mask``, ``labels`` (-100 where not predicted),
    ``type_labels`` (0..27 or -100), ``level`` (B,) index into ``LEVELS``.
    """
    rng = np.random.default_rng(seed)
    types = []
    type_labels = []
    for r in records:
        if r.type_token is None:
            types.append(MASK_ID)
            type_labels.append(-100)
        else:
            types.append(MASK_ID if rng.random() < open_slot_prob else r.type_token)
            type_labels.append(r.type_token - TYPE_OFFSET)
    enc = tokenizer.encode_batch(
        [r.seq for r in records], types=types, truncate=True, replace_invalid=True
    )
    ids = enc.input_ids
    selected, level = select_mask_positions(
        ids, seed=seed, levels=levels, matcher=matcher, mask_prob=mask_prob
    )
    dev = torch.device(device)
    masked, labels = mlm_replace(ids, selected, seed % 2**32, dev)  # C++ or Triton
    # open type slots: the MLM head learns to fill them with the true type token
    slot = torch.from_numpy(enc.lengths - 2).to(dev)
    rows = torch.arange(len(records), device=dev)
    tl = torch.tensor(type_labels, dtype=torch.int64, device=dev)
    open_slot = (masked[rows, slot] == MASK_ID) & (tl >= 0)
    labels[rows[open_slot], slot[open_slot]] = tl[open_slot] + TYPE_OFFSET
    return {
        "input_ids": masked,
        "attention_mask": torch.from_numpy(enc.attention_mask).to(dev),
        "labels": labels,
        "type_labels": tl,
        "level": torch.from_numpy(level.astype(np.int64)).to(dev),
    }


@dataclass
class PretrainConfig:
    corpus: str
    out: str = "runs/pretrain"
    preset: str = "tiny"
    model_overrides: dict = field(default_factory=dict)
    levels: tuple[str, ...] = LEVELS
    steps: int = 1000
    batch_tokens: int = 8192
    grad_accum: int = 1
    lr: float = 5e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    max_length: int = 512
    open_slot_prob: float = 0.5
    seed: int = 0
    split: str | None = "train"
    valid_split: str | None = "valid"
    eval_every: int = 500
    checkpoint_every: int = 200
    log_every: int = 10
    threads: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    stop_at: int | None = None  # stop (checkpointed) after this step, to train in parts
    init_from: str | None = None  # start from these weights (a model directory), fresh optimizer
    # wall-time cap (resumed parts count): after the warm-up (counted in steps) the cosine decay
    # follows max(step / steps, time / cap), so a run capped after its warm-up still ends at
    # min_lr_ratio; the run ends (final model, evaluation) at the cap
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        """Checks the settings up front, so a bad config fails before the model is built."""
        self.levels = tuple(self.levels)  # a JSON config gives a list
        if not self.levels or any(lv not in LEVELS for lv in self.levels):
            raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {self.levels}")
        for name, low in (("steps", 1), ("batch_tokens", 1), ("grad_accum", 1), ("log_every", 1),
                          ("checkpoint_every", 1), ("eval_every", 0), ("warmup_steps", 0),
                          ("max_length", 5)):  # fmt: skip
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if not self.lr >= 0.0:
            raise ValueError(f"lr must be >= 0, got {self.lr}")
        if not 0.0 <= self.open_slot_prob <= 1.0:
            raise ValueError(f"open_slot_prob must be in [0, 1], got {self.open_slot_prob}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}")

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["levels"] = list(self.levels)
        return json.dumps(d, indent=2)


def _lr_lambda(
    cfg: PretrainConfig, time_fraction: Callable[[], float] = lambda: 0.0
) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        t = min(1.0, max(t, time_fraction()))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return f


def _save_checkpoint(path: Path, model, opt, sched, state: dict) -> None:
    """Tensors (optimizer state, torch RNG) in ``trainer.safetensors``, the rest in ``trainer.json``,
    weights in ``model/``: nothing is pickled, so a planted file cannot run code on resume."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp / "model")
    osd = opt.state_dict()
    tensors = {f"optimizer.{i}.{k}": v.detach().cpu().contiguous()
               for i, st in osd["state"].items() for k, v in st.items()}  # fmt: skip
    tensors["torch_rng"] = torch.get_rng_state()
    save_file(tensors, tmp / "trainer.safetensors")
    nps = np.random.get_state()  # noqa: NPY002
    meta = {**state, "optimizer_groups": osd["param_groups"], "scheduler": sched.state_dict(),
            "python_random": random.getstate(), "numpy_random": [nps[0], nps[1].tolist(), *nps[2:]]}  # fmt: skip
    (tmp / "trainer.json").write_text(json.dumps(meta))
    old = path.with_name(path.name + ".old")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)


def _load_checkpoint(path: Path, model, opt, sched) -> tuple | None:
    """Restore what :func:`_save_checkpoint` wrote; returns (step, epoch, batches_in_epoch,
    tokens_seen, wall), or None without a checkpoint. A malformed file raises ``ValueError`` naming
    it; a pickled ``trainer.pt`` of older versions is never read."""
    meta_file, tensor_file = path / "trainer.json", path / "trainer.safetensors"
    if not meta_file.exists():
        if (path / "trainer.pt").exists():
            raise ValueError(f"{path / 'trainer.pt'}: pickled checkpoints are not read (unpickling can "
                             "run code); delete the checkpoint folder to start over")  # fmt: skip
        return None
    f = meta_file
    try:
        meta = json.loads(meta_file.read_text())
        f = tensor_file
        tensors = load_file(tensor_file)
        f = path / "model"
        model.load_state_dict(RnaErnieForPreTraining.from_pretrained(f).state_dict())
        f = path
        state: dict = {}
        for key, v in tensors.items():
            if key.startswith("optimizer."):
                _, i, k = key.split(".", 2)
                state.setdefault(int(i), {})[k] = v
        groups = [{**g, "betas": tuple(g["betas"])} for g in meta["optimizer_groups"]]
        opt.load_state_dict({"state": state, "param_groups": groups})
        sched.load_state_dict(meta["scheduler"])
        torch.set_rng_state(tensors["torch_rng"])
        pr, nr = meta["python_random"], meta["numpy_random"]
        random.setstate((pr[0], tuple(pr[1]), pr[2]))
        np.random.set_state((nr[0], np.array(nr[1], np.uint32), *nr[2:]))  # noqa: NPY002
        return tuple(meta[k] for k in ("step", "epoch", "batches_in_epoch", "tokens_seen", "wall"))
    except (LookupError, OSError, TypeError, ValueError, RuntimeError, SafetensorError) as e:
        raise ValueError(f"malformed pretraining checkpoint {f}: {e}") from None


def pretrain(cfg: PretrainConfig) -> Path:
    """Run (or resume) pretraining; returns the directory of the final model (or of the checkpoint's
    model when ``stop_at`` ends the run early).

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the batches of a step are spread over ranks
    (``DistributedDataParallel``: NCCL on GPUs, gloo on CPUs); one optimizer step consumes
    ``world_size × grad_accum`` batches in both cases, so a run with N ranks equals a single process
    with ``grad_accum`` multiplied by N.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank, world = dist_env()
    if cfg.device == "auto":
        device = torch.device(
            f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
        )
    else:
        device = torch.device(cfg.device)
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "pretrain_config.json").write_text(cfg.to_json())

    torch.manual_seed(cfg.seed)
    if cfg.init_from:
        # The architecture comes from the weights; ``preset`` is ignored, overrides still apply.
        model = RnaErnieForPreTraining.from_pretrained(
            cfg.init_from, new_head=True, **cfg.model_overrides
        )
    else:
        model = RnaErnieForPreTraining(RnaErnieConfig.preset(cfg.preset, **cfg.model_overrides))
    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    step, epoch, batches_in_epoch, tokens_seen, wall = 0, 0, 0, 0, 0.0
    cap_s = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
    clock = {
        "fraction": 0.0
    }  # of the wall-time cap spent (all resumed parts); one value for all ranks
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, lambda: clock["fraction"]))
    resumed = _load_checkpoint(ckpt, model, opt, sched)
    if resumed is not None:
        step, epoch, batches_in_epoch, tokens_seen, wall = resumed
        log.warning("resumed from %s at step %d (epoch %d)", ckpt, step, epoch)
    ddp = (
        torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        if world > 1
        else model
    )

    tokenizer = Tokenizer(max_length=cfg.max_length)
    matcher = MotifMatcher.default() if "motif" in cfg.levels else None
    corpus = lambda: iter_corpus(cfg.corpus, cfg.split)  # noqa: E731
    per_step = world * cfg.grad_accum

    def stream(ep: int, skip: int) -> Iterator[list[CorpusRecord]]:
        it = length_batches(
            corpus,
            batch_tokens=cfg.batch_tokens,
            max_length=cfg.max_length,
            seed=cfg.seed,
            epoch=ep,
        )
        for i, b in enumerate(it):
            if i >= skip:
                yield b

    it = stream(epoch, batches_in_epoch)
    log_path = out / "log.jsonl"
    amp = cfg.amp and device.type == "cuda"
    bar = None
    if rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="pretrain", unit="step", dynamic_ncols=True)
    acc = _Accumulator()
    t0 = time.perf_counter()
    model.train()
    last = cfg.steps if cfg.stop_at is None else min(cfg.steps, cfg.stop_at)
    if cap_s is not None:
        clock["fraction"] = wall / cap_s
    # all steps done, or the wall-time cap reached (also when a finished run is started again)
    finished = step >= cfg.steps or clock["fraction"] >= 1.0
    while step < last and not finished:
        group = []
        while len(group) < per_step:
            try:
                group.append(next(it))
            except StopIteration:
                epoch, batches_in_epoch = epoch + 1, 0
                it = stream(epoch, 0)
        batches_in_epoch += per_step
        mine = group[rank::world]
        for micro, recs in enumerate(mine):
            bseed = (
                (cfg.seed * 1_000_003 + epoch) * 10_000_019
                + batches_in_epoch
                - per_step
                + rank
                + micro * world
            )
            batch = build_batch(
                recs, tokenizer=tokenizer, matcher=matcher, seed=bseed, levels=cfg.levels,
                open_slot_prob=cfg.open_slot_prob, device=device,
            )  # fmt: skip
            sync = micro == len(mine) - 1
            ctx = ddp.no_sync() if (world > 1 and not sync) else contextlib.nullcontext()
            with ctx, torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                o = ddp(
                    batch["input_ids"],
                    batch["attention_mask"],
                    labels=batch["labels"],
                    type_labels=batch["type_labels"],
                )
                (o.loss / len(mine)).backward()
            acc.add(o, batch)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        if cap_s is not None:
            frac = (wall + time.perf_counter() - t0) / cap_s
            if world > 1:  # one clock for all ranks: the same learning rate, the same last step
                f = torch.tensor([frac], dtype=torch.float64, device=device)
                torch.distributed.all_reduce(f, op=torch.distributed.ReduceOp.MAX)
                frac = float(f.item())
            clock["fraction"] = frac
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += sum(len(r.seq) + 4 for g in group for r in g)
        if bar is not None:
            bar.update(1)
        if rank == 0 and step % cfg.log_every == 0:
            elapsed = time.perf_counter() - t0
            wall += elapsed
            t0 = time.perf_counter()
            rec = {"step": step, "epoch": epoch, "lr": sched.get_last_lr()[0], "grad_norm": float(grad_norm),
                   "tokens_seen": tokens_seen, "wall_s": round(wall, 1), **acc.summary(elapsed)}  # fmt: skip
            with open(log_path, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            bar.set_postfix(loss=f"{rec['loss']:.3f}", mlm_acc=f"{rec['mlm_acc']:.3f}")
            acc = _Accumulator()
        finished = step == cfg.steps or clock["fraction"] >= 1.0
        if finished and step < cfg.steps:
            log.warning("pretrain: time cap reached after %d/%d steps", step, cfg.steps)
        if rank == 0 and (step % cfg.checkpoint_every == 0 or step == last or finished):
            state = {"step": step, "epoch": epoch, "batches_in_epoch": batches_in_epoch, "tokens_seen": tokens_seen,
                     "wall": wall + time.perf_counter() - t0, "config": dataclasses.asdict(cfg)}  # fmt: skip
            _save_checkpoint(ckpt, model, opt, sched, state)
        if (  # the final model is always evaluated
            rank == 0
            and cfg.valid_split
            and cfg.eval_every
            and (step % cfg.eval_every == 0 or finished)
        ):
            metrics = evaluate_pretraining(
                model,
                iter_corpus(cfg.corpus, cfg.valid_split),
                seed=1234,
                matcher=matcher,
                device=device,
            )
            with open(log_path, "a") as fh:
                fh.write(json.dumps({"step": step, "eval": metrics}) + "\n")
            model.train()
    if bar is not None:
        bar.close()
    if not finished:
        return ckpt / "model"
    final = out / "final"
    if rank == 0:
        model.save_pretrained(final)
    if world > 1:
        torch.distributed.barrier()
    return final


class _Accumulator:
    """Running loss and accuracy per masking level over logged steps."""

    def __init__(self) -> None:
        self.n = 0
        self.loss = self.mlm = self.type = 0.0
        self.tokens = 0
        self.correct = np.zeros(len(LEVELS))
        self.total = np.zeros(len(LEVELS))
        self.type_correct = self.type_total = 0

    @torch.no_grad()
    def add(self, o, batch) -> None:
        self.n += 1
        self.loss += float(o.loss)
        self.mlm += float(o.mlm_loss)
        self.type += float(o.type_loss) if o.type_loss is not None else 0.0
        self.tokens += int(batch["attention_mask"].sum())
        c, t = _level_accuracy(o.logits, batch["labels"], batch["level"])
        self.correct += c
        self.total += t
        ok = batch["type_labels"] >= 0
        self.type_correct += int((o.type_logits.argmax(-1)[ok] == batch["type_labels"][ok]).sum())
        self.type_total += int(ok.sum())

    def summary(self, elapsed: float) -> dict:
        n = max(1, self.n)
        per = {
            f"mlm_acc_{lv}": float(self.correct[i] / self.total[i]) if self.total[i] else None
            for i, lv in enumerate(LEVELS)
        }
        return {
            "loss": self.loss / n, "mlm_loss": self.mlm / n, "type_loss": self.type / n,
            "mlm_acc": float(self.correct.sum() / max(1, self.total.sum())), **per,
            "type_acc": self.type_correct / max(1, self.type_total),
            "tokens_per_s": self.tokens / max(elapsed, 1e-9),
        }  # fmt: skip


def _level_accuracy(logits: Tensor, labels: Tensor, level: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Correct and total nucleotide predictions per masking level (the type slot is excluded)."""
    pred = logits.argmax(-1)
    is_nuc = labels >= NUC_OFFSET
    correct = np.zeros(len(LEVELS))
    total = np.zeros(len(LEVELS))
    for i in range(len(LEVELS)):
        rows = (level == i)[:, None] & is_nuc
        total[i] = int(rows.sum())
        correct[i] = int((pred[rows] == labels[rows]).sum())
    return correct, total


@torch.no_grad()
def evaluate_pretraining(
    model: RnaErnieForPreTraining,
    records: Iterator[CorpusRecord],
    *,
    seed: int = 1234,
    matcher: MotifMatcher | None = None,
    device: torch.device | str = "cpu",
    batch_tokens: int = 16384,
    levels: tuple[str, ...] = LEVELS,
) -> dict:
    """Held-out metrics per masking level, type accuracy from ``[CLS]`` and from the open type slot,
    and the trivial baselines (most frequent nucleotide; most frequent type).

    Per level: ``mlm_acc_mask_*``, nucleotide accuracy on the positions replaced by ``[MASK]`` only
    (the figure that says whether the model reads the context), against
    ``baseline_most_frequent_nucleotide_*`` on the same positions; ``mlm_acc_*`` on all 80/10/10
    targets (the kept 10 % are easy); ``mlm_loss_mask_*`` / ``mlm_loss_*``, the cross-entropy in nats
    on those two sets, next to ``ln4`` (a uniform guess). Every sequence is evaluated once at each
    level (same seed), with the type slot open.
    """
    model.eval()
    recs = list(records)
    matcher = matcher or MotifMatcher.default()
    tok = Tokenizer()
    res: dict = {"sequences": len(recs), "ln4": math.log(4)}
    type_correct_cls = type_correct_slot = type_total = 0
    labels_all = []
    for li, lv in enumerate(levels):
        n = np.zeros((2, 2))  # [all 80/10/10 targets, [MASK] only] x [correct, total]
        nll = np.zeros(2)
        nuc_counts = np.zeros(4)
        b = 0
        order = sorted(range(len(recs)), key=lambda i: len(recs[i].seq))
        while b < len(order):
            e = b
            while (
                e < len(order)
                and (e - b + 1) * (min(len(recs[order[e]].seq), 508) + 4) <= batch_tokens
            ):
                e += 1
            e = max(e, b + 1)
            chunk = [recs[i] for i in order[b:e]]
            batch = build_batch(chunk, tokenizer=tok, matcher=matcher, seed=seed + b, levels=(lv,),
                                open_slot_prob=1.0, device=device)  # fmt: skip
            o = model(batch["input_ids"], batch["attention_mask"])
            lab = batch["labels"]
            nuc = lab >= NUC_OFFSET
            hidden = nuc & (batch["input_ids"] == MASK_ID)
            hit = o.logits.argmax(-1) == lab
            for j, sel in enumerate((nuc, hidden)):
                n[j] += (int(hit[sel].sum()), int(sel.sum()))
                nll[j] += float(F.cross_entropy(o.logits[sel].float(), lab[sel], reduction="sum"))
            nuc_counts += np.bincount((lab[hidden] - NUC_OFFSET).cpu().numpy(), minlength=4)
            if li == 0:
                tl = batch["type_labels"]
                ok = tl >= 0
                type_total += int(ok.sum())
                type_correct_cls += int((o.type_logits.argmax(-1)[ok] == tl[ok]).sum())
                slot = (batch["attention_mask"].sum(1) - 2).long()
                rows = torch.arange(len(chunk), device=lab.device)
                slot_logits = o.logits[rows, slot][:, TYPE_OFFSET : TYPE_OFFSET + len(RNA_TYPES)]
                type_correct_slot += int((slot_logits.argmax(-1)[ok] == tl[ok]).sum())
                labels_all += tl[ok].tolist()
            b = e
        tot = np.maximum(n[:, 1], 1)
        res |= {f"mlm_acc_{lv}": n[0, 0] / tot[0], f"mlm_acc_mask_{lv}": n[1, 0] / tot[1],
                f"mlm_loss_{lv}": nll[0] / tot[0], f"mlm_loss_mask_{lv}": nll[1] / tot[1],
                f"masked_{lv}": int(n[0, 1]), f"masked_mask_{lv}": int(n[1, 1]),
                f"baseline_most_frequent_nucleotide_{lv}": nuc_counts.max() / tot[1]}  # fmt: skip
    res = {k: float(v) if isinstance(v, np.floating) else v for k, v in res.items()}
    res["type_acc_cls"] = type_correct_cls / max(1, type_total)
    res["type_acc_slot"] = type_correct_slot / max(1, type_total)
    res["baseline_most_frequent_type"] = (
        float(np.bincount(labels_all).max() / max(1, len(labels_all))) if labels_all else None
    )
    res["typed_sequences"] = type_total
    return res
