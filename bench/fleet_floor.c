// The least a host-wide sampler can spend per process-sample on this machine: one loop that wakes
// RATE times a second and makes, for each pid, one process_vm_readv of PAGES 8-byte pieces, each
// from a different readable mapping (so from PAGES different pages), and nothing else: no stack
// walking, no profile. Spyglass's agent reads about five pages per process per tick on 3.11
// (the runtime's head, the thread state, the frame data stack, the C frame), so the floor beside
// its figures is this loop with PAGES=5 (and 1 for the cost of the system call itself).
//
//   cc -O2 -o fleet_floor bench/fleet_floor.c
//   ./fleet_floor RATE SECONDS PAGES PID...
//
// Prints one line: the CPU time (user + system) per process-read, the system part, the reads made.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { MAX_PAGES = 8 };

static double cpu_seconds(const struct timeval *tv) { return tv->tv_sec + tv->tv_usec / 1e6; }

// Up to `pages` addresses in distinct readable mappings of `pid` (not [vvar]/[vdso]).
static int readable_addresses(pid_t pid, int pages, unsigned long *out) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  FILE *maps = fopen(path, "r");
  if (!maps) return 0;
  char line[512];
  int found = 0;
  while (found < pages && fgets(line, sizeof line, maps)) {
    unsigned long start, end;
    char permissions[8];
    if (sscanf(line, "%lx-%lx %7s", &start, &end, permissions) == 3 && permissions[0] == 'r' &&
        !strstr(line, "[vvar") && !strstr(line, "[vdso") && !strstr(line, "[vsyscall")) {
      out[found++] = start + 64;
    }
  }
  fclose(maps);
  return found;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s RATE SECONDS PAGES PID...\n", argv[0]);
    return 2;
  }
  double rate = atof(argv[1]), seconds = atof(argv[2]);
  int pages = atoi(argv[3]);
  if (rate <= 0 || seconds <= 0 || pages < 0 || pages > MAX_PAGES) {
    fprintf(stderr, "RATE and SECONDS must be positive, PAGES from 0 to %d\n", MAX_PAGES);
    return 2;
  }
  int count = argc - 4;
  pid_t *pids = calloc(count, sizeof *pids);
  unsigned long(*addresses)[MAX_PAGES] = calloc(count, sizeof *addresses);
  int *found = calloc(count, sizeof *found);
  for (int i = 0; i < count; i++) {
    pids[i] = atoi(argv[4 + i]);
    found[i] = readable_addresses(pids[i], pages, addresses[i]);
  }
  char buffer[8 * MAX_PAGES];
  struct iovec local[MAX_PAGES], remote[MAX_PAGES];
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long ticks = (long)(rate * seconds), reads = 0;
  for (long tick = 1; tick <= ticks; tick++) {
    long offset = (long)(tick * 1e9 / rate);
    struct timespec next = start;
    next.tv_sec += offset / 1000000000;
    next.tv_nsec += offset % 1000000000;
    if (next.tv_nsec >= 1000000000) {
      next.tv_sec++;
      next.tv_nsec -= 1000000000;
    }
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    for (int i = 0; i < count; i++) {
      for (int k = 0; k < found[i]; k++) {
        local[k].iov_base = buffer + 8 * k;
        local[k].iov_len = 8;
        remote[k].iov_base = (void *)addresses[i][k];
        remote[k].iov_len = 8;
      }
      process_vm_readv(pids[i], local, found[i], remote, found[i], 0);
      reads++;
    }
  }
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  double cpu = cpu_seconds(&usage.ru_utime) + cpu_seconds(&usage.ru_stime);
  printf("%d pids, %d pages: %.2f us CPU per process-read (%.2f system), %ld reads\n", count, pages,
         cpu * 1e6 / (reads ? reads : 1), cpu_seconds(&usage.ru_stime) * 1e6 / (reads ? reads : 1), reads);
  return 0;
}
