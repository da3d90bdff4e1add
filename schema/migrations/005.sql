-- Schema 5 (reruns): the experiment function each run called, so that
-- `recorder rerun` can call it again, and the run a rerun repeats. Runs
-- recorded before have neither (NULL): they cannot be rerun by function.

ALTER TABLE runs ADD COLUMN function INTEGER;

ALTER TABLE runs ADD COLUMN rerun_of BLOB;

CREATE TABLE functions (
	pk INTEGER NOT NULL, 
	module VARCHAR NOT NULL, 
	qualname VARCHAR NOT NULL, 
	path VARCHAR, 
	how VARCHAR NOT NULL, 
	PRIMARY KEY (pk), 
	UNIQUE (module, qualname, path, how)
);
