"""RnaErnieModel and heads: shapes, padding invariance, eager == SDPA, training, save/load, int8."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnaernie import io
from rnaernie.model import (
    RnaErnieConfig,
    RnaErnieForContactPrediction,
    RnaErnieForInteraction,
    RnaErnieForMaskedLM,
    RnaErnieForPreTraining,
    RnaErnieForSequenceClassification,
    RnaErnieForTokenClassification,
    RnaErnieModel,
)
from rnaernie.predict import embed_batches, length_buckets
from rnaernie.tokenizer import Tokenizer
from rnaernie.vocab import MASK_ID

FIXTURE = Path(__file__).parent / "fixtures" / "nrc_small.fasta"


def read_fasta(path: Path) -> list[str]:
    return [r.seq for r in io.read_fasta(path, allow_duplicates=True)]


SEQS = read_fasta(FIXTURE)


def micro(**kw) -> RnaErnieConfig:
    base = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    return RnaErnieConfig(**{**base, **kw})


def batch(seqs, max_length=512):
    enc = Tokenizer().encode_batch(seqs, max_length=max_length, truncate=True)
    return torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask), enc.lengths


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RnaErnieModel(micro()).eval()


# ----------------------------------------------------------------------------- config


def test_config_roundtrip(tmp_path):
    cfg = RnaErnieConfig.preset("small", num_labels=5)
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == (6, 512, 8)
    cfg.to_json_file(tmp_path / "c.json")
    assert RnaErnieConfig.from_json_file(tmp_path / "c.json") == cfg
    assert RnaErnieConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg
    assert json.loads(cfg.to_json_string())["library"] == "rnaernie"
    tiny = RnaErnieConfig.preset("tiny")
    assert (tiny.num_hidden_layers, tiny.hidden_size, tiny.intermediate_size) == (4, 256, 1024)
    base = RnaErnieConfig()
    assert (base.vocab_size, base.max_position_embeddings, base.hidden_act) == (39, 513, "relu")


@pytest.mark.parametrize(
    "kw", [dict(hidden_size=30), dict(attn_implementation="flash"), dict(hidden_act="x")]
)
def test_config_rejects(kw):
    with pytest.raises(ValueError):
        micro(**kw)
    with pytest.raises(ValueError):
        RnaErnieConfig.preset("huge")


# ----------------------------------------------------------------------------- encoder


def test_forward_shapes(model):
    ids, mask, _ = batch(SEQS[:3])
    out = model(ids, mask, output_hidden_states=True, output_attentions=True)
    B, L = ids.shape
    assert out.last_hidden_state.shape == (B, L, 32)
    assert out.pooler_output.shape == (B, 32)
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    assert out.attentions[0].shape == (B, 4, L, L)
    torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state)
    assert model(ids, mask, return_pooler=False).pooler_output is None
    assert torch.isfinite(out.last_hidden_state).all()


def test_padding_invariance(model):
    """A sequence alone and inside a padded batch gives the same states on its tokens."""
    ids, mask, lengths = batch(SEQS[:4])
    with torch.inference_mode():
        batched = model(ids, mask).last_hidden_state
        for i in range(4):
            n = int(lengths[i])
            alone = model(ids[i : i + 1, :n]).last_hidden_state[0]
            torch.testing.assert_close(batched[i, :n], alone, atol=1e-5, rtol=1e-5)
    # no attention_mask: pad ids are padding
    torch.testing.assert_close(model(ids).last_hidden_state, batched)


def test_eager_sdpa_outputs_agree():
    torch.manual_seed(1)
    m = RnaErnieModel(micro(attn_implementation="eager")).eval()
    ids, mask, _ = batch(SEQS[:5])
    with torch.inference_mode():
        a = m(ids, mask).last_hidden_state
        m.set_attn_implementation("sdpa")
        b = m(ids, mask).last_hidden_state
    real = mask.bool()
    assert (a - b)[real].abs().max() < 1e-5
    with pytest.raises(ValueError):
        m.set_attn_implementation("nope")


def test_too_long_raises(model):
    with pytest.raises(ValueError, match="max_position"):
        model(torch.full((1, 514), 35))
    with pytest.raises(ValueError):
        model(torch.full((5,), 35))


def test_gradient_checkpointing_same_grads():
    torch.manual_seed(2)
    m = RnaErnieForMaskedLM(micro(hidden_dropout=0.0, attention_dropout=0.0))
    ids, mask, _ = batch(SEQS[:2])
    labels = ids.clone()
    grads = []
    for ckpt in (False, True):
        m.zero_grad()
        m.ernie.encoder.gradient_checkpointing = ckpt
        m(ids, mask, labels=labels).loss.backward()
        grads.append(m.ernie.encoder.layers[0].self_attn.qkv.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


# ----------------------------------------------------------------------------- heads


def _mlm_batch():
    ids, mask, _ = batch(SEQS[:4])
    labels = torch.full_like(ids, -100)
    pos = torch.tensor([3, 5, 7])
    labels[:, pos] = ids[:, pos]
    masked = ids.clone()
    masked[:, pos] = MASK_ID
    return masked, mask, labels


def test_pretraining_forward_backward_and_learns():
    torch.manual_seed(3)
    cfg = micro()
    m = RnaErnieForPreTraining(cfg).train()
    ids, mask, labels = _mlm_batch()
    types = torch.tensor([0, 5, 27, -100])
    out = m(ids, mask, labels=labels, type_labels=types)
    assert out.logits.shape == (*ids.shape, 39) and out.type_logits.shape == (4, 28)
    torch.testing.assert_close(out.loss, out.mlm_loss + out.type_loss)
    out.loss.backward()
    assert m.ernie.embeddings.word_embeddings.weight.grad is not None
    assert m.type_head.weight.grad.abs().sum() > 0
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = out.loss.item()
    for _ in range(15):
        opt.zero_grad()
        loss = m(ids, mask, labels=labels, type_labels=types).loss
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.7
    # only some losses
    out = m(ids, mask, labels=labels)
    assert out.type_loss is None and out.loss is out.mlm_loss
    assert m(ids, mask).loss is None
    all_ignored = m(ids, mask, labels=torch.full_like(ids, -100)).loss
    assert all_ignored.item() == 0.0


def test_mlm_decoder_is_tied():
    m = RnaErnieForMaskedLM(micro()).eval()
    ids, mask, _ = batch(SEQS[:1])
    h = m.ernie(ids, mask).last_hidden_state
    head = m.mlm_head
    want = (
        head.layer_norm(torch.relu(head.transform(h))) @ m.ernie.embeddings.word_embeddings.weight.T
    )
    torch.testing.assert_close(m(ids, mask).logits, want + head.bias)
    assert not any("decoder" in k for k in m.state_dict())


def test_classification_heads():
    torch.manual_seed(4)
    ids, mask, _ = batch(SEQS[:3])
    seq = RnaErnieForSequenceClassification(micro(num_labels=3))
    out = seq(ids, mask, labels=torch.tensor([0, 2, 1]))
    assert out.logits.shape == (3, 3)
    out.loss.backward()
    reg = RnaErnieForSequenceClassification(micro(num_labels=1))
    assert reg(ids, mask, labels=torch.tensor([0.5, 1.0, -1.0])).loss.ndim == 0
    tok = RnaErnieForTokenClassification(micro(num_labels=3))
    labels = torch.where(mask.bool(), ids % 3, torch.full_like(ids, -100))
    out = tok(ids, mask, labels=labels)
    assert out.logits.shape == (*ids.shape, 3)
    out.loss.backward()


def test_contact_head_symmetric_and_aligned():
    torch.manual_seed(5)
    m = RnaErnieForContactPrediction(micro(pair_channels=8, pair_kernel_size=3)).eval()
    ids, mask, lengths = batch(SEQS[:3])
    out = m(ids, mask)
    L = ids.shape[1] - 2
    assert out.logits.shape == (3, L, L)
    torch.testing.assert_close(out.logits, out.logits.transpose(1, 2))
    n = torch.as_tensor(lengths) - 2
    assert out.pair_mask.sum().item() == int((n * (n - 1)).sum())
    # a sequence's pair logits do not depend on its batch mates
    i = int(n.argmin())
    k = int(n[i])
    alone = m(ids[i : i + 1, : k + 2]).logits[0]
    torch.testing.assert_close(out.logits[i, :k, :k], alone, atol=1e-5, rtol=1e-4)
    labels = (torch.rand(3, L, L) > 0.9).float()
    labels = torch.maximum(labels, labels.transpose(1, 2))
    m.train()
    out = m(ids, mask, labels=labels)
    out.loss.backward()
    assert m.conv1.weight.grad is not None


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=3),
    channels=st.integers(1, 4),
    out=st.integers(1, 3),
    kernel=st.sampled_from([1, 3, 5]),
    seed=st.integers(0, 2**16),
)
def test_pair_conv_matches_the_convolution(lengths, channels, out, kernel, seed):
    """The factored first pair convolution equals conv2d over the built pair features (values
    and gradients), padding included, for every kernel size the head allows."""
    from rnaernie.model.heads import pair_conv, pair_conv_reference

    g = torch.Generator().manual_seed(seed)
    L = max(lengths) + 1
    valid = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]
    raw = torch.randn(len(lengths), channels, L, generator=g, dtype=torch.float64)
    raw.requires_grad_()
    a = raw * valid[:, None]  # as the head masks its projected features
    w = torch.randn(out, 2 * channels, kernel, kernel, generator=g, dtype=torch.float64)
    w.requires_grad_()
    b = torch.randn(out, generator=g, dtype=torch.float64)
    got, want = pair_conv(a, valid, w, b), pair_conv_reference(a, valid, w, b)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(got.square().sum(), (raw, w), retain_graph=True)
    ref = torch.autograd.grad(want.square().sum(), (raw, w))
    for x, y in zip(grads, ref):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 2),
    length=st.integers(1, 9),
    channels=st.integers(1, 4),
    out=st.integers(1, 2),
    kernel=st.sampled_from([1, 3, 5]),
    seed=st.integers(0, 2**16),
)
def test_pair_conv_out_matches_the_convolution(batch, length, channels, out, kernel, seed):
    """The contact head's last convolution as a GEMM + shifted sums equals conv2d (values and
    gradients)."""
    from rnaernie.model.heads import pair_conv_out

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, channels, length, length, generator=g, dtype=torch.float64)
    w = torch.randn(out, channels, kernel, kernel, generator=g, dtype=torch.float64)
    b = torch.randn(out, generator=g, dtype=torch.float64)
    z.requires_grad_()
    w.requires_grad_()
    got = pair_conv_out(z, w, b)
    want = torch.nn.functional.conv2d(z, w, b, padding=kernel // 2)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(got.square().sum(), (z, w))
    ref = torch.autograd.grad(want.square().sum(), (z, w))
    for x, y in zip(grads, ref):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)


def test_interaction_head():
    torch.manual_seed(6)
    m = RnaErnieForInteraction(micro(num_labels=2))
    a_ids, a_mask, _ = batch(["UGAGGUAGUAGGUUGUAUAGUU", "UAGCAGCACGUAAAUAUUGGCG"])
    b_ids, b_mask, _ = batch(SEQS[:2])
    out = m(a_ids, b_ids, a_mask, b_mask, labels=torch.tensor([1, 0]))
    assert out.logits.shape == (2, 2)
    out.loss.backward()
    assert m.mlp[0].weight.shape == (32, 128)


# ----------------------------------------------------------------------------- save / load


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(7)
    m = RnaErnieForPreTraining(micro()).eval()
    m.save_pretrained(tmp_path / "pt")
    files = sorted(p.name for p in (tmp_path / "pt").iterdir())
    assert files == ["config.json", "model.safetensors"]
    assert all((tmp_path / "pt" / f).stat().st_mode & 0o444 == 0o444 for f in files)  # readable
    m2 = RnaErnieForPreTraining.from_pretrained(tmp_path / "pt")
    ids, mask, _ = _mlm_batch()
    torch.testing.assert_close(m2(ids, mask).logits, m(ids, mask).logits, atol=0, rtol=0)
    assert m2.new_keys == []


def test_save_fp16_halves_the_file_and_loads_back_as_fp32(tmp_path):
    torch.manual_seed(7)
    m = RnaErnieForPreTraining(micro()).eval()
    m.save_pretrained(tmp_path / "32")
    m.save_pretrained(tmp_path / "16", dtype=torch.float16)
    size = lambda d: (tmp_path / d / "model.safetensors").stat().st_size  # noqa: E731
    assert size("16") < 0.6 * size("32")
    m2 = RnaErnieForPreTraining.from_pretrained(tmp_path / "16")
    for k, v in m2.state_dict().items():
        assert v.dtype == m.state_dict()[k].dtype
        torch.testing.assert_close(v, m.state_dict()[k].half().to(v.dtype), rtol=0, atol=0)


def test_head_from_base_and_base_from_head(tmp_path, caplog):
    torch.manual_seed(8)
    pt = RnaErnieForPreTraining(micro()).eval()
    pt.save_pretrained(tmp_path / "pt")
    ids, mask, _ = batch(SEQS[:2])
    with caplog.at_level(logging.INFO, logger="rnaernie.model.pretrained"):
        cls = RnaErnieForSequenceClassification.from_pretrained(
            tmp_path / "pt", num_labels=4, new_head=True
        )
    assert "classifier.weight" in caplog.text
    assert sorted(cls.new_keys) == ["classifier.bias", "classifier.weight"]
    assert cls.config.num_labels == 4
    base = RnaErnieModel.from_pretrained(tmp_path / "pt")
    want = pt.ernie(ids, mask)
    got = base(ids, mask)
    torch.testing.assert_close(got.last_hidden_state, want.last_hidden_state, atol=0, rtol=0)
    torch.testing.assert_close(got.pooler_output, want.pooler_output, atol=0, rtol=0)
    # base directory -> head
    base.save_pretrained(tmp_path / "base")
    tok = RnaErnieForTokenClassification.from_pretrained(tmp_path / "base", new_head=True)
    torch.testing.assert_close(
        tok.ernie(ids, mask).last_hidden_state, want.last_hidden_state, atol=0, rtol=0
    )
    with pytest.raises(ValueError, match="missing from the file: classifier"):
        RnaErnieForTokenClassification.from_pretrained(tmp_path / "base")  # strict by default
    with pytest.raises(ValueError, match="safetensors"):
        RnaErnieModel.from_pretrained(tmp_path)


# ----------------------------------------------------------------------------- inference


def test_length_buckets_cover_and_respect_budget():
    lengths = torch.randint(3, 200, (57,)).numpy()
    seen = []
    for idx in length_buckets(lengths, batch_tokens=1000):
        assert len(idx) * lengths[idx].max() <= 1000 or len(idx) == 1
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(57))


def test_embed_batches_matches_plain_forward(model):
    seqs = SEQS[:9]
    ids, mask, lengths = batch(seqs)
    with torch.inference_mode():
        h = model(ids, mask).last_hidden_state
    m = mask.unsqueeze(-1).float()
    want_mean = (h * m).sum(1) / m.sum(1)
    got = embed_batches(model, seqs, pooling="mean", batch_tokens=300)
    torch.testing.assert_close(got, want_mean, atol=1e-5, rtol=1e-5)
    enc = Tokenizer().encode_batch(seqs)
    torch.testing.assert_close(
        embed_batches(model, enc, pooling="cls"), h[:, 0], atol=1e-5, rtol=1e-5
    )
    rows = embed_batches(model, [ids[i, : lengths[i]] for i in range(9)], pooling="none")
    for i in range(9):
        torch.testing.assert_close(rows[i], h[i, : lengths[i]], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        embed_batches(model, seqs, pooling="max")


def test_int8_embeddings_close_to_fp32(tmp_path):
    torch.manual_seed(9)
    cfg = RnaErnieConfig.preset("tiny", num_hidden_layers=2)
    m = RnaErnieModel(cfg).eval()
    m.save_pretrained(tmp_path / "m")
    q = RnaErnieModel.from_pretrained(tmp_path / "m", int8=True)
    assert not any(type(x) is torch.nn.Linear for x in q.modules())
    a = embed_batches(m, SEQS, pooling="mean")
    b = embed_batches(q, SEQS, pooling="mean")
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    assert cos.min() >= 0.99
    with pytest.raises(ValueError, match="int8"):
        q.save_pretrained(tmp_path / "q")


def test_cpu_fast_linear_path_matches_plain(model):
    """Inference (no autograd) takes the fused oneDNN linear; training takes F.linear."""
    ids, mask, _ = batch(SEQS[:6])
    plain = model(ids, mask).last_hidden_state  # grad enabled: plain path
    with torch.inference_mode():
        fast = model(ids, mask).last_hidden_state
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=1e-5)


def test_bf16_embeddings_close_to_fp32():
    torch.manual_seed(10)
    m = RnaErnieModel(micro()).eval()
    a = embed_batches(m, SEQS[:8])
    b = embed_batches(m.to(torch.bfloat16), SEQS[:8])
    assert b.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(a, b, dim=-1).min() >= 0.99


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_auto_matches_sdpa_forward_backward():
    torch.manual_seed(11)
    m = RnaErnieForMaskedLM(micro(hidden_dropout=0.0, attention_dropout=0.0)).cuda()
    ids, mask, _ = batch(SEQS[:5])
    ids, mask = ids.cuda(), mask.cuda()
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    outs = {}
    for impl in ("auto", "sdpa"):
        m.zero_grad()
        m.ernie.set_attn_implementation(impl)
        out = m(ids, mask, labels=labels)
        out.loss.backward()
        outs[impl] = (out.logits.detach(), m.ernie.embeddings.word_embeddings.weight.grad.clone())
    real = mask.bool()
    assert (outs["auto"][0] - outs["sdpa"][0])[real].abs().max() < 1e-3
    torch.testing.assert_close(outs["auto"][1], outs["sdpa"][1], atol=1e-3, rtol=1e-2)


def test_stitch_pair_windows_against_a_loop():
    """Stitched pair logits: the mean over the windows holding both bases, else the fill value."""
    from rnaernie.predict import PAIR_FILL, stitch_pair_windows

    rng = np.random.default_rng(0)
    L, starts, w = 23, [0, 5, 10, 13], 10
    wins = [rng.normal(size=(w, w)).astype(np.float32) for _ in starts]
    got = stitch_pair_windows(L, starts, wins)
    for i in range(L):
        for j in range(L):
            vals = [
                z[i - a, j - a] for a, z in zip(starts, wins) if a <= i < a + w and a <= j < a + w
            ]
            want = np.mean(vals) if vals else PAIR_FILL
            assert abs(got[i, j] - want) < 1e-5, (i, j)
    one = rng.normal(size=(7, 7)).astype(np.float32)
    np.testing.assert_array_equal(stitch_pair_windows(7, [0], [one]), one)
    with pytest.raises(ValueError, match="does not fit length"):
        stitch_pair_windows(11, [5], [one])
    with pytest.raises(ValueError, match="2 window starts and 1 windows"):
        stitch_pair_windows(7, [0, 1], [one])


def test_embed_batches_never_pads_past_the_position_table():
    """A 513-token row (the whole position table) embeds: padding to 16 stops at the table."""
    m = RnaErnieModel(RnaErnieConfig.preset("tiny", hidden_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=64)).eval()  # fmt: skip
    out = embed_batches(m, ["ACGU" * 127 + "AAA"], max_length=513)
    assert out.shape == (1, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize("lengths", [[7, 1, 33, 12], [20]])
def test_encode_packed_matches_the_padded_forward(lengths):
    """The packed (unpadded) inference path gives the padded forward's hidden states at every
    real token (PyTorch per-sequence attention on the CPU; the Triton varlen kernel on CUDA)."""
    from rnaernie.model.encoder import encode_packed

    torch.manual_seed(0)
    m = RnaErnieModel(micro()).eval()
    rng = np.random.default_rng(sum(lengths))
    seqs = ["".join(rng.choice(list("ACGU"), n)) for n in lengths]
    enc = Tokenizer().encode_batch(seqs)
    ids, mask = torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask)
    real = mask.bool()
    cu = torch.tensor([0, *real.sum(1).cumsum(0).tolist()])
    with torch.no_grad():
        padded = m(ids, mask, return_pooler=False).last_hidden_state[real]
        packed = encode_packed(m, ids[real], cu)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="rise from 0"):
        encode_packed(m, ids[real], cu + 1)


def test_embed_packed_matches_embed_batches(model):
    from rnaernie.predict import embed_packed

    rng = np.random.default_rng(3)
    seqs = ["".join(rng.choice(list("ACGU"), int(n))) for n in rng.integers(1, 90, 23)]
    for pooling in ("mean", "cls"):
        want = embed_batches(model, seqs, pooling=pooling, batch_tokens=256)
        got = embed_packed(model, seqs, pooling=pooling, batch_tokens=300)  # several passes
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="'mean' or 'cls'"):
        embed_packed(model, seqs, pooling="none")
