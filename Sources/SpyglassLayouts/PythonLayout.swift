//===--- PythonLayout.swift - where CPython keeps what the walkers read ---===//
//
// Byte offsets (x86_64 / 64-bit Linux) of every struct member Spyglass reads, for one CPython minor
// version. Pure data: the values for 2.7 and 3.6–3.13 are generated from the headers that ship with
// the interpreters (tools/generate-layouts.py → Generated/PythonLayouts.generated.swift); 3.13+ can
// also be built from the target's own `_Py_DebugOffsets` (DebugOffsets.swift).
//
// `PythonLayout.absent` (-1) marks a member the version does not have.
//
//===----------------------------------------------------------------------===//

public struct PythonLayout: Sendable, Equatable, Hashable {
  /// Marks a member that this version does not have.
  public static let absent = -1

  // .. _PyRuntimeState (3.7+) .............................................
  /// `_PyRuntime.interpreters.head`.
  public var runtimeInterpretersHead = absent
  /// `_PyRuntime.gilstate.tstate_current` (3.7–3.11): the PyThreadState* holding the GIL.
  public var runtimeTstateCurrent = absent

  // .. PyInterpreterState ..................................................
  public var interpNext = absent
  /// `id` (3.7+, an int64).
  public var interpID = absent
  /// `tstate_head` (≤3.10) or `threads.head` (3.11+).
  public var interpThreadsHead = absent
  /// `modules` (≤3.11) or `imports.modules` (3.12+): the sys.modules dict.
  public var interpModules = absent
  /// `ceval.gil` (3.12+): pointer to the interpreter's `_gil_runtime_state`.
  public var interpCevalGil = absent
  /// `_gil` (3.12+): the interpreter's own embedded `_gil_runtime_state` (used when it owns its GIL).
  public var interpGilRuntimeState = absent
  /// sizeof(PyInterpreterState).
  public var interpSize = absent

  // .. struct _gil_runtime_state (3.7+) ....................................
  public var gilLastHolder = absent
  public var gilLocked = absent

  // .. PyThreadState ........................................................
  /// `prev` (3.x).
  public var tstatePrev = absent
  public var tstateNext = absent
  public var tstateInterp = absent
  /// `frame` (≤3.10, a PyFrameObject*), `cframe` (3.11/3.12, a _PyCFrame*) or `current_frame`
  /// (3.13+, a _PyInterpreterFrame*).
  public var tstateFrame = absent
  /// `_PyCFrame.current_frame` (3.11/3.12).
  public var cframeCurrentFrame = absent
  /// `thread_id`: the pthread_t of the thread.
  public var tstateThreadID = absent
  /// `native_thread_id` (3.11+): the OS thread id.
  public var tstateNativeThreadID = absent
  /// `datastack_chunk`, `datastack_top`, `datastack_limit` (3.11+).
  public var tstateDatastackChunk = absent
  public var tstateDatastackTop = absent
  public var tstateDatastackLimit = absent
  /// sizeof(PyThreadState).
  public var tstateSize = absent

  // .. _PyStackChunk (3.11+) ...............................................
  public var stackChunkPrevious = absent
  public var stackChunkSize = absent
  public var stackChunkTop = absent
  public var stackChunkData = absent

  // .. PyFrameObject (≤3.10) ................................................
  public var frameBack = absent
  public var frameCode = absent
  /// `f_lasti` (an int: a byte offset ≤3.9, a code-unit index in 3.10).
  public var frameLasti = absent
  /// `f_lineno` (an int).
  public var frameLineno = absent
  public var frameLocalsplus = absent

  // .. _PyInterpreterFrame (3.11+) ...........................................
  /// `f_code` (3.11/3.12) or `f_executable` (3.13+).
  public var iframeCode = absent
  public var iframePrevious = absent
  /// `prev_instr` (3.11/3.12) or `instr_ptr` (3.13+).
  public var iframeInstrPtr = absent
  /// `owner` (a char).
  public var iframeOwner = absent
  /// `is_entry` (3.11 only, a bool).
  public var iframeIsEntry = absent
  public var iframeLocalsplus = absent
  /// sizeof(_PyInterpreterFrame).
  public var iframeSize = absent

  // .. PyCodeObject ...........................................................
  public var codeArgcount = absent
  public var codePosonlyargcount = absent
  public var codeKwonlyargcount = absent
  public var codeNlocals = absent
  public var codeFlags = absent
  public var codeFirstlineno = absent
  /// `co_code` (≤3.10): the bytecode bytes object.
  public var codeCode = absent
  /// `co_varnames` (≤3.10) or `co_localsplusnames` (3.11+): a tuple of names.
  public var codeVarnames = absent
  /// `co_localspluskinds` (3.11+): a bytes object of kinds.
  public var codeLocalspluskinds = absent
  /// `co_cellvars` and `co_freevars` (≤3.10): tuples of the names of the cells after the fast
  /// locals in `f_localsplus` (3.11+ names them in `co_localsplusnames`).
  public var codeCellvars = absent
  public var codeFreevars = absent
  public var codeFilename = absent
  public var codeName = absent
  /// `co_qualname` (3.11+).
  public var codeQualname = absent
  /// `co_lnotab` (≤3.9) or `co_linetable` (3.10+): a bytes object.
  public var codeLinetable = absent
  /// `_co_firsttraceable` (3.11+): the first instruction that is not a RESUME/prologue.
  public var codeFirstTraceable = absent
  /// `co_code_adaptive` (3.11+): the inline bytecode.
  public var codeCodeAdaptive = absent
  /// sizeof(PyCodeObject).
  public var codeSize = absent

  // .. PyObject / PyVarObject / PyTypeObject ...............................
  public var objectType = absent
  public var varObjectSize = absent
  public var typeName = absent
  public var typeBasicSize = absent
  public var typeFlags = absent
  public var typeDictOffset = absent
  /// `PyHeapTypeObject.ht_cached_keys` (3.11+; the shared keys of inline/managed values).
  public var heapTypeCachedKeys = absent

  // .. builtin objects .........................................................
  public var tupleItems = absent
  public var listItems = absent
  /// `PyBytesObject.ob_sval` (`PyStringObject.ob_sval` on 2.7).
  public var bytesData = absent
  public var floatValue = absent
  /// `PyLongObject.ob_digit` (≤3.11) or `long_value.ob_digit` (3.12+).
  public var longDigits = absent
  /// `long_value.lv_tag` (3.12+).
  public var longTag = absent
  /// `PyIntObject.ob_ival` (2.7).
  public var intValue = absent
  /// `PyModuleObject.md_dict`.
  public var moduleDict = absent

  // .. str (3.3+ PEP 393) ..........................................................
  /// `PyASCIIObject.length` (3.x); `PyUnicodeObject.length` on 2.7 (code units of `unicode27Data`).
  public var unicodeLength = absent
  public var unicodeState = absent
  /// sizeof(PyASCIIObject): where compact ASCII data starts.
  public var asciiObjectSize = absent
  /// sizeof(PyCompactUnicodeObject): where compact non-ASCII data starts.
  public var compactUnicodeObjectSize = absent
  /// `PyUnicodeObject.data` (non-compact strings).
  public var unicodeData = absent
  /// `PyUnicodeObject.str` / `length` (2.7 unicode, UCS4 build): pointer to Py_UNICODE data.
  public var unicode27Data = absent

  // .. dict ....................................................................
  public var dictUsed = absent
  public var dictKeys = absent
  public var dictValues = absent
  /// `dk_size` (3.6–3.10, a Py_ssize_t) or `dk_log2_size` (3.11+, a uint8).
  public var dictKeysSize = absent
  /// `dk_log2_index_bytes` (3.11+, a uint8).
  public var dictKeysLog2IndexBytes = absent
  /// `dk_kind` (3.11+, a uint8: 0 general, else unicode entries).
  public var dictKeysKind = absent
  public var dictKeysNentries = absent
  /// `dk_indices` (3.6–3.10 offset of the index table; 3.11+ sizeof(PyDictKeysObject)).
  public var dictKeysIndices = absent
  /// sizeof(PyDictKeyEntry) (hash, key, value).
  public var dictKeyEntrySize = absent
  /// sizeof(PyDictUnicodeEntry) (key, value; 3.11+).
  public var dictUnicodeEntrySize = absent
  /// `_PyDictValues.values` (3.13+; 0 before, where ma_values points at the array).
  public var dictValuesValues = absent
  /// `_PyDictValues.valid` (3.13+, a uint8): whether inline values still hold the attributes.
  public var dictValuesValid = absent
  /// 2.7 dicts: `ma_mask` and `ma_table` (entries of hash, key, value).
  public var dict27Mask = absent
  public var dict27Table = absent

  // .. set / frozenset ...........................................................
  /// `PySetObject.used`, `mask`, `table`.
  public var setUsed = absent
  public var setMask = absent
  public var setTable = absent
  /// `setentry.key` and sizeof(setentry) (2.7 puts the hash first, 3.x the key).
  public var setEntryKey = absent
  public var setEntrySize = absent

  public init() {}
}
