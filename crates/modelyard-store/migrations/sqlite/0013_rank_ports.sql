-- The port rank 0's node listens on for the other ranks of its gang (MASTER_PORT), chosen when
-- the gang is assigned so that no two gangs led from one node share one. NULL on older rows.
ALTER TABLE job_ranks ADD COLUMN port BIGINT;
