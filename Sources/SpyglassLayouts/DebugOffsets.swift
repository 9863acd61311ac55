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
package enum DebugOffsetsError: Error, Equatable, Sendable {
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
package struct DebugOffsetsTable: Sendable, Equatable, Hashable {
  package var major = 0
  package var minor = 0
  /// sizeof(_Py_DebugOffsets).
  package var tableSize = 0

  // header (fixed: DebugOffsets reads the cookie at 0 and the version at 8 before it knows the
  // version; the generator checks every version still has them there)
  package var cookie: Int?
  package var version: Int?
  package var freeThreaded: Int?
  // runtime_state
  package var runtimeStateSize: Int?
  package var runtimeStateFinalizing: Int?
  package var runtimeStateInterpretersHead: Int?
  // interpreter_state
  package var interpreterStateSize: Int?
  package var interpreterStateId: Int?
  package var interpreterStateNext: Int?
  package var interpreterStateThreadsHead: Int?
  package var interpreterStateThreadsMain: Int?
  package var interpreterStateGc: Int?
  package var interpreterStateImportsModules: Int?
  package var interpreterStateSysdict: Int?
  package var interpreterStateBuiltins: Int?
  package var interpreterStateCevalGil: Int?
  package var interpreterStateGilRuntimeState: Int?
  package var interpreterStateGilRuntimeStateEnabled: Int?
  package var interpreterStateGilRuntimeStateLocked: Int?
  package var interpreterStateGilRuntimeStateHolder: Int?
  package var interpreterStateCodeObjectGeneration: Int?
  package var interpreterStateTlbcGeneration: Int?
  // thread_state
  package var threadStateSize: Int?
  package var threadStatePrev: Int?
  package var threadStateNext: Int?
  package var threadStateInterp: Int?
  package var threadStateCurrentFrame: Int?
  package var threadStateBaseFrame: Int?
  package var threadStateLastProfiledFrame: Int?
  package var threadStateLastProfiledFrameSeq: Int?
  package var threadStateThreadId: Int?
  package var threadStateNativeThreadId: Int?
  package var threadStateDatastackChunk: Int?
  package var threadStateStatus: Int?
  package var threadStateHoldsGil: Int?
  package var threadStateGilRequested: Int?
  package var threadStateCurrentException: Int?
  package var threadStateExcState: Int?
  package var errStackitemExcValue: Int?
  // interpreter_frame
  package var interpreterFrameSize: Int?
  package var interpreterFramePrevious: Int?
  package var interpreterFrameExecutable: Int?
  package var interpreterFrameInstrPtr: Int?
  package var interpreterFrameLocalsplus: Int?
  package var interpreterFrameOwner: Int?
  package var interpreterFrameStackpointer: Int?
  package var interpreterFrameTlbcIndex: Int?
  // code_object
  package var codeObjectSize: Int?
  package var codeObjectFilename: Int?
  package var codeObjectName: Int?
  package var codeObjectQualname: Int?
  package var codeObjectLinetable: Int?
  package var codeObjectFirstlineno: Int?
  package var codeObjectArgcount: Int?
  package var codeObjectLocalsplusnames: Int?
  package var codeObjectLocalspluskinds: Int?
  package var codeObjectCoCodeAdaptive: Int?
  package var codeObjectCoTlbc: Int?
  // pyobject
  package var pyobjectSize: Int?
  package var pyobjectObType: Int?
  // type_object
  package var typeObjectSize: Int?
  package var typeObjectTpName: Int?
  package var typeObjectTpRepr: Int?
  package var typeObjectTpFlags: Int?
  package var typeObjectTpBasicsize: Int?
  package var typeObjectTpDictoffset: Int?
  package var heapTypeObjectSize: Int?
  package var heapTypeObjectHtCachedKeys: Int?
  // tuple_object
  package var tupleObjectSize: Int?
  package var tupleObjectObItem: Int?
  package var tupleObjectObSize: Int?
  // list_object
  package var listObjectSize: Int?
  package var listObjectObItem: Int?
  package var listObjectObSize: Int?
  package var setObjectSize: Int?
  package var setObjectUsed: Int?
  package var setObjectTable: Int?
  package var setObjectMask: Int?
  // dict_object
  package var dictObjectSize: Int?
  package var dictObjectMaKeys: Int?
  package var dictObjectMaValues: Int?
  // float_object
  package var floatObjectSize: Int?
  package var floatObjectObFval: Int?
  // long_object
  package var longObjectSize: Int?
  package var longObjectLvTag: Int?
  package var longObjectObDigit: Int?
  // bytes_object
  package var bytesObjectSize: Int?
  package var bytesObjectObSize: Int?
  package var bytesObjectObSval: Int?
  // unicode_object
  package var unicodeObjectSize: Int?
  package var unicodeObjectState: Int?
  package var unicodeObjectLength: Int?
  package var unicodeObjectAsciiobjectSize: Int?
  package var unicodeObjectCompactunicodeobjectSize: Int?
  // gc
  package var gcSize: Int?
  package var gcCollecting: Int?
  package var gcFrame: Int?
  package var gcGenerationStatsSize: Int?
  package var gcGenerationStats: Int?
  package var genObjectSize: Int?
  package var genObjectGiName: Int?
  package var genObjectGiIframe: Int?
  package var genObjectGiFrameState: Int?
  package var llistNodeNext: Int?
  package var llistNodePrev: Int?
  package var debuggerSupportEvalBreaker: Int?
  package var debuggerSupportRemoteDebuggerSupport: Int?
  package var debuggerSupportRemoteDebuggingEnabled: Int?
  package var debuggerSupportDebuggerPendingCall: Int?
  package var debuggerSupportDebuggerScriptPath: Int?
  package var debuggerSupportDebuggerScriptPathSize: Int?

  package init() {}
}

/// A parsed `_Py_DebugOffsets`.
package struct DebugOffsets: Sendable, Equatable {
  /// The first 8 bytes of `_PyRuntime` on 3.13+.
  package static let cookie: [UInt8] = Array("xdebugpy".utf8)
  /// Cookie, version and free_threaded: what is read before the version is known.
  package static let headerSize = 24
  /// The largest value a member may hold: offsets and sizes within the runtime's structures
  /// (PyInterpreterState is about 190 KiB in 3.13).
  package static let maximumValue: UInt64 = 1 << 26

  /// How many bytes to read at `_PyRuntime`: enough for every known version's table.
  package static let bytesNeeded = bytesNeeded(for: DebugOffsetsTable.allGenerated)

  /// How many bytes to read at `_PyRuntime` to parse with `tables`.
  package static func bytesNeeded(for tables: [DebugOffsetsTable]) -> Int {
    tables.reduce(headerSize) { Swift.max($0, $1.tableSize) }
  }

  /// The target's PY_VERSION_HEX, decoded.
  package let version: PythonVersion
  package let versionHex: UInt64
  /// The description the bytes were read with.
  package let table: DebugOffsetsTable
  /// The table's bytes (`table.tableSize` of them).
  package let bytes: [UInt8]

  /// Parses the bytes at the start of `_PyRuntime`, which should be at least `bytesNeeded` long,
  /// with the table description for the version they declare; for a version newer than every
  /// description, with the newest one whose shape the bytes pass (`shapeHolds`).
  package init(bytes: [UInt8], tables: [DebugOffsetsTable] = DebugOffsetsTable.allGenerated)
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
  package static func shapeHolds(_ table: DebugOffsetsTable, in bytes: [UInt8]) -> Bool {
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
  /// layout from the debug offsets alone (members it lacks are then nil).
  package func layout(mergingInto base: PythonLayout) -> PythonLayout {
    var layout = base
    let bytes = self.bytes
    Self.apply(table, to: &layout) { member in Self.u64(bytes, at: member).map { Int($0) } }
    return layout
  }

  /// The layout from the debug offsets alone.
  package var providedLayout: PythonLayout { layout(mergingInto: PythonLayout()) }

  /// The value of the table member at `member` (a `DebugOffsetsTable` field), or nil when absent.
  package func value(at member: Int) -> UInt64? { Self.u64(bytes, at: member) }

  // .. the mapping ......................................................................

  /// Sets each PythonLayout member from its table member; `read` gives a member's value (from its
  /// offset in the table) or nil. The one place that knows which debug member means which field.
  static func apply(_ t: DebugOffsetsTable, to l: inout PythonLayout, read: (Int) -> Int?) {
    func value(_ member: Int?) -> Int? { member.flatMap(read) }
    func set(_ field: inout Int?, _ member: Int?) {
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
  package var sections: [(size: Int?, members: [Int?])] {
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
