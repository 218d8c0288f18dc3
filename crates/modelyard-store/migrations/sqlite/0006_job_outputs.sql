-- Output files a job's attempt uploaded, committed to the job's output repo when it succeeds.
CREATE TABLE job_outputs (
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (job_id, attempt, path)
);

-- The commit that holds a succeeded job's outputs.
ALTER TABLE jobs ADD COLUMN output_commit TEXT;
