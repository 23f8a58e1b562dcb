-- Evaluations (LLM-as-a-judge definitions), soft-deleted, each with at most one model
-- configuration of its own project.

-- Targets of the composite foreign keys below.
ALTER TABLE model_configurations
    ADD CONSTRAINT model_configurations_project_id_id_key UNIQUE (project_id, id);
ALTER TABLE provider_keys
    ADD CONSTRAINT provider_keys_project_id_id_provider_key UNIQUE (project_id, id, provider);

-- A model configuration's key must be of the configuration's provider (spec section 4).
ALTER TABLE model_configurations
    ADD CONSTRAINT model_configurations_key_provider_fkey FOREIGN KEY (project_id, provider_key_id, provider)
        REFERENCES provider_keys (project_id, id, provider) ON DELETE SET NULL (provider_key_id);

CREATE TABLE evaluations (
    id                      UUID PRIMARY KEY,
    project_id              BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 400),
    description             TEXT NOT NULL DEFAULT '',
    enabled                 BOOLEAN NOT NULL DEFAULT false,
    status                  TEXT NOT NULL DEFAULT 'paused' CHECK (status IN ('active', 'paused', 'error')),
    status_reason           TEXT,
    evaluation_type         TEXT NOT NULL CHECK (evaluation_type IN ('llm_judge')),
    evaluation_config       JSONB NOT NULL,
    output_type             TEXT NOT NULL CHECK (output_type IN ('boolean', 'boolean_with_na')),
    conditions              JSONB NOT NULL DEFAULT '[]',
    model_configuration_id  UUID UNIQUE,
    created_by              BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted                 BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (project_id, id),
    FOREIGN KEY (project_id, model_configuration_id)
        REFERENCES model_configurations (project_id, id) ON DELETE SET NULL (model_configuration_id),
    -- active <=> enabled without a reason; paused <=> disabled without; error => disabled with.
    CONSTRAINT evaluations_status_matches_enabled CHECK (
        CASE status
            WHEN 'active' THEN enabled AND status_reason IS NULL
            WHEN 'paused' THEN NOT enabled AND status_reason IS NULL
            ELSE NOT enabled AND status_reason IS NOT NULL
        END
    )
);
-- Lists: the project's live evaluations, newest first.
CREATE INDEX evaluations_project_created ON evaluations (project_id, created_at DESC, id) WHERE NOT deleted;
-- The judge runner: the project's enabled evaluations.
CREATE INDEX evaluations_project_enabled ON evaluations (project_id) WHERE enabled AND NOT deleted;
