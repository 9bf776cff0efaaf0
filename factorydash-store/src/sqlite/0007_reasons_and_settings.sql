-- factorydash SQLite schema, version 7: operators' reasons for stops (see
-- `factorydash_core::reasons::StopReason`), one per stop: its device (the agent's URL
-- without credentials and the device's name), its Execution data item and its start.
-- Names compare with the BINARY collation (byte order), as PostgreSQL's "C". Times are
-- microseconds since the Unix epoch, UTC, as everywhere in this schema.

CREATE TABLE stop_reasons (
    agent    TEXT NOT NULL,
    device   TEXT NOT NULL,
    began    INTEGER NOT NULL,
    item     TEXT NOT NULL,
    reason   TEXT NOT NULL,
    comment  TEXT,
    given_at INTEGER NOT NULL,
    given_by TEXT NOT NULL,
    PRIMARY KEY (agent, device, began, item)
) WITHOUT ROWID;

-- Retention drops reasons by their stop's start, whatever the device.
CREATE INDEX stop_reasons_began ON stop_reasons (began);

-- Settings an admin changes at run time (the shift calendar's text), by key: the text,
-- when (µs since the epoch, UTC) and by whom.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
