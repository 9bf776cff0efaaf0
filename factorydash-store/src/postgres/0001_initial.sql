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

-- One row per observation; (agent, instanceId, sequence) identifies it. The timestamp is
-- part of the key only because a partitioned table's keys must hold the partition key: an
-- observation read twice has the same timestamp, so duplicates still collide.
-- value NULL means UNAVAILABLE.
-- Partitioned by day (UTC) so that retention drops whole partitions instead of deleting
-- rows; partitions are created on demand by factorydash_observation_partition.
-- No foreign key to agents: it would cost a lookup per ingested row, and rows only come
-- from PgStore::append, which takes agent_id from agents.
CREATE TABLE observations (
    agent_id        integer NOT NULL,
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
    PRIMARY KEY (agent_id, instance_id, sequence, ts)
) PARTITION BY RANGE (ts);

CREATE INDEX observations_item_ts ON observations (device, data_item_id, ts, sequence);
-- Condition episodes are read across all data items by time.
CREATE INDEX observations_conditions ON observations (ts, sequence) WHERE category = 'CONDITION';

-- Creates the partition of observations for one UTC day, named observations_YYYYMMDD, if it
-- does not exist. Serialised by an advisory lock so that several ingesting processes may
-- ask for the same day at once.
CREATE FUNCTION factorydash_observation_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    partition text := 'observations_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(partition) IS NOT NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7377287016346712421);
    IF to_regclass(partition) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF observations FOR VALUES FROM (%L) TO (%L)',
            partition,
            day::timestamp AT TIME ZONE 'UTC',
            (day + 1)::timestamp AT TIME ZONE 'UTC');
    END IF;
END
$$;

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
