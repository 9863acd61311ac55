//===--- DebugOffsets.swift - the target's own _Py_DebugOffsets (3.13+) ----===//
//
// Since 3.13, `_PyRuntime` starts with `_Py_DebugOffsets` (3.14+ also place it at the start of the
// `.PyRuntime` ELF section): the cookie "xdebugpy", PY_VERSION_HEX, a free-threading flag, then, as
// uint64_t values, the offsets (and sizes) of the members an out-of-process tool needs, as
// compiled into that very binary. Reading them makes Spyglass immune to layout differences between
// builds of the same version.
//
// The table's own shape (which member sits where) is stable only within a minor version, and it
// is versioned by its `version` field: reading it takes a description of the shape for that
// minor version, a `DebugOffsetsTable`, generated from the version's headers
// (`internal/pycore_runtime.h` in 3.13, `internal/pycore_debug_offsets.h` from 3.14) by
// tools/generate-layouts.py. That description is the only per-version input here.
//
// A version newer than every known one is read with the newest known shape when the bytes pass
// `shapeHolds`: checks that only a table of that shape passes (PyObject's size and `ob_type`, and
// every member offset inside the struct its section describes). So a later CPython whose table
// keeps the shape needs no new code; one whose shape changed gets `unknownShape`, never garbage.
// A free-threaded build (`free_threaded` set) is recognised from the fixed header and refused.
//
// Supporting a new minor version: CONTRIBUTING.md, "Adding a CPython version".
//
//===----------------------------------------------------------------------===//

/// Why the bytes at `_PyRuntime` could not be used as `_Py_DebugOffsets`.
public enum DebugOffsetsError: Error, Equatable, Sendable {
  /// Fewer bytes than the header or the version's table.
  case truncated(needed: Int, got: Int)
  /// The first 8 bytes are not "xdebugpy" (not 3.13+, or not `_PyRuntime`).
  case badCookie
  /// The version field is not a plausible 3.13+ PY_VERSION_HEX.
  case implausibleVersion(hex: UInt64)
  /// A free-threaded (`Py_GIL_DISABLED`) build: its objects and thread states differ from the
  /// default build's, and Spyglass does not walk them yet.
  case freeThreaded(PythonVersion)
  /// No known table shape fits this version's table (a newer CPython that changed it, or an
  /// older or pre-release one without a description).
  case unknownShape(PythonVersion)
  /// A member holds a value no offset or size can have (at `tableOffset` in the table).
  case implausibleValue(tableOffset: Int, value: UInt64)
}

/// Where the members of `_Py_DebugOffsets` are for one minor version: each field is the byte
/// offset of that member within the table (nil when the version's table lacks it). Field
/// names are the C designators camel-cased (`thread_state.current_frame` →
/// `threadStateCurrentFrame`). Values come from Generated/PythonLayouts.generated.swift.
public struct DebugOffsetsTable: Sendable, Equatable, Hashable {
  public var major = 0
  public var minor = 0
  /// sizeof(_Py_DebugOffsets).
  public var tableSize = 0

  // header (fixed: DebugOffsets reads the cookie at 0 and the version at 8 before it knows the
  // version; the generator checks every version still has them there)
  public var cookie: Int?
  public var version: Int?
  public var freeThreaded: Int?
  // runtime_state
  public var runtimeStateSize: Int?
  public var runtimeStateFinalizing: Int?
  public var runtimeStateInterpretersHead: Int?
  // interpreter_state
  public var interpreterStateSize: Int?
  public var interpreterStateId: Int?
  public var interpreterStateNext: Int?
  public var interpreterStateThreadsHead: Int?
  public var interpreterStateThreadsMain: Int?
  public var interpreterStateGc: Int?
  public var interpreterStateImportsModules: Int?
  public var interpreterStateSysdict: Int?
  public var interpreterStateBuiltins: Int?
  public var interpreterStateCevalGil: Int?
  public var interpreterStateGilRuntimeState: Int?
  public var interpreterStateGilRuntimeStateEnabled: Int?
  public var interpreterStateGilRuntimeStateLocked: Int?
  public var interpreterStateGilRuntimeStateHolder: Int?
  public var interpreterStateCodeObjectGeneration: Int?
  public var interpreterStateTlbcGeneration: Int?
  // thread_state
  public var threadStateSize: Int?
  public var threadStatePrev: Int?
  public var threadStateNext: Int?
  public var threadStateInterp: Int?
  public var threadStateCurrentFrame: Int?
  public var threadStateBaseFrame: Int?
  public var threadStateLastProfiledFrame: Int?
  public var threadStateLastProfiledFrameSeq: Int?
  public var threadStateThreadId: Int?
  public var threadStateNativeThreadId: Int?
  public var threadStateDatastackChunk: Int?
  public var threadStateStatus: Int?
  public var threadStateHoldsGil: Int?
  public var threadStateGilRequested: Int?
  public var threadStateCurrentException: Int?
  public var threadStateExcState: Int?
  public var errStackitemExcValue: Int?
  // interpreter_frame
  public var interpreterFrameSize: Int?
  public var interpreterFramePrevious: Int?
  public var interpreterFrameExecutable: Int?
  public var interpreterFrameInstrPtr: Int?
  public var interpreterFrameLocalsplus: Int?
  public var interpreterFrameOwner: Int?
  public var interpreterFrameStackpointer: Int?
  public var interpreterFrameTlbcIndex: Int?
  // code_object
  public var codeObjectSize: Int?
  public var codeObjectFilename: Int?
  public var codeObjectName: Int?
  public var codeObjectQualname: Int?
  public var codeObjectLinetable: Int?
  public var codeObjectFirstlineno: Int?
  public var codeObjectArgcount: Int?
  public var codeObjectLocalsplusnames: Int?
  public var codeObjectLocalspluskinds: Int?
  public var codeObjectCoCodeAdaptive: Int?
  public var codeObjectCoTlbc: Int?
  // pyobject
  public var pyobjectSize: Int?
  public var pyobjectObType: Int?
  // type_object
  public var typeObjectSize: Int?
  public var typeObjectTpName: Int?
  public var typeObjectTpRepr: Int?
  public var typeObjectTpFlags: Int?
  public var typeObjectTpBasicsize: Int?
  public var typeObjectTpDictoffset: Int?
  public var heapTypeObjectSize: Int?
  public var heapTypeObjectHtCachedKeys: Int?
  // tuple_object
  public var tupleObjectSize: Int?
  public var tupleObjectObItem: Int?
  public var tupleObjectObSize: Int?
  // list_object
  public var listObjectSize: Int?
  public var listObjectObItem: Int?
  public var listObjectObSize: Int?
  public var setObjectSize: Int?
  public var setObjectUsed: Int?
  public var setObjectTable: Int?
  public var setObjectMask: Int?
  // dict_object
  public var dictObjectSize: Int?
  public var dictObjectMaKeys: Int?
  public var dictObjectMaValues: Int?
  // float_object
  public var floatObjectSize: Int?
  public var floatObjectObFval: Int?
  // long_object
  public var longObjectSize: Int?
  public var longObjectLvTag: Int?
  public var longObjectObDigit: Int?
  // bytes_object
  public var bytesObjectSize: Int?
  public var bytesObjectObSize: Int?
  public var bytesObjectObSval: Int?
  // unicode_object
  public var unicodeObjectSize: Int?
  public var unicodeObjectState: Int?
  public var unicodeObjectLength: Int?
  public var unicodeObjectAsciiobjectSize: Int?
  public var unicodeObjectCompactunicodeobjectSize: Int?
  // gc
  public var gcSize: Int?
  public var gcCollecting: Int?
  public var gcFrame: Int?
  public var gcGenerationStatsSize: Int?
  public var gcGenerationStats: Int?
  public var genObjectSize: Int?
  public var genObjectGiName: Int?
  public var genObjectGiIframe: Int?
  public var genObjectGiFrameState: Int?
  public var llistNodeNext: Int?
  public var llistNodePrev: Int?
  public var debuggerSupportEvalBreaker: Int?
  public var debuggerSupportRemoteDebuggerSupport: Int?
  public var debuggerSupportRemoteDebuggingEnabled: Int?
  public var debuggerSupportDebuggerPendingCall: Int?
  public var debuggerSupportDebuggerScriptPath: Int?
  public var debuggerSupportDebuggerScriptPathSize: Int?

  public init() {}
}

/// A parsed `_Py_DebugOffsets`.
public struct DebugOffsets: Sendable, Equatable {
  /// The first 8 bytes of `_PyRuntime` on 3.13+.
  public static let cookie: [UInt8] = Array("xdebugpy".utf8)
  /// Cookie, version and free_threaded: what is read before the version is known.
  public static let headerSize = 24
  /// The largest value a member may hold: offsets and sizes within the runtime's structures
  /// (PyInterpreterState is about 190 KiB in 3.13).
  public static let maximumValue: UInt64 = 1 << 26

  /// How many bytes to read at `_PyRuntime`: enough for every known version's table.
  public static let bytesNeeded = bytesNeeded(for: DebugOffsetsTable.allGenerated)

  /// How many bytes to read at `_PyRuntime` to parse with `tables`.
  public static func bytesNeeded(for tables: [DebugOffsetsTable]) -> Int {
    tables.reduce(headerSize) { Swift.max($0, $1.tableSize) }
  }

  /// The target's PY_VERSION_HEX, decoded.
  public let version: PythonVersion
  public let versionHex: UInt64
  /// The description the bytes were read with.
  public let table: DebugOffsetsTable
  /// The table's bytes (`table.tableSize` of them).
  public let bytes: [UInt8]

  /// Parses the bytes at the start of `_PyRuntime`, which should be at least `bytesNeeded` long,
  /// with the table description for the version they declare; for a version newer than every
  /// description, with the newest one whose shape the bytes pass (`shapeHolds`).
  public init(bytes: [UInt8], tables: [DebugOffsetsTable] = DebugOffsetsTable.allGenerated)
    throws(DebugOffsetsError)
  {
    guard bytes.count >= Self.headerSize else {
      throw .truncated(needed: Self.headerSize, got: bytes.count)
    }
    guard bytes[0..<8].elementsEqual(Self.cookie) else { throw .badCookie }
    let hex = Self.u64(bytes, at: 8) ?? 0
    guard hex <= UInt64(UInt32.max), let version = PythonVersion(hex: UInt32(hex)),
      version.major == 3, version.minor >= 13
    else { throw .implausibleVersion(hex: hex) }
    // `free_threaded` is part of the fixed header (offset 16) in every shape.
    if (Self.u64(bytes, at: 16) ?? 0) != 0 { throw .freeThreaded(version) }

    let table: DebugOffsetsTable
    if let exact = tables.first(where: { $0.major == version.major && $0.minor == version.minor }) {
      table = exact
    } else if let newest = tables.max(by: { ($0.major, $0.minor) < ($1.major, $1.minor) }),
      (version.major, version.minor) > (newest.major, newest.minor),
      bytes.count >= newest.tableSize, Self.shapeHolds(newest, in: bytes)
    {
      table = newest
    } else {
      throw .unknownShape(version)
    }
    guard table.tableSize >= Self.headerSize, bytes.count >= table.tableSize else {
      throw .truncated(needed: Swift.max(table.tableSize, Self.headerSize), got: bytes.count)
    }
    let own = Array(bytes[0..<table.tableSize])
    guard Self.shapeHolds(table, in: own) else { throw .unknownShape(version) }
    // Every member `apply` uses must hold a plausible value, so that `layout(mergingInto:)` cannot fail.
    var bad: (offset: Int, value: UInt64)?
    var probe = PythonLayout()
    Self.apply(table, to: &probe) { member in
      guard let value = Self.u64(own, at: member) else { return nil }
      if value > Self.maximumValue {
        if bad == nil { bad = (member, value) }
        return nil
      }
      return Int(value)
    }
    if let bad { throw .implausibleValue(tableOffset: bad.offset, value: bad.value) }

    self.version = version
    self.versionHex = hex
    self.table = table
    self.bytes = own
  }

  /// Whether `bytes` read as a table of `table`'s shape make sense: PyObject is two words with
  /// `ob_type` second (true of every default build), and in each section that gives the size of
  /// its struct, every member offset lies inside that struct. A table of another shape read this
  /// way puts other members' values in these places, which fails one of the checks.
  public static func shapeHolds(_ table: DebugOffsetsTable, in bytes: [UInt8]) -> Bool {
    func value(_ member: Int?) -> UInt64? { member.flatMap { u64(bytes, at: $0) } }
    guard value(table.pyobjectSize) == 16, value(table.pyobjectObType) == 8 else { return false }
    for (size, members) in table.sections {
      guard let size = value(size) else { continue }
      guard size > 0, size <= maximumValue else { return false }
      for member in members {
        if let offset = value(member), offset >= size { return false }
      }
    }
    return true
  }

  /// `base` with every member the debug offsets provide replaced by the target's own value.
  /// Members the table does not describe keep `base`'s value; pass `PythonLayout()` to get the
  /// layout from the debug offsets alone (members it lacks are then `PythonLayout.absent`).
  public func layout(mergingInto base: PythonLayout) -> PythonLayout {
    var layout = base
    let bytes = self.bytes
    Self.apply(table, to: &layout) { member in Self.u64(bytes, at: member).map { Int($0) } }
    return layout
  }

  /// The layout from the debug offsets alone.
  public var providedLayout: PythonLayout { layout(mergingInto: PythonLayout()) }

  /// The value of the table member at `member` (a `DebugOffsetsTable` field), or nil when absent.
  public func value(at member: Int) -> UInt64? { Self.u64(bytes, at: member) }

  // .. the mapping ......................................................................

  /// Sets each PythonLayout member from its table member; `read` gives a member's value (from its
  /// offset in the table) or nil. The one place that knows which debug member means which field.
  static func apply(_ t: DebugOffsetsTable, to l: inout PythonLayout, read: (Int) -> Int?) {
    func value(_ member: Int?) -> Int? { member.flatMap(read) }
    func set(_ field: inout Int, _ member: Int?) {
      if let v = value(member) { field = v }
    }
    set(&l.runtimeInterpretersHead, t.runtimeStateInterpretersHead)

    set(&l.interpSize, t.interpreterStateSize)
    set(&l.interpID, t.interpreterStateId)
    set(&l.interpNext, t.interpreterStateNext)
    set(&l.interpThreadsHead, t.interpreterStateThreadsHead)
    set(&l.interpModules, t.interpreterStateImportsModules)
    set(&l.interpCevalGil, t.interpreterStateCevalGil)
    set(&l.interpGilRuntimeState, t.interpreterStateGilRuntimeState)
    // The table gives `locked` and `last_holder` as offsets in PyInterpreterState of the embedded
    // `_gil`'s members; PythonLayout wants them within `struct _gil_runtime_state`.
    if let gil = value(t.interpreterStateGilRuntimeState) {
      if let locked = value(t.interpreterStateGilRuntimeStateLocked), locked >= gil {
        l.gilLocked = locked - gil
      }
      if let holder = value(t.interpreterStateGilRuntimeStateHolder), holder >= gil {
        l.gilLastHolder = holder - gil
      }
    }

    set(&l.tstateSize, t.threadStateSize)
    set(&l.tstatePrev, t.threadStatePrev)
    set(&l.tstateNext, t.threadStateNext)
    set(&l.tstateInterp, t.threadStateInterp)
    set(&l.tstateFrame, t.threadStateCurrentFrame)
    set(&l.tstateThreadID, t.threadStateThreadId)
    set(&l.tstateNativeThreadID, t.threadStateNativeThreadId)
    set(&l.tstateDatastackChunk, t.threadStateDatastackChunk)

    set(&l.iframeSize, t.interpreterFrameSize)
    set(&l.iframePrevious, t.interpreterFramePrevious)
    set(&l.iframeCode, t.interpreterFrameExecutable)
    set(&l.iframeInstrPtr, t.interpreterFrameInstrPtr)
    set(&l.iframeLocalsplus, t.interpreterFrameLocalsplus)
    set(&l.iframeOwner, t.interpreterFrameOwner)

    set(&l.codeSize, t.codeObjectSize)
    set(&l.codeFilename, t.codeObjectFilename)
    set(&l.codeName, t.codeObjectName)
    set(&l.codeQualname, t.codeObjectQualname)
    set(&l.codeLinetable, t.codeObjectLinetable)
    set(&l.codeFirstlineno, t.codeObjectFirstlineno)
    set(&l.codeArgcount, t.codeObjectArgcount)
    set(&l.codeVarnames, t.codeObjectLocalsplusnames)
    set(&l.codeLocalspluskinds, t.codeObjectLocalspluskinds)
    set(&l.codeCodeAdaptive, t.codeObjectCoCodeAdaptive)

    set(&l.objectType, t.pyobjectObType)
    set(&l.typeName, t.typeObjectTpName)
    set(&l.typeFlags, t.typeObjectTpFlags)
    set(&l.typeBasicSize, t.typeObjectTpBasicsize)
    set(&l.typeDictOffset, t.typeObjectTpDictoffset)
    set(&l.heapTypeCachedKeys, t.heapTypeObjectHtCachedKeys)
    set(&l.varObjectSize, t.tupleObjectObSize)
    set(&l.tupleItems, t.tupleObjectObItem)
    set(&l.listItems, t.listObjectObItem)
    set(&l.setUsed, t.setObjectUsed)
    set(&l.setMask, t.setObjectMask)
    set(&l.setTable, t.setObjectTable)
    set(&l.dictKeys, t.dictObjectMaKeys)
    set(&l.dictValues, t.dictObjectMaValues)
    set(&l.floatValue, t.floatObjectObFval)
    set(&l.longTag, t.longObjectLvTag)
    set(&l.longDigits, t.longObjectObDigit)
    set(&l.bytesData, t.bytesObjectObSval)
    set(&l.unicodeState, t.unicodeObjectState)
    set(&l.unicodeLength, t.unicodeObjectLength)
    set(&l.asciiObjectSize, t.unicodeObjectAsciiobjectSize)
    set(&l.compactUnicodeObjectSize, t.unicodeObjectCompactunicodeobjectSize)
  }

  /// A little-endian uint64_t at `offset`, or nil when it does not fit.
  static func u64(_ bytes: [UInt8], at offset: Int) -> UInt64? {
    guard offset >= 0, offset <= bytes.count - 8 else { return nil }
    var value: UInt64 = 0
    for k in (0..<8).reversed() { value = value << 8 | UInt64(bytes[offset + k]) }
    return value
  }
}

extension DebugOffsetsTable {
  /// The sections of the table that give the size of the struct they describe, each with the
  /// members that are offsets inside that struct (sizes of other structs, such as
  /// `unicode_object.asciiobject_size`, are left out). `DebugOffsets.shapeHolds` checks them.
  public var sections: [(size: Int?, members: [Int?])] {
    [
      (runtimeStateSize, [runtimeStateFinalizing, runtimeStateInterpretersHead]),
      (
        interpreterStateSize,
        [
          interpreterStateId, interpreterStateNext, interpreterStateThreadsHead, interpreterStateThreadsMain,
          interpreterStateGc, interpreterStateImportsModules, interpreterStateSysdict, interpreterStateBuiltins,
          interpreterStateCevalGil, interpreterStateGilRuntimeState, interpreterStateGilRuntimeStateEnabled,
          interpreterStateGilRuntimeStateLocked, interpreterStateGilRuntimeStateHolder,
        ]
      ),
      (
        threadStateSize,
        [
          threadStatePrev, threadStateNext, threadStateInterp, threadStateCurrentFrame, threadStateBaseFrame,
          threadStateThreadId, threadStateNativeThreadId, threadStateDatastackChunk, threadStateStatus,
        ]
      ),
      (
        interpreterFrameSize,
        [
          interpreterFramePrevious, interpreterFrameExecutable, interpreterFrameInstrPtr, interpreterFrameLocalsplus,
          interpreterFrameOwner,
        ]
      ),
      (
        codeObjectSize,
        [
          codeObjectFilename, codeObjectName, codeObjectQualname, codeObjectLinetable, codeObjectFirstlineno,
          codeObjectArgcount, codeObjectLocalsplusnames, codeObjectLocalspluskinds, codeObjectCoCodeAdaptive,
        ]
      ),
      (typeObjectSize, [typeObjectTpName, typeObjectTpRepr, typeObjectTpFlags, typeObjectTpBasicsize]),
      (heapTypeObjectSize, [heapTypeObjectHtCachedKeys]),
      (tupleObjectSize, [tupleObjectObItem, tupleObjectObSize]),
      (listObjectSize, [listObjectObItem, listObjectObSize]),
      (setObjectSize, [setObjectUsed, setObjectTable, setObjectMask]),
      (dictObjectSize, [dictObjectMaKeys, dictObjectMaValues]),
      (floatObjectSize, [floatObjectObFval]),
      (longObjectSize, [longObjectLvTag, longObjectObDigit]),
      (bytesObjectSize, [bytesObjectObSize, bytesObjectObSval]),
      (unicodeObjectSize, [unicodeObjectState, unicodeObjectLength]),
      (gcSize, [gcCollecting]),
      (genObjectSize, [genObjectGiName, genObjectGiIframe, genObjectGiFrameState]),
    ]
  }
}
