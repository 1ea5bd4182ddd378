from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rnaernie.config import RnaErnieConfig
from rnaernie.finetune import (
    TypeIndicator,
    evaluate_classifier,
    evaluate_structure,
    finetune_classifier,
    finetune_structure,
    predict_classifier,
    predict_pair_logits,
    read_labelled_fasta,
)
from rnaernie.heads import RnaErnieForPreTraining
from rnaernie.structure import read_dbn
from rnaernie.vocab import NUM_TYPES, TYPE_OFFSET

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
    ind = TypeIndicator(RnaErnieForPreTraining.from_pretrained(pretrained))
    seqs = ["GGGAAACCC", "ACGU" * 300]  # the second needs windows
    probs = ind.type_probs(seqs)
    assert probs.shape == (2, NUM_TYPES)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    t, w = ind.predict(seqs, top_k=3)
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
        p = predict_classifier(model, seqs, indicator=ind, top_k=2)
        assert p.shape == (len(seqs), len(names))
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
        m = evaluate_classifier(p, y)
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
    model = finetune_structure(pretrained, recs, epochs=1, batch_tokens=1024, max_length=200)
    logits = predict_pair_logits(model, [r.sequence for r in recs])
    assert [x.shape for x in logits] == [(len(r.sequence),) * 2 for r in recs]
    m = evaluate_structure(logits, recs)
    assert 0 <= m["f1"] <= 1 and m["n"] == len(recs)


def test_api_type_guided_classify_matches_finetune_prediction(tmp_path):
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
    want = predict_classifier(
        model, seqs, indicator=TypeIndicator(RnaErnieForPreTraining.from_pretrained(d)), top_k=2
    )
    got = rnaernie.load(d).classify(seqs, top_k=len(names), with_type=False)
    for g, w in zip(got, want):
        np.testing.assert_allclose(
            [dict(zip(g.labels, g.probabilities))[n] for n in names], w, atol=1e-5
        )
