-- Finding the repositories and commits that hold a blob (workers' cache inventories).
CREATE INDEX tree_entries_sha256 ON tree_entries(sha256);
