-- Ranges of the log recorded as lost (log.loss events); PostgreSQL variant.
CREATE TABLE log_losses (
    seq         bigint PRIMARY KEY,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    segment     text NOT NULL,
    byte_offset bigint NOT NULL,
    length      bigint NOT NULL,
    side_file   text,
    reason      text NOT NULL,
    recorded_at bigint NOT NULL
);
