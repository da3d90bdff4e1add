-- Schema 7 (where a run ran; imported runs): the host of a run when it differs from its
-- session's (NULL: the session's host), the process id that ran it, its pset's position in the
-- sweep, and the origin of an imported run ("<tool>:<source run id>", NULL for runs recorded
-- here). Runs recorded before have NULL in all four.

ALTER TABLE runs ADD COLUMN host VARCHAR;
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN pset_seq INTEGER;
ALTER TABLE runs ADD COLUMN origin VARCHAR;
