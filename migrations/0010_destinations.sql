-- Statistics per destination (SPEC §10): every delivery row and every delivery rollup names the
-- destination it counts, `webhook` or `email`. The rows already recorded were all webhook
-- deliveries, so they keep their counts as webhook rows.
ALTER TABLE deliveries ADD COLUMN destination TEXT NOT NULL DEFAULT 'webhook';

-- The rollups' keys gain the destination, after the time so that (site_id, hour_ms) stays the
-- prefix the first-hour probe reads. SQLite cannot change a primary key in place: each table is
-- recreated and its rows copied.
CREATE TABLE delivery_hourly_new (
    site_id     TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hour_ms     INTEGER NOT NULL,
    destination TEXT    NOT NULL DEFAULT 'webhook',
    is_test     INTEGER NOT NULL CHECK (is_test IN (0, 1)),
    outcome     TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (site_id, hour_ms, destination, is_test, outcome)
) WITHOUT ROWID;
INSERT INTO delivery_hourly_new (site_id, hour_ms, destination, is_test, outcome, count)
SELECT site_id, hour_ms, 'webhook', is_test, outcome, count FROM delivery_hourly;
DROP TABLE delivery_hourly;
ALTER TABLE delivery_hourly_new RENAME TO delivery_hourly;

CREATE TABLE delivery_daily_new (
    site_id     TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_ms      INTEGER NOT NULL,
    destination TEXT    NOT NULL DEFAULT 'webhook',
    is_test     INTEGER NOT NULL CHECK (is_test IN (0, 1)),
    outcome     TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (site_id, day_ms, destination, is_test, outcome)
) WITHOUT ROWID;
INSERT INTO delivery_daily_new (site_id, day_ms, destination, is_test, outcome, count)
SELECT site_id, day_ms, 'webhook', is_test, outcome, count FROM delivery_daily;
DROP TABLE delivery_daily;
ALTER TABLE delivery_daily_new RENAME TO delivery_daily;

CREATE TABLE latency_daily_new (
    site_id     TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_ms      INTEGER NOT NULL,
    destination TEXT    NOT NULL DEFAULT 'webhook',
    bucket      INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (site_id, day_ms, destination, bucket)
) WITHOUT ROWID;
INSERT INTO latency_daily_new (site_id, day_ms, destination, bucket, count)
SELECT site_id, day_ms, 'webhook', bucket, count FROM latency_daily;
DROP TABLE latency_daily;
ALTER TABLE latency_daily_new RENAME TO latency_daily;

CREATE TABLE latency_total_new (
    site_id     TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    destination TEXT    NOT NULL DEFAULT 'webhook',
    bucket      INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (site_id, destination, bucket)
) WITHOUT ROWID;
INSERT INTO latency_total_new (site_id, destination, bucket, count)
SELECT site_id, 'webhook', bucket, count FROM latency_total;
DROP TABLE latency_total;
ALTER TABLE latency_total_new RENAME TO latency_total;
