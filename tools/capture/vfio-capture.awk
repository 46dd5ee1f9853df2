# vfio-capture.awk: turns vfio-capture.bt's raw lines, sorted by time, into
# vfio-trace events (format version 2), numbered from seq 1.
#
# It follows each process's fd table, as the kernel does, so that it knows
# which descriptor is a container, a group or a device: open of /dev/vfio/*,
# VFIO_GROUP_GET_DEVICE_FD, dup/dup2/dup3/F_DUPFD (dup2 onto an open fd
# closes it), fork (the child gets a copy), exec (close-on-exec fds close),
# close, and exit (every fd still open closes). Only VFIO descriptors are
# written; ioctls on device fds (region and IRQ setup) are left out, they do
# not map or pin memory. A mmap of a device fd is a BAR: backing "pfnmap".
#
# POSIX awk (mawk, gawk, busybox): no bit operations, so flags arrive in
# decimal and bits are tested with arithmetic; 64-bit values stay strings.
# Raw lines it cannot read, and VFIO ioctls on descriptors it never saw
# opened, are counted and reported on stderr at the end. Its last line is
# the end record, {"type":"end","events":N}: a reader knows the capture
# finished (vfio-capture.sh's header promises it with "end_record":true).

function bit(v, b) { return int(v / b) % 2 }
function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
function ts(t) { sub(/^0+/, "", t); return t == "" ? "0" : t }
function emit(t, body) { seq++; print "{\"seq\":" seq ",\"ts\":" ts(t) "," body "}" }
function names(v, n, bits, list,   i, out) {
	out = ""
	for (i = 1; i <= n; i++)
		if (bit(v, bits[i])) out = out (out == "" ? "" : ",") q(list[i])
	return "[" out "]"
}
function bind(pid, fd, id, cloexec) {
	fdfile[pid, fd] = id
	fdcloexec[pid, fd] = cloexec
	refs[id]++
}
# Drops a descriptor; the file is released with its last reference (the model does that too).
function unbind(pid, fd,   id) {
	id = fdfile[pid, fd]
	delete fdfile[pid, fd]
	delete fdcloexec[pid, fd]
	if (--refs[id] == 0) { delete refs[id]; delete kind[id]; delete devname[id] }
}
function newfile(k, dev) { nfiles++; kind[nfiles] = k; devname[nfiles] = dev; return nfiles }
function tracked(pid, fd) { return ((pid, fd) in fdfile) }
# The fds of pid, in ascending order, as a space-separated list.
function fdsof(pid,   k, a, list, n, i, j, t) {
	n = 0
	for (k in fdfile) {
		split(k, a, SUBSEP)
		if (a[1] == pid) list[++n] = a[2] + 0
	}
	for (i = 2; i <= n; i++) {
		t = list[i]
		for (j = i - 1; j >= 1 && list[j] > t; j--) list[j + 1] = list[j]
		list[j + 1] = t
	}
	t = ""
	for (i = 1; i <= n; i++) t = t (i > 1 ? " " : "") list[i]
	return t
}
function limit(v) { return v == "18446744073709551615" ? "\"unlimited\"" : q(v) }
function cap(v) { return v == 1 ? "true" : "false" }
function unreadable(why) { bad++; if (bad <= 5) printf("vfio-capture.awk: raw line %d: %s: %s\n", NR, why, $0) > "/dev/stderr" }

BEGIN {
	PB[1] = 1; PB[2] = 2; PB[3] = 4
	PN[1] = "READ"; PN[2] = "WRITE"; PN[3] = "EXEC"
	# MAP_FIXED_NOREPLACE (0x100000) is written as FIXED: the format's word for a mapping placed where asked.
	MB[1] = 16; MB[2] = 32; MB[3] = 64 * 1024 * 4; MB[4] = 16384; MB[5] = 32768; MB[6] = 8192
	MN[1] = "FIXED"; MN[2] = "ANONYMOUS"; MN[3] = "HUGETLB"; MN[4] = "NORESERVE"; MN[5] = "POPULATE"; MN[6] = "LOCKED"
	DB[1] = 1; DB[2] = 2; DB[3] = 4
	DN[1] = "READ"; DN[2] = "WRITE"; DN[3] = "VADDR"
	UB[1] = 1; UB[2] = 2; UB[3] = 4
	UN[1] = "GET_DIRTY_BITMAP"; UN[2] = "ALL"; UN[3] = "VADDR"
	LB[1] = 1; LB[2] = 2; LB[3] = 4
	LN[1] = "CURRENT"; LN[2] = "FUTURE"; LN[3] = "ONFAULT"
	EXT[1] = "VFIO_TYPE1_IOMMU"; EXT[2] = "VFIO_SPAPR_TCE_IOMMU"; EXT[3] = "VFIO_TYPE1v2_IOMMU"; EXT[4] = "VFIO_DMA_CC_IOMMU"
	EXT[5] = "VFIO_EEH"; EXT[6] = "VFIO_TYPE1_NESTING_IOMMU"; EXT[7] = "VFIO_SPAPR_TCE_v2_IOMMU"; EXT[8] = "VFIO_NOIOMMU_IOMMU"
	EXT[9] = "VFIO_UNMAP_ALL"; EXT[10] = "VFIO_UPDATE_VADDR"
	CMD["0x3b64"] = "VFIO_GET_API_VERSION"; CMD["0x3b65"] = "VFIO_CHECK_EXTENSION"; CMD["0x3b66"] = "VFIO_SET_IOMMU"
	CMD["0x3b67"] = "VFIO_GROUP_GET_STATUS"; CMD["0x3b68"] = "VFIO_GROUP_SET_CONTAINER"; CMD["0x3b69"] = "VFIO_GROUP_UNSET_CONTAINER"
	CMD["0x3b70"] = "VFIO_IOMMU_GET_INFO"; CMD["0x3b75"] = "VFIO_IOMMU_DIRTY_PAGES"
	seq = 0; nfiles = 0; bad = 0; orphan = 0
}

$2 == "ready" || $2 == "end" { next }

$2 == "start" {
	pid = $3; lim[pid] = $4; capv[pid] = $5
	comm = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ /, "", comm)
	emit($1, "\"type\":\"process\",\"pid\":" pid ",\"op\":\"start\",\"comm\":" q(comm) ",\"memlock_limit\":" limit($4) ",\"cap_ipc_lock\":" cap($5))
	next
}
$2 == "rlimit" {
	lim[$3] = $4
	emit($1, "\"type\":\"process\",\"pid\":" $3 ",\"op\":\"setrlimit\",\"memlock_limit\":" limit($4) ",\"cap_ipc_lock\":" cap(capv[$3]))
	next
}
$2 == "cap" {
	if (capv[$3] == $4) next
	capv[$3] = $4
	emit($1, "\"type\":\"process\",\"pid\":" $3 ",\"op\":\"setrlimit\",\"memlock_limit\":" limit(lim[$3]) ",\"cap_ipc_lock\":" cap($4))
	next
}
$2 == "fork" {
	child = $3; parent = $4
	lim[child] = lim[parent]; capv[child] = capv[parent]
	n = split(fdsof(parent), fds, " ")
	for (i = 1; i <= n; i++) bind(child, fds[i], fdfile[parent, fds[i]], fdcloexec[parent, fds[i]])
	emit($1, "\"type\":\"process\",\"pid\":" child ",\"op\":\"fork\",\"parent\":" parent)
	next
}
$2 == "exec" {
	pid = $3
	n = split(fdsof(pid), fds, " ")
	for (i = 1; i <= n; i++)
		if (fdcloexec[pid, fds[i]]) { emit($1, "\"type\":\"close\",\"pid\":" pid ",\"fd\":" fds[i]); unbind(pid, fds[i]) }
	comm = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", comm)
	emit($1, "\"type\":\"process\",\"pid\":" pid ",\"op\":\"exec\",\"comm\":" q(comm))
	next
}
$2 == "exit" {
	pid = $3
	n = split(fdsof(pid), fds, " ")
	for (i = 1; i <= n; i++) { emit($1, "\"type\":\"close\",\"pid\":" pid ",\"fd\":" fds[i]); unbind(pid, fds[i]) }
	emit($1, "\"type\":\"process\",\"pid\":" pid ",\"op\":\"exit\"")
	delete lim[pid]; delete capv[pid]
	next
}
$2 == "open" {
	pid = $3; fd = $4; path = $6
	if (tracked(pid, fd)) unbind(pid, fd)
	k = path == "/dev/vfio/vfio" ? "container" : (path ~ /^\/dev\/vfio\/devices\// ? "device" : "group")
	bind(pid, fd, newfile(k, ""), $5)
	emit($1, "\"type\":\"open\",\"pid\":" pid ",\"fd\":" fd ",\"path\":" q(path) ",\"ret\":" fd)
	next
}
# A device fd a process attached to (--pid) already had: known as a device (its BAR mmaps are pfnmap), no event.
$2 == "devseed" {
	if (tracked($3, $4)) unbind($3, $4)
	bind($3, $4, newfile("device", ""), 1)
	next
}
$2 == "close" {
	if (!tracked($3, $4)) next
	unbind($3, $4)
	emit($1, "\"type\":\"close\",\"pid\":" $3 ",\"fd\":" $4)
	next
}
$2 == "dup" {
	pid = $3; old = $4; new = $5
	if (old == new) next
	wasopen = tracked(pid, new)
	if (wasopen) unbind(pid, new)
	if (tracked(pid, old)) {
		bind(pid, new, fdfile[pid, old], $7)
		emit($1, "\"type\":\"dup\",\"pid\":" pid ",\"fd\":" old ",\"newfd\":" new ",\"call\":" q($6) ",\"ret\":" new)
	} else if (wasopen) {
		# A descriptor that was not VFIO replaced a VFIO one: for the trace, that one is closed.
		emit($1, "\"type\":\"close\",\"pid\":" pid ",\"fd\":" new)
	}
	next
}
$2 == "mmap" {
	pid = $3; prot = $6; flags = $7; fd = $8
	share = bit(flags, 1) ? "SHARED" : "PRIVATE"
	if (bit(flags, 1048576) && !bit(flags, 16)) flags += 16
	fl = names(flags, 6, MB, MN); fl = "[" q(share) (fl == "[]" ? "" : "," substr(fl, 2, length(fl) - 2)) "]"
	if (bit(flags, 32)) backing = bit(flags, 262144) ? "hugetlb" : (share == "SHARED" ? "shared" : "anon")
	else if (tracked(pid, fd) && kind[fdfile[pid, fd]] == "device") backing = "pfnmap"
	else backing = "file"
	body = "\"type\":\"mmap\",\"pid\":" pid ",\"vaddr\":" q($4) ",\"size\":" q($5) ",\"backing\":" q(backing) ",\"prot\":" names(prot, 3, PB, PN) ",\"flags\":" fl
	if (!bit(flags, 32)) body = body ",\"fd\":" fd ",\"offset\":" q($9)
	emit($1, body ",\"locked_vm\":" $10)
	next
}
$2 == "munmap" {
	if ($6 != 0) next
	emit($1, "\"type\":\"munmap\",\"pid\":" $3 ",\"vaddr\":" q($4) ",\"size\":" q($5) ",\"locked_vm\":" $7)
	next
}
$2 == "mlock" {
	fl = bit($6, 1) ? ",\"flags\":[\"ONFAULT\"]" : ""
	emit($1, "\"type\":\"mlock\",\"pid\":" $3 ",\"vaddr\":" q($4) ",\"size\":" q($5) fl ",\"ret\":" $7 ",\"locked_vm\":" $8)
	next
}
$2 == "munlock" {
	emit($1, "\"type\":\"munlock\",\"pid\":" $3 ",\"vaddr\":" q($4) ",\"size\":" q($5) ",\"ret\":" $6 ",\"locked_vm\":" $7)
	next
}
$2 == "mlockall" {
	pages = ($5 == 0 && bit($4, 1)) ? ",\"pages\":" ($7 - $6) : ""
	emit($1, "\"type\":\"mlockall\",\"pid\":" $3 ",\"flags\":" names($4, 3, LB, LN) pages ",\"ret\":" $5 ",\"locked_vm\":" $7)
	next
}
$2 == "munlockall" {
	emit($1, "\"type\":\"munlockall\",\"pid\":" $3 ",\"ret\":" $4 ",\"locked_vm\":" $5)
	next
}
$2 == "map" || $2 == "unmap" || $2 == "ioctl" || $2 == "devfd" {
	pid = $3; fd = $4
	if (!tracked(pid, fd)) { orphan++; next }
	if (kind[fdfile[pid, fd]] == "device") next
	head = "\"type\":\"ioctl\",\"pid\":" pid ",\"fd\":" fd
	if ($2 == "map") {
		emit($1, head ",\"cmd\":\"VFIO_IOMMU_MAP_DMA\",\"arg\":{\"flags\":" names($6, 3, DB, DN) ",\"vaddr\":" q($7) ",\"iova\":" q($8) ",\"size\":" q($9) "},\"ret\":" $5 ",\"locked_vm\":" $10)
	} else if ($2 == "unmap") {
		out = $5 == 0 ? ",\"out\":{\"size\":" q($9) "}" : ""
		emit($1, head ",\"cmd\":\"VFIO_IOMMU_UNMAP_DMA\",\"arg\":{\"flags\":" names($6, 3, UB, UN) ",\"iova\":" q($7) ",\"size\":" q($8) "},\"ret\":" $5 out ",\"locked_vm\":" $10)
	} else if ($2 == "devfd") {
		if ($5 >= 0) { if (tracked(pid, $5)) unbind(pid, $5); bind(pid, $5, newfile("device", $6), 1) }
		emit($1, head ",\"cmd\":\"VFIO_GROUP_GET_DEVICE_FD\",\"arg\":" q($6) ",\"ret\":" $5)
	} else {
		cmd = $6; name = (cmd in CMD) ? CMD[cmd] : "VFIO_IOCTL_" cmd
		arg = ""
		if (name == "VFIO_CHECK_EXTENSION" || name == "VFIO_SET_IOMMU") arg = ",\"arg\":" q(($7 in EXT) ? EXT[$7] : "VFIO_EXTENSION_" $7)
		if (name == "VFIO_GROUP_SET_CONTAINER") arg = ",\"arg\":{\"container_fd\":" $7 "}"
		emit($1, head ",\"cmd\":" q(name) arg ",\"ret\":" $5)
	}
	next
}
$2 == "pin" {
	emit($1, "\"type\":\"pin\",\"dev\":" q($8) ",\"iova\":" q($4) ",\"npage\":" $5 ",\"prot\":" names($6, 2, DB, DN) ",\"ret\":" $7)
	next
}
$2 == "unpin" {
	emit($1, "\"type\":\"unpin\",\"dev\":" q($6) ",\"iova\":" q($4) ",\"npage\":" $5)
	next
}
{ unreadable("not a vfio-capture.bt line") }

END {
	# The end record, last: the trace is complete (the header says "end_record":true).
	print "{\"type\":\"end\",\"events\":" (seq + 0) "}"
	if (bad > 0) printf("vfio-capture.awk: %d raw lines were not vfio-capture.bt lines (not in the trace)\n", bad) > "/dev/stderr"
	if (orphan > 0) printf("vfio-capture.awk: %d VFIO ioctls were on descriptors opened before the capture (not in the trace)\n", orphan) > "/dev/stderr"
}
