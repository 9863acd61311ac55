// The least any out-of-process sampler can spend per sample on this machine.
//
// A loop that sleeps until the next tick and then does only the system calls a sample cannot do
// without: the one process_vm_readv of the ranges Spyglass reads for that sample (taken from the
// real process, so the same pages and the same number of ranges), and in blocking mode also the
// pause of the thread around it (PTRACE_SEIZE, PTRACE_INTERRUPT, waitpid polled until the stop,
// PTRACE_DETACH). No walking, no symbols, no profile: whatever Spyglass spends above this is its
// own work. Mode `sleep` (with any PID) is the wake-up floor alone. bench/compare.py builds and
// runs it; by hand:
//
//     cc -O2 -o lower_bound bench/lower_bound.c
//     ./lower_bound PID HZ sleep|read|pause [ADDRESS:LENGTH ...]
//
// Prints the CPU microseconds per tick (user + system, getrusage) over 3 seconds.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#ifndef PTRACE_SEIZE
#define PTRACE_SEIZE 0x4206
#endif
#ifndef PTRACE_INTERRUPT
#define PTRACE_INTERRUPT 0x4207
#endif

enum { maxRanges = 64 };

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s PID HZ sleep|read|pause [ADDRESS:LENGTH ...]\n", argv[0]);
    return 2;
  }
  pid_t pid = atoi(argv[1]);
  long hz = atol(argv[2]);
  const char *mode = argv[3];
  int reading = strcmp(mode, "sleep") != 0, pausing = strcmp(mode, "pause") == 0;
  int count = argc - 4 < maxRanges ? argc - 4 : maxRanges;
  static char buffer[1 << 20];
  struct iovec local[maxRanges], remote[maxRanges];
  size_t total = 0;
  for (int i = 0; i < count; i++) {
    unsigned long address = 0, length = 0;
    if (sscanf(argv[4 + i], "%lx:%lu", &address, &length) != 2 || total + length > sizeof buffer) return 2;
    remote[i] = (struct iovec){(void *)address, length};
    local[i] = (struct iovec){buffer + total, length};
    total += length;
  }
  long ticks = hz * 3, failed = 0;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (long tick = 0; tick < ticks; tick++) {
    next.tv_nsec += 1000000000L / hz;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_sec++;
      next.tv_nsec -= 1000000000L;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, 0);
    int signal = 0;
    if (pausing) {
      if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0 || ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) return 1;
      int status = 0;
      for (long polls = 0; polls < 10000000; polls++) {
        pid_t r = waitpid(pid, &status, __WALL | WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return 1;
      }
      if (WIFSTOPPED(status) && (status >> 16) == 0 && WSTOPSIG(status) != SIGTRAP) signal = WSTOPSIG(status);
    }
    if (reading && count > 0 && process_vm_readv(pid, local, count, remote, count, 0) != (ssize_t)total) failed++;
    if (pausing) ptrace(PTRACE_DETACH, pid, 0, (void *)(long)signal);
  }
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  double seconds = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
                   usage.ru_stime.tv_usec / 1e6;
  printf("%.2f %ld\n", seconds * 1e6 / ticks, failed);
  return 0;
}
