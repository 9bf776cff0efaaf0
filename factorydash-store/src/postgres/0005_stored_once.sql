-- Schema version 5: an observation is stored once, whatever its timestamp.
-- `observations` is partitioned by day, so its key must hold `ts`, and an agent that sends
-- one (instanceId, sequence) again with another timestamp got past it (an agent
-- alternating between two instances stored each observation hundreds of times). The
-- identity (agent, instanceId, sequence) is now enforced by `stored_sequences`: the
-- sequences of each run of an agent (agent, instanceId) that are stored, as ranges that
-- never overlap (an exclusion constraint, the unique key of ranges), written in the same
-- transaction as the observations. A batch claims, for each stretch of its new sequences
-- between two stored ranges, the range from its first to its last sequence; adjacent
-- ranges are merged, so a run read without a gap is one row. Sequences an agent skipped
-- inside a claimed range are never taken later: a follower never goes back within an
-- instance (MTConnect Part 1, Header: sequences only increase within one instanceId).
-- The ranges are kept whatever the retention: what was stored and dropped is not stored
-- again.
-- Built-in range types only (no btree_gist): each column compared as a one-value
-- `numrange` (numeric, so that no bound overflows a bigint), overlap (&&) on all three
-- meaning: same agent, same instance, overlapping sequences.
CREATE TABLE stored_sequences (
    agent_id       integer NOT NULL REFERENCES agents (id),
    instance_id    bigint NOT NULL,
    first_sequence bigint NOT NULL,
    last_sequence  bigint NOT NULL,
    CHECK (first_sequence <= last_sequence),
    CONSTRAINT stored_sequences_once EXCLUDE USING gist (
        numrange(agent_id, agent_id, '[]') WITH &&,
        numrange(instance_id, instance_id, '[]') WITH &&,
        numrange(first_sequence, last_sequence, '[]') WITH &&
    ) DEFERRABLE INITIALLY DEFERRED
);
-- The ranges of one run, for the append's replacement of the ranges a batch merges and
-- for Store::instances (the exclusion constraint's GiST index is on expressions).
CREATE INDEX stored_sequences_run ON stored_sequences (agent_id, instance_id, first_sequence);

-- The copies an earlier version stored: one of each (agent, instanceId, sequence) is
-- kept, the one with the earliest timestamp (the first stored).
DELETE FROM observations o
USING (
    SELECT tableoid, ctid,
           row_number() OVER (PARTITION BY agent_id, instance_id, sequence
                              ORDER BY ts, tableoid, ctid) AS n
    FROM observations
) d
WHERE o.tableoid = d.tableoid AND o.ctid = d.ctid AND d.n > 1;

-- A latest value that was one of the copies takes the kept one's timestamp.
UPDATE latest l SET ts = o.ts
FROM observations o
WHERE o.agent_id = l.agent_id AND o.instance_id = l.instance_id
  AND o.sequence = l.sequence AND o.ts <> l.ts;

-- What is stored, as ranges without holes ("islands": consecutive sequences share
-- sequence - row_number()).
INSERT INTO stored_sequences (agent_id, instance_id, first_sequence, last_sequence)
SELECT agent_id, instance_id, min(sequence), max(sequence)
FROM (
    SELECT agent_id, instance_id, sequence,
           sequence - row_number() OVER (PARTITION BY agent_id, instance_id
                                         ORDER BY sequence) AS island
    FROM observations
) s
GROUP BY agent_id, instance_id, island;
