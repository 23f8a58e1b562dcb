-- Ingested AI events ($ai_generation, $ai_evaluation, ...), built to grow:
--
-- * one table partitioned by month on `timestamp` (declarative RANGE partitioning), so old
--   months can be detached or dropped whole and time-bounded reads touch few partitions;
-- * the columns that reads filter on are extracted from the properties and indexed
--   (every index leads with project_id: every query filters by project first);
-- * the full properties stay as JSONB;
-- * idempotency on (project_id, uuid) lives in `ai_event_ids`, which is not partitioned:
--   a unique index on the partitioned table would have to include `timestamp`, and a
--   re-sent event whose timestamp moved (clock-skew correction uses the arrival time)
--   would slip past it. The ingest statement claims ids there and inserts only the
--   events it claimed, in one statement.
--
-- No foreign key to projects: the event tables take the highest write rate, and rows of
-- a project that no longer exists are harmless (nothing can read them).

CREATE TABLE ai_event_ids (
    project_id  BIGINT NOT NULL,
    uuid        UUID NOT NULL,
    -- where the event is, so a lookup by uuid prunes to one partition
    timestamp   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, uuid)
);

CREATE TABLE ai_events (
    project_id          BIGINT NOT NULL,
    uuid                UUID NOT NULL,
    event               TEXT NOT NULL,
    distinct_id         TEXT NOT NULL,
    timestamp           TIMESTAMPTZ NOT NULL,
    inserted_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- extracted from properties (NULL when absent or empty)
    trace_id            TEXT,   -- $ai_trace_id
    evaluation_id       TEXT,   -- $ai_evaluation_id
    target_event_id     TEXT,   -- $ai_target_event_id (the judged generation)
    experiment_id       TEXT,   -- $ai_experiment_id
    experiment_item_id  TEXT,   -- $ai_experiment_item_id
    properties          JSONB NOT NULL
) PARTITION BY RANGE (timestamp);

-- Indexes on the partitioned table are created on every partition, present and future.
CREATE INDEX ai_events_project_event_time ON ai_events (project_id, event, timestamp DESC);
CREATE INDEX ai_events_project_uuid ON ai_events (project_id, uuid);
CREATE INDEX ai_events_evaluation ON ai_events (project_id, evaluation_id, timestamp DESC)
    WHERE evaluation_id IS NOT NULL;
CREATE INDEX ai_events_target ON ai_events (project_id, target_event_id)
    WHERE target_event_id IS NOT NULL;
CREATE INDEX ai_events_trace ON ai_events (project_id, trace_id, timestamp DESC)
    WHERE trace_id IS NOT NULL;
CREATE INDEX ai_events_experiment ON ai_events (project_id, experiment_id, experiment_item_id, timestamp DESC)
    WHERE experiment_id IS NOT NULL;

-- A property as the text that ids are compared by: a non-empty string, or a number's
-- text; NULL otherwise (absent, empty, null, object, array, boolean).
CREATE FUNCTION ai_property_text(properties JSONB, key TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(properties -> key) IN ('string', 'number')
                THEN NULLIF(properties ->> key, '') END
$$;

-- Creates the partition holding `instant`'s month (UTC) unless it exists; true when it
-- created it. Safe when several replicas race: creators queue on an advisory lock and
-- re-check, and "already exists" from a creator outside this function counts as success.
-- (Creating a partition locks the parent table briefly, so callers create only what is
-- missing and never inside a transaction that writes events.)
CREATE FUNCTION ai_events_ensure_partition(instant TIMESTAMPTZ) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
DECLARE
    month_start TIMESTAMP := date_trunc('month', instant AT TIME ZONE 'UTC');
    month_end   TIMESTAMP := date_trunc('month', instant AT TIME ZONE 'UTC') + INTERVAL '1 month';
    part_name   TEXT := 'ai_events_p' || to_char(date_trunc('month', instant AT TIME ZONE 'UTC'), 'YYYY_MM');
BEGIN
    IF to_regclass(part_name) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    -- 0x61695f6576 = "ai_ev": one lock for every partition creation.
    PERFORM pg_advisory_xact_lock(418379687286);
    IF to_regclass(part_name) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF ai_events FOR VALUES FROM (%L) TO (%L)',
        part_name,
        to_char(month_start, 'YYYY-MM-DD HH24:MI:SS') || '+00',
        to_char(month_end, 'YYYY-MM-DD HH24:MI:SS') || '+00'
    );
    RETURN TRUE;
EXCEPTION
    WHEN duplicate_table OR unique_violation THEN
        RETURN FALSE;
END
$$;

-- This month and the next two exist from the start; the service creates further ones
-- ahead at start-up, daily, and on demand for the months a batch touches.
SELECT ai_events_ensure_partition(now() + make_interval(months => m)) FROM generate_series(0, 2) AS m;
