-- 0002: publisher analytics' rollups, one row per hour × publisher × sub-ID.
--
-- Kept by the writer in the same transaction as the events it inserts (counting only
-- rows actually inserted, so a retried batch never counts twice); reconciliation adds
-- its columns (calls .. payout_earned). '' stands for a missing publisher or sub-ID (a
-- primary key cannot hold NULL). upstream_ms_hist counts reserved pings per time-to-bid
-- bucket (gateway/ledger/rollups.py BUCKETS_MS, plus one bucket past the last bound).
CREATE TABLE IF NOT EXISTS ledger_rollups (
    hour timestamptz NOT NULL,
    publisher_id text NOT NULL DEFAULT '',
    sub_id text NOT NULL DEFAULT '',
    pings bigint NOT NULL DEFAULT 0,
    invalid bigint NOT NULL DEFAULT 0,
    reserved bigint NOT NULL DEFAULT 0,
    no_bid bigint NOT NULL DEFAULT 0,
    repeat bigint NOT NULL DEFAULT 0,
    errors bigint NOT NULL DEFAULT 0,
    confirmed bigint NOT NULL DEFAULT 0,
    payout_offered double precision NOT NULL DEFAULT 0,
    upstream_ms_hist bigint[] NOT NULL DEFAULT '{}',
    calls bigint NOT NULL DEFAULT 0,
    called_in_time bigint NOT NULL DEFAULT 0,
    confirmed_not_called bigint NOT NULL DEFAULT 0,
    converted bigint NOT NULL DEFAULT 0,
    payout_earned double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, publisher_id, sub_id)
);
