-- A claim asks for each kind it runs separately (one LIMITed scan per kind); with the due
-- jobs indexed by time alone, asking for a kind with nothing due walked every due job of
-- the other kinds (100,000 queued judge_code jobs made each claim read them all, once per
-- idle kind). Leading with the kind makes each of those scans read only its own jobs.
CREATE INDEX jobs_due_by_kind ON jobs (kind, run_after) WHERE state IN ('pending', 'running');
DROP INDEX jobs_due;
