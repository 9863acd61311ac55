//===--- DebugOffsets.swift - the target's own _Py_DebugOffsets (3.13+) ----===//
//
// Since 3.13, `_PyRuntime` starts with `_Py_DebugOffsets`: the cookie "xdebugpy", PY_VERSION_HEX,
// a free-threading flag, then, as uint64_t values, the offsets (and sizes) of the members an
// out-of-process tool needs, as compiled into that very binary. Reading them makes Spyglass immune
// to layout differences between builds of the same version.
//
// The table's own layout is stable only within a minor version, so reading it takes a description
// of where its members are for that minor version: a `DebugOffsetsTable`, generated from the
// version's `internal/pycore_runtime.h` by tools/generate-layouts.py. That description is the only
// per-version input here. Supporting a new minor version (3.14, …) means: install it, add it to
// VERSIONS in the generator and regenerate, which adds its `DebugOffsetsTable`. Members the new
// table adds are reported by the generator; give them a field below and a line in `apply`. A
// `DebugOffsets` can also be built from a caller-supplied table (`init(bytes:tables:)`), and
// `layout(mergingInto: PythonLayout())` is then the layout from the debug offsets alone.
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
  /// No table description for this minor version.
  case unsupportedVersion(PythonVersion)
  /// A member holds a value no offset or size can have (at `tableOffset` in the table).
  case implausibleValue(tableOffset: Int, value: UInt64)
}

/// Where the members of `_Py_DebugOffsets` are for one minor version: each field is the byte
/// offset of that member within the table (`absent` when the version's table lacks it). Field
/// names are the C designators camel-cased (`thread_state.current_frame` →
/// `threadStateCurrentFrame`). Values come from Generated/PythonLayouts.generated.swift.
public struct DebugOffsetsTable: Sendable, Equatable, Hashable {
  public static let absent = -1

  public var major = 0
  public var minor = 0
  /// sizeof(_Py_DebugOffsets).
  public var tableSize = absent

  // header (fixed: DebugOffsets reads the cookie at 0 and the version at 8 before it knows the
  // version; the generator checks every version still has them there)
  public var cookie = absent
  public var version = absent
  public var freeThreaded = absent
  // runtime_state
  public var runtimeStateSize = absent
  public var runtimeStateFinalizing = absent
  public var runtimeStateInterpretersHead = absent
  // interpreter_state
  public var interpreterStateSize = absent
  public var interpreterStateId = absent
  public var interpreterStateNext = absent
  public var interpreterStateThreadsHead = absent
  public var interpreterStateGc = absent
  public var interpreterStateImportsModules = absent
  public var interpreterStateSysdict = absent
  public var interpreterStateBuiltins = absent
  public var interpreterStateCevalGil = absent
  public var interpreterStateGilRuntimeState = absent
  public var interpreterStateGilRuntimeStateEnabled = absent
  public var interpreterStateGilRuntimeStateLocked = absent
  public var interpreterStateGilRuntimeStateHolder = absent
  // thread_state
  public var threadStateSize = absent
  public var threadStatePrev = absent
  public var threadStateNext = absent
  public var threadStateInterp = absent
  public var threadStateCurrentFrame = absent
  public var threadStateThreadId = absent
  public var threadStateNativeThreadId = absent
  public var threadStateDatastackChunk = absent
  public var threadStateStatus = absent
  // interpreter_frame
  public var interpreterFrameSize = absent
  public var interpreterFramePrevious = absent
  public var interpreterFrameExecutable = absent
  public var interpreterFrameInstrPtr = absent
  public var interpreterFrameLocalsplus = absent
  public var interpreterFrameOwner = absent
  // code_object
  public var codeObjectSize = absent
  public var codeObjectFilename = absent
  public var codeObjectName = absent
  public var codeObjectQualname = absent
  public var codeObjectLinetable = absent
  public var codeObjectFirstlineno = absent
  public var codeObjectArgcount = absent
  public var codeObjectLocalsplusnames = absent
  public var codeObjectLocalspluskinds = absent
  public var codeObjectCoCodeAdaptive = absent
  // pyobject
  public var pyobjectSize = absent
  public var pyobjectObType = absent
  // type_object
  public var typeObjectSize = absent
  public var typeObjectTpName = absent
  public var typeObjectTpRepr = absent
  public var typeObjectTpFlags = absent
  // tuple_object
  public var tupleObjectSize = absent
  public var tupleObjectObItem = absent
  public var tupleObjectObSize = absent
  // list_object
  public var listObjectSize = absent
  public var listObjectObItem = absent
  public var listObjectObSize = absent
  // dict_object
  public var dictObjectSize = absent
  public var dictObjectMaKeys = absent
  public var dictObjectMaValues = absent
  // float_object
  public var floatObjectSize = absent
  public var floatObjectObFval = absent
  // long_object
  public var longObjectSize = absent
  public var longObjectLvTag = absent
  public var longObjectObDigit = absent
  // bytes_object
  public var bytesObjectSize = absent
  public var bytesObjectObSize = absent
  public var bytesObjectObSval = absent
  // unicode_object
  public var unicodeObjectSize = absent
  public var unicodeObjectState = absent
  public var unicodeObjectLength = absent
  public var unicodeObjectAsciiobjectSize = absent
  // gc
  public var gcSize = absent
  public var gcCollecting = absent

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
  /// Whether the target is a free-threaded (`Py_GIL_DISABLED`) build. Its object headers differ from
  /// the default build's, so a generated fallback layout is wrong for the members the table does
  /// not give; callers should not merge one into such a target.
  public let freeThreaded: Bool
  /// The description the bytes were read with.
  public let table: DebugOffsetsTable
  /// The table's bytes (`table.tableSize` of them).
  public let bytes: [UInt8]

  /// Parses the bytes at the start of `_PyRuntime`, which should be at least `bytesNeeded` long,
  /// with the table description for the version they declare.
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
    guard
      let table = tables.first(where: { $0.major == version.major && $0.minor == version.minor })
    else {
      throw .unsupportedVersion(version)
    }
    guard table.tableSize >= Self.headerSize, bytes.count >= table.tableSize else {
      throw .truncated(needed: Swift.max(table.tableSize, Self.headerSize), got: bytes.count)
    }
    let own = Array(bytes[0..<table.tableSize])
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
    self.freeThreaded =
      table.freeThreaded != DebugOffsetsTable.absent
      && (Self.u64(own, at: table.freeThreaded) ?? 0) != 0
    self.table = table
    self.bytes = own
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
    func value(_ member: Int) -> Int? { member == DebugOffsetsTable.absent ? nil : read(member) }
    func set(_ field: inout Int, _ member: Int) {
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
    set(&l.varObjectSize, t.tupleObjectObSize)
    set(&l.tupleItems, t.tupleObjectObItem)
    set(&l.listItems, t.listObjectObItem)
    set(&l.dictKeys, t.dictObjectMaKeys)
    set(&l.dictValues, t.dictObjectMaValues)
    set(&l.floatValue, t.floatObjectObFval)
    set(&l.longTag, t.longObjectLvTag)
    set(&l.longDigits, t.longObjectObDigit)
    set(&l.bytesData, t.bytesObjectObSval)
    set(&l.unicodeState, t.unicodeObjectState)
    set(&l.unicodeLength, t.unicodeObjectLength)
    set(&l.asciiObjectSize, t.unicodeObjectAsciiobjectSize)
  }

  /// A little-endian uint64_t at `offset`, or nil when it does not fit.
  static func u64(_ bytes: [UInt8], at offset: Int) -> UInt64? {
    guard offset >= 0, offset <= bytes.count - 8 else { return nil }
    var value: UInt64 = 0
    for k in (0..<8).reversed() { value = value << 8 | UInt64(bytes[offset + k]) }
    return value
  }
}
