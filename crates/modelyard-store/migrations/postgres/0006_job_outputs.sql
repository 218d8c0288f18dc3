-- PostgreSQL twin of sqlite/0006_job_outputs.sql: output files a job's attempt uploaded,
-- committed to the job's output repo when it succeeds. Integers are BIGINT (read as i64).
CREATE TABLE job_outputs (
    job_id BIGINT NOT NULL,
    attempt BIGINT NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    sha256 TEXT COLLATE "C" NOT NULL,
    size BIGINT NOT NULL,
    PRIMARY KEY (job_id, attempt, path)
);

-- The commit that holds a succeeded job's outputs.
ALTER TABLE jobs ADD COLUMN output_commit TEXT COLLATE "C";
