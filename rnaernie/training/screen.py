"""Training data and training of the screening detector (``rnaernie finetune screen``).

The detector is a sequence classifier over windows of ``window`` nt with the families of a
labelled FASTA (the nRC format) **plus** :data:`BACKGROUND`. A window is a positive of family
``f`` when it holds a whole member of ``f`` (a member longer than the window: a window inside it);
everything a genome scan meets otherwise is background, and the training set holds each kind:

* background sequence itself: windows of dinucleotide-shuffled transcripts (real composition, no
  real genes) and windows of real transcripts (mRNAs, lncRNAs: transcribed, but not of a family);
* dinucleotide-shuffled positives (the composition of a gene without its sequence);
* reverse complements of positives (an antisense window is not a hit);
* windows that cover only a small part (≤ :data:`PARTIAL_MAX` of its length) of a positive.

Positives sit at a random offset between flanks of shuffled background, as a gene does in a genome.
:func:`train_detector` fine-tunes the classifier head (unguided: the screen scores windows in one
pass), fits the k-mer logistic regression (the baseline scorer), trains the scanning CNN and
chooses its filter threshold on validation positives (keeping :data:`FILTER_SENSITIVITY` of them)
and the default scorer on validation data. :func:`add_library` gives the detector its homology
library (the training members, optionally with the Rfam seed members of the same Rfam families)
with the settings ``scripts/screen_fusion.py`` chose on validation data; ``fused`` (homology +
CNN) becomes the default scorer once it is calibrated. Calibrating the scores to E-values needs
the whole screening pipeline and lives in :func:`rnaernie.screen.calibrate`.
Background sequence comes from :func:`rnaernie.kmer.shuffled_genome`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..homology import HomologySettings, Library
from ..io import open_text
from ..kmer import KmerClassifier, dinucleotide_shuffle, shuffled_genome
from ..model.motif_cnn import MotifCNN, one_hot
from ..predict import classifier_probs
from ..screen import log_odds, update_screen_config, window_spans
from ..tokenizer import normalise, reverse_complement

__all__ = [
    "BACKGROUND",
    "CNN_WEIGHT",
    "FILTER_SENSITIVITY",
    "LIBRARY_FILE",
    "PARTIAL_MAX",
    "PROMISCUOUS",
    "DetectorData",
    "add_library",
    "detector_windows",
    "library_members",
    "purge_promiscuous",
    "train_cnn",
    "train_detector",
]

log = logging.getLogger(__name__)

BACKGROUND = "background"
PARTIAL_MAX = 0.2  # a window holding at most this share of a gene is background
FILTER_SENSITIVITY = 0.99  # share of validation positives the CNN filter must let through
LIBRARY_FILE = "library.fasta.gz"
# chosen on validation data by scripts/screen_fusion.py (benchmarks/results/screen_fusion_valid.json):
# the CNN's weight in the fused log-odds, and the homology settings (HomologySettings defaults)
CNN_WEIGHT = 1.0
RFAM_ACCESSION = re.compile(r"^(RF\d{5})_")
PROMISCUOUS = 5  # a member aligning in this many distinct real transcripts is dropped
PROMISCUOUS_BITS = 40.0  # ... with at least this many bits (about 1 shuffled window per Mb)


def purge_promiscuous(
    seqs: Sequence[str],
    fams: Sequence[int],
    labels: Sequence[str],
    transcripts: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    settings: HomologySettings | None = None,
    min_bits: float = PROMISCUOUS_BITS,
    max_transcripts: int = PROMISCUOUS,
    window: int = 200,
    stride: int = 100,
) -> tuple[list[str], list[int], list[str], int]:
    """Drop the library members that are the best alignment (≥ ``min_bits``) of windows in at
    least ``max_transcripts`` distinct real transcripts (either strand): such a member carries a
    sequence of the genome at large (a SINE, a repeat) rather than of its family, and would call
    genes in every transcript that holds it. Returns (sequences, classes, names, members
    dropped)."""
    lib = Library(seqs, fams, labels, settings, names)
    reached: dict[int, set[int]] = {}
    for t, tx in enumerate(transcripts):
        s = normalise(tx)
        for strand in (s, reverse_complement(s)):
            starts = [a for a, _ in window_spans(len(strand), window, stride)]
            if not starts:
                continue
            a = lib.align(strand, starts, window)
            good = a.aligned & (a.scores.max(1) * lib.bits_per_score >= min_bits)
            for r in set(a.ref[good].tolist()):
                reached.setdefault(int(r), set()).add(t)
    drop = {r for r, ts in reached.items() if len(ts) >= max_transcripts}
    keep = [i for i in range(len(lib.seqs)) if i not in drop]
    return ([lib.seqs[i] for i in keep], [int(lib.families[i]) for i in keep],
            [lib.names[i] for i in keep], len(drop))  # fmt: skip


def library_members(
    seqs: Sequence[str],
    y: Sequence[int],
    ids: Sequence[str],
    *,
    rfam: str | Path | None = None,
    exclude: Iterable[str] = (),
) -> tuple[list[str], list[int], list[str], dict]:
    """The homology library: the labelled members ``seqs`` (class indices ``y``, named by their
    ``ids``) and, with ``rfam`` (the typed Rfam seed table: ``rfam_acc`` and ``sequence`` columns,
    ``seq_id`` if present; tab-separated, gzip or plain), every Rfam seed member of the Rfam
    families that the training ids name (nRC ids start with the accession, ``RF00005_...``),
    labelled with that family's class and named ``<rfam_acc>_<seq_id>``. A sequence identical to
    one in ``exclude`` (e.g. a test set) is left out; duplicates are kept once (with the first
    name). Names carry no whitespace. Returns (sequences, classes, names, counts)."""
    drop = {normalise(x) for x in exclude}
    acc: dict[str, int] = {}
    for i, c in zip(ids, y):
        m = RFAM_ACCESSION.match(i)
        if m:
            acc.setdefault(m.group(1), int(c))
    out: dict[str, tuple[int, str]] = {}
    for s, c, i in zip(seqs, y, ids):
        s = normalise(s)
        if s not in drop:
            out.setdefault(s, (int(c), "_".join(str(i).split())))
    n_train, n_rfam = len(out), 0
    if rfam is not None:
        with open_text(rfam) as f:
            head = f.readline().rstrip("\n").split("\t")
            iname = head.index("seq_id") if "seq_id" in head else None
            try:
                ia, iseq = head.index("rfam_acc"), head.index("sequence")
            except ValueError:
                raise ValueError(f"{rfam}, line 1: need the columns rfam_acc and sequence, got "
                                 f"{head}") from None  # fmt: skip
            for line_no, line in enumerate(f, 2):
                row = line.rstrip("\n").split("\t")
                if len(row) != len(head):
                    raise ValueError(
                        f"{rfam}, line {line_no}: {len(row)} columns, expected {len(head)}"
                    )
                if row[ia] in acc:
                    s = normalise(row[iseq])
                    if s not in drop and s not in out:
                        name = row[iname] if iname is not None else f"line{line_no}"
                        out[s] = (acc[row[ia]], "_".join(f"{row[ia]}_{name}".split()))
                        n_rfam += 1
    counts = {"training_members": n_train, "rfam_members": n_rfam, "rfam_families": len(acc)}
    return list(out), [c for c, _ in out.values()], [n for _, n in out.values()], counts


def add_library(
    head: str | Path,
    seqs: Sequence[str],
    y: Sequence[int],
    *,
    names: Sequence[str] | None = None,
    settings: HomologySettings | None = None,
    cnn_weight: float = CNN_WEIGHT,
) -> dict:
    """Write the homology library into the detector at ``head`` (:data:`LIBRARY_FILE`, the
    settings in ``extra.screen.homology``). Calibrate its scorers afterwards
    (:func:`rnaernie.screen.calibrate`), then make one the default
    (:func:`rnaernie.screen.update_screen_config`)."""
    head = Path(head)
    cfg = json.loads((head / "config.json").read_text())
    labels = [str(x) for x in cfg["extra"]["labels"]][:-1]
    lib = Library(seqs, y, labels, settings, names)
    lib.write(head / LIBRARY_FILE)
    update_screen_config(head, homology={"library": LIBRARY_FILE, "cnn_weight": float(cnn_weight),
                                         "settings": lib.settings.to_dict()})  # fmt: skip
    return {"members": len(lib.seqs), "nt": int(lib.lengths.sum())}


@dataclass
class DetectorData:
    """Windows and class indices (``labels[-1]`` is :data:`BACKGROUND`); ``kind`` says which
    construction each window came from (for per-kind validation figures)."""

    seqs: list[str]
    y: np.ndarray
    kind: list[str]
    labels: list[str]


def detector_windows(
    pos_seqs: Sequence[str],
    pos_y: Sequence[int],
    families: Sequence[str],
    transcripts: Sequence[str],
    window: int,
    rng: np.random.Generator,
    *,
    real_per_positive: float = 0.5,
    shuffled_per_positive: float = 1.0,
) -> DetectorData:
    """The training windows of the module docstring for positives ``pos_seqs`` (class indices
    ``pos_y`` into ``families``); background from ``transcripts``."""
    if window < 20:
        raise ValueError(f"the detector window must be at least 20 nt, got {window}")
    pool = shuffled_genome(transcripts, max(200 * window, 100_000), rng)
    real = [normalise(t) for t in transcripts if len(t) >= window]

    def filler(n: int) -> str:
        if n <= 0:
            return ""
        a = int(rng.integers(0, len(pool) - n + 1))
        return pool[a : a + n]

    def embed(s: str) -> str:
        if len(s) >= window:
            a = int(rng.integers(0, len(s) - window + 1))
            return s[a : a + window]
        off = int(rng.integers(0, window - len(s) + 1))
        return filler(off) + s + filler(window - len(s) - off)

    bg = len(families)
    seqs: list[str] = []
    ys: list[int] = []
    kinds: list[str] = []

    def add(s: str, y: int, kind: str) -> None:
        seqs.append(s)
        ys.append(y)
        kinds.append(kind)

    for s, y in zip(pos_seqs, pos_y):
        s = normalise(s)
        add(embed(s), int(y), "positive")
        add(embed(dinucleotide_shuffle(s, rng)), bg, "shuffled_positive")
        add(reverse_complement(embed(s)), bg, "antisense")
        k = int(rng.integers(1, max(2, int(PARTIAL_MAX * len(s)) + 1)))
        k = min(k, window - 1)
        part = (
            s[len(s) - k :] + filler(window - k)
            if rng.random() < 0.5
            else filler(window - k) + s[:k]
        )
        add(part, bg, "partial")
        for _ in range(int(rng.poisson(shuffled_per_positive))):
            add(filler(window), bg, "shuffled_transcript")
        if real:
            for _ in range(int(rng.poisson(real_per_positive))):
                t = real[int(rng.integers(len(real)))]
                a = int(rng.integers(0, len(t) - window + 1))
                add(t[a : a + window], bg, "transcript")
    return DetectorData(seqs, np.array(ys, dtype=np.int64), kinds, [*families, BACKGROUND])


def train_cnn(
    train: DetectorData,
    *,
    channels: int = 32,
    epochs: int = 8,
    lr: float = 2e-3,
    batch_size: int = 128,
    seed: int = 0,
    max_minutes: float | None = None,
    device: str = "cpu",
    fresh: Callable[[int], DetectorData] | None = None,
) -> MotifCNN:
    """Train the scanning CNN (:class:`rnaernie.model.motif_cnn.MotifCNN`) on ``train``'s windows:
    AdamW, one-cycle learning rate, cross-entropy over families + background. ``fresh(epoch)``,
    when given, builds new windows of the same sequences (other offsets, flanks, shuffles) for
    every epoch after the first (same number of windows or not)."""
    import time

    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    net = MotifCNN(len(train.labels) - 1, channels=channels, labels=train.labels).to(device)
    x = one_hot(train.seqs)
    y = torch.as_tensor(train.y)
    steps = epochs * ((len(y) + batch_size - 1) // batch_size) + epochs  # room for size changes
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    t0, step = time.monotonic(), 0
    net.train()
    for ep in range(epochs):
        if fresh is not None and ep > 0:
            data = fresh(ep)
            x, y = one_hot(data.seqs), torch.as_tensor(data.y)
        order = torch.randperm(len(y), generator=gen)
        total = 0.0
        for a in range(0, len(y), batch_size):
            if step >= steps:
                break
            idx = order[a : a + batch_size]
            loss = F.cross_entropy(net(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * len(idx)
        log.warning("screen CNN epoch %d: loss %.4f (%.0f s)", ep + 1, total / len(y),
                    time.monotonic() - t0)  # fmt: skip
        if max_minutes is not None and time.monotonic() - t0 > 60 * max_minutes:
            break
    return net.eval()


def train_detector(
    pretrained: str | Path | None,
    train: DetectorData,
    valid: DetectorData,
    out: str | Path,
    *,
    window: int,
    stride: int,
    epochs: int = 2,
    lr: float = 1e-4,
    batch_tokens: int = 8192,
    seed: int = 0,
    device: str = "cpu",
    max_minutes: float | None = None,
    dropout: float | None = None,
    train_model: bool = True,
    cnn_epochs: int = 8,
    fresh: Callable[[int], DetectorData] | None = None,
) -> dict:
    """Fine-tune the detector head from ``pretrained`` (a model or a head, e.g. the nRC head) on
    ``train`` (``train_model=False``: keep the head already at ``out``), fit the k-mer classifier
    (the baseline scorer), train the scanning CNN and choose its filter threshold on ``valid``
    (keeping :data:`FILTER_SENSITIVITY` of the positives), and the default scorer (``cnn``:
    the CNN's log-odds; ``model``: the head's, on the windows the CNN lets through; ``kmer``):
    the best area under the ROC curve of positives against background on ``valid``. Writes the
    head to ``out`` (``model.safetensors``, ``config.json`` with ``extra.screen``,
    ``labels.json``, ``kmer_logreg.safetensors``, ``cnn.safetensors``). ``fresh``: new training
    windows for each CNN epoch (:func:`train_cnn`). Returns validation figures."""
    from ..model import RnaErnieForSequenceClassification
    from .classify import finetune_classifier

    out = Path(out)
    if train_model:
        model, _ = finetune_classifier(
            pretrained, train.seqs, train.y, train.labels, out=out, type_guided=False,
            epochs=epochs, lr=lr, batch_tokens=batch_tokens, seed=seed, device=device,
            max_minutes=max_minutes, dropout=dropout,
        )  # fmt: skip
    else:
        model = RnaErnieForSequenceClassification.from_pretrained(out).to(device).eval()
        if model.config.extra.get("labels") != train.labels:
            raise ValueError(f"{out}: the head's labels are not {train.labels}")
    kmer = KmerClassifier.fit(train.seqs, train.y, train.labels, folds=1, replace_invalid=True)
    kmer.save(out)
    net = train_cnn(train, epochs=cnn_epochs, seed=seed, device=device, fresh=fresh)
    net.save(out)
    is_pos = np.array([k == "positive" for k in valid.kind])
    fam_c, cnn = log_odds(net.window_logits(valid.seqs))
    thr = float(np.quantile(cnn[is_pos], 1.0 - FILTER_SENSITIVITY, method="lower"))
    passed = cnn >= thr
    p = classifier_probs(model.to(device), valid.seqs, batch_tokens=batch_tokens,
                         replace_invalid=True)  # fmt: skip
    fam_m, lm = log_odds(p, probs=True)
    fam_k, km = log_odds(kmer.decision_function(valid.seqs, replace_invalid=True))
    scores = {"cnn": (fam_c, cnn), "model": (fam_m, np.where(passed, lm, -np.inf)),
              "kmer": (fam_k, km)}  # fmt: skip
    figures: dict = {"filter": {"stage": "cnn", "threshold_bits": thr, "pass_rate": {
        k: float(passed[[x == k for x in valid.kind]].mean()) for k in sorted(set(valid.kind))}}}  # fmt: skip
    for name, (fam, sc) in scores.items():
        figures[name] = {
            "auc_positive_vs_background": _auc(sc[is_pos], sc[~is_pos]),
            "auc_by_background": {k: _auc(sc[is_pos], sc[np.array(valid.kind) == k])
                                  for k in sorted(set(valid.kind) - {"positive"})},
            "family_accuracy": float((fam[is_pos] == valid.y[is_pos]).mean()),
        }  # fmt: skip
    scorer = max(scores, key=lambda k: figures[k]["auc_positive_vs_background"])
    figures.update(scorer=scorer, valid_windows=len(valid.seqs), train_windows=len(train.seqs))
    model.config.extra = {
        **model.config.extra,
        "screen": {"window": window, "stride": stride, "background": BACKGROUND, "scorer": scorer,
                   "filter": {"stage": "cnn", "threshold": thr, "sensitivity": FILTER_SENSITIVITY}},
    }  # fmt: skip
    model.save_pretrained(out)
    return figures


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve; −inf (a window the filter stopped) ranks below everything."""
    from sklearn.metrics import roc_auc_score

    s = np.nan_to_num(np.r_[pos, neg], neginf=-1e30)
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], s))
