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

package struct PythonLayout: Sendable, Equatable, Hashable {
  /// Marks a member that this version does not have.
  package static let absent = -1

  // .. _PyRuntimeState (3.7+) .............................................
  /// `_PyRuntime.interpreters.head`.
  package var runtimeInterpretersHead = absent
  /// `_PyRuntime.gilstate.tstate_current` (3.7–3.11): the PyThreadState* holding the GIL.
  package var runtimeTstateCurrent = absent

  // .. PyInterpreterState ..................................................
  package var interpNext = absent
  /// `id` (3.7+, an int64).
  package var interpID = absent
  /// `tstate_head` (≤3.10) or `threads.head` (3.11+).
  package var interpThreadsHead = absent
  /// `modules` (≤3.11) or `imports.modules` (3.12+): the sys.modules dict.
  package var interpModules = absent
  /// `ceval.gil` (3.12+): pointer to the interpreter's `_gil_runtime_state`.
  package var interpCevalGil = absent
  /// `_gil` (3.12+): the interpreter's own embedded `_gil_runtime_state` (used when it owns its GIL).
  package var interpGilRuntimeState = absent
  /// sizeof(PyInterpreterState).
  package var interpSize = absent

  // .. struct _gil_runtime_state (3.7+) ....................................
  package var gilLastHolder = absent
  package var gilLocked = absent

  // .. PyThreadState ........................................................
  /// `prev` (3.x).
  package var tstatePrev = absent
  package var tstateNext = absent
  package var tstateInterp = absent
  /// `frame` (≤3.10, a PyFrameObject*), `cframe` (3.11/3.12, a _PyCFrame*) or `current_frame`
  /// (3.13+, a _PyInterpreterFrame*).
  package var tstateFrame = absent
  /// `_PyCFrame.current_frame` (3.11/3.12).
  package var cframeCurrentFrame = absent
  /// `thread_id`: the pthread_t of the thread.
  package var tstateThreadID = absent
  /// `native_thread_id` (3.11+): the OS thread id.
  package var tstateNativeThreadID = absent
  /// `datastack_chunk`, `datastack_top`, `datastack_limit` (3.11+).
  package var tstateDatastackChunk = absent
  package var tstateDatastackTop = absent
  package var tstateDatastackLimit = absent
  /// sizeof(PyThreadState).
  package var tstateSize = absent

  // .. _PyStackChunk (3.11+) ...............................................
  package var stackChunkPrevious = absent
  package var stackChunkSize = absent
  package var stackChunkTop = absent
  package var stackChunkData = absent

  // .. PyFrameObject (≤3.10) ................................................
  package var frameBack = absent
  package var frameCode = absent
  /// `f_lasti` (an int: a byte offset ≤3.9, a code-unit index in 3.10).
  package var frameLasti = absent
  /// `f_lineno` (an int).
  package var frameLineno = absent
  package var frameLocalsplus = absent

  // .. _PyInterpreterFrame (3.11+) ...........................................
  /// `f_code` (3.11/3.12) or `f_executable` (3.13+).
  package var iframeCode = absent
  package var iframePrevious = absent
  /// `prev_instr` (3.11/3.12) or `instr_ptr` (3.13+).
  package var iframeInstrPtr = absent
  /// `owner` (a char).
  package var iframeOwner = absent
  /// `is_entry` (3.11 only, a bool).
  package var iframeIsEntry = absent
  package var iframeLocalsplus = absent
  /// sizeof(_PyInterpreterFrame).
  package var iframeSize = absent

  // .. PyCodeObject ...........................................................
  package var codeArgcount = absent
  package var codePosonlyargcount = absent
  package var codeKwonlyargcount = absent
  package var codeNlocals = absent
  package var codeFlags = absent
  package var codeFirstlineno = absent
  /// `co_code` (≤3.10): the bytecode bytes object.
  package var codeCode = absent
  /// `co_varnames` (≤3.10) or `co_localsplusnames` (3.11+): a tuple of names.
  package var codeVarnames = absent
  /// `co_localspluskinds` (3.11+): a bytes object of kinds.
  package var codeLocalspluskinds = absent
  /// `co_cellvars` and `co_freevars` (≤3.10): tuples of the names of the cells after the fast
  /// locals in `f_localsplus` (3.11+ names them in `co_localsplusnames`).
  package var codeCellvars = absent
  package var codeFreevars = absent
  package var codeFilename = absent
  package var codeName = absent
  /// `co_qualname` (3.11+).
  package var codeQualname = absent
  /// `co_lnotab` (≤3.9) or `co_linetable` (3.10+): a bytes object.
  package var codeLinetable = absent
  /// `_co_firsttraceable` (3.11+): the first instruction that is not a RESUME/prologue.
  package var codeFirstTraceable = absent
  /// `co_code_adaptive` (3.11+): the inline bytecode.
  package var codeCodeAdaptive = absent
  /// sizeof(PyCodeObject).
  package var codeSize = absent

  // .. PyObject / PyVarObject / PyTypeObject ...............................
  package var objectType = absent
  package var varObjectSize = absent
  package var typeName = absent
  package var typeBasicSize = absent
  package var typeFlags = absent
  package var typeDictOffset = absent
  /// `PyHeapTypeObject.ht_cached_keys` (3.11+; the shared keys of inline/managed values).
  package var heapTypeCachedKeys = absent

  // .. builtin objects .........................................................
  package var tupleItems = absent
  package var listItems = absent
  /// `PyBytesObject.ob_sval` (`PyStringObject.ob_sval` on 2.7).
  package var bytesData = absent
  package var floatValue = absent
  /// `PyLongObject.ob_digit` (≤3.11) or `long_value.ob_digit` (3.12+).
  package var longDigits = absent
  /// `long_value.lv_tag` (3.12+).
  package var longTag = absent
  /// `PyIntObject.ob_ival` (2.7).
  package var intValue = absent
  /// `PyModuleObject.md_dict`.
  package var moduleDict = absent

  // .. str (3.3+ PEP 393) ..........................................................
  /// `PyASCIIObject.length` (3.x); `PyUnicodeObject.length` on 2.7 (code units of `unicode27Data`).
  package var unicodeLength = absent
  package var unicodeState = absent
  /// sizeof(PyASCIIObject): where compact ASCII data starts.
  package var asciiObjectSize = absent
  /// sizeof(PyCompactUnicodeObject): where compact non-ASCII data starts.
  package var compactUnicodeObjectSize = absent
  /// `PyUnicodeObject.data` (non-compact strings).
  package var unicodeData = absent
  /// `PyUnicodeObject.str` / `length` (2.7 unicode, UCS4 build): pointer to Py_UNICODE data.
  package var unicode27Data = absent

  // .. dict ....................................................................
  package var dictUsed = absent
  package var dictKeys = absent
  package var dictValues = absent
  /// `dk_size` (3.6–3.10, a Py_ssize_t) or `dk_log2_size` (3.11+, a uint8).
  package var dictKeysSize = absent
  /// `dk_log2_index_bytes` (3.11+, a uint8).
  package var dictKeysLog2IndexBytes = absent
  /// `dk_kind` (3.11+, a uint8: 0 general, else unicode entries).
  package var dictKeysKind = absent
  package var dictKeysNentries = absent
  /// `dk_indices` (3.6–3.10 offset of the index table; 3.11+ sizeof(PyDictKeysObject)).
  package var dictKeysIndices = absent
  /// sizeof(PyDictKeyEntry) (hash, key, value).
  package var dictKeyEntrySize = absent
  /// sizeof(PyDictUnicodeEntry) (key, value; 3.11+).
  package var dictUnicodeEntrySize = absent
  /// `_PyDictValues.values` (3.13+; 0 before, where ma_values points at the array).
  package var dictValuesValues = absent
  /// `_PyDictValues.valid` (3.13+, a uint8): whether inline values still hold the attributes.
  package var dictValuesValid = absent
  /// 2.7 dicts: `ma_mask` and `ma_table` (entries of hash, key, value).
  package var dict27Mask = absent
  package var dict27Table = absent

  // .. set / frozenset ...........................................................
  /// `PySetObject.used`, `mask`, `table`.
  package var setUsed = absent
  package var setMask = absent
  package var setTable = absent
  /// `setentry.key` and sizeof(setentry) (2.7 puts the hash first, 3.x the key).
  package var setEntryKey = absent
  package var setEntrySize = absent

  package init() {}
}
