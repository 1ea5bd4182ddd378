"""Pretraining sanity checks: overfit a few hundred sequences, or train short comparable runs.

Uses the repository's own model (``RnaErnieForPreTraining``), batching (``length_batches``) and
masking path (``build_batch``: C++ span selection + 80/10/10 replacement), and reports masked-base
accuracy on the positions replaced by ``[MASK]`` only, next to the MLM loss in nats and ln 4.

* ``--mode overfit`` (the decisive check): ``--n`` sequences of the training split are both the
  training and the evaluation set (fresh masks at evaluation). A correct masking/label/head path
  reaches masked-base accuracy >= 0.9.
* ``--mode heldout``: train on the training split, evaluate on ``--n-eval`` sequences of the
  validation split; a curve of held-out loss vs tokens seen for comparing settings on the same
  token budget (``--max-tokens``).
* ``--mode synthetic``: a control with a purely local rule (each base is ``f(previous two)`` with
  probability 0.8, else random; ``--n`` training sequences of ``--max-nt`` nt, 200 held out): a
  bigram table solves it at once, so a long stay at ln 4 here is the model's own plateau in finding
  relative-position attention, not the data.
* ``--mode ngram``: the reference a model should beat: held-out (valid split) NLL and accuracy of a
  count table predicting a base from its +-k neighbours on the training split (no transformer).
* ``--mode attention --model DIR``: how much attention a pretrained model puts on the neighbours
  (offsets -2..+2) of nucleotide queries, and the entropy per head, against uniform.

Writes ``--out`` (JSON summary, rewritten at every evaluation) and ``--out`` with ``.jsonl``
(one line per evaluation). A readable log line goes to stdout every ``--log-seconds``.

Example::

    python scripts/pretrain_diagnosis.py --mode overfit --n 500 --out runs/diagnosis/overfit.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnaernie.masking import LEVELS
from rnaernie.motifs import MotifMatcher
from rnaernie.tokenizer import Tokenizer
from rnaernie.training.pretrain import (
    CorpusRecord,
    RnaErnieConfig,
    RnaErnieForPreTraining,
    build_batch,
    evaluate_pretraining,
    iter_corpus,
    length_batches,
)

CORPUS = (
    Path(__file__).resolve().parents[2]
    / "shared/data/rfam14_2_seed_typed/rfam14.2_seed_typed.tsv.gz"
)


def sample(corpus: str, split: str, n: int, seed: int, max_nt: int) -> list[CorpusRecord]:
    recs = [r for r in iter_corpus(corpus, split) if r.seq]
    recs = random.Random(seed).sample(recs, min(n, len(recs))) if n else recs
    return [CorpusRecord(r.seq[:max_nt], r.type_token) for r in recs]


def markov(n: int, length: int, rng: random.Random, p: float = 0.8) -> list[CorpusRecord]:
    out = []
    for _ in range(n):
        b = [rng.randrange(4), rng.randrange(4)]
        while len(b) < length:
            b.append((b[-1] + 2 * b[-2] + 1) % 4 if rng.random() < p else rng.randrange(4))
        out.append(CorpusRecord("".join("AUCG"[x] for x in b), None))
    return out


def ngram(corpus: str, ks: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)) -> dict:
    """Held-out NLL/accuracy of +-k context counts (add-0.5; unseen contexts back off to +-4)."""
    lut = np.full(256, 4, np.int64)
    for i, c in enumerate("AUCG"):
        lut[ord(c)] = i
    tr = [
        lut[np.frombuffer(r.seq.upper().encode(), np.uint8)] for r in iter_corpus(corpus, "train")
    ]
    va = [
        lut[np.frombuffer(r.seq.upper().encode(), np.uint8)] for r in iter_corpus(corpus, "valid")
    ]

    def codes(seqs, k):  # (context code in base 5, target) of every A/U/C/G position
        xs, ys = [], []
        for a in seqs:
            p, code = np.r_[np.full(k, 4), a, np.full(k, 4)], np.zeros(len(a), np.int64)
            for o in [*range(-k, 0), *range(1, k + 1)]:
                code = code * 5 + p[k + o : k + o + len(a)]
            xs.append(code[a < 4]), ys.append(a[a < 4])
        return np.concatenate(xs), np.concatenate(ys)

    def table(x, y, keys):
        t = np.zeros((len(keys), 4))
        np.add.at(t, (np.searchsorted(keys, x), y), 1)
        return t

    (x4, y), (v4, yv) = codes(tr, 4), codes(va, 4)
    k4 = np.unique(x4)
    t4 = table(x4, y, k4) + 0.5
    i4 = np.minimum(np.searchsorted(k4, v4), len(k4) - 1)
    back = np.where((k4[i4] == v4)[:, None], t4[i4] / t4[i4].sum(1, keepdims=True), 0.25)
    out = {}
    for k in ks:
        x, xv = codes(tr, k)[0], codes(va, k)[0]
        keys = np.unique(x)
        t = table(x, y, keys)
        i = np.minimum(np.searchsorted(keys, xv), len(keys) - 1)
        seen = keys[i] == xv
        prob = (np.where(seen[:, None], t[i], 0) + back) / (np.where(seen, t[i].sum(1), 0) + 1)[
            :, None
        ]
        out[f"+-{k}"] = {"nll": float(-np.log(prob[np.arange(len(yv)), yv]).mean()),
                         "acc": float((prob.argmax(1) == yv).mean()), "context_seen": float(seen.mean())}  # fmt: skip
        print(f"+-{k} nt context: held-out NLL {out[f'+-{k}']['nll']:.4f} nats (ln4 {math.log(4):.4f}), "
              f"acc {out[f'+-{k}']['acc']:.3f}", flush=True)  # fmt: skip
    return out


@torch.no_grad()
def attention_profile(model_dir: str, corpus: str, n: int = 32, length: int = 120) -> dict:
    """Mean attention of nucleotide queries on offsets -2..+2 and entropy per head, per layer."""
    model = RnaErnieForPreTraining.from_pretrained(model_dir).eval()
    recs = [r for r in sample(corpus, "valid", 0, 0, length) if len(r.seq) == length][:n]
    b = build_batch(
        recs, tokenizer=Tokenizer(), matcher=None, seed=3, levels=("base",), open_slot_prob=1.0
    )
    att = model.ernie(b["input_ids"], b["attention_mask"], output_attentions=True).attentions
    q = torch.arange(1, length + 1)
    out = {"uniform_entropy": math.log(length + 4), "uniform_mass": 1 / (length + 4), "layers": []}
    for a in att:  # (B, H, L, L)
        a = a[:, :, 1 : length + 1]
        ent = -(a.clamp_min(1e-12).log() * a).sum(-1).mean((0, 2))
        off = {d: a[:, :, q - 1, q + d].mean((0, 2)).tolist() for d in (-2, -1, 0, 1, 2)}
        out["layers"].append({"entropy": ent.tolist(), "offset_mass": off})
        print(f"entropy/head {[round(e, 2) for e in ent.tolist()]} (uniform {out['uniform_entropy']:.2f}); "
              f"mass on offset -1/+1 {[round(x, 3) for x in off[-1]]} / {[round(x, 3) for x in off[1]]} "
              f"(uniform {out['uniform_mass']:.3f})", flush=True)  # fmt: skip
    return out


def crops(recs: list[CorpusRecord], crop: int, rng: random.Random) -> list[CorpusRecord]:
    """A random window of ``crop`` nucleotides of every longer sequence."""
    out = []
    for r in recs:
        s = r.seq
        if crop and len(s) > crop:
            b = rng.randrange(len(s) - crop + 1)
            s = s[b : b + crop]
        out.append(CorpusRecord(s, r.type_token))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--mode",
        choices=("overfit", "heldout", "synthetic", "ngram", "attention"),
        default="overfit",
    )
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--out", required=True, help="JSON summary; curve goes to the same name .jsonl")
    ap.add_argument(
        "--n",
        type=int,
        default=500,
        help="training sequences (0 = all; overfit: also the eval set)",
    )
    ap.add_argument("--n-eval", type=int, default=545, help="held-out sequences (heldout mode)")
    ap.add_argument("--model", help="attention mode: a pretrained model directory")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--pos-init", choices=("random", "sinusoidal"), default="random")
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument(
        "--levels", default="base", help="comma-separated subset of " + ",".join(LEVELS)
    )
    ap.add_argument("--mask-prob", type=float, default=0.15)
    ap.add_argument("--open-slot-prob", type=float, default=0.5)
    ap.add_argument("--type-weight", type=float, default=1.0, help="weight of the [CLS] type loss")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument(
        "--warmup", type=int, default=100, help="warm-up steps (then constant or cosine)"
    )
    ap.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument(
        "--max-nt", type=int, default=508, help="cut sequences to this many nucleotides"
    )
    ap.add_argument(
        "--crop", type=int, default=0, help="train on random crops of this length (0: whole)"
    )
    ap.add_argument("--max-tokens", type=float, default=0, help="stop after this many tokens seen")
    ap.add_argument("--max-minutes", type=float, default=15.0)
    ap.add_argument(
        "--target", type=float, default=0.0, help="stop once [MASK]-only base accuracy reaches this"
    )
    ap.add_argument(
        "--eval-tokens", type=float, default=200_000, help="evaluate every this many tokens"
    )
    ap.add_argument("--log-seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast on CUDA)")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    levels = tuple(a.levels.split(","))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if a.mode == "attention" and not a.model:
        ap.error("--mode attention needs --model DIR")
    if a.mode in ("ngram", "attention"):
        res = ngram(a.corpus) if a.mode == "ngram" else attention_profile(a.model, a.corpus)
        out.write_text(json.dumps({"args": vars(a), **res}, indent=1))
        return 0
    curve = out.with_suffix(".jsonl")
    curve.write_text("")
    if a.mode == "synthetic":
        train, held = (
            markov(a.n, a.max_nt, random.Random(a.seed)),
            markov(200, a.max_nt, random.Random(-1)),
        )
    else:
        train = sample(a.corpus, "train", a.n, a.seed, a.max_nt)
        held = (
            train if a.mode == "overfit" else sample(a.corpus, "valid", a.n_eval, a.seed, a.max_nt)
        )
    cfg = RnaErnieConfig.preset(a.preset, hidden_dropout=a.dropout, attention_dropout=a.dropout)
    model = RnaErnieForPreTraining(cfg)
    dev = torch.device(a.device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")
    if a.pos_init == "sinusoidal":  # smooth positions: relative offsets are a rotation of q/k
        w = model.ernie.embeddings.position_embeddings.weight
        ang = torch.arange(w.shape[0])[:, None] / 10000 ** (
            torch.arange(0, w.shape[1], 2) / w.shape[1]
        )
        with torch.no_grad():
            w[:, 0::2], w[:, 1::2] = torch.sin(ang) * 0.02 * 2**0.5, torch.cos(ang) * 0.02 * 2**0.5
    model.to(dev)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98), eps=1e-6)  # fmt: skip
    budget = a.max_tokens or math.inf

    def lr_at(step: int, tokens: int) -> float:
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        if a.schedule == "constant" or budget == math.inf:
            return a.lr
        t = min(1.0, tokens / budget)
        return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    tok = Tokenizer(max_length=a.max_nt + 4)
    matcher = MotifMatcher.default() if "motif" in levels else None
    eval_matcher = MotifMatcher.default()
    rng = random.Random(a.seed + 1)
    summary: dict = {"args": vars(a), "ln4": math.log(4), "train_sequences": len(train),
                     "train_nt": sum(len(r.seq) for r in train), "eval_sequences": len(held), "evals": []}  # fmt: skip

    def evaluate(step: int, tokens: int, wall: float) -> dict:
        with amp:
            m = evaluate_pretraining(model, iter(held), seed=1234, matcher=eval_matcher,
                                     levels=levels, device=dev)  # fmt: skip
        model.train()
        rec = {"step": step, "tokens": tokens, "wall_s": round(wall, 1), **m}
        with open(curve, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        summary["evals"].append(rec)
        summary["final"] = rec
        out.write_text(json.dumps(summary, indent=1))
        lv = levels[0]
        print(f"[eval] step {step} tokens {tokens:,} {lv}: acc[MASK] {m[f'mlm_acc_mask_{lv}']:.3f} "
              f"acc80/10/10 {m[f'mlm_acc_{lv}']:.3f} loss[MASK] {m[f'mlm_loss_mask_{lv}']:.3f} nats "
              f"(ln4 {math.log(4):.3f}) baseline {m[f'baseline_most_frequent_nucleotide_{lv}']:.3f} "
              f"type_cls {m['type_acc_cls']:.3f}", flush=True)  # fmt: skip
        return m

    step = tokens = 0
    t0 = last_log = time.perf_counter()
    next_eval = 0.0
    run_loss = run_n = 0.0
    epoch = 0
    done = False
    model.train()
    while not done:
        src = crops(train, a.crop, rng) if a.crop else train
        for recs in length_batches(lambda s=src: iter(s), batch_tokens=a.batch_tokens, max_length=a.max_nt + 4,
                                   seed=a.seed, epoch=epoch):  # fmt: skip
            if tokens >= next_eval:
                m = evaluate(step, tokens, time.perf_counter() - t0)
                next_eval += a.eval_tokens
                if a.target and m[f"mlm_acc_mask_{levels[0]}"] >= a.target:
                    done = True
                    break
            if tokens >= budget or time.perf_counter() - t0 > 60 * a.max_minutes:
                done = True
                break
            b = build_batch(recs, tokenizer=tok, matcher=matcher, seed=a.seed * 7919 + step, levels=levels,
                            open_slot_prob=a.open_slot_prob, mask_prob=a.mask_prob, device=dev)  # fmt: skip
            for g in opt.param_groups:
                g["lr"] = lr_at(step, tokens)
            with amp:
                o = model(b["input_ids"], b["attention_mask"], labels=b["labels"],
                          type_labels=b["type_labels"])  # fmt: skip
                loss = o.mlm_loss + a.type_weight * o.type_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            tokens += int(b["attention_mask"].sum())
            run_loss += float(o.mlm_loss.detach())
            run_n += 1
            now = time.perf_counter()
            if now - last_log >= a.log_seconds:
                print(f"step {step} epoch {epoch} tokens {tokens:,} lr {lr_at(step, tokens):.2e} "
                      f"train mlm_loss {run_loss / run_n:.3f} type_loss {float(o.type_loss.detach()):.3f} "
                      f"{tokens / (now - t0):,.0f} tok/s", flush=True)  # fmt: skip
                last_log, run_loss, run_n = now, 0.0, 0.0
        epoch += 1
    m = evaluate(step, tokens, time.perf_counter() - t0)
    lv = levels[0]
    summary["reached_target"] = bool(a.target and m[f"mlm_acc_mask_{lv}"] >= a.target)
    out.write_text(json.dumps(summary, indent=1))
    print(
        json.dumps(
            {k: v for k, v in summary["final"].items() if lv in k or k in ("step", "tokens")}
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
