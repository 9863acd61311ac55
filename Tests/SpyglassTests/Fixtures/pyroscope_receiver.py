#!/usr/bin/env python3
"""A test receiver for Grafana Pyroscope's Push API: what Spyglass sends to a Pyroscope server.

Usage: pyroscope_receiver.py RECORDS.jsonl [--port N] [--status CODE [--fail-count N]
                             [--retry-after S]] [--hang] [--down-for SECONDS] [--verbose]
       pyroscope_receiver.py --decode BODY.bin [--profiles DIR]
                             (one body from a file, its record printed: upload_server.py; with
                             --profiles, each raw_profile is also written, as sent, to
                             DIR/SERIES-SAMPLE.pprof, its path in the profile's `file`)

Serves `POST /push.v1.PusherService/Push` the way a Connect server does (Content-Type
application/proto, Content-Encoding gzip or none; success: 200, application/proto, an empty
PushResponse; errors: a JSON Connect error), decodes the PushRequest, gunzips each raw_profile
and decodes it as pprof. Prints the port first; failure modes and the common record fields are
described in upload_server.py.

The PushRequest is described here with descriptor_pb2 from grafana/pyroscope's published field
numbers, not compiled from Protos/pyroscope/push.proto: an independent reading, so a wrong
number in Spyglass's .proto shows as a test failure instead of agreeing with itself. The pprof
messages come from pprof_decode.py beside this file.

What a Pyroscope distributor would refuse (its default limits) is listed in `violations`: a
series without labels, without a valid `__name__` or a non-empty `service_name`, more than 30
labels, a label name longer than 1024 bytes or not [a-zA-Z_][a-zA-Z0-9_]*, a value longer than
2048, a repeated label name, more than 30 labels once the distributor has added a sample's string
labels to its series' labels (it does so before checking the limits: `extractSampleSeries`), a
sample string label whose key is not a valid label name; a profile that is not pprof, larger than 4 MiB uncompressed, with
more than 16000 samples or a sample with more than 100 labels, a zero or repeated location or
function id, a reference to a missing id or string, string_table[0] != "", a sample type
containing "-", a sample whose number of values differs from the number of sample types.
`warnings`: stacks deeper than 1000 frames (Pyroscope truncates them), a sample without frames.

A record's own fields: content_type, connect_protocol_version, tenant (X-Scope-OrgID),
authorization, violations, warnings and series: [{labels {name: value}, label_pairs [[name,
value], ...] (as sent), profiles: [{id, gzipped, bytes, uncompressed_bytes, sample_types
["type/unit"], default_sample_type, period_type, period, time_nanos, duration_nanos, comments,
samples: [{frames: [{name, system_name, file, line, start_line}] (leaf first; an inlined call
before its caller), stack ("root;...;leaf" names), values, labels ({key: str or num})}]}]}]
"""

import gzip
import json
import os
import re
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402

import pprof_decode  # noqa: E402
import upload_server  # noqa: E402

PATH = "/push.v1.PusherService/Push"
MAX_LABELS = 30
MAX_NAME = 1024
MAX_VALUE = 2048
MAX_PROFILE_BYTES = 4 * 1024 * 1024
MAX_SAMPLES = 16000
MAX_SAMPLE_LABELS = 100
MAX_DEPTH = 1000
# Sample labels the distributor does not move into the series' labels.
SAMPLE_ONLY_LABELS = {"span_id", "profile_id"}
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

F = descriptor_pb2.FieldDescriptorProto
# push.v1 as published: (message, [(field, number, type, repeated, message type)]).
PUSH_MESSAGES = [
    ("PushRequest", [("series", 1, F.TYPE_MESSAGE, True, "RawProfileSeries")]),
    ("RawProfileSeries", [
        ("labels", 1, F.TYPE_MESSAGE, True, "LabelPair"),
        ("samples", 2, F.TYPE_MESSAGE, True, "RawSample"),
    ]),
    ("RawSample", [
        ("raw_profile", 1, F.TYPE_BYTES, False, None),
        ("ID", 2, F.TYPE_STRING, False, None),
    ]),
    ("LabelPair", [
        ("name", 1, F.TYPE_STRING, False, None),
        ("value", 2, F.TYPE_STRING, False, None),
    ]),
]


def push_request_class():
    file = descriptor_pb2.FileDescriptorProto(name="spyglass_test_push.proto", package="push.v1", syntax="proto3")
    for name, fields in PUSH_MESSAGES:
        message = file.message_type.add(name=name)
        for field_name, number, kind, repeated, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind)
            field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
            if type_name:
                field.type_name = ".push.v1." + type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("push.v1.PushRequest"))


PushRequest = push_request_class()
Profile = pprof_decode.profile_class()


def check_labels(pairs, where, violations):
    if not pairs:
        violations.append("%s: no labels" % where)
        return
    if len(pairs) > MAX_LABELS:
        violations.append("%s: %d labels, more than %d" % (where, len(pairs), MAX_LABELS))
    names = [name for name, _ in pairs]
    values = dict(pairs)
    if not METRIC_NAME.match(values.get("__name__", "")):
        violations.append("%s: __name__ %r is missing or not a valid metric name" % (where, values.get("__name__")))
    if not values.get("service_name"):
        violations.append("%s: service_name is missing or empty" % where)
    for name, value in pairs:
        if len(name) > MAX_NAME:
            violations.append("%s: label name longer than %d" % (where, MAX_NAME))
        elif not LABEL_NAME.match(name):
            violations.append("%s: invalid label name %r" % (where, name))
        if len(value) > MAX_VALUE:
            violations.append("%s: value of %r longer than %d" % (where, name, MAX_VALUE))
    repeated = sorted(set(name for name in names if names.count(name) > 1))
    if repeated:
        violations.append("%s: repeated label names %s" % (where, repeated))


def decode_pprof(raw, where, violations, warnings):
    """One raw_profile: gunzipped if it is gzip, decoded, every reference checked."""
    out = {"bytes": len(raw), "gzipped": raw[:2] == b"\x1f\x8b"}
    data = raw
    if out["gzipped"]:
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            violations.append("%s: raw_profile is not valid gzip: %s" % (where, error))
            return out
    out["uncompressed_bytes"] = len(data)
    if len(data) > MAX_PROFILE_BYTES:
        violations.append("%s: %d bytes uncompressed, more than %d" % (where, len(data), MAX_PROFILE_BYTES))
    profile = Profile()
    try:
        profile.ParseFromString(data)
    except DecodeError as error:
        violations.append("%s: raw_profile is not a pprof profile: %s" % (where, error))
        return out
    strings = list(profile.string_table)

    def text(index, what):
        if not 0 <= index < len(strings):
            violations.append("%s: %s string index %d out of range (%d strings)" % (where, what, index, len(strings)))
            return None
        return strings[index]

    if not strings or strings[0] != "":
        violations.append("%s: string_table[0] is not \"\"" % where)
    functions = {}
    for function in profile.function:
        if function.id == 0 or function.id in functions:
            violations.append("%s: function id %d is zero or repeated" % (where, function.id))
        functions[function.id] = {
            "name": text(function.name, "function name"),
            "system_name": text(function.system_name, "function system_name"),
            "file": text(function.filename, "function filename"),
            "start_line": function.start_line,
        }
    mappings = set()
    for mapping in profile.mapping:
        if mapping.id == 0 or mapping.id in mappings:
            violations.append("%s: mapping id %d is zero or repeated" % (where, mapping.id))
        mappings.add(mapping.id)
        text(mapping.filename, "mapping filename")
        text(mapping.build_id, "mapping build_id")
    locations = {}
    for location in profile.location:
        if location.id == 0 or location.id in locations:
            violations.append("%s: location id %d is zero or repeated" % (where, location.id))
        if location.mapping_id and location.mapping_id not in mappings:
            violations.append("%s: location %d refers to mapping %d, which is missing" % (where, location.id, location.mapping_id))
        frames = []
        for line in location.line:
            if line.function_id not in functions:
                violations.append("%s: location %d refers to function %d, which is missing" % (where, location.id, line.function_id))
                continue
            frames.append(dict(functions[line.function_id], line=line.line))
        if not location.line:
            frames.append({"name": None, "system_name": None, "file": None, "line": 0, "start_line": 0,
                           "address": location.address})
        locations[location.id] = frames
    sample_types = []
    for value_type in profile.sample_type:
        kind, unit = text(value_type.type, "sample type"), text(value_type.unit, "sample unit")
        if kind and "-" in kind:
            violations.append("%s: sample type %r contains '-'" % (where, kind))
        sample_types.append("%s/%s" % (kind, unit))
    if len(profile.sample) > MAX_SAMPLES:
        violations.append("%s: %d samples, more than %d" % (where, len(profile.sample), MAX_SAMPLES))
    samples = []
    for position, sample in enumerate(profile.sample):
        at = "%s sample[%d]" % (where, position)
        if len(sample.value) != len(sample_types):
            violations.append("%s: %d values for %d sample types" % (at, len(sample.value), len(sample_types)))
        if len(sample.label) > MAX_SAMPLE_LABELS:
            violations.append("%s: %d labels, more than %d" % (at, len(sample.label), MAX_SAMPLE_LABELS))
        if len(sample.location_id) > MAX_DEPTH:
            warnings.append("%s: %d frames deep; Pyroscope keeps %d" % (at, len(sample.location_id), MAX_DEPTH))
        if not sample.location_id:
            warnings.append("%s: no frames" % at)
        frames = []
        for location_id in sample.location_id:
            if location_id not in locations:
                violations.append("%s: location id %d is missing" % (at, location_id))
                continue
            frames.extend(locations[location_id])
        labels = {}
        for label in sample.label:
            key = text(label.key, "label key")
            if key in labels:
                violations.append("%s: label %r repeated" % (at, key))
            if label.str:
                labels[key] = text(label.str, "label value")
            else:
                labels[key] = label.num
                if label.num_unit:
                    text(label.num_unit, "label unit")
        samples.append({
            "frames": frames,
            "stack": ";".join(str(frame["name"]) for frame in reversed(frames)),
            "values": list(sample.value),
            "labels": labels,
        })
    out.update(
        sample_types=sample_types,
        default_sample_type=text(profile.default_sample_type, "default sample type") or None,
        period_type="%s/%s" % (text(profile.period_type.type, "period type"), text(profile.period_type.unit, "period unit")),
        period=profile.period,
        time_nanos=profile.time_nanos,
        duration_nanos=profile.duration_nanos,
        comments=[text(comment, "comment") for comment in profile.comment],
        samples=samples,
    )
    return out


def check_sample_labels(pairs, profile, where, violations):
    """Pyroscope's distributor adds each sample's string labels to its series' labels (a name the
    series has already keeps the series' value), splits the profile by the label sets that makes,
    and only then checks the label limits: each such set must pass them too. span_id (and
    profile_id, which it renames span_id) stays a sample label."""
    names = set(name for name, _ in pairs) | SAMPLE_ONLY_LABELS
    most = 0
    invalid = set()
    for sample in profile.get("samples", []):
        added = [key for key, value in sample["labels"].items()
                 if isinstance(key, str) and isinstance(value, str) and value and key not in names]
        invalid.update(key for key in added if not LABEL_NAME.match(key) or len(key) > MAX_NAME)
        most = max(most, len(added))
    if len(pairs) + most > MAX_LABELS:
        violations.append("%s: %d labels once the distributor adds the samples' string labels, more than %d"
                          % (where, len(pairs) + most, MAX_LABELS))
    for key in sorted(invalid):
        violations.append("%s: sample label %r is not a valid label name" % (where, key))


def decode_push(body):
    request = PushRequest()
    request.ParseFromString(body)
    violations, warnings, series = [], [], []
    if not request.series:
        warnings.append("the request holds no series")
    for s, raw_series in enumerate(request.series):
        where = "series[%d]" % s
        pairs = [(label.name, label.value) for label in raw_series.labels]
        check_labels(pairs, where, violations)
        profiles = []
        if not raw_series.samples:
            violations.append("%s: no samples (raw profiles)" % where)
        for p, raw in enumerate(raw_series.samples):
            profile = decode_pprof(raw.raw_profile, "%s.samples[%d]" % (where, p), violations, warnings)
            profile["id"] = raw.ID
            check_sample_labels(pairs, profile, "%s.samples[%d]" % (where, p), violations)
            profiles.append(profile)
        series.append({"labels": dict(pairs), "label_pairs": [list(pair) for pair in pairs], "profiles": profiles})
    return {"series": series, "violations": violations, "warnings": warnings}


# Connect's error codes by HTTP status, for the error bodies (connectrpc.com's protocol).
CONNECT_CODES = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "unimplemented",
                 408: "deadline_exceeded", 409: "aborted", 412: "failed_precondition", 413: "resource_exhausted",
                 415: "internal", 429: "unavailable", 431: "resource_exhausted", 500: "internal",
                 501: "unimplemented", 502: "unavailable", 503: "unavailable", 504: "unavailable"}


def connect_error(status, message, record=None, error=None):
    body = json.dumps({"code": CONNECT_CODES.get(status, "unknown"), "message": message}).encode()
    return upload_server.Answer(status, "application/json", body, record=record, error=error)


def handle(method, path, headers, body):
    record = {
        "content_type": headers.get("Content-Type"),
        "connect_protocol_version": headers.get("Connect-Protocol-Version"),
        "tenant": headers.get("X-Scope-OrgID"),
        "authorization": headers.get("Authorization"),
    }
    if path != PATH:
        return connect_error(404, "no such procedure", record, "unknown path %s" % path)
    if method != "POST":
        return connect_error(405, "method not allowed", record, "method %s" % method)
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/proto":
        return connect_error(415, "unsupported content type %r" % content_type, record,
                             "unsupported Content-Type %r" % content_type)
    try:
        record.update(decode_push(body))
    except DecodeError as error:
        return connect_error(400, "undecodable PushRequest", record, "undecodable request: %s" % error)
    # An empty PushResponse serializes to no bytes.
    return upload_server.Answer(200, "application/proto", b"", record=record)


def failure(status, message):
    return connect_error(status, message)


def decode_body(body, args):
    """--decode: the record of one PushRequest body; --profiles DIR saves each raw_profile."""
    record = decode_push(body)
    if args.profiles:
        request = PushRequest()
        request.ParseFromString(body)
        for s, raw_series in enumerate(request.series):
            for p, raw in enumerate(raw_series.samples):
                path = os.path.join(args.profiles, "%d-%d.pprof" % (s, p))
                with open(path, "wb") as file:
                    file.write(raw.raw_profile)
                record["series"][s]["profiles"][p]["file"] = path
    return record


def main():
    if "--decode" in sys.argv[1:]:
        sys.exit(upload_server.decode_command(
            "Pyroscope Push API test receiver", decode_body,
            lambda parser: parser.add_argument("--profiles", metavar="DIR", help="write each raw_profile here")))
    args = upload_server.arguments("Pyroscope Push API test receiver").parse_args()
    upload_server.serve(args, handle, failure)


if __name__ == "__main__":
    main()
