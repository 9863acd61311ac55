//===--- OTLPEncoding.swift - OTLP/HTTP profiles (opentelemetry-proto 1.10.0) -===//
//
// `POST /v1development/profiles`, `Content-Type: application/x-protobuf`: an
// `ExportProfilesServiceRequest` of OpenTelemetry's profiles signal as opentelemetry-proto 1.10.0
// defines it (Protos/otlp restates the messages used, field numbers checked against 1.10.0):
//
// - one ResourceProfiles per process, in the order given, its resource attributes
//   `service.name`, `process.pid` (int), `host.name`, `process.runtime.name` = `cpython`,
//   `process.runtime.version`, `container.id` (when known), then the `--label`s as string
//   attributes under their own keys (dots kept; a key a derived attribute has, or an earlier
//   `--label` has, is left out); an empty service name is sent as `unknown_service`, the
//   OpenTelemetry SDKs' fallback, and an empty host name or version is left out;
// - in it one ScopeProfiles (scope `spyglass`, version Spyglass's) with one Profile: sample type
//   and period type `cpu/nanoseconds`, period 1e9/rate, time_unix_nano the interval's start,
//   duration_nano its length, a random 16-byte profile_id (never all zero);
// - one Sample per (thread, stack): its stack_index, one value (the stack's weight in
//   nanoseconds) and the attributes `thread.id` (int: the OS thread id, or when that is unknown
//   the pthread id's 64 bits as a signed integer, so that threads stay apart) and `thread.name`
//   (when known).
//
// The request's one ProfilesDictionary holds what every profile points into, each entry once and
// only what is used (values are interned): entry 0 of every table, link_table included, is present
// and the zero value (string_table[0] == ""), and no reference meant as a real entry is 0.
// A Stack is its location indices leaf first. A Location has one Line (function, line; 0 with line
// numbers off), the attribute `profile.frame.type` (`cpython` for Python frames, `native` for
// native ones: the semantic conventions' values) and, for a native frame, a Mapping per library
// whose filename is the library's path (no addresses: Spyglass symbolises native frames itself).
// A Function is (name, file, first line) as in the `pprof` file: full file names, no system
// name. Attribute values are plain strings and ints, not string-table indices.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassOutput
import SpyglassProfile
import SwiftProtobuf

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

/// A resource or dictionary attribute's value, as Spyglass sends them.
package enum AttributeValue: Hashable, Sendable {
  case string(String)
  case int(Int64)
}

extension UploadEncoding {
  /// OTLP/HTTP's path for profiles under the destination's URL.
  package static let otlpPath = "/v1development/profiles"

  /// A process's resource attributes, in the order they are sent (see the file's header).
  package static func otlpResourceAttributes(_ process: ProcessIdentity) -> [(key: String, value: AttributeValue)] {
    var derived: [(key: String, value: AttributeValue)] = [
      ("service.name", .string(process.serviceName.isEmpty ? "unknown_service" : process.serviceName)),
      ("process.pid", .int(Int64(process.pid))),
    ]
    if !process.hostName.isEmpty { derived.append(("host.name", .string(process.hostName))) }
    derived.append(("process.runtime.name", .string("cpython")))
    if !process.runtimeVersion.isEmpty {
      derived.append(("process.runtime.version", .string(process.runtimeVersion)))
    }
    if let container = process.containerID, !container.isEmpty {
      derived.append(("container.id", .string(container)))
    }
    let reserved: Set = [
      "service.name", "process.pid", "host.name", "process.runtime.name", "process.runtime.version", "container.id",
    ]
    let user = userLabels(process.labels, excluding: reserved) { $0 }
    return derived + user.map { ($0.key, .string($0.value)) }
  }

  static func otlpRequest(
    _ profiles: [IntervalProfile], options: WriterOptions, random: inout some RandomNumberGenerator
  ) throws(SpyglassError) -> EncodedRequest {
    var dictionary = OTLPDictionaryBuilder()
    var request = OTLPExportProfilesServiceRequest()
    for interval in profiles {
      var resource = OTLPResourceProfiles()
      resource.resource.attributes = otlpResourceAttributes(interval.process).map { key, value in
        var attribute = OTLPKeyValue()
        attribute.key = key
        attribute.value = OTLPAnyValue(value)
        return attribute
      }
      var scope = OTLPScopeProfiles()
      scope.scope.name = "spyglass"
      scope.scope.version = options.version
      scope.profiles = [otlpProfile(interval.profile, options: options, dictionary: &dictionary, random: &random)]
      resource.scopeProfiles = [scope]
      request.resourceProfiles.append(resource)
    }
    request.dictionary = try dictionary.message()
    let body: [UInt8]
    do {
      body = try request.serializedBytes()
    } catch {
      throw .renderFailed(format: UploadFormat.otlp.rawValue, reason: "cannot encode the export request: \(error)")
    }
    return EncodedRequest(
      path: otlpPath, contentType: "application/x-protobuf", body: body, profileCount: profiles.count)
  }

  /// One process's profile, its frames, stacks and attributes added to `dictionary`.
  static func otlpProfile(
    _ profile: Profile, options: WriterOptions, dictionary: inout OTLPDictionaryBuilder,
    random: inout some RandomNumberGenerator
  ) -> OTLPProfile {
    var result = OTLPProfile()
    result.sampleType = dictionary.valueType("cpu", "nanoseconds")
    result.periodType = dictionary.valueType("cpu", "nanoseconds")
    result.period = profile.info.periodNanoseconds ?? 0
    result.timeUnixNano = profile.info.startUnixNanoseconds
    result.durationNano = UInt64(profile.info.durationNanoseconds ?? 0)
    var id = randomBytes(16, &random)
    if id.allSatisfy({ $0 == 0 }) { id[15] = 1 }
    result.profileID = Data(id)

    // Each frame's location, made the first time a sample uses it (so a frame no sample has puts
    // nothing in the dictionary); synthetic frames have none.
    var locationOfFrame: [FrameID: Int32?] = [:]
    func location(_ id: FrameID) -> Int32? {
      if let known = locationOfFrame[id] { return known }
      let frame = profile.frames[Int(id)]
      let frameType: String
      var mapping: Int32 = 0
      switch frame.kind {
      case .synthetic:
        locationOfFrame[id] = .some(nil)
        return nil
      case .python: frameType = "cpython"
      case .native:
        frameType = "native"
        if let library = frame.module { mapping = dictionary.mapping(file: library) }
      }
      let shown = frame.shown(options)
      let function = dictionary.function(name: shown.name, file: shown.filename, startLine: shown.firstLine)
      let index = dictionary.location(
        mapping: mapping, function: function, line: shown.line,
        attribute: dictionary.attribute("profile.frame.type", .string(frameType)))
      locationOfFrame[id] = index
      return index
    }

    // Samples per thread, in thread then stack id order; stacks of one thread that are the same
    // once synthetic frames are gone (or lines are off) are one sample.
    let byThread = profile.totalsByThread()
    var weights: [UInt64] = []
    for thread in byThread.keys.sorted() {
      let info = profile.threads[Int(thread)]
      // Made with the thread's first sample, so a thread left without one adds nothing.
      var threadAttributes: [Int32]?
      func attributes() -> [Int32] {
        if let threadAttributes { return threadAttributes }
        let id = info.osThreadID.map(Int64.init) ?? Int64(bitPattern: info.threadID)
        var made = [dictionary.attribute("thread.id", .int(id))]
        if let name = info.name, !name.isEmpty { made.append(dictionary.attribute("thread.name", .string(name))) }
        threadAttributes = made
        return made
      }
      var sampleOfStack: [Int32: Int] = [:]
      for entry in byThread[thread] ?? [] {
        let locations = profile.stacks[Int(entry.stack)].reversed().compactMap(location)
        if locations.isEmpty { continue }
        let stack = dictionary.stack(locations)
        if let index = sampleOfStack[stack] {
          weights[index] &+= entry.total.weightNanoseconds
        } else {
          sampleOfStack[stack] = result.samples.count
          var sample = OTLPSample()
          sample.stackIndex = stack
          sample.attributeIndices = attributes()
          result.samples.append(sample)
          weights.append(entry.total.weightNanoseconds)
        }
      }
    }
    for index in result.samples.indices { result.samples[index].values = [Int64(clamping: weights[index])] }
    return result
  }
}

extension OTLPAnyValue {
  init(_ value: AttributeValue) {
    self.init()
    switch value {
    case .string(let text): stringValue = text
    case .int(let number): intValue = number
    }
  }
}

/// The request's one ProfilesDictionary, built as the profiles are: every entry interned (the same
/// value has one index), each table starting with its zero value at index 0.
struct OTLPDictionaryBuilder {
  private struct FunctionKey: Hashable {
    var name: Int32
    var filename: Int32
    var startLine: Int
  }
  private struct LocationKey: Hashable {
    var mapping: Int32
    var function: Int32
    var line: Int
    var attribute: Int32
  }
  private struct AttributeKey: Hashable {
    var key: Int32
    var value: AttributeValue
  }

  private var strings = Interner<String>()
  // Real entries only; their index in the table is their id plus one (entry 0 is the zero value).
  private var mappings = Interner<Int32>()
  private var functions = Interner<FunctionKey>()
  private var locations = Interner<LocationKey>()
  private var stacks = Interner<[Int32]>()
  private var attributes = Interner<AttributeKey>()

  init() { _ = strings.intern("") }

  /// The string's index ("" is 0).
  mutating func string(_ text: String) -> Int32 { Int32(truncatingIfNeeded: strings.intern(text)) }

  private static func entry(_ id: UInt32) -> Int32 { Int32(truncatingIfNeeded: Int64(id) + 1) }

  mutating func valueType(_ type: String, _ unit: String) -> OTLPValueType {
    var value = OTLPValueType()
    value.typeStrindex = string(type)
    value.unitStrindex = string(unit)
    return value
  }

  /// The mapping of the binary at `file`.
  mutating func mapping(file: String) -> Int32 { Self.entry(mappings.intern(string(file))) }

  mutating func function(name: String, file: String, startLine: Int) -> Int32 {
    Self.entry(functions.intern(FunctionKey(name: string(name), filename: string(file), startLine: startLine)))
  }

  mutating func location(mapping: Int32, function: Int32, line: Int, attribute: Int32) -> Int32 {
    Self.entry(locations.intern(LocationKey(mapping: mapping, function: function, line: line, attribute: attribute)))
  }

  /// The stack of `locations`, leaf first.
  mutating func stack(_ locations: [Int32]) -> Int32 { Self.entry(stacks.intern(locations)) }

  mutating func attribute(_ key: String, _ value: AttributeValue) -> Int32 {
    Self.entry(attributes.intern(AttributeKey(key: string(key), value: value)))
  }

  /// The dictionary message; fails if a table outgrew an int32 index.
  func message() throws(SpyglassError) -> OTLPProfilesDictionary {
    let largest =
      [strings.count, mappings.count, functions.count, locations.count, stacks.count, attributes.count]
      .max() ?? 0
    guard largest < Int(Int32.max) else {
      throw .renderFailed(format: UploadFormat.otlp.rawValue, reason: "more than 2^31 - 1 entries in one table")
    }
    var result = OTLPProfilesDictionary()
    result.stringTable = strings.values
    result.mappingTable = [OTLPMapping()]
    for file in mappings.values {
      var mapping = OTLPMapping()
      mapping.filenameStrindex = file
      result.mappingTable.append(mapping)
    }
    result.functionTable = [OTLPFunction()]
    for key in functions.values {
      var function = OTLPFunction()
      function.nameStrindex = key.name
      function.filenameStrindex = key.filename
      function.startLine = Int64(key.startLine)
      result.functionTable.append(function)
    }
    result.locationTable = [OTLPLocation()]
    for key in locations.values {
      var line = OTLPLine()
      line.functionIndex = key.function
      line.line = Int64(key.line)
      var location = OTLPLocation()
      location.mappingIndex = key.mapping
      location.lines = [line]
      location.attributeIndices = [key.attribute]
      result.locationTable.append(location)
    }
    result.stackTable = [OTLPStack()]
    for locations in stacks.values {
      var stack = OTLPStack()
      stack.locationIndices = locations
      result.stackTable.append(stack)
    }
    result.attributeTable = [OTLPKeyValueAndUnit()]
    for key in attributes.values {
      var attribute = OTLPKeyValueAndUnit()
      attribute.keyStrindex = key.key
      switch key.value {
      case .string(let text): attribute.value.stringValue = text
      case .int(let number): attribute.value.intValue = number
      }
      result.attributeTable.append(attribute)
    }
    result.linkTable = [OTLPLink()]
    return result
  }
}
