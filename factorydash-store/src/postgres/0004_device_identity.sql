-- Schema version 4: a device is its agent and its name.
-- Two agents may each serve a device of the same name (every cell's agent names its machine
-- after the model): the latest value of a data item is now kept per (device, agent_id,
-- dataItemId), and latest-values pages come in that order (agents by their id, never their
-- URL, which may hold credentials and would end up in page cursors). Observations already
-- carry their agent_id; reads of a series now filter on it.
-- Latest rows two agents already shared before this version stay one, under the agent of
-- their latest value (latest.agent_id): what was merged then cannot be told apart now.
-- Every factorydash on the database must be of this version or newer: an older one's
-- upsert of latest values names the old key and fails.
ALTER TABLE latest DROP CONSTRAINT latest_pkey;
ALTER TABLE latest ADD PRIMARY KEY (device, agent_id, data_item_id);
