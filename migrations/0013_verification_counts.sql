-- What Caputchin's site statistics report (SPEC §12, the reference's §9.7), per site and UTC
-- hour beside the challenges issued and solved: failed redeems, verification tokens accepted
-- and refused (by siteverify or the form endpoint), and the Cap endpoints' refusals by rate
-- limit and by origin (the form endpoint's are its rejections). Counted in memory and written
-- by the batch writer, like the challenge counts; the hours already written count zero of each.
ALTER TABLE challenge_hourly ADD COLUMN redeem_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE challenge_hourly ADD COLUMN tokens_accepted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE challenge_hourly ADD COLUMN tokens_refused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE challenge_hourly ADD COLUMN rate_limited INTEGER NOT NULL DEFAULT 0;
ALTER TABLE challenge_hourly ADD COLUMN origin_refused INTEGER NOT NULL DEFAULT 0;
