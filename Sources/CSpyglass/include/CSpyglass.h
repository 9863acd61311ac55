// C shims for what Swift cannot import from Glibc: process_vm_readv (needs _GNU_SOURCE), ptrace
// (variadic), the wait-status macros, a fork/exec that resets the child's signal state and may drop
// privileges, ioctl(TIOCGWINSZ) (variadic) and zlib's gzip framing. Every symbol is prefixed `spy_`.
// _GNU_SOURCE is defined only for the .c file (Package.swift); defining it here breaks the module.
#ifndef CSPYGLASS_H
#define CSPYGLASS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/// process_vm_readv(2). Returns bytes read, or -1 with errno set.
ssize_t spy_process_vm_readv(pid_t pid, const struct iovec *local_iov, unsigned long liovcnt,
                             const struct iovec *remote_iov, unsigned long riovcnt);

/// PTRACE_SEIZE with the given options. 0 or -1/errno.
long spy_ptrace_seize(pid_t tid, unsigned long options);
/// PTRACE_INTERRUPT. 0 or -1/errno.
long spy_ptrace_interrupt(pid_t tid);
/// PTRACE_DETACH, delivering `sig` (0 for none). 0 or -1/errno.
long spy_ptrace_detach(pid_t tid, int sig);
/// PTRACE_CONT delivering `sig`. 0 or -1/errno.
long spy_ptrace_cont(pid_t tid, int sig);
/// PTRACE_GETREGS into 27 u64 words (x86_64 user_regs_struct). 0 or -1/errno.
long spy_ptrace_getregs(pid_t tid, uint64_t *regs, size_t count);
/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are reparented to the caller.
int spy_set_child_subreaper(void);
/// prctl(PR_SET_TIMERSLACK) for the calling thread (prctl is variadic, so not callable from Swift).
int spy_set_timer_slack(unsigned long nanoseconds);
/// For a thread in a ptrace stop: 1 when the stop interrupted a system call that was sleeping
/// (the thread was idle), 0 when it was running, -1/errno when the registers cannot be read.
int spy_ptrace_stopped_in_blocking_syscall(pid_t tid);
extern const unsigned long SPY_PTRACE_O_TRACEEXIT;
extern const int SPY_PTRACE_EVENT_STOP;
extern const int SPY_PTRACE_EVENT_EXIT;

/// waitpid(tid, &status, flags | __WALL). Returns the pid, 0, or -1/errno.
pid_t spy_waitpid_all(pid_t tid, int *status, int nohang);
int spy_wifstopped(int status);
int spy_wstopsig(int status);
int spy_wifexited(int status);
int spy_wexitstatus(int status);
int spy_wifsignaled(int status);
int spy_wtermsig(int status);
/// The ptrace event number of a stop status (status >> 16).
int spy_ptrace_event(int status);

/// fork + execvp with an empty signal mask and default dispositions in the child. If `uid` is not
/// (uid_t)-1 the child drops to uid/gid (supplementary groups cleared) before exec. `error_fd` is a
/// pipe end that receives the child's errno if exec fails (it is close-on-exec). Returns the pid or
/// -1/errno.
pid_t spy_spawn(const char *file, char *const argv[], uid_t uid, gid_t gid, int new_process_group);

/// The terminal size of `fd` (rows, cols), 0 on success.
int spy_terminal_size(int fd, int *rows, int *cols);

/// gzip-compress `input` into `output` (capacity `*output_len`, updated). 0 on success.
int spy_gzip(const uint8_t *input, size_t input_len, uint8_t *output, size_t *output_len);
/// An upper bound for the gzip output of `input_len` bytes.
size_t spy_gzip_bound(size_t input_len);
/// Decompress one gzip member of `input` into `output` (capacity `*output_len`, set to the bytes
/// written); `*consumed` is set to the input bytes the member took. 0: the whole member was
/// decoded; 1: `output` is too small; 2: the input ends inside the member; -1: not gzip, or corrupt.
int spy_gunzip(const uint8_t *input, size_t input_len, uint8_t *output, size_t *output_len, size_t *consumed);

/// getdents64(2) on an open directory: fills `buffer` with linux_dirent64 records. Bytes or -1/errno.
long spy_getdents64(int fd, void *buffer, size_t length);

/// errno, read right after the failing call.
int spy_errno(void);

#endif
