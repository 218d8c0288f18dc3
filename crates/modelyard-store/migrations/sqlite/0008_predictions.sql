-- Runtime prediction: what was predicted for each job at submission, and what finished jobs
-- measured, which the predictor learns from (and relearns from at every start).
ALTER TABLE jobs ADD COLUMN prediction TEXT;

CREATE TABLE runtime_observations (
    job_id BIGINT PRIMARY KEY,
    node_class TEXT NOT NULL,
    -- JSON of the predictor's features (structure, workload, node).
    features TEXT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX runtime_observations_created ON runtime_observations(created_at);
