#!/usr/bin/env python3
"""Verify a Custody data directory's hash chain without Custody's code.

Written from docs/log-format.md alone ("Batch", "Segment dictionaries", "The hash chain"): reads
every segment file, checks each batch's CRC-32C, decompresses LZ4 payloads (the `lz4` module when
installed; stored batches need nothing; codec 2 batches against the segment's `.dict` file),
recomputes chain(n) = SHA-256(chain(n-1) || seq as u64 LE || record bytes)
from 32 zero bytes, and compares it with the value each format-2 batch stores after its payload.
Checks receipts given as SEQ:HEX. Exits 0 when everything holds.

    scripts/verify-log.py DATA_DIR [--receipt SEQ:HEX ...]
"""
import hashlib
import json
import os
import struct
import sys

POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def lz4_block(data, size, dictionary=b""):
    try:
        import lz4.block
        return lz4.block.decompress(data, uncompressed_size=size, dict=dictionary)
    except ImportError:
        pass
    out = bytearray(dictionary)  # the LZ4 block format, by hand; matches may reach into the dictionary
    i = 0
    while i < len(data):
        token = data[i]; i += 1
        n = token >> 4
        if n == 15:
            while True:
                b = data[i]; i += 1; n += b
                if b != 255: break
        out += data[i:i + n]; i += n
        if i >= len(data): break
        offset = data[i] | data[i + 1] << 8; i += 2
        m = token & 15
        if m == 15:
            while True:
                b = data[i]; i += 1; m += b
                if b != 255: break
        m += 4
        for _ in range(m):
            out.append(out[-offset])
    return bytes(out[len(dictionary):])


def segment_dictionary(path):
    """The dictionary in a segment's .dict file (docs/log-format.md, "Segment dictionaries"):
    None when there is none, raises ValueError when it is damaged."""
    path = path[:-len(".log")] + ".dict"
    if not os.path.exists(path):
        return None
    data = open(path, "rb").read()
    if len(data) < 16 or data[0:4] != b"CDCT" or data[4] != 1 or data[5:8] != b"\0\0\0":
        raise ValueError("%s: not a dictionary file" % os.path.basename(path))
    length, crc = struct.unpack_from("<II", data, 8)
    if len(data) != 16 + length or crc32c(data[16:], crc32c(data[:12])) != crc:
        raise ValueError("%s: damaged dictionary" % os.path.basename(path))
    return data[16:]


def main(argv):
    directory = argv[1]
    receipts = {}
    for i, a in enumerate(argv):
        if a == "--receipt":
            seq, hexvalue = argv[i + 1].split(":")
            receipts[int(seq)] = hexvalue.lower()
    problems = []
    chain = None
    expected_seq = None
    records = 0
    dictionary_batches = 0
    segments = sorted(f for f in os.listdir(directory) if f.endswith(".log"))
    # After retention deleted the oldest segments, the chain starts from the value
    # retention.json records before the first segment left.
    retained = os.path.join(directory, "retention.json")
    if segments and int(segments[0][:20]) > 1 and os.path.exists(retained):
        starts = json.load(open(retained)).get("chain_before", {})
        before = starts.get(str(int(segments[0][:20])))
        if before:
            chain = bytes.fromhex(before)
    for name in segments:
        data = open(os.path.join(directory, name), "rb").read()
        try:
            dictionary = segment_dictionary(os.path.join(directory, name))
        except ValueError as error:
            problems.append(str(error))
            dictionary = None
        offset = 0
        while offset + 48 <= len(data):
            header = data[offset:offset + 48]
            magic, version, codec, flags, first, count, ulen, t0, t1, slen, crc = struct.unpack("<4sBBHQIIqqII", header)
            trailer = 32 if version >= 2 else 0
            end = offset + 48 + slen + trailer
            if magic != b"CBAT" or end > len(data) or crc32c(data[offset + 48:end], crc32c(header[:44])) != crc:
                problems.append("%s byte %d: not a valid batch" % (name, offset))
                break
            if expected_seq is not None and first != expected_seq:
                problems.append("%s byte %d: batch starts at seq %d, expected %d" % (name, offset, first, expected_seq))
            stored = data[offset + 48:offset + 48 + slen]
            if codec == 2 and dictionary is None:
                problems.append("%s byte %d: compressed against a dictionary the segment does not have" % (name, offset))
                break
            payload = lz4_block(stored, ulen) if codec == 1 else lz4_block(stored, ulen, dictionary) if codec == 2 else stored
            if len(payload) != ulen:
                problems.append("%s byte %d: the payload does not decompress to %d bytes" % (name, offset, ulen))
                break
            p = 0
            value = chain if chain is not None else bytes(32)
            for k in range(count):
                length, _ = struct.unpack_from("<Iq", payload, p)
                record = payload[p + 12:p + 12 + length]
                p += 12 + length
                value = hashlib.sha256(value + struct.pack("<Q", first + k) + record).digest()
                if first + k in receipts and receipts.pop(first + k) != value.hex():
                    problems.append("receipt of seq %d does not hold" % (first + k))
            records += count
            dictionary_batches += codec == 2
            if version >= 2:
                if value != data[end - 32:end]:
                    problems.append("%s byte %d seqs %d-%d: hash chain mismatch" % (name, offset, first, first + count - 1))
                chain = data[end - 32:end]
            elif chain is not None:
                problems.append("%s byte %d: a batch without the chain after the chain started" % (name, offset))
            expected_seq = first + count
            offset = end
    for seq in receipts:
        problems.append("receipt of seq %d: the log does not reach it" % seq)
    for problem in problems:
        print("DAMAGE: " + problem)
    print("%d segments, %d records (%d batches compressed against a dictionary), chain head %s: %s" % (
        len(segments), records, dictionary_batches, chain.hex() if chain else "none",
        "clean" if not problems else "%d problem(s)" % len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
