-- factorydash SQLite schema, version 5: device records (what an admin says about a
-- device: a display name, its layout cell, a description, its ideal cycle time; see
-- `factorydash_core::records::DeviceRecord`), one per device (its agent's URL without
-- credentials and its name). Names compare with the BINARY collation (byte order), as
-- PostgreSQL's "C". Times are microseconds since the Unix epoch, UTC, as everywhere in
-- this schema; the ideal cycle time is in seconds.

CREATE TABLE device_records (
    agent            TEXT NOT NULL,
    device           TEXT NOT NULL,
    display_name     TEXT,
    cell             TEXT,
    description      TEXT,
    ideal_cycle_time REAL,
    updated_at       INTEGER NOT NULL,
    updated_by       TEXT NOT NULL,
    PRIMARY KEY (agent, device)
);
