-- Schema version 7: accounts (users, groups, credentials, the audit log; see
-- `AccountStore`). Names compare and sort in the "C" collation (byte order), as the
-- other stores'. Removing a user cascades to their credentials and memberships; removing
-- a group to its memberships only. (Made only where missing: applying it again changes
-- nothing.)

CREATE TABLE IF NOT EXISTS users (
    name          text COLLATE "C" PRIMARY KEY,
    display_name  text NOT NULL,
    -- The password's Argon2id hash (PHC string); NULL for a user of the auth proxy only.
    password_hash text,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL
);

-- scope: the group's scope rules as their texts (`ScopeRule`'s `Display`), in the order
-- given.
CREATE TABLE IF NOT EXISTS groups (
    name       text COLLATE "C" PRIMARY KEY,
    role       text NOT NULL,
    scope      text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS group_members (
    group_name text COLLATE "C" NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
    user_name  text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_name)
);

CREATE INDEX IF NOT EXISTS group_members_user ON group_members (user_name);

-- Sessions and personal API tokens, by the SHA-256 of their secret (never the secret).
CREATE TABLE IF NOT EXISTS credentials (
    digest       text COLLATE "C" PRIMARY KEY,
    kind         text NOT NULL,
    user_name    text COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS credentials_user ON credentials (user_name, kind, created_at);

-- The audit log: ids given in the order appended.
CREATE TABLE IF NOT EXISTS audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    address text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    detail  text NOT NULL
);

CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, id);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action, id);
