-- A project's own model prices (spec section 5.2, `llm_analytics/model_prices/`): they
-- price the generations of the models they match, from `valid_from` on, before the
-- price table shipped with the service.

CREATE TABLE model_prices (
    id                          UUID PRIMARY KEY,
    project_id                  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    model                       TEXT NOT NULL CHECK (char_length(model) BETWEEN 1 AND 200),
    match                       TEXT NOT NULL DEFAULT 'exact' CHECK (match IN ('exact', 'regex')),
    provider                    TEXT,
    input_cost_per_token        DOUBLE PRECISION NOT NULL CHECK (input_cost_per_token BETWEEN 0 AND 1),
    output_cost_per_token       DOUBLE PRECISION NOT NULL CHECK (output_cost_per_token BETWEEN 0 AND 1),
    cache_read_cost_per_token   DOUBLE PRECISION CHECK (cache_read_cost_per_token BETWEEN 0 AND 1),
    cache_write_cost_per_token  DOUBLE PRECISION CHECK (cache_write_cost_per_token BETWEEN 0 AND 1),
    valid_from                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX model_prices_project ON model_prices (project_id, valid_from DESC, id);

-- What each of the service's own LLM calls cost, priced like an ingested generation.
ALTER TABLE llm_calls ADD COLUMN cost_usd DOUBLE PRECISION, ADD COLUMN cost_source TEXT;
