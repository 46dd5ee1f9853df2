-- Schema version 5: the intake ledger, the identity of a trace, findings
-- folded past a limit.

-- Segment 0's header: the host it came from and its topology (canonical
-- JSON: keys sorted, 64-bit values as "0x..."), NULL when the header had
-- none. identity_recorded = 1 when these were recorded (traces ingested
-- before this version have 0: their host and topology are unknown, and
-- only page_size is compared for them).
ALTER TABLE traces ADD COLUMN host TEXT;
ALTER TABLE traces ADD COLUMN topology TEXT;
ALTER TABLE traces ADD COLUMN identity_recorded INTEGER NOT NULL DEFAULT 0;

-- A trace keeps at most --max-findings-per-code findings of one design and
-- code as rows of their own; the rest are folded into one row with
-- aggregate = 1: seq is the first folded one's, last_seq the last's,
-- occurrences how many were folded (message, details, event and context
-- are the first folded one's). Ordinary rows: aggregate 0, occurrences 1,
-- last_seq NULL.
ALTER TABLE findings ADD COLUMN aggregate INTEGER NOT NULL DEFAULT 0 CHECK (aggregate IN (0, 1));
ALTER TABLE findings ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1;
ALTER TABLE findings ADD COLUMN last_seq INTEGER;
CREATE UNIQUE INDEX findings_aggregate ON findings (trace_id, backend, code) WHERE aggregate = 1;

-- The intake ledger: every file the daemon or `ingest` took, in exactly
-- one state. One row per name and content (hash); a file with no hash yet
-- (rejected, unreadable, incomplete) has one row per name, replaced by the
-- row of its content once it is read whole.
CREATE TABLE files (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('ingested', 'duplicate', 'waiting', 'quarantined', 'incomplete', 'unreadable', 'rejected')),
  reason     TEXT,
  trace_id   TEXT,
  segment    INTEGER,
  hash       TEXT,
  -- Bytes, as the file was when it was taken.
  size       INTEGER,
  -- Where the file was moved (processed/, quarantine/), NULL when it stayed.
  moved_to   TEXT,
  first_seen INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX files_name_hash ON files (name, hash) WHERE hash IS NOT NULL;
CREATE UNIQUE INDEX files_name_nohash ON files (name) WHERE hash IS NULL;
CREATE INDEX files_status ON files (status, updated_at);
