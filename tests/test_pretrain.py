from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from rnaernie import vocab
from rnaernie.masking import LEVELS
from rnaernie.model import RnaErnieForPreTraining
from rnaernie.motifs import MotifMatcher
from rnaernie.tokenizer import Tokenizer
from rnaernie.training.pretrain import (
    RFAM_TO_RNACENTRAL,
    CorpusRecord,
    PretrainConfig,
    _lr_lambda,
    build_batch,
    evaluate_pretraining,
    iter_corpus,
    length_batches,
    map_rfam_type,
    pretrain,
)

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "rfam_small.tsv"
MICRO = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
         "hidden_dropout": 0.0, "attention_dropout": 0.0}  # fmt: skip


def test_type_table_covers_corpus_classes():
    classes = {
        line.split("\t")[4] for line in (FIXTURES / "rfam_small.tsv").read_text().splitlines()[1:]
    }
    full = Path(__file__).parents[2] / "shared/data/rfam14_2_seed_typed/family_types.tsv"
    if full.exists():
        classes |= {line.split("\t")[3] for line in full.read_text().splitlines()[1:]}
    for c in classes - {"rna_type"}:
        assert map_rfam_type(c) in vocab.RNA_TYPES
    assert set(RFAM_TO_RNACENTRAL.values()) <= set(vocab.RNA_TYPES)
    assert map_rfam_type("ribozyme", "Hammerhead_3") == "hammerheadribozyme"
    with pytest.raises(ValueError, match="unknown Rfam RNA type"):
        map_rfam_type("banana")


def test_corpus_readers(tmp_path):
    recs = list(iter_corpus(CORPUS, "train"))
    assert len(recs) == 296 and all(r.type_token is not None for r in recs)
    assert len(list(iter_corpus(CORPUS, "valid"))) == 4
    fa = tmp_path / "c.fa"
    fa.write_text(">a tRNA\nACGU\n>b something\nGG\n")
    recs = list(iter_corpus(fa))
    assert recs[0].type_token == vocab.type_id("tRNA") and recs[1].type_token is None
    bad = tmp_path / "bad.tsv"
    bad.write_text("sequence\trna_type\nACGU\tnope\n")
    with pytest.raises(ValueError, match="line 2: unknown Rfam RNA type"):
        list(iter_corpus(bad))


def test_length_batches_deterministic_bounded_and_complete():
    src = lambda: iter_corpus(CORPUS, "train")  # noqa: E731
    a = list(
        length_batches(src, batch_tokens=2000, max_length=512, seed=3, epoch=0, buffer_size=100)
    )
    b = list(
        length_batches(src, batch_tokens=2000, max_length=512, seed=3, epoch=0, buffer_size=100)
    )
    c = list(
        length_batches(src, batch_tokens=2000, max_length=512, seed=3, epoch=1, buffer_size=100)
    )
    assert [[r.seq for r in x] for x in a] == [[r.seq for r in x] for x in b]
    assert [[r.seq for r in x] for x in a] != [[r.seq for r in x] for x in c]
    for batch in a:
        assert len(batch) == 1 or max(len(r.seq) + 4 for r in batch) * len(batch) <= 2000
    assert sorted(r.seq for x in a for r in x) == sorted(r.seq for r in src())


def test_long_sequences_become_windows():
    long = CorpusRecord("A" * 1200, vocab.type_id("tRNA"))
    out = list(
        length_batches(lambda: iter([long]), batch_tokens=10**6, max_length=512, seed=0, epoch=0)
    )
    pieces = [r.seq for b in out for r in b]
    assert sorted(map(len, pieces)) == [184, 508, 508]


def test_build_batch_layout_and_labels():
    recs = [
        CorpusRecord("ACGUACGUAAGGCCUUAGCAGCCGCG" * 3, vocab.type_id("tRNA")),
        CorpusRecord("GGGAAAUCC", None),
    ]
    b = build_batch(
        recs, tokenizer=Tokenizer(), matcher=MotifMatcher.default(), seed=5, open_slot_prob=1.0
    )
    ids, lab = b["input_ids"], b["labels"]
    n0 = int(b["attention_mask"][0].sum())
    assert ids[0, n0 - 3] == vocab.IND_ID and ids[0, n0 - 2] == vocab.MASK_ID  # open slot
    assert lab[0, n0 - 2] == vocab.type_id("tRNA")  # ...that the MLM head must fill
    assert b["type_labels"].tolist() == [vocab.type_id("tRNA") - vocab.TYPE_OFFSET, -100]
    n1 = int(b["attention_mask"][1].sum())
    assert lab[1, n1 - 2] == -100  # unknown type: no slot label
    assert (lab[:, 0] == -100).all()  # [CLS] is never an MLM target
    closed = build_batch(
        recs[:1], tokenizer=Tokenizer(), matcher=None, seed=5, levels=("base",), open_slot_prob=0.0
    )
    assert closed["input_ids"][0, n0 - 2] == vocab.type_id("tRNA")
    assert closed["labels"][0, n0 - 2] == -100  # the visible type token is never masked


def _cfg(tmp_path, **kw):
    base = dict(corpus=str(CORPUS), out=str(tmp_path), preset="tiny", model_overrides=MICRO, steps=4,
                batch_tokens=1500, warmup_steps=1, eval_every=0, checkpoint_every=2, log_every=1, seed=1)  # fmt: skip
    base.update(kw)
    return PretrainConfig(**base)


def _weights(path):
    return RnaErnieForPreTraining.from_pretrained(path).state_dict()


def test_pretrain_logs_and_resume_is_exact(tmp_path):
    full = pretrain(_cfg(tmp_path / "full"))
    log = [line for line in (tmp_path / "full/log.jsonl").read_text().splitlines()]
    assert len(log) == 4 and '"mlm_acc_motif"' in log[0]
    # a run stopped after 2 steps and resumed must end where the uninterrupted one did
    pretrain(_cfg(tmp_path / "split", stop_at=2))
    resumed = pretrain(_cfg(tmp_path / "split", steps=4))
    a, b = _weights(full), _weights(resumed)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


class _Payload:
    """Unpickling it creates the directory ``marker``: what a planted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_resume_never_unpickles_run_folder_files(tmp_path):
    marker = tmp_path / "payload_ran"
    payload = pickle.dumps(_Payload(marker))
    pickle.loads(payload)  # the payload works...
    assert marker.exists()
    marker.rmdir()
    pretrain(_cfg(tmp_path / "good", steps=2, stop_at=1))
    names = ["trainer.json", "trainer.safetensors", "model/model.safetensors", "model/config.json"]
    for name in names:
        run = tmp_path / name.replace("/", "_")
        shutil.copytree(tmp_path / "good", run)
        (run / "checkpoint/trainer.pt").write_bytes(payload)  # the old path: never read
        (run / "checkpoint" / name).write_bytes(payload)
        where = run / "checkpoint" / name.split("/")[0]
        with pytest.raises(ValueError, match=f"malformed pretraining checkpoint {where}"):
            pretrain(_cfg(run, steps=2))
    # a pickle at the old path next to a sound checkpoint is ignored; alone it is refused, unread
    (tmp_path / "good/checkpoint/trainer.pt").write_bytes(payload)
    assert pretrain(_cfg(tmp_path / "good", steps=2)) == tmp_path / "good/final"
    (tmp_path / "legacy/checkpoint").mkdir(parents=True)
    (tmp_path / "legacy/checkpoint/trainer.pt").write_bytes(payload)
    with pytest.raises(ValueError, match=r"trainer\.pt: pickled checkpoints are not read"):
        pretrain(_cfg(tmp_path / "legacy", steps=1))
    assert not marker.exists()


def test_time_cap_ends_the_run_with_a_decayed_learning_rate(tmp_path):
    cfg = _cfg(tmp_path / "capped", steps=10**6, max_minutes=0.01, warmup_steps=1)
    final = pretrain(cfg)
    assert final == tmp_path / "capped" / "final" and (final / "model.safetensors").exists()
    log = [json.loads(line) for line in (tmp_path / "capped/log.jsonl").read_text().splitlines()]
    assert 1 <= log[-1]["step"] < 10**6
    assert log[-1]["lr"] < 0.25 * cfg.lr  # the cosine followed the clock, not the step count
    # the schedule itself: time spent / cap decides when it is further along than the steps
    # started again, the finished run takes no further step and ends where it did
    before = _weights(final)
    assert pretrain(cfg) == final
    assert len((tmp_path / "capped/log.jsonl").read_text().splitlines()) == len(log)
    after = _weights(final)
    assert all(torch.equal(before[k], after[k]) for k in before)
    f = _lr_lambda(cfg, lambda: 1.0)
    assert f(0) == 1.0 and f(5) == pytest.approx(cfg.min_lr_ratio)
    assert _lr_lambda(cfg, lambda: 0.0)(5) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": 0}, "steps must be at least 1, got 0"),
        ({"batch_tokens": -5}, "batch_tokens must be at least 1"),
        ({"checkpoint_every": 0}, "checkpoint_every must be at least 1"),
        ({"max_length": 4}, "max_length must be at least 5"),
        ({"levels": ["base", "codon"]}, "levels must be a non-empty subset"),
        ({"levels": []}, "levels must be a non-empty subset"),
        ({"max_minutes": 0}, "max_minutes must be > 0, got 0"),
        ({"open_slot_prob": 1.5}, r"open_slot_prob must be in \[0, 1\]"),
        ({"lr": float("nan")}, "lr must be >= 0"),
    ],
)
def test_bad_settings_fail_before_training(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        _cfg(tmp_path, **change)


def test_cli_names_the_config_file_with_a_bad_key(tmp_path, capsys):
    from rnaernie.cli import main

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"corpus": str(CORPUS), "stepz": 3}))
    assert main(["pretrain", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "stepz" in err
    cfg.write_text(json.dumps({"corpus": str(CORPUS), "max_minutes": -1}))
    assert main(["pretrain", "--config", str(cfg)]) == 2
    assert "max_minutes must be > 0, got -1" in capsys.readouterr().err


def test_a_finished_run_started_again_returns_its_final_model(tmp_path):
    cfg = _cfg(tmp_path / "done", steps=2)
    final = pretrain(cfg)
    before = _weights(final)
    assert pretrain(cfg) == final
    after = _weights(final)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_init_from_starts_at_the_given_weights(tmp_path):
    first = pretrain(_cfg(tmp_path / "a", steps=2))
    cont = pretrain(_cfg(tmp_path / "b", steps=2, init_from=str(first), lr=0.0))
    # lr 0: the continued run keeps the starting weights exactly (the architecture came from them)
    a, b = _weights(first), _weights(cont)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    moved = pretrain(_cfg(tmp_path / "c", steps=2, init_from=str(first)))
    assert any(not torch.equal(a[k], v) for k, v in _weights(moved).items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
    )
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        pretrain(_cfg(Path(out), steps=3, checkpoint_every=100))
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_ranks_equal_one_process_with_same_global_batch(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True)
    single = pretrain(_cfg(tmp_path / "single", steps=3, grad_accum=2, checkpoint_every=100))
    a, b = _weights(tmp_path / "ddp/final"), _weights(single)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_evaluate_reports_levels_and_baselines():
    torch.manual_seed(0)
    from rnaernie.model import RnaErnieConfig

    model = RnaErnieForPreTraining(RnaErnieConfig.preset("tiny", **MICRO))
    m = evaluate_pretraining(model, iter_corpus(CORPUS, "valid"))
    for lv in LEVELS:
        assert 0.0 <= m[f"mlm_acc_{lv}"] <= 1.0
        assert 0.25 <= m[f"baseline_most_frequent_nucleotide_{lv}"] <= 1.0 or m[f"masked_{lv}"] == 0
    assert m["typed_sequences"] == 4 and 0 < m["baseline_most_frequent_type"] <= 1
    assert np.isfinite(m["type_acc_slot"]) and m["ln4"] == pytest.approx(np.log(4))

    class Copy(torch.nn.Module):  # predicts its input token: right only where the base was kept
        def forward(self, ids, mask):
            logits = 10.0 * torch.nn.functional.one_hot(ids, vocab.VOCAB_SIZE).float()
            return type("O", (), {"logits": logits, "type_logits": torch.zeros(len(ids), 28)})

    c = evaluate_pretraining(Copy(), iter_corpus(CORPUS, "valid"), levels=("base",))
    assert c["mlm_acc_mask_base"] == 0.0 and 0.05 < c["mlm_acc_base"] < 0.3
    assert c["masked_mask_base"] < c["masked_base"] and c["mlm_loss_mask_base"] > c["mlm_loss_base"]
