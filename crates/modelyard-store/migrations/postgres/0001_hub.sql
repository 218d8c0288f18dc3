-- PostgreSQL twin of sqlite/0001_hub.sql: the same tables and columns. Text keys use the "C"
-- collation so that sorting and comparisons are bytewise, as in SQLite.

CREATE TABLE users (
    name TEXT COLLATE "C" PRIMARY KEY,
    password_hash TEXT,
    is_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    user_name TEXT COLLATE "C" NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX tokens_user ON tokens(user_name);

CREATE TABLE repos (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    namespace TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    private BIGINT NOT NULL,
    owner TEXT COLLATE "C" NOT NULL REFERENCES users(name),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    downloads BIGINT NOT NULL DEFAULT 0,
    card_json TEXT,
    card_error TEXT,
    license TEXT,
    pipeline_tag TEXT,
    library_name TEXT,
    UNIQUE (kind, namespace, name)
);
CREATE INDEX repos_updated ON repos(kind, updated_at);
CREATE INDEX repos_downloads ON repos(kind, downloads);

CREATE TABLE repo_tags (
    repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    tag TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repo_id, tag)
);
CREATE INDEX repo_tags_tag ON repo_tags(tag);

CREATE TABLE commits (
    id TEXT COLLATE "C" PRIMARY KEY,
    repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    parent_id TEXT COLLATE "C",
    author TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX commits_repo ON commits(repo_id);

CREATE TABLE tree_entries (
    commit_id TEXT COLLATE "C" NOT NULL REFERENCES commits(id) ON DELETE CASCADE,
    path TEXT COLLATE "C" NOT NULL,
    sha256 TEXT COLLATE "C" NOT NULL,
    size BIGINT NOT NULL,
    git_oid TEXT NOT NULL,
    lfs BIGINT NOT NULL,
    PRIMARY KEY (commit_id, path)
);

CREATE TABLE refs (
    repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    kind TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    commit_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repo_id, kind, name)
);

CREATE TABLE blobs (
    sha256 TEXT COLLATE "C" PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
