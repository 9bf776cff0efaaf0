-- Schema version 10: operators' reasons for stops (see
-- `factorydash_core::reasons::StopReason`), one per stop: its device (the agent's URL
-- without credentials and the device's name), its Execution data item and its start.
-- Names compare and sort in the "C" collation (byte order), as the other stores'. (Made
-- only where missing: applying it again changes nothing.)

CREATE TABLE IF NOT EXISTS stop_reasons (
    agent    text COLLATE "C" NOT NULL,
    device   text COLLATE "C" NOT NULL,
    began    timestamptz NOT NULL,
    item     text COLLATE "C" NOT NULL,
    reason   text NOT NULL,
    comment  text,
    given_at timestamptz NOT NULL,
    given_by text NOT NULL,
    PRIMARY KEY (agent, device, began, item)
);

-- Retention drops reasons by their stop's start, whatever the device.
CREATE INDEX IF NOT EXISTS stop_reasons_began ON stop_reasons (began);

-- Settings an admin changes at run time (the shift calendar's text), by key: the text,
-- when and by whom.
CREATE TABLE IF NOT EXISTS settings (
    key        text COLLATE "C" PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);
