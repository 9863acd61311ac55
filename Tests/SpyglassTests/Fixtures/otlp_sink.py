#!/usr/bin/env python3
"""A test receiver for OTLP/HTTP profiles: what Spyglass (or a collector forwarding for it) sends.

Usage: otlp_sink.py RECORDS.jsonl [--port N] [--status CODE [--fail-count N] [--retry-after S]]
                    [--hang] [--down-for SECONDS] [--verbose]
       otlp_sink.py --decode BODY.bin     (one body from a file, its record printed: upload_server.py)

Serves `POST /v1development/profiles` (Content-Type application/x-protobuf, or application/json;
Content-Encoding gzip or none), decodes the ExportProfilesServiceRequest with PyPI's
opentelemetry-proto (profiles v1development, generated from opentelemetry-proto 1.10.0 in its
1.45 releases: an independent reading of the protocol, so a wrong field number on Spyglass's
side shows here), and answers 200 with an empty ExportProfilesServiceResponse. Prints the port
first; the failure modes and the common record fields are described in upload_server.py.

The collector checks only that the bytes decode, so this sink checks the dictionary rules itself
and lists what breaks them in `violations` (an empty list: the request is well formed):
every table's entry 0 is present and the zero value, string_table[0] == "", every index is in
range and no reference points at a table's entry 0 where a real entry is meant, attribute keys
are non-empty and unique within one list and every attribute has a value, links have 16-byte
trace ids and 8-byte span ids, a sample has values or timestamps (the same number if both),
profile ids are 16 bytes and not all zero. `warnings` lists what the spec only advises against
(empty stacks, repeated sample identities, timestamps outside the profile's time range, mixed
sample shapes).

A record's own fields: content_type, violations, warnings, dictionary (table sizes, duplicate
and unused entries) and profiles, one per profile of the request:
  resource (attributes), resource_schema_url, scope {name, version, attributes}, sample_type
  ("type/unit"), period_type, period, time_unix_nano, duration_nano, profile_id (hex),
  attributes, dropped_attributes_count, original_payload_format, original_payload_bytes,
  samples: [{frames: [{function, system_name, filename, line, column, start_line, frame_type,
             address, mapping}] (leaf first; an inlined call before its caller),
             stack ("root;...;leaf" function names), values, timestamps_unix_nano,
             attributes ({key: value}, e.g. thread.id, thread.name), link ({trace_id,
             span_id} hex, or null)}]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from google.protobuf import json_format  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402

import upload_server  # noqa: E402

try:
    from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2  # noqa: E402
    from opentelemetry.proto.profiles.v1development import profiles_pb2  # noqa: E402
except ImportError:  # pragma: no cover
    sys.stderr.write("otlp_sink.py needs PyPI's opentelemetry-proto (pip install 'opentelemetry-proto>=1.45,<1.46')\n")
    sys.exit(3)

PATH = "/v1development/profiles"
TABLES = [
    ("mapping_table", profiles_pb2.Mapping),
    ("location_table", profiles_pb2.Location),
    ("function_table", profiles_pb2.Function),
    ("link_table", profiles_pb2.Link),
    ("attribute_table", profiles_pb2.KeyValueAndUnit),
    ("stack_table", profiles_pb2.Stack),
]


def is_zero(message):
    """Every field at its default, an empty message counting as one: the collector (pdata) writes
    attribute_table[0] as KeyValueAndUnit{value: AnyValue{}} (bytes 12 00), which is the zero
    value in meaning though not byte for byte."""
    for field, value in message.ListFields():
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        if field.message_type is None or repeated or not is_zero(value):
            return False
    return True


class Checker:
    """Walks one request: resolves every reference and collects what breaks the rules."""

    def __init__(self, request):
        self.request = request
        self.dictionary = request.dictionary
        self.violations = []
        self.warnings = []
        self.used = {name: set() for name in ["string_table"] + [name for name, _ in TABLES]}

    # -- references -------------------------------------------------------------------------

    def _index(self, table_name, index, where, zero_ok):
        table = getattr(self.dictionary, table_name)
        if not 0 <= index < len(table):
            self.violations.append("%s: %s index %d out of range (%d entries)" % (where, table_name, index, len(table)))
            return None
        if index == 0 and not zero_ok:
            self.violations.append("%s: refers to %s[0], the zero entry" % (where, table_name))
            return None
        self.used[table_name].add(index)
        return table[index]

    def string(self, index, where):
        return self._index("string_table", index, where, zero_ok=True)

    def value(self, any_value, where):
        kind = any_value.WhichOneof("value")
        if kind is None:
            return None
        if kind == "string_value_strindex":
            return self.string(any_value.string_value_strindex, where + " value")
        if kind == "bytes_value":
            return any_value.bytes_value.hex()
        if kind == "array_value":
            return [self.value(item, where) for item in any_value.array_value.values]
        if kind == "kvlist_value":
            return self.key_values(any_value.kvlist_value.values, where)
        return getattr(any_value, kind)

    def key_values(self, key_values, where):
        """Resource, scope and kvlist attributes (common.v1.KeyValue)."""
        out = {}
        for position, key_value in enumerate(key_values):
            at = "%s[%d]" % (where, position)
            if key_value.key and key_value.key_strindex:
                self.violations.append("%s: both key and key_strindex are set" % at)
            key = key_value.key or (self.string(key_value.key_strindex, at + " key") if key_value.key_strindex else "")
            if not key:
                self.violations.append("%s: empty key" % at)
                continue
            if key in out:
                self.violations.append("%s: key %r repeated" % (at, key))
            if not key_value.HasField("value") or key_value.value.WhichOneof("value") is None:
                self.violations.append("%s: attribute %r has no value" % (at, key))
            out[key] = self.value(key_value.value, at)
        return out

    def attributes(self, indices, where):
        """attribute_indices into the dictionary's attribute_table, resolved to {key: value}."""
        out = {}
        for index in indices:
            entry = self._index("attribute_table", index, where + " attribute", zero_ok=False)
            if entry is None:
                continue
            key = self.string(entry.key_strindex, "%s attribute %d key" % (where, index))
            if not key:
                continue  # reported by the table check
            if key in out:
                self.violations.append("%s: attribute key %r appears twice in one attribute_indices list" % (where, key))
            out[key] = self.value(entry.value, "%s attribute %r" % (where, key))
        return out

    def value_type(self, value_type, where):
        kind = self.string(value_type.type_strindex, where + " type")
        unit = self.string(value_type.unit_strindex, where + " unit")
        if not kind and not unit:
            return None
        return "%s/%s" % (kind, unit)

    # -- the dictionary on its own ----------------------------------------------------------

    def check_tables(self):
        d = self.dictionary
        if not d.string_table:
            self.violations.append("dictionary.string_table is empty: string_table[0] must be \"\"")
        elif d.string_table[0] != "":
            self.violations.append("dictionary.string_table[0] is %r, not \"\"" % d.string_table[0])
        for name, message in TABLES:
            table = getattr(d, name)
            if not table:
                self.violations.append("dictionary.%s is empty: entry 0 must be present (the zero value)" % name)
            elif not is_zero(table[0]):
                self.violations.append("dictionary.%s[0] is not the zero value" % name)
        # Every entry's own references, used or not.
        for i, mapping in enumerate(d.mapping_table):
            self.string(mapping.filename_strindex, "mapping_table[%d] filename" % i)
            self.attributes(mapping.attribute_indices, "mapping_table[%d]" % i)
        for i, function in enumerate(d.function_table):
            for field in ("name_strindex", "system_name_strindex", "filename_strindex"):
                self.string(getattr(function, field), "function_table[%d] %s" % (i, field))
        for i, location in enumerate(d.location_table[1:], start=1):
            self._index("mapping_table", location.mapping_index, "location_table[%d]" % i, zero_ok=True)
            for j, line in enumerate(location.lines):
                self._index("function_table", line.function_index, "location_table[%d].lines[%d]" % (i, j), zero_ok=False)
            self.attributes(location.attribute_indices, "location_table[%d]" % i)
        for i, stack in enumerate(d.stack_table[1:], start=1):
            for index in stack.location_indices:
                self._index("location_table", index, "stack_table[%d]" % i, zero_ok=False)
        for i, entry in enumerate(d.attribute_table[1:], start=1):
            at = "attribute_table[%d]" % i
            key = self.string(entry.key_strindex, at + " key")
            if key == "":
                self.violations.append("%s: empty key" % at)
            if not entry.HasField("value") or entry.value.WhichOneof("value") is None:
                self.violations.append("%s: attribute %r has no value" % (at, key))
            self.value(entry.value, at)
            self.string(entry.unit_strindex, at + " unit")
        for i, link in enumerate(d.link_table[1:], start=1):
            if len(link.trace_id) != 16 or not any(link.trace_id):
                self.violations.append("link_table[%d]: trace_id is not 16 bytes, not all zero" % i)
            if len(link.span_id) != 8 or not any(link.span_id):
                self.violations.append("link_table[%d]: span_id is not 8 bytes, not all zero" % i)

    def summary(self):
        d = self.dictionary
        out = {}
        for name in ["string_table"] + [name for name, _ in TABLES]:
            table = getattr(d, name)
            keys = [entry if isinstance(entry, str) else entry.SerializeToString(deterministic=True) for entry in table]
            out[name] = {
                "entries": len(table),
                "duplicates": len(keys) - len(set(keys)),
                "unused": len(set(range(1, len(table))) - self.used[name]),
            }
        return out

    # -- frames and samples -----------------------------------------------------------------

    def frames(self, stack_index, where):
        # The 'where' texts match check_tables' so a broken entry is reported once (run() drops repeats).
        stack = self._index("stack_table", stack_index, where, zero_ok=True)
        if stack is None:
            return []
        frames = []
        for location_index in stack.location_indices:
            location = self._index("location_table", location_index, "stack_table[%d]" % stack_index, zero_ok=False)
            if location is None:
                continue
            at = "location_table[%d]" % location_index
            attributes = self.attributes(location.attribute_indices, at)
            mapping = None
            if location.mapping_index:
                entry = self._index("mapping_table", location.mapping_index, at, zero_ok=True)
                if entry is not None:
                    mapping = self.string(entry.filename_strindex, "mapping_table[%d] filename" % location.mapping_index)
            common = {
                "frame_type": attributes.get("profile.frame.type"),
                "address": location.address or None,
                "mapping": mapping,
            }
            if not location.lines:
                frames.append(dict(common, function=None, system_name=None, filename=None, line=0, column=0, start_line=0))
                continue
            for j, line in enumerate(location.lines):
                function = self._index("function_table", line.function_index, "%s.lines[%d]" % (at, j), zero_ok=False)
                if function is None:
                    continue
                named = "function_table[%d] " % line.function_index
                frames.append(dict(
                    common,
                    function=self.string(function.name_strindex, named + "name_strindex"),
                    system_name=self.string(function.system_name_strindex, named + "system_name_strindex"),
                    filename=self.string(function.filename_strindex, named + "filename_strindex"),
                    line=line.line,
                    column=line.column,
                    start_line=function.start_line,
                ))
        return frames

    def profile(self, resource, resource_schema_url, scope, profile, where):
        out = {
            "resource": resource,
            "resource_schema_url": resource_schema_url,
            "scope": scope,
            "sample_type": self.value_type(profile.sample_type, where + " sample_type"),
            "period_type": self.value_type(profile.period_type, where + " period_type"),
            "period": profile.period,
            "time_unix_nano": profile.time_unix_nano,
            "duration_nano": profile.duration_nano,
            "profile_id": profile.profile_id.hex() or None,
            "attributes": self.attributes(profile.attribute_indices, where),
            "dropped_attributes_count": profile.dropped_attributes_count,
            "original_payload_format": profile.original_payload_format or None,
            "original_payload_bytes": len(profile.original_payload),
        }
        if profile.profile_id and (len(profile.profile_id) != 16 or not any(profile.profile_id)):
            self.violations.append("%s: profile_id is not 16 bytes, not all zero" % where)
        if bool(profile.original_payload_format) != bool(profile.original_payload):
            self.violations.append("%s: original_payload_format and original_payload must be set together" % where)
        if out["sample_type"] is None:
            self.warnings.append("%s: no sample_type" % where)
        start, end = profile.time_unix_nano, profile.time_unix_nano + profile.duration_nano
        samples = []
        identities = set()
        shapes = set()
        for position, sample in enumerate(profile.samples):
            at = "%s samples[%d]" % (where, position)
            if sample.stack_index == 0:
                self.warnings.append("%s: stack_index 0 (the empty stack)" % at)
            frames = self.frames(sample.stack_index, at)
            attributes = self.attributes(sample.attribute_indices, at)
            link = None
            if sample.link_index:
                entry = self._index("link_table", sample.link_index, at, zero_ok=False)
                if entry is not None:
                    link = {"trace_id": entry.trace_id.hex(), "span_id": entry.span_id.hex()}
            values = list(sample.values)
            timestamps = list(sample.timestamps_unix_nano)
            if not values and not timestamps:
                self.violations.append("%s: neither values nor timestamps" % at)
            if values and timestamps and len(values) != len(timestamps):
                self.violations.append("%s: %d values but %d timestamps" % (at, len(values), len(timestamps)))
            outside = [t for t in timestamps if not start <= t < max(end, start + 1)]
            if outside:
                self.warnings.append("%s: %d timestamps outside the profile's time range" % (at, len(outside)))
            identity = (sample.stack_index, frozenset(sample.attribute_indices), sample.link_index)
            if identity in identities:
                self.warnings.append("%s: repeats the identity (stack, attributes, link) of an earlier sample" % at)
            identities.add(identity)
            shapes.add((bool(values), bool(timestamps)))
            samples.append({
                "frames": frames,
                "stack": ";".join(str(frame["function"]) for frame in reversed(frames)),
                "values": values,
                "timestamps_unix_nano": timestamps,
                "attributes": attributes,
                "link": link,
            })
        if len(shapes) > 1:
            self.warnings.append("%s: samples of mixed shapes (values/timestamps)" % where)
        out["samples"] = samples
        return out

    def run(self):
        if not self.request.resource_profiles:
            self.warnings.append("the request holds no profiles")
        if not self.request.HasField("dictionary"):
            if self.request.resource_profiles:
                self.violations.append("the request has profiles but no dictionary")
        else:
            self.check_tables()
        profiles = []
        for r, resource_profiles in enumerate(self.request.resource_profiles):
            resource = self.key_values(resource_profiles.resource.attributes, "resource_profiles[%d].resource" % r)
            for s, scope_profiles in enumerate(resource_profiles.scope_profiles):
                where = "resource_profiles[%d].scope_profiles[%d]" % (r, s)
                scope = {
                    "name": scope_profiles.scope.name,
                    "version": scope_profiles.scope.version,
                    "attributes": self.key_values(scope_profiles.scope.attributes, where + ".scope"),
                }
                for p, profile in enumerate(scope_profiles.profiles):
                    profiles.append(self.profile(
                        resource, resource_profiles.schema_url, scope, profile, "%s.profiles[%d]" % (where, p)))
        return {
            "profiles": profiles,
            "violations": list(dict.fromkeys(self.violations)),
            "warnings": list(dict.fromkeys(self.warnings)),
            "dictionary": self.summary(),
        }


def handle(method, path, headers, body):
    if path != PATH:
        return upload_server.Answer(404, body=b"404 page not found", error="unknown path %s" % path)
    if method != "POST":
        return upload_server.Answer(405, body=b"405 method not allowed", error="method %s" % method)
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    request = profiles_service_pb2.ExportProfilesServiceRequest()
    try:
        if content_type == "application/x-protobuf":
            request.ParseFromString(body)
        elif content_type == "application/json":
            json_format.Parse(body.decode("utf-8"), request)
        else:
            return upload_server.Answer(415, body=b"415 unsupported media type",
                                        record={"content_type": content_type},
                                        error="unsupported Content-Type %r" % content_type)
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as error:
        return upload_server.Answer(400, "application/x-protobuf", upload_server.rpc_status(3, str(error)),
                                    record={"content_type": content_type}, error="undecodable request: %s" % error)
    record = Checker(request).run()
    record["content_type"] = content_type
    response = profiles_service_pb2.ExportProfilesServiceResponse()
    if content_type == "application/json":
        return upload_server.Answer(200, "application/json", b"{}", record=record)
    return upload_server.Answer(200, "application/x-protobuf", response.SerializeToString(), record=record)


# google.rpc.Code for the forced failures.
RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}


def failure(status, message):
    return upload_server.Answer(status, "application/x-protobuf", upload_server.rpc_status(RPC_CODES.get(status, 2), message))


def decode_body(body, args):
    """--decode: the record of one protobuf request body (content_type application/x-protobuf)."""
    request = profiles_service_pb2.ExportProfilesServiceRequest()
    request.ParseFromString(body)
    record = Checker(request).run()
    record["content_type"] = "application/x-protobuf"
    return record


def main():
    if "--decode" in sys.argv[1:]:
        sys.exit(upload_server.decode_command("OTLP/HTTP profiles test sink", decode_body))
    args = upload_server.arguments("OTLP/HTTP profiles test sink").parse_args()
    upload_server.serve(args, handle, failure)


if __name__ == "__main__":
    main()
