-- factorydash schema, version 2: the agents added at run time (POST /api/agents), so that
-- they are followed again after a restart; paused ones are kept but not followed.
CREATE TABLE configured_agents (
    url      text PRIMARY KEY,
    paused   boolean NOT NULL DEFAULT false,
    added_at timestamptz NOT NULL DEFAULT now()
);
