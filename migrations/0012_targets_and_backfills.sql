-- Evaluations of whole traces and sessions, backfills over the past, and the reasons an
-- evaluation stopped by itself (spec sections 4.1-4.3).
--
-- * evaluations.target / target_config: what one judgement covers; target_config is null
--   for generations.
-- * evaluations.status_reason_detail: the provider's own words behind status_reason.
-- * evaluations.rate_limited_since: since when every judge job of it that ended ended
--   rate-limited (cleared by a verdict); an hour of that stops it with `rate_limited`.
-- * jobs.run_before: a debounced job's latest due time. A trace's job is queued with its
--   first event; each later event moves run_after forward, never past run_before.
-- * evaluation_backfills: one row per backfill; its dispatcher is a job of the job table
--   and its progress is counted here, so it survives restarts.

ALTER TABLE evaluations
    ADD COLUMN target TEXT NOT NULL DEFAULT 'generation' CHECK (target IN ('generation', 'trace', 'session')),
    ADD COLUMN target_config JSONB,
    ADD COLUMN status_reason_detail TEXT,
    ADD COLUMN rate_limited_since TIMESTAMPTZ;

ALTER TABLE jobs ADD COLUMN run_before TIMESTAMPTZ;

CREATE TABLE evaluation_backfills (
    id                  UUID PRIMARY KEY,
    project_id          BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    evaluation_id       UUID NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    status              TEXT NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'completed', 'cancelled', 'failed')),
    window_start        TIMESTAMPTZ NOT NULL,
    window_end          TIMESTAMPTZ NOT NULL CHECK (window_start < window_end),
    conditions          JSONB,
    rerun_existing      BOOLEAN NOT NULL DEFAULT false,
    total_count         INTEGER NOT NULL DEFAULT 0,
    dispatched_count    INTEGER NOT NULL DEFAULT 0,
    skipped_count       INTEGER NOT NULL DEFAULT 0,
    completed_count     INTEGER NOT NULL DEFAULT 0,
    failed_count        INTEGER NOT NULL DEFAULT 0,
    -- Where dispatching stands: the last target id handed to a job (targets go in id order),
    -- and whether every target was looked at.
    cursor              TEXT,
    dispatched_all      BOOLEAN NOT NULL DEFAULT false,
    error               TEXT,
    created_by          BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    finished_at         TIMESTAMPTZ
);
CREATE INDEX evaluation_backfills_evaluation ON evaluation_backfills (project_id, evaluation_id, created_at DESC, id);
-- At most one queued or running backfill per evaluation.
CREATE UNIQUE INDEX evaluation_backfills_one_active ON evaluation_backfills (evaluation_id)
    WHERE status IN ('queued', 'running');

-- A session's events are found like a trace's (`$ai_session_id`, extracted on insert).
ALTER TABLE ai_events ADD COLUMN session_id TEXT;
UPDATE ai_events SET session_id = ai_property_text(properties, '$ai_session_id')
WHERE properties ? '$ai_session_id';
CREATE INDEX ai_events_session ON ai_events (project_id, session_id, timestamp DESC)
    WHERE session_id IS NOT NULL;
