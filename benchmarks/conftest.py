"""Shared fixtures of the native-core benchmarks: deterministic data, machine description, ratios.

Every benchmark calls :func:`record` after timing; it stores throughput (MB/s, sequences/s, matches/s)
in ``extra_info`` and, for every case of the same ``key`` (same data, same work), the speed ratio of
each implementation against each other one, so the JSON holds ``speedup_vs_<impl>`` directly.
Baselines that run on a subset are compared per unit of work (per MB / per sequence), never per call.
"""

from __future__ import annotations

import csv
import gzip
import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

# the data sets: $RNAERNIE_DATA, by default ../shared/data beside the repository
DATA = Path(os.environ.get("RNAERNIE_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
RFAM_TSV = DATA / "rfam14_2_seed_typed" / "rfam14.2_seed_typed.tsv.gz"
_ACGU = np.frombuffer(b"ACGU", dtype=np.uint8)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Let ``--benchmark-enable`` win over the ``--benchmark-skip`` in pyproject's addopts.

    (pytest-benchmark otherwise skips every benchmark when both are given.) Runs before the plugin's
    own ``pytest_configure`` (trylast), which reads the options.
    """
    if config.getoption("benchmark_enable", False) and config.getoption("benchmark_skip", False):
        config.option.benchmark_skip = False


def _core_path(path: str) -> str:
    """The measured ``_core`` module, relative to the environment (or repository) holding it."""
    for root in (sys.prefix, str(Path(__file__).resolve().parents[1])):
        if os.path.commonpath([root, path]) == root:
            return os.path.relpath(path, root)
    return os.path.basename(path)


def pytest_benchmark_update_machine_info(config, machine_info):
    """Describe the machine beyond pytest-benchmark's defaults (cores, load, build of the core)."""
    import rnaernie
    from rnaernie import _core

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = None
    machine_info.update(
        cpu_count=os.cpu_count(),
        affinity=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        loadavg_at_start=load,
        platform=platform.platform(),
        rnaernie_version=rnaernie.__version__,
        rnaernie_core=_core_path(_core.__file__),
        git_commit=commit,
        numpy_version=np.__version__,
    )


# ---- data generators (deterministic) ----


def random_rna(n: int, min_len: int, max_len: int, seed: int = 0) -> list[str]:
    """n random ACGU strings with lengths uniform in [min_len, max_len]."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, n)
    text = _ACGU[rng.integers(0, 4, int(lengths.sum()))].tobytes().decode("ascii")
    ends = np.cumsum(lengths)
    return [text[e - k : e] for e, k in zip(ends.tolist(), lengths.tolist())]


def random_text(n_bytes: int, seed: int = 0) -> str:
    """One random ACGU string of n_bytes characters."""
    rng = np.random.default_rng(seed)
    return _ACGU[rng.integers(0, 4, n_bytes)].tobytes().decode("ascii")


@lru_cache(maxsize=2)
def rfam_sequences(
    n: int = 20_000, max_nt: int = 508, seed: int = 0
) -> tuple[list[str], list[str]]:
    """(sequences, RNAcentral type names) of n Rfam 14.2 seed sequences of at most max_nt nucleotides.

    A seeded random sample (the file is ordered by family, a prefix would be a few families only).
    """
    if not RFAM_TSV.exists():
        pytest.skip(f"Rfam corpus not found at {RFAM_TSV}")
    from rnaernie.training.pretrain import map_rfam_type

    with gzip.open(RFAM_TSV, "rt", encoding="utf-8") as fh:
        rows = [
            (r["sequence"], map_rfam_type(r["rna_type"], r["rfam_id"]))
            for r in csv.DictReader(fh, delimiter="\t")
            if len(r["sequence"]) <= max_nt
        ]
    pick = np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    pick.sort()
    return [rows[i][0] for i in pick], [rows[i][1] for i in pick]


# ---- throughput and ratios ----

_CASES: dict[str, dict[str, tuple[float, dict]]] = {}


def record(
    benchmark,
    key: str,
    impl: str,
    *,
    n_bytes: int | None = None,
    n_seqs: int | None = None,
    n_matches: int | None = None,
) -> None:
    """Store throughput of the finished ``benchmark`` and ratios against the other impls of ``key``.

    ``key`` names the workload (e.g. ``"encode-100000"``); cases under one key are compared per unit:
    per byte when ``n_bytes`` is given, else per sequence.
    """
    # The basis is the median round: on the VM this runs on, first-touch page faults of large fresh
    # buffers make single rounds several times slower for every implementation (numpy included).
    basis = benchmark.stats.stats.median
    info = benchmark.extra_info
    info.update(impl=impl, workload=key, median_s=basis, mean_s=benchmark.stats.stats.mean)
    if n_bytes is not None:
        info.update(n_bytes=n_bytes, mb_per_s=n_bytes / basis / 1e6)
    if n_seqs is not None:
        info.update(n_seqs=n_seqs, seqs_per_s=n_seqs / basis)
    if n_matches is not None:
        info.update(n_matches=n_matches, matches_per_s=n_matches / basis)
    unit = n_bytes if n_bytes is not None else n_seqs
    info["units_per_s"] = unit / basis  # per byte or per sequence: the basis of the ratios
    group = _CASES.setdefault(key, {})
    group[impl] = (info["units_per_s"], info)
    for a, (rate_a, info_a) in group.items():
        for b, (rate_b, _) in group.items():
            if a != b:
                info_a[f"speedup_vs_{b}"] = rate_a / rate_b


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A compact throughput table (what benchmarks/README.md reports)."""
    if not _CASES:
        return
    tr = terminalreporter
    tr.section("throughput (rnaernie benchmarks)")
    for key, group in _CASES.items():
        for impl, (_, info) in group.items():
            rate = ", ".join(
                f"{info[k]:,.1f} {u}"
                for k, u in (
                    ("mb_per_s", "MB/s"),
                    ("seqs_per_s", "seq/s"),
                    ("matches_per_s", "match/s"),
                )
                if k in info
            )
            ratios = ", ".join(
                f"{k[len('speedup_vs_') :]}: {v:.1f}x"
                for k, v in info.items()
                if k.startswith("speedup_vs_")
            )
            tr.write_line(f"{key:28s} {impl:24s} {rate:55s} {ratios}")
