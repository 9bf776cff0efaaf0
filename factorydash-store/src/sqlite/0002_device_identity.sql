-- factorydash SQLite schema, version 2: a device is its agent and its name.
-- Two agents may each serve a device of the same name; a data item is now keyed by
-- (device, agent, dataItemId), the agent being its base URL (as agents.url), so that
-- their latest values and series are kept apart. Item ids are kept: series, latest and
-- conditions still point at the same rows.
--
-- An existing item gets the agent of its newest stored observation, or, with its history
-- pruned, of the first agent whose device model has that device, or '' when neither is
-- known. Items two agents already shared before this version stay one (under the agent
-- that wrote last): what was merged then cannot be told apart now.

CREATE TABLE items_v2 (
    id           INTEGER PRIMARY KEY,
    device       TEXT NOT NULL,
    agent        TEXT NOT NULL,
    data_item_id TEXT NOT NULL,
    UNIQUE (device, agent, data_item_id)
);

INSERT INTO items_v2 (id, device, agent, data_item_id)
SELECT i.id, i.device,
       coalesce(
           (SELECT a.url FROM series s
              JOIN observations o ON o.series = s.id
              JOIN runs r ON r.id = o.run
              JOIN agents a ON a.id = r.agent_id
             WHERE s.item = i.id
             ORDER BY o.ts DESC, o.sequence DESC LIMIT 1),
           (SELECT a.url FROM devices d JOIN agents a ON a.id = d.agent_id
             WHERE d.name = i.device ORDER BY a.id LIMIT 1),
           ''),
       i.data_item_id
  FROM items i;

DROP TABLE items;
ALTER TABLE items_v2 RENAME TO items;
