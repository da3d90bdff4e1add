-- Views of a recorder store. They hold no data and cost nothing at write
-- time; db.py (re)creates them whenever it creates or migrates a store.
-- Run ids and pset hashes are stored as bytes and shown as hex here; run
-- start times are stored as milliseconds and shown as UTC ISO-8601,
-- durations as microseconds and shown in seconds.

-- One row per run: experiment, status, times, session, env SHA, pset.
CREATE VIEW overview_runs AS
SELECT
    lower(hex(r.id)) AS run_id,
    e.name AS experiment,
    r.status AS status,
    strftime('%Y-%m-%dT%H:%M:%fZ', r.time_start_ms / 1000.0, 'unixepoch') AS time_start,
    r.duration_us / 1e6 AS duration_s,
    s.id AS session_id,
    s.env_sha AS env_sha,
    lower(hex(p.hash)) AS pset_hash,
    p.params AS params,
    r.seed AS seed
FROM runs AS r
JOIN experiments AS e ON e.pk = r.experiment
JOIN sessions AS s ON s.pk = r.session
JOIN psets AS p ON p.pk = r.pset;
