-- Schema version 2: what the audit queries need.

-- The state after every segment (not only the last), so `state --at SEQ`
-- can restart a replay from the segment before SEQ.
CREATE TABLE segment_state (
  trace_id TEXT NOT NULL REFERENCES traces (trace_id),
  segment  INTEGER NOT NULL,
  state    TEXT NOT NULL,
  PRIMARY KEY (trace_id, segment)
);
INSERT INTO segment_state (trace_id, segment, state) SELECT trace_id, segment, state FROM trace_state;
DROP TABLE trace_state;

-- Where the segment's file was left (processed/, or where `ingest` read it).
ALTER TABLE segments ADD COLUMN path TEXT;

-- The trace lines of the events just before a finding's event (a JSON array).
ALTER TABLE findings ADD COLUMN context TEXT;

-- The event that reached the peak.
ALTER TABLE accounting ADD COLUMN peak_seq INTEGER;
ALTER TABLE accounting ADD COLUMN peak_event TEXT;

-- The trace's page size (bytes), from its header.
ALTER TABLE traces ADD COLUMN page_size INTEGER NOT NULL DEFAULT 4096;

-- Findings by severity, kept per trace so listing traces never scans findings.
ALTER TABLE traces ADD COLUMN findings_error INTEGER NOT NULL DEFAULT 0;
ALTER TABLE traces ADD COLUMN findings_warning INTEGER NOT NULL DEFAULT 0;
ALTER TABLE traces ADD COLUMN findings_info INTEGER NOT NULL DEFAULT 0;

CREATE INDEX findings_severity ON findings (severity, trace_id);
CREATE INDEX findings_backend ON findings (backend, trace_id);
CREATE INDEX segments_finished ON segments (finished_at);
CREATE INDEX traces_updated ON traces (updated_at);
