"""The one sharded runner every model command uses: deterministic shards, part files, their merge.

* Sharding: item ``k`` of the stream (valid or not) belongs to shard ``k // shard_size``; rank ``r``
  of ``world`` takes shards ``s % world == r`` and writes part files ``OUT.part-00003.tsv``.
  Every rank reads the whole stream (parsing is cheap next to the model), so all agree on the
  shards without talking to each other.
* Writers write ``name.tmp`` and rename on :meth:`commit`; a part counts as finished once its
  main file exists (sidecars are committed first), which is what ``--resume`` checks.
* :func:`merge_parts` concatenates the parts in shard order, so a sharded run gives the same
  files as a single process.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np

from .readers import Invalid
from .writers import NpyWriter, component_path, is_special, write_atomic

__all__ = ["DEFAULT_SHARD_SIZE", "Manifest", "Progress", "RunOptions", "batches", "dist_env",
           "iter_shards", "merge_parts", "part_stem", "run_sharded"]  # fmt: skip

logger = logging.getLogger(__name__)


def dist_env() -> tuple[int, int]:
    """(rank, world size): from an initialised ``torch.distributed``, else ``RANK``/``WORLD_SIZE``."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError("RANK and WORLD_SIZE must be integers") from None
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    return rank, world


def iter_shards(
    items: Iterable[Any], shard_size: int
) -> Iterator[tuple[int, Iterator[tuple[int, Any]]]]:
    """``(shard, iterator of (item index, item))`` for consecutive runs of ``shard_size`` items.

    The inner iterator must be consumed (or dropped) before the next shard is taken.
    """
    if shard_size < 1:
        raise ValueError("shard_size must be positive")
    yield from groupby(enumerate(items), key=lambda t: t[0] // shard_size)


def batches(items: Iterable[Any], size: int, nt: int = 0) -> Iterator[list[Any]]:
    """Consecutive runs of ``items``, at most ``size`` each; with ``nt`` > 0 a run also ends once
    its items' sequences (``.seq``; an :class:`Invalid` has none) hold ``nt`` nt."""
    if size < 1 or nt < 0:
        raise ValueError("batches: size must be positive and nt >= 0")
    batch: list[Any] = []
    held = 0
    for x in items:
        batch.append(x)
        held += len(getattr(x, "seq", ""))
        if len(batch) >= size or (nt and held >= nt):
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def part_stem(out: str | os.PathLike[str], shard: int) -> Path:
    """``res.tsv`` → ``res.part-00003`` (the stem every component of a part hangs from)."""
    return component_path(out, f".part-{shard:05d}")


@dataclass
class Manifest:
    """``OUT.parts.json``: how many shards and which components each part has (main tag first)."""

    shards: int
    shard_size: int
    tags: list[str]
    optional: list[str]

    @staticmethod
    def path(out: str | os.PathLike[str]) -> Path:
        return component_path(out, ".parts.json")

    def write(self, out: str | os.PathLike[str]) -> None:
        write_atomic(self.path(out), json.dumps(self.__dict__, indent=1) + "\n")

    @classmethod
    def read(cls, out: str | os.PathLike[str]) -> Manifest:
        p = cls.path(out)
        if not p.is_file():
            raise FileNotFoundError(f"no manifest {p}: run the sharded command first")
        return cls(**json.loads(p.read_text()))

    def part(self, out: str | os.PathLike[str], shard: int, tag: str | None = None) -> Path:
        return Path(str(part_stem(out, shard)) + (self.tags[0] if tag is None else tag))

    def missing(self, out: str | os.PathLike[str]) -> list[int]:
        return [k for k in range(self.shards) if not self.part(out, k).is_file()]


def merge_parts(out: str | os.PathLike[str], *, keep_parts: bool = False) -> Path:
    """Concatenate the finished parts of ``out`` in shard order into ``out`` and its sidecars."""
    man = Manifest.read(out)
    missing = man.missing(out)
    if missing:
        shown = ", ".join(str(man.part(out, k)) for k in missing[:5])
        raise ValueError(f"{len(missing)} of {man.shards} parts are not finished: {shown}")
    main = Path(out)
    for tag in [*man.tags[1:], *man.optional, man.tags[0]]:  # the main file last
        final = component_path(main, tag) if tag != man.tags[0] else main
        parts = [man.part(out, k, tag) for k in range(man.shards)]
        present = [p for p in parts if p.is_file()]
        if tag in man.optional and not present:
            final.unlink(missing_ok=True)
            continue
        if tag in man.tags and len(present) != len(parts):
            raise ValueError(
                f"part files missing for {tag}: {[str(p) for p in parts if not p.is_file()]}"
            )
        _concat(present, final)
    if not keep_parts:
        for k in range(man.shards):
            for tag in [*man.tags, *man.optional]:
                man.part(out, k, tag).unlink(missing_ok=True)
        Manifest.path(out).unlink(missing_ok=True)
    return main


def _concat(parts: Sequence[Path], final: Path) -> None:
    ext = final.suffix.lower()
    if is_special(final):
        raise ValueError(f"cannot merge parts into {str(final)!r}: not a regular file")
    tmp = final.with_name(final.name + ".tmp")
    try:
        if ext == ".parquet":
            import pyarrow.parquet as pq

            writer = None
            for p in parts:
                f = pq.ParquetFile(p)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, f.schema_arrow)
                for g in range(f.num_row_groups):
                    writer.write_table(f.read_row_group(g))
            if writer is None:
                raise ValueError("no parquet parts to merge")
            writer.close()
        elif ext == ".npy":
            w: NpyWriter | None = None
            for p in parts:
                a = np.load(p, mmap_mode="r")
                if w is None:
                    w = NpyWriter(tmp, a.shape[1], dtype=a.dtype, atomic=False)
                for s in range(0, a.shape[0], 65536):
                    w.write(np.asarray(a[s : s + 65536]))
            if w is None:
                raise ValueError("no .npy parts to merge")
            w.close()
        elif ext == ".safetensors":
            from safetensors import safe_open
            from safetensors.numpy import load_file, save_file

            embs, ids = [], []
            for p in parts:
                embs.append(load_file(p)["embeddings"])
                with safe_open(p, "np") as f:
                    ids += json.loads(f.metadata()["ids"])
            save_file({"embeddings": np.concatenate(embs)}, tmp, metadata={"ids": json.dumps(ids)})
        else:
            header = ext in (".tsv", ".csv")
            with open(tmp, "wb") as dst:
                for k, p in enumerate(parts):
                    with open(p, "rb") as src:
                        if header and k > 0:
                            src.readline()
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- the runner

DEFAULT_SHARD_SIZE = 1000
PROGRESS_EVERY_S = 30.0  # a progress line this often when stderr is not a terminal (cluster logs)


class Progress:
    """Records done: a tqdm bar on a terminal, else a log line every :data:`PROGRESS_EVERY_S`
    seconds, so a cluster log shows a run is alive: records, rate, the share of the input file
    read (``position()`` / ``size`` bytes, when known) and the results written while one long
    record is worked on. Nothing when ``quiet``."""

    def __init__(self, desc: str, quiet: bool = False, position=None, size: int = 0) -> None:
        self.desc, self.quiet, self.n, self.results = desc, quiet, 0, 0
        self.position, self.size = position, size
        self.t0 = self.last = time.monotonic()
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc=desc, unit="rec", file=sys.stderr)

    def update(self, n: int) -> None:
        """``n`` more records done (0: one more batch of results of the current records)."""
        self.n += n
        self.results = self.results + 1 if n == 0 else 0
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(self._read(), refresh=False)
        elif not self.quiet and time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self.last = time.monotonic()
            rate = self.n / max(self.last - self.t0, 1e-9)
            read = self._read()
            busy = f", {self.results} result batches of the current records" if self.results else ""
            logger.warning("%s: %d records (%.1f/s)%s%s", self.desc, self.n, rate,
                           f", {read}" if read else "", busy)  # fmt: skip

    def _read(self) -> str:
        return f"{100 * self.position() / self.size:.0f} % of the input" if self.size else ""

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class RunOptions:
    """How a model command streams its input (the command line's common options)."""

    output: str | None
    chunk_size: int = 512
    shard_size: int = 0
    skip_invalid: bool = False
    resume: bool = False
    keep_parts: bool = False
    quiet: bool = False
    command: str = "run"
    batch_nt: int = 0  # > 0: a chunk also ends once its records hold this many nt (:func:`batches`)


def _dist_init(world: int) -> bool:
    """Join the torchrun process group (gloo: only barriers travel over it)."""
    if world <= 1 or "MASTER_ADDR" not in os.environ:
        return False
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))
    return True


def _barrier(distributed: bool) -> None:
    if distributed:
        import torch.distributed as dist

        dist.barrier()


def _run_stream(opts: RunOptions, items, out, open_out, process, skipped_path, bar, src) -> list:
    """Process ``(index, item)`` pairs into ``out``; returns the skipped :class:`Invalid`s."""
    from .readers import FastaError

    w = open_out(out)
    skipped: list[Invalid] = []
    seen = 0
    try:
        for chunk in batches((x for _, x in items), opts.chunk_size, opts.batch_nt):
            recs = []
            for x in chunk:
                seen += 1
                if isinstance(x, Invalid):
                    if not opts.skip_invalid:
                        raise FastaError(f"{x.message} (use --skip-invalid to skip such records)")
                    skipped.append(x)
                else:
                    recs.append(x)
            if recs:
                for result in process(recs):
                    w.write(result)
                    bar.update(0)  # alive inside long records
            bar.update(len(recs))
        if seen == 0:
            raise ValueError(f"{src}: no sequence records (empty input)")
        if skipped_path is not None:
            write_skipped(skipped_path, skipped)
        w.commit()
    except BaseException:
        w.abort()
        raise
    return skipped


def write_skipped(path: Path, skipped: list[Invalid]) -> None:
    """``OUT.skipped.tsv``: id, line, reason and source of each skipped record (none: removed)."""
    if not skipped:
        path.unlink(missing_ok=True)
        return
    text = "id\tline\treason\tsource\n" + "".join(
        f"{x.id}\t{x.line}\t{x.reason}\t{x.source}\n" for x in skipped
    )
    write_atomic(path, text)


def report_skipped(command: str, skipped: list[Invalid], where: str | None) -> None:
    """Say on stderr how many records were skipped and list the first ten."""
    if not skipped:
        return
    print(f"rnaernie {command}: skipped {len(skipped)} invalid record(s)"
          + (f" (listed in {where})" if where else ""), file=sys.stderr)  # fmt: skip
    for x in skipped[:10]:
        print(f"  {x.message}", file=sys.stderr)
    if len(skipped) > 10:
        print(f"  ... and {len(skipped) - 10} more", file=sys.stderr)


def run_sharded(opts: RunOptions, items: Iterable[Any], src: str, tags: list[str], open_out,
                process, desc: str, position=None, size: int = 0) -> int:  # fmt: skip
    """Stream ``items`` (records or :class:`Invalid`) through ``process`` (a chunk of records →
    results) into writers from ``open_out(path)``; sharded when ``opts.shard_size`` or the world
    size asks for it (see the module docstring), merged by rank 0. ``tags``: the extensions of
    the main file and its sidecars; ``position()`` / ``size``: bytes of the input read so far and
    in all, for the progress output. Returns the exit status."""
    out = opts.output or "-"
    rank, world = dist_env()
    shard_size = opts.shard_size or (DEFAULT_SHARD_SIZE if world > 1 else 0)
    bar = Progress(desc, opts.quiet, position, size)
    try:
        if not shard_size:
            if out != "-" and opts.resume and Path(out).is_file():
                logger.warning("%s exists: nothing to do (--resume)", out)
                return 0
            special = out == "-" or is_special(out)  # stdout, /dev/null, a FIFO: no sidecar
            sk = None if special else component_path(out, ".skipped.tsv")
            skipped = _run_stream(opts, enumerate(items), out, open_out, process, sk, bar, src)
            report_skipped(opts.command, skipped, str(sk) if sk else None)
            return 0
        if out == "-" or is_special(out):
            raise ValueError("sharded runs (--shard-size, WORLD_SIZE > 1) need --output FILE")
        if opts.chunk_size > shard_size or shard_size % opts.chunk_size:
            opts.chunk_size = max(d for d in range(1, min(shard_size, opts.chunk_size) + 1)
                                  if shard_size % d == 0)  # fmt: skip
        distributed = _dist_init(world)
        n_shards, skipped_all = 0, []
        for shard, group in iter_shards(items, shard_size):
            n_shards = shard + 1
            stem = str(part_stem(out, shard))
            if shard % world != rank or (opts.resume and Path(stem + tags[0]).is_file()):
                for _ in group:  # other ranks' shards (or finished ones): read past them
                    pass
                continue
            skipped_all += _run_stream(opts, group, stem + tags[0], open_out, process,
                                       Path(stem + ".skipped.tsv"), bar, src)  # fmt: skip
        if n_shards == 0:
            raise ValueError(f"{src}: no sequence records (empty input)")
        report_skipped(opts.command, skipped_all, "the part .skipped.tsv files")
        man = Manifest(n_shards, shard_size, tags, [".skipped.tsv"])
        if rank == 0:
            man.write(out)
        _barrier(distributed)
        if rank == 0:
            missing = man.missing(out)
            if missing:
                logger.warning(
                    "%d of %d parts are not finished yet (other ranks); run `rnaernie merge %s` "
                    "once they are", len(missing), n_shards, out,
                )  # fmt: skip
            else:
                merge_parts(out, keep_parts=opts.keep_parts)
                logger.info("merged %d parts into %s", n_shards, out)
        _barrier(distributed)
        return 0
    finally:
        bar.close()
