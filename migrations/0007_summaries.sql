-- Evaluation summaries (spec section 6) and LLM call accounting (section 11).
--
-- * summary_cache: summaries reused for an hour, keyed per project by
--   (evaluation, filter, hash of the run set, hash of the judge prompt).
-- * summary_flights: one row per key being computed, with a lease; the replica that
--   inserts (or takes over an expired lease) computes, the others wait for the cache.
-- * rate_limit_hits: one row per counted request, per API key and bucket, so every
--   replica counts the same requests.
-- * llm_calls: every LLM call with its tokens, latency and outcome.

CREATE TABLE summary_cache (
    project_id      BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    cache_key       TEXT NOT NULL,
    evaluation_id   UUID NOT NULL,
    summary         JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, cache_key)
);
-- Purging old entries.
CREATE INDEX summary_cache_created ON summary_cache (created_at);

CREATE TABLE summary_flights (
    project_id      BIGINT NOT NULL,
    cache_key       TEXT NOT NULL,
    locked_until    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, cache_key)
);

CREATE TABLE rate_limit_hits (
    api_key_id      UUID NOT NULL,
    bucket          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX rate_limit_hits_key_time ON rate_limit_hits (api_key_id, bucket, created_at DESC);
-- Purging hits older than the longest window.
CREATE INDEX rate_limit_hits_created ON rate_limit_hits (created_at);

CREATE TABLE llm_calls (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id      BIGINT NOT NULL,
    purpose         TEXT NOT NULL CHECK (purpose IN ('summary', 'report', 'judge')),
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    -- NULL: the operator's system LLM (no foreign key: the record outlives the key)
    provider_key_id UUID,
    input_tokens    BIGINT NOT NULL DEFAULT 0,
    output_tokens   BIGINT NOT NULL DEFAULT 0,
    latency_ms      BIGINT NOT NULL,
    outcome         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX llm_calls_project_time ON llm_calls (project_id, created_at DESC);
