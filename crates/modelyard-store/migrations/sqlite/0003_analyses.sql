-- Model structure analyses, one per content: keyed by the blob's SHA-256 (for a sharded
-- safetensors index, by a hash over the index and its shards), whatever repo or path holds it.

CREATE TABLE analyses (
    sha256 TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    format TEXT,
    features TEXT,
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);
