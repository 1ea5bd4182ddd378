"""`rnaernie screen` on one long record: 1 rank against 2 ranks (torchrun, one thread each;
shards of 4 chunks of 100 kb).

Builds one record of ``--mb`` Mb (dinucleotide-shuffled ``lncrna_mouse_prelnc/test`` transcripts
with nRC test sequences planted every 20 kb), screens it with one process and with two torchrun
ranks sharing its chunks (each ``--repeats`` times, alternated), checks that the outputs are
byte-identical and writes the median wall times and the peak memory to ``--out`` (JSON).

    python scripts/screen_scaling.py --mb 20 --out benchmarks/results/screen_scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rnaernie.io import read_fasta
from rnaernie.kmer import shuffled_genome
from rnaernie.tokenizer import normalise


def genome(data: Path, mb: float, seed: int = 7) -> str:
    rng = np.random.default_rng(seed)
    tr = [r.seq for r in read_fasta(data / "lncrna_mouse_prelnc" / "test.fasta.gz")]
    genes = [normalise(r.seq) for r in read_fasta(data / "nrc" / "test.fasta")]
    bg = shuffled_genome(tr, int(mb * 1e6), rng)
    parts = []
    for a in range(0, len(bg), 20_000):
        parts.append(bg[a : a + 20_000])
        parts.append(genes[int(rng.integers(len(genes)))])
    return "".join(parts)


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, **env})
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("RNAERNIE_DATA", "../shared/data"))
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--model", default="rnaernie-tiny")
    ap.add_argument("--out", default="benchmarks/results/screen_scaling.json")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each; the median wall time")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "chr.fa"
        seq = genome(Path(a.data_dir), a.mb)
        src.write_text(">chr1\n" + seq + "\n")
        common = ["screen", str(src), "--model", a.model, "--dtype", "float32", "--threads", "1",
                  "-q"]  # fmt: skip
        ones, twos, same = [], [], True
        for _ in range(a.repeats):  # alternated, so that a slow spell of the machine hits both
            for f in ("one.tsv", "two.tsv"):
                (tmp / f).unlink(missing_ok=True)
            ones.append(timed([sys.executable, "-m", "rnaernie.cli", *common, "-o",
                               str(tmp / "one.tsv")], {}))  # fmt: skip
            twos.append(timed(["torchrun", "--standalone", "--nproc-per-node", "2", "-m",
                               "rnaernie.cli", *common, "-o", str(tmp / "two.tsv"), "--shard-size",
                               "4"], {"OMP_NUM_THREADS": "1"}))  # fmt: skip
            same &= (tmp / "one.tsv").read_bytes() == (tmp / "two.tsv").read_bytes()
        one = float(np.median([w for w, _ in ones]))
        two = float(np.median([w for w, _ in twos]))
        peak = max(p for _, p in ones + twos)
        loci = len((tmp / "one.tsv").read_text().splitlines()) - 1
    res = {"record_mb": len(seq) / 1e6, "loci": loci, "one_rank_s": round(one, 1),
           "two_ranks_s": round(two, 1), "speedup": round(one / two, 3), "runs": a.repeats,
           "byte_identical": same, "peak_rss_mb_max_child": round(peak, 1),
           "threads_per_rank": 1, "cores": os.cpu_count()}  # fmt: skip
    print(json.dumps(res))
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    if not same:
        sys.exit("the outputs differ")


if __name__ == "__main__":
    main()
