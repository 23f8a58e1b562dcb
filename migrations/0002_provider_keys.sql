-- Provider keys: the secret config is one sealed blob; the mask and Azure display values
-- are kept beside it so reads never decrypt.
CREATE TABLE provider_keys (
    id              UUID PRIMARY KEY,
    project_id      BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    provider        TEXT NOT NULL CHECK (provider IN
                        ('openai', 'anthropic', 'gemini', 'azure_openai', 'fireworks', 'openrouter', 'together_ai')),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    state           TEXT NOT NULL CHECK (state IN ('unknown', 'ok', 'invalid', 'error')),
    error_message   TEXT,
    api_key_masked  TEXT NOT NULL,
    azure_endpoint  TEXT,
    api_version     TEXT CHECK (length(api_version) <= 20),
    sealed_secret   BYTEA,
    created_by      BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at    TIMESTAMPTZ,
    UNIQUE (project_id, id)
);
CREATE INDEX provider_keys_project_created ON provider_keys (project_id, created_at DESC, id);
