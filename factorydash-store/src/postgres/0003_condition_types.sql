-- Schema version 3: a Condition's type is kept in the element-name form every other
-- observation's type has (`SYSTEM` -> `System`, `LOGIC_PROGRAM` -> `LogicProgram`,
-- `x:MY_TYPE` -> `x:MyType`; see factorydash_core::element_name). Words already in mixed
-- case are kept as written.
CREATE FUNCTION pg_temp.factorydash_element_name(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(substring(t from '^([^:]*:)'), '')
        || coalesce((
            SELECT string_agg(
                       CASE WHEN w ~ '[a-z]' THEN upper(left(w, 1)) || substr(w, 2)
                            ELSE upper(left(w, 1)) || lower(substr(w, 2)) END,
                       '' ORDER BY n)
            FROM unnest(string_to_array(regexp_replace(t, '^[^:]*:', ''), '_'))
                 WITH ORDINALITY AS words(w, n)
            WHERE w <> ''), '')
$$;

UPDATE observations SET kind = pg_temp.factorydash_element_name(kind)
    WHERE category = 'CONDITION' AND kind <> pg_temp.factorydash_element_name(kind);
UPDATE latest SET kind = pg_temp.factorydash_element_name(kind)
    WHERE category = 'CONDITION' AND kind <> pg_temp.factorydash_element_name(kind);
