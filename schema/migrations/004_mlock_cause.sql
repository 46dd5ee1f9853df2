-- Schema version 4: mlock as a cause of the memlock answer (trace format 2).
-- Pages locked with mlock, mlockall or MAP_LOCKED count in locked_vm with
-- the DMA charge; peak_mlock is their part of the answer's peak (pages),
-- NULL for a process that never locked memory so (every row written before
-- this version, and every version 1 trace).
ALTER TABLE accounting ADD COLUMN peak_mlock INTEGER;
