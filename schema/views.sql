-- Views of a recorder store. They hold no data and cost nothing at write
-- time; db.py (re)creates them whenever it creates or migrates a store.
-- Run ids and pset hashes are stored as bytes and shown as hex here; run
-- start times are stored as milliseconds and shown as UTC ISO-8601,
-- durations as microseconds and shown in seconds.
-- GENERATED from recorder/store/viewsql.py, whose column expressions the wide view of each
-- experiment shares; do not edit. After a change there (and a migration in schema/migrations/
-- for existing stores), regenerate it with
--   python -c "from recorder.store.viewsql import views_sql; print(views_sql(), end='')" > schema/views.sql
-- tests/store/test_viewsql.py checks that it is what viewsql.py produces.

-- One row per run: experiment, status, times, session, env SHA, pset, the run it reruns,
-- and where it ran (host, process id, the pset's position in its sweep).
CREATE VIEW overview_runs AS
SELECT
    lower(hex(r.id)) AS run_id,
    e.name AS experiment,
    r.status AS status,
    strftime('%Y-%m-%dT%H:%M:%fZ', r.time_start_ms / 1000.0, 'unixepoch') AS time_start,
    r.duration_us / 1e6 AS duration_s,
    s.id AS session_id,
    s.env_sha AS env_sha,
    nullif(lower(hex(r.rerun_of)), '') AS rerun_of,
    (SELECT group_concat(t.tag, ',') FROM run_tags AS t WHERE t.run = r.pk) AS tags,
    coalesce(r.host, s.host) AS exec_host,
    r.pid AS exec_pid,
    r.pset_seq AS pset_seq,
    lower(hex(p.hash)) AS pset_hash,
    p.params AS params,
    r.seed AS seed
FROM runs AS r
JOIN experiments AS e ON e.pk = r.experiment
JOIN sessions AS s ON s.pk = r.session
JOIN psets AS p ON p.pk = r.pset
WHERE r.deleted IS NULL;

-- One row per experiment: its runs by status, first start and last end, sessions and env SHAs.
CREATE VIEW overview_info AS
SELECT
    e.name AS experiment,
    ifnull(c.runs, 0) AS runs,
    ifnull(c.done, 0) AS done,
    ifnull(c.failed, 0) AS failed,
    ifnull(c.interrupted, 0) AS interrupted,
    ifnull(c.running, 0) AS running,
    strftime('%Y-%m-%dT%H:%M:%fZ', c.first_start_ms / 1000.0, 'unixepoch') AS first_start,
    strftime('%Y-%m-%dT%H:%M:%fZ', c.last_end_ms / 1000.0, 'unixepoch') AS last_end,
    (SELECT count(*) FROM sessions AS s WHERE s.experiment = e.pk) AS sessions,
    (SELECT count(DISTINCT s.env_sha) FROM sessions AS s WHERE s.experiment = e.pk) AS env_shas,
    (SELECT s.env_sha FROM sessions AS s WHERE s.experiment = e.pk ORDER BY s.pk DESC LIMIT 1) AS latest_env_sha
FROM experiments AS e
LEFT JOIN (
    SELECT
        experiment,
        count(*) AS runs,
        sum(status = 'done') AS done,
        sum(status = 'failed') AS failed,
        sum(status = 'interrupted') AS interrupted,
        sum(status = 'running') AS running,
        min(time_start_ms) AS first_start_ms,
        max(time_start_ms + ifnull(duration_us, 0) / 1000) AS last_end_ms
    FROM runs
    WHERE deleted IS NULL
    GROUP BY experiment
) AS c ON c.experiment = e.pk;

-- One row per experiment and parameter name: the JSON types of its values,
-- how many distinct values (null counts as one), the smallest and largest,
-- and whether it was explored (has more than one value).
CREATE VIEW overview_parameters AS
SELECT
    e.name AS experiment,
    v.name AS name,
    v.types AS type,
    v.distinct_values AS distinct_values,
    v.min AS min,
    v.max AS max,
    v.distinct_values > 1 AS explored
FROM (
    SELECT
        u.experiment AS experiment,
        j.key AS name,
        group_concat(DISTINCT j.type) AS types,
        count(DISTINCT j.atom) + max(j.atom IS NULL) AS distinct_values,
        min(j.atom) AS min,
        max(j.atom) AS max
    FROM (SELECT DISTINCT experiment, pset FROM runs WHERE deleted IS NULL) AS u
    JOIN psets AS p ON p.pk = u.pset, json_each(p.params) AS j
    GROUP BY u.experiment, j.key
) AS v
JOIN experiments AS e ON e.pk = v.experiment;

-- The parameters that were explored: more than one value in the experiment.
CREATE VIEW overview_explored_parameters AS
SELECT experiment, name, type, distinct_values, min, max
FROM overview_parameters
WHERE explored;

-- Config values, one row per session and name.
CREATE VIEW overview_config AS
SELECT
    e.name AS experiment,
    s.id AS session_id,
    c.name AS name,
    c.kind AS kind,
    c.value AS value
FROM config AS c
JOIN sessions AS s ON s.pk = c.session
JOIN experiments AS e ON e.pk = s.experiment;

-- Every result of every run, wherever it is kept: a row of results, or one
-- of the plain numbers (int, float, bool, None) a run keeps in runs.scalars. Columns as in results: run (key), name, kind, value, comment.
CREATE VIEW results_all AS
SELECT x.run AS run, x.name AS name, x.kind AS kind, x.value AS value, x.comment AS comment
FROM results AS x
UNION ALL
SELECT
    r.pk AS run,
    j.key AS name,
    CASE WHEN j.type IN ('true', 'false') THEN 'bool' END AS kind,
    j.value AS value,
    NULL AS comment
FROM runs AS r, json_each(r.scalars) AS j
WHERE r.scalars IS NOT NULL;

-- Every result, with a short summary of its value (arrays as dtype and shape).
CREATE VIEW overview_results AS
SELECT
    lower(hex(r.id)) AS run_id,
    e.name AS experiment,
    x.name AS name,
    ifnull(x.kind, typeof(x.value)) AS kind,
    CASE
        WHEN x.kind IS NULL AND typeof(x.value) = 'text' AND length(x.value) > 60
            THEN substr(x.value, 1, 57) || '...'
        WHEN x.kind IS NULL THEN x.value
        WHEN x.kind = 'nan' THEN 'nan'
        WHEN x.kind = 'bool' THEN CASE x.value WHEN 0 THEN 'false' ELSE 'true' END
        WHEN x.kind = 'int' THEN x.value
        WHEN x.kind LIKE 'np:%' THEN ifnull(x.value, 'nan')
        WHEN x.kind = 'json' AND length(x.value) > 60 THEN substr(x.value, 1, 57) || '...'
        WHEN x.kind = 'json' THEN x.value
        WHEN x.kind = 'object' THEN 'array ' || ifnull(o.dtype || ' shape ' || o.shape, x.value)
        WHEN x.kind = 'npy' THEN 'array (' || length(x.value) || ' bytes, inline)'
        WHEN x.kind = 'npyscalar' THEN 'numpy scalar'
        WHEN x.kind = 'bytes' THEN length(x.value) || ' bytes'
        ELSE x.kind
    END AS summary,
    cm.text AS comment
FROM results_all AS x
JOIN runs AS r ON r.pk = x.run
JOIN experiments AS e ON e.pk = r.experiment
LEFT JOIN objects AS o ON x.kind = 'object' AND o.digest = x.value
LEFT JOIN comments AS cm ON cm.pk = x.comment
WHERE r.deleted IS NULL;

-- The first result of each name in each experiment, in full: what the name holds.
CREATE VIEW overview_results_summary AS
SELECT
    e.name AS experiment,
    f.name AS name,
    lower(hex(r.id)) AS first_run_id,
    CASE WHEN f.kind = 'scalars'
        THEN (SELECT CASE WHEN j.type IN ('true', 'false') THEN 'bool' END FROM json_each(r.scalars) AS j WHERE j.key = f.name)
        ELSE x.kind END AS kind,
    CASE WHEN f.kind = 'scalars'
        THEN (SELECT j.value FROM json_each(r.scalars) AS j WHERE j.key = f.name)
        ELSE x.value END AS value,
    o.dtype AS dtype,
    o.shape AS shape,
    o.size AS size,
    cm.text AS comment
FROM fields AS f
JOIN experiments AS e ON e.pk = f.experiment
JOIN runs AS r ON r.pk = f.first_run
LEFT JOIN results AS x ON f.kind != 'scalars' AND x.run = f.first_run AND x.name = f.name
LEFT JOIN objects AS o ON x.kind = 'object' AND o.digest = x.value
LEFT JOIN comments AS cm ON cm.pk = x.comment
WHERE f.role = 'result'
  AND f.pk = (
      SELECT min(g.pk) FROM fields AS g
      WHERE g.experiment = f.experiment AND g.role = 'result' AND g.name = f.name
  );

-- One row per session: code state (git), host and environment.
CREATE VIEW overview_sessions AS
SELECT
    s.id AS session_id,
    e.name AS experiment,
    s.status AS status,
    s.time_start AS time_start,
    s.time_end AS time_end,
    s.message AS message,
    s.env_sha AS env_sha,
    s.git_mode AS git_mode,
    s.git_commit AS git_commit,
    s.git_branch AS git_branch,
    s.git_dirty AS git_dirty,
    s.git_auto_committed AS git_auto_committed,
    s.git_snapshot_ref AS git_snapshot_ref,
    s.host AS host,
    s.user AS user,
    s.platform AS platform,
    s.python AS python,
    s.recorder_version AS recorder_version,
    s.fingerprint AS fingerprint
FROM sessions AS s
JOIN experiments AS e ON e.pk = s.experiment;

-- Each distinct comment on a result name of an experiment once (pypet's
-- purge-duplicate-comments), with the first run that carried it and how
-- many runs share it.
CREATE VIEW result_comments AS
SELECT
    e.name AS experiment,
    c.name AS name,
    c.comment AS comment,
    lower(hex(r.id)) AS first_run_id,
    c.runs AS runs
FROM (
    SELECT
        r.experiment AS experiment,
        x.name AS name,
        cm.text AS comment,
        min(x.run) AS first_run,
        count(*) AS runs
    FROM results AS x
    JOIN comments AS cm ON cm.pk = x.comment
    JOIN runs AS r ON r.pk = x.run
    WHERE r.deleted IS NULL
    GROUP BY r.experiment, x.name, cm.text
) AS c
JOIN experiments AS e ON e.pk = c.experiment
JOIN runs AS r ON r.pk = c.first_run;
