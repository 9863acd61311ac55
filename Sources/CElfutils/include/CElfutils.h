// Native stacks through elfutils' libdwfl: one unwinder per live process (or core file) keeps the
// target's module list, CFI and symbol tables between samples; a stack is unwound from a stopped
// thread's registers, which the caller reads (ptrace stays in the process layer), with the
// thread's memory read through the caller's reader (a callback): this code makes no ptrace or
// process_vm_readv call of its own. Symbols, demangled names and source lines come from the same
// session. Every symbol is prefixed `spy_native_`. Only this file's .c includes libdwfl's headers.
#ifndef CELFUTILS_H
#define CELFUTILS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct spy_native spy_native;

/// Reads the 8-byte word at `address` of the live process into `*word`: 1 when it could, 0 when
/// not. `context` is the one given when the session was opened.
typedef int (*spy_native_read_word)(void *context, uint64_t address, uint64_t *word);

/// The number of registers `spy_native_unwind` takes: x86_64's DWARF numbering, rax rdx rcx rbx
/// rsi rdi rbp rsp r8-r15, then the return address column (rip).
enum { SPY_NATIVE_REGISTER_COUNT = 17 };

/// A session over a live process. `root_prefix` is prepended to every library path of the target's
/// maps (its /proc/PID/root when it runs in another root, "" otherwise); `read_word` reads its
/// memory. NULL with a message in `error` when libdwfl cannot report the process's modules.
spy_native *spy_native_open_process(pid_t pid, const char *root_prefix, spy_native_read_word read_word,
                                    void *context, char *error, size_t error_size);

/// A session over a core file (`executable` may be NULL: found from the core's notes). The core's
/// file mappings (`file_count` of them: each file's lowest mapped address and its path as the
/// process saw it) find a library libdwfl's own search does not: its path under `root_prefix`
/// (the process's root, "" or NULL for this one), then the path itself, each only when its build
/// ID is the module's.
spy_native *spy_native_open_core(const char *core_path, const char *executable, const char *root_prefix,
                                 const uint64_t *file_starts, const char *const *file_paths, int file_count,
                                 char *error, size_t error_size);

void spy_native_close(spy_native *session);

/// Reports the live process's modules again (after it mapped or unmapped a library). 0 or -1.
int spy_native_refresh(spy_native *session);

/// Unwinds a thread, innermost first: `pcs[i]` is each frame's pc, already moved back into the
/// call instruction for every frame but an interrupted one (so it symbolises to the caller's line),
/// and `sps[i]` its stack pointer (0 when unknown): frame i's own stack is [sps[i], sps[i + 1]).
/// A live thread's `registers` (SPY_NATIVE_REGISTER_COUNT words, DWARF order) are those of the
/// stopped thread, read by the caller; a core's are its own (pass NULL). Returns the frame count
/// (>= 0; a stack deeper than `capacity` is cut), or -1 with `*error_code` set: 1 registers
/// missing, 2 unwinding failed before the first frame, 3 thread unknown (core).
int spy_native_unwind(spy_native *session, pid_t tid, const uint64_t *registers, uint64_t *pcs, uint64_t *sps,
                      int capacity, int *error_code);

/// What a pc is. Strings point into the session (valid until it is closed or refreshed) or into
/// `demangled`, which the caller frees. `line` 0 when unknown.
typedef struct {
  const char *function;     // mangled or plain symbol name, NULL when none
  char *demangled;          // C++/Rust demangling of `function`, NULL when not mangled; free()
  uint64_t symbol_offset;   // pc - symbol start
  int is_nearest;           // `function` does not cover the pc: it is the nearest one before it
  uint64_t range_start;     // every pc in [range_start, range_end) is the same function (0, 0: unknown)
  uint64_t range_end;
  int module_has_lines;     // the library carries its own line table (lines are read only from those)
  const char *module_path;  // the library's path as the target maps it, NULL when no module
  uint64_t module_offset;   // pc - module load address
  const char *source_file;  // NULL when no line information
  int line;
} spy_native_symbol;

/// Symbolises one pc (as returned by spy_native_unwind); the source line only with `want_line`
/// (it reads the library's DWARF, which costs memory: asked only for frames that are shown).
/// 0, or -1 when no module holds it.
int spy_native_symbolize(spy_native *session, uint64_t pc, int want_line, spy_native_symbol *out);

/// The threads a core file holds (at most `capacity`). Returns how many.
int spy_native_core_threads(spy_native *session, pid_t *tids, int capacity);

/// The pid a core file is of.
pid_t spy_native_core_pid(spy_native *session);

#endif
