/*
 * vfio-lab: runs the steps of one vfio-trace on a real kernel and prints
 * what the kernel did. pinledger's lab writes the steps from a trace, boots
 * a guest with this helper in its initramfs, and reads the results back
 * (src/lab/).
 *
 * The trace's processes are the helper's workers: worker 0 is the trace's
 * first process, each `fork` step makes the next one (a real fork of the
 * worker that runs it: the child has its fd table, address space, rlimit
 * and capabilities). The main process only reads the steps and hands each,
 * in order, to the worker it names over a socketpair, waits for the answer
 * and prints it, so every step runs in its own process and in trace order.
 *
 * Input, one step per line, `SEQ PROC OP ARGS...` (numbers in hex with 0x
 * or decimal; PROC is the worker index):
 *   limit unlimited|BYTES [keep]    RLIMIT_MEMLOCK, then CAP_IPC_LOCK
 *                                   dropped unless `keep`
 *   mmap VADDR SIZE anon|shared|file [PROT FLAGS]
 *                                   PROT READ,WRITE,EXEC or - (PROT_NONE),
 *                                   FLAGS SHARED|PRIVATE,ANONYMOUS,FIXED,
 *                                   HUGETLB,NORESERVE,POPULATE,LOCKED; without
 *                                   them read/write, anonymous, NORESERVE
 *   mmapdev FD REGION OFFSET VADDR SIZE PROT FLAGS
 *                                   mmap of a VFIO device fd's region (a BAR)
 *                                   at OFFSET inside it
 *   munmap VADDR SIZE
 *   mlock VADDR SIZE FLAGS          FLAGS ONFAULT (mlock2) or -
 *   munlock VADDR SIZE
 *   mlockall FLAGS                  CURRENT,FUTURE,ONFAULT; prints pages=
 *                                   (VmLck after minus before, in pages)
 *   munlockall
 *   open FD PATH                    the file gets descriptor FD (dup2)
 *   close FD
 *   dup FD NEWFD dup|dup2|dup3|fcntl  dup and fcntl(F_DUPFD) results are
 *                                   moved to NEWFD when the kernel chose
 *                                   another
 *   ioctl FD CMD [ARGS...]          CMD as vfio.h names it, see run_ioctl()
 *   devopen GROUPFD NAME FD         VFIO_GROUP_GET_DEVICE_FD, as descriptor FD
 *   pin FD IOVA NPAGE PROT          the test mdev driver pins (vfio_pin_pages)
 *   unpin FD IOVA NPAGE             and unpins (vfio_unpin_pages)
 *   pinlist FD PROT IOVA,...        a page list (the pre-5.19 API): one pin per
 *                                   contiguous run, all undone if one fails
 *   unpinlist FD IOVA,...
 *   devclose FD
 *   fork CHILD                      this worker forks worker CHILD
 *   exec                            this worker execs (the helper again)
 *   exit                            the worker exits (its files and mm go)
 * Output, one line per step:
 *   R SEQ RET VMLCK_KB [key=value ...]
 * RET is the call's return value or -errno; VMLCK_KB is the VmLck of the
 * worker that ran the step, just after it (for `exit`, just before).
 * A worker that dies prints LAB-ERROR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/vfio.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define MAXPROC 32
/* The helper's own descriptors sit above any a trace uses. */
#define CHANNEL_FD 900

static char out[4096];

/* The lab's test mdev driver (lab/mdev/pinledger_mdev.c). */
struct pinledger_pin {
	uint64_t iova;
	uint32_t npage;
	uint32_t prot;
};
#define PINLEDGER_PIN _IOW('P', 1, struct pinledger_pin)
#define PINLEDGER_UNPIN _IOW('P', 2, struct pinledger_pin)

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void outf(const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(out);
	va_start(ap, fmt);
	vsnprintf(out + n, sizeof(out) - n, fmt, ap);
	va_end(ap);
}

/*
 * VmLck from /proc/self/status, read without stdio: a malloc here would
 * grow the heap, and after mlockall(MCL_FUTURE) that growth is locked
 * memory the trace does not have.
 */
static long vmlck_kb(void)
{
	static char buf[4096];
	long kb = -1;
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n;
	char *p;
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, "VmLck:");
	if (p)
		sscanf(p, "VmLck: %ld kB", &kb);
	return kb;
}

static uint64_t num(const char *s)
{
	return s ? strtoull(s, NULL, 0) : 0;
}

/*
 * Clears CAP_IPC_LOCK from every set, so vfio_lock_acct and do_mlock enforce
 * the limit, and from the bounding set: the helper runs as root, which an
 * exec would otherwise give every capability again.
 */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	if (prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0))
		return -errno;
	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[0].effective &= ~(1u << CAP_IPC_LOCK);
	d[0].permitted &= ~(1u << CAP_IPC_LOCK);
	d[0].inheritable &= ~(1u << CAP_IPC_LOCK);
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

static uint32_t dma_flags(const char *s)
{
	uint32_t f = 0;
	if (strstr(s, "READ"))
		f |= VFIO_DMA_MAP_FLAG_READ;
	if (strstr(s, "WRITE"))
		f |= VFIO_DMA_MAP_FLAG_WRITE;
	if (strstr(s, "VADDR"))
		f |= VFIO_DMA_MAP_FLAG_VADDR;
	return f;
}

/* Whether the comma-separated list has the word. */
static int has(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, word, n))
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

static int prot_of(const char *s)
{
	return (has(s, "READ") ? PROT_READ : 0) | (has(s, "WRITE") ? PROT_WRITE : 0) | (has(s, "EXEC") ? PROT_EXEC : 0);
}

static int map_flags_of(const char *s)
{
	static const struct {
		const char *name;
		int flag;
	} names[] = { { "SHARED", MAP_SHARED },     { "PRIVATE", MAP_PRIVATE },     { "ANONYMOUS", MAP_ANONYMOUS },
		      { "FIXED", MAP_FIXED },       { "HUGETLB", MAP_HUGETLB },     { "NORESERVE", MAP_NORESERVE },
		      { "POPULATE", MAP_POPULATE }, { "LOCKED", MAP_LOCKED } };
	int f = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (has(s, names[i].name))
			f |= names[i].flag;
	/* The trace's vaddr is where the kernel put it: place it there, never over something else. */
	return f & MAP_FIXED ? f : f | MAP_FIXED_NOREPLACE;
}

static long at_vaddr(void *p, uint64_t vaddr)
{
	if (p == MAP_FAILED)
		return -errno;
	return p == (void *)(uintptr_t)vaddr ? 0 : -EEXIST;
}

/* mmap VADDR SIZE BACKING [PROT FLAGS] */
static long do_mmap(char **a, const char *seq)
{
	uint64_t vaddr = num(a[1]), size = num(a[2]);
	int shared = !strcmp(a[3], "shared");
	int prot = a[4] ? prot_of(a[4]) : PROT_READ | PROT_WRITE;
	int flags = a[5] ? map_flags_of(a[5]) : (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE;
	int fd = -1;
	long r;
	if (!strcmp(a[3], "file")) {
		/* Pages of a regular file: a fresh one in the guest's tmpfs, as long as the mapping. */
		char path[64];
		snprintf(path, sizeof(path), "/tmp/vfio-lab-file-%s", seq);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			return -errno;
		unlink(path);
		if (ftruncate(fd, (off_t)size)) {
			r = -errno;
			close(fd);
			return r;
		}
		flags &= ~MAP_ANONYMOUS;
	}
	r = at_vaddr(mmap((void *)(uintptr_t)vaddr, size, prot, flags, fd, 0), vaddr);
	if (fd >= 0)
		close(fd);
	return r;
}

/* mmapdev FD REGION OFFSET VADDR SIZE PROT FLAGS: the region's file offset from the device itself. */
static long do_mmapdev(char **a)
{
	int fd = (int)num(a[1]);
	struct vfio_region_info info = { .argsz = sizeof(info), .index = (uint32_t)num(a[2]) };
	uint64_t vaddr = num(a[4]);
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -errno;
	outf(" region_offset=0x%llx region_size=0x%llx region_flags=0x%x", (unsigned long long)info.offset,
	     (unsigned long long)info.size, info.flags);
	if (!(info.flags & VFIO_REGION_INFO_FLAG_MMAP))
		return -ENODEV;
	return at_vaddr(mmap((void *)(uintptr_t)vaddr, num(a[5]), prot_of(a[6]), map_flags_of(a[7]), fd,
			     (off_t)(info.offset + num(a[3]))),
			vaddr);
}

/* dup FD NEWFD CALL: the call the trace made; a kernel-chosen descriptor is moved to NEWFD. */
static long do_dup(char **a)
{
	int fd = (int)num(a[1]), newfd = (int)num(a[2]);
	const char *call = a[3];
	long r;
	if (!strcmp(call, "dup2"))
		return dup2(fd, newfd) < 0 ? -errno : newfd;
	if (!strcmp(call, "dup3"))
		return dup3(fd, newfd, 0) < 0 ? -errno : newfd;
	if (!strcmp(call, "dup"))
		r = dup(fd);
	else if (!strcmp(call, "fcntl"))
		r = fcntl(fd, F_DUPFD, newfd);
	else
		return -EINVAL;
	if (r < 0)
		return -errno;
	if (r != newfd) {
		if (dup2((int)r, newfd) < 0)
			return -errno;
		close((int)r);
	}
	return newfd;
}

static long do_mlockall(const char *flags)
{
	long before = vmlck_kb(), after;
	int f = (has(flags, "CURRENT") ? MCL_CURRENT : 0) | (has(flags, "FUTURE") ? MCL_FUTURE : 0) |
		(has(flags, "ONFAULT") ? MCL_ONFAULT : 0);
	if (mlockall(f))
		return -errno;
	after = vmlck_kb();
	outf(" pages=%ld", (after - before) * 1024 / sysconf(_SC_PAGESIZE));
	return 0;
}

static long get_info(int fd)
{
	static uint64_t info_buf[512];
	struct vfio_iommu_type1_info probe = { .argsz = sizeof(probe) };
	struct vfio_iommu_type1_info *info;
	struct vfio_info_cap_header *cap;
	if (ioctl(fd, VFIO_IOMMU_GET_INFO, &probe))
		return -errno;
	/* No malloc (see vmlck_kb): the answer fits a static buffer. */
	if (probe.argsz > sizeof(info_buf))
		return -E2BIG;
	memset(info_buf, 0, sizeof(info_buf));
	info = (void *)info_buf;
	info->argsz = probe.argsz;
	if (ioctl(fd, VFIO_IOMMU_GET_INFO, info))
		return -errno;
	if (info->flags & VFIO_IOMMU_INFO_PGSIZES)
		outf(" pgsizes=0x%llx", (unsigned long long)info->iova_pgsizes);
	if ((info->flags & VFIO_IOMMU_INFO_CAPS) && info->cap_offset) {
		for (cap = (void *)((char *)info + info->cap_offset);; cap = (void *)((char *)info + cap->next)) {
			if (cap->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
				struct vfio_iommu_type1_info_cap_iova_range *r = (void *)cap;
				outf(" ranges=");
				for (uint32_t i = 0; i < r->nr_iovas; i++)
					outf("%s0x%llx-0x%llx", i ? "," : "", (unsigned long long)r->iova_ranges[i].start,
					     (unsigned long long)r->iova_ranges[i].end);
			} else if (cap->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
				struct vfio_iommu_type1_info_dma_avail *a = (void *)cap;
				outf(" dma_avail=%u", a->avail);
			}
			if (!cap->next)
				break;
		}
	}
	return 0;
}

static long run_ioctl(int fd, const char *cmd, char **a)
{
	if (!strcmp(cmd, "VFIO_GET_API_VERSION"))
		return ioctl(fd, VFIO_GET_API_VERSION) < 0 ? -errno : ioctl(fd, VFIO_GET_API_VERSION);
	if (!strcmp(cmd, "VFIO_CHECK_EXTENSION")) {
		long r = ioctl(fd, VFIO_CHECK_EXTENSION, (unsigned long)num(a[0]));
		return r < 0 ? -errno : r;
	}
	if (!strcmp(cmd, "VFIO_SET_IOMMU"))
		return ioctl(fd, VFIO_SET_IOMMU, (unsigned long)num(a[0])) < 0 ? -errno : 0;
	if (!strcmp(cmd, "VFIO_GROUP_GET_STATUS")) {
		struct vfio_group_status st = { .argsz = sizeof(st) };
		if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st))
			return -errno;
		outf(" flags=%s%s", st.flags & VFIO_GROUP_FLAGS_VIABLE ? "VIABLE," : "",
		     st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET ? "CONTAINER_SET," : "");
		return 0;
	}
	if (!strcmp(cmd, "VFIO_GROUP_SET_CONTAINER")) {
		int c = (int)num(a[0]);
		return ioctl(fd, VFIO_GROUP_SET_CONTAINER, &c) ? -errno : 0;
	}
	if (!strcmp(cmd, "VFIO_GROUP_UNSET_CONTAINER"))
		return ioctl(fd, VFIO_GROUP_UNSET_CONTAINER) ? -errno : 0;
	if (!strcmp(cmd, "VFIO_GROUP_GET_DEVICE_FD")) {
		/* a[0]: the real device name, a[1]: the trace's descriptor for it. */
		long r = ioctl(fd, VFIO_GROUP_GET_DEVICE_FD, a[0]);
		if (r < 0)
			return -errno;
		if (a[1] && (int)num(a[1]) != r) {
			if (dup2((int)r, (int)num(a[1])) < 0)
				return -errno;
			close((int)r);
			r = (long)num(a[1]);
		}
		return r;
	}
	if (!strcmp(cmd, "VFIO_IOMMU_GET_INFO"))
		return get_info(fd);
	if (!strcmp(cmd, "VFIO_IOMMU_MAP_DMA")) {
		struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m) };
		m.flags = dma_flags(a[0]);
		m.vaddr = num(a[1]);
		m.iova = num(a[2]);
		m.size = num(a[3]);
		return ioctl(fd, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
	}
	if (!strcmp(cmd, "VFIO_IOMMU_UNMAP_DMA")) {
		struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u) };
		u.flags = 0;
		if (strstr(a[0], "ALL"))
			u.flags |= VFIO_DMA_UNMAP_FLAG_ALL;
		if (strstr(a[0], "VADDR"))
			u.flags |= VFIO_DMA_UNMAP_FLAG_VADDR;
		u.iova = num(a[1]);
		u.size = num(a[2]);
		if (ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &u))
			return -errno;
		outf(" size=0x%llx", (unsigned long long)u.size);
		return 0;
	}
	return -ENOTTY;
}

static long step(char **a, const char *seq)
{
	const char *op = a[0];
	if (!strcmp(op, "limit")) {
		struct rlimit rl;
		rl.rlim_cur = rl.rlim_max = strcmp(a[1], "unlimited") ? num(a[1]) : RLIM_INFINITY;
		if (setrlimit(RLIMIT_MEMLOCK, &rl))
			return -errno;
		return a[2] && !strcmp(a[2], "keep") ? 0 : drop_ipc_lock();
	}
	if (!strcmp(op, "mmap"))
		return do_mmap(a, seq);
	if (!strcmp(op, "mmapdev"))
		return do_mmapdev(a);
	if (!strcmp(op, "munmap"))
		return munmap((void *)(uintptr_t)num(a[1]), num(a[2])) ? -errno : 0;
	if (!strcmp(op, "mlock")) {
		void *p = (void *)(uintptr_t)num(a[1]);
		if (has(a[3], "ONFAULT"))
			return syscall(SYS_mlock2, p, num(a[2]), MLOCK_ONFAULT) ? -errno : 0;
		return mlock(p, num(a[2])) ? -errno : 0;
	}
	if (!strcmp(op, "munlock"))
		return munlock((void *)(uintptr_t)num(a[1]), num(a[2])) ? -errno : 0;
	if (!strcmp(op, "mlockall"))
		return do_mlockall(a[1]);
	if (!strcmp(op, "munlockall"))
		return munlockall() ? -errno : 0;
	if (!strcmp(op, "open")) {
		int want = (int)num(a[1]);
		int fd = open(a[2], O_RDWR);
		if (fd < 0)
			return -errno;
		if (fd != want) {
			if (dup2(fd, want) < 0)
				return -errno;
			close(fd);
		}
		return want;
	}
	if (!strcmp(op, "close") || !strcmp(op, "devclose"))
		return close((int)num(a[1])) ? -errno : 0;
	if (!strcmp(op, "dup"))
		return do_dup(a);
	if (!strcmp(op, "ioctl"))
		return run_ioctl((int)num(a[1]), a[2], a + 3);
	if (!strcmp(op, "devopen")) {
		char *args[] = { a[2], a[3], NULL };
		return run_ioctl((int)num(a[1]), "VFIO_GROUP_GET_DEVICE_FD", args);
	}
	if (!strcmp(op, "pin") || !strcmp(op, "unpin")) {
		struct pinledger_pin p = { .iova = num(a[2]), .npage = (uint32_t)num(a[3]), .prot = (uint32_t)num(a[4]) };
		long r = ioctl((int)num(a[1]), !strcmp(op, "pin") ? PINLEDGER_PIN : PINLEDGER_UNPIN, &p);
		return r < 0 ? -errno : r;
	}
	if (!strcmp(op, "pinlist") || !strcmp(op, "unpinlist")) {
		int pin = !strcmp(op, "pinlist");
		int fd = (int)num(a[1]);
		char *list = a[pin ? 3 : 2];
		struct pinledger_pin done[512];
		int ndone = 0;
		long total = 0;
		for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
			uint64_t iova = num(tok);
			if (ndone && done[ndone - 1].iova + ((uint64_t)done[ndone - 1].npage << 12) == iova) {
				done[ndone - 1].npage++;
				continue;
			}
			if (ndone == 512)
				return -E2BIG;
			done[ndone++] = (struct pinledger_pin){ .iova = iova, .npage = 1, .prot = pin ? (uint32_t)num(a[2]) : 0 };
		}
		for (int i = 0; i < ndone; i++) {
			long r = ioctl(fd, pin ? PINLEDGER_PIN : PINLEDGER_UNPIN, &done[i]);
			if (r < 0) {
				r = -errno;
				/* pin_unwind: release what this call pinned. */
				for (int j = 0; pin && j < i; j++)
					ioctl(fd, PINLEDGER_UNPIN, &done[j]);
				return r;
			}
			total += r;
		}
		return total;
	}
	return -EINVAL;
}

/*
 * The workers' channels: socketpair k connects the main process (end[k][0])
 * with worker k (end[k][1]). A worker keeps the ends of the workers it will
 * fork, directly or through its children (parent[]), and no other, so a
 * worker that dies is seen at once (its end is the only one left).
 */
static int nproc;
static int parent[MAXPROC];
static int end[MAXPROC][2];

static int descends(int k, int from)
{
	for (; k > 0; k = parent[k])
		if (k == from)
			return 1;
	return k == from;
}

/* Closes a channel end once: a closed number may be a trace's descriptor by now. */
static void shut(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Worker `self` closes every channel end it will not use or pass on. */
static void keep_own(int self)
{
	for (int k = 0; k < nproc; k++) {
		shut(&end[k][0]);
		if (!descends(k, self))
			shut(&end[k][1]);
	}
}

/* A step's SEQ, PROC and words, from a copy of its line. */
struct head {
	char copy[4096];
	char *seq;
	int proc;
	char *a[16];
	int n;
};

static int parse_head(const char *line, struct head *h)
{
	char *p;
	snprintf(h->copy, sizeof(h->copy), "%s", line);
	h->seq = strtok(h->copy, " \t\n");
	p = h->seq ? strtok(NULL, " \t\n") : NULL;
	if (!p)
		return 0;
	h->proc = (int)strtol(p, NULL, 0);
	h->n = 0;
	while (h->n < 15 && (h->a[h->n] = strtok(NULL, " \t\n")))
		h->n++;
	h->a[h->n] = NULL;
	return h->n;
}

static void worker(int self) __attribute__((noreturn));

/* `fork CHILD`: a real fork of this worker, which then serves CHILD's steps. */
static long fork_worker(int child)
{
	/* CLONE_PARENT: the child is the main process's, which reaps it at its exit step. */
	long pid = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid < 0)
		return -errno;
	if (pid == 0)
		worker(child);
	outf(" pid=%ld", pid);
	for (int k = 0; k < nproc; k++)
		if (descends(k, child))
			shut(&end[k][1]);
	return 0;
}

/*
 * `exec`: the worker execs the helper itself (a new address space: mappings
 * and mlocks gone; descriptors, rlimit, capabilities and pid kept), which
 * answers the step once it runs (main's --exec) and goes on as the worker.
 */
static long exec_worker(int self, const char *seq)
{
	char a_self[16], a_nproc[16], a_parents[4 * MAXPROC + 1] = "", path[4096];
	char *argv[] = { "vfio-lab", "--exec", a_self, (char *)seq, a_nproc, a_parents, NULL };
	/* By its own name, not /proc/self/exe: comm after an exec is the file's name, and a capture knows it by it. */
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n < 0)
		return -errno;
	path[n] = 0;
	snprintf(a_self, sizeof(a_self), "%d", self);
	snprintf(a_nproc, sizeof(a_nproc), "%d", nproc);
	for (int k = 0; k < nproc; k++)
		snprintf(a_parents + strlen(a_parents), sizeof(a_parents) - strlen(a_parents), "%s%d", k ? "," : "", parent[k]);
	execv(path, argv);
	return -errno;
}

/* The exec'd helper: the worker's state from its arguments, its ends by their fixed numbers. */
static void exec_resume(char **argv)
{
	int self = (int)num(argv[2]);
	char reply[128];
	char *p = argv[5];
	nproc = (int)num(argv[4]);
	for (int k = 0; k < nproc && p; k++) {
		parent[k] = (int)strtol(p, &p, 10);
		p = *p == ',' ? p + 1 : NULL;
	}
	for (int k = 0; k < nproc; k++) {
		end[k][0] = -1;
		end[k][1] = descends(k, self) ? CHANNEL_FD + 2 * k + 1 : -1;
	}
	snprintf(reply, sizeof(reply), "R %s 0 %ld", argv[3], vmlck_kb());
	if (send(end[self][1], reply, strlen(reply), 0) < 0)
		_exit(1);
	worker(self);
}

/* Runs the steps the main process sends, answering each with its result line. */
static void worker(int self)
{
	int ch = end[self][1];
	static struct head h;
	char line[4096], reply[sizeof(out) + 128];
	keep_own(self);
	for (;;) {
		ssize_t n = recv(ch, line, sizeof(line) - 1, 0);
		long ret;
		int leave = 0;
		if (n <= 0)
			_exit(0);
		line[n] = 0;
		out[0] = 0;
		if (!parse_head(line, &h))
			ret = -EINVAL;
		else if (!strcmp(h.a[0], "fork"))
			ret = fork_worker((int)num(h.a[1]));
		else if (!strcmp(h.a[0], "exit"))
			ret = 0, leave = 1;
		else if (!strcmp(h.a[0], "exec"))
			ret = exec_worker(self, h.seq); /* returns only if the exec failed */
		else
			ret = step(h.a, h.seq);
		snprintf(reply, sizeof(reply), "R %s %ld %ld%s", h.seq ? h.seq : "?", ret, vmlck_kb(), out);
		if (send(ch, reply, strlen(reply), 0) < 0 || leave)
			_exit(0);
	}
}

static void lab_error(const char *seq, int proc, pid_t pid)
{
	int status = 0;
	if (pid > 0)
		waitpid(pid, &status, 0);
	printf("LAB-ERROR helper worker %d died at step %s (wait status 0x%x)\n", proc, seq, status);
	exit(1);
}

int main(int argc, char **argv)
{
	FILE *in = argc == 2 ? fopen(argv[1], "r") : stdin;
	char **lines = NULL;
	size_t room = 0;
	static struct head h;
	char line[4096];
	size_t nlines = 0;
	pid_t pid[MAXPROC] = { 0 };
	if (argc == 6 && !strcmp(argv[1], "--exec"))
		exec_resume(argv);
	if (!in) {
		perror(argv[1]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	nproc = 1;
	while (fgets(line, sizeof(line), in)) {
		if (line[0] == '#' || line[strspn(line, " \t\n")] == 0)
			continue;
		if (nlines == room) {
			room = room ? 2 * room : 1024;
			lines = realloc(lines, room * sizeof(*lines));
			if (!lines) {
				printf("LAB-ERROR no memory for %zu steps\n", room);
				return 1;
			}
		}
		line[strcspn(line, "\n")] = 0;
		lines[nlines++] = strdup(line);
		if (parse_head(line, &h) >= 2 && !strcmp(h.a[0], "fork")) {
			int child = (int)num(h.a[1]);
			if (child <= 0 || child >= MAXPROC || h.proc < 0 || h.proc >= child) {
				printf("LAB-ERROR step %s: worker %d cannot fork worker %d (at most %d)\n", h.seq, h.proc, child, MAXPROC);
				return 1;
			}
			parent[child] = h.proc;
			if (child + 1 > nproc)
				nproc = child + 1;
		}
	}
	if (in != stdin)
		fclose(in);
	for (int k = 0; k < nproc; k++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv)) {
			printf("LAB-ERROR socketpair: %s\n", strerror(errno));
			return 1;
		}
		/* Fixed numbers: a worker that execs finds its ends by them (exec_worker). */
		end[k][0] = dup2(sv[0], CHANNEL_FD + 2 * k);
		end[k][1] = dup2(sv[1], CHANNEL_FD + 2 * k + 1);
		close(sv[0]);
		close(sv[1]);
	}
	pid[0] = fork();
	if (pid[0] == 0)
		worker(0);
	for (int k = 0; k < nproc; k++)
		shut(&end[k][1]);
	for (size_t i = 0; i < nlines; i++) {
		char reply[sizeof(out) + 128];
		ssize_t n;
		long ret;
		if (!parse_head(lines[i], &h)) {
			printf("R %s %d -1\n", h.seq ? h.seq : "?", -EINVAL);
			continue;
		}
		if (h.proc < 0 || h.proc >= nproc || pid[h.proc] <= 0) {
			printf("LAB-ERROR step %s is for worker %d, which is not running\n", h.seq, h.proc);
			return 1;
		}
		if (send(end[h.proc][0], lines[i], strlen(lines[i]), 0) < 0)
			lab_error(h.seq, h.proc, pid[h.proc]);
		n = recv(end[h.proc][0], reply, sizeof(reply) - 1, 0);
		if (n <= 0)
			lab_error(h.seq, h.proc, pid[h.proc]);
		reply[n] = 0;
		printf("%s\n", reply);
		/* The format has no result for these: a failure would go unseen, and nothing after it would mean anything. */
		if ((!strcmp(h.a[0], "limit") || !strcmp(h.a[0], "fork") || !strcmp(h.a[0], "exec")) &&
		    (sscanf(reply, "R %*s %ld", &ret) != 1 || ret < 0)) {
			printf("LAB-ERROR step %s (%s) failed in worker %d: %s\n", h.seq, h.a[0], h.proc, reply);
			return 1;
		}
		if (!strcmp(h.a[0], "fork")) {
			char *p = strstr(reply, " pid=");
			if (p)
				pid[num(h.a[1])] = (pid_t)strtol(p + 5, NULL, 10);
		} else if (!strcmp(h.a[0], "exit")) {
			/* Its files are released (exit_files, exit_task_work) before it can be reaped. */
			waitpid(pid[h.proc], NULL, 0);
			pid[h.proc] = 0;
			shut(&end[h.proc][0]);
		}
	}
	for (int k = 0; k < nproc; k++)
		if (pid[k] > 0) {
			shut(&end[k][0]);
			waitpid(pid[k], NULL, 0);
		}
	return 0;
}
