-- Schema version 4: a device is its agent and its name.
-- Two agents may each serve a device of the same name (every cell's agent names its machine
-- after the model): the latest value of a data item is now kept per (device, agent,
-- dataItemId), the agent being its base URL (as agents.url), so that latest-values pages
-- are ordered and paged by (device, agent, dataItemId). Observations already carry their
-- agent_id; reads of a series now filter on it.
-- Latest rows two agents already shared before this version stay one, under the agent that
-- wrote last: what was merged then cannot be told apart now.
ALTER TABLE latest ADD COLUMN agent text COLLATE "C";
UPDATE latest l SET agent = a.url FROM agents a WHERE a.id = l.agent_id;
ALTER TABLE latest ALTER COLUMN agent SET NOT NULL;
ALTER TABLE latest DROP CONSTRAINT latest_pkey;
ALTER TABLE latest ADD PRIMARY KEY (device, agent, data_item_id);
