-- The parameter count of each analysed model file, for listings filtered by model size.
ALTER TABLE analyses ADD COLUMN parameters BIGINT;
CREATE INDEX analyses_parameters ON analyses(parameters);
