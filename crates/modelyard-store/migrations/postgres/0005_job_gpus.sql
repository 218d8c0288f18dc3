-- PostgreSQL twin of sqlite/0005_job_gpus.sql: the GPU indices reserved for a job on its node
-- (JSON array), for CUDA_VISIBLE_DEVICES.
ALTER TABLE jobs ADD COLUMN gpus TEXT NOT NULL DEFAULT '[]';
