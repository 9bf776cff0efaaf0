-- Schema version 8: device records (what an admin says about a device: a display name,
-- its layout cell, a description, its ideal cycle time; see
-- `factorydash_core::records::DeviceRecord`), one per device (its agent's URL without
-- credentials and its name). Names compare and sort in the "C" collation (byte order), as
-- the other stores'. The ideal cycle time is in seconds. (Made only where missing:
-- applying it again changes nothing.)

CREATE TABLE IF NOT EXISTS device_records (
    agent            text COLLATE "C" NOT NULL,
    device           text COLLATE "C" NOT NULL,
    display_name     text,
    cell             text,
    description      text,
    ideal_cycle_time double precision,
    updated_at       timestamptz NOT NULL,
    updated_by       text NOT NULL,
    PRIMARY KEY (agent, device)
);
