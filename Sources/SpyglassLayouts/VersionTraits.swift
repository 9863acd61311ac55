//===--- VersionTraits.swift - what each CPython version means, not where ----===//
//
// PythonLayout says where members are; PythonTraits says how to read them: which frame model,
// which line table format, how the GIL holder and the interpreter are found, how instance dicts
// are stored, which type flags mark the builtin types. Written by hand from the headers and the
// interpreter sources, one switch per fact, and tested against `HeaderConstants`, which
// tools/generate-layouts.py measures from the same headers the offset tables come from.
//
//===----------------------------------------------------------------------===//

/// Macro and enum values measured from each version's headers by tools/generate-layouts.py (see
/// Generated/PythonLayouts.generated.swift). Nil where the version does not define the constant.
/// They exist to keep `PythonTraits` honest; the walkers use `PythonTraits`.
public struct HeaderConstants: Sendable, Equatable, Hashable {
  /// `PyLong_SHIFT`: bits per PyLong digit.
  public var longShift: Int?
  /// `sizeof(_Py_CODEUNIT)` (3.6+).
  public var codeUnitSize: Int?
  /// `enum _frameowner` (3.11+).
  public var frameOwnedByThread: Int?
  public var frameOwnedByGenerator: Int?
  public var frameOwnedByFrameObject: Int?
  /// `FRAME_OWNED_BY_CSTACK` (3.12+).
  public var frameOwnedByCStack: Int?
  /// Where the managed dict pointer is, relative to the object: `_PyObject_ManagedDictPointer`
  /// (3.11), `_PyObject_DictOrValuesPointer` (3.12), `MANAGED_DICT_OFFSET` (3.13+).
  public var managedDictOffset: Int?
  /// `_PyObject_ValuesPointer` relative to the object (3.11).
  public var managedValuesOffset: Int?
  /// `_PyObject_InlineValues` relative to the object (3.13+).
  public var inlineValuesOffset: Int?
  /// `Py_TPFLAGS_*`.
  public var tpflagsManagedDict: Int?
  public var tpflagsInlineValues: Int?
  public var tpflagsIntSubclass: Int?
  public var tpflagsLongSubclass: Int?
  public var tpflagsListSubclass: Int?
  public var tpflagsTupleSubclass: Int?
  /// `Py_TPFLAGS_BYTES_SUBCLASS` (3.x) or `Py_TPFLAGS_STRING_SUBCLASS` (2.7).
  public var tpflagsBytesSubclass: Int?
  public var tpflagsUnicodeSubclass: Int?
  public var tpflagsDictSubclass: Int?
  /// Bit positions and masks (in place) of the `PyASCIIObject.state` bitfields (3.x).
  public var unicodeStateInternedShift: Int?
  public var unicodeStateInternedMask: Int?
  public var unicodeStateKindShift: Int?
  public var unicodeStateKindMask: Int?
  public var unicodeStateCompactShift: Int?
  public var unicodeStateAsciiShift: Int?
  /// `sizeof(Py_UNICODE)` (2.7).
  public var pyUnicodeSize: Int?

  public init() {}
}

/// The non-offset, per-version semantics the walkers need.
public struct PythonTraits: Sendable, Equatable {
  /// How a thread's Python stack is linked.
  public enum FrameModel: Sendable, Equatable {
    /// ≤3.10: `tstate->frame` is a PyFrameObject*, linked by `f_back`.
    case frameObject
    /// 3.11/3.12: `tstate->cframe->current_frame` is a _PyInterpreterFrame*, linked by `previous`.
    case interpreterFrameViaCFrame
    /// 3.13+: `tstate->current_frame` is a _PyInterpreterFrame*, linked by `previous`.
    case interpreterFrame
  }

  /// The format of the code object's line table (`PythonLayout.codeLinetable`).
  public enum LineTableKind: Sendable, Equatable {
    /// 2.7–3.9 `co_lnotab`: (byte offset delta, line delta) pairs; line deltas signed from 3.6.
    case lnotab
    /// 3.10 `co_linetable`: (byte range, line delta) pairs, -128 meaning "no line".
    case linetable310
    /// 3.11+ `co_linetable`: the location table (varint entries with columns), in code units.
    case locationTable
  }

  /// What `co_filename`, `co_name` and friends are.
  public enum StringModel: Sendable, Equatable {
    /// 2.7: `str` objects (PyStringObject, `PythonLayout.bytesData`).
    case bytes27
    /// 3.x: PEP 393 `str` objects (PyASCIIObject / PyCompactUnicodeObject).
    case unicode
  }

  /// How to tell which thread holds the GIL.
  public enum GILModel: Sendable, Equatable {
    /// ≤3.6: the `_PyThreadState_Current` symbol holds the PyThreadState*.
    case tstateCurrentSymbol
    /// 3.7–3.11: `_PyRuntime.gilstate.tstate_current` (`PythonLayout.runtimeTstateCurrent`).
    case runtimeTstateCurrent
    /// 3.12+: the interpreter's `ceval.gil` points at a `_gil_runtime_state` whose `locked` and
    /// `last_holder` say it (`PythonLayout.interpCevalGil`, `gilLocked`, `gilLastHolder`).
    case interpreterGil
  }

  /// How to find the first PyInterpreterState.
  public enum InterpreterDiscovery: Sendable, Equatable {
    /// ≤3.6: the `interp_head` symbol.
    case interpHeadSymbol
    /// 3.7+: `_PyRuntime.interpreters.head` (`PythonLayout.runtimeInterpretersHead`).
    case runtimeSymbol
  }

  /// What the frame's instruction position counts.
  public enum InstructionAddressing: Sendable, Equatable {
    /// ≤3.9: `f_lasti` is a byte offset into `co_code`.
    case lastiByteOffset
    /// 3.10: `f_lasti` is an index in code units into `co_code`.
    case lastiCodeUnitIndex
    /// 3.11+: `prev_instr` / `instr_ptr` points into the code object's `co_code_adaptive`.
    case instructionPointer
  }

  /// Where an instance's attributes are when its type has `Py_TPFLAGS_MANAGED_DICT`.
  public enum ManagedDict: Sendable, Equatable {
    /// ≤3.10: no managed dicts; the dict is at `tp_dictoffset`.
    case none
    /// 3.11: a `PyDictValues *` at `object + valuesOffset` (−4 words) and a `PyDictObject *` at
    /// `object + dictOffset` (−3 words); the values pointer wins when not null.
    case valuesAndDictPointers(valuesOffset: Int, dictOffset: Int)
    /// 3.12: one word at `object + offset` (−3 words): with its low bit set it is a values pointer
    /// minus one, else a dict pointer.
    case taggedDictOrValues(offset: Int)
    /// 3.13+: a dict pointer at `object + dictOffset` (−3 words); when it is null and the type
    /// also has `Py_TPFLAGS_INLINE_VALUES`, the values live inline at `object + valuesOffset`
    /// (`tp_basicsize`, which is sizeof(PyObject) for such types) as a `_PyDictValues`, valid
    /// while its `valid` byte (`PythonLayout.dictValuesValid`) is set.
    case dictPointerAndInlineValues(dictOffset: Int, valuesOffset: Int)
  }

  /// `tp_flags` bits.
  public struct TypeFlags: Sendable, Equatable {
    /// `Py_TPFLAGS_INT_SUBCLASS` (2.7 only).
    public var intSubclass: UInt64?
    public var longSubclass: UInt64 = 1 << 24
    public var listSubclass: UInt64 = 1 << 25
    public var tupleSubclass: UInt64 = 1 << 26
    /// `Py_TPFLAGS_BYTES_SUBCLASS`, or `Py_TPFLAGS_STRING_SUBCLASS` on 2.7 (same bit).
    public var bytesSubclass: UInt64 = 1 << 27
    public var unicodeSubclass: UInt64 = 1 << 28
    public var dictSubclass: UInt64 = 1 << 29
    /// `Py_TPFLAGS_MANAGED_DICT` (3.11+).
    public var managedDict: UInt64?
    /// `Py_TPFLAGS_INLINE_VALUES` (3.13+).
    public var inlineValues: UInt64?
  }

  /// The `PyASCIIObject.state` bitfields (3.x): `(state >> kindShift) & kindMask` is the character
  /// size in bytes (1, 2 or 4).
  public struct UnicodeState: Sendable, Equatable {
    public var internedShift = 0
    public var internedMask: UInt32 = 0x3
    public var kindShift = 2
    public var kindMask: UInt32 = 0x7
    public var compactShift = 5
    public var asciiShift = 6
  }

  public let major: Int
  public let minor: Int
  public let frameModel: FrameModel
  public let lineTable: LineTableKind
  public let stringModel: StringModel
  public let gilModel: GILModel
  public let interpreterDiscovery: InterpreterDiscovery
  public let instructionAddressing: InstructionAddressing
  /// Whether code objects have `co_qualname` (3.11+).
  public let hasQualname: Bool
  /// `FRAME_OWNED_BY_CSTACK` (3.12+): the interpreter's entry shim frames, which the walkers skip.
  /// Nil before; 3.11 has no such owner and marks the first frame of each C-level evaluation with
  /// `is_entry` instead (`PythonLayout.iframeIsEntry`).
  public let cstackFrameOwner: UInt8?
  /// Whether `_PyInterpreterFrame.is_entry` exists (3.11 only).
  public let hasIsEntry: Bool
  /// Bytes per bytecode unit: 1 on 2.7 (instructions are 1 or 3 bytes), 2 (`_Py_CODEUNIT`) on 3.6+.
  public let codeUnitSize: Int
  /// Whether ints are `long_value.lv_tag` (sign and digit count) + digits (3.12+) rather than
  /// `ob_size` (signed digit count) + digits.
  public let longUsesLvTag: Bool
  /// Bits per PyLong digit (`PyLong_SHIFT`, 30 on 64-bit builds).
  public let longDigitBits: Int
  public let managedDict: ManagedDict
  public let typeFlags: TypeFlags
  /// Nil on 2.7 (no PEP 393 strings).
  public let unicodeState: UnicodeState?
  /// 2.7 `unicode` objects: bytes per Py_UNICODE unit (4 for the UCS4 builds Linux distributions
  /// and pyenv make; a narrow build would have 2). Nil on 3.x.
  public let unicode27UnitSize: Int?
  /// The generated offset table of this version.
  public let layout: PythonLayout

  /// The traits of a supported minor version (2.7, 3.6–3.13); nil for any other, which callers
  /// report as an unsupported version.
  public init?(version: PythonVersion) {
    self.init(major: version.major, minor: version.minor)
  }

  public init?(major: Int, minor: Int) {
    guard let layout = PythonLayout.generated(major: major, minor: minor) else { return nil }
    let v = (major, minor)
    func atLeast(_ m: Int, _ n: Int) -> Bool { v >= (m, n) }
    self.major = major
    self.minor = minor
    self.layout = layout

    frameModel =
      !atLeast(3, 11)
      ? .frameObject : !atLeast(3, 13) ? .interpreterFrameViaCFrame : .interpreterFrame
    lineTable = !atLeast(3, 10) ? .lnotab : !atLeast(3, 11) ? .linetable310 : .locationTable
    stringModel = major == 2 ? .bytes27 : .unicode
    gilModel =
      !atLeast(3, 7)
      ? .tstateCurrentSymbol : !atLeast(3, 12) ? .runtimeTstateCurrent : .interpreterGil
    interpreterDiscovery = !atLeast(3, 7) ? .interpHeadSymbol : .runtimeSymbol
    instructionAddressing =
      !atLeast(3, 10)
      ? .lastiByteOffset : !atLeast(3, 11) ? .lastiCodeUnitIndex : .instructionPointer
    hasQualname = atLeast(3, 11)
    cstackFrameOwner = atLeast(3, 12) ? 3 : nil
    hasIsEntry = v == (3, 11)
    codeUnitSize = major == 2 ? 1 : 2
    longUsesLvTag = atLeast(3, 12)
    longDigitBits = 30

    let word = 8
    if !atLeast(3, 11) {
      managedDict = .none
    } else if v == (3, 11) {
      managedDict = .valuesAndDictPointers(valuesOffset: -4 * word, dictOffset: -3 * word)
    } else if v == (3, 12) {
      managedDict = .taggedDictOrValues(offset: -3 * word)
    } else {
      // sizeof(PyObject): the only tp_basicsize a type with inline values has.
      managedDict = .dictPointerAndInlineValues(dictOffset: -3 * word, valuesOffset: 2 * word)
    }

    var flags = TypeFlags()
    if major == 2 { flags.intSubclass = 1 << 23 }
    if atLeast(3, 11) { flags.managedDict = 1 << 4 }
    if atLeast(3, 13) { flags.inlineValues = 1 << 2 }
    typeFlags = flags

    unicodeState = major == 2 ? nil : UnicodeState()
    unicode27UnitSize = major == 2 ? 4 : nil
  }

  /// The generated offset table for `version`'s minor version, or nil when it is not supported.
  public static func layout(for version: PythonVersion) -> PythonLayout? {
    PythonLayout.generated(major: version.major, minor: version.minor)
  }

  /// The minor versions with generated tables (and so traits).
  public static let supportedVersions: [(major: Int, minor: Int)] = [
    (2, 7), (3, 6), (3, 7), (3, 8), (3, 9), (3, 10), (3, 11), (3, 12), (3, 13),
  ]
}
