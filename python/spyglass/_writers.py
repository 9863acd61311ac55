# -*- coding: utf-8 -*-
"""Writing a Profile in every format ``FuncStats.save`` offers.

The command line's formats (flamegraph, speedscope, chrometrace, raw, pprof) follow the
executable's own writers (Sources/SpyglassOutput) for a profile without a timeline: the same
labels, shortened file names, escapes, layout and fields. The flame graph carries the executable's
own script (``_flamegraph.js``, taken from Sources/SpyglassOutput/FlamegraphScript.swift when the
wheel is built). Two more are yappi's: ``pstat`` (the marshal'd dict ``pstats.Stats`` loads, so
snakeviz and friends open it) and ``callgrind`` (KCachegrind, callgrind_annotate).

A sampler sees where threads are, not how often functions are called: wherever a format has a
call count it holds the number of samples instead. Times are the CPU time the samples carry.

This module must import on Python 2.7 (nothing here runs there).
"""

from __future__ import absolute_import, division, print_function

import gzip
import io
import json
import marshal
import os

__all__ = ["FORMATS", "format_for_path", "render"]

#: Every type ``save`` accepts.
FORMATS = ("flamegraph", "speedscope", "chrometrace", "raw", "pprof", "pstat", "callgrind")


def format_for_path(path):
    """The format a file name implies (as ``spyglass record`` picks extensions), or None."""
    base = os.path.basename(path).lower()
    if base.endswith(".svg"):
        return "flamegraph"
    if base.endswith(".speedscope.json") or base.endswith(".json"):
        return "speedscope"
    if base.endswith(".txt") or base.endswith(".folded") or base.endswith(".collapsed"):
        return "raw"
    if base.endswith(".pb.gz") or base.endswith(".pprof") or base.endswith(".pb"):
        return "pprof"
    if base.endswith(".prof") or base.endswith(".pstat") or base.endswith(".pstats"):
        return "pstat"
    if base.startswith("callgrind.") or base.endswith(".callgrind"):
        return "callgrind"
    return None


def render(profile, kind, version):
    """The bytes of `profile` written as `kind`."""
    writer = {
        "flamegraph": _flamegraph,
        "speedscope": _speedscope,
        "chrometrace": _chrometrace,
        "raw": _raw,
        "pprof": _pprof,
        "pstat": _pstat,
        "callgrind": _callgrind,
    }.get(kind)
    if writer is None:
        raise ValueError("unknown format %r; use one of %s" % (kind, ", ".join(FORMATS)))
    return writer(profile, version)


# MARK: - Labels, escapes, short file names

_short_names = {}


def short_filename(filename):
    """As the executable shortens: walk up while each directory is a package (holds __init__.py)
    and keep the path from the outermost package down; a file outside any package is its base
    name."""
    cached = _short_names.get(filename)
    if cached is not None:
        return cached
    absolute = filename.startswith("/")
    components = [part for part in filename.split("/") if part]
    if len(components) <= 1:
        result = filename if absolute else (components[-1] if components else filename)
    else:
        kept = [components.pop()]
        depth = 0
        while components and depth < 64:
            depth += 1
            directory = "/".join(components)
            marker = ("/" + directory if absolute else directory) + "/__init__.py"
            if not os.path.exists(marker):
                break
            kept.insert(0, components.pop())
        while len(kept) > 1 and kept[0] in (".", ".."):
            kept.pop(0)
        result = "/".join(kept)
    if len(_short_names) > 65536:
        _short_names.clear()
    _short_names[filename] = result
    return result


def visible(text):
    """Control characters and characters XML cannot hold as visible escapes (as the executable)."""
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            out.append("\\x%02X" % code)
        elif 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            out.append("\\u{%X}" % code)
        else:
            out.append(char)
    return "".join(out)


def frame_label(frame, full_filenames=False):
    """`name (file:line)`, `name (file)` or `name`, as the flame graph, raw and top show frames."""
    if not frame.filename:
        return frame.name
    shown = frame.filename if full_filenames else short_filename(frame.filename)
    if frame.line:
        return "%s (%s:%d)" % (frame.name, shown, frame.line)
    return "%s (%s)" % (frame.name, shown)


def _xml(text):
    text = visible(text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def thread_title(info, multi_process):
    base = 'Thread %s "%s"' % (info.display_id, info.name or "")
    return "Process %d %s" % (info.pid, base) if multi_process else base


def _multi_process(profile):
    return len(set(key[0] for key in profile.threads)) > 1


def _collapsed(profile):
    """Stacks merged across threads, labelled and sorted by labels: [(labels, names, count)]."""
    label_cache = {}

    def label(frame):
        text = label_cache.get(frame)
        if text is None:
            text = visible(frame_label(frame))
            label_cache[frame] = text
        return text

    merged = {}
    names = {}
    for (_, stack), (count, _) in profile.samples.items():
        if count <= 0:
            continue
        labels = tuple(label(frame) for frame in stack)
        merged[labels] = merged.get(labels, 0) + count
        names.setdefault(labels, tuple(frame.name for frame in stack))
    return [(labels, names[labels], merged[labels]) for labels in sorted(merged)]


def _by_thread(profile):
    """{thread key: [(stack, count, weight)]}, stacks sorted by their full labels."""
    result = {}
    for (thread, stack), (count, weight) in profile.samples.items():
        if count > 0:
            result.setdefault(thread, []).append((stack, count, weight))
    for entries in result.values():
        entries.sort(key=lambda entry: [frame_label(frame, True) for frame in entry[0]])
    return result


def _thread_order(profile, keys):
    def sort_key(key):
        info = profile.threads.get(key)
        return (key[0], info.os_thread_id if info and info.os_thread_id is not None else 0, str(key[1]))

    return sorted(keys, key=sort_key)


def _thread_info(profile, key):
    from spyglass._profile import ThreadInfo

    info = profile.threads.get(key)
    if info is None:
        info = ThreadInfo(key[0], thread_id=key[1] if isinstance(key[1], int) else None)
    return info


def _fixed(value, digits):
    """A plain decimal without exponent or trailing zeros."""
    text = ("%." + str(digits) + "f") % value
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# MARK: - raw


def _raw(profile, version):
    lines = []
    for labels, _, count in _collapsed(profile):
        if labels:
            lines.append("%s %d\n" % (";".join(labels), count))
    return "".join(lines).encode("utf-8", "replace")


# MARK: - flamegraph

_WIDTH = 1200.0
_PADDING = 10.0
_FRAME_HEIGHT = 16.0
_CHAR_WIDTH = 7.25
_MIN_WIDTH = 0.1
_FRAMES_TOP = 60.0
_MAX_LABEL = 4096


def _flamegraph_script():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_flamegraph.js")
    try:
        with io.open(path, encoding="utf-8") as handle:
            script = handle.read()
    except (IOError, OSError):
        return None
    return None if "]]>" in script else script


def _capped(label):
    return label if len(label) <= _MAX_LABEL else label[:_MAX_LABEL] + "..."


def _truncated(label, available, char_width):
    fitting = int(available // char_width) if available > 0 else 0
    if fitting < 3:
        return ""
    if len(label) <= fitting:
        return label
    return label[:fitting - 2] + ".."


def _color(name):
    value = 2166136261
    for byte in bytearray(name.encode("utf-8", "replace")):
        value ^= byte
        value = (value * 16777619) & 0xFFFFFFFF
    value ^= value >> 15
    value = (value * 0x2C1B3C6D) & 0xFFFFFFFF
    value ^= value >> 12
    red = 215 + (value & 0xFF) % 41
    green = 85 + ((value >> 8) & 0xFF) % 131
    blue = 30 + ((value >> 16) & 0xFF) % 56
    return "rgb(%d,%d,%d)" % (red, green, blue)


def _flamegraph(profile, version):
    labels = ["all"]
    names = ["all"]
    counts = [0]
    children = [[]]
    for stack_labels, stack_names, count in _collapsed(profile):
        counts[0] += count
        node = 0
        for label, name in zip(stack_labels, stack_names):
            last = children[node][-1] if children[node] else None
            if last is not None and labels[last] == label:
                node = last
            else:
                child = len(labels)
                labels.append(label)
                names.append(name)
                counts.append(0)
                children.append([])
                children[node].append(child)
                node = child
            counts[node] += count
    total = counts[0]
    inner = _WIDTH - 2 * _PADDING
    placed = []
    max_depth = 0
    if total > 0:
        pending = [(0, 0, 0)]
        while pending:
            node, start, depth = pending.pop()
            placed.append((node, start, depth))
            max_depth = max(max_depth, depth)
            following = []
            for child in children[node]:
                if counts[child] / total * inner >= _MIN_WIDTH:
                    following.append((child, start, depth + 1))
                start += counts[child]
            pending.extend(reversed(following))
    height = _FRAMES_TOP + (max_depth + 1) * _FRAME_HEIGHT + 40 if total > 0 else 160
    out = []
    add = out.append
    add('<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n')
    add('<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="1200" height="%s" viewBox="0 0 1200 %s"'
        % (_fixed(height, 2), _fixed(height, 2)))
    add(' data-inverted="true" data-total="%d" data-pad="%s" data-inner="%s" data-char-width="%s" data-min-width="%s">\n'
        % (total, _fixed(_PADDING, 2), _fixed(inner, 2), _fixed(_CHAR_WIDTH, 3), _fixed(_MIN_WIDTH, 3)))
    add('<defs><linearGradient id="background" x1="0" y1="0" x2="0" y2="1">'
        '<stop offset="0%" stop-color="#fbfaf7"/><stop offset="100%" stop-color="#f3ead9"/>'
        '</linearGradient></defs>\n')
    add("<style>\n"
        "text { font-family: monospace; font-size: 12px; fill: #222; }\n"
        "#title { font-size: 16px; font-weight: bold; }\n"
        "#subtitle, #matched { fill: #555; }\n"
        "#empty { font-size: 18px; fill: #777; }\n"
        ".control { cursor: pointer; fill: #1f4f8f; text-decoration: underline; }\n"
        ".f { cursor: pointer; }\n"
        ".f text { pointer-events: none; }\n"
        ".f rect { stroke: #fbfaf7; stroke-width: 0.5; }\n"
        ".f:hover rect { stroke: #222; stroke-width: 1; }\n"
        ".f.anc rect { fill: #dedbd5; }\n"
        ".f.anc text { fill: #666; }\n"
        ".f.hit rect { fill: rgb(160,70,230); }\n"
        ".f.hit text { fill: #fff; }\n"
        ".hide { display: none; }\n"
        "</style>\n"
        '<rect x="0" y="0" width="100%" height="100%" fill="url(#background)"/>\n')
    title = profile.title or "Flame Graph"
    add('<text id="title" x="600" y="26" text-anchor="middle"><title>%s</title>%s</text>\n'
        % (_xml(_capped(title)), _xml(_truncated(_capped(title), 980, 9.7))))
    parts = ["%d sample%s" % (total, "" if total == 1 else "s")]
    if profile.python_version:
        parts.append("Python " + profile.python_version)
    if profile.duration_ns > 0:
        parts.append(_fixed(profile.duration_ns / 1e9, 2) + " s")
    if profile.errors > 0:
        parts.append("%d error%s" % (profile.errors, "" if profile.errors == 1 else "s"))
    add('<text id="subtitle" x="600" y="46" text-anchor="middle">%s</text>\n' % _xml(", ".join(parts)))
    if total == 0:
        add('<text id="empty" x="600" y="100" text-anchor="middle">No samples</text>\n</svg>\n')
        return "".join(out).encode("utf-8", "replace")
    add('<text id="reset" class="control hide" x="10" y="26">Reset Zoom</text>\n')
    add('<text id="search" class="control" x="1190" y="26" text-anchor="end">Search</text>\n')
    add('<text id="details" x="10" y="%s"> </text>\n' % _fixed(height - 14, 2))
    add('<text id="matched" x="1190" y="%s" text-anchor="end"></text>\n<g id="frames">\n' % _fixed(height - 14, 2))
    for node, start, depth in placed:
        label = _capped(labels[node])
        count = counts[node]
        x = _PADDING + start / total * inner
        w = count / total * inner
        y = _FRAMES_TOP + depth * _FRAME_HEIGHT
        add('<g class="f" data-s="%d" data-n="%d" data-d="%d"><title>%s</title>'
            '<rect x="%s" y="%s" width="%s" height="%s" rx="2" fill="%s"/><text x="%s" y="%s">%s</text></g>\n'
            % (start, count, depth, _xml(label), _fixed(x, 2), _fixed(y, 2), _fixed(w, 2),
               _fixed(_FRAME_HEIGHT - 1, 2), "rgb(226,200,160)" if node == 0 else _color(names[node]),
               _fixed(x + 3, 2), _fixed(y + 11.5, 2), _xml(_truncated(label, w - 6, _CHAR_WIDTH))))
    add("</g>\n")
    script = _flamegraph_script()
    if script:
        add('<script type="text/ecmascript"><![CDATA[\n')
        add(script)
        add("]]></script>\n")
    add("</svg>\n")
    return "".join(out).encode("utf-8", "replace")


# MARK: - speedscope


def _speedscope(profile, version):
    frames = []
    frame_index = {}

    def index_of(frame):
        key = (frame.name, frame.filename, frame.line)
        index = frame_index.get(key)
        if index is None:
            index = len(frames)
            frames.append({"name": frame.name, "file": frame.filename, "line": frame.line})
            frame_index[key] = index
        return index

    multi = _multi_process(profile)
    by_thread = _by_thread(profile)
    ordered = sorted(
        ((thread_title(_thread_info(profile, key), multi), str(key)), key) for key in by_thread
    )
    profiles = []
    for (name, _), key in ordered:
        samples = []
        weights = []
        for stack, _, weight in by_thread[key]:
            samples.append([index_of(frame) for frame in stack])
            weights.append(weight / 1e9)
        profiles.append({
            "type": "sampled", "name": name, "unit": "seconds", "startValue": 0,
            "endValue": sum(weight for _, _, weight in by_thread[key]) / 1e9,
            "samples": samples, "weights": weights,
        })
    document = {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "profiles": profiles,
        "shared": {"frames": frames},
        "activeProfileIndex": 0,
        "exporter": "spyglass@%s" % version,
        "name": profile.title or "spyglass profile",
    }
    return (json.dumps(document, separators=(",", ":")) + "\n").encode("utf-8")


# MARK: - chrometrace


def _chrometrace(profile, version):
    period = 1e9 / profile.rate if profile.rate > 0 else 0
    multi = _multi_process(profile)
    events = []
    named = set()
    by_thread = _by_thread(profile)
    for key in _thread_order(profile, by_thread):
        info = _thread_info(profile, key)
        tid = info.os_thread_id if info.os_thread_id is not None else (info.thread_id or 0)
        ids = {"pid": info.pid, "tid": tid}
        if info.pid not in named:
            named.add(info.pid)
            title = profile.title if not multi and profile.title else "Process %d" % info.pid
            events.append(dict(name="process_name", ph="M", args={"name": title}, **ids))
        thread_name = "%s (%s)" % (info.name, info.display_id) if info.name else "Thread %s" % info.display_id
        events.append(dict(name="thread_name", ph="M", args={"name": thread_name}, **ids))

        def event(phase, frame, time):
            args = {"filename": frame.filename}
            if frame.line:
                args["line"] = frame.line
            events.append(dict(name=frame.name, cat="spyglass", ph=phase, ts=round(time / 1000.0, 3), args=args,
                               **ids))

        open_frames = []
        end = 0
        for stack, count, weight in by_thread[key]:
            frames = [(frame.name, frame.filename, frame.line) for frame in stack]
            common = 0
            while common < len(open_frames) and common < len(frames) and open_frames[common][0] == frames[common]:
                common += 1
            for _, frame in reversed(open_frames[common:]):
                event("E", frame, end)
            open_frames = open_frames[:common]
            for frame in stack[common:]:
                event("B", frame, end)
                open_frames.append(((frame.name, frame.filename, frame.line), frame))
            end += weight if weight > 0 else count * period
        for _, frame in reversed(open_frames):
            event("E", frame, end)
    return ("[\n" + ",\n".join(json.dumps(e, separators=(",", ":")) for e in events) + "\n]\n").encode("utf-8")


# MARK: - pprof


def _varint(value):
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number, wire):
    return _varint((number << 3) | wire)


def _int_field(number, value):
    return _key(number, 0) + _varint(value) if value else b""


def _bytes_field(number, payload):
    return _key(number, 2) + _varint(len(payload)) + payload


def _packed(number, values):
    if not values:
        return b""
    return _bytes_field(number, b"".join(_varint(v) for v in values))


def _pprof(profile, version):
    strings = [""]
    string_index = {"": 0}

    def s(text):
        index = string_index.get(text)
        if index is None:
            index = len(strings)
            strings.append(text)
            string_index[text] = index
        return index

    out = []
    out.append(_bytes_field(1, _int_field(1, s("samples")) + _int_field(2, s("count"))))
    out.append(_bytes_field(1, _int_field(1, s("cpu")) + _int_field(2, s("nanoseconds"))))
    functions = {}
    locations = {}
    function_bytes = []
    location_bytes = []

    def location_of(frame):
        function_key = frame.function
        function_id = functions.get(function_key)
        if function_id is None:
            function_id = len(functions) + 1
            functions[function_key] = function_id
            function_bytes.append(_bytes_field(5, _int_field(1, function_id) + _int_field(2, s(frame.name))
                                               + _int_field(4, s(frame.filename)) + _int_field(5, frame.first_line)))
        location_key = (function_id, frame.line)
        location_id = locations.get(location_key)
        if location_id is None:
            location_id = len(locations) + 1
            locations[location_key] = location_id
            line = _int_field(1, function_id) + _int_field(2, frame.line)
            location_bytes.append(_bytes_field(4, _int_field(1, location_id) + _int_field(2, 1)
                                               + _bytes_field(4, line)))
        return location_id

    multi = _multi_process(profile)
    thread_key = s("thread")
    pid_key = s("pid")
    by_thread = _by_thread(profile)
    for key in _thread_order(profile, by_thread):
        info = _thread_info(profile, key)
        labels = (_bytes_field(3, _int_field(1, thread_key) + _int_field(2, s(thread_title(info, multi))))
                  + _bytes_field(3, _int_field(1, pid_key) + _int_field(3, info.pid)))
        for stack, count, weight in by_thread[key]:
            ids = [location_of(frame) for frame in reversed(stack)]
            out.append(_bytes_field(2, _packed(1, ids) + _packed(2, [count, weight]) + labels))
    mapping = (_int_field(1, 1) + _int_field(5, s("python")) + _int_field(7, 1) + _int_field(8, 1)
               + _int_field(9, 1))
    comments = [s("spyglass %s" % version)]
    if profile.title:
        comments.append(s(profile.title))
    if profile.python_version:
        comments.append(s("python %s" % profile.python_version))
    tail = _int_field(9, profile.start_ns) + _int_field(10, profile.duration_ns)
    tail += _bytes_field(11, _int_field(1, s("cpu")) + _int_field(2, s("nanoseconds")))
    if profile.rate > 0:
        tail += _int_field(12, int(1e9 / profile.rate))
    tail += _packed(13, comments)
    # Fields in number order, as protobuf serializers write them.
    body = b"".join(out) + _bytes_field(3, mapping) + b"".join(location_bytes) + b"".join(function_bytes)
    body += b"".join(_bytes_field(6, text.encode("utf-8", "replace")) for text in strings) + tail
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed:
        compressed.write(body)
    return buffer.getvalue()


# MARK: - Function-level totals (pstat, callgrind, and the stats themselves)


def function_totals(profile):
    """Per function (name, filename, first line): [samples on stack, CPU ns on stack, CPU ns as
    leaf]; and per (caller, callee) edge: [samples, CPU ns on stack, CPU ns with callee as leaf].
    A function (or an edge) counts once per sample however often it recurses. Pseudo-frames are
    left out: their callees become roots."""
    functions = {}
    edges = {}
    for (_, stack), (count, weight) in profile.samples.items():
        if count <= 0:
            continue
        real = [frame.function for frame in stack if not frame.is_pseudo]
        if not real:
            continue
        for function in set(real):
            entry = functions.setdefault(function, [0, 0, 0])
            entry[0] += count
            entry[1] += weight
        functions[real[-1]][2] += weight
        seen = set()
        for i in range(len(real) - 1):
            edge = (real[i], real[i + 1])
            if edge in seen:
                continue
            seen.add(edge)
            entry = edges.setdefault(edge, [0, 0, 0])
            entry[0] += count
            entry[1] += weight
            if i + 1 == len(real) - 1:
                entry[2] += weight
    return functions, edges


def _pstat(profile, version):
    functions, edges = function_totals(profile)

    def key(function):
        name, filename, first_line = function
        return (filename, first_line, name)

    callers = {}
    for (caller, callee), (count, weight, leaf) in edges.items():
        callers.setdefault(callee, {})[key(caller)] = (count, count, leaf / 1e9, weight / 1e9)
    stats = {}
    for function, (count, weight, own) in functions.items():
        stats[key(function)] = (count, count, own / 1e9, weight / 1e9, callers.get(function, {}))
    return marshal.dumps(stats)


def _callgrind(profile, version):
    # Self cost per (function, line) and inclusive cost per call site (caller, line, callee), from
    # the frames as sampled (lines are the lines being run).
    own = {}
    calls = {}
    firsts = {}
    for (_, stack), (count, weight) in profile.samples.items():
        if count <= 0:
            continue
        real = [frame for frame in stack if not frame.is_pseudo]
        if not real:
            continue
        for frame in real:
            firsts.setdefault(frame.function, frame.first_line or frame.line)
        leaf = real[-1]
        entry = own.setdefault((leaf.function, leaf.line), [0, 0])
        entry[0] += weight
        entry[1] += count
        seen = set()
        for i in range(len(real) - 1):
            site = (real[i].function, real[i].line, real[i + 1].function)
            if site in seen:
                continue
            seen.add(site)
            entry = calls.setdefault(site, [0, 0])
            entry[0] += weight
            entry[1] += count
    names = {}
    files = {}

    def compressed(table, text):
        if text in table:
            return "(%d)" % table[text]
        table[text] = len(table) + 1
        return "(%d) %s" % (table[text], text.replace("\n", " "))

    per_function = {}
    for (function, line), cost in own.items():
        per_function.setdefault(function, [[], []])[0].append((line, cost))
    for (function, line, callee), cost in calls.items():
        per_function.setdefault(function, [[], []])[1].append((line, callee, cost))
    total_weight = sum(cost[0] for cost in own.values())
    total_count = sum(cost[1] for cost in own.values())
    lines = [
        "# callgrind format",
        "version: 1",
        "creator: spyglass %s" % version,
        "cmd: %s" % (profile.title or "python").replace("\n", " "),
        "positions: line",
        "events: cpu_ns samples",
        "summary: %d %d" % (total_weight, total_count),
        "",
    ]
    for function in sorted(per_function, key=lambda f: (f[1], f[2], f[0])):
        name, filename, _ = function
        own_lines, call_sites = per_function[function]
        lines.append("fl=" + compressed(files, filename or "???"))
        lines.append("fn=" + compressed(names, name))
        for line, (weight, count) in sorted(own_lines):
            lines.append("%d %d %d" % (line, weight, count))
        for line, callee, (weight, count) in sorted(call_sites, key=lambda c: (c[0], c[1][1], c[1][2], c[1][0])):
            callee_name, callee_file, _ = callee
            lines.append("cfl=" + compressed(files, callee_file or "???"))
            lines.append("cfn=" + compressed(names, callee_name))
            lines.append("calls=%d %d" % (count, firsts.get(callee, 0)))
            lines.append("%d %d %d" % (line, weight, count))
        lines.append("")
    return ("\n".join(lines) + "\n").encode("utf-8", "replace")

