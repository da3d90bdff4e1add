-- Views of a recorder store. They hold no data and cost nothing at write
-- time; db.py (re)creates them whenever it creates or migrates a store.

-- One row per run: experiment, status, times, session, env SHA, pset.
CREATE VIEW overview_runs AS
SELECT
    r.id AS run_id,
    e.name AS experiment,
    r.status AS status,
    r.time_start AS time_start,
    r.duration_s AS duration_s,
    s.id AS session_id,
    s.env_sha AS env_sha,
    p.hash AS pset_hash,
    p.params AS params,
    r.seed AS seed
FROM runs AS r
JOIN experiments AS e ON e.pk = r.experiment
JOIN sessions AS s ON s.pk = r.session
JOIN psets AS p ON p.pk = r.pset;
