"""What segment dictionaries save on a real data directory (docs/benchmarks.md P8): reads every
batch of every segment (with scripts/verify-log.py's reader), and compresses each batch's
payload again with LZ4 alone, as the log did before dictionaries (codec 1, or stored when that
is not smaller). Prints the directory's log bytes as written and as they would be without
dictionaries, batch for batch the same group commits. Needs the `lz4` module:

    python3 -m venv .build/plot-venv && .build/plot-venv/bin/pip install lz4
    .build/plot-venv/bin/python scripts/p8-dictionary-effect.py DATA_DIR [DUMP.jsonl]

With DUMP.jsonl (`custody log dump` of the same directory), also the JSON's size against both.
"""
import importlib.util
import os
import struct
import sys

import lz4.block

spec = importlib.util.spec_from_file_location("verify_log", os.path.join(os.path.dirname(__file__), "verify-log.py"))
verify = importlib.util.module_from_spec(spec)
spec.loader.exec_module(verify)

directory = sys.argv[1]
segments = sorted(f for f in os.listdir(directory) if f.endswith(".log"))
written = without = batches = dictionary_batches = records = 0
for name in segments:
    path = os.path.join(directory, name)
    data = open(path, "rb").read()
    dictionary = verify.segment_dictionary(path)
    if dictionary is not None:
        written += 16 + len(dictionary)
    offset = 0
    while offset + 48 <= len(data):
        magic, version, codec, flags, first, count, ulen, t0, t1, slen, crc = struct.unpack("<4sBBHQIIqqII", data[offset:offset + 48])
        trailer = 32 if version >= 2 else 0
        stored = data[offset + 48:offset + 48 + slen]
        payload = stored if codec == 0 else verify.lz4_block(stored, ulen, dictionary if codec == 2 else b"")
        alone = len(lz4.block.compress(payload, store_size=False))
        written += 48 + slen + trailer
        without += 48 + min(alone, ulen) + trailer
        batches += 1
        records += count
        dictionary_batches += codec == 2
        offset += 48 + slen + trailer
print("%d segments, %d batches (%d against a dictionary), %d records: %.2f events per batch" % (
    len(segments), batches, dictionary_batches, records, records / max(batches, 1)))
print("  as written (segments and dictionaries): %d bytes" % written)
print("  LZ4 per batch alone, the same batches:   %d bytes (%.2fx the written size)" % (without, without / written))
if len(sys.argv) > 2:
    dump = os.path.getsize(sys.argv[2])
    print("  the events' JSON (%s): %d bytes: %.2fx the written size, %.2fx without dictionaries" % (
        os.path.basename(sys.argv[2]), dump, dump / written, dump / without))
