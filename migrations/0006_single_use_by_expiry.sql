-- Single-use records keyed by expiry first. New records expire later than almost every record
-- already there, so each insert lands at the right edge of one B-tree (a batch of them dirties a
-- page or two instead of one page per record, plus an expiry index), and purging the expired ones
-- is a range delete from the left edge. The id stays unique on its own: a challenge or session id
-- is random and carried with its one expiry inside a MAC-signed token.
CREATE TABLE spent_challenges_new (
    expires_at INTEGER NOT NULL,
    id         BLOB    NOT NULL,
    PRIMARY KEY (expires_at, id)
) WITHOUT ROWID;
INSERT INTO spent_challenges_new (expires_at, id) SELECT expires_at, id FROM spent_challenges;
DROP TABLE spent_challenges;
ALTER TABLE spent_challenges_new RENAME TO spent_challenges;

CREATE TABLE redeemed_tokens_new (
    expires_at INTEGER NOT NULL,
    session_id TEXT    NOT NULL,
    PRIMARY KEY (expires_at, session_id)
) WITHOUT ROWID;
INSERT INTO redeemed_tokens_new (expires_at, session_id)
SELECT expires_at, session_id FROM redeemed_tokens;
DROP TABLE redeemed_tokens;
ALTER TABLE redeemed_tokens_new RENAME TO redeemed_tokens;
