-- Signed checkpoints of the log's hash chain (the log.checkpoint events; docs/log-format.md,
-- "Signed checkpoints"), one row per event:
--   record_seq           the log.checkpoint event's own seq
--   seq, chain           what it attests: the chain value (64 hex digits) after seq
--   at                   when it was made (ns since the Unix epoch; what was signed)
--   key_id, public_key   the key that signed it (public_key in hex)
--   next_public_key      the key it announces for the checkpoints after it (a rotation), or NULL
--   signature            Ed25519, 128 hex digits
CREATE TABLE log_checkpoints (
    record_seq INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    chain TEXT NOT NULL,
    at INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    next_public_key TEXT,
    signature TEXT NOT NULL
);
-- GET /api/log/proof?seq=N: the first checkpoint that attests N.
CREATE INDEX log_checkpoints_by_seq ON log_checkpoints (seq);
