-- Accounts own sites. Passwords are argon2id PHC strings.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

-- A site: internal id, public key, the SHA-256 of its secret (the secret itself is never stored),
-- the webhook URL and its settings.
CREATE TABLE sites (
    id                   TEXT    PRIMARY KEY,
    account_id           INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                 TEXT    NOT NULL,
    site_key             TEXT    NOT NULL UNIQUE,
    secret_hash          BLOB    NOT NULL UNIQUE,
    webhook_url          TEXT    NOT NULL,
    enabled              INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    redirect_url         TEXT,
    allowed_origins      TEXT    NOT NULL DEFAULT '',
    challenge_count      INTEGER NOT NULL CHECK (challenge_count BETWEEN 1 AND 500),
    challenge_difficulty INTEGER NOT NULL CHECK (challenge_difficulty BETWEEN 1 AND 8),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX sites_by_account ON sites (account_id);

-- Bumped by every change to `sites`, whichever process makes it, so a running server can notice
-- changes made by the CLI with one cheap read.
CREATE TABLE sites_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO sites_version (id, version) VALUES (1, 0);
CREATE TRIGGER sites_version_insert AFTER INSERT ON sites
BEGIN UPDATE sites_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER sites_version_update AFTER UPDATE ON sites
BEGIN UPDATE sites_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER sites_version_delete AFTER DELETE ON sites
BEGIN UPDATE sites_version SET version = version + 1 WHERE id = 1; END;

-- The token MAC key, generated on first start unless configured (SPEC §2).
CREATE TABLE server_key (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key        BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Challenges spent by a redeem attempt, kept until they would have expired anyway.
CREATE TABLE spent_challenges (
    id         BLOB    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX spent_challenges_by_expiry ON spent_challenges (expires_at);

-- Verification sessions whose token was consumed by siteverify or a form post (single use).
CREATE TABLE redeemed_tokens (
    session_id TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX redeemed_tokens_by_expiry ON redeemed_tokens (expires_at);
