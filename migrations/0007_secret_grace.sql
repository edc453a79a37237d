-- Secret rotation with a grace period: the secret replaced by a rotation keeps verifying until
-- `previous_secret_until` (epoch ms). Only its SHA-256 is kept, like the current one's.
ALTER TABLE sites ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE sites ADD COLUMN previous_secret_until INTEGER;
