-- factorydash PostgreSQL schema, version 11: the summaries' rows no longer check their
-- device's row by a foreign key. A foreign key on PostgreSQL is a trigger run per row
-- written (a lookup and a row lock on `summary_devices`), and a batch writes up to tens of
-- thousands of cells; the ids come from `summary_devices`, whose rows are never deleted
-- nor renumbered, so the check could never fail.

ALTER TABLE summary_cells DROP CONSTRAINT IF EXISTS summary_cells_sdevice_fkey;
ALTER TABLE summary_held DROP CONSTRAINT IF EXISTS summary_held_sdevice_fkey;
