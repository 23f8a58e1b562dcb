-- What a job's handler would otherwise read back, given to it by whoever queued it: a
-- `judge_code` job carries the generations of its stored batch as the JSON text they were
-- stored from, so judging them reads no event again (writing 2 KB of JSONB out as text
-- was most of the database's work per code judgement). Kept out of line and uncompressed:
-- it is read once, whole, and passed on as it is; dropped when the job ends.
ALTER TABLE jobs ADD COLUMN attachment TEXT;
ALTER TABLE jobs ALTER COLUMN attachment SET STORAGE EXTERNAL;
