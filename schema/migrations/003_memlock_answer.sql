-- Schema version 3: the memlock answer as a what-if.
-- memlock_required (bytes) is now the peak locked_vm of a replay with
-- RLIMIT_MEMLOCK unlimited: the smallest limit under which the whole trace
-- would have run. Rows written before this version hold the peak under the
-- limit in force, which is the same answer for every trace the limit never
-- refused; for the others it is too low and cannot be recomputed here, so
-- limit_refusals is NULL (unknown) on them.

-- The limit in force (bytes), NULL when none applied: unlimited, or CAP_IPC_LOCK (cap_ipc_lock = 1).
ALTER TABLE accounting ADD COLUMN memlock_limit INTEGER;
ALTER TABLE accounting ADD COLUMN cap_ipc_lock INTEGER NOT NULL DEFAULT 0;
-- Bytes missing from the limit in force: max(0, memlock_required - memlock_limit).
ALTER TABLE accounting ADD COLUMN memlock_short INTEGER NOT NULL DEFAULT 0;
-- Operations refused because of RLIMIT_MEMLOCK, and the first one.
ALTER TABLE accounting ADD COLUMN limit_refusals INTEGER;
ALTER TABLE accounting ADD COLUMN first_refusal_seq INTEGER;
ALTER TABLE accounting ADD COLUMN first_refusal_event TEXT;
-- Containers the process attached groups to (libvirt's per-device factor under a vIOMMU).
ALTER TABLE accounting ADD COLUMN containers INTEGER NOT NULL DEFAULT 0;

-- The guest's memory (bytes) from the header's guest_memory, when the capture knew it.
ALTER TABLE traces ADD COLUMN guest_memory INTEGER;
