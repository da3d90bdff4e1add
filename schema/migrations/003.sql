-- Schema 3: the kinds of the fields say which names held text, so that the
-- wide views can give each column the type affinity of its values (text, or
-- numbers). Version 2 recorded '' for every parameter and for every plain
-- result kept as a row, whatever its type. Now '' is a value other than a
-- str, and 'text' a str: a name that only held text is relabelled in place
-- (keeping its place among the columns), and a name that held both gets a
-- 'text' row besides. The views are rebuilt after the migration.

UPDATE fields SET kind = 'text'
WHERE role = 'param' AND kind = '' AND (experiment, name) IN (
    SELECT u.experiment, j.key
    FROM (SELECT DISTINCT experiment, pset FROM runs) AS u
    JOIN psets AS p ON p.pk = u.pset, json_each(p.params) AS j
    GROUP BY u.experiment, j.key
    HAVING max(j.type != 'text') = 0
);

INSERT OR IGNORE INTO fields (experiment, role, name, kind, first_run)
SELECT r.experiment, 'param', j.key, 'text', min(r.pk)
FROM runs AS r JOIN psets AS p ON p.pk = r.pset, json_each(p.params) AS j
WHERE j.type = 'text'
GROUP BY r.experiment, j.key
ORDER BY min(r.pk), j.key;

UPDATE fields SET kind = 'text'
WHERE role = 'result' AND kind = '' AND (experiment, name) IN (
    SELECT r.experiment, x.name
    FROM results AS x JOIN runs AS r ON r.pk = x.run
    WHERE x.kind IS NULL
    GROUP BY r.experiment, x.name
    HAVING max(typeof(x.value) != 'text') = 0
);

INSERT OR IGNORE INTO fields (experiment, role, name, kind, first_run)
SELECT r.experiment, 'result', x.name, 'text', min(r.pk)
FROM results AS x JOIN runs AS r ON r.pk = x.run
WHERE x.kind IS NULL AND typeof(x.value) = 'text'
GROUP BY r.experiment, x.name
ORDER BY min(r.pk), x.name;
