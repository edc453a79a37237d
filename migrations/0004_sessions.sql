-- Dashboard sessions. Only the SHA-256 of the session id (the cookie's value) is stored, so the
-- database alone cannot be used to log in.
CREATE TABLE sessions (
    id_hash    BLOB    PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
