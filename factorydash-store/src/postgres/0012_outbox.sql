-- factorydash PostgreSQL schema, version 12: the outbox of alarm deliveries. Each change
-- to an alarm that a receiver (a webhook) is to get is kept here from when it is queued
-- until the receiver confirms it (the row is then deleted), so that a restart delivers
-- what was not, and nothing twice to a receiver that confirmed it.

CREATE TABLE IF NOT EXISTS outbox (
    id        bigserial PRIMARY KEY,
    receiver  text COLLATE "C" NOT NULL,
    body      text NOT NULL,
    queued_at timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS outbox_receiver ON outbox (receiver, id);
