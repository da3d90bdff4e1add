-- Schema 4 (short run ids): an index on the last 4 bytes of each run's id,
-- so that a short id (the last 8 or more hex digits, see recorder/ids.py)
-- is found by one index search instead of a scan of every run.

CREATE INDEX IF NOT EXISTS runs_tail ON runs (substr(id, 9, 4));
