-- PostgreSQL twin of sqlite/0011_analysis_parameters.sql.
ALTER TABLE analyses ADD COLUMN parameters BIGINT;
CREATE INDEX analyses_parameters ON analyses(parameters);
