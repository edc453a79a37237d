-- Per-site verifier (SPEC §8): the built-in issuer by default, or a remote siteverify-style
-- service. The verifier's secret is stored encrypted (ChaCha20-Poly1305 under a key derived from
-- the server key), because it must be sent to the provider; it is never shown again.
ALTER TABLE sites ADD COLUMN verifier TEXT NOT NULL DEFAULT 'builtin'
    CHECK (verifier IN ('builtin', 'caputchin', 'turnstile', 'hcaptcha', 'recaptcha'));
ALTER TABLE sites ADD COLUMN verifier_secret BLOB;
ALTER TABLE sites ADD COLUMN verifier_url TEXT;
ALTER TABLE sites ADD COLUMN verifier_sitekey TEXT;
