-- Evaluation reports (spec section 7), their runs and each run's deliveries.
--
-- * evaluation_reports: delivery_targets is JSONB; a webhook target's secret is sealed
--   (base64 of the envelope) beside its mask, never in clear. `next_delivery_date` is what
--   makes a scheduled report due (operators and tests may set it to the past).
-- * evaluation_report_runs: `run_key` (report × period, or report × minute for manual
--   runs) makes a period's run unique whatever the replicas; `trend` feeds the run page.
-- * evaluation_report_deliveries: one row per target (per address for e-mail), with a
--   copy of the target as it was when the run was made; its job is in `jobs`.

CREATE TABLE evaluation_reports (
    id                      UUID PRIMARY KEY,
    project_id              BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    evaluation_id           UUID NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    frequency               TEXT NOT NULL CHECK (frequency IN ('scheduled', 'every_n', 'alert')),
    alert_condition         JSONB,
    rrule                   TEXT NOT NULL DEFAULT '',
    starts_at               TIMESTAMPTZ,
    timezone_name           TEXT NOT NULL DEFAULT 'UTC',
    next_delivery_date      TIMESTAMPTZ,
    delivery_targets        JSONB NOT NULL DEFAULT '[]',
    max_sample_size         INTEGER NOT NULL DEFAULT 200,
    enabled                 BOOLEAN NOT NULL DEFAULT true,
    deleted                 BOOLEAN NOT NULL DEFAULT false,
    last_delivered_at       TIMESTAMPTZ,
    report_prompt_guidance  TEXT NOT NULL DEFAULT '',
    trigger_threshold       INTEGER NOT NULL DEFAULT 100,
    cooldown_minutes        INTEGER NOT NULL DEFAULT 60,
    daily_run_cap           INTEGER NOT NULL DEFAULT 10,
    created_by              BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX evaluation_reports_project ON evaluation_reports (project_id, created_at DESC, id)
    WHERE NOT deleted;
-- The scheduler's two questions: which scheduled reports are due, which others may be.
CREATE INDEX evaluation_reports_due ON evaluation_reports (next_delivery_date)
    WHERE enabled AND NOT deleted AND frequency = 'scheduled';
CREATE INDEX evaluation_reports_triggered ON evaluation_reports (frequency)
    WHERE enabled AND NOT deleted AND frequency <> 'scheduled';

CREATE TABLE evaluation_report_runs (
    id                  UUID PRIMARY KEY,
    project_id          BIGINT NOT NULL,
    report_id           UUID NOT NULL REFERENCES evaluation_reports (id) ON DELETE CASCADE,
    run_key             TEXT NOT NULL UNIQUE,
    automatic           BOOLEAN NOT NULL,
    content             JSONB NOT NULL,
    metadata            JSONB NOT NULL,
    period_start        TIMESTAMPTZ NOT NULL,
    period_end          TIMESTAMPTZ NOT NULL,
    delivery_status     TEXT NOT NULL DEFAULT 'pending'
                        CHECK (delivery_status IN ('pending', 'delivered', 'partial_failure', 'failed')),
    delivery_errors     JSONB NOT NULL DEFAULT '[]',
    trend               JSONB NOT NULL DEFAULT '[]',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX evaluation_report_runs_report ON evaluation_report_runs (report_id, created_at DESC, id DESC);

CREATE TABLE evaluation_report_deliveries (
    run_id          UUID NOT NULL REFERENCES evaluation_report_runs (id) ON DELETE CASCADE,
    target_index    INTEGER NOT NULL,
    recipient       TEXT NOT NULL DEFAULT '',
    target          JSONB NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    error           TEXT,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, target_index, recipient)
);
