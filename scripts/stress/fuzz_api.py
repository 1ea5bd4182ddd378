"""Fuzz the Python API with hypothesis: every rejection must be a ValueError / OSError subclass
(FileNotFoundError, PermissionError, IsADirectoryError) with a message; anything else, a hang or
a crash, fails.

    python scripts/stress/fuzz_api.py 100000      # examples per target (default 2,000)

Targets: the sequence reader on random bytes (plain and gzipped), the model API's inputs
(sequences, ids, options; embed, classify, fold, predict_type, screen) on a micro model with random weights, the decoder options and the model
config from random dicts. Not part of the default test run.
"""

from __future__ import annotations

import gzip
import io
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from _micro_model import save_micro_model

import rnaernie
from rnaernie.io import iter_records, read_fasta
from rnaernie.model import RnaErnieConfig
from rnaernie.structure import DecodeOptions

OK = (ValueError, OSError)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
CFG = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck),
               database=None)  # fmt: skip
letters = st.text(alphabet="ACGUTNacgu-!> \n@+\t\x00é", max_size=80)
values = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(),
                   st.text(max_size=8), st.lists(st.integers(), max_size=3))  # fmt: skip


def _expect_clean(fn, *args, **kw) -> None:
    try:
        fn(*args, **kw)
    except OK as e:
        assert str(e), f"{type(e).__name__} without a message"


@CFG
@given(st.binary(max_size=400), st.booleans())
def fuzz_reader(data: bytes, gz: bool) -> None:
    raw = gzip.compress(data)[: len(data) + 10] if gz else data  # gzip, sometimes truncated
    _expect_clean(lambda: list(read_fasta(io.BytesIO(raw))))
    for x in iter_records(io.BytesIO(raw)) if not gz else []:
        assert x.id is not None


def fuzz_model(model) -> None:
    @CFG
    @given(st.lists(st.one_of(letters, st.tuples(st.text(max_size=5), st.one_of(letters, values))),
                    max_size=4), values, st.sampled_from(["embed", "classify", "fold", "predict_type", "screen"]))  # fmt: skip
    def run(items, option, method) -> None:
        kw = {"embed": {"batch_tokens": option}, "classify": {"top_k": option},
              "fold": {"max_length": option}, "predict_type": {"top_k": option},
              "screen": {"evalue": option}}[method]  # fmt: skip
        kw = {k: v for k, v in kw.items() if v is not None}
        _expect_clean(getattr(model, method), items, **kw)

    run()


@CFG
@given(st.dictionaries(st.sampled_from(["method", "threshold", "gamma", "canonical_only", "min_loop",
                                        "no_lonely_pairs", "other"]), values))  # fmt: skip
def fuzz_options(d: dict) -> None:
    _expect_clean(DecodeOptions.from_dict, d)
    _expect_clean(
        RnaErnieConfig.from_dict, {k.replace("method", "hidden_size"): v for k, v in d.items()}
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        heads = ("nrc", "structure", "interaction", "screen")
        model = rnaernie.load(save_micro_model(Path(tmp) / "m", heads=heads))
        for name, fn in (("reader", fuzz_reader), ("options", fuzz_options),
                         ("model", lambda: fuzz_model(model))):  # fmt: skip
            fn()
            print(f"{name}: {N} examples, every rejection a clean ValueError/OSError", flush=True)
