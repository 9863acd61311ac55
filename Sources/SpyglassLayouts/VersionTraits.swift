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
package struct HeaderConstants: Sendable, Equatable, Hashable {
  /// `PyLong_SHIFT`: bits per PyLong digit.
  package var longShift: Int?
  /// `sizeof(_Py_CODEUNIT)` (3.6+).
  package var codeUnitSize: Int?
  /// `enum _frameowner` (3.11+).
  package var frameOwnedByThread: Int?
  package var frameOwnedByGenerator: Int?
  package var frameOwnedByFrameObject: Int?
  /// `FRAME_OWNED_BY_CSTACK` (3.12+).
  package var frameOwnedByCStack: Int?
  /// `FRAME_OWNED_BY_INTERPRETER` (3.14+).
  package var frameOwnedByInterpreter: Int?
  /// `Py_TAG_BITS` and `Py_INT_TAG` (3.14+): the low bits of a `_PyStackRef`, and their value when
  /// the word is a tagged int rather than an object pointer.
  package var stackRefTagBits: Int?
  package var stackRefIntTag: Int?
  /// Where the managed dict pointer is, relative to the object: `_PyObject_ManagedDictPointer`
  /// (3.11), `_PyObject_DictOrValuesPointer` (3.12), `MANAGED_DICT_OFFSET` (3.13+).
  package var managedDictOffset: Int?
  /// `_PyObject_ValuesPointer` relative to the object (3.11).
  package var managedValuesOffset: Int?
  /// `_PyObject_InlineValues` relative to the object (3.13, where it is sizeof(PyObject)).
  package var inlineValuesOffset: Int?
  /// 1 when `_PyObject_InlineValues` is at the type's `tp_basicsize` (3.14+).
  package var inlineValuesAfterBasicSize: Int?
  /// `Py_TPFLAGS_*`.
  package var tpflagsManagedDict: Int?
  package var tpflagsInlineValues: Int?
  package var tpflagsIntSubclass: Int?
  package var tpflagsLongSubclass: Int?
  package var tpflagsListSubclass: Int?
  package var tpflagsTupleSubclass: Int?
  /// `Py_TPFLAGS_BYTES_SUBCLASS` (3.x) or `Py_TPFLAGS_STRING_SUBCLASS` (2.7).
  package var tpflagsBytesSubclass: Int?
  package var tpflagsUnicodeSubclass: Int?
  package var tpflagsDictSubclass: Int?
  /// Bit positions and masks (in place) of the `PyASCIIObject.state` bitfields (3.x).
  package var unicodeStateInternedShift: Int?
  package var unicodeStateInternedMask: Int?
  package var unicodeStateKindShift: Int?
  package var unicodeStateKindMask: Int?
  package var unicodeStateCompactShift: Int?
  package var unicodeStateAsciiShift: Int?
  /// `sizeof(Py_UNICODE)` (2.7).
  package var pyUnicodeSize: Int?
  /// `gi_frame_state` values (3.11+): `FRAME_SUSPENDED`, `FRAME_SUSPENDED_YIELD_FROM` (3.13+),
  /// `FRAME_SUSPENDED_YIELD_FROM_LOCKED` (3.15+), `FRAME_EXECUTING`, `FRAME_CLEARED`.
  package var frameStateSuspended: Int?
  package var frameStateSuspendedYieldFrom: Int?
  package var frameStateSuspendedYieldFromLocked: Int?
  package var frameStateExecuting: Int?
  package var frameStateCleared: Int?
  /// The `RESUME`, `RESUME_QUICK` (3.11, its quickened form) and `INSTRUMENTED_RESUME` (3.12)
  /// opcodes, on 3.11 and 3.12.
  package var opcodeResume: Int?
  package var opcodeResumeQuick: Int?
  package var opcodeInstrumentedResume: Int?

  package init() {}
}

/// The non-offset, per-version semantics the walkers need.
package struct PythonTraits: Sendable, Equatable {
  /// How a thread's Python stack is linked.
  package enum FrameModel: Sendable, Equatable {
    /// ≤3.10: `tstate->frame` is a PyFrameObject*, linked by `f_back`.
    case frameObject
    /// 3.11/3.12: `tstate->cframe->current_frame` is a _PyInterpreterFrame*, linked by `previous`.
    case interpreterFrameViaCFrame
    /// 3.13+: `tstate->current_frame` is a _PyInterpreterFrame*, linked by `previous`.
    case interpreterFrame
  }

  /// The format of the code object's line table (`PythonLayout.codeLinetable`).
  package enum LineTableKind: Sendable, Equatable {
    /// 2.7 `co_lnotab`: (byte offset delta, line delta) pairs, line deltas unsigned.
    case lnotab27
    /// 3.6–3.9 `co_lnotab`: (byte offset delta, line delta) pairs, line deltas signed.
    case lnotab
    /// 3.10 `co_linetable`: (byte range, line delta) pairs, -128 meaning "no line".
    case linetable310
    /// 3.11+ `co_linetable`: the location table (varint entries with columns), in code units.
    case locationTable
  }

  /// What `co_filename`, `co_name` and friends are.
  package enum StringModel: Sendable, Equatable {
    /// 2.7: `str` objects (PyStringObject, `PythonLayout.bytesData`).
    case bytes27
    /// 3.x: PEP 393 `str` objects (PyASCIIObject / PyCompactUnicodeObject).
    case unicode
  }

  /// How to tell which thread holds the GIL.
  package enum GILModel: Sendable, Equatable {
    /// ≤3.6: the `_PyThreadState_Current` symbol holds the PyThreadState*.
    case tstateCurrentSymbol
    /// 3.7–3.11: `_PyRuntime.gilstate.tstate_current` (`PythonLayout.runtimeTstateCurrent`).
    case runtimeTstateCurrent
    /// 3.12+: the interpreter's `ceval.gil` points at a `_gil_runtime_state` whose `locked` and
    /// `last_holder` say it (`PythonLayout.interpCevalGil`, `gilLocked`, `gilLastHolder`).
    case interpreterGil
  }

  /// How to find the first PyInterpreterState.
  package enum InterpreterDiscovery: Sendable, Equatable {
    /// ≤3.6: the `interp_head` symbol.
    case interpHeadSymbol
    /// 3.7+: `_PyRuntime.interpreters.head` (`PythonLayout.runtimeInterpretersHead`).
    case runtimeSymbol
  }

  /// What the frame's instruction position counts.
  package enum InstructionAddressing: Sendable, Equatable {
    /// ≤3.9: `f_lasti` is a byte offset into `co_code`.
    case lastiByteOffset
    /// 3.10: `f_lasti` is an index in code units into `co_code`.
    case lastiCodeUnitIndex
    /// 3.11+: `prev_instr` / `instr_ptr` points into the code object's `co_code_adaptive`.
    case instructionPointer
  }

  /// Where an instance's attributes are when its type has `Py_TPFLAGS_MANAGED_DICT`.
  package enum ManagedDict: Sendable, Equatable {
    /// ≤3.10: no managed dicts; the dict is at `tp_dictoffset`.
    case none
    /// 3.11: a `PyDictValues *` at `object + valuesOffset` (−4 words) and a `PyDictObject *` at
    /// `object + dictOffset` (−3 words); the values pointer wins when not null.
    case valuesAndDictPointers(valuesOffset: Int, dictOffset: Int)
    /// 3.12: one word at `object + offset` (−3 words): with its low bit set it is a values pointer
    /// minus one, else a dict pointer.
    case taggedDictOrValues(offset: Int)
    /// 3.13+: a dict pointer at `object + dictOffset` (−3 words); when it is null and the type
    /// also has `Py_TPFLAGS_INLINE_VALUES`, the values live inline at `object + tp_basicsize`
    /// (which 3.13 requires to be sizeof(PyObject) for such types; 3.14 lifted that) as a
    /// `_PyDictValues`, valid while its `valid` byte (`PythonLayout.dictValuesValid`) is set.
    case dictPointerAndInlineValues(dictOffset: Int)
  }

  /// `tp_flags` bits.
  package struct TypeFlags: Sendable, Equatable {
    /// `Py_TPFLAGS_INT_SUBCLASS` (2.7 only).
    package var intSubclass: UInt64?
    package var longSubclass: UInt64 = 1 << 24
    package var listSubclass: UInt64 = 1 << 25
    package var tupleSubclass: UInt64 = 1 << 26
    /// `Py_TPFLAGS_BYTES_SUBCLASS`, or `Py_TPFLAGS_STRING_SUBCLASS` on 2.7 (same bit).
    package var bytesSubclass: UInt64 = 1 << 27
    package var unicodeSubclass: UInt64 = 1 << 28
    package var dictSubclass: UInt64 = 1 << 29
    /// `Py_TPFLAGS_MANAGED_DICT` (3.11+).
    package var managedDict: UInt64?
    /// `Py_TPFLAGS_INLINE_VALUES` (3.13+).
    package var inlineValues: UInt64?
  }

  /// The `PyASCIIObject.state` bitfields (3.x): `(state >> kindShift) & kindMask` is the character
  /// size in bytes (1, 2 or 4).
  package struct UnicodeState: Sendable, Equatable {
    package var internedShift = 0
    package var internedMask: UInt32 = 0x3
    package var kindShift = 2
    package var kindMask: UInt32 = 0x7
    package var compactShift = 5
    package var asciiShift = 6
  }

  package private(set) var major: Int
  package private(set) var minor: Int
  package let frameModel: FrameModel
  package let lineTable: LineTableKind
  package let stringModel: StringModel
  package let gilModel: GILModel
  package let interpreterDiscovery: InterpreterDiscovery
  package let instructionAddressing: InstructionAddressing
  /// How dict objects store their entries.
  package enum DictModel: Sendable, Equatable {
    /// 2.7: one open-addressing table of (hash, key, value) entries (`dict27Mask`, `dict27Table`).
    case table27
    /// 3.6+: a keys object (indices, then entries) and, for split dicts, a values array.
    case compact
  }
  package let dictModel: DictModel
  /// The attribute of a `threading.Thread` that holds its name: `_Thread__name` on 2.7 (a
  /// name-mangled private attribute), `_name` on 3.x.
  package let threadNameAttribute: String
  /// Whether code objects have `co_qualname` (3.11+).
  package let hasQualname: Bool
  /// The `_PyInterpreterFrame.owner` values of the interpreter's shim frames, which the walkers
  /// skip and whose caller they mark as entered from C: `FRAME_OWNED_BY_CSTACK` (3.12, 3.13),
  /// `FRAME_OWNED_BY_INTERPRETER` and `FRAME_OWNED_BY_CSTACK` (3.14), `FRAME_OWNED_BY_INTERPRETER`
  /// (3.15+, which also embeds one at the bottom of every thread's stack as its base frame). Empty
  /// before 3.12; 3.11 marks the first frame of each C-level evaluation with `is_entry` instead
  /// (`PythonLayout.iframeIsEntry`).
  package let shimFrameOwners: [UInt8]
  /// Whether every thread's whole frame chain ends in a shim (3.12+: the entry frame of its
  /// outermost evaluation, or 3.15's base frame).
  package var stacksEndInShim: Bool { !shimFrameOwners.isEmpty }
  /// `FRAME_OWNED_BY_GENERATOR` (3.11+): a generator's frame is shown even before its first
  /// traceable instruction.
  package let generatorFrameOwner: UInt8?
  /// The tag bits of a `_PyStackRef` (3.14+: `f_executable` and the local variables are tagged
  /// words, not plain pointers). Nil before.
  package struct StackRefTags: Sendable, Equatable {
    /// `Py_TAG_BITS`: the low bits that are not part of the object pointer.
    package var tagBits: UInt64
    /// `Py_INT_TAG`: the tag of a word that holds an integer (`bits >> 2`), not a pointer.
    package var intTag: UInt64
    /// How far a tagged int is shifted (`Py_TAGGED_SHIFT`).
    package var intShift: UInt64 = 2
  }
  package let stackRef: StackRefTags?
  /// Whether `_PyRuntime` starts with `_Py_DebugOffsets` (3.13+).
  package let hasDebugOffsets: Bool
  /// Whether `_PyInterpreterFrame.is_entry` exists (3.11 only).
  package let hasIsEntry: Bool
  /// Bytes per bytecode unit: 1 on 2.7 (instructions are 1 or 3 bytes), 2 (`_Py_CODEUNIT`) on 3.6+.
  package let codeUnitSize: Int
  /// Whether ints are `long_value.lv_tag` (sign and digit count) + digits (3.12+) rather than
  /// `ob_size` (signed digit count) + digits.
  package let longUsesLvTag: Bool
  /// Bits per PyLong digit (`PyLong_SHIFT`, 30 on 64-bit builds).
  package let longDigitBits: Int
  package let managedDict: ManagedDict
  package let typeFlags: TypeFlags
  /// Nil on 2.7 (no PEP 393 strings).
  package let unicodeState: UnicodeState?
  /// 2.7 `unicode` objects: bytes per Py_UNICODE unit (4 for the UCS4 builds Linux distributions
  /// and pyenv make; a narrow build would have 2). Nil on 3.x.
  package let unicode27UnitSize: Int?
  /// How a coroutine's or generator's own frame says where it stands (3.11+).
  package struct CoroutineStates: Sendable, Equatable {
    /// `gi_frame_state` values of a suspended coroutine.
    package var suspended: [Int8]
    /// `FRAME_EXECUTING`: the coroutine is running (its callees are on its thread's stack).
    package var executing: Int8
    /// How to tell a suspended coroutine that awaits something (whose awaited object is then on
    /// its frame's value stack) from one that yielded a value.
    package var awaiting: AwaitCheck
    /// Where the awaited object sits: this many slots below the frame's stack top (1, the top,
    /// until 3.14; 3.15 suspends an await with one more slot above it, as its `_PyGen_yf` reads
    /// `stackpointer[-2]`).
    package var awaitedSlot = 1
  }
  package enum AwaitCheck: Sendable, Equatable {
    /// 3.13+: this frame state (`FRAME_SUSPENDED_YIELD_FROM`; 3.15's `..._LOCKED` is only used by
    /// free-threaded builds, which Spyglass refuses).
    case states([Int8])
    /// 3.11/3.12: the instruction after the frame's last one is one of these `RESUME` opcodes
    /// with an oparg of 2 or more (resumed after `yield from` or `await`).
    case resumeOpcodes([UInt8])
  }
  package let coroutineStates: CoroutineStates?
  /// Where asyncio keeps the tasks of a process (3.11+).
  package enum TaskRegistry: Sendable, Equatable {
    /// 3.11: `asyncio.tasks._all_tasks`, a WeakSet of every task.
    case allTasksWeakSet
    /// 3.12/3.13: `asyncio.tasks._scheduled_tasks` (a WeakSet) and `_eager_tasks` (a set).
    case scheduledAndEager
    /// 3.14+: C tasks in a list per thread state (and one per interpreter for tasks of exited
    /// threads), the running task in the thread state; other tasks (the pure-Python asyncio,
    /// third-party task classes) in `_scheduled_tasks` and `_eager_tasks` as before.
    case threadLists
  }
  package let taskRegistry: TaskRegistry?
  /// How the interpreter's own C functions show in a native stack (`--native`).
  package struct NativeEvaluation: Sendable, Equatable {
    /// The functions that evaluate Python frames: each activation runs the Python frames from the
    /// innermost one it is running out to the first one entered from C (`SampledFrame.isEntry`),
    /// and is shown as those frames. 2.7 `PyEval_EvalFrameEx` (one Python frame per activation,
    /// as on every version before 3.11), 3.x `_PyEval_EvalFrameDefault`.
    package var evalFunctions: [String]
    /// Name prefixes of functions that are part of an evaluation without being one: 3.14+ builds
    /// with the tail-calling interpreter run each instruction in its own `_TAIL_CALL_*` function,
    /// one of which sits above the `_PyEval_EvalFrameDefault` it belongs to.
    package var evalHelperPrefixes: [String]
  }
  package let nativeEvaluation: NativeEvaluation
  /// The generated offset table of this version.
  package let layout: PythonLayout

  /// The traits of a supported minor version (`supportedVersions`); nil for any other, which
  /// callers report as an unsupported version.
  package init?(version: PythonVersion) {
    self.init(major: version.major, minor: version.minor)
  }

  /// The traits of the newest supported version, for a newer 3.x target whose `_Py_DebugOffsets`
  /// has the newest known shape (`DebugOffsets` checks that): its struct offsets then come from
  /// the target's own table, and the semantics are assumed unchanged. `version` is recorded.
  package init?(assumingNewestFor version: PythonVersion) {
    guard let newest = Self.supportedVersions.last, (version.major, version.minor) > newest,
      let traits = PythonTraits(major: newest.major, minor: newest.minor)
    else { return nil }
    self = traits
    self.major = version.major
    self.minor = version.minor
  }

  package init?(major: Int, minor: Int) {
    guard let layout = PythonLayout.generated(major: major, minor: minor) else { return nil }
    let v = (major, minor)
    func atLeast(_ m: Int, _ n: Int) -> Bool { v >= (m, n) }
    self.major = major
    self.minor = minor
    self.layout = layout

    frameModel =
      !atLeast(3, 11)
      ? .frameObject : !atLeast(3, 13) ? .interpreterFrameViaCFrame : .interpreterFrame
    lineTable = major == 2 ? .lnotab27 : !atLeast(3, 10) ? .lnotab : !atLeast(3, 11) ? .linetable310 : .locationTable
    stringModel = major == 2 ? .bytes27 : .unicode
    gilModel =
      !atLeast(3, 7)
      ? .tstateCurrentSymbol : !atLeast(3, 12) ? .runtimeTstateCurrent : .interpreterGil
    interpreterDiscovery = !atLeast(3, 7) ? .interpHeadSymbol : .runtimeSymbol
    instructionAddressing =
      !atLeast(3, 10)
      ? .lastiByteOffset : !atLeast(3, 11) ? .lastiCodeUnitIndex : .instructionPointer
    hasQualname = atLeast(3, 11)
    dictModel = major == 2 ? .table27 : .compact
    threadNameAttribute = major == 2 ? "_Thread__name" : "_name"
    shimFrameOwners = !atLeast(3, 12) ? [] : !atLeast(3, 14) ? [3] : v == (3, 14) ? [3, 4] : [3]
    generatorFrameOwner = atLeast(3, 11) ? 1 : nil
    hasDebugOffsets = atLeast(3, 13)
    stackRef = atLeast(3, 14) ? StackRefTags(tagBits: 3, intTag: 3) : nil
    hasIsEntry = v == (3, 11)
    nativeEvaluation = NativeEvaluation(
      evalFunctions: major == 2 ? ["PyEval_EvalFrameEx"] : ["_PyEval_EvalFrameDefault"],
      evalHelperPrefixes: atLeast(3, 14) ? ["_TAIL_CALL_"] : [])
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
      managedDict = .dictPointerAndInlineValues(dictOffset: -3 * word)
    }

    var flags = TypeFlags()
    if major == 2 { flags.intSubclass = 1 << 23 }
    if atLeast(3, 11) { flags.managedDict = 1 << 4 }
    if atLeast(3, 13) { flags.inlineValues = 1 << 2 }
    typeFlags = flags

    unicodeState = major == 2 ? nil : UnicodeState()
    unicode27UnitSize = major == 2 ? 4 : nil

    switch v {
    case (3, 11):
      coroutineStates = CoroutineStates(suspended: [-1], executing: 0, awaiting: .resumeOpcodes([151, 150]))
    case (3, 12):
      coroutineStates = CoroutineStates(suspended: [-1], executing: 0, awaiting: .resumeOpcodes([151, 240]))
    case (3, 13), (3, 14):
      coroutineStates = CoroutineStates(suspended: [-2, -1], executing: 0, awaiting: .states([-1]))
    case _ where atLeast(3, 15):
      coroutineStates = CoroutineStates(suspended: [1, 2, 3], executing: 4, awaiting: .states([2]), awaitedSlot: 2)
    default: coroutineStates = nil
    }
    taskRegistry =
      !atLeast(3, 11) ? nil : v == (3, 11) ? .allTasksWeakSet : !atLeast(3, 14) ? .scheduledAndEager : .threadLists
  }

  /// The generated offset table for `version`'s minor version, or nil when it is not supported.
  package static func layout(for version: PythonVersion) -> PythonLayout? {
    PythonLayout.generated(major: version.major, minor: version.minor)
  }

  /// The minor versions Spyglass supports, oldest first: those with generated tables (and so
  /// traits). The one list: messages, `--help` and the tests' interpreter matrix derive from it.
  package static let supportedVersions: [(major: Int, minor: Int)] = PythonLayout.generatedVersions

  /// The newest supported version (x.y.255, so every micro version of it counts as supported).
  package static var newestSupported: PythonVersion {
    let newest = supportedVersions.last ?? (3, 0)
    return PythonVersion(major: newest.major, minor: newest.minor, micro: 255)
  }

  /// "2.7 and 3.6 to 3.15": the supported versions as a phrase for messages and `--help`.
  package static var supportedVersionsDescription: String {
    var runs: [(first: (Int, Int), last: (Int, Int))] = []
    for version in supportedVersions {
      if let last = runs.last?.last, last.0 == version.major, last.1 + 1 == version.minor {
        runs[runs.count - 1].last = version
      } else {
        runs.append((version, version))
      }
    }
    let parts = runs.map { run in
      run.first == run.last
        ? "\(run.first.0).\(run.first.1)" : "\(run.first.0).\(run.first.1) to \(run.last.0).\(run.last.1)"
    }
    return parts.count <= 1
      ? parts.joined() : parts.dropLast().joined(separator: ", ") + " and " + parts[parts.count - 1]
  }
}
