-- Which provider, model and key an evaluation judges with (no key = trial credits).
-- The composite foreign key keeps a configuration from pointing at another project's key.
CREATE TABLE model_configurations (
    id               UUID PRIMARY KEY,
    project_id       BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    provider         TEXT NOT NULL,
    model            TEXT NOT NULL,
    provider_key_id  UUID,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (project_id, provider_key_id)
        REFERENCES provider_keys (project_id, id) ON DELETE SET NULL (provider_key_id)
);
CREATE INDEX model_configurations_key ON model_configurations (project_id, provider_key_id);
