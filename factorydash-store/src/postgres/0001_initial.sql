-- factorydash schema, version 1.
-- Text keys use the "C" collation so that keyset order is byte order, the same in every
-- store and every locale.

CREATE TABLE agents (
    id            serial PRIMARY KEY,
    url           text NOT NULL UNIQUE,
    instance_id   bigint,
    next_sequence bigint,
    updated_at    timestamptz
);

CREATE TABLE devices (
    agent_id  integer NOT NULL REFERENCES agents (id),
    name      text COLLATE "C" NOT NULL,
    uuid      text,
    device_id text NOT NULL,
    PRIMARY KEY (agent_id, name)
);

CREATE TABLE data_items (
    agent_id       integer NOT NULL REFERENCES agents (id),
    device         text COLLATE "C" NOT NULL,
    ordinal        integer NOT NULL,
    id             text COLLATE "C" NOT NULL,
    name           text,
    category       text NOT NULL,
    kind           text NOT NULL,
    sub_type       text,
    units          text,
    component      text NOT NULL,
    component_id   text NOT NULL,
    component_name text,
    PRIMARY KEY (agent_id, device, ordinal)
);

-- One row per observation; (agent, instanceId, sequence) identifies it.
-- value NULL means UNAVAILABLE.
CREATE TABLE observations (
    agent_id        integer NOT NULL REFERENCES agents (id),
    instance_id     bigint NOT NULL,
    sequence        bigint NOT NULL,
    ts              timestamptz NOT NULL,
    device          text COLLATE "C" NOT NULL,
    component_id    text NOT NULL,
    data_item_id    text COLLATE "C" NOT NULL,
    name            text,
    category        text NOT NULL,
    kind            text NOT NULL,
    sub_type        text,
    value           text,
    level           text,
    native_code     text,
    native_severity text,
    qualifier       text,
    PRIMARY KEY (agent_id, instance_id, sequence)
);

CREATE INDEX observations_item_ts ON observations (device, data_item_id, ts, sequence);
CREATE INDEX observations_ts ON observations (ts);

-- The newest observation of every data item, kept whatever the retention.
CREATE TABLE latest (
    device          text COLLATE "C" NOT NULL,
    data_item_id    text COLLATE "C" NOT NULL,
    agent_id        integer NOT NULL REFERENCES agents (id),
    instance_id     bigint NOT NULL,
    sequence        bigint NOT NULL,
    ts              timestamptz NOT NULL,
    component_id    text NOT NULL,
    name            text,
    category        text NOT NULL,
    kind            text NOT NULL,
    sub_type        text,
    value           text,
    level           text,
    native_code     text,
    native_severity text,
    qualifier       text,
    PRIMARY KEY (device, data_item_id)
);

CREATE TABLE gaps (
    id            bigserial PRIMARY KEY,
    agent_id      integer NOT NULL REFERENCES agents (id),
    instance_id   bigint NOT NULL,
    from_sequence bigint NOT NULL,
    to_sequence   bigint,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
