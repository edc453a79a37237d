-- One row per delivery, real or test: when, which site, the outcome category, the HTTP status and
-- the latency. Never form contents, never the webhook URL.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY,
    site_id     TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    at_ms       INTEGER NOT NULL,
    is_test     INTEGER NOT NULL CHECK (is_test IN (0, 1)),
    outcome     TEXT    NOT NULL,
    http_status INTEGER,
    latency_ms  INTEGER NOT NULL
);
CREATE INDEX deliveries_by_site_time ON deliveries (site_id, at_ms);

-- Rejected submissions, counted per site, hour and reason (SPEC §3's error codes).
CREATE TABLE rejections (
    site_id TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hour_ms INTEGER NOT NULL,
    reason  TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (site_id, hour_ms, reason)
) WITHOUT ROWID;
