-- Schema version 6: an agent's credentials kept apart from its URL.
-- An agent is its URL without user information (no `user:password@`): that is what
-- agents.url and configured_agents.url hold, what observations, resume points and device
-- models are stored under, and what is shown. The credentials of an agent added at run
-- time are here, as written in its URL (percent-encoded), read only to connect to it.
-- (Version 5 is another change; versions are applied in ascending order, each once. This
-- one may be applied again: the table is made if missing, and every step below changes
-- nothing where no URL holds credentials.)
--
-- The user information of a URL is what comes before the last `@` of its authority, which
-- ends at the first `/`, `\`, `?` or `#` after `://`, as `split_credentials` reads it.
-- Rows written before this version are moved:
-- - configured_agents: where several rows become one URL once their credentials are taken
--   out (the same agent added twice with other credentials), the one added last is kept,
--   with its credentials and its paused state; the others are dropped.
-- - agents: a URL that becomes one already there is told apart by the store's number of
--   the agent (`http://host:5000#agent-7`), so nothing stored from it is lost or merged
--   into the other's; the agent that keeps the URL is the one that had no credentials,
--   else the first seen. The renamed one is no longer followed under that name.

CREATE TABLE IF NOT EXISTS agent_credentials (
    url      text PRIMARY KEY,
    username text NOT NULL,
    password text
);

CREATE TEMPORARY TABLE factorydash_split ON COMMIT DROP AS
SELECT url,
       regexp_replace(url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\\]*@', '\1') AS bare,
       substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#\\]*)@') AS userinfo
  FROM (SELECT url FROM configured_agents UNION SELECT url FROM agents) AS urls;

-- configured_agents: the one added last of each URL keeps it.
CREATE TEMPORARY TABLE factorydash_configured ON COMMIT DROP AS
SELECT c.url, s.bare, s.userinfo,
       row_number() OVER (PARTITION BY s.bare ORDER BY c.added_at DESC, c.url DESC) AS rank
  FROM configured_agents c JOIN factorydash_split s USING (url);

DELETE FROM configured_agents c USING factorydash_configured f
 WHERE c.url = f.url AND f.rank > 1;
UPDATE configured_agents c SET url = f.bare FROM factorydash_configured f
 WHERE c.url = f.url AND f.rank = 1 AND f.userinfo IS NOT NULL;
INSERT INTO agent_credentials (url, username, password)
SELECT bare,
       split_part(userinfo, ':', 1),
       CASE WHEN strpos(userinfo, ':') > 0 THEN substr(userinfo, strpos(userinfo, ':') + 1) END
  FROM factorydash_configured
 WHERE rank = 1 AND userinfo IS NOT NULL;

-- agents: each URL without credentials goes to one agent (the one that had none, else the
-- first seen); the others of that URL are told apart by their number.
CREATE TEMPORARY TABLE factorydash_agents ON COMMIT DROP AS
SELECT a.id, s.bare,
       row_number() OVER (PARTITION BY s.bare ORDER BY s.userinfo IS NULL DESC, a.id) AS rank,
       bool_or(s.userinfo IS NOT NULL) OVER (PARTITION BY s.bare) AS had
  FROM agents a JOIN factorydash_split s USING (url);

UPDATE agents a SET url = f.bare || '#agent-' || a.id FROM factorydash_agents f
 WHERE a.id = f.id AND f.had AND f.rank > 1;
UPDATE agents a SET url = f.bare FROM factorydash_agents f
 WHERE a.id = f.id AND f.had AND f.rank = 1;
