-- PostgreSQL twin of sqlite/0004_metric_seq.sql: metrics carry a per-attempt sequence number
-- so a retried report is stored once.
DELETE FROM job_metrics;
ALTER TABLE job_metrics ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX job_metrics_seq ON job_metrics(job_id, attempt, seq);
