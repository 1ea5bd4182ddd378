from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnaernie.cli import main
from rnaernie.kmer import KmerClassifier
from rnaernie.model import RnaErnieConfig, RnaErnieForPreTraining
from rnaernie.predict import classifier_probs, guidance, pair_logits, type_probs
from rnaernie.structure import read_dbn
from rnaernie.tokenizer import Tokenizer
from rnaernie.training import common
from rnaernie.training.classify import finetune_classifier
from rnaernie.training.common import (
    classification_metrics,
    nucleotide_masker,
    read_labelled_fasta,
    schedule,
    stratified_holdout,
)
from rnaernie.training.structure import finetune_structure, structure_metrics
from rnaernie.vocab import MASK_ID, NUC_OFFSET, NUM_TYPES, PAD_ID, TYPE_OFFSET, UNK_ID

FIX = Path(__file__).parent / "fixtures"
MICRO = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("pt")
    RnaErnieForPreTraining(RnaErnieConfig.preset("tiny", **MICRO)).save_pretrained(path)
    return path


def test_indicator_topk_is_normalised_and_windows_max(pretrained):
    ind = RnaErnieForPreTraining.from_pretrained(pretrained)
    seqs = ["GGGAAACCC", "ACGU" * 300]  # the second needs windows
    probs = type_probs(ind, seqs)
    assert probs.shape == (2, NUM_TYPES)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    typing = guidance(ind, seqs, 3)
    t, w = typing.tokens, typing.weights
    assert t.shape == w.shape == (2, 3)
    assert ((t >= TYPE_OFFSET) & (t < TYPE_OFFSET + NUM_TYPES)).all()
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
    assert (np.diff(w, axis=1) <= 1e-7).all()  # sorted by probability


def test_classifier_guided_and_unguided(pretrained, tmp_path):
    seqs, y, names = read_labelled_fasta(FIX / "nrc_small.fasta")
    for guided in (True, False):
        model, ind = finetune_classifier(
            pretrained,
            seqs,
            y,
            names,
            out=tmp_path / str(guided),
            type_guided=guided,
            epochs=1,
            batch_tokens=2048,
        )
        p = classifier_probs(model, seqs, indicator=ind)
        assert p.shape == (len(seqs), len(names))
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
        m = classification_metrics(p, y)
        assert 0 <= m["accuracy"] <= 1
        assert (tmp_path / str(guided) / "labels.json").exists()
    with pytest.raises(ValueError, match="needs a pretrained model"):
        finetune_classifier(None, seqs, y, names, type_guided=True)


def test_labelled_fasta_errors(tmp_path):
    f = tmp_path / "x.fa"
    f.write_text(">a\nACGU\n")
    with pytest.raises(ValueError, match="line 1: record 'a' has no class name"):
        read_labelled_fasta(f)
    f.write_text(">a tRNA\nACGU\n")
    with pytest.raises(ValueError, match="not in the label set"):
        read_labelled_fasta(f, labels=["rRNA"])


def test_structure_head_trains_and_decodes(pretrained):
    recs = (
        read_dbn(FIX / "structure" / "ts0_sample.dbn")
        if (FIX / "structure" / "ts0_sample.dbn").exists()
        else None
    )
    if recs is None:
        recs = [r for p in sorted((FIX / "structure").glob("*.dbn")) for r in read_dbn(p)]
    recs = [r for r in recs if len(r.sequence) <= 200][:4]
    assert recs
    for guided in (False, True):
        model, ind = finetune_structure(
            pretrained, recs, epochs=1, batch_tokens=1024, max_length=200, type_guided=guided
        )
        assert (ind is not None) == guided
        assert model.config.extra["type_guided"] == guided
        logits = pair_logits(model, [r.sequence for r in recs], indicator=ind)
        assert [x.shape for x in logits] == [(len(r.sequence),) * 2 for r in recs]
        assert all(np.isfinite(x).all() for x in logits)
        m = structure_metrics(model, recs, indicator=ind)
        assert 0 <= m["f1"] <= 1 and m["n"] == len(recs)


def test_typed_pair_head_mixes_encodings(pretrained):
    """(K, B, T) inputs with weights: K = 1 equals the plain typed input; a zero weight drops a
    type; the type slot never counts as a nucleotide."""
    from rnaernie.model import RnaErnieForContactPrediction
    from rnaernie.tokenizer import Tokenizer

    torch.manual_seed(0)
    model = RnaErnieForContactPrediction.from_pretrained(
        pretrained, pair_channels=8, new_head=True
    ).eval()
    tok = Tokenizer()
    seqs = ["GGGAAACCCU", "ACGUAC"]
    e1 = tok.encode_batch(seqs, types=["tRNA", "rRNA"])
    e2 = tok.encode_batch(seqs, types=["miRNA", "snRNA"])
    ids1, m1 = torch.from_numpy(e1.input_ids), torch.from_numpy(e1.attention_mask)
    ids2, m2 = torch.from_numpy(e2.input_ids), torch.from_numpy(e2.attention_mask)
    with torch.no_grad():
        plain = model(ids1, m1)
        one = model(ids1[None], m1[None], type_weights=torch.ones(2, 1))
        drop = model(
            torch.stack([ids1, ids2]),
            torch.stack([m1, m2]),
            type_weights=torch.tensor([[1.0, 0.0]] * 2),
        )
        mix = model(
            torch.stack([ids1, ids2]), torch.stack([m1, m2]), type_weights=torch.full((2, 2), 0.5)
        )
    torch.testing.assert_close(one.logits, plain.logits)
    torch.testing.assert_close(drop.logits, plain.logits, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(mix.logits, plain.logits)
    for b, s in enumerate(seqs):  # pairs only among the sequence's own nucleotides
        n = len(s)
        assert plain.pair_mask[b, :n, :n].sum() == n * (n - 1)
        assert plain.pair_mask[b].sum() == n * (n - 1)
    with pytest.raises(ValueError, match="type_weights of shape"):
        model(torch.stack([ids1, ids2]), torch.stack([m1, m2]))


def test_classifier_reads_long_sequences_in_windows(pretrained):
    """A sequence longer than one window gets the mean of its windows' probabilities (by hand),
    as the API's classify reports them."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _micro_model import save_micro_model

    import rnaernie
    from rnaernie.model import RnaErnieForSequenceClassification

    d = save_micro_model(Path(pretrained).parent / "win", heads=("nrc",))
    model = RnaErnieForSequenceClassification.from_pretrained(d / "heads" / "nrc")
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGU"), n)) for n in (1300, 40, 511)]
    p = classifier_probs(model, seqs)
    got = rnaernie.load(d).classify(seqs, top_k=3, with_type=False)
    names = json.loads((d / "heads" / "nrc" / "labels.json").read_text())
    for g, w in zip(got, p):
        np.testing.assert_allclose(
            [dict(zip(g.labels, g.probabilities))[n] for n in names], w, atol=1e-5
        )
    # by hand for the long one: windows of 510 every 255, last one aligned to the end
    starts = [0, 255, 510, 765, 790]
    tok = rnaernie.Tokenizer()
    enc = tok.encode_batch([seqs[0][o : o + 510] for o in starts])
    with torch.no_grad():
        z = model(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask)).logits
    np.testing.assert_allclose(z.softmax(-1).mean(0).numpy(), p[0], atol=1e-5)


def test_api_classifies_a_type_guided_head_type_guided(tmp_path):
    # a head fine-tuned with type guidance is used type-guided by rnaernie.load(...).classify too
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _micro_model import save_micro_model

    import rnaernie

    d = save_micro_model(tmp_path / "m", heads=())
    seqs, y, names = read_labelled_fasta(FIX / "nrc_small.fasta")
    finetune_classifier(
        d, seqs[:8], y[:8], names, out=d / "heads" / "nrc", top_k=2, epochs=1, batch_tokens=2048
    )
    model = rnaernie.RnaErnieForSequenceClassification.from_pretrained(d / "heads" / "nrc")
    ind = RnaErnieForPreTraining.from_pretrained(d)
    want = classifier_probs(model, seqs, indicator=ind)
    other = classifier_probs(model, seqs, indicator=ind, tprobs=np.eye(28)[[0] * len(seqs)])
    assert np.abs(want - other).max() > 0  # the types reach the model: guidance is used
    got = rnaernie.load(d).classify(seqs, top_k=len(names), with_type=False)
    for g, w in zip(got, want):
        np.testing.assert_allclose(
            [dict(zip(g.labels, g.probabilities))[n] for n in names], w, atol=1e-5
        )


def test_api_fold_uses_a_type_guided_structure_head(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _micro_model import save_micro_model

    import rnaernie
    from rnaernie.model import RnaErnieForContactPrediction

    d = save_micro_model(tmp_path / "m", heads=())
    recs = [r for r in read_dbn(FIX / "structure" / "ts0_sample.dbn") if len(r.sequence) <= 120][:3]
    finetune_structure(
        d,
        recs,
        out=d / "heads" / "structure",
        type_guided=True,
        top_k=2,
        epochs=1,
        batch_tokens=1024,
    )
    head = RnaErnieForContactPrediction.from_pretrained(d / "heads" / "structure")
    assert head.config.extra["type_guided"] is True
    seqs = [r.sequence for r in recs]
    ind = RnaErnieForPreTraining.from_pretrained(d)
    want = pair_logits(head, seqs, indicator=ind)
    got = rnaernie.load(d).fold(seqs, return_probs=True)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.probs, 1 / (1 + np.exp(-w)), atol=1e-5)
    # over 508 nt: both paths stitch 508-nt windows every 254 nt
    long = [("GGGAAACCCUUAGCUAGGCUAAGC" * 30)[:600]]
    want = pair_logits(head, long, indicator=ind)[0]
    np.testing.assert_allclose(rnaernie.load(d).pair_logits(long)[0], want, atol=1e-4)


def test_max_windows_from_the_head_config_is_used_by_the_api(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _micro_model import save_micro_model

    import rnaernie
    from rnaernie.model import RnaErnieForSequenceClassification

    d = save_micro_model(tmp_path / "m", heads=("nrc",))
    model = RnaErnieForSequenceClassification.from_pretrained(d / "heads" / "nrc")
    model.config.extra = {**model.config.extra, "max_windows": 2}
    model.save_pretrained(d / "heads" / "nrc")
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGU"), n)) for n in (2000, 100)]
    p2 = classifier_probs(model, seqs)
    enc = rnaernie.Tokenizer().encode_batch(seqs[:1], window=510, stride=255)
    assert len(enc) > 2
    enc = enc.spread(2)  # the first and the last window
    assert enc.start.tolist() == [0, 2000 - 510]
    with torch.no_grad():
        z = model(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask)).logits
    np.testing.assert_allclose(z.softmax(-1).mean(0).numpy(), p2[0], atol=1e-6)
    got = rnaernie.load(d).classify(seqs, top_k=3, with_type=False)
    names = json.loads((d / "heads" / "nrc" / "labels.json").read_text())
    for g, w in zip(got, p2):
        np.testing.assert_allclose(
            [dict(zip(g.labels, g.probabilities))[n] for n in names], w, atol=1e-5
        )


def test_schedule_warms_up_decays_to_zero_and_stops_at_the_step_count():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = schedule(opt, total_steps=10, warmup_frac=0.2)
    lrs = []
    while not sched.progress.done("test"):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.progress.step += 1
        sched.step()
    assert len(lrs) == 10
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0])  # warm-up over 2 steps, then 8 decaying
    assert lrs[2:] == pytest.approx([1.0 - i / 8 for i in range(8)])
    assert opt.param_groups[0]["lr"] == 0.0


def test_schedule_under_a_time_cap_follows_the_clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(common.time, "perf_counter", lambda: now[0])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = schedule(opt, total_steps=1000, warmup_frac=0.1, max_minutes=1.0)
    now[0] += 30.0  # half the cap after one step: half-way through the decay
    opt.step()
    sched.progress.step += 1
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx((1.0 - 0.5) / 0.9)
    assert not sched.progress.done("test")
    now[0] += 31.0
    assert sched.progress.done("test")
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.0


def test_training_batches_stop_when_the_schedule_is_done():
    class Sched:  # progress done after `stop` steps
        def __init__(self, stop):
            self.progress = self
            self.n, self.stop = 0, stop

        def done(self, what):
            self.n += 1
            return self.n >= self.stop

    calls = []

    def batches(ep):
        calls.append(ep)
        return [np.array([ep, i]) for i in range(3)]

    got = [(ep, idx.tolist()) for ep, idx in common.training_batches(4, batches, Sched(10**9), "t")]
    assert got == [(ep, [ep, i]) for ep in range(4) for i in range(3)] and calls == [0, 1, 2, 3]
    calls.clear()
    got = [ep for ep, _ in common.training_batches(4, batches, Sched(5), "t")]
    assert got == [0, 0, 0, 1, 1] and calls == [0, 1]  # stops mid-epoch, no epoch drawn after


def test_time_cap_must_be_positive():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="max_minutes must be > 0, got 0"):
        schedule(opt, total_steps=10, warmup_frac=0.1, max_minutes=0)


def test_stratified_holdout_takes_a_share_of_every_class():
    y = np.array([0] * 10 + [1] * 5 + [2] * 1 + [3] * 2)
    held = stratified_holdout(y, 0.2, seed=3)
    counts = {c: int((y[held] == c).sum()) for c in range(4)}
    assert counts == {0: 2, 1: 1, 2: 0, 3: 1}  # a class of one row stays in training
    assert len(set(held.tolist())) == len(held)
    np.testing.assert_array_equal(held, stratified_holdout(y, 0.2, seed=3))
    with pytest.raises(ValueError, match="fraction"):
        stratified_holdout(y, 1.0)


def test_classify_cli_dropout_validation_part_and_kmer(pretrained, tmp_path):
    out = tmp_path / "ft"
    rc = main(
        ["finetune", "classify", str(FIX / "nrc_small.fasta"), "--test", str(FIX / "nrc_small.fasta"),
         "--pretrained", str(pretrained), "--no-type-guidance", "--epochs", "1",
         "--dropout", "0.2", "--mask-prob", "0.1", "--valid-fraction", "0.25", "--kmer",
         "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    for part in (m, m["valid"]):  # the k-mer classifier alone and multiplied with the model
        assert 0 <= part["kmer"]["accuracy"] <= 1 and 0 <= part["kmer_hybrid"]["accuracy"] <= 1
    assert KmerClassifier.load(out).labels == json.loads((out / "labels.json").read_text())
    _, y, _ = read_labelled_fasta(FIX / "nrc_small.fasta")
    assert m["valid"]["n"] == len(stratified_holdout(y, 0.25)) > 0
    assert 0 <= m["valid"]["accuracy"] <= 1 and 0 <= m["accuracy"] <= 1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["hidden_dropout"] == cfg["attention_dropout"] == cfg["classifier_dropout"] == 0.2


def test_nucleotide_masker_hides_only_sequence_tokens():
    enc = Tokenizer().encode_batch(["ACGUNACGU" * 40, "GGCC"], types=["tRNA", "[MASK]"])
    ids = torch.from_numpy(enc.input_ids).repeat(20, 1)
    out = nucleotide_masker(0.3, seed=1)(ids)
    changed = out != ids
    sequence = (ids >= NUC_OFFSET) | (ids == UNK_ID)
    assert not (changed & ~sequence).any()  # [CLS], [SEP], [IND], type slot and padding stay
    assert (out[changed] == MASK_ID).all()
    assert abs(changed.sum().item() / sequence.sum().item() - 0.3) < 0.02
    assert (out == PAD_ID).sum() == (ids == PAD_ID).sum()
    again = nucleotide_masker(0.3, seed=1)(ids)
    torch.testing.assert_close(out, again)  # the seed fixes the draws
    assert not torch.equal(nucleotide_masker(0.3, seed=1)(ids), nucleotide_masker(0.3, seed=2)(ids))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"masking probability \(--mask-prob\) must be in"):
            nucleotide_masker(bad, seed=0)


def test_classifier_mask_augmentation_is_seeded_and_changes_the_fit(pretrained):
    seqs, y, names = read_labelled_fasta(FIX / "nrc_small.fasta")
    kw = dict(type_guided=False, epochs=1, batch_tokens=2048, seed=3)
    plain, _ = finetune_classifier(pretrained, seqs, y, names, **kw)
    masked, _ = finetune_classifier(pretrained, seqs, y, names, mask_prob=0.2, **kw)
    w = "classifier.weight"
    assert not torch.equal(plain.state_dict()[w], masked.state_dict()[w])
    again, _ = finetune_classifier(pretrained, seqs, y, names, mask_prob=0.2, **kw)
    torch.testing.assert_close(masked.state_dict()[w], again.state_dict()[w])
    with pytest.raises(ValueError, match="masking probability"):
        finetune_classifier(pretrained, seqs, y, names, mask_prob=-0.5, **kw)
