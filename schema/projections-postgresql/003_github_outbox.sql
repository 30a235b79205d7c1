-- The GitHub outbox (PostgreSQL variant of schema/projections/003_github_outbox.sql).
ALTER TABLE github_operations ADD COLUMN idempotency_key text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE github_operations ADD COLUMN trace_id text NOT NULL DEFAULT '';
ALTER TABLE github_operations ADD COLUMN requested_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE github_operations ADD COLUMN next_attempt_at bigint;
CREATE INDEX github_operations_by_key ON github_operations (idempotency_key, requested_seq);
CREATE INDEX github_operations_by_request ON github_operations (requested_seq);
