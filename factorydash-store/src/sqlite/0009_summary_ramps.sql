-- factorydash SQLite schema, version 9: summary_cells rows of resolution 0 are ramps (see
-- `factorydash_core::summary::Resolution::Ramp`): a time measure's rate changes within an
-- hour, `period` in Unix microseconds, instead of a row per minute. No table changes; the
-- version tells builds that read minutes only (they would miss the ramps, and their
-- retention would drop them) that this store is not theirs.
PRAGMA user_version = 9;
