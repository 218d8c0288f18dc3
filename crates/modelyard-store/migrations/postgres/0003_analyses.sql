-- PostgreSQL twin of sqlite/0003_analyses.sql: model structure analyses, one per content hash.

CREATE TABLE analyses (
    sha256 TEXT COLLATE "C" PRIMARY KEY,
    status TEXT NOT NULL,
    format TEXT,
    features TEXT,
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);
