-- Flows (src/flows): definitions, their versions, runs and each run's timeline.

-- Every version of every flow ever loaded or posted: a run keeps the version it started on.
CREATE TABLE flow_versions (
    version    TEXT PRIMARY KEY,
    name       TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    origin     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- The version each flow runs now (files at start-up, `POST /api/v1/flows`).
CREATE TABLE flows (
    name       TEXT PRIMARY KEY,
    version    TEXT    NOT NULL,
    enabled    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE flow_runs (
    id          TEXT PRIMARY KEY,
    flow        TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    -- What started the run (an event, a hook call's key, a schedule's time): a trigger seen
    -- twice starts one run.
    trigger_key TEXT    NOT NULL UNIQUE,
    contact     TEXT,
    -- running, sleeping, awaiting_reply, done, failed, cancelled
    status      TEXT    NOT NULL,
    -- When the runner takes it up next (now, a delay's end, a wait's timeout); NULL once ended.
    due_at      INTEGER,
    state_json  TEXT    NOT NULL,
    -- A customer's reply to a run awaiting one, until the runner takes it.
    reply_json  TEXT,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX flow_runs_due ON flow_runs(due_at) WHERE due_at IS NOT NULL;
CREATE INDEX flow_runs_awaiting ON flow_runs(contact) WHERE status = 'awaiting_reply';
CREATE INDEX flow_runs_flow ON flow_runs(flow, created_at);
-- Runs that ended (due_at is NULL only then), oldest first: what retention prunes.
CREATE INDEX flow_runs_ended ON flow_runs(updated_at) WHERE due_at IS NULL;

CREATE TABLE flow_steps (
    run_id      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    step        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    action_key  TEXT,
    input_json  TEXT,
    output_json TEXT,
    error       TEXT,
    PRIMARY KEY (run_id, seq)
);

-- How far the trigger follower has read the published events (one row, name 'events').
CREATE TABLE flow_cursor (
    name     TEXT PRIMARY KEY,
    event_id INTEGER NOT NULL
);
