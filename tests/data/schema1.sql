-- A store as recorder's schema 1 wrote it (PRAGMA user_version = 1, application_id 0), for
-- tests/store/test_schema.py: its tables, indexes and views, then one experiment "exp" with two runs.
--
-- Generated once (never at test time) from the commit that last wrote schema 1 (02884ae):
--   git archive 02884ae | tar -x -C /tmp/old && PYTHONPATH=/tmp/old python gen.py /tmp/s1 > dump.sql
-- where gen.py recorded, with recorder.Recorder("exp", store=..., git=False), for (a, b) in
-- ((1, "x"), (2, "y")): run(a=a, b=b, c=0.5 * a) logging y=1.5 * a, n=a, flag=a == 2,
-- label=f"a={a}", z=None; then printed `SELECT sql FROM sqlite_master ORDER BY rowid` and the
-- INSERTs of sqlite3's iterdump(). The session row is scrubbed (host, user, argv, no texts).
-- The DDL is SQLAlchemy's output of that time, unchanged: do not reformat it.

CREATE TABLE comments (
	pk INTEGER NOT NULL, 
	text VARCHAR NOT NULL, 
	PRIMARY KEY (pk)
);
CREATE INDEX comments_text ON comments (text);
CREATE TABLE experiments (
	pk INTEGER NOT NULL, 
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	time_created VARCHAR NOT NULL, 
	PRIMARY KEY (pk), 
	UNIQUE (id), 
	UNIQUE (name)
);
CREATE TABLE objects (
	digest VARCHAR NOT NULL, 
	size INTEGER NOT NULL, 
	dtype VARCHAR NOT NULL, 
	shape VARCHAR NOT NULL, 
	time_created VARCHAR NOT NULL, 
	PRIMARY KEY (digest)
)
 WITHOUT ROWID

;
CREATE TABLE psets (
	pk INTEGER NOT NULL, 
	hash BLOB NOT NULL, 
	params VARCHAR NOT NULL, 
	PRIMARY KEY (pk), 
	UNIQUE (hash)
);
CREATE TABLE texts (
	digest VARCHAR NOT NULL, 
	text VARCHAR NOT NULL, 
	PRIMARY KEY (digest)
)
 WITHOUT ROWID

;
CREATE TABLE sessions (
	pk INTEGER NOT NULL, 
	id VARCHAR NOT NULL, 
	experiment INTEGER NOT NULL, 
	status VARCHAR NOT NULL, 
	time_start VARCHAR NOT NULL, 
	time_end VARCHAR, 
	message VARCHAR, 
	comment VARCHAR, 
	seed INTEGER, 
	env_sha VARCHAR NOT NULL, 
	git_mode VARCHAR, 
	git_repo VARCHAR, 
	git_commit VARCHAR, 
	git_branch VARCHAR, 
	git_dirty BOOLEAN, 
	git_auto_committed BOOLEAN, 
	git_snapshot_ref VARCHAR, 
	git_diff VARCHAR, 
	untracked_modules VARCHAR, 
	host VARCHAR NOT NULL, 
	user VARCHAR, 
	pid INTEGER NOT NULL, 
	platform VARCHAR NOT NULL, 
	python VARCHAR NOT NULL, 
	recorder_version VARCHAR NOT NULL, 
	packages VARCHAR, 
	fingerprint VARCHAR NOT NULL, 
	argv VARCHAR NOT NULL, 
	cwd VARCHAR NOT NULL, 
	script_path VARCHAR, 
	script VARCHAR, 
	jax VARCHAR, 
	PRIMARY KEY (pk), 
	UNIQUE (id), 
	FOREIGN KEY(experiment) REFERENCES experiments (pk), 
	FOREIGN KEY(git_diff) REFERENCES texts (digest), 
	FOREIGN KEY(packages) REFERENCES texts (digest), 
	FOREIGN KEY(script) REFERENCES texts (digest)
);
CREATE INDEX sessions_experiment ON sessions (experiment);
CREATE INDEX sessions_running ON sessions (pk) WHERE status = 'running';
CREATE TABLE config (
	session INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	kind VARCHAR, 
	value , 
	PRIMARY KEY (session, name), 
	FOREIGN KEY(session) REFERENCES sessions (pk)
)
 WITHOUT ROWID

;
CREATE TABLE runs (
	pk INTEGER NOT NULL, 
	id BLOB NOT NULL, 
	experiment INTEGER NOT NULL, 
	session INTEGER NOT NULL, 
	pset INTEGER NOT NULL, 
	status VARCHAR NOT NULL, 
	time_start_ms INTEGER NOT NULL, 
	duration_us INTEGER, 
	seed INTEGER NOT NULL, 
	comment INTEGER, 
	error VARCHAR, 
	output VARCHAR, 
	PRIMARY KEY (pk), 
	UNIQUE (id), 
	FOREIGN KEY(experiment) REFERENCES experiments (pk), 
	FOREIGN KEY(session) REFERENCES sessions (pk), 
	FOREIGN KEY(pset) REFERENCES psets (pk), 
	FOREIGN KEY(comment) REFERENCES comments (pk), 
	FOREIGN KEY(output) REFERENCES texts (digest)
);
CREATE INDEX runs_pset ON runs (pset);
CREATE INDEX runs_running ON runs (session) WHERE status = 'running';
CREATE TABLE results (
	run INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	kind VARCHAR, 
	value , 
	comment INTEGER, 
	PRIMARY KEY (run, name), 
	FOREIGN KEY(run) REFERENCES runs (pk), 
	FOREIGN KEY(comment) REFERENCES comments (pk)
)
 WITHOUT ROWID

;
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

INSERT INTO "experiments" VALUES(1,'01a22759f31d0e4f230e7349','exp','2026-11-29T12:48:55.737173Z');
INSERT INTO "sessions" VALUES(1,'01a22759f1b92f456a77176b',1,'done','2026-11-29T12:48:55.737173Z','2026-11-29T12:48:56.094779Z',NULL,NULL,NULL,'5a41c5b957bbfa0b659e25ed316822e4759de404',NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,'host','user',2657,'Linux','CPython 3.11.7','0.1.0',NULL,'6ee32a2680a2903b','["gen_schema1.py"]','/tmp',NULL,NULL,NULL);
INSERT INTO "psets" VALUES(1,X'5590DB0FA6A59191CC91','{"a":1,"b":"x","c":0.5}');
INSERT INTO "psets" VALUES(2,X'CF497807BFC50AA3D7C0','{"a":2,"b":"y","c":1.0}');
INSERT INTO "runs" VALUES(1,X'01A22759F31D0E4F230E734A',1,1,1,'done',1795956536093,424,1210020387,NULL,NULL,NULL);
INSERT INTO "runs" VALUES(2,X'01A22759F31D0E4F230E734B',1,1,2,'done',1795956536094,18,1847126660,NULL,NULL,NULL);
INSERT INTO "results" VALUES(1,'flag','bool',0,NULL);
INSERT INTO "results" VALUES(1,'label',NULL,'a=1',NULL);
INSERT INTO "results" VALUES(1,'n',NULL,1,NULL);
INSERT INTO "results" VALUES(1,'y',NULL,1.5,NULL);
INSERT INTO "results" VALUES(1,'z',NULL,NULL,NULL);
INSERT INTO "results" VALUES(2,'flag','bool',1,NULL);
INSERT INTO "results" VALUES(2,'label',NULL,'a=2',NULL);
INSERT INTO "results" VALUES(2,'n',NULL,2,NULL);
INSERT INTO "results" VALUES(2,'y',NULL,3.0,NULL);
INSERT INTO "results" VALUES(2,'z',NULL,NULL,NULL);
