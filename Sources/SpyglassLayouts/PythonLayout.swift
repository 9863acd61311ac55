//===--- PythonLayout.swift - where CPython keeps what the walkers read ---===//
//
// Byte offsets (x86_64 / 64-bit Linux) of every struct member Spyglass reads, for one CPython minor
// version. Pure data: the values for 2.7 and 3.6–3.13 are generated from the headers that ship with
// the interpreters (tools/generate-layouts.py → Generated/PythonLayouts.generated.swift); 3.13+ can
// also be built from the target's own `_Py_DebugOffsets` (DebugOffsets.swift).
//
// A member the version does not have is nil: readers resolve the members they need once, when
// they are made (StackWalker), or at the point of use (`Optional<Int>.member(_:)` in
// SpyglassStacks), so an absent member is an error that names it, never an offset of -1 in
// arithmetic.
//
//===----------------------------------------------------------------------===//

package struct PythonLayout: Sendable, Equatable, Hashable {
  // .. _PyRuntimeState (3.7+) .............................................
  /// `_PyRuntime.interpreters.head`.
  package var runtimeInterpretersHead: Int?
  /// `_PyRuntime.gilstate.tstate_current` (3.7–3.11): the PyThreadState* holding the GIL.
  package var runtimeTstateCurrent: Int?

  // .. PyInterpreterState ..................................................
  package var interpNext: Int?
  /// `id` (3.7+, an int64).
  package var interpID: Int?
  /// `tstate_head` (≤3.10) or `threads.head` (3.11+).
  package var interpThreadsHead: Int?
  /// `modules` (≤3.11) or `imports.modules` (3.12+): the sys.modules dict.
  package var interpModules: Int?
  /// `ceval.gil` (3.12+): pointer to the interpreter's `_gil_runtime_state`.
  package var interpCevalGil: Int?
  /// `_gil` (3.12+): the interpreter's own embedded `_gil_runtime_state` (used when it owns its GIL).
  package var interpGilRuntimeState: Int?
  /// sizeof(PyInterpreterState).
  package var interpSize: Int?

  // .. struct _gil_runtime_state (3.7+) ....................................
  package var gilLastHolder: Int?
  package var gilLocked: Int?

  // .. PyThreadState ........................................................
  /// `prev` (3.x).
  package var tstatePrev: Int?
  package var tstateNext: Int?
  package var tstateInterp: Int?
  /// `frame` (≤3.10, a PyFrameObject*), `cframe` (3.11/3.12, a _PyCFrame*) or `current_frame`
  /// (3.13+, a _PyInterpreterFrame*).
  package var tstateFrame: Int?
  /// `_PyCFrame.current_frame` (3.11/3.12).
  package var cframeCurrentFrame: Int?
  /// `thread_id`: the pthread_t of the thread.
  package var tstateThreadID: Int?
  /// `native_thread_id` (3.11+): the OS thread id.
  package var tstateNativeThreadID: Int?
  /// `datastack_chunk`, `datastack_top`, `datastack_limit` (3.11+).
  package var tstateDatastackChunk: Int?
  package var tstateDatastackTop: Int?
  package var tstateDatastackLimit: Int?
  /// sizeof(PyThreadState).
  package var tstateSize: Int?

  // .. _PyStackChunk (3.11+) ...............................................
  package var stackChunkPrevious: Int?
  package var stackChunkSize: Int?
  package var stackChunkTop: Int?
  package var stackChunkData: Int?

  // .. PyFrameObject (≤3.10) ................................................
  package var frameBack: Int?
  package var frameCode: Int?
  /// `f_lasti` (an int: a byte offset ≤3.9, a code-unit index in 3.10).
  package var frameLasti: Int?
  /// `f_lineno` (an int).
  package var frameLineno: Int?
  package var frameLocalsplus: Int?

  // .. _PyInterpreterFrame (3.11+) ...........................................
  /// `f_code` (3.11/3.12) or `f_executable` (3.13+).
  package var iframeCode: Int?
  package var iframePrevious: Int?
  /// `prev_instr` (3.11/3.12) or `instr_ptr` (3.13+).
  package var iframeInstrPtr: Int?
  /// `owner` (a char).
  package var iframeOwner: Int?
  /// `is_entry` (3.11 only, a bool).
  package var iframeIsEntry: Int?
  package var iframeLocalsplus: Int?
  /// sizeof(_PyInterpreterFrame).
  package var iframeSize: Int?

  // .. PyCodeObject ...........................................................
  package var codeArgcount: Int?
  package var codePosonlyargcount: Int?
  package var codeKwonlyargcount: Int?
  package var codeNlocals: Int?
  package var codeFlags: Int?
  package var codeFirstlineno: Int?
  /// `co_code` (≤3.10): the bytecode bytes object.
  package var codeCode: Int?
  /// `co_varnames` (≤3.10) or `co_localsplusnames` (3.11+): a tuple of names.
  package var codeVarnames: Int?
  /// `co_localspluskinds` (3.11+): a bytes object of kinds.
  package var codeLocalspluskinds: Int?
  /// `co_cellvars` and `co_freevars` (≤3.10): tuples of the names of the cells after the fast
  /// locals in `f_localsplus` (3.11+ names them in `co_localsplusnames`).
  package var codeCellvars: Int?
  package var codeFreevars: Int?
  package var codeFilename: Int?
  package var codeName: Int?
  /// `co_qualname` (3.11+).
  package var codeQualname: Int?
  /// `co_lnotab` (≤3.9) or `co_linetable` (3.10+): a bytes object.
  package var codeLinetable: Int?
  /// `_co_firsttraceable` (3.11+): the first instruction that is not a RESUME/prologue.
  package var codeFirstTraceable: Int?
  /// `co_code_adaptive` (3.11+): the inline bytecode.
  package var codeCodeAdaptive: Int?
  /// sizeof(PyCodeObject).
  package var codeSize: Int?

  // .. PyObject / PyVarObject / PyTypeObject ...............................
  package var objectType: Int?
  package var varObjectSize: Int?
  package var typeName: Int?
  package var typeBasicSize: Int?
  package var typeFlags: Int?
  package var typeDictOffset: Int?
  /// `PyHeapTypeObject.ht_cached_keys` (3.11+; the shared keys of inline/managed values).
  package var heapTypeCachedKeys: Int?

  // .. builtin objects .........................................................
  package var tupleItems: Int?
  package var listItems: Int?
  /// `PyBytesObject.ob_sval` (`PyStringObject.ob_sval` on 2.7).
  package var bytesData: Int?
  package var floatValue: Int?
  /// `PyLongObject.ob_digit` (≤3.11) or `long_value.ob_digit` (3.12+).
  package var longDigits: Int?
  /// `long_value.lv_tag` (3.12+).
  package var longTag: Int?
  /// `PyIntObject.ob_ival` (2.7).
  package var intValue: Int?
  /// `PyModuleObject.md_dict`.
  package var moduleDict: Int?

  // .. str (3.3+ PEP 393) ..........................................................
  /// `PyASCIIObject.length` (3.x); `PyUnicodeObject.length` on 2.7 (code units of `unicode27Data`).
  package var unicodeLength: Int?
  package var unicodeState: Int?
  /// sizeof(PyASCIIObject): where compact ASCII data starts.
  package var asciiObjectSize: Int?
  /// sizeof(PyCompactUnicodeObject): where compact non-ASCII data starts.
  package var compactUnicodeObjectSize: Int?
  /// `PyUnicodeObject.data` (non-compact strings).
  package var unicodeData: Int?
  /// `PyUnicodeObject.str` / `length` (2.7 unicode, UCS4 build): pointer to Py_UNICODE data.
  package var unicode27Data: Int?

  // .. dict ....................................................................
  package var dictUsed: Int?
  package var dictKeys: Int?
  package var dictValues: Int?
  /// `dk_size` (3.6–3.10, a Py_ssize_t) or `dk_log2_size` (3.11+, a uint8).
  package var dictKeysSize: Int?
  /// `dk_log2_index_bytes` (3.11+, a uint8).
  package var dictKeysLog2IndexBytes: Int?
  /// `dk_kind` (3.11+, a uint8: 0 general, else unicode entries).
  package var dictKeysKind: Int?
  package var dictKeysNentries: Int?
  /// `dk_indices` (3.6–3.10 offset of the index table; 3.11+ sizeof(PyDictKeysObject)).
  package var dictKeysIndices: Int?
  /// sizeof(PyDictKeyEntry) (hash, key, value).
  package var dictKeyEntrySize: Int?
  /// sizeof(PyDictUnicodeEntry) (key, value; 3.11+).
  package var dictUnicodeEntrySize: Int?
  /// `_PyDictValues.values` (3.13+; 0 before, where ma_values points at the array).
  package var dictValuesValues: Int?
  /// `_PyDictValues.valid` (3.13+, a uint8): whether inline values still hold the attributes.
  package var dictValuesValid: Int?
  /// 2.7 dicts: `ma_mask` and `ma_table` (entries of hash, key, value).
  package var dict27Mask: Int?
  package var dict27Table: Int?

  // .. set / frozenset ...........................................................
  /// `PySetObject.used`, `mask`, `table`.
  package var setUsed: Int?
  package var setMask: Int?
  package var setTable: Int?
  /// `setentry.key` and sizeof(setentry) (2.7 puts the hash first, 3.x the key).
  package var setEntryKey: Int?
  package var setEntrySize: Int?

  // .. coroutines and generators (3.11+) .....................................
  /// `PyGenObject.gi_iframe`: the generator's own `_PyInterpreterFrame`, embedded in it.
  package var genIframe: Int?
  /// `PyGenObject.gi_frame_state` (an int8: created, suspended, executing, cleared...).
  package var genFrameState: Int?
  /// `_PyInterpreterFrame.stacktop` (3.11–3.13, an int: the value stack's depth past localsplus).
  package var iframeStacktop: Int?
  /// `_PyInterpreterFrame.stackpointer` (3.14+, a `_PyStackRef *` one past the stack's top).
  package var iframeStackpointer: Int?

  // .. weak references, methods, types ..........................................
  /// `PyWeakReference.wr_object`.
  package var weakrefObject: Int?
  /// `PyMethodObject.im_self` (a bound method's instance).
  package var methodSelf: Int?
  /// `PyTypeObject.tp_base`.
  package var typeBase: Int?

  // .. asyncio ....................................................................
  /// `_PyThreadStateImpl.asyncio_running_loop`, `asyncio_running_task` and `asyncio_tasks_head`
  /// (3.14+: the loop and task a thread runs, and the list of the tasks it made).
  package var tstateAsyncioRunningLoop: Int?
  package var tstateAsyncioRunningTask: Int?
  package var tstateAsyncioTasksHead: Int?
  /// `PyInterpreterState.asyncio_tasks_head` (3.14+: tasks of threads that have exited).
  package var interpAsyncioTasksHead: Int?
  /// `_asyncio`'s C future and task (Modules/_asynciomodule.c): `fut_loop`, `fut_callback0`,
  /// `fut_callbacks`, `fut_state`, `fut_awaited_by` and `fut_awaited_by_is_set` (3.14+).
  package var futureLoop: Int?
  package var futureCallback0: Int?
  package var futureCallbacks: Int?
  package var futureState: Int?
  package var futureAwaitedBy: Int?
  package var futureAwaitedByIsSet: Int?
  /// `task_fut_waiter`, `task_coro`, `task_name`, `task_node` (3.14+, a `struct llist_node`).
  package var taskFutWaiter: Int?
  package var taskCoro: Int?
  package var taskName: Int?
  package var taskNode: Int?
  /// sizeof(TaskObj).
  package var taskObjectSize: Int?
  /// `FutureIter.future`: the future an `await fut` waits on.
  package var futureIterFuture: Int?

  package init() {}
}
