-- The parts of a job gang-scheduled over several nodes: one row per node and attempt. The
-- job's own node_id and gpus are those of rank 0.
CREATE TABLE job_ranks (
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    rank BIGINT NOT NULL,
    node_id TEXT NOT NULL,
    gpus TEXT NOT NULL,
    resources TEXT NOT NULL,
    state TEXT NOT NULL,
    exit_code BIGINT,
    reason TEXT,
    PRIMARY KEY (job_id, attempt, rank)
);
CREATE INDEX job_ranks_node ON job_ranks(node_id, state);
