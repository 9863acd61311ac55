// See CElfutils.h. The only code that talks to libdwfl.
#include "CElfutils.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// The C++ ABI's demangler (libstdc++, which the Swift runtime links already).
extern char *__cxa_demangle(const char *mangled, char *buffer, size_t *length, int *status);

enum { MAX_CORE_THREADS = 4096 };

struct spy_native {
  Dwfl *dwfl;
  Dwfl_Callbacks callbacks;
  pid_t pid;
  bool is_core;
  char root_prefix[512];
  int core_fd;
  Elf *core_elf;
  // The thread being unwound (live sessions).
  pid_t current_tid;
  bool handed_out;
  // How the live process's memory is read (the caller's reader, which caches what it reads).
  spy_native_read_word read_word;
  void *read_context;
  // The unwind in progress.
  uint64_t *pcs;
  uint64_t *sps;
  int capacity;
  int count;
  // The held thread's registers, given to spy_native_unwind (live sessions), in DWARF order.
  Dwarf_Word registers[SPY_NATIVE_REGISTER_COUNT];
  // Core threads, collected once.
  pid_t core_tids[MAX_CORE_THREADS];
  int core_tid_count;
  // A core's file mappings (NT_FILE): where each file is mapped and its path as the process saw
  // it, for find_elf_in_core.
  uint64_t *core_file_starts;
  char **core_file_paths;
  int core_file_count;
};

static void set_error(char *error, size_t size, const char *what) {
  if (error && size) snprintf(error, size, "%s: %s", what, dwfl_errmsg(-1));
}

// find_elf for a live process: libraries are opened through the target's own root, so a target in
// a container or chroot gets its own files, not the host's ones of the same name. libdwfl calls
// this lazily from inside the session's calls, which set `current` first.
static __thread spy_native *current;

// The file mapped at a module's lowest address, through /proc/PID/map_files: exact whatever mount
// namespace or chroot the target is in (its maps may name the file by a path that does not exist
// from here, as for a folder bound into a container).
static bool mapped_file_path(pid_t pid, Dwfl_Module *mod, char *path, size_t size) {
  Dwarf_Addr low = 0;
  if (!dwfl_module_info(mod, NULL, &low, NULL, NULL, NULL, NULL, NULL)) return false;
  char maps[64];
  snprintf(maps, sizeof maps, "/proc/%d/maps", (int)pid);
  FILE *file = fopen(maps, "re");
  if (!file) return false;
  char line[4096];
  bool found = false;
  while (!found && fgets(line, sizeof line, file)) {
    unsigned long long start = 0, end = 0;
    if (sscanf(line, "%llx-%llx", &start, &end) == 2 && start == low) {
      int n = snprintf(path, size, "/proc/%d/map_files/%llx-%llx", (int)pid, start, end);
      found = n > 0 && (size_t)n < size && access(path, R_OK) == 0;
    }
  }
  fclose(file);
  return found;
}

static int find_elf_in_root(Dwfl_Module *mod, void **userdata, const char *module_name, Dwarf_Addr base,
                            char **file_name, Elf **elfp) {
  spy_native *session = current;
  if (session && !session->is_core && module_name[0] == '/') {
    char path[128];
    if (mapped_file_path(session->pid, mod, path, sizeof path)) {
      int fd = dwfl_linux_proc_find_elf(mod, userdata, path, base, file_name, elfp);
      if (fd >= 0 || *elfp) return fd;
    }
  }
  if (session && session->root_prefix[0] && module_name[0] == '/') {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s%s", session->root_prefix, module_name);
    if (n > 0 && (size_t)n < sizeof path && access(path, R_OK) == 0) {
      int fd = dwfl_linux_proc_find_elf(mod, userdata, path, base, file_name, elfp);
      if (fd >= 0 || *elfp) return fd;
    }
    // A chroot in this mount namespace: the maps name the file by the path seen from here.
  }
  return dwfl_linux_proc_find_elf(mod, userdata, module_name, base, file_name, elfp);
}

static pid_t next_thread(Dwfl *dwfl, void *arg, void **thread_argp) {
  (void)dwfl;
  spy_native *session = arg;
  if (session->handed_out || session->current_tid <= 0) return 0;
  session->handed_out = true;
  *thread_argp = session;
  return session->current_tid;
}

static bool get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp) {
  (void)dwfl;
  spy_native *session = arg;
  if (tid != session->current_tid) return false;
  *thread_argp = session;
  return true;
}

// One word of the stopped thread's memory, through the caller's reader.
static bool memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg) {
  (void)dwfl;
  spy_native *session = arg;
  uint64_t word = 0;
  if (!session->read_word || !session->read_word(session->read_context, addr, &word)) return false;
  *result = word;
  return true;
}

// The registers given to spy_native_unwind for this unwind, already in libdwfl's order.
static bool set_initial_registers(Dwfl_Thread *thread, void *arg) {
  spy_native *session = arg;
  return dwfl_thread_state_registers(thread, 0, SPY_NATIVE_REGISTER_COUNT, session->registers);
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = next_thread,
    .get_thread = get_thread,
    .memory_read = memory_read,
    .set_initial_registers = set_initial_registers,
};

static spy_native *new_session(void) {
  spy_native *session = calloc(1, sizeof *session);
  if (!session) return NULL;
  session->core_fd = -1;
  return session;
}

spy_native *spy_native_open_process(pid_t pid, const char *root_prefix, spy_native_read_word read_word,
                                    void *context, char *error, size_t error_size) {
  spy_native *session = new_session();
  if (!session) return NULL;
  session->pid = pid;
  session->read_word = read_word;
  session->read_context = context;
  snprintf(session->root_prefix, sizeof session->root_prefix, "%s", root_prefix ? root_prefix : "");
  session->callbacks.find_elf = find_elf_in_root;
  session->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
  current = session;
  session->dwfl = dwfl_begin(&session->callbacks);
  if (!session->dwfl) {
    set_error(error, error_size, "dwfl_begin");
    free(session);
    return NULL;
  }
  if (spy_native_refresh(session) != 0) {
    set_error(error, error_size, "reading the process's modules");
    spy_native_close(session);
    return NULL;
  }
  if (!dwfl_attach_state(session->dwfl, NULL, pid, &thread_callbacks, session)) {
    set_error(error, error_size, "attaching the unwinder");
    spy_native_close(session);
    return NULL;
  }
  return session;
}

// Whether `elf` is the file a module was: the same GNU build ID, or no ID to compare.
static bool same_build_id(Dwfl_Module *mod, Elf *elf) {
  const unsigned char *wanted = NULL;
  GElf_Addr vaddr = 0;
  int wanted_size = dwfl_module_build_id(mod, &wanted, &vaddr);
  if (wanted_size <= 0) return true;
  const void *have = NULL;
  ssize_t have_size = dwelf_elf_gnu_build_id(elf, &have);
  return have_size == wanted_size && memcmp(have, wanted, (size_t)wanted_size) == 0;
}

// Opens `path` as the module's file when its build ID matches.
static int open_checked(Dwfl_Module *mod, const char *path, char **file_name, Elf **elfp) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
  if (!elf || !same_build_id(mod, elf)) {
    if (elf) elf_end(elf);
    close(fd);
    return -1;
  }
  *elfp = elf;
  *file_name = strdup(path);
  return fd;
}

// find_elf for a core: libdwfl's own search (the NT_FILE path, build-ID folders), then the file
// mapped at the module's address by its NT_FILE path under the session's root (a core of a
// process that ran in a chroot or container names files as the process saw them).
static int find_elf_in_core(Dwfl_Module *mod, void **userdata, const char *module_name, Dwarf_Addr base,
                            char **file_name, Elf **elfp) {
  int fd = dwfl_build_id_find_elf(mod, userdata, module_name, base, file_name, elfp);
  if (fd >= 0 || *elfp) return fd;
  spy_native *session = current;
  if (!session || !session->is_core) return -1;
  Dwarf_Addr low = 0, high = 0;
  if (!dwfl_module_info(mod, NULL, &low, &high, NULL, NULL, NULL, NULL)) return -1;
  for (int i = 0; i < session->core_file_count; i++) {
    if (session->core_file_starts[i] != low) continue;
    const char *mapped = session->core_file_paths[i];
    if (mapped[0] != '/') continue;
    if (session->root_prefix[0]) {
      char path[4096];
      int n = snprintf(path, sizeof path, "%s%s", session->root_prefix, mapped);
      if (n > 0 && (size_t)n < sizeof path) {
        fd = open_checked(mod, path, file_name, elfp);
        if (fd >= 0) return fd;
      }
    }
    fd = open_checked(mod, mapped, file_name, elfp);
    if (fd >= 0) return fd;
  }
  return -1;
}

static int note_core_thread(Dwfl_Thread *thread, void *arg) {
  spy_native *session = arg;
  if (session->core_tid_count < MAX_CORE_THREADS) session->core_tids[session->core_tid_count++] = dwfl_thread_tid(thread);
  return DWARF_CB_OK;
}

spy_native *spy_native_open_core(const char *core_path, const char *executable, const char *root_prefix,
                                 const uint64_t *file_starts, const char *const *file_paths, int file_count,
                                 char *error, size_t error_size) {
  spy_native *session = new_session();
  if (!session) return NULL;
  session->is_core = true;
  snprintf(session->root_prefix, sizeof session->root_prefix, "%s", root_prefix ? root_prefix : "");
  if (file_count > 0 && file_starts && file_paths) {
    session->core_file_starts = calloc((size_t)file_count, sizeof *session->core_file_starts);
    session->core_file_paths = calloc((size_t)file_count, sizeof *session->core_file_paths);
    if (session->core_file_starts && session->core_file_paths) {
      for (int i = 0; i < file_count; i++) {
        char *copy = file_paths[i] ? strdup(file_paths[i]) : NULL;
        if (!copy) continue;
        session->core_file_starts[session->core_file_count] = file_starts[i];
        session->core_file_paths[session->core_file_count++] = copy;
      }
    }
  }
  session->callbacks.find_elf = find_elf_in_core;
  session->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
  elf_version(EV_CURRENT);
  session->core_fd = open(core_path, O_RDONLY | O_CLOEXEC);
  if (session->core_fd < 0) {
    if (error && error_size) snprintf(error, error_size, "cannot open %s: %s", core_path, strerror(errno));
    free(session);
    return NULL;
  }
  session->core_elf = elf_begin(session->core_fd, ELF_C_READ_MMAP, NULL);
  session->dwfl = session->core_elf ? dwfl_begin(&session->callbacks) : NULL;
  if (!session->dwfl) {
    if (error && error_size) snprintf(error, error_size, "%s is not an ELF file", core_path);
    spy_native_close(session);
    return NULL;
  }
  current = session;
  dwfl_report_begin(session->dwfl);
  int reported = dwfl_core_file_report(session->dwfl, session->core_elf, executable);
  if (reported < 0 || dwfl_report_end(session->dwfl, NULL, NULL) != 0) {
    set_error(error, error_size, "reading the core's modules");
    spy_native_close(session);
    return NULL;
  }
  if (dwfl_core_file_attach(session->dwfl, session->core_elf) < 0) {
    set_error(error, error_size, "reading the core's threads");
    spy_native_close(session);
    return NULL;
  }
  session->pid = dwfl_pid(session->dwfl);
  dwfl_getthreads(session->dwfl, note_core_thread, session);
  return session;
}

void spy_native_close(spy_native *session) {
  if (!session) return;
  current = session;
  if (session->dwfl) dwfl_end(session->dwfl);
  if (session->core_elf) elf_end(session->core_elf);
  if (session->core_fd >= 0) close(session->core_fd);
  for (int i = 0; i < session->core_file_count; i++) free(session->core_file_paths[i]);
  free(session->core_file_paths);
  free(session->core_file_starts);
  current = NULL;
  free(session);
}

int spy_native_refresh(spy_native *session) {
  if (session->is_core) return 0;
  current = session;
  dwfl_report_begin(session->dwfl);
  int rc = dwfl_linux_proc_report(session->dwfl, session->pid);
  if (dwfl_report_end(session->dwfl, NULL, NULL) != 0) return -1;
  return rc == 0 ? 0 : -1;
}

static int note_frame(Dwfl_Frame *frame, void *arg) {
  spy_native *session = arg;
  Dwarf_Addr pc;
  bool activation = false;
  if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
  if (session->count >= session->capacity) return DWARF_CB_ABORT;  // the stack is cut there
  Dwarf_Word sp = 0;
  // x86_64's DWARF register 7 is rsp; an unwound frame's is its callee's CFA.
  if (dwfl_frame_reg(frame, 7, &sp) != 0) sp = 0;
  session->sps[session->count] = sp;
  session->pcs[session->count++] = activation ? pc : pc - 1;
  return DWARF_CB_OK;
}

int spy_native_unwind(spy_native *session, pid_t tid, const uint64_t *registers, uint64_t *pcs, uint64_t *sps,
                      int capacity, int *error_code) {
  current = session;
  if (!session->is_core) {
    if (!registers) {
      *error_code = 1;
      return -1;
    }
    memcpy(session->registers, registers, sizeof session->registers);
  }
  session->current_tid = tid;
  session->handed_out = false;
  session->pcs = pcs;
  session->sps = sps;
  session->capacity = capacity;
  session->count = 0;
  int rc = dwfl_getthread_frames(session->dwfl, tid, note_frame, session);
  // An unwind ends with an error at the outermost frame (no CFI says how to go further) as often
  // as it ends cleanly: what counts is whether any frame came back.
  if (session->count > 0) return session->count;
  *error_code = (rc != 0 && session->is_core) ? 3 : 2;
  return -1;
}

// Rust's legacy mangling demangles like C++ with a trailing `::h` and 16 hex digits: drop it.
static void drop_rust_hash(char *name) {
  size_t n = strlen(name);
  if (n < 19) return;
  char *tail = name + n - 19;
  if (tail[0] != ':' || tail[1] != ':' || tail[2] != 'h') return;
  for (int i = 3; i < 19; i++) {
    char c = tail[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return;
  }
  *tail = 0;
}

// The function a pc is in, by the library's .eh_frame_hdr search table: the entry with the
// greatest start at or below the pc (a function of its own for each FDE), up to the next entry.
// Only the common encoding (datarel sdata4 pairs, as GCC, Clang and the linkers write it) is read;
// anything else, or a pc outside the table, leaves the bounds 0.
static void function_bounds(Dwfl_Module *module, uint64_t pc, uint64_t *low, uint64_t *high) {
  *low = *high = 0;
  Dwarf_Addr bias = 0;
  Elf *elf = dwfl_module_getelf(module, &bias);
  size_t strings = 0;
  if (!elf || elf_getshdrstrndx(elf, &strings) != 0) return;
  for (Elf_Scn *section = elf_nextscn(elf, NULL); section; section = elf_nextscn(elf, section)) {
    GElf_Shdr header;
    if (!gelf_getshdr(section, &header)) continue;
    const char *name = elf_strptr(elf, strings, header.sh_name);
    if (!name || strcmp(name, ".eh_frame_hdr") != 0) continue;
    Elf_Data *data = elf_getdata(section, NULL);
    if (!data || !data->d_buf || data->d_size < 12) return;
    const unsigned char *bytes = data->d_buf;
    // version 1; eh_frame_ptr encoding (any 4-byte one); fde_count udata4/sdata4; table datarel|sdata4.
    if (bytes[0] != 1 || (bytes[2] != 0x03 && bytes[2] != 0x0b) || bytes[3] != 0x3b) return;
    uint32_t count;
    memcpy(&count, bytes + 8, 4);
    if (count == 0 || 12 + (uint64_t)count * 8 > data->d_size) return;
    uint64_t target = pc - bias - header.sh_addr;  // the table is relative to the section
    int32_t first;
    memcpy(&first, bytes + 12, 4);
    if ((int64_t)target < (int64_t)first) return;
    uint32_t lo = 0, hi = count;  // the last entry whose start <= target
    while (hi - lo > 1) {
      uint32_t mid = lo + (hi - lo) / 2;
      int32_t start;
      memcpy(&start, bytes + 12 + (uint64_t)mid * 8, 4);
      if ((int64_t)start <= (int64_t)target) lo = mid; else hi = mid;
    }
    int32_t start, end = 0;
    memcpy(&start, bytes + 12 + (uint64_t)lo * 8, 4);
    if (lo + 1 < count) memcpy(&end, bytes + 12 + (uint64_t)(lo + 1) * 8, 4);
    *low = bias + header.sh_addr + (int64_t)start;
    *high = lo + 1 < count ? bias + header.sh_addr + (int64_t)end : *low + 1;
    if (*high <= pc) *high = pc + 1;  // the last function: only this pc is known to be in it
    return;
  }
}

// A stripped library's pc that no symbol covers: the nearest function symbol before it (what the
// library still exports), or NULL.
static const char *nearest_function(Dwfl_Module *module, uint64_t pc, GElf_Off *offset, uint64_t *next) {
  int count = dwfl_module_getsymtab(module);
  const char *best = NULL;
  GElf_Addr best_address = 0;
  *next = 0;
  for (int i = 1; i < count; i++) {
    GElf_Sym symbol;
    GElf_Addr address = 0;
    GElf_Word section = SHN_UNDEF;
    const char *name = dwfl_module_getsym_info(module, i, &symbol, &address, &section, NULL, NULL);
    // Imports (undefined here) have no address in this module.
    if (!name || !name[0] || GELF_ST_TYPE(symbol.st_info) != STT_FUNC || section == SHN_UNDEF) continue;
    if (address > pc) {
      if (*next == 0 || address < *next) *next = address;
      continue;
    }
    if (!best || address > best_address) {
      best = name;
      best_address = address;
    }
  }
  if (best) *offset = pc - best_address;
  return best;
}

// Whether a library carries its own line table. Source lines are read only from those: a
// separately installed debug file (/usr/lib/debug) still names the library's local functions, but
// its compressed DWARF would be inflated into memory to give lines (25 MiB for glibc's alone).
static bool has_own_line_table(Dwfl_Module *module) {
  Dwarf_Addr bias = 0;
  Elf *elf = dwfl_module_getelf(module, &bias);
  size_t strings = 0;
  if (!elf || elf_getshdrstrndx(elf, &strings) != 0) return false;
  for (Elf_Scn *section = elf_nextscn(elf, NULL); section; section = elf_nextscn(elf, section)) {
    GElf_Shdr header;
    if (!gelf_getshdr(section, &header)) continue;
    const char *name = elf_strptr(elf, strings, header.sh_name);
    if (name && (strcmp(name, ".debug_line") == 0 || strcmp(name, ".zdebug_line") == 0)) return true;
  }
  return false;
}

/// Whether `name` is a C or C++ source file (not a header).
static bool is_c_source(const char *name) {
  size_t length = strlen(name);
  return (length > 2 && strcmp(name + length - 2, ".c") == 0) || (length > 4 && strcmp(name + length - 4, ".cpp") == 0);
}

/// For a pc in code inlined from a header (Py_INCREF from object.h), the innermost place in a C
/// source file that inlined it (the DW_AT_call_file and DW_AT_call_line of the inlined scopes, innermost
/// first): left unchanged when the pc's own line is in a C source file already, or no scope is.
static void innermost_c_location(Dwfl_Module *module, Dwarf_Addr pc, const char **file, int *line) {
  if (*file && is_c_source(*file)) return;
  Dwarf_Addr bias = 0;
  Dwarf_Die *cu = dwfl_module_addrdie(module, pc, &bias);
  if (!cu) return;
  Dwarf_Die *scopes = NULL;
  int count = dwarf_getscopes(cu, pc - bias, &scopes);
  Dwarf_Files *files = NULL;
  size_t file_count = 0;
  if (count > 0 && dwarf_getsrcfiles(cu, &files, &file_count) == 0) {
    for (int i = 0; i < count && i < 256; i++) {
      if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine) continue;
      Dwarf_Attribute attribute;
      Dwarf_Word call_line = 0, call_file = 0;
      if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attribute), &call_line) != 0 || call_line == 0
          || call_line >= 1u << 30
          || dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attribute), &call_file) != 0
          || call_file >= file_count)
        continue;
      const char *name = dwarf_filesrc(files, call_file, NULL, NULL);
      if (name && is_c_source(name)) {
        *file = name;
        *line = (int)call_line;
        break;
      }
    }
  }
  free(scopes);
}

int spy_native_symbolize(spy_native *session, uint64_t pc, int want_line, spy_native_symbol *out) {
  current = session;
  memset(out, 0, sizeof *out);
  Dwfl_Module *module = dwfl_addrmodule(session->dwfl, pc);
  if (!module) return -1;
  Dwarf_Addr start = 0;
  const char *name = dwfl_module_info(module, NULL, &start, NULL, NULL, NULL, NULL, NULL);
  out->module_path = name;
  out->module_offset = pc - start;
  GElf_Off offset = 0;
  GElf_Sym symbol;
  const char *function = dwfl_module_addrinfo(module, pc, &offset, &symbol, NULL, NULL, NULL);
  if (function && function[0] && symbol.st_size > 0) {
    out->range_start = pc - offset;
    out->range_end = pc - offset + symbol.st_size;
  }
  if (!function || !function[0]) {
    // No symbol covers the pc (a stripped library's local function): the function is the one
    // its .eh_frame_hdr entry starts, named after the nearest function symbol before it.
    uint64_t next = 0;
    GElf_Off nearest_offset = 0;
    function = nearest_function(module, pc, &nearest_offset, &next);
    out->is_nearest = function != NULL;
    uint64_t low_pc = 0, high_pc = 0;
    function_bounds(module, pc, &low_pc, &high_pc);
    if (low_pc == 0) {
      // No CFI either: up to the next function symbol (or the module's end).
      Dwarf_Addr module_end = 0;
      dwfl_module_info(module, NULL, NULL, &module_end, NULL, NULL, NULL, NULL);
      low_pc = function ? pc - nearest_offset : pc;
      high_pc = next ? next : module_end;
    }
    out->range_start = low_pc;
    out->range_end = high_pc;
    offset = function ? nearest_offset - (pc - low_pc) : 0;
    out->module_offset -= pc - low_pc;  // the function's start in its library
  }
  if (function && function[0]) {
    out->function = function;
    out->symbol_offset = offset;
    if (function[0] == '_' && function[1] == 'Z') {
      int status = 0;
      char *demangled = __cxa_demangle(function, NULL, NULL, &status);
      if (status == 0 && demangled) {
        drop_rust_hash(demangled);
        out->demangled = demangled;
      } else {
        free(demangled);
      }
    }
  }
  out->module_has_lines = has_own_line_table(module);
  Dwfl_Line *line = want_line && out->module_has_lines ? dwfl_module_getsrc(module, pc) : NULL;
  if (line) {
    int number = 0;
    const char *file = dwfl_lineinfo(line, NULL, &number, NULL, NULL, NULL);
    if (file && number > 0) {
      out->source_file = file;
      out->line = number;
    }
    // A Cython function's pc inside code inlined from a header (Py_INCREF from object.h) is shown
    // at the place in the generated C file that inlined it: that file's lines map to the .pyx.
    if (function && strncmp(function, "__pyx_", 6) == 0) innermost_c_location(module, pc, &out->source_file, &out->line);
  }
  return 0;
}

int spy_native_core_threads(spy_native *session, pid_t *tids, int capacity) {
  int n = session->core_tid_count < capacity ? session->core_tid_count : capacity;
  memcpy(tids, session->core_tids, (size_t)n * sizeof *tids);
  return n;
}

pid_t spy_native_core_pid(spy_native *session) { return session->pid; }
