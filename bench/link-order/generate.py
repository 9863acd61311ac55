#!/usr/bin/env python3
"""Writes bench/link-order/order.txt and hot.ld, the code layout of the release link (Package.swift).

Steps, run in turn by generate.sh:

  callgrind  runs a release build of Spyglass under valgrind's callgrind through typical uses (record
             to every format on every installed CPython, record a launched program, the options that
             take other code paths, dump, top) and keeps the address of every instruction that ran;
  order      finds the linker's input section that holds each address (from the link map) and
             lists one symbol of each such section in order.txt, in the order the link lays them out:
               1. sections small enough, or run densely enough, to pack together: first the ones
                  every default record uses, then the ones some interpreters use, then the rest,
                  grouped by which runs use them, so any one run touches a short stretch of code;
               2. the variants of glibc's IFUNC functions that this CPU does not choose;
               3. big sections run only sparsely (the standard library's 1.6 MB .text), after them
                  (each costs the 64 KiB windows it is touched in wherever it lies);
             sections without a symbol go to hot.ld, a linker script fragment;
  native     runs the binary linked in that order natively, reads which IFUNC variants glibc chose
             and (with perf's page-fault event) which code outside the order a native run touches,
             such as the vDSO set-up that valgrind hides; order is run again with them, until a
             native run finds nothing new.

See README.md.
"""
import argparse
import bisect
import collections
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "target.py")
WINDOW = 64 * 1024  # the kernel's fault-around: a read fault maps this much around the page


def pythons():
    """The interpreters to record: $LINK_ORDER_PYTHONS, or every pyenv version, or python3."""
    env = os.environ.get("LINK_ORDER_PYTHONS")
    if env:
        return env.split()
    try:
        root = subprocess.run(["pyenv", "root"], stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    except OSError:
        root = ""
    found = sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python")), key=version_key) if root else []
    return found or ["python3"]


def version_key(python):
    m = re.search(r"/versions/(\d+)\.(\d+)", python)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


class Runner:
    def __init__(self, spyglass, work):
        self.spyglass, self.work, self.outputs = spyglass, work, []

    def valgrind(self, name, args, interrupt_after=None):
        out = os.path.join(self.work, "%s.callgrind" % name)
        cmd = ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
               "--compress-strings=no", "--callgrind-out-file=" + out, self.spyglass] + args
        log = open(os.path.join(self.work, "%s.log" % name), "w")
        started = time.time()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
        if interrupt_after is not None:
            time.sleep(interrupt_after)
            proc.send_signal(signal.SIGINT)
        rc = proc.wait()
        sys.stderr.write("  %-28s exit %d, %.1f s\n" % (name, rc, time.time() - started))
        if os.path.exists(out):
            self.outputs.append((name, out))

    def with_target(self, name, python, args, extra=(), interrupt_after=None, seconds=30):
        target = subprocess.Popen([python, TARGET, "--seconds", str(seconds)] + list(extra),
                                  stdout=subprocess.PIPE, universal_newlines=True)
        target.stdout.readline()  # "ready <pid>"
        time.sleep(0.3)
        try:
            self.valgrind(name, [a.replace("PID", str(target.pid)) for a in args], interrupt_after)
        finally:
            target.kill()
            target.wait()


def train(spyglass, work):
    r = Runner(spyglass, work)
    all_pythons = pythons()
    py3 = [p for p in all_pythons if version_key(p)[0] == 3]
    main = max(py3, key=version_key) if py3 else all_pythons[-1]
    for p in all_pythons:  # the default record on every interpreter: its layout's code paths
        v = "%d.%d" % version_key(p)
        r.with_target("record-" + v, p, ["record", "-p", "PID", "-r", "1000", "-d", "2", "-o", "r.svg"])
        r.with_target("dump-" + v, p, ["dump", "-p", "PID"])
    for fmt, ext in [("speedscope", "json"), ("chrometrace", "json"), ("raw", "txt"), ("pprof", "pb")]:
        r.with_target("record-" + fmt, main, ["record", "-p", "PID", "-r", "1000", "-d", "1", "-f", fmt,
                                              "-o", "r." + ext])
    r.with_target("record-options", main, ["record", "-p", "PID", "-r", "500", "-d", "1", "-i", "-t", "-g", "-F",
                                            "--weight", "cpu", "--full-filenames", "-o", "o.svg"])
    r.with_target("record-nolineno", main, ["record", "-p", "PID", "-r", "1000", "-d", "1", "--nolineno", "-f", "raw",
                                             "-o", "n.txt"])
    r.with_target("record-nonblocking", main, ["record", "-p", "PID", "-r", "1000", "-d", "1", "--nonblocking",
                                                "-o", "n.svg"])
    r.with_target("record-subprocesses", main, ["record", "-p", "PID", "-r", "200", "-d", "2", "-s", "-o", "s.svg"],
                  extra=["--child"])
    r.valgrind("record-launch", ["record", "-r", "500", "-o", "l.svg", "--", main, TARGET, "--seconds", "2"])
    r.with_target("dump-json", main, ["dump", "-p", "PID", "--json"])
    r.with_target("dump-locals", main, ["dump", "-p", "PID", "-ll"])
    r.with_target("top", main, ["top", "-p", "PID", "--delay", "0.5"], interrupt_after=6)
    r.valgrind("help", ["record", "--help"])
    return r.outputs


def ifunc_choices(spyglass, python):
    """The addresses glibc's IFUNC resolvers chose when Spyglass runs natively, not under valgrind:
    valgrind's CPU lacks AVX-512, so it runs (and callgrind sees) other string and memory
    functions than a real run. A static executable applies its R_X86_64_IRELATIVE relocations
    itself at start-up; the slots they fill are read from a running Spyglass."""
    slots = []
    for line in subprocess.run(["readelf", "-rW", spyglass], stdout=subprocess.PIPE,
                               universal_newlines=True).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "R_X86_64_IRELATIVE":
            slots.append(int(parts[0], 16))
    if not slots:
        return set()
    target = subprocess.Popen([python, TARGET, "--seconds", "30"], stdout=subprocess.PIPE, universal_newlines=True)
    target.stdout.readline()
    proc = subprocess.Popen([spyglass, "record", "-p", str(target.pid), "-d", "3", "-o", os.devnull, "-f", "raw"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    chosen = set()
    try:
        with open("/proc/%d/mem" % proc.pid, "rb") as mem:
            for slot in slots:
                mem.seek(slot)
                chosen.add(int.from_bytes(mem.read(8), "little"))
    finally:
        proc.wait()
        target.kill()
        target.wait()
    return chosen


def native_faults(spyglass, pythons_to_run):
    """Code that a native run touches first in each 64 KiB window (perf's page-fault event): the
    code valgrind never sees, as the vDSO set-up of glibc's start-up (valgrind hides the vDSO)."""
    faults = set()
    for python in pythons_to_run:
        for args in (["record", "-p", "PID", "-r", "1000", "-d", "1", "-o", os.devnull], ["dump", "-p", "PID"]):
            target = subprocess.Popen([python, TARGET, "--seconds", "30"], stdout=subprocess.PIPE,
                                      universal_newlines=True)
            target.stdout.readline()
            data = tempfile.NamedTemporaryFile(suffix=".perf")
            try:
                subprocess.run(["perf", "record", "-q", "-e", "page-faults", "-c", "1", "-d", "-o", data.name, spyglass]
                               + [a.replace("PID", str(target.pid)) for a in args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            finally:
                target.kill()
                target.wait()
            out = subprocess.run(["perf", "script", "-i", data.name, "-F", "addr,ip"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, universal_newlines=True).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == parts[1]:  # an instruction fetch
                    faults.add(int(parts[0], 16))
    return faults


def parse_map(path):
    """lld's -Map: [(address, size, output section, input section, [symbols])], by address."""
    sections, out = [], None
    for line in open(path):
        line = line.rstrip("\n")
        if len(line) < 50 or line.startswith("             VMA"):
            continue
        rest = line[49:]
        indent = len(rest) - len(rest.lstrip(" "))
        name = rest.strip()
        if indent == 0:
            out = name
        elif indent == 8:
            sections.append([int(line[0:16], 16), int(line[34:42], 16), out, name, []])
        elif indent == 16 and sections:
            sections[-1][4].append(name)
    return sorted((s for s in sections if s[1] > 0 and s[2] in (".text", ".text.hot")), key=lambda s: s[0])


def executed(path):
    """Every instruction address in a callgrind file made with --dump-instr=yes --compress-pos=no."""
    addresses = set()
    for line in open(path, errors="replace"):
        if line.startswith("0x"):
            addresses.add(int(line.split(None, 1)[0], 16))
        elif line.startswith("calls="):
            parts = line.split()
            if len(parts) > 2 and parts[2].startswith("0x"):
                addresses.add(int(parts[2], 16))
    return addresses


def family(input_section):
    """libc.a(strlen-evex.o):(.text.evex) -> ("libc.a", "strlen"): the variants of one IFUNC."""
    m = re.search(r"([^/]+\.a)\(([^)-]+?)(?:-[^)]*)?\.o\)", input_section)
    return (m.group(1), m.group(2)) if m else None


def script_pattern(input_section):
    """A linker-script pattern for one input section, as the map names it."""
    m = re.match(r"^(.*):\((.*)\)$", input_section)
    path, section = m.group(1), m.group(2)
    a = re.match(r"^.*/([^/]+\.a)\((.*)\)$", path)
    if a:
        return "*%s:%s(%s)" % (a.group(1), a.group(2), section)
    return "*/%s(%s)" % ("/".join(path.split("/")[-2:]), section)


def order(map_path, runs, native_names):
    sections = parse_map(map_path)
    starts = [s[0] for s in sections]

    def index(a):
        i = bisect.bisect_right(starts, a) - 1
        return i if i >= 0 and a < sections[i][0] + sections[i][1] else None

    scenarios = [name for name, _ in runs]
    typical = set(n for n in scenarios if re.match(r"^record-\d", n))  # record, flamegraph, per interpreter
    used = collections.defaultdict(set)  # section index -> scenarios that ran code in it
    pages = collections.defaultdict(set)  # section index -> 4 KiB pages that ran
    for name, path in runs:
        for a in executed(path):
            i = index(a)
            if i is not None:
                used[i].add(name)
                pages[i].add(a >> 12)
    # What a native run uses in place of what valgrind's CPU made glibc choose: as common as the
    # resolver that chose it. The other variants of those functions come after the packed sections,
    # for a machine whose CPU makes other choices.
    # A resolver runs for every IFUNC at start-up, called or not; a function is called if one of
    # its variants ran under callgrind.
    native_sections = set(i for i, s in enumerate(sections) if s[3] in native_names)
    called = set(family(sections[i][3]) for i in used if re.search(r"-[^/]*\.o\)", sections[i][3]))
    everyone = set(scenarios)
    for i in native_sections:
        if family(sections[i][3]) in called or family(sections[i][3]) is None:
            used[i] = set(everyone)
    families = set(f for f in (family(sections[i][3]) for i in native_sections) if f)
    variants = [j for j, s in enumerate(sections) if j not in used and family(s[3]) in families]
    packed, sparse = [], []
    for i in used:
        size = sections[i][1]
        dense = len(pages[i]) * 4096 * 2 >= size
        (packed if size <= WINDOW or dense else sparse).append(i)

    def key(i):
        sig = used[i]
        tier = 0 if typical <= sig else 1 if typical & sig else 2
        return (tier, -len(sig), sorted(sig), sections[i][0])

    packed.sort(key=key)
    sparse.sort(key=lambda i: sections[i][0])
    # lld orders every section that holds a symbol of a listed name, local symbols included, so a
    # name shared with another section brings that one along: choose the name that brings least.
    where = collections.defaultdict(list)
    for i, s in enumerate(sections):
        for sym in s[4]:
            where[sym].append(i)
    chosen, names, unnamed = set(), [], []
    for group, allowed in ((packed, set(packed)), (variants, set(packed) | set(variants)),
                           (sparse, set(packed) | set(variants) | set(sparse))):
        for i in group:
            if i in chosen:
                continue
            best = None
            for sym in sections[i][4]:
                others = [j for j in where[sym] if j != i]
                cost = sum(sections[j][1] * (1 if j in allowed else 5) for j in others)
                if best is None or cost < best[0]:
                    best = (cost, sym, others)
                if cost == 0:
                    break
            if best is None:
                # No symbol (LLVM's merged-function thunks, .L__unnamed_N): placed by hot.ld instead.
                if group is packed and not sections[i][3].startswith("<internal>"):
                    unnamed.append(script_pattern(sections[i][3]))
                continue
            names.append(best[1])
            chosen.add(i)
            chosen.update(best[2])
    stats = collections.OrderedDict([
        ("sections run", len(used)),
        ("packed", "%d sections, %d bytes" % (len(packed), sum(sections[i][1] for i in packed))),
        ("used by every typical record", "%d bytes" % sum(sections[i][1] for i in packed if typical <= used[i])),
        ("native IFUNC choices", "%d, %d of them called" % (len(native_sections), len(native_sections & set(used)))),
        ("other IFUNC variants", "%d sections, %d bytes" % (len(variants), sum(sections[i][1] for i in variants))),
        ("sparse", "%d sections, %d bytes: %s" % (len(sparse), sum(sections[i][1] for i in sparse),
                                                  ", ".join(sections[i][3].split("/")[-1] for i in sparse))),
        ("without a symbol (hot.ld)", len(unnamed)),
    ])
    ordered = [sections[i][3] for i in set(packed) | set(variants) | set(sparse)]
    return names, unnamed, stats, ordered


def sections_at(map_path, addresses):
    sections = parse_map(map_path)
    starts = [s[0] for s in sections]
    found = set()
    for a in addresses:
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and a < sections[i][0] + sections[i][1]:
            found.add(sections[i][3])
    return found


def read_lines(path):
    return set(l.rstrip("\n") for l in open(path)) if os.path.exists(path) else set()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["callgrind", "native", "order"],
                    help="callgrind: run --spyglass through typical uses under callgrind (its link map must be "
                         "WORK/callgrind.map); native: note in WORK/native.txt the code a native run of --spyglass "
                         "(linked with --map) uses that the order does not place (exit status 1 when there is none "
                         "new); order: write order.txt and hot.ld from WORK")
    ap.add_argument("--work", required=True, help="working directory")
    ap.add_argument("--spyglass", help="the release binary")
    ap.add_argument("--map", help="lld -Map of its link (made with --no-demangle)")
    ap.add_argument("-o", "--output", default=HERE, help="where order.txt and hot.ld go")
    args = ap.parse_args()
    work = args.work
    if args.step == "callgrind":
        train(os.path.abspath(args.spyglass), work)
        return
    if args.step == "native":
        spyglass = os.path.abspath(args.spyglass)
        known = read_lines(os.path.join(work, "native.txt"))
        ordered = read_lines(os.path.join(work, "ordered.txt"))
        new = sections_at(args.map, ifunc_choices(spyglass, pythons()[-1])) - known
        have_perf = subprocess.run(["sh", "-c", "command -v perf"], stdout=subprocess.DEVNULL).returncode == 0
        if have_perf:
            all_pythons = pythons()
            faults = sections_at(args.map, native_faults(spyglass, sorted(set([all_pythons[0], all_pythons[-1]]))))
            new |= set(f for f in faults if f not in ordered and f not in known and not f.startswith("<internal>"))
        else:
            sys.stderr.write("no perf: only the IFUNC choices are taken from a native run\n")
        with open(os.path.join(work, "native.txt"), "a") as fh:
            for n in sorted(new):
                fh.write(n + "\n")
        sys.stderr.write("native run: %d sections not placed yet%s\n" % (len(new), "".join(
            "\n  " + n.split("/")[-1] for n in sorted(new))))
        sys.exit(0 if new else 1)
    runs = sorted((os.path.basename(p)[:-len(".callgrind")], p) for p in glob.glob(os.path.join(work, "*.callgrind")))
    names, unnamed, stats, ordered = order(os.path.join(work, "callgrind.map"), runs,
                                           read_lines(os.path.join(work, "native.txt")))
    with open(os.path.join(work, "ordered.txt"), "w") as fh:
        fh.write("".join(n + "\n" for n in ordered))
    header = ("Made by bench/link-order/generate.sh from %d runs under callgrind (%s) and native runs.\n"
              % (len(runs), ", ".join(n for n, _ in runs)))
    with open(os.path.join(args.output, "order.txt"), "w") as fh:
        fh.write("# Symbol ordering file of Spyglass's release link (Package.swift): one symbol for\n"
                 "# each input section that ran, the ones every recording uses first.\n# " + header)
        for n in names:
            fh.write(n + "\n")
    with open(os.path.join(args.output, "hot.ld"), "w") as fh:
        fh.write("/* Linker script fragment of Spyglass's release link (Package.swift): what the ordering\n"
                 "   file cannot name, laid out before .text, where the ordered code begins: the IFUNC call\n"
                 "   stubs (every memcpy, strlen... goes through them), .init and .fini (run at start and\n"
                 "   exit) and the functions without a symbol that ran (LLVM's merged-function thunks). A\n"
                 "   pattern that matches nothing is no error.\n   " + header.replace("*/", "* /") + "*/\n"
                 "SECTIONS {\n  .text.hot : {\n    *(.iplt)\n")
        for u in unnamed:
            fh.write("    %s\n" % u)
        fh.write("  }\n} INSERT BEFORE .text;\n"
                 "SECTIONS { .init : { KEEP(*(SORT_NONE(.init))) } } INSERT BEFORE .text;\n"
                 "SECTIONS { .fini : { KEEP(*(SORT_NONE(.fini))) } } INSERT BEFORE .text;\n")
    for k, v in stats.items():
        sys.stderr.write("%s: %s\n" % (k, v))
    sys.stderr.write("wrote %d symbols to order.txt, %d sections to hot.ld\n" % (len(names), len(unnamed)))


if __name__ == "__main__":
    main()
