-- 0001: the ping ledger's events, partitioned by day (UTC).
--
-- One row per request (leg 0) or auction leg (1..n); (day, request_id, leg) is the key,
-- so a batch written twice (a retry after a crash) inserts each event once. Daily
-- partitions are created ahead by the gateway and dropped after
-- GATEWAY_LEDGER_RETENTION_DAYS. The reconciliation columns (call_uuid, call_outcome,
-- converted, payout_earned, reconciled_at) are filled later on reservation events.
CREATE TABLE IF NOT EXISTS ledger_events (
    day date NOT NULL,
    at timestamptz NOT NULL,
    request_id text NOT NULL,
    leg smallint NOT NULL DEFAULT 0,
    route text NOT NULL,
    status smallint NOT NULL,
    outcome text NOT NULL,
    publisher_id text,
    sub_id text,
    key_id text,
    caller text,
    reservation_uuid text,
    payout double precision,
    seconds integer,
    inbound_number text,
    expires_at text,
    duration_ms real,
    upstream_ms real,
    destination text,
    auction text,
    call_uuid text,
    call_outcome text,
    converted boolean,
    payout_earned double precision,
    reconciled_at timestamptz,
    PRIMARY KEY (day, request_id, leg)
) PARTITION BY RANGE (day);

-- The export and every time window.
CREATE INDEX IF NOT EXISTS ledger_events_at ON ledger_events (at);
-- Analytics per publisher (and sub-ID) over time.
CREATE INDEX IF NOT EXISTS ledger_events_publisher ON ledger_events (publisher_id, sub_id, at);
-- Confirmations and reconciliation find a reservation by its uuid.
CREATE INDEX IF NOT EXISTS ledger_events_reservation ON ledger_events (reservation_uuid)
    WHERE reservation_uuid IS NOT NULL;
-- Reconciliation matches a call by caller digest and the number it called.
CREATE INDEX IF NOT EXISTS ledger_events_caller ON ledger_events (caller, inbound_number, at)
    WHERE caller IS NOT NULL;
