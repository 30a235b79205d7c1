-- Ranges of the log whose loss a repair accepted (the log.loss events; docs/operations.md,
-- "When the log has lost data"), one row per event:
--   first_seq, last_seq  the seqs lost (none when first_seq > last_seq)
--   segment, byte_offset where the loss was found; length: bytes moved into side_file
--   reason               what recovery found; recorded_at: when the repair recorded it (ns)
--   seq                  the log.loss event's own seq
CREATE TABLE log_losses (
    seq INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    segment TEXT NOT NULL,
    byte_offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    side_file TEXT,
    reason TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
);
