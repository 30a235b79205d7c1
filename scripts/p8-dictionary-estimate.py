"""Estimates what an LZ4 dictionary would do for the log's small batches (docs/benchmarks.md P8):
reads `custody log dump` output (JSON lines), forms batches of BATCH events as the group commits
of `custody demo` traffic do, and compresses 300 sampled batches with the `lz4` command, alone
and against a dictionary of the 64 KiB of events before each batch.

    custody log dump --data-dir DIR > dump.jsonl
    python3 scripts/p8-dictionary-estimate.py dump.jsonl [BATCH]
"""
import os
import random
import subprocess
import sys
import tempfile

lines = open(sys.argv[1], "rb").read().split(b"\n")
size = int(sys.argv[2]) if len(sys.argv) > 2 else 4
batches = [b"\n".join(lines[i : i + size]) for i in range(0, len(lines) - size, size)]
random.seed(1)
sample = random.sample(range(200, len(batches)), min(300, len(batches) - 200))
raw = alone = with_dictionary = 0
with tempfile.TemporaryDirectory() as directory:
    batch_file, dictionary_file = os.path.join(directory, "batch"), os.path.join(directory, "dictionary")
    for i in sample:
        open(batch_file, "wb").write(batches[i])
        open(dictionary_file, "wb").write(b"\n".join(batches[max(0, i - 200) : i])[-65536:])
        # Frame overhead (15 bytes) taken off: the log stores bare LZ4 blocks.
        plain = subprocess.run(["lz4", "-c", "-q", "-BD", batch_file], capture_output=True, check=True).stdout
        dicted = subprocess.run(["lz4", "-c", "-q", "-D", dictionary_file, batch_file], capture_output=True, check=True).stdout
        raw += len(batches[i])
        alone += len(plain) - 15
        with_dictionary += len(dicted) - 15
print(f"{len(sample)} batches of {size} events, {raw} bytes of JSON")
print(f"  LZ4 per batch:               {raw / alone:.2f}x")
print(f"  LZ4 with a 64 KiB dictionary: {raw / with_dictionary:.2f}x")
