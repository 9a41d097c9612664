-- Fewer pages per completed sale. A sale commit is fsync-bound and modernc
-- pays CPU per page written, so every b-tree a sale touches costs. This
-- migration takes four of them off the sale's path without weakening what
-- they guaranteed (see agent/NOTES-salecommit.md for the frame counts).
--
-- 1. outbox loses AUTOINCREMENT: it wrote the sqlite_sequence page on every
--    insert. seq is now chosen in the single writer's transaction as
--    1 + max(highest row, meta 'outbox_floor'); the floor is raised where
--    the sequence must jump (HQ acked past our last seq, rebase) and before
--    pruning could delete the highest row, so seq stays monotonic, never
--    reused, and gapless (a rolled-back transaction takes none).
-- 2. outbox loses its partial index of unacked rows: acks are a prefix
--    (AckThrough) plus single dead letters, and meta 'acked_seq' is that
--    prefix, so every unacked row has seq > acked_seq and the queue is read
--    from there by primary key.
-- 3. The print queue keeps only pending jobs, in print_queue, a table that
--    stays a page or two while the printer keeps up. A job leaves it for
--    print_history when printed or given up, in the print worker's own
--    transaction, not the sale's. print_jobs becomes a view over both, so
--    every reader keeps working.

-- 1 and 2.
CREATE TABLE outbox_new (
    seq        INTEGER PRIMARY KEY, -- 1 + max(seq, meta outbox_floor), see localdb/outbox.go
    id         TEXT    NOT NULL,    -- UUIDv7, unique by construction; HQ dedupes by it
    type       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at TIMESTAMP NOT NULL,
    acked      INTEGER NOT NULL DEFAULT 0,
    acked_at   TIMESTAMP,
    rejected   TEXT    -- HQ's reason when it refused the event for good (dead letter)
);
INSERT INTO outbox_new(seq, id, type, payload, created_at, acked, acked_at, rejected)
    SELECT seq, id, type, payload, created_at, acked, acked_at, rejected FROM outbox ORDER BY seq;

-- The floor is what AUTOINCREMENT remembered: the highest seq ever handed
-- out or raised to, even if that row was pruned since.
INSERT INTO meta(key, value)
    SELECT 'outbox_floor', CAST(MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
                                    COALESCE((SELECT MAX(seq) FROM outbox), 0)) AS TEXT)
    WHERE true
    ON CONFLICT(key) DO UPDATE SET value = excluded.value
        WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER);

-- The acked cursor: every row below the first unacked one is acked (acked
-- or dead-lettered), so the cursor may stand just below it; with no
-- unacked row, at the last row. It only ever rises.
INSERT INTO meta(key, value)
    SELECT 'acked_seq', CAST(COALESCE((SELECT MIN(seq) FROM outbox WHERE acked = 0) - 1, (SELECT MAX(seq) FROM outbox), 0) AS TEXT)
    WHERE true
    ON CONFLICT(key) DO UPDATE SET value = excluded.value
        WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER);

DROP TABLE outbox; -- with outbox_unacked, outbox_rejected and its sqlite_sequence row
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_rejected ON outbox(seq) WHERE rejected IS NOT NULL;

-- 3.
ALTER TABLE print_jobs RENAME TO print_history;
DROP INDEX print_jobs_queued;

-- pos is the queue order (insertion order; created_at could step back with
-- the clock). Job ids are unique by construction: a receipt job has its
-- sale's id (a sale completes once), every other job a new UUIDv7, and
-- print_history's primary key refuses a second history row.
CREATE TABLE print_queue (
    pos        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    sale_id    TEXT,
    receipt    TEXT,
    kind       TEXT NOT NULL CHECK (kind IN ('receipt', 'copy', 'return', 'report')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
INSERT INTO print_queue(id, sale_id, receipt, kind, attempts, last_error, created_at, updated_at)
    SELECT id, sale_id, receipt, kind, attempts, last_error, created_at, updated_at
    FROM print_history WHERE state = 'queued' ORDER BY created_at, id;
DELETE FROM print_history WHERE state = 'queued';

-- Every job, pending or done, as the table used to be. History comes first
-- so the columns keep their declared types (TIMESTAMP) for the driver.
CREATE VIEW print_jobs(id, sale_id, receipt, kind, state, attempts, last_error, created_at, updated_at, printed_at) AS
    SELECT id, sale_id, receipt, kind, state, attempts, last_error, created_at, updated_at, printed_at FROM print_history
    UNION ALL
    SELECT id, sale_id, receipt, kind, 'queued', attempts, last_error, created_at, updated_at, NULL FROM print_queue;

-- 4. A sale's tenders are stored in its row (sales.tenders, JSON), not in
--    a table of their own: one b-tree less per sale commit (1.2 pages with
--    its splits), and one statement less. sale_tenders becomes a view with
--    the same columns, so every reader keeps working. Only CompleteSale
--    writes tenders; it checks what the table's CHECKs did (kind, amount >
--    0), and the view's sale_id is its row's id by construction, which is
--    what the foreign key guarded.
ALTER TABLE sales ADD COLUMN tenders TEXT CHECK (tenders IS NULL OR json_type(tenders) = 'array');
UPDATE sales SET tenders = (
        SELECT json_group_array(json_object('kind', t.kind, 'amount', t.amount, 'ref', t.ref) ORDER BY t.seq)
        FROM sale_tenders t WHERE t.sale_id = sales.id)
    WHERE id IN (SELECT sale_id FROM sale_tenders);
DROP TABLE sale_tenders;
CREATE VIEW sale_tenders(sale_id, seq, kind, amount, ref) AS
    SELECT s.id, j.key + 1, j.value ->> 'kind', j.value ->> 'amount', COALESCE(j.value ->> 'ref', '')
    FROM sales s, json_each(s.tenders) j
    WHERE s.tenders IS NOT NULL;
