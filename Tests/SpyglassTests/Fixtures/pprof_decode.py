#!/usr/bin/env python3
"""Decode a gzipped pprof profile written by Spyglass and print a JSON summary.

Usage: pprof_decode.py FILE.pb.gz

Nothing is compiled: the message types of perftools.profiles (Protos/profile.proto) are described
here with descriptor_pb2 and turned into classes by google.protobuf's message factory, so only the
`protobuf` package is needed. The script also checks the invariants pprof relies on
(string_table[0] == "", unique non-zero ids, every referenced id and string index exists, one value
per sample type) and exits non-zero if one fails.
"""

import gzip
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
PACKAGE = "perftools.profiles"

# (message, [(field, number, type, repeated, message type)])
MESSAGES = [
    ("Profile", [
        ("sample_type", 1, F.TYPE_MESSAGE, True, "ValueType"),
        ("sample", 2, F.TYPE_MESSAGE, True, "Sample"),
        ("mapping", 3, F.TYPE_MESSAGE, True, "Mapping"),
        ("location", 4, F.TYPE_MESSAGE, True, "Location"),
        ("function", 5, F.TYPE_MESSAGE, True, "Function"),
        ("string_table", 6, F.TYPE_STRING, True, None),
        ("drop_frames", 7, F.TYPE_INT64, False, None),
        ("keep_frames", 8, F.TYPE_INT64, False, None),
        ("time_nanos", 9, F.TYPE_INT64, False, None),
        ("duration_nanos", 10, F.TYPE_INT64, False, None),
        ("period_type", 11, F.TYPE_MESSAGE, False, "ValueType"),
        ("period", 12, F.TYPE_INT64, False, None),
        ("comment", 13, F.TYPE_INT64, True, None),
        ("default_sample_type", 14, F.TYPE_INT64, False, None),
        ("doc_url", 15, F.TYPE_INT64, False, None),
    ]),
    ("ValueType", [
        ("type", 1, F.TYPE_INT64, False, None),
        ("unit", 2, F.TYPE_INT64, False, None),
    ]),
    ("Sample", [
        ("location_id", 1, F.TYPE_UINT64, True, None),
        ("value", 2, F.TYPE_INT64, True, None),
        ("label", 3, F.TYPE_MESSAGE, True, "Label"),
    ]),
    ("Label", [
        ("key", 1, F.TYPE_INT64, False, None),
        ("str", 2, F.TYPE_INT64, False, None),
        ("num", 3, F.TYPE_INT64, False, None),
        ("num_unit", 4, F.TYPE_INT64, False, None),
    ]),
    ("Mapping", [
        ("id", 1, F.TYPE_UINT64, False, None),
        ("memory_start", 2, F.TYPE_UINT64, False, None),
        ("memory_limit", 3, F.TYPE_UINT64, False, None),
        ("file_offset", 4, F.TYPE_UINT64, False, None),
        ("filename", 5, F.TYPE_INT64, False, None),
        ("build_id", 6, F.TYPE_INT64, False, None),
        ("has_functions", 7, F.TYPE_BOOL, False, None),
        ("has_filenames", 8, F.TYPE_BOOL, False, None),
        ("has_line_numbers", 9, F.TYPE_BOOL, False, None),
        ("has_inline_frames", 10, F.TYPE_BOOL, False, None),
    ]),
    ("Location", [
        ("id", 1, F.TYPE_UINT64, False, None),
        ("mapping_id", 2, F.TYPE_UINT64, False, None),
        ("address", 3, F.TYPE_UINT64, False, None),
        ("line", 4, F.TYPE_MESSAGE, True, "Line"),
        ("is_folded", 5, F.TYPE_BOOL, False, None),
    ]),
    ("Line", [
        ("function_id", 1, F.TYPE_UINT64, False, None),
        ("line", 2, F.TYPE_INT64, False, None),
        ("column", 3, F.TYPE_INT64, False, None),
    ]),
    ("Function", [
        ("id", 1, F.TYPE_UINT64, False, None),
        ("name", 2, F.TYPE_INT64, False, None),
        ("system_name", 3, F.TYPE_INT64, False, None),
        ("filename", 4, F.TYPE_INT64, False, None),
        ("start_line", 5, F.TYPE_INT64, False, None),
    ]),
]


def profile_class():
    file = descriptor_pb2.FileDescriptorProto(name="profile.proto", package=PACKAGE, syntax="proto3")
    for name, fields in MESSAGES:
        message = file.message_type.add(name=name)
        for field_name, number, kind, repeated, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind)
            field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
            if type_name:
                field.type_name = "." + PACKAGE + "." + type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(PACKAGE + ".Profile"))


def fail(why):
    print(json.dumps({"error": why}))
    sys.exit(1)


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    if data[:2] != b"\x1f\x8b":
        fail("not gzip")
    profile = profile_class()()
    profile.ParseFromString(gzip.decompress(data))
    strings = list(profile.string_table)

    def text(index):
        if not 0 <= index < len(strings):
            fail("string index out of range: %d" % index)
        return strings[index]

    if not strings or strings[0] != "":
        fail("string_table[0] is not empty")
    functions = {}
    for function in profile.function:
        if function.id == 0 or function.id in functions:
            fail("bad function id %d" % function.id)
        functions[function.id] = (text(function.name), text(function.filename))
        text(function.system_name)
    locations = {}
    for location in profile.location:
        if location.id == 0 or location.id in locations:
            fail("bad location id %d" % location.id)
        if len(location.line) != 1 or location.line[0].function_id not in functions:
            fail("bad location lines for id %d" % location.id)
        line = location.line[0]
        locations[location.id] = (functions[line.function_id][0], functions[line.function_id][1], line.line)
    sample_types = ["%s/%s" % (text(t.type), text(t.unit)) for t in profile.sample_type]
    totals = [0] * len(sample_types)
    stacks = {}
    threads = {}
    pids = set()
    for sample in profile.sample:
        if len(sample.value) != len(sample_types):
            fail("sample has %d values for %d types" % (len(sample.value), len(sample_types)))
        for i, value in enumerate(sample.value):
            totals[i] += value
        for location_id in sample.location_id:
            if location_id not in locations:
                fail("unknown location id %d" % location_id)
        # Leaf first in pprof; print root first like collapsed stacks.
        names = ";".join("%s:%d" % (locations[i][0], locations[i][2]) for i in reversed(sample.location_id))
        stacks[names] = stacks.get(names, 0) + sample.value[0]
        labels = {text(label.key): label for label in sample.label}
        if "thread" not in labels or "pid" not in labels:
            fail("sample without thread/pid labels")
        thread = text(labels["thread"].str)
        threads[thread] = threads.get(thread, 0) + sample.value[0]
        pids.add(labels["pid"].num)
    print(json.dumps({
        "samples": len(profile.sample),
        "functions": len(profile.function),
        "locations": len(profile.location),
        "function_names": sorted(set(name for name, _ in functions.values())),
        "sample_types": sample_types,
        "period_type": "%s/%s" % (text(profile.period_type.type), text(profile.period_type.unit)),
        "period": profile.period,
        "time_nanos": profile.time_nanos,
        "duration_nanos": profile.duration_nanos,
        "totals": totals,
        "stacks": stacks,
        "threads": threads,
        "pids": sorted(pids),
        "comments": [text(c) for c in profile.comment],
    }, sort_keys=True))


if __name__ == "__main__":
    main()
