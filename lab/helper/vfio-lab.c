/*
 * vfio-lab: runs the steps of one vfio-trace process on a real kernel and
 * prints what the kernel did. pinledger's lab writes the steps from a
 * trace, boots a guest with this helper in its initramfs, and reads the
 * results back (src/lab/).
 *
 * Input, one step per line (numbers in hex with 0x or decimal):
 *   SEQ limit unlimited|BYTES [keep]  RLIMIT_MEMLOCK, then CAP_IPC_LOCK
 *                                  dropped unless `keep`
 *   SEQ mmap VADDR SIZE anon|shared
 *   SEQ munmap VADDR SIZE
 *   SEQ open FD PATH               the file gets descriptor FD (dup2)
 *   SEQ close FD
 *   SEQ ioctl FD CMD [ARGS...]     CMD as vfio.h names it, see run_ioctl()
 *   SEQ devopen GROUPFD NAME FD    VFIO_GROUP_GET_DEVICE_FD, as descriptor FD
 *   SEQ pin FD IOVA NPAGE PROT     the test mdev driver pins (vfio_pin_pages)
 *   SEQ unpin FD IOVA NPAGE        and unpins (vfio_unpin_pages)
 *   SEQ pinlist FD PROT IOVA,...   a page list (the pre-5.19 API): one pin per
 *                                  contiguous run, all undone if one fails
 *   SEQ unpinlist FD IOVA,...
 *   SEQ devclose FD
 * Output, one line per step:
 *   R SEQ RET VMLCK_KB [key=value ...]
 * RET is the ioctl's return value or -errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

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

static long vmlck_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static uint64_t num(const char *s)
{
	return s ? strtoull(s, NULL, 0) : 0;
}

/* Clears CAP_IPC_LOCK from every set, so vfio_lock_acct enforces the limit. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
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

static long get_info(int fd)
{
	struct vfio_iommu_type1_info probe = { .argsz = sizeof(probe) };
	struct vfio_iommu_type1_info *info;
	struct vfio_info_cap_header *cap;
	long ret;
	if (ioctl(fd, VFIO_IOMMU_GET_INFO, &probe))
		return -errno;
	info = calloc(1, probe.argsz);
	info->argsz = probe.argsz;
	if (ioctl(fd, VFIO_IOMMU_GET_INFO, info)) {
		ret = -errno;
		free(info);
		return ret;
	}
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
	free(info);
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

static long step(char **a)
{
	const char *op = a[0];
	if (!strcmp(op, "limit")) {
		struct rlimit rl;
		rl.rlim_cur = rl.rlim_max = strcmp(a[1], "unlimited") ? num(a[1]) : RLIM_INFINITY;
		if (setrlimit(RLIMIT_MEMLOCK, &rl))
			return -errno;
		return a[2] && !strcmp(a[2], "keep") ? 0 : drop_ipc_lock();
	}
	if (!strcmp(op, "mmap")) {
		int shared = !strcmp(a[3], "shared");
		void *p = mmap((void *)(uintptr_t)num(a[1]), num(a[2]), PROT_READ | PROT_WRITE,
			       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		return p == (void *)(uintptr_t)num(a[1]) ? 0 : -EEXIST;
	}
	if (!strcmp(op, "munmap"))
		return munmap((void *)(uintptr_t)num(a[1]), num(a[2])) ? -errno : 0;
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
	if (!strcmp(op, "close"))
		return close((int)num(a[1])) ? -errno : 0;
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
	if (!strcmp(op, "devclose"))
		return close((int)num(a[1])) ? -errno : 0;
	return -EINVAL;
}

int main(int argc, char **argv)
{
	FILE *in = argc > 1 ? fopen(argv[1], "r") : stdin;
	char line[4096];
	if (!in) {
		perror(argv[1]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), in)) {
		char *a[16] = { 0 };
		int n = 0;
		char *seq = strtok(line, " \t\n");
		if (!seq || seq[0] == '#')
			continue;
		while (n < 15 && (a[n] = strtok(NULL, " \t\n")))
			n++;
		out[0] = 0;
		long ret = n ? step(a) : -EINVAL;
		printf("R %s %ld %ld%s\n", seq, ret, vmlck_kb(), out);
	}
	return 0;
}
