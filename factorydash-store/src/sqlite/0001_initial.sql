-- factorydash SQLite schema, version 1 (PRAGMA user_version).
-- Text compares with SQLite's BINARY collation: byte order, as the "C" collation of the
-- PostgreSQL store, so keyset pages come in the same order in every store.

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY,
    url           TEXT NOT NULL UNIQUE,
    instance_id   INTEGER,
    next_sequence INTEGER
);

-- One row per (agent, instanceId): an observation names its run in one small integer.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    agent_id    INTEGER NOT NULL,
    instance_id INTEGER NOT NULL,
    UNIQUE (agent_id, instance_id)
);

-- One row per data item (device, dataItemId): what `latest` is keyed by and what
-- observations are indexed by.
CREATE TABLE items (
    id           INTEGER PRIMARY KEY,
    device       TEXT NOT NULL,
    data_item_id TEXT NOT NULL,
    UNIQUE (device, data_item_id)
);

-- What repeats from one observation of a data item to the next, stored once. A data item
-- whose component, name, category, type or subType changes gets a second row.
CREATE TABLE series (
    id           INTEGER PRIMARY KEY,
    item         INTEGER NOT NULL,
    component_id TEXT NOT NULL,
    name         TEXT,
    category     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    sub_type     TEXT,
    UNIQUE (item, component_id, name, category, kind, sub_type)
);

-- One row per observation, identified by (run, sequence) = (agent, instanceId,
-- sequence) whatever its timestamp: INSERT OR IGNORE drops what is stored. Its data item
-- is its series' item: a data item's observations are read by its series (usually one).
-- ts: microseconds since the Unix epoch, UTC. value: NULL for UNAVAILABLE, an INTEGER
-- or REAL where the text is exactly that number's canonical text, TEXT otherwise (no
-- declared type, so SQLite keeps each as given).
CREATE TABLE observations (
    run      INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    series   INTEGER NOT NULL,
    ts       INTEGER NOT NULL,
    value,
    PRIMARY KEY (run, sequence)
) WITHOUT ROWID;

CREATE INDEX observations_series_ts ON observations (series, ts, sequence);

-- The Condition observations (category CONDITION), by time, with their condition state:
-- what episodes are read from across all data items.
CREATE TABLE conditions (
    ts              INTEGER NOT NULL,
    sequence        INTEGER NOT NULL,
    run             INTEGER NOT NULL,
    item            INTEGER NOT NULL,
    level           TEXT,
    native_code     TEXT,
    native_severity TEXT,
    qualifier       TEXT,
    PRIMARY KEY (ts, sequence, run)
) WITHOUT ROWID;

-- The newest observation of every data item, kept whatever the retention.
CREATE TABLE latest (
    item            INTEGER PRIMARY KEY,
    series          INTEGER NOT NULL,
    instance_id     INTEGER NOT NULL,
    sequence        INTEGER NOT NULL,
    ts              INTEGER NOT NULL,
    value,
    level           TEXT,
    native_code     TEXT,
    native_severity TEXT,
    qualifier       TEXT
);

CREATE TABLE devices (
    agent_id  INTEGER NOT NULL,
    name      TEXT NOT NULL,
    uuid      TEXT,
    device_id TEXT NOT NULL,
    PRIMARY KEY (agent_id, name)
);

CREATE TABLE data_items (
    agent_id       INTEGER NOT NULL,
    device         TEXT NOT NULL,
    ordinal        INTEGER NOT NULL,
    id             TEXT NOT NULL,
    name           TEXT,
    category       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    sub_type       TEXT,
    units          TEXT,
    component      TEXT NOT NULL,
    component_id   TEXT NOT NULL,
    component_name TEXT,
    PRIMARY KEY (agent_id, device, ordinal)
);

CREATE TABLE gaps (
    id            INTEGER PRIMARY KEY,
    agent_id      INTEGER NOT NULL,
    instance_id   INTEGER NOT NULL,
    from_sequence INTEGER NOT NULL,
    to_sequence   INTEGER,
    recorded_at   INTEGER NOT NULL
);

-- Agents added at run time, in the order added (rowid).
CREATE TABLE configured_agents (
    url    TEXT NOT NULL UNIQUE,
    paused INTEGER NOT NULL DEFAULT 0
);

-- How many observations are stored, kept with every append and prune (one row).
CREATE TABLE counts (
    observations INTEGER NOT NULL
);
INSERT INTO counts VALUES (0);
