-- Verified results: what the platform measured in `evaluate` jobs, one per job, pinned to the
-- model and dataset commits. Self-reported results: what model cards claim (`model-index`),
-- kept apart and never ranked as verified.

CREATE TABLE results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id BIGINT NOT NULL UNIQUE,
    model_repo TEXT NOT NULL,
    model_commit TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    dataset_repo TEXT NOT NULL,
    dataset_commit TEXT NOT NULL,
    split TEXT NOT NULL,
    task TEXT NOT NULL,
    samples BIGINT NOT NULL,
    metrics TEXT NOT NULL,
    latency_p50_ms DOUBLE PRECISION NOT NULL,
    latency_p95_ms DOUBLE PRECISION NOT NULL,
    throughput DOUBLE PRECISION NOT NULL,
    hardware TEXT NOT NULL,
    report TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX results_board ON results(dataset_repo, split, task);
CREATE INDEX results_model ON results(model_repo);
CREATE INDEX results_reuse ON results(model_commit, dataset_commit, split, task);

CREATE TABLE self_reported (
    model_repo TEXT NOT NULL,
    model_commit TEXT NOT NULL,
    dataset TEXT NOT NULL,
    split TEXT NOT NULL,
    task TEXT NOT NULL,
    metric TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL
);
CREATE INDEX self_reported_dataset ON self_reported(dataset);
CREATE INDEX self_reported_model ON self_reported(model_repo);

-- What a dataset commit holds (splits, row counts, label distribution, preview), computed in
-- the background once per commit for the dataset page.
CREATE TABLE dataset_summaries (
    commit_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    summary TEXT,
    error TEXT,
    created_at BIGINT NOT NULL
);
