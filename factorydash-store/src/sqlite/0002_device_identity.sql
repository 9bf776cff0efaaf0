-- factorydash SQLite schema, version 2: a device is its agent and its name.
-- Two agents may each serve a device of the same name; a data item is now keyed by
-- (device, agent_id, dataItemId), so that their latest values and series are kept apart,
-- and latest-values pages come in that order (agents by their row id, never their URL,
-- which may hold credentials and would end up in page cursors). Item ids are kept:
-- series, latest and conditions still point at the same rows.
--
-- An existing item gets the agent that wrote its latest value: the run of the latest
-- row's instanceId holding its sequence (one primary-key probe per run of that
-- instanceId); with that observation pruned, the first agent with a run of that
-- instanceId; then the first agent whose device model has the device; else 0 (none).
-- Items two agents already shared before this version stay one, under the agent of their
-- latest value: what was merged then cannot be told apart now.

CREATE TABLE items_v2 (
    id           INTEGER PRIMARY KEY,
    device       TEXT NOT NULL,
    agent_id     INTEGER NOT NULL,
    data_item_id TEXT NOT NULL,
    UNIQUE (device, agent_id, data_item_id)
);

INSERT INTO items_v2 (id, device, agent_id, data_item_id)
SELECT i.id, i.device,
       coalesce(
           (SELECT r.agent_id FROM latest l
              JOIN runs r ON r.instance_id = l.instance_id
              JOIN observations o ON o.run = r.id AND o.sequence = l.sequence
             WHERE l.item = i.id LIMIT 1),
           (SELECT r.agent_id FROM latest l
              JOIN runs r ON r.instance_id = l.instance_id
             WHERE l.item = i.id ORDER BY r.agent_id LIMIT 1),
           (SELECT d.agent_id FROM devices d
             WHERE d.name = i.device ORDER BY d.agent_id LIMIT 1),
           0),
       i.data_item_id
  FROM items i;

DROP TABLE items;
ALTER TABLE items_v2 RENAME TO items;
