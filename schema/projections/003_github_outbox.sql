-- The GitHub outbox (docs/api.md "GitHub"): what a pending operation needs to run after a restart, and
-- what a client sees of its progress.
--   idempotency_key  the client's Idempotency-Key, or the operation id; one key, one operation
--   trace_id         the trace of the request, where the outbox records its calls to GitHub
--   requested_seq    the seq of github.requested: the outbox runs operations in this order
--   next_attempt_at  when a pending operation's next attempt is due, after a transient failure
--   error            for a pending operation, the last transient failure; for a failed one, why
ALTER TABLE github_operations ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
ALTER TABLE github_operations ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
ALTER TABLE github_operations ADD COLUMN requested_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE github_operations ADD COLUMN next_attempt_at INTEGER;
CREATE INDEX github_operations_by_key ON github_operations (idempotency_key);
CREATE INDEX github_operations_by_request ON github_operations (requested_seq);
