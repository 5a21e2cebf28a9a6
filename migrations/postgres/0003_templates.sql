-- Message templates as last synced from the Cloud API (GET /{waba-id}/message_templates),
-- kept current by message_template_status_update webhooks.
-- (PostgreSQL twin of migrations/sqlite/0003.)
CREATE TABLE templates (
    waba_id          TEXT   NOT NULL,
    name             TEXT   NOT NULL,
    language         TEXT   NOT NULL,
    id               TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    category         TEXT   NOT NULL,
    parameter_format TEXT   NOT NULL,
    components_json  TEXT   NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (waba_id, name, language)
);
