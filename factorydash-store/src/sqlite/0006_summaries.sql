-- factorydash SQLite schema, version 6: summaries kept as data arrives (see
-- `factorydash_core::summary`). Per device (its agent's URL and its name) and per period
-- (a minute, an hour and a day: `resolution` in seconds; `period` the start, Unix seconds,
-- UTC), the seconds each Execution, Availability and ControllerMode state was held (per
-- data item), the seconds a Fault or a Warning was active, and the parts counted.
-- `summary_held` keeps what each tracked key of a device holds since when (microseconds,
-- UTC), so the next batch continues the fold.

CREATE TABLE summary_devices (
    id     INTEGER PRIMARY KEY,
    agent  TEXT NOT NULL,
    device TEXT NOT NULL,
    UNIQUE (agent, device)
);

CREATE TABLE summary_cells (
    resolution INTEGER NOT NULL,
    period     INTEGER NOT NULL,
    sdevice    INTEGER NOT NULL REFERENCES summary_devices (id),
    item       TEXT NOT NULL,
    measure    TEXT NOT NULL,
    state      TEXT NOT NULL,
    value      REAL NOT NULL,
    -- A question reads each device's runs of periods: one index, device first (a second
    -- index would double every write).
    PRIMARY KEY (sdevice, resolution, period, item, measure, state)
) WITHOUT ROWID;

CREATE TABLE summary_held (
    sdevice INTEGER NOT NULL REFERENCES summary_devices (id),
    key     TEXT NOT NULL,
    state   TEXT NOT NULL,
    since   INTEGER NOT NULL,
    count   REAL,
    counted INTEGER,
    PRIMARY KEY (sdevice, key)
) WITHOUT ROWID;
