-- The management API (SPEC §12, the Caputchin reference's §9).
--
-- A site's `disabled` switch beside forwarding's `enabled` (§9.2): a disabled site refuses
-- challenges, form posts and siteverify. Every existing site stays as it was: not disabled.
ALTER TABLE sites ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));

-- Hosted verification's own times (§9.3): the first and the latest save of its settings through
-- the API; for the sites made before the API (by the CLI or the dashboard), the site's own times.
ALTER TABLE sites ADD COLUMN hosted_created_at INTEGER;
ALTER TABLE sites ADD COLUMN hosted_updated_at INTEGER;
UPDATE sites SET hosted_created_at = created_at, hosted_updated_at = updated_at;

-- What an API client sent, as it spelled it, beside the normalised values the site uses: the
-- answers echo it byte for byte while it still means the stored value (Terraform's rule).
-- `allowed_origins_as_sent` is a JSON array of strings.
ALTER TABLE sites ADD COLUMN webhook_url_as_sent TEXT;
ALTER TABLE sites ADD COLUMN email_to_as_sent TEXT;
ALTER TABLE sites ADD COLUMN allowed_origins_as_sent TEXT;

-- The account's troop id (§9.1): one troop per account, with a stable random id.
ALTER TABLE accounts ADD COLUMN troop_id TEXT;
UPDATE accounts SET troop_id = 'troop_' || lower(hex(randomblob(8)));
CREATE UNIQUE INDEX accounts_by_troop_id ON accounts (troop_id);
