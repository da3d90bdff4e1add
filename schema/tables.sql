-- The tables and indexes of a store of the current schema: what creating a store runs.
-- GENERATED from recorder/store/models.py, the one source of the tables; do not edit. After a change
-- to the models (and a migration in schema/migrations/ for existing stores), regenerate it with
--   python -c "from recorder.store.models import tables_sql; print(tables_sql(), end='')" > schema/tables.sql
-- tests/store/test_schema.py checks that it is what the models produce.

CREATE TABLE comments (
	pk INTEGER NOT NULL, 
	text VARCHAR NOT NULL, 
	PRIMARY KEY (pk)
);

CREATE INDEX comments_text ON comments (text);

CREATE TABLE curation_events (
	pk INTEGER NOT NULL, 
	time VARCHAR NOT NULL, 
	user VARCHAR, 
	host VARCHAR NOT NULL, 
	action VARCHAR NOT NULL, 
	detail VARCHAR NOT NULL, 
	PRIMARY KEY (pk)
);

CREATE TABLE experiments (
	pk INTEGER NOT NULL, 
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	time_created VARCHAR NOT NULL, 
	PRIMARY KEY (pk), 
	UNIQUE (id), 
	UNIQUE (name)
);

CREATE TABLE functions (
	pk INTEGER NOT NULL, 
	module VARCHAR NOT NULL, 
	qualname VARCHAR NOT NULL, 
	path VARCHAR, 
	how VARCHAR NOT NULL, 
	PRIMARY KEY (pk), 
	UNIQUE (module, qualname, path, how)
);

CREATE TABLE objects (
	digest VARCHAR NOT NULL, 
	size INTEGER NOT NULL, 
	dtype VARCHAR NOT NULL, 
	shape VARCHAR NOT NULL, 
	time_created VARCHAR NOT NULL, 
	PRIMARY KEY (digest)
)
 WITHOUT ROWID;

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
 WITHOUT ROWID;

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
 WITHOUT ROWID;

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
	scalars VARCHAR, 
	function INTEGER, 
	rerun_of BLOB, 
	deleted INTEGER, 
	host VARCHAR, 
	pid INTEGER, 
	pset_seq INTEGER, 
	origin VARCHAR, 
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

CREATE INDEX runs_tail ON runs (substr(id, 9, 4));

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
 WITHOUT ROWID;

CREATE TABLE run_notes (
	pk INTEGER NOT NULL, 
	run INTEGER NOT NULL, 
	text VARCHAR NOT NULL, 
	time VARCHAR NOT NULL, 
	user VARCHAR, 
	host VARCHAR NOT NULL, 
	PRIMARY KEY (pk), 
	FOREIGN KEY(run) REFERENCES runs (pk)
);

CREATE INDEX run_notes_run ON run_notes (run);

CREATE TABLE run_tags (
	run INTEGER NOT NULL, 
	tag VARCHAR NOT NULL, 
	PRIMARY KEY (run, tag), 
	FOREIGN KEY(run) REFERENCES runs (pk)
)
 WITHOUT ROWID;

CREATE INDEX run_tags_tag ON run_tags (tag);

