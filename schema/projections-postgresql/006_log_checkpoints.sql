-- Signed checkpoints of the log (log.checkpoint events); PostgreSQL variant.
CREATE TABLE log_checkpoints (
    record_seq      bigint PRIMARY KEY,
    seq             bigint NOT NULL,
    chain           text NOT NULL,
    at              bigint NOT NULL,
    key_id          text NOT NULL,
    public_key      text NOT NULL,
    next_public_key text,
    signature       text NOT NULL
);
CREATE INDEX log_checkpoints_by_seq ON log_checkpoints (seq, record_seq);
