-- Personal access tokens of the management API (SPEC §12). Only the SHA-256 of a token is kept
-- (tokens carry 256 random bits, so a fast hash cannot be brute-forced and lets a request find its
-- token by the hash); `prefix` is its first 16 characters, shown in lists. `kind` is the type the
-- Caputchin API was asked for (`troop` or `account`), echoed back; it grants nothing by itself.
-- A token bound to a site goes with that site.
CREATE TABLE access_tokens (
    id           TEXT    PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('troop', 'account')),
    scope        TEXT    NOT NULL CHECK (scope IN ('read', 'write')),
    site_id      TEXT    REFERENCES sites (id) ON DELETE CASCADE,
    token_hash   BLOB    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX access_tokens_by_account ON access_tokens (account_id);
