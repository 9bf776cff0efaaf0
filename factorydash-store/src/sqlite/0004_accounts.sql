-- factorydash SQLite schema, version 4: accounts (users, groups, credentials, the audit
-- log; see `AccountStore`). Times are microseconds since the Unix epoch, UTC, as
-- everywhere in this schema. Names compare with the BINARY collation (byte order), as
-- PostgreSQL's "C". Foreign keys are enforced: every connection of the store sets
-- `PRAGMA foreign_keys = ON` (and removing a user deletes their rows explicitly too).

CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    -- The password's Argon2id hash (PHC string); NULL for a user of the auth proxy only.
    password_hash TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- scope: the group's scope rules as a JSON array of their texts (`ScopeRule`'s
-- `Display`), in the order given.
CREATE TABLE groups (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    scope      TEXT NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_name)
) WITHOUT ROWID;

CREATE INDEX group_members_user ON group_members (user_name);

-- Sessions and personal API tokens, by the SHA-256 of their secret (never the secret).
CREATE TABLE credentials (
    digest       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    user_name    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL
);

CREATE INDEX credentials_user ON credentials (user_name, kind, created_at);

-- The audit log: ids given in the order appended, never reused (AUTOINCREMENT).
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    address TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL
);

CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_action ON audit (action, id);
