-- PostgreSQL twin of sqlite/0002_cluster.sql: cluster settings, nodes, jobs and what their
-- attempts reported. Job ids come from a BIGSERIAL (SQLite: INTEGER PRIMARY KEY AUTOINCREMENT).

CREATE TABLE settings (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE nodes (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    inventory TEXT NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    registered_at BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    free_json TEXT,
    cache_json TEXT
);

CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    owner TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    spec TEXT NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    node_id TEXT COLLATE "C",
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
    name TEXT COLLATE "C" NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX job_metrics_job ON job_metrics(job_id, attempt);
