-- pinledger store, schema version 1.
-- Sizes and addresses are TEXT "0x..." where they can exceed 2^53; page
-- counts are INTEGER. Times are milliseconds since the epoch.

CREATE TABLE traces (
  trace_id     TEXT PRIMARY KEY,
  -- Designs replayed, as a JSON array, fixed at segment 0.
  backends     TEXT NOT NULL,
  -- Highest segment ingested, and the last seq seen in it.
  last_segment INTEGER NOT NULL,
  last_seq     INTEGER NOT NULL,
  events       INTEGER NOT NULL,
  first_seen   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);

-- One row per file taken: ingested, or quarantined with its error.
CREATE TABLE segments (
  id           INTEGER PRIMARY KEY,
  trace_id     TEXT,
  segment      INTEGER,
  file_name    TEXT NOT NULL,
  content_hash TEXT NOT NULL UNIQUE,
  status       TEXT NOT NULL CHECK (status IN ('ingested', 'quarantined')),
  events       INTEGER NOT NULL DEFAULT 0,
  first_seq    INTEGER,
  last_seq     INTEGER,
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER NOT NULL,
  duration_ms  INTEGER NOT NULL,
  error        TEXT
);
CREATE UNIQUE INDEX segments_trace_segment ON segments (trace_id, segment) WHERE status = 'ingested';

-- The model state the last ingested segment of each trace ended in.
CREATE TABLE trace_state (
  trace_id TEXT PRIMARY KEY REFERENCES traces (trace_id),
  segment  INTEGER NOT NULL,
  state    TEXT NOT NULL
);

CREATE TABLE findings (
  id       INTEGER PRIMARY KEY,
  trace_id TEXT NOT NULL REFERENCES traces (trace_id),
  segment  INTEGER NOT NULL,
  backend  TEXT NOT NULL,
  code     TEXT NOT NULL,
  severity TEXT NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
  seq      INTEGER NOT NULL,
  message  TEXT NOT NULL,
  details  TEXT NOT NULL,
  -- The trace line of the event that caused it.
  event    TEXT
);
CREATE INDEX findings_trace ON findings (trace_id, backend, seq);
CREATE INDEX findings_code ON findings (code, severity);

-- locked_vm change points: one row when a process's charge changes.
CREATE TABLE locked_vm (
  trace_id  TEXT NOT NULL REFERENCES traces (trace_id),
  backend   TEXT NOT NULL,
  pid       INTEGER NOT NULL,
  seq       INTEGER NOT NULL,
  locked_vm INTEGER NOT NULL,
  PRIMARY KEY (trace_id, backend, pid, seq)
) WITHOUT ROWID;

-- Per trace, design and process: peak, final and the memlock answer.
CREATE TABLE accounting (
  trace_id         TEXT NOT NULL REFERENCES traces (trace_id),
  backend          TEXT NOT NULL,
  pid              INTEGER NOT NULL,
  peak_locked_vm   INTEGER NOT NULL,
  final_locked_vm  INTEGER NOT NULL,
  memlock_required INTEGER NOT NULL,
  peak_direct      INTEGER NOT NULL,
  peak_pins        INTEGER NOT NULL,
  peak_shared      INTEGER NOT NULL,
  PRIMARY KEY (trace_id, backend, pid)
) WITHOUT ROWID;
