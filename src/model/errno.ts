/** Linux errno values (asm-generic/errno-base.h, errno.h) used by VFIO. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  ERANGE: 34,
  EDEADLK: 35,
  EOVERFLOW: 75,
  EADDRINUSE: 98,
} as const;

export type ErrnoName = keyof typeof Errno;

const byNumber = new Map<number, ErrnoName>(
  (Object.entries(Errno) as [ErrnoName, number][]).map(([k, v]) => [v, k]),
);

/** A syscall result: 0, a non-negative count, or a negative errno. */
export type Ret = number;

export const err = (name: ErrnoName): Ret => -Errno[name];

export function errnoName(ret: Ret): string {
  if (ret >= 0) return String(ret);
  return byNumber.get(-ret) ?? `errno ${-ret}`;
}

export function errnoFromName(name: string): number | undefined {
  return (Errno as Record<string, number>)[name];
}
