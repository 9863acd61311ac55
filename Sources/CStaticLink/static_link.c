// The static executable links with `--wrap=dlopen` (Package.swift), so every dlopen in it comes
// here first. elfutils' libdw dlopens libdebuginfod at its first session: in a static process that
// maps a second C library (libdebuginfod pulls in libcurl and the shared libc), costs ~10 ms and
// memory, and with DEBUGINFOD_URLS set (distributions set it by default) would let a sample wait
// on a download. Spyglass reads only the debug information already on the machine, so that one
// library is refused; every other dlopen goes through.
#include "CStaticLink.h"

#include <string.h>

void *__real_dlopen(const char *file, int mode);

void *__wrap_dlopen(const char *file, int mode) {
  if (file && strstr(file, "libdebuginfod")) return NULL;
  return __real_dlopen(file, mode);
}

int spy_static_link_hooks(void) { return 1; }
