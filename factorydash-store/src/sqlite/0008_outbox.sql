-- factorydash SQLite schema, version 8: the outbox of alarm deliveries. Each change to
-- an alarm that a receiver (a webhook) is to get is kept here from when it is queued
-- until the receiver confirms it (the row is then deleted), so that a restart delivers
-- what was not, and nothing twice to a receiver that confirmed it. `queued_at` is
-- microseconds since the epoch, UTC.

CREATE TABLE outbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver  TEXT NOT NULL,
    body      TEXT NOT NULL,
    queued_at INTEGER NOT NULL
);

CREATE INDEX outbox_receiver ON outbox (receiver, id);
