-- The computing subsystem: cluster settings, nodes, jobs and what their attempts reported.

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    inventory TEXT NOT NULL,
    state TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    free_json TEXT,
    cache_json TEXT
);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    node_id TEXT,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    exit_code BIGINT,
    reason TEXT,
    created_at BIGINT NOT NULL,
    assigned_at BIGINT,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX jobs_state ON jobs(state, id);
CREATE INDEX jobs_node ON jobs(node_id, state);

CREATE TABLE job_logs (
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    stream TEXT NOT NULL,
    text TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);

CREATE TABLE job_metrics (
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    step BIGINT NOT NULL,
    name TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX job_metrics_job ON job_metrics(job_id, attempt);
