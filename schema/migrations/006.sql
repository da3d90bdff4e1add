-- Schema 6 (curation): tags and notes given to runs after the fact, runs deleted softly
-- (runs.deleted: the curation event that deleted the run, NULL while it is live), and the
-- append-only log of curation events. Runs recorded before are live and have no tags or notes.

ALTER TABLE runs ADD COLUMN deleted INTEGER;

CREATE TABLE curation_events (
	pk INTEGER NOT NULL, 
	time VARCHAR NOT NULL, 
	user VARCHAR, 
	host VARCHAR NOT NULL, 
	action VARCHAR NOT NULL, 
	detail VARCHAR NOT NULL, 
	PRIMARY KEY (pk)
);

CREATE TABLE run_tags (
	run INTEGER NOT NULL, 
	tag VARCHAR NOT NULL, 
	PRIMARY KEY (run, tag), 
	FOREIGN KEY(run) REFERENCES runs (pk)
)
 WITHOUT ROWID;

CREATE INDEX run_tags_tag ON run_tags (tag);

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
