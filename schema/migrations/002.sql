-- Schema 2: the names of each experiment's parameters and results (the
-- columns of its wide view), filled from the runs already stored; and
-- runs.scalars, where new runs keep their plain scalar results.

ALTER TABLE runs ADD COLUMN scalars VARCHAR;

CREATE TABLE fields (
	pk INTEGER NOT NULL, 
	experiment INTEGER NOT NULL, 
	role VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	first_run INTEGER, 
	PRIMARY KEY (pk), 
	FOREIGN KEY(experiment) REFERENCES experiments (pk), 
	FOREIGN KEY(first_run) REFERENCES runs (pk)
);

CREATE UNIQUE INDEX fields_name ON fields (experiment, role, name, kind);

INSERT INTO fields (experiment, role, name, kind, first_run)
SELECT r.experiment, 'param', j.key, '', min(r.pk)
FROM runs AS r JOIN psets AS p ON p.pk = r.pset, json_each(p.params) AS j
GROUP BY r.experiment, j.key
ORDER BY min(r.pk), j.key;

INSERT INTO fields (experiment, role, name, kind, first_run)
SELECT r.experiment, 'result', x.name, ifnull(x.kind, ''), min(r.pk)
FROM runs AS r JOIN results AS x ON x.run = r.pk
GROUP BY r.experiment, x.name, ifnull(x.kind, '')
ORDER BY min(r.pk), x.name;
