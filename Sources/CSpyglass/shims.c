// See include/CSpyglass.h. _GNU_SOURCE comes from Package.swift's cSettings.
#include "CSpyglass.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <limits.h>
#include <zlib.h>

ssize_t spy_process_vm_readv(pid_t pid, const struct iovec *local_iov, unsigned long liovcnt,
                             const struct iovec *remote_iov, unsigned long riovcnt) {
  return process_vm_readv(pid, local_iov, liovcnt, remote_iov, riovcnt, 0);
}

long spy_ptrace_seize(pid_t tid, unsigned long options) {
  return ptrace(PTRACE_SEIZE, tid, NULL, (void *)options);
}
long spy_ptrace_interrupt(pid_t tid) { return ptrace(PTRACE_INTERRUPT, tid, NULL, NULL); }
long spy_ptrace_detach(pid_t tid, int sig) { return ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig); }
long spy_ptrace_cont(pid_t tid, int sig) { return ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig); }
long spy_ptrace_getregs(pid_t tid, uint64_t *regs, size_t count) {
#if defined(__x86_64__)
  struct user_regs_struct r;
  if (count * sizeof(uint64_t) < sizeof(r)) { errno = EINVAL; return -1; }
  long rc = ptrace(PTRACE_GETREGS, tid, NULL, &r);
  if (rc == 0) memcpy(regs, &r, sizeof(r));
  return rc;
#else
  (void)tid; (void)regs; (void)count;
  errno = ENOSYS;
  return -1;
#endif
}
int spy_ptrace_stopped_in_blocking_syscall(pid_t tid) {
#if defined(__x86_64__)
  struct user_regs_struct r;
  if (ptrace(PTRACE_GETREGS, tid, NULL, &r) != 0) return -1;
  // orig_rax is the system call the thread was in (-1: it was running user code). A call that was
  // sleeping when the interrupt came returns one of the kernel's restart codes (ERESTARTSYS 512,
  // ERESTARTNOINTR 513, ERESTARTNOHAND 514, ERESTART_RESTARTBLOCK 516) or EINTR; one that finished
  // normally has its result in rax, and the thread was running.
  if ((long long)r.orig_rax < 0) return 0;
  long long rax = (long long)r.rax;
  return rax == -512 || rax == -513 || rax == -514 || rax == -516 || rax == -EINTR;
#else
  (void)tid;
  errno = ENOSYS;
  return -1;
#endif
}
const unsigned long SPY_PTRACE_O_TRACEEXIT = PTRACE_O_TRACEEXIT;
const int SPY_PTRACE_EVENT_STOP = PTRACE_EVENT_STOP;
const int SPY_PTRACE_EVENT_EXIT = PTRACE_EVENT_EXIT;

pid_t spy_waitpid_all(pid_t tid, int *status, int nohang) {
  return waitpid(tid, status, __WALL | (nohang ? WNOHANG : 0));
}
int spy_wifstopped(int status) { return WIFSTOPPED(status); }
int spy_wstopsig(int status) { return WSTOPSIG(status); }
int spy_wifexited(int status) { return WIFEXITED(status); }
int spy_wexitstatus(int status) { return WEXITSTATUS(status); }
int spy_wifsignaled(int status) { return WIFSIGNALED(status); }
int spy_wtermsig(int status) { return WTERMSIG(status); }
int spy_ptrace_event(int status) { return (status >> 16) & 0xff; }

pid_t spy_spawn(const char *file, char *const argv[], uid_t uid, gid_t gid, int new_process_group) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(pipefd[0]);
    close(pipefd[1]);
    errno = e;
    return -1;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    sigset_t empty;
    sigemptyset(&empty);
    for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &empty, NULL);
    close(pipefd[0]);
    if (new_process_group) setpgid(0, 0);
    if (uid != (uid_t)-1) {
      if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        int e = errno;
        (void)!write(pipefd[1], &e, sizeof(e));
        _exit(127);
      }
    }
    execvp(file, argv);
    int e = errno;
    (void)!write(pipefd[1], &e, sizeof(e));
    _exit(127);
  }
  close(pipefd[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(pipefd[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(pipefd[0]);
  if (n == (ssize_t)sizeof(child_errno)) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    errno = child_errno;
    return -1;
  }
  return pid;
}

int spy_terminal_size(int fd, int *rows, int *cols) {
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0) return -1;
  *rows = ws.ws_row;
  *cols = ws.ws_col;
  return 0;
}

size_t spy_gzip_bound(size_t input_len) { return compressBound((uLong)input_len) + 64; }

int spy_gzip(const uint8_t *input, size_t input_len, uint8_t *output, size_t *output_len) {
  z_stream s;
  memset(&s, 0, sizeof(s));
  if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
  s.next_in = (Bytef *)input;
  s.avail_in = (uInt)input_len;
  s.next_out = output;
  s.avail_out = (uInt)*output_len;
  int rc = deflate(&s, Z_FINISH);
  *output_len = s.total_out;
  deflateEnd(&s);
  return rc == Z_STREAM_END ? 0 : -1;
}

int spy_gunzip(const uint8_t *input, size_t input_len, uint8_t *output, size_t *output_len, size_t *consumed) {
  z_stream s;
  memset(&s, 0, sizeof(s));
  if (input_len > UINT_MAX || *output_len > UINT_MAX) return -1;
  if (inflateInit2(&s, 15 + 16) != Z_OK) return -1;
  s.next_in = (Bytef *)input;
  s.avail_in = (uInt)input_len;
  s.next_out = output;
  s.avail_out = (uInt)*output_len;
  int rc = inflate(&s, Z_FINISH);
  *output_len = s.total_out;
  *consumed = s.total_in;
  int result;
  if (rc == Z_STREAM_END) {
    result = 0;
  } else if (rc == Z_BUF_ERROR || rc == Z_OK) {
    result = s.avail_out == 0 ? 1 : 2;
  } else {
    result = -1;
  }
  inflateEnd(&s);
  return result;
}

long spy_getdents64(int fd, void *buffer, size_t length) { return syscall(SYS_getdents64, fd, buffer, length); }

int spy_errno(void) { return errno; }

int spy_set_timer_slack(unsigned long nanoseconds) { return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0); }

int spy_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
