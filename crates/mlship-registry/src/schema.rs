//! The metadata schema, one migration per step, written once for SQLite and PostgreSQL.
//!
//! Applied in order at open; `schema_migrations` records the last one applied, and a database
//! newer than this list is refused. `{serial}` is the dialect's auto-increment key. Never edit a
//! migration that has shipped: add one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the model registry.
    r#"
CREATE TABLE models (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    last_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE versions (
    name TEXT NOT NULL REFERENCES models(name),
    version INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    estimator TEXT NOT NULL,
    signature TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    file_name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    description TEXT,
    tags TEXT NOT NULL,
    git_commit TEXT,
    input_example TEXT,
    example_predictions TEXT,
    PRIMARY KEY (name, version)
);
CREATE INDEX versions_sha ON versions(sha256);
CREATE TABLE aliases (
    name TEXT NOT NULL REFERENCES models(name),
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE alias_history (
    id {serial},
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    from_version INTEGER,
    to_version INTEGER,
    at BIGINT NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX alias_history_name ON alias_history(name, id);
"#,
    // 2: what the MLflow registry API reads and edits on models and versions.
    r#"
ALTER TABLE models ADD COLUMN description TEXT;
ALTER TABLE models ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
ALTER TABLE models ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE versions ADD COLUMN source TEXT;
ALTER TABLE versions ADD COLUMN run_id TEXT;
ALTER TABLE versions ADD COLUMN model_id TEXT;
ALTER TABLE versions ADD COLUMN stage TEXT NOT NULL DEFAULT 'None';
ALTER TABLE versions ADD COLUMN not_servable TEXT;
ALTER TABLE versions ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
"#,
    // 3: experiment tracking.
    r#"
CREATE TABLE experiments (
    id {serial},
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL
);
INSERT INTO experiments (id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
    VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', 0, 0);
CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    lifecycle_stage TEXT NOT NULL,
    artifact_uri TEXT NOT NULL,
    deleted_time BIGINT
);
CREATE INDEX runs_experiment ON runs(experiment_id, lifecycle_stage, start_time);
CREATE TABLE params (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX params_key ON params(key, value);
CREATE TABLE run_tags (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_tags_key ON run_tags(key, value);
CREATE TABLE metrics (
    id {serial},
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan INTEGER NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    model_id TEXT,
    dataset_name TEXT,
    dataset_digest TEXT
);
CREATE INDEX metrics_run_key ON metrics(run_id, key, step, timestamp);
CREATE INDEX metrics_model ON metrics(model_id);
CREATE TABLE latest_metrics (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan INTEGER NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX latest_metrics_key ON latest_metrics(key, value);
CREATE TABLE datasets (
    experiment_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    schema_json TEXT,
    profile TEXT,
    PRIMARY KEY (experiment_id, name, digest)
);
CREATE TABLE run_inputs (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    context TEXT,
    tags TEXT NOT NULL,
    experiment_id BIGINT NOT NULL,
    PRIMARY KEY (run_id, name, digest)
);
CREATE TABLE run_outputs (
    run_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (run_id, model_id)
);
CREATE TABLE logged_models (
    model_id TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    source_run_id TEXT,
    status TEXT NOT NULL,
    status_message TEXT,
    model_type TEXT,
    artifact_uri TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_updated_time BIGINT NOT NULL,
    lifecycle_stage TEXT NOT NULL
);
CREATE INDEX logged_models_experiment ON logged_models(experiment_id, name);
CREATE TABLE logged_model_params (
    model_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_tags (
    model_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
"#,
    // 4: API tokens, stored as the sha256 of their secret.
    r#"
CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
"#,
    // 5: runs ordered by a metric read that metric's rows in order (NaN after numbers).
    r#"
CREATE INDEX IF NOT EXISTS latest_metrics_order ON latest_metrics(key, is_nan, value);
"#,
    // 6: progressive rollouts (at most one running per model) and the servers' counts per step.
    r#"
CREATE TABLE rollouts (
    id {serial},
    name TEXT NOT NULL,
    candidate INTEGER NOT NULL,
    production INTEGER NOT NULL,
    steps TEXT NOT NULL,
    step INTEGER NOT NULL,
    interval_ms BIGINT NOT NULL,
    min_requests BIGINT NOT NULL,
    max_error_rate DOUBLE PRECISION,
    max_p99_ms DOUBLE PRECISION,
    sticky_header TEXT,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    step_started_at BIGINT NOT NULL,
    ended_at BIGINT,
    started_by TEXT NOT NULL
);
CREATE UNIQUE INDEX rollouts_running ON rollouts(name) WHERE state = 'running';
CREATE INDEX rollouts_name ON rollouts(name, id);
CREATE TABLE rollout_counts (
    rollout_id BIGINT NOT NULL,
    step INTEGER NOT NULL,
    replica TEXT NOT NULL,
    version INTEGER NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    latencies TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, step, replica, version)
);
"#,
];
