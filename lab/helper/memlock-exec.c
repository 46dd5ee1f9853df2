/*
 * memlock-exec: runs a program as an unprivileged VMM would be run for
 * locked memory: RLIMIT_MEMLOCK set, CAP_IPC_LOCK gone from every set and
 * from the bounding set (so root's exec does not give it back), as libvirt
 * leaves QEMU. The lab runs QEMU with it (src/lab/qemu-guest.ts).
 *
 *   memlock-exec BYTES|unlimited PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rlimit rl;
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (argc < 3) {
		fprintf(stderr, "usage: memlock-exec BYTES|unlimited PROGRAM [ARGS...]\n");
		return 2;
	}
	rl.rlim_cur = rl.rlim_max = strcmp(argv[1], "unlimited") ? strtoull(argv[1], NULL, 0) : RLIM_INFINITY;
	if (setrlimit(RLIMIT_MEMLOCK, &rl)) {
		perror("memlock-exec: setrlimit");
		return 1;
	}
	if (prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0)) {
		perror("memlock-exec: PR_CAPBSET_DROP");
		return 1;
	}
	if (syscall(SYS_capget, &h, d)) {
		perror("memlock-exec: capget");
		return 1;
	}
	d[0].effective &= ~(1u << CAP_IPC_LOCK);
	d[0].permitted &= ~(1u << CAP_IPC_LOCK);
	d[0].inheritable &= ~(1u << CAP_IPC_LOCK);
	if (syscall(SYS_capset, &h, d)) {
		perror("memlock-exec: capset");
		return 1;
	}
	execv(argv[2], argv + 2);
	fprintf(stderr, "memlock-exec: %s: %s\n", argv[2], strerror(errno));
	return 127;
}
