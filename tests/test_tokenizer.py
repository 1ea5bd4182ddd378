from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnaernie import vocab
from rnaernie.tokenizer import Tokenizer, normalise

_REF = {**{c: vocab.NUC_OFFSET + i for i, c in enumerate("AUCG")}, "T": vocab.NUC_OFFSET + 1}


def ref_tokens(seq: str) -> list[int]:
    """Plain-Python normalisation: upper-case, T->U, whitespace dropped, IUPAC -> [UNK]."""
    out = []
    for ch in seq:
        if ch.isspace():
            continue
        c = ch.upper()
        if c in _REF:
            out.append(_REF[c])
        elif c in vocab.IUPAC_AMBIGUITY:
            out.append(vocab.UNK_ID)
        else:
            raise ValueError(ch)
    return out


rna_text = st.text(alphabet="ACGUTacgutNnRYswkmbdhv \n\t", max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(rna_text, max_size=8))
def test_encode_batch_matches_reference(seqs):
    tok = Tokenizer(max_length=10_000)
    enc = tok.encode_batch(seqs)
    assert enc.input_ids.dtype == np.int64
    assert len(enc) == len(seqs)
    for i, s in enumerate(seqs):
        want = [vocab.CLS_ID, *ref_tokens(s), vocab.SEP_ID]
        n = enc.lengths[i]
        assert n == len(want)
        assert enc.input_ids[i, :n].tolist() == want
        assert (enc.input_ids[i, n:] == vocab.PAD_ID).all()
        assert enc.attention_mask[i].tolist() == [1] * n + [0] * (enc.input_ids.shape[1] - n)


def test_edge_cases():
    tok = Tokenizer()
    enc = tok.encode_batch([])
    assert enc.input_ids.shape == (0, 0)
    enc = tok.encode_batch(["", "a", "NNNN"])
    assert enc.lengths.tolist() == [2, 3, 6]
    assert enc.input_ids[1, 1] == vocab.NUC_OFFSET
    assert (enc.input_ids[2, 1:5] == vocab.UNK_ID).all()
    assert tok.decode(tok.encode("acgtU")) == "ACGUU"
    assert tok.decode(tok.encode("ANR")) == "ANN"


def test_bytes_and_types_layout():
    tok = Tokenizer()
    enc = tok.encode_batch([b"ACG", "UU"], types=["tRNA", "[MASK]"])
    row0 = enc.input_ids[0, : enc.lengths[0]].tolist()
    assert row0 == [2, 35, 37, 38, vocab.IND_ID, vocab.type_id("tRNA"), 3]
    row1 = enc.input_ids[1, : enc.lengths[1]].tolist()
    assert row1[-3:] == [vocab.IND_ID, vocab.MASK_ID, vocab.SEP_ID]
    assert tok.decode(row0, skip_special_tokens=False) == "[CLS]ACG[IND]tRNA[SEP]"


def test_invalid_character_names_sequence_and_position():
    tok = Tokenizer()
    with pytest.raises(
        ValueError, match=r"sequence 1 \('second'\), position 2: invalid character 'X'"
    ):
        tok.encode_batch(["ACGU", "ACXU"], names=["first", "second"])
    with pytest.raises(ValueError, match=r"sequence 0, position 1: invalid character byte 0xC3"):
        tok.encode_batch(["Aé"])
    enc = tok.encode_batch(["AC-GU"], replace_invalid=True)
    assert enc.input_ids[0, 3] == vocab.UNK_ID


def test_bad_types_and_arguments():
    tok = Tokenizer()
    with pytest.raises(ValueError, match="unknown RNA type"):
        tok.encode_batch(["ACG"], types=["notatype"])
    with pytest.raises(ValueError, match="type ids for"):
        tok.encode_batch(["ACG", "A"], types=["tRNA"])
    with pytest.raises(TypeError, match="sequence of strings"):
        tok.encode_batch("ACGU")
    with pytest.raises(ValueError, match="expected str or bytes"):
        tok.encode_batch(["ACG", 5])
    with pytest.raises(ValueError, match="max_length"):
        Tokenizer(max_length=2)


def test_too_long_raises_or_truncates():
    tok = Tokenizer(max_length=10)
    with pytest.raises(ValueError, match=r"sequence 0 .*has 20 nucleotides, more than the 8"):
        tok.encode_batch(["A" * 20], names=["long"])
    enc = tok.encode_batch(["A" * 20, "C"], truncate=True)
    assert enc.input_ids.shape == (2, 10)
    assert enc.end.tolist() == [8, 1]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.integers(1, 50), st.integers(1, 50))
def test_windows_cover_every_position(n, window, stride):
    stride = min(stride, window)
    seq = "".join("ACGU"[(i * 7) % 4] for i in range(n))
    tok = Tokenizer(max_length=window + 2)
    enc = tok.encode_batch([seq], window=window, stride=stride)
    covered = np.zeros(n, bool)
    for r in range(len(enc)):
        s, e = enc.start[r], enc.end[r]
        assert 0 <= s <= e <= n and e - s <= window
        assert tok.decode(enc.input_ids[r]) == seq[s:e]
        covered[s:e] = True
    assert covered.all()
    if n > window:
        assert enc.end[-1] == n and enc.end[-1] - enc.start[-1] == window


def test_window_arguments_checked():
    with pytest.raises(ValueError, match="window 600 does not fit"):
        Tokenizer().encode_batch(["ACGU"], window=600)
    with pytest.raises(ValueError, match="stride must be in"):
        Tokenizer().encode_batch(["ACGU"], window=10, stride=11)


def test_long_sequence_threads_agree():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGU"), size=int(k))) for k in rng.integers(0, 2000, size=300)]
    a = Tokenizer(max_length=4096, threads=1).encode_batch(seqs)
    b = Tokenizer(max_length=4096, threads=2).encode_batch(seqs)
    np.testing.assert_array_equal(a.input_ids, b.input_ids)


def test_non_list_inputs_and_bad_argument_types():
    # regressions from the sanitizer stress run: numpy string arrays create temporaries on indexing
    tok = Tokenizer()
    enc = tok.encode_batch(np.array(["ACGU", "GG", "U"]))
    assert [tok.decode(r) for r in enc.input_ids] == ["ACGU", "GG", "U"]
    assert tok.encode_batch(("AC", "G")).lengths.tolist() == [4, 3]
    with pytest.raises(ValueError, match="names must be a sequence of strings"):
        tok.encode_batch(["ACGU"], names=[1])
    with pytest.raises(ValueError, match="types must be a sequence of token ids"):
        tok.encode_batch(["ACGU"], types=[2**70])
    with pytest.raises(ValueError, match="window must be >= 0"):
        tok.encode_batch(["ACGU"], window=-1)
    with pytest.raises(ValueError, match="threads must be >= 0"):
        Tokenizer(threads=-1).encode_batch(["ACGU"])


@given(st.lists(st.integers(1, 9), max_size=8), st.integers(1, 5))
def test_spread_keeps_evenly_spaced_windows_per_sequence(counts, cap):
    from rnaernie.tokenizer import window_rows

    seq_index = np.repeat(np.arange(len(counts)), counts)
    rows = window_rows(seq_index, cap)
    assert (np.diff(rows) > 0).all()  # in order, no repeats
    for s, c in enumerate(counts):
        mine = rows[seq_index[rows] == s] - np.flatnonzero(seq_index == s)[0]
        if c <= cap:
            assert mine.tolist() == list(range(c))
        else:  # cap rows, the first and the last among them
            assert len(mine) == cap if cap > 1 else len(mine) == 1
            assert mine[0] == 0 and (cap == 1 or mine[-1] == c - 1)


def test_encoding_spread_subsets_every_field():
    tok = Tokenizer()
    enc = tok.encode_batch(["A" * 2000, "ACGU"], window=500, stride=250)
    sub = enc.spread(2)
    assert sub.seq_index.tolist() == [0, 0, 1]
    assert sub.start.tolist() == [0, 1500, 0] and sub.end.tolist() == [500, 2000, 4]
    np.testing.assert_array_equal(sub.input_ids, enc.input_ids[[0, len(enc) - 2, len(enc) - 1]])
    assert enc.spread(None) is enc
    with pytest.raises(ValueError, match="max_windows"):
        enc.spread(0)


@settings(max_examples=400, deadline=None)
@given(st.text(st.characters(max_codepoint=127), max_size=60)
       | st.text("acgutnACGUTN \t\n\r\x0b\x0c\x1c\x1fé\u00a0\u2028", max_size=60))  # fmt: skip
def test_normalise_letter_by_letter(seq):
    """``normalise`` (one pass over bytes for ASCII text, str methods otherwise) is: whitespace
    as ``str.split`` sees it dropped, then upper case with T read as U."""
    want = "".join("U" if c.upper() == "T" else c.upper() for c in seq if not c.isspace())
    assert normalise(seq) == want
