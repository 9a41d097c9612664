-- Print jobs of kind 'pickup': the slip of a pickup hand-over, queued in
-- the hand-over's transaction as a receipt is in its sale's (and a return
-- slip, kind 'return', in its return's). A CHECK cannot be altered in
-- SQLite, so both job tables are rebuilt (sqlite.org/lang_altertable.html,
-- "Making Other Kinds Of Table Schema Changes"): the view over them goes
-- first and comes back last.
--
-- print_queue keeps its CHECK, now with 'pickup'; it stays a page or two,
-- so its copy is free. print_history loses its CHECK on kind: every row it
-- gets comes from print_queue (agent/printq.go unqueue), which checked the
-- kind already, so the next kind costs a rebuild of the small table only.
-- Its copy here is one pass over the printed jobs (about a row per sale
-- ever made); the rows keep their ids, states and times. pos keeps the
-- queue order of pending jobs.

DROP VIEW print_jobs;

CREATE TABLE print_queue_new (
    pos        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    sale_id    TEXT,
    receipt    TEXT,
    kind       TEXT NOT NULL CHECK (kind IN ('receipt', 'copy', 'return', 'report', 'pickup')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
INSERT INTO print_queue_new(pos, id, sale_id, receipt, kind, attempts, last_error, created_at, updated_at)
    SELECT pos, id, sale_id, receipt, kind, attempts, last_error, created_at, updated_at FROM print_queue ORDER BY pos;
DROP TABLE print_queue;
ALTER TABLE print_queue_new RENAME TO print_queue;

CREATE TABLE print_history_new (
    id         TEXT PRIMARY KEY,
    sale_id    TEXT,
    receipt    TEXT,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'printed', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    printed_at TIMESTAMP
) WITHOUT ROWID;
INSERT INTO print_history_new(id, sale_id, receipt, kind, state, attempts, last_error, created_at, updated_at, printed_at)
    SELECT id, sale_id, receipt, kind, state, attempts, last_error, created_at, updated_at, printed_at FROM print_history;
DROP TABLE print_history;
ALTER TABLE print_history_new RENAME TO print_history;

-- As in 0006: history first, so the columns keep their declared types.
CREATE VIEW print_jobs(id, sale_id, receipt, kind, state, attempts, last_error, created_at, updated_at, printed_at) AS
    SELECT id, sale_id, receipt, kind, state, attempts, last_error, created_at, updated_at, printed_at FROM print_history
    UNION ALL
    SELECT id, sale_id, receipt, kind, 'queued', attempts, last_error, created_at, updated_at, NULL FROM print_queue;
