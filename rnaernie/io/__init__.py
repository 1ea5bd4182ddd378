"""Input and output: the one sequence reader, the opener for plain/gzip/stdin, writers by
extension, and the sharded runner. Imports nothing else of rnaernie (a leaf layer)."""

from __future__ import annotations

from .readers import FastaError, Invalid, Record, iter_records, open_binary, open_text, read_fasta
from .writers import check_output, component_path, write_atomic

__all__ = ["FastaError", "Invalid", "Record", "check_output", "component_path", "iter_records",
           "open_binary", "open_text", "read_fasta", "write_atomic"]  # fmt: skip
