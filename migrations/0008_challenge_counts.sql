-- Challenges issued and solved per site and UTC hour (Turnstile-style counts). Counted in memory
-- and written by the batch writer; issuing a challenge does no I/O of its own.
CREATE TABLE challenge_hourly (
    site_id TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hour_ms INTEGER NOT NULL,
    issued  INTEGER NOT NULL,
    solved  INTEGER NOT NULL,
    PRIMARY KEY (site_id, hour_ms)
) WITHOUT ROWID;
