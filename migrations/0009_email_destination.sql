-- The email destination (SPEC §10): a site's addresses, newline-separated (one to five; empty
-- for none). A site has at least one destination: a site with only email stores an empty
-- `webhook_url`, which means "no webhook".
ALTER TABLE sites ADD COLUMN email_to TEXT NOT NULL DEFAULT '';
