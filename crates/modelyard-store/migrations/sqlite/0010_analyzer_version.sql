-- Which version of the analyser produced each analysis: a hub upgraded to an analyser that
-- reports more (or counts differently) re-analyses what an older one left behind.
ALTER TABLE analyses ADD COLUMN analyzer_version INTEGER NOT NULL DEFAULT 1;
