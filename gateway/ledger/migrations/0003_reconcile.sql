-- 0003: reconciliation's state (the watermark) and the lookups a pass makes.
--
-- One row per reconciler (name 'calls'): the created_at up to which Retreaver's calls
-- have been read and matched. The next pass reads from watermark minus the overlap
-- window, so a call that became visible late is still seen, and a restart resumes here
-- instead of re-reading everything. Written only by the replica holding the advisory
-- lock of the pass.
CREATE TABLE IF NOT EXISTS ledger_reconcile_state (
    name text PRIMARY KEY,
    watermark timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A pass finds reservations still waiting for their outcome...
CREATE INDEX IF NOT EXISTS ledger_events_open_reservations ON ledger_events (at)
    WHERE outcome = 'reserved' AND route = '/rtbs.json' AND call_outcome IS NULL;
CREATE INDEX IF NOT EXISTS ledger_events_open_by_id ON ledger_events (request_id)
    WHERE outcome = 'reserved' AND route = '/rtbs.json' AND call_outcome IS NULL;
-- ...and which calls of the overlap window an earlier pass already matched.
CREATE INDEX IF NOT EXISTS ledger_events_call_uuid ON ledger_events (call_uuid)
    WHERE call_uuid IS NOT NULL;
