-- The one durable job table for every kind of background work (judge, report run,
-- delivery, housekeeping), and what the judge runner counts.
--
-- * jobs: kind + natural unique key (NULL for work that is never deduplicated, such as a
--   manual judge run); `run_after` is when somebody should next look at the job: for a
--   pending job when it becomes due, for a running one when its lease (`locked_until`)
--   lapses. One partial index on it serves every claim. `lease_token` names the holder:
--   renew, finish and release only match the holder's token.
-- * evaluation_hourly_runs: the hourly cap's counters (spec section 9), reserved in the
--   ingestion transaction under the row's lock, and the matches skipped past the cap.
-- * evaluations.max_runs_per_hour: the cap itself (NULL = none).
-- * summary_flights.lease_token: a summary claim, like a job's lease, belongs to its holder.

CREATE TABLE jobs (
    id              UUID PRIMARY KEY,
    project_id      BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    unique_key      TEXT,
    payload         JSONB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_after       TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_until    TIMESTAMPTZ,
    lease_token     UUID,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    CONSTRAINT jobs_lease_only_while_running CHECK ((state = 'running') = (lease_token IS NOT NULL))
);
CREATE UNIQUE INDEX jobs_kind_unique_key ON jobs (kind, unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs (run_after) WHERE state IN ('pending', 'running');
-- Housekeeping: finished jobs by age.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE evaluation_hourly_runs (
    evaluation_id   UUID NOT NULL,
    hour            TIMESTAMPTZ NOT NULL,
    project_id      BIGINT NOT NULL,
    queued          INTEGER NOT NULL DEFAULT 0 CHECK (queued >= 0),
    skipped         INTEGER NOT NULL DEFAULT 0 CHECK (skipped >= 0),
    PRIMARY KEY (evaluation_id, hour)
);
CREATE INDEX evaluation_hourly_runs_project ON evaluation_hourly_runs (project_id, evaluation_id, hour);

ALTER TABLE evaluations
    ADD COLUMN max_runs_per_hour INTEGER CHECK (max_runs_per_hour BETWEEN 1 AND 1000000);

ALTER TABLE summary_flights ADD COLUMN lease_token UUID;
