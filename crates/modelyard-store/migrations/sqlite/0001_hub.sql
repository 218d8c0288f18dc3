-- The hub's metadata: users, tokens, repositories, immutable commits and their trees, refs, blobs.
-- Written in the SQL subset that SQLite and PostgreSQL share (text ids, BIGINT times in ms).

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT,
    is_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX tokens_user ON tokens(user_name);

CREATE TABLE repos (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    private BIGINT NOT NULL,
    owner TEXT NOT NULL REFERENCES users(name),
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
    repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (repo_id, tag)
);
CREATE INDEX repo_tags_tag ON repo_tags(tag);

CREATE TABLE commits (
    id TEXT PRIMARY KEY,
    repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    parent_id TEXT,
    author TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX commits_repo ON commits(repo_id);

CREATE TABLE tree_entries (
    commit_id TEXT NOT NULL REFERENCES commits(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    git_oid TEXT NOT NULL,
    lfs BIGINT NOT NULL,
    PRIMARY KEY (commit_id, path)
);

CREATE TABLE refs (
    repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    PRIMARY KEY (repo_id, kind, name)
);

CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
