-- PostgreSQL twin of sqlite/0010_analyzer_version.sql.
ALTER TABLE analyses ADD COLUMN analyzer_version BIGINT NOT NULL DEFAULT 1;
