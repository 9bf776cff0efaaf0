-- factorydash SQLite schema, version 3: an agent's credentials kept apart from its URL.
-- An agent is its URL without user information (no `user:password@`): that is what
-- agents.url and configured_agents.url hold, what observations, resume points and device
-- models are stored under, and what is shown. The credentials of an agent added at run
-- time are here, as written in its URL (percent-encoded), read only to connect to it.
--
-- The rows written before this version are moved by `move_credentials` (src/sqlite/mod.rs),
-- which splits their URLs as `split_credentials` does, right after this script:
-- - configured_agents: where several rows become one URL once their credentials are taken
--   out (the same agent added twice with other credentials), the one added last is kept,
--   with its credentials and its paused state; the others are dropped.
-- - agents: a URL that becomes one already there is told apart by the store's number of
--   the agent (`http://host:5000#agent-7`), so nothing stored from it is lost or merged
--   into the other's; the agent that keeps the URL is the one that had no credentials,
--   else the first seen. The renamed one is no longer followed under that name.

CREATE TABLE agent_credentials (
    url      TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    password TEXT
);
