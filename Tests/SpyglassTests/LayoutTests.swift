//===--- LayoutTests.swift - SpyglassLayouts ------------------------------===//
//
// Version parsing, the generated offset tables, the per-version traits (checked against the
// constants measured from the headers), and _Py_DebugOffsets: on synthetic bytes and on the bytes of
// a live CPython 3.13 process. Also runs `tools/generate-layouts.py --check`.
//
//===----------------------------------------------------------------------===//

import Foundation
import SpyglassLayouts
import SpyglassProcess
import SpyglassStacks
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

@Suite("Layout")
struct LayoutTests {
  // .. PythonVersion.scan ..............................................................

  @Test(
    "scan finds versions",
    arguments: [
      ("2.7.10 (default, Oct  6 2017, 22:29:07)", "2.7.10"),
      ("3.6.3 |Anaconda custom (64-bit)| (default, Oct  6 2017, 22:29:07)", "3.6.3"),
      ("Python 3.7.0rc1 (v3.7.0rc1:dfad352267, Jul 20 2018, 13:27:54)", "3.7.0rc1"),
      ("Python 3.10.0rc1 (tags/v3.10.0rc1, Aug 28 2021, 18:25:40)", "3.10.0rc1"),
      ("2.7.15+ (default, Oct  6 2017, 22:29:07)", "2.7.15+"),
      ("2.7.10+dcba (default)", "2.7.10+dcba"),
      ("2.7.10+5-4.abcd (default)", "2.7.10+5-4.abcd"),
      ("2.8.5+cinder (default)", "2.8.5+cinder"),
      ("\0\0garbage 3.13.0 (main, Oct  7 2024, 05:02:14) [GCC 11.4.0]", "3.13.0"),
    ])
  func scanFinds(text: String, expected: String) throws {
    let version = try #require(PythonVersion.scan(Array(text.utf8)))
    #expect(version.description == expected)
  }

  @Test func scanFields() throws {
    let rc = try #require(
      PythonVersion.scan(
        Array("Python 3.7.0rc1 (v3.7.0rc1:dfad352267, Jul 20 2018, 13:27:54)".utf8)))
    #expect(rc == PythonVersion(major: 3, minor: 7, micro: 0, releaseLevel: "rc1"))
    let ten = try #require(
      PythonVersion.scan(Array("Python 3.10.0rc1 (tags/v3.10.0rc1, Aug 28 2021, 18:25:40)".utf8)))
    #expect((ten.major, ten.minor, ten.micro, ten.releaseLevel) == (3, 10, 0, "rc1"))
    #expect(
      PythonVersion.scan(Array("2.7.10 (default, Oct  6 2017, 22:29:07)".utf8))?.buildMetadata
        == nil)
    #expect(
      PythonVersion.scan(Array("2.7.15+ (default, Oct  6 2017, 22:29:07)".utf8))?.buildMetadata
        == "")
    #expect(PythonVersion.scan(Array("2.7.10+dcba (default)".utf8))?.buildMetadata == "dcba")
    #expect(
      PythonVersion.scan(Array("2.7.10+5-4.abcd (default)".utf8))?.buildMetadata == "5-4.abcd")
    let cinder = try #require(PythonVersion.scan(Array("2.8.5+cinder (default)".utf8)))
    #expect((cinder.major, cinder.minor, cinder.micro, cinder.buildMetadata) == (2, 8, 5, "cinder"))
  }

  @Test(
    "scan rejects non-versions",
    arguments: [
      "1.7.0rc1 (v1.7.0rc1:dfad352267, Jul 20 2018, 13:27:54)",
      "3.7 10 ",
      "3.7.10fooboo ",
      "3.7.10",  // no space and text after it
      "3.7.10 ",  // a space but nothing after it
      "3.7.10 \n",  // '.' does not match a newline
      "3.7.100 (x)",  // at most two micro digits
      "3.2.1 (x)",  // minor 3 to 14 only
      "3.15.1 (x)",
      "3.7.1rc (x)",  // a tag needs a serial
      "3.7.1+Cinder (x)",  // metadata is lower case
      "3.7.1+abc. (x)",  // a '.' must be followed by more metadata
      "",
    ])
  func scanRejects(text: String) {
    #expect(PythonVersion.scan(Array(text.utf8)) == nil)
  }

  @Test func scanDetails() {
    // No word boundary: "13.7.1 x" contains "3.7.1 x".
    #expect(PythonVersion.scan(Array("13.7.1 x".utf8))?.description == "3.7.1")
    // 'c' is a tag of its own, kept as written; it orders like "rc".
    let c = PythonVersion.scan(Array("3.7.1c2 x".utf8))
    #expect(c?.releaseLevel == "c2")
    // The first match wins, even when a later one is "better".
    #expect(PythonVersion.scan(Array("3.6.9 (a) 3.13.0 (b)".utf8))?.description == "3.6.9")
    // A failed candidate does not stop the scan.
    #expect(PythonVersion.scan(Array("3.7.10fooboo 3.8.1 (x)".utf8))?.description == "3.8.1")
    // '.' matches one well-formed UTF-8 character, not a stray byte.
    #expect(PythonVersion.scan(Array("3.7.1 ".utf8) + [0xFF]) == nil)
    #expect(PythonVersion.scan(Array("3.7.1 é".utf8))?.description == "3.7.1")
  }

  // .. PY_VERSION_HEX ..................................................................

  @Test func hexDecoding() throws {
    #expect(PythonVersion(hex: 0x030D_00F0) == PythonVersion(major: 3, minor: 13, micro: 0))
    #expect(PythonVersion(hex: UInt32(0x0207_12F0)) == PythonVersion(major: 2, minor: 7, micro: 18))
    #expect(PythonVersion(hex: UInt32(0x0307_00C1))?.description == "3.7.0rc1")
    #expect(PythonVersion(hex: UInt32(0x030B_00A3))?.description == "3.11.0a3")
    #expect(PythonVersion(hex: UInt32(0x030C_00B2))?.description == "3.12.0b2")
    // Implausible: an unknown level nibble, major 1 or 4, minor above 20.
    #expect(PythonVersion(hex: UInt32(0x030D_0000)) == nil)
    #expect(PythonVersion(hex: UInt32(0x010D_00F0)) == nil)
    #expect(PythonVersion(hex: UInt32(0x0400_00F0)) == nil)
    #expect(PythonVersion(hex: UInt32(0x0315_00F0)) == nil)
    // Round trip.
    for hex: UInt32 in [0x030D_00F0, 0x0307_00C1, 0x030B_00A3, 0x0207_12F0, 0x030A_0DF0] {
      #expect(PythonVersion(hex: hex)?.hex == hex)
    }
  }

  @Test func ordering() {
    let ordered = [
      "3.7.0a1", "3.7.0a2", "3.7.0b1", "3.7.0rc1", "3.7.0", "3.7.1", "3.10.0", "3.13.0",
    ]
    .map { PythonVersion.scan(Array("\($0) x".utf8))! }
    for (a, b) in zip(ordered, ordered.dropFirst()) { #expect(a < b, "\(a) < \(b)") }
    #expect(
      PythonVersion(major: 2, minor: 7, micro: 18) < PythonVersion(major: 3, minor: 6, micro: 0))
    let plain = PythonVersion(major: 2, minor: 7, micro: 15)
    let plus = PythonVersion(major: 2, minor: 7, micro: 15, buildMetadata: "")
    #expect(plain < plus && !(plus < plain) && plain != plus)
  }

  // .. generated tables ................................................................

  static let versions: [(Int, Int)] = PythonTraits.supportedVersions.map { ($0.major, $0.minor) }

  @Test func supportedVersionsAreOneList() {
    #expect(
      Self.versions.map { "\($0.0).\($0.1)" } == [
        "2.7", "3.6", "3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15",
      ])
    #expect(PythonTraits.supportedVersionsDescription == "2.7 and 3.6 to 3.15")
    #expect(PythonTraits.newestSupported == PythonVersion(major: 3, minor: 15, micro: 255))
  }

  @Test func everySupportedVersionHasTables() {
    for (major, minor) in Self.versions {
      #expect(PythonLayout.generated(major: major, minor: minor) != nil, "\(major).\(minor)")
      #expect(HeaderConstants.generated(major: major, minor: minor) != nil, "\(major).\(minor)")
      #expect(PythonTraits(major: major, minor: minor) != nil, "\(major).\(minor)")
    }
    for (major, minor) in [(2, 6), (3, 5), (3, 16), (2, 8), (4, 0)] {
      #expect(PythonLayout.generated(major: major, minor: minor) == nil)
      #expect(PythonTraits(major: major, minor: minor) == nil)
    }
    #expect(
      PythonTraits.layout(for: PythonVersion(major: 3, minor: 12, micro: 1)) == PythonLayout.v3_12)
    #expect(PythonTraits.layout(for: PythonVersion(major: 3, minor: 16, micro: 0)) == nil)
    #expect(DebugOffsetsTable.generated(major: 3, minor: 13) == DebugOffsetsTable.v3_13)
    #expect(DebugOffsetsTable.generated(major: 3, minor: 14) == DebugOffsetsTable.v3_14)
    #expect(DebugOffsetsTable.generated(major: 3, minor: 15) == DebugOffsetsTable.v3_15)
    #expect(DebugOffsetsTable.generated(major: 3, minor: 12) == nil)
  }

  /// Values measured with gdb on these exact builds, independently of the generator.
  @Test func generatedTablesMatchGdbMeasurements() {
    let layouts: [String: PythonLayout] = [
      "2.7": .v2_7, "3.6": .v3_6, "3.7": .v3_7, "3.8": .v3_8, "3.9": .v3_9, "3.10": .v3_10,
      "3.11": .v3_11, "3.12": .v3_12, "3.13": .v3_13,
    ]
    func check(
      _ field: KeyPath<PythonLayout, Int?>, _ expected: [String: Int?],
      sourceLocation: SourceLocation = #_sourceLocation
    ) {
      for (version, value) in expected {
        #expect(
          layouts[version]![keyPath: field] == value, "\(field) \(version)",
          sourceLocation: sourceLocation)
      }
    }
    check(
      \.tstateThreadID,
      [
        "2.7": 144, "3.6": 152, "3.7": 176, "3.8": 176, "3.9": 176, "3.10": 176, "3.11": 152,
        "3.12": 136, "3.13": 152,
      ])
    check(\.tstateNativeThreadID, ["3.11": 160, "3.12": 144, "3.13": 160, "3.10": nil])
    check(\.tstateFrame, ["2.7": 16, "3.6": 24, "3.10": 24, "3.11": 56, "3.12": 56, "3.13": 72])
    check(\.cframeCurrentFrame, ["3.11": 8, "3.12": 0, "3.13": nil])
    check(\.frameBack, ["2.7": 24, "3.10": 24, "3.11": nil])
    check(\.frameCode, ["2.7": 32, "3.10": 32])
    check(\.frameLasti, ["2.7": 120, "3.6": 120, "3.7": 104, "3.9": 104, "3.10": 96])
    check(\.iframeCode, ["3.11": 32, "3.12": 0, "3.13": 0])
    check(\.iframePrevious, ["3.11": 48, "3.12": 8, "3.13": 8])
    check(\.iframeInstrPtr, ["3.11": 56, "3.12": 56, "3.13": 56])
    check(\.iframeIsEntry, ["3.11": 68, "3.12": nil])
    check(\.iframeOwner, ["3.11": 69, "3.12": 70, "3.13": 70])
    check(\.iframeLocalsplus, ["3.13": 72])
    check(\.iframeSize, ["3.13": 80])
    check(
      \.codeFilename,
      ["2.7": 80, "3.6": 96, "3.7": 96, "3.8": 104, "3.10": 104, "3.11": 112, "3.13": 112])
    check(
      \.codeName,
      ["2.7": 88, "3.6": 104, "3.7": 104, "3.8": 112, "3.10": 112, "3.11": 120, "3.13": 120])
    check(\.codeQualname, ["3.11": 128, "3.12": 128, "3.13": 128, "3.10": nil])
    check(\.codeLinetable, ["3.11": 136, "3.12": 136, "3.13": 136])
    check(\.codeCodeAdaptive, ["3.11": 184, "3.12": 192, "3.13": 200])
    check(
      \.codeFirstlineno,
      ["2.7": 96, "3.6": 36, "3.7": 36, "3.8": 40, "3.10": 40, "3.11": 72, "3.12": 68, "3.13": 68])
    check(\.interpThreadsHead, ["2.7": 8, "3.10": 8, "3.11": 16, "3.12": 72, "3.13": 7344])
    check(
      \.interpModules,
      [
        "2.7": 16, "3.6": 16, "3.7": 40, "3.8": 56, "3.9": 856, "3.10": 856, "3.11": 888,
        "3.12": 944, "3.13": 7656,
      ])
    check(\.interpCevalGil, ["3.12": 384, "3.13": 16, "3.11": nil])
    check(
      \.runtimeInterpretersHead,
      ["3.7": 24, "3.8": 32, "3.10": 32, "3.11": 40, "3.12": 40, "3.13": 632, "3.6": nil])
    check(
      \.runtimeTstateCurrent,
      ["3.7": 1480, "3.8": 1368, "3.9": 568, "3.10": 568, "3.11": 576, "3.12": nil])
    check(\.gilLastHolder, ["3.7": 8, "3.13": 8])
    check(\.gilLocked, ["3.7": 16, "3.13": 16])
    check(\.asciiObjectSize, ["3.6": 48, "3.11": 48, "3.12": 40, "3.13": 40])
    check(\.compactUnicodeObjectSize, ["3.6": 72, "3.11": 72, "3.12": 56, "3.13": 56])
    check(\.unicodeLength, ["3.6": 16, "3.13": 16])
    check(\.unicodeState, ["3.6": 32, "3.13": 32])
    check(\.bytesData, ["2.7": 36, "3.6": 32, "3.13": 32])
  }

  // .. traits ..........................................................................

  @Test func traitsAgreeWithHeaderConstants() throws {
    for (major, minor) in Self.versions {
      let traits = try #require(PythonTraits(major: major, minor: minor))
      let constants = try #require(HeaderConstants.generated(major: major, minor: minor))
      let name = "\(major).\(minor)"
      #expect(traits.layout == PythonLayout.generated(major: major, minor: minor))
      #expect(constants.longShift == traits.longDigitBits, "\(name)")
      if let unit = constants.codeUnitSize { #expect(unit == traits.codeUnitSize, "\(name)") }
      let shims = [constants.frameOwnedByInterpreter, constants.frameOwnedByCStack].compactMap { $0 }
      #expect(
        Set(shims.map { UInt8($0) }) == Set(traits.shimFrameOwners) && traits.shimFrameOwners.count == shims.count,
        "\(name)")
      #expect(constants.frameOwnedByGenerator.map { UInt8($0) } == traits.generatorFrameOwner, "\(name)")
      #expect(constants.stackRefTagBits.map { UInt64($0) } == traits.stackRef?.tagBits, "\(name)")
      #expect(constants.stackRefIntTag.map { UInt64($0) } == traits.stackRef?.intTag, "\(name)")
      #expect(traits.hasDebugOffsets == (DebugOffsetsTable.generated(major: major, minor: minor) != nil), "\(name)")
      #expect(traits.dictModel == (traits.layout.dict27Table != nil ? .table27 : .compact), "\(name)")
      #expect((traits.stringModel == .bytes27) == (constants.pyUnicodeSize != nil), "\(name)")
      #expect(traits.hasIsEntry == (traits.layout.iframeIsEntry != nil), "\(name)")
      let suspendedStates = [
        constants.frameStateSuspended, constants.frameStateSuspendedYieldFrom,
        constants.frameStateSuspendedYieldFromLocked,
      ].compactMap { $0 }.map { Int8($0) }
      #expect((traits.coroutineStates?.suspended ?? []) == suspendedStates, "\(name)")
      #expect(traits.coroutineStates?.executing == constants.frameStateExecuting.map { Int8($0) }, "\(name)")
      switch traits.coroutineStates?.awaiting {
      case .states(let states):
        #expect(states == [constants.frameStateSuspendedYieldFrom].compactMap { $0 }.map { Int8($0) }, "\(name)")
        #expect(constants.opcodeResume == nil, "\(name)")
      case .resumeOpcodes(let opcodes):
        #expect(
          opcodes
            == [constants.opcodeResume, constants.opcodeResumeQuick, constants.opcodeInstrumentedResume].compactMap {
              $0
            }.map { UInt8($0) },
          "\(name)")
        #expect(suspendedStates.count == 1, "\(name)")
      case nil:
        #expect(constants.frameStateSuspended == nil, "\(name)")
      }
      #expect((traits.taskRegistry != nil) == (traits.layout.taskCoro != nil), "\(name)")
      #expect((traits.taskRegistry == .threadLists) == (traits.layout.tstateAsyncioTasksHead != nil), "\(name)")

      let flags = traits.typeFlags
      #expect(constants.tpflagsIntSubclass.map { UInt64($0) } == flags.intSubclass, "\(name)")
      #expect(constants.tpflagsLongSubclass.map { UInt64($0) } == flags.longSubclass, "\(name)")
      #expect(constants.tpflagsListSubclass.map { UInt64($0) } == flags.listSubclass, "\(name)")
      #expect(constants.tpflagsTupleSubclass.map { UInt64($0) } == flags.tupleSubclass, "\(name)")
      #expect(constants.tpflagsBytesSubclass.map { UInt64($0) } == flags.bytesSubclass, "\(name)")
      #expect(
        constants.tpflagsUnicodeSubclass.map { UInt64($0) } == flags.unicodeSubclass, "\(name)")
      #expect(constants.tpflagsDictSubclass.map { UInt64($0) } == flags.dictSubclass, "\(name)")
      #expect(constants.tpflagsManagedDict.map { UInt64($0) } == flags.managedDict, "\(name)")
      #expect(constants.tpflagsInlineValues.map { UInt64($0) } == flags.inlineValues, "\(name)")

      switch traits.managedDict {
      case .none:
        #expect(constants.managedDictOffset == nil, "\(name)")
      case .valuesAndDictPointers(let values, let dict):
        #expect(
          constants.managedValuesOffset == values && constants.managedDictOffset == dict, "\(name)")
      case .taggedDictOrValues(let offset):
        #expect(
          constants.managedDictOffset == offset && constants.managedValuesOffset == nil, "\(name)")
      case .dictPointerAndInlineValues(let dict):
        // Values at tp_basicsize: 3.13 requires that to be sizeof(PyObject), 3.14+ does not.
        #expect(
          constants.managedDictOffset == dict
            && (constants.inlineValuesOffset == 16 || constants.inlineValuesAfterBasicSize == 1), "\(name)")
      }

      if let state = traits.unicodeState {
        #expect(constants.unicodeStateInternedShift == state.internedShift, "\(name)")
        #expect(
          constants.unicodeStateInternedMask == Int(state.internedMask) << state.internedShift,
          "\(name)")
        #expect(constants.unicodeStateKindShift == state.kindShift, "\(name)")
        #expect(constants.unicodeStateKindMask == Int(state.kindMask) << state.kindShift, "\(name)")
        #expect(constants.unicodeStateCompactShift == state.compactShift, "\(name)")
        #expect(constants.unicodeStateAsciiShift == state.asciiShift, "\(name)")
      } else {
        #expect(constants.unicodeStateKindShift == nil, "\(name)")
      }
      #expect(constants.pyUnicodeSize == traits.unicode27UnitSize, "\(name)")
    }
  }

  @Test func traitsPerVersion() throws {
    func traits(_ major: Int, _ minor: Int) throws -> PythonTraits {
      try #require(PythonTraits(major: major, minor: minor))
    }
    #expect(try traits(2, 7).frameModel == .frameObject)
    #expect(try traits(3, 10).frameModel == .frameObject)
    #expect(try traits(3, 11).frameModel == .interpreterFrameViaCFrame)
    #expect(try traits(3, 12).frameModel == .interpreterFrameViaCFrame)
    #expect(try traits(3, 13).frameModel == .interpreterFrame)
    #expect(try traits(3, 9).lineTable == .lnotab)
    #expect(try traits(3, 10).lineTable == .linetable310)
    #expect(try traits(3, 11).lineTable == .locationTable)
    #expect(try traits(2, 7).stringModel == .bytes27)
    #expect(try traits(3, 6).stringModel == .unicode)
    #expect(try traits(3, 6).gilModel == .tstateCurrentSymbol)
    #expect(try traits(3, 7).gilModel == .runtimeTstateCurrent)
    #expect(try traits(3, 11).gilModel == .runtimeTstateCurrent)
    #expect(try traits(3, 12).gilModel == .interpreterGil)
    #expect(try traits(3, 6).interpreterDiscovery == .interpHeadSymbol)
    #expect(try traits(3, 7).interpreterDiscovery == .runtimeSymbol)
    #expect(try traits(3, 10).hasQualname == false)
    #expect(try traits(3, 11).hasQualname)
    #expect(try traits(3, 11).shimFrameOwners == [])
    #expect(try traits(3, 12).shimFrameOwners == [3])
    #expect(try traits(3, 13).shimFrameOwners == [3])
    #expect(try traits(3, 14).shimFrameOwners == [3, 4])
    #expect(try traits(3, 15).shimFrameOwners == [3])
    #expect(try traits(3, 13).stackRef == nil)
    #expect(try traits(3, 14).stackRef?.tagBits == 3)
    #expect(try traits(3, 15).frameModel == .interpreterFrame)
    #expect(try traits(2, 7).lineTable == .lnotab27)
    #expect(try traits(2, 7).threadNameAttribute == "_Thread__name")
    #expect(try traits(3, 6).threadNameAttribute == "_name")
    #expect(try traits(3, 11).longUsesLvTag == false)
    #expect(try traits(3, 12).longUsesLvTag)
    #expect(try traits(2, 7).typeFlags.intSubclass == 1 << 23)
    #expect(try traits(2, 7).typeFlags.bytesSubclass == 1 << 27)
    #expect(try traits(3, 13).typeFlags.inlineValues == 1 << 2)
    #expect(try traits(3, 13).typeFlags.managedDict == 1 << 4)
    #expect(PythonTraits(version: PythonVersion(major: 3, minor: 16, micro: 0)) == nil)
    let assumed = try #require(PythonTraits(assumingNewestFor: PythonVersion(major: 3, minor: 16, micro: 1)))
    #expect(assumed.minor == 16 && assumed.layout == PythonLayout.v3_15 && assumed.frameModel == .interpreterFrame)
    #expect(PythonTraits(assumingNewestFor: PythonVersion(major: 3, minor: 15, micro: 1)) == nil)
    #expect(
      PythonTraits(version: PythonVersion(major: 2, minor: 8, micro: 5, buildMetadata: "cinder"))
        == nil)
  }

  // .. _Py_DebugOffsets, synthetic ........................................................

  /// The offsets of the table's members (all but the header fields), by reflection.
  static func memberOffsets(_ table: DebugOffsetsTable) -> [(String, Int)] {
    let header: Set<String> = ["major", "minor", "tableSize", "cookie", "version", "freeThreaded"]
    return Mirror(reflecting: table).children.compactMap { child in
      guard let label = child.label, !header.contains(label), let offset = child.value as? Int
      else { return nil }
      return (label, offset)
    }
  }

  static func put(_ value: UInt64, at offset: Int, in bytes: inout [UInt8]) {
    for k in 0..<8 { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
  }

  /// A table for `hex` where each member holds 1000 + its offset in the table.
  static func syntheticBytes(table: DebugOffsetsTable = .v3_13, hex: UInt64 = 0x030D_02F0)
    -> [UInt8]
  {
    var bytes = [UInt8](repeating: 0, count: DebugOffsets.bytesNeeded(for: [table]))
    bytes.replaceSubrange(0..<8, with: Array("xdebugpy".utf8))
    put(hex, at: table.version ?? 8, in: &bytes)
    for (_, offset) in memberOffsets(table) { put(1000 + UInt64(offset), at: offset, in: &bytes) }
    // What every real table of this shape holds, so that the shape checks pass: PyObject is two
    // words, and each section's struct is large enough for the member offsets above.
    if let size = table.pyobjectSize { put(16, at: size, in: &bytes) }
    if let type = table.pyobjectObType { put(8, at: type, in: &bytes) }
    for (size, _) in table.sections { if let size { put(1 << 20, at: size, in: &bytes) } }
    return bytes
  }

  @Test func debugOffsetsSynthetic() throws {
    let table = DebugOffsetsTable.v3_13
    #expect(DebugOffsets.bytesNeeded >= table.tableSize)
    #expect(Self.memberOffsets(table).count == 70)
    let debug = try DebugOffsets(bytes: Self.syntheticBytes())
    #expect(debug.version == PythonVersion(major: 3, minor: 13, micro: 2))
    let layout = debug.providedLayout
    func member(_ offset: Int?) -> Int { 1000 + (offset ?? -1000) }
    #expect(layout.runtimeInterpretersHead == member(table.runtimeStateInterpretersHead))
    #expect(layout.interpThreadsHead == member(table.interpreterStateThreadsHead))
    #expect(layout.interpModules == member(table.interpreterStateImportsModules))
    #expect(layout.interpCevalGil == member(table.interpreterStateCevalGil))
    #expect(layout.tstateFrame == member(table.threadStateCurrentFrame))
    #expect(layout.tstateNativeThreadID == member(table.threadStateNativeThreadId))
    #expect(layout.iframeCode == member(table.interpreterFrameExecutable))
    #expect(layout.iframeSize == 1 << 20)  // a section size: see syntheticBytes
    #expect(layout.codeVarnames == member(table.codeObjectLocalsplusnames))
    #expect(layout.codeCodeAdaptive == member(table.codeObjectCoCodeAdaptive))
    #expect(layout.varObjectSize == member(table.tupleObjectObSize))
    #expect(layout.asciiObjectSize == member(table.unicodeObjectAsciiobjectSize))
    // locked/last_holder are given relative to PyInterpreterState; the layout wants them relative to
    // the gil struct.
    let gil = try #require(table.interpreterStateGilRuntimeState)
    #expect(layout.gilLocked == (table.interpreterStateGilRuntimeStateLocked ?? 0) - gil)
    #expect(layout.gilLastHolder == (table.interpreterStateGilRuntimeStateHolder ?? 0) - gil)
    // Not in the table: stays absent alone, and comes from the fallback when merged.
    #expect(layout.cframeCurrentFrame == nil)
    #expect(layout.dictKeysIndices == nil)
    let merged = debug.layout(mergingInto: .v3_13)
    #expect(merged.dictKeysIndices == PythonLayout.v3_13.dictKeysIndices)
    #expect(merged.tstateDatastackTop == PythonLayout.v3_13.tstateDatastackTop)
    #expect(merged.tstateFrame == member(table.threadStateCurrentFrame))
  }

  @Test func debugOffsetsRejects() throws {
    let good = Self.syntheticBytes()
    #expect(throws: DebugOffsetsError.truncated(needed: 24, got: 10)) {
      try DebugOffsets(bytes: Array(good.prefix(10)))
    }
    #expect(
      throws: DebugOffsetsError.truncated(needed: DebugOffsetsTable.v3_13.tableSize, got: 100)
    ) {
      try DebugOffsets(bytes: Array(good.prefix(100)))
    }
    var cookie = good
    cookie[0] = UInt8(ascii: "X")
    #expect(throws: DebugOffsetsError.badCookie) { try DebugOffsets(bytes: cookie) }
    #expect(throws: DebugOffsetsError.implausibleVersion(hex: 0x0207_12F0)) {
      try DebugOffsets(bytes: Self.syntheticBytes(hex: 0x0207_12F0))
    }
    #expect(throws: DebugOffsetsError.implausibleVersion(hex: 0x030C_01F0)) {
      try DebugOffsets(bytes: Self.syntheticBytes(hex: 0x030C_01F0))
    }
    #expect(throws: DebugOffsetsError.implausibleVersion(hex: 0x1_030D_00F0)) {
      try DebugOffsets(bytes: Self.syntheticBytes(hex: 0x1_030D_00F0))
    }
    // 3.16 is newer than every description; read with 3.15's shape, this 3.13-shaped table fails
    // the shape checks.
    #expect(throws: DebugOffsetsError.unknownShape(PythonVersion(major: 3, minor: 16, micro: 0))) {
      try DebugOffsets(bytes: Self.syntheticBytes(hex: 0x0310_00F0))
    }
    let table = DebugOffsetsTable.v3_13
    var garbage = good
    Self.put(1 << 40, at: try #require(table.threadStateCurrentFrame), in: &garbage)
    #expect(throws: DebugOffsetsError.unknownShape(PythonVersion(major: 3, minor: 13, micro: 2))) {
      try DebugOffsets(bytes: garbage)
    }
    var shifted = good
    Self.put(24, at: try #require(table.pyobjectSize), in: &shifted)
    #expect(throws: DebugOffsetsError.unknownShape(PythonVersion(major: 3, minor: 13, micro: 2))) {
      try DebugOffsets(bytes: shifted)
    }
    var freeThreaded = good
    Self.put(1, at: try #require(table.freeThreaded), in: &freeThreaded)
    #expect(throws: DebugOffsetsError.freeThreaded(PythonVersion(major: 3, minor: 13, micro: 2))) {
      try DebugOffsets(bytes: freeThreaded)
    }
  }

  /// Every generated table reads its own synthetic bytes, and a later version whose table keeps
  /// the newest shape is read with it: no new description, no new code.
  @Test func debugOffsetsForwardCompatible() throws {
    for table in DebugOffsetsTable.allGenerated {
      let hex = UInt64(table.major) << 24 | UInt64(table.minor) << 16 | 0x01F0
      let debug = try DebugOffsets(bytes: Self.syntheticBytes(table: table, hex: hex))
      #expect(debug.table == table, "\(table.major).\(table.minor)")
      #expect(debug.providedLayout.tstateFrame == 1000 + (table.threadStateCurrentFrame ?? -1000))
    }
    let newest = try #require(DebugOffsetsTable.allGenerated.last)
    let later = try DebugOffsets(bytes: Self.syntheticBytes(table: newest, hex: 0x0310_02F0))
    #expect(later.version == PythonVersion(major: 3, minor: 16, micro: 2))
    #expect(later.table == newest)
    // The same later version with one member inserted early (everything after it one word on)
    // does not pass as the newest shape.
    var moved = Self.syntheticBytes(table: newest, hex: 0x0310_02F0)
    let start = try #require(newest.runtimeStateSize)
    moved.insert(contentsOf: [UInt8](repeating: 0, count: 8), at: start)
    #expect(throws: DebugOffsetsError.unknownShape(PythonVersion(major: 3, minor: 16, micro: 2))) {
      try DebugOffsets(bytes: moved)
    }
  }

  /// A new minor version needs only its table description: here a made-up one (the 3.13 description
  /// relabelled, with two members swapped), not real numbers of any version.
  @Test func debugOffsetsWithSuppliedTable() throws {
    var table = DebugOffsetsTable.v3_13
    table.minor = 17
    swap(&table.threadStateCurrentFrame, &table.threadStateThreadId)
    let bytes = Self.syntheticBytes(table: table, hex: 0x0311_00F0)
    let debug = try DebugOffsets(bytes: bytes, tables: [table])
    #expect(debug.version == PythonVersion(major: 3, minor: 17, micro: 0))
    #expect(debug.providedLayout.tstateFrame == 1000 + (table.threadStateCurrentFrame ?? 0))
    #expect(debug.providedLayout.tstateThreadID == 1000 + (table.threadStateThreadId ?? 0))
  }

  // .. _Py_DebugOffsets of live interpreters ..................................................

  /// Every 3.13+ interpreter of the suite (pyenv's, Debian trixie's, sid's 3.14 and 3.15): its own
  /// debug offsets, read from the live process, agree member for member with the table generated
  /// from its version's headers, and merging them into that table changes nothing.
  @Test func debugOffsetsOfLiveInterpreters() throws {
    let interpreters = try PythonInterpreter.requireAll().filter { $0.version.atLeast(3, 13) }
    #expect(interpreters.count >= 4, "\(interpreters.map(\.label))")
    for python in interpreters {
      let process = try PythonProcess(python, script: Fixture.path("longsleep.py"))
      defer { process.stop() }
      let target = try LiveTarget.attach(pid: process.pid, waitingUpTo: 10)
      let debug = try #require(target.debugOffsets, "\(python.label): no debug offsets read")
      #expect(debug.version.major == python.version.major && debug.version.minor == python.version.minor)
      #expect(debug.version.micro == python.version.micro, "\(python.label)")
      let generated = try #require(
        PythonLayout.generated(major: python.version.major, minor: python.version.minor))
      let provided = debug.providedLayout
      let mine = Dictionary(
        uniqueKeysWithValues: Mirror(reflecting: provided).children.compactMap { child in
          child.label.flatMap { label in (child.value as? Int).map { (label, $0) } }
        })
      var compared = 0
      for child in Mirror(reflecting: generated).children {
        // sizeof(PyInterpreterState) differs between builds of one version (3.13.0's headers and
        // Debian's 3.13.5; Debian's 3.14.10 binary and its own -dev headers, by 8 bytes) and is
        // not used to walk anything; every member offset must agree.
        guard let label = child.label, label != "interpSize", let value = child.value as? Int,
          let theirs = mine[label]
        else { continue }
        #expect(
          theirs == value,
          "\(python.label) \(label): _Py_DebugOffsets says \(theirs), the generated table \(value)")
        compared += 1
      }
      #expect(compared >= 45, "\(python.label): only \(compared) members compared")
      var merged = debug.layout(mergingInto: generated)
      merged.interpSize = generated.interpSize
      #expect(merged == generated, "\(python.label)")
    }
  }

  // .. the generator ..........................................................................

  @Test func generatedFileIsCurrent() throws {
    let root = Self.packageRoot()
    let result = try Self.run(
      "/usr/bin/env", ["python3", root + "/tools/generate-layouts.py", "--check"], directory: root)
    #expect(result.status == 0, "generate-layouts.py --check failed:\n\(result.output)")
  }

  // .. helpers ....................................................................................

  static func packageRoot(file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/SpyglassTests/LayoutTests.swift
    return parts.joined(separator: "/")
  }

  static func pyenvRoot() -> String {
    if let root = ProcessInfo.processInfo.environment["PYENV_ROOT"], !root.isEmpty { return root }
    if let result = try? run("/usr/bin/env", ["pyenv", "root"]), result.status == 0 {
      let root = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
      if !root.isEmpty { return root }
    }
    return (ProcessInfo.processInfo.environment["HOME"] ?? "/root") + "/.pyenv"
  }

  /// A temporary file for a child's output (files, not pipes: a pipe end inherited by a child another
  /// test spawns at the same moment would keep the pipe open).
  static func temporaryFile() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "spyglass-layout-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: url.path, contents: nil)
    return url
  }

  /// Runs a program to completion; stdout and stderr together.
  static func run(_ executable: String, _ arguments: [String], directory: String? = nil) throws -> (
    status: Int32, output: String
  ) {
    let output = temporaryFile()
    defer { try? FileManager.default.removeItem(at: output) }
    let handle = try FileHandle(forWritingTo: output)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try handle.close()
    return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
  }

  final class Child {
    let process: Process
    let output: URL
    var pid: Int32 { process.processIdentifier }

    init(process: Process, output: URL) {
      self.process = process
      self.output = output
    }

    func waitForOutput(_ text: String, seconds: Double) throws {
      let deadline = Date().addingTimeInterval(seconds)
      while Date() < deadline {
        if let contents = try? String(contentsOf: output, encoding: .utf8), contents.contains(text) {
          return
        }
        if !process.isRunning { break }
        usleep(20_000)
      }
      let contents = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
      throw ChildError(description: "child \(pid) did not print \(text): \(contents)")
    }

    func kill() {
      if process.isRunning { _ = Glibc.kill(process.processIdentifier, SIGKILL) }
      process.waitUntilExit()
      try? FileManager.default.removeItem(at: output)
    }
  }

  struct ChildError: Error, CustomStringConvertible { let description: String }

  static func spawn(_ executable: String, _ arguments: [String]) throws -> Child {
    let output = temporaryFile()
    let handle = try FileHandle(forWritingTo: output)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    try handle.close()
    return Child(process: process, output: output)
  }
}
