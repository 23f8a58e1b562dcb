-- One row per project that changed its evaluation settings; absent means the defaults.
CREATE TABLE evaluation_configs (
    project_id              BIGINT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    active_provider_key_id  UUID,
    trial_eval_limit        INTEGER NOT NULL DEFAULT 100 CHECK (trial_eval_limit >= 0),
    trial_evals_used        INTEGER NOT NULL DEFAULT 0 CHECK (trial_evals_used >= 0),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (project_id, active_provider_key_id)
        REFERENCES provider_keys (project_id, id) ON DELETE SET NULL (active_provider_key_id)
);
