-- The provider-key audit trail (spec section 1): one row per create, update, validation,
-- assignment and delete of a key, written in the change's own transaction. No foreign
-- key to provider_keys: the trail outlives the key. `changes` holds secret-free
-- before/after values (a key only as its mask). A deleted user leaves a null actor.

CREATE TABLE provider_key_activity (
    id                  UUID PRIMARY KEY,
    project_id          BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    provider_key_id     UUID NOT NULL,
    provider_key_name   TEXT NOT NULL,
    action              TEXT NOT NULL CHECK (action IN ('created', 'updated', 'validated', 'assigned', 'deleted')),
    actor               BIGINT REFERENCES users (id) ON DELETE SET NULL,
    changes             JSONB NOT NULL DEFAULT '[]',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX provider_key_activity_project ON provider_key_activity (project_id, created_at DESC, id DESC);
CREATE INDEX provider_key_activity_key ON provider_key_activity (project_id, provider_key_id, created_at DESC, id DESC);
