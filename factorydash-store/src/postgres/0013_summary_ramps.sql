-- Schema version 13: summary_cells rows of resolution 0 are ramps (see
-- `factorydash_core::summary::Resolution::Ramp`): a time measure's rate changes within an
-- hour, `period` in Unix microseconds, instead of a row per minute. No table changes; the
-- version tells builds that read minutes only (they would miss the ramps, and their
-- retention would drop them) that this database is not theirs.
COMMENT ON COLUMN summary_cells.resolution IS
    'period length in seconds (60, 3600, 86400); 0: a ramp, period in Unix microseconds';
