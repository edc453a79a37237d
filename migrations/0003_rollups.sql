-- Rollups that let statistics answer any range without scanning `deliveries` (SPEC §6). They are
-- updated in the same transaction as each delivery row, and backfilled below from the rows an
-- older database already holds.

-- Deliveries counted per site, UTC hour (Today, Yesterday) or UTC day (longer ranges), real or
-- test, and outcome category.
CREATE TABLE delivery_hourly (
    site_id TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hour_ms INTEGER NOT NULL,
    is_test INTEGER NOT NULL CHECK (is_test IN (0, 1)),
    outcome TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (site_id, hour_ms, is_test, outcome)
) WITHOUT ROWID;

CREATE TABLE delivery_daily (
    site_id TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_ms  INTEGER NOT NULL,
    is_test INTEGER NOT NULL CHECK (is_test IN (0, 1)),
    outcome TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (site_id, day_ms, is_test, outcome)
) WITHOUT ROWID;

-- Rejected submissions per site, UTC day and reason: the daily sums of `rejections` (hourly).
CREATE TABLE rejections_daily (
    site_id TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_ms  INTEGER NOT NULL,
    reason  TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (site_id, day_ms, reason)
) WITHOUT ROWID;

-- A latency histogram of real deliveries (delivered or failed) per site and UTC day. `bucket` is
-- `stats::latency_bucket(latency_ms)`: exact below 100 ms, then steps of at most 2.5 %.
CREATE TABLE latency_daily (
    site_id TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_ms  INTEGER NOT NULL,
    bucket  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (site_id, day_ms, bucket)
) WITHOUT ROWID;

-- The same histogram over all time, so "All time" reads one row per bucket however long the
-- history.
CREATE TABLE latency_total (
    site_id TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    bucket  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (site_id, bucket)
) WITHOUT ROWID;

-- Backfill. The lower bounds of the geometric buckets follow the same integer recurrence as
-- `stats::latency_bucket`: bucket 100 starts at 100 ms and each next one at `lo + lo / 40`;
-- buckets 100..=819 (the last one is open-ended).
CREATE TEMP TABLE latency_bucket_bounds (
    lo_ms  INTEGER PRIMARY KEY,
    bucket INTEGER NOT NULL
);
WITH RECURSIVE bounds (bucket, lo_ms) AS (
    SELECT 100, 100
    UNION ALL
    SELECT bucket + 1, lo_ms + lo_ms / 40 FROM bounds WHERE bucket < 819
)
INSERT INTO latency_bucket_bounds (lo_ms, bucket) SELECT lo_ms, bucket FROM bounds;

INSERT INTO delivery_hourly (site_id, hour_ms, is_test, outcome, count)
SELECT site_id, at_ms - ((at_ms % 3600000) + 3600000) % 3600000, is_test, outcome, COUNT(*)
FROM deliveries
GROUP BY 1, 2, 3, 4;

INSERT INTO latency_daily (site_id, day_ms, bucket, count)
SELECT site_id, day_ms, bucket, COUNT(*)
FROM (
    SELECT site_id,
           at_ms - ((at_ms % 86400000) + 86400000) % 86400000 AS day_ms,
           CASE
               WHEN latency_ms < 100 THEN MAX(latency_ms, 0)
               ELSE (SELECT b.bucket FROM latency_bucket_bounds b
                     WHERE b.lo_ms <= d.latency_ms ORDER BY b.lo_ms DESC LIMIT 1)
           END AS bucket
    FROM deliveries d
    WHERE is_test = 0
)
GROUP BY 1, 2, 3;

DROP TABLE temp.latency_bucket_bounds;

INSERT INTO delivery_daily (site_id, day_ms, is_test, outcome, count)
SELECT site_id, hour_ms - ((hour_ms % 86400000) + 86400000) % 86400000, is_test, outcome,
       SUM(count)
FROM delivery_hourly
GROUP BY 1, 2, 3, 4;

INSERT INTO latency_total (site_id, bucket, count)
SELECT site_id, bucket, SUM(count) FROM latency_daily GROUP BY 1, 2;

INSERT INTO rejections_daily (site_id, day_ms, reason, count)
SELECT site_id, hour_ms - ((hour_ms % 86400000) + 86400000) % 86400000, reason, SUM(count)
FROM rejections
GROUP BY 1, 2, 3;
