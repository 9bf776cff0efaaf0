-- Schema version 9: summaries kept as data arrives (see `factorydash_core::summary`).
-- Per device (its agent's URL and its name) and per period (a minute, an hour and a day:
-- `resolution` in seconds; `period` the start, Unix seconds, UTC), the seconds each
-- Execution, Availability and ControllerMode state was held (per data item), the seconds
-- a Fault or a Warning was active, and the parts counted; `summary_held` keeps what each
-- tracked key of a device holds since when, so the next batch continues the fold. Added
-- to in the append's transaction. (Made only where missing: applying it again changes
-- nothing.)

CREATE TABLE IF NOT EXISTS summary_devices (
    id     serial PRIMARY KEY,
    agent  text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    UNIQUE (agent, device)
);

CREATE TABLE IF NOT EXISTS summary_cells (
    resolution integer NOT NULL,
    period     bigint NOT NULL,
    sdevice    integer NOT NULL REFERENCES summary_devices (id),
    item       text COLLATE "C" NOT NULL,
    measure    text COLLATE "C" NOT NULL,
    state      text COLLATE "C" NOT NULL,
    value      double precision NOT NULL,
    -- A question reads each device's runs of periods: one index, device first (a second
    -- index would double every write).
    PRIMARY KEY (sdevice, resolution, period, item, measure, state)
);

CREATE TABLE IF NOT EXISTS summary_held (
    sdevice integer NOT NULL REFERENCES summary_devices (id),
    key     text COLLATE "C" NOT NULL,
    state   text NOT NULL,
    since   timestamptz NOT NULL,
    count   double precision,
    counted timestamptz,
    PRIMARY KEY (sdevice, key)
);
