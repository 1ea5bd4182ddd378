"""Weight loading: multimolecule's RnaErnie (parity on real sequences) and official Paddle names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from rnaernie.model import (
    RnaErnieConfig,
    RnaErnieForMaskedLM,
    RnaErnieForPreTraining,
    RnaErnieModel,
)
from rnaernie.model.convert import (
    convert_official_state_dict,
    remap_vocab_rows,
    to_official_state_dict,
)
from rnaernie.tokenizer import Tokenizer
from rnaernie.vocab import NUC_OFFSET, OURS_TO_MULTIMOLECULE, TYPE_OFFSET

mm = pytest.importorskip("multimolecule")

FIXTURE = Path(__file__).parent / "fixtures" / "nrc_small.fasta"
SEQS = [
    line.strip() for line in FIXTURE.read_text().splitlines() if line and not line.startswith(">")
]
MM_SIZE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Give every parameter (biases, LayerNorms included) random values, so parity means something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if p.ndim == 1 else 0.0) * 0.1)


def _ours(seqs):
    enc = Tokenizer().encode_batch(seqs)
    return torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask)


def _theirs(seqs):
    tok = mm.RnaTokenizer()
    out = tok(seqs, padding=True, return_tensors="pt")
    return out["input_ids"], out["attention_mask"]


@pytest.fixture(scope="module")
def mm_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = mm.RnaErnieModel(mm.RnaErnieConfig(**MM_SIZE)).eval()
    _randomise(model, 0)
    path = tmp_path_factory.mktemp("mm_base")
    model.save_pretrained(path)
    return path, model


def test_tokenizer_layouts_match():
    ours, our_mask = _ours(SEQS)
    theirs, their_mask = _theirs(SEQS)
    assert ours.shape == theirs.shape
    mapped = ours.clone().apply_(lambda i: OURS_TO_MULTIMOLECULE[i])
    assert torch.equal(mapped, theirs)  # [CLS] seq [SEP] == <cls> seq <eos>, pad 0 == <pad>
    assert torch.equal(our_mask, their_mask)


def test_multimolecule_parity_last_hidden_state(mm_dir):
    path, theirs_model = mm_dir
    ours_model = RnaErnieModel.from_pretrained(path)
    assert ours_model.config.vocab_size == 39 and ours_model.config.hidden_size == 64
    ids, mask = _ours(SEQS)
    mm_ids, mm_mask = _theirs(SEQS)
    with torch.inference_mode():
        want = theirs_model(input_ids=mm_ids, attention_mask=mm_mask)
        got = ours_model(ids, mask)
    real = mask.bool()
    err = (got.last_hidden_state - want.last_hidden_state)[real].abs().max().item()
    assert err <= 1e-5, err
    torch.testing.assert_close(got.pooler_output, want.pooler_output, atol=1e-5, rtol=1e-5)
    for impl in ("eager", "sdpa"):
        ours_model.set_attn_implementation(impl)
        with torch.inference_mode():
            h = ours_model(ids, mask).last_hidden_state
        assert (h - want.last_hidden_state)[real].abs().max().item() <= 1e-5


def test_multimolecule_vocab_remap(mm_dir):
    path, theirs_model = mm_dir
    ours_model = RnaErnieModel.from_pretrained(path)
    w_ours = ours_model.embeddings.word_embeddings.weight
    w_mm = theirs_model.embeddings.word_embeddings.weight
    for o, t in OURS_TO_MULTIMOLECULE.items():
        torch.testing.assert_close(w_ours[o], w_mm[t], atol=0, rtol=0)
    torch.testing.assert_close(w_ours[TYPE_OFFSET], w_mm[3], atol=0, rtol=0)  # type rows <- <unk>
    assert remap_vocab_rows(torch.arange(28.0)).tolist()[NUC_OFFSET:] == [6, 9, 7, 8]


def test_multimolecule_masked_lm_head(tmp_path):
    torch.manual_seed(1)
    theirs = mm.RnaErnieForMaskedLM(mm.RnaErnieConfig(**MM_SIZE)).eval()
    _randomise(theirs, 1)
    theirs.save_pretrained(tmp_path)
    ours = RnaErnieForMaskedLM.from_pretrained(tmp_path)
    assert ours.new_keys == []
    ids, mask = _ours(SEQS[:6])
    mm_ids, mm_mask = _theirs(SEQS[:6])
    with torch.inference_mode():
        want = theirs(input_ids=mm_ids, attention_mask=mm_mask).logits
        got = ours(ids, mask).logits
    cols_ours = torch.tensor(list(OURS_TO_MULTIMOLECULE))
    cols_mm = torch.tensor(list(OURS_TO_MULTIMOLECULE.values()))
    real = mask.bool()
    err = (got[..., cols_ours] - want[..., cols_mm])[real].abs().max().item()
    assert err <= 1e-4, err
    # the multimolecule checkpoint also loads into the pretraining model (type head new)
    pt = RnaErnieForPreTraining.from_pretrained(tmp_path)
    assert sorted(pt.new_keys) == sorted(
        [
            "ernie.pooler.dense.weight",
            "ernie.pooler.dense.bias",
            "type_head.weight",
            "type_head.bias",
        ]
    )


def test_official_state_dict_roundtrip(tmp_path):
    torch.manual_seed(2)
    cfg = RnaErnieConfig(**MM_SIZE)
    ours = RnaErnieForPreTraining(cfg).eval()
    _randomise(ours, 2)
    official = to_official_state_dict(ours.state_dict())
    # the official layout: Paddle names, Linear weights (in, out)
    assert official["ernie.encoder.layers.0.self_attn.q_proj.weight"].shape == (64, 64)
    assert official["ernie.encoder.layers.1.linear1.weight"].shape == (64, 128)
    assert "ernie.encoder.layers.1.norm2.bias" in official
    assert "cls.predictions.decoder_bias" in official
    assert not any("qkv" in k for k in official)
    numpy_sd = {k: v.numpy() for k, v in official.items()}  # as read from a .pdparams file
    back = RnaErnieForPreTraining(cfg).eval()
    back.load_converted_state_dict(convert_official_state_dict(numpy_sd), new_head=True)
    assert sorted(back.new_keys) == [
        "type_head.bias",
        "type_head.weight",
    ]  # not in the official file
    ids, mask = _ours(SEQS[:5])
    with torch.inference_mode():
        a, b = ours(ids, mask), back(ids, mask)
    torch.testing.assert_close(b.logits, a.logits, atol=0, rtol=0)
    # a directory holding official names (safetensors) + a Paddle-style config loads too
    save_file(official, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(
        json.dumps({"num_attention_heads": 4, "hidden_act": "relu", "hidden_dropout_prob": 0.1})
    )
    base = RnaErnieModel.from_pretrained(tmp_path)
    assert base.config.num_hidden_layers == 2 and base.config.intermediate_size == 128
    with torch.inference_mode():
        want = ours.ernie(ids, mask).last_hidden_state
        torch.testing.assert_close(base(ids, mask).last_hidden_state, want, atol=0, rtol=0)


def test_bare_encoder_loads_from_a_head_file_and_legacy_decode_keys(tmp_path):
    """A bare encoder reads any head's file (a missing pooler is initialised); a structure head
    saved with the flat decoder keys decodes with those settings."""
    from rnaernie.model import RnaErnieForContactPrediction
    from rnaernie.predict import head_decode_options

    head = RnaErnieForContactPrediction(RnaErnieConfig.preset("tiny", hidden_size=32,
        num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))  # fmt: skip
    head.save_pretrained(tmp_path / "h")
    enc = RnaErnieModel.from_pretrained(tmp_path / "h")
    assert sorted(enc.new_keys) == ["pooler.dense.bias", "pooler.dense.weight"]
    extra = {"decode_threshold": 1.5, "decode_no_lonely_pairs": True,
             "prior_rnafold": {"weight": 2.5, "threshold": 0.5, "no_lonely_pairs": False}}  # fmt: skip
    assert head_decode_options(extra).threshold == 1.5
    assert head_decode_options(extra).no_lonely_pairs is True
    p = head_decode_options(extra, "rnafold")
    assert (p.threshold, p.no_lonely_pairs) == (0.5, False)
    with pytest.raises(ValueError, match="new_head=True"):
        RnaErnieForMaskedLM.from_pretrained(tmp_path / "h")


def test_open_text_leaves_a_borrowed_stream_open():
    import io

    from rnaernie.io import open_text

    raw = io.BytesIO(b">a\nACGU\n")
    with open_text(raw) as fh:
        assert fh.readline() == ">a\n"
    assert not raw.closed


def test_new_head_replaces_a_head_of_another_size(tmp_path):
    """Fine-tuning a classifier into more classes (e.g. the nRC head into the screening detector):
    ``new_head=True`` keeps the encoder and starts the resized head afresh; without it, a clear
    error."""
    from rnaernie.model import RnaErnieForSequenceClassification

    cfg = RnaErnieConfig.preset("tiny", hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64, num_labels=3)  # fmt: skip
    RnaErnieForSequenceClassification(cfg).save_pretrained(tmp_path / "h3")
    cfg.num_labels = 4
    with pytest.raises(ValueError, match="shape mismatch for classifier"):
        RnaErnieForSequenceClassification.from_pretrained(tmp_path / "h3", cfg)
    m = RnaErnieForSequenceClassification.from_pretrained(tmp_path / "h3", cfg, new_head=True)
    assert m.classifier.out_features == 4 and "classifier.weight" in m.new_keys
    old = RnaErnieForSequenceClassification.from_pretrained(tmp_path / "h3")
    a, b = old.state_dict(), m.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("ernie."))
