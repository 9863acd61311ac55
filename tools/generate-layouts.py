#!/usr/bin/env python3
"""Generate Sources/SpyglassLayouts/Generated/PythonLayouts.generated.swift.

For every supported CPython minor version this finds the pyenv-installed interpreter, writes a small C
program that includes that version's public headers plus its internal headers (with Py_BUILD_CORE),
prints offsetof()/sizeof() for every field of PythonLayout (Sources/SpyglassLayouts/PythonLayout.swift)
that the version has, compiles it with `gcc -I<include dir>`, runs it, and emits Swift.

It also emits, per version:
  * HeaderConstants: macro and enum values the walkers rely on (PyLong_SHIFT, Py_TPFLAGS_* bits,
    FRAME_OWNED_BY_CSTACK, the managed-dict offsets, the bit positions inside PyASCIIObject.state),
    so the hand-written PythonTraits can be tested against the headers;
  * DebugOffsetsTable (3.13+): the offsets of the members of `_Py_DebugOffsets` itself, i.e. the
    description of the table at the start of `_PyRuntime` for that minor version.

A few structs are not in any installed header (they live in a .c file of that version); those values
are written into the rules below by hand with the reason, and re-measured from the DWARF debug info
of that version's libpython with gdb (when gdb is available). When gdb is available every header
value is also cross-checked against DWARF.

Usage:
  python3 tools/generate-layouts.py            # regenerate the Swift file
  python3 tools/generate-layouts.py --check    # regenerate in memory; exit 1 with a diff if the
                                               # committed file differs or a version is missing
Options: --pyenv-root DIR (default: $PYENV_ROOT, `pyenv root`, ~/.pyenv), --no-dwarf.
"""

import argparse
import difflib
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.dirname(HERE)
LAYOUT_SWIFT = os.path.join(PACKAGE, "Sources/SpyglassLayouts/PythonLayout.swift")
TRAITS_SWIFT = os.path.join(PACKAGE, "Sources/SpyglassLayouts/VersionTraits.swift")
DEBUG_SWIFT = os.path.join(PACKAGE, "Sources/SpyglassLayouts/DebugOffsets.swift")
OUTPUT = os.path.join(PACKAGE, "Sources/SpyglassLayouts/Generated/PythonLayouts.generated.swift")
GENERATOR_PATH = "tools/generate-layouts.py"

# The minor versions Spyglass supports, and where their headers come from: "pyenv" (installed under
# $(pyenv root)/versions, headers in include/) or "debian:SUITE" (the -dev packages of Debian SUITE,
# in the root tools/debian-roots.sh makes: $SPYGLASS_ROOTS/SUITE/usr/include/pythonX.Y).
# This is the one list of supported versions: the Swift side reads it back from the generated file
# (PythonTraits.supportedVersions), and the tests check their interpreters cover each one.
VERSIONS = [
    ((2, 7), "pyenv"),
    ((3, 6), "pyenv"),
    ((3, 7), "pyenv"),
    ((3, 8), "pyenv"),
    ((3, 9), "pyenv"),
    ((3, 10), "pyenv"),
    ((3, 11), "pyenv"),
    ((3, 12), "pyenv"),
    ((3, 13), "pyenv"),
    ((3, 14), "debian:sid"),
    ((3, 15), "debian:sid"),
]

LAST = (3, 99)


# ---------------------------------------------------------------------------------------------------
# Rule kinds.


class Off:
    """offsetof(type, member)."""

    def __init__(self, ctype, member):
        self.ctype, self.member = ctype, member

    def c(self):
        return "offsetof(%s, %s)" % (self.ctype, self.member)

    def gdb(self):
        return "(long)&((%s *)0)->%s" % (self.ctype, self.member)

    def note(self):
        return "%s.%s" % (self.ctype.replace("struct ", ""), self.member)


class Size:
    """sizeof(type)."""

    def __init__(self, ctype):
        self.ctype = ctype

    def c(self):
        return "sizeof(%s)" % self.ctype

    def gdb(self):
        return "sizeof(%s)" % self.ctype

    def note(self):
        return "sizeof(%s)" % self.ctype.replace("struct ", "")


class Const:
    """A value the installed headers do not give; `why` goes into the generated file. `dwarf`, when
    set, is a gdb expression that must evaluate to `value` in that version's libpython."""

    def __init__(self, value, why, dwarf=None):
        self.value, self.why, self.dwarf = value, why, dwarf

    def c(self):
        return None

    def gdb(self):
        return self.dwarf

    def note(self):
        return None


class Expr:
    """A C expression (macros, enum constants, pointer arithmetic through static inline helpers)."""

    def __init__(self, cexpr, note):
        self.cexpr, self._note = cexpr, note

    def c(self):
        return self.cexpr

    def gdb(self):
        return None

    def note(self):
        return self._note


class Ext:
    """offsetof(type, member) (or sizeof(type) when member is None) of a struct private to an extension
    module's .c file (Modules/_asynciomodule.c's TaskObj), measured from the DWARF of that version's
    extension (lib-dynload/MODULE.cpython-3XY-x86_64-linux-gnu.so) with gdb: no installed header has it."""

    def __init__(self, ctype, member, module="_asyncio"):
        self.ctype, self.member, self.module = ctype, member, module

    def c(self):
        return None

    def gdb(self):
        if self.member is None:
            return "sizeof(%s)" % self.ctype
        return "(long)&((%s *)0)->%s" % (self.ctype, self.member)

    def note(self):
        what = "sizeof(%s)" % self.ctype if self.member is None else "%s.%s" % (self.ctype, self.member)
        return "%s, DWARF of %s" % (what, self.module)


def rules(*ranges):
    """rules((lo, hi, rule), ...) with inclusive (major, minor) bounds."""
    return list(ranges)


ALL = (2, 7)

# ---------------------------------------------------------------------------------------------------
# PythonLayout: one entry per field, in any order (the output follows PythonLayout.swift's order).

def TASK_HAND(value, member):
    """A TaskObj member of 3.14+, whose _asyncio Debian ships stripped: the offset follows the
    FutureObj_HEAD / TaskObj declarations of Modules/_asynciomodule.c on x86_64 (eleven object
    pointers after PyObject_HEAD, the fut_state enum, two chars and the bitfields in one unsigned,
    task_num_cancels_requested, four pointers, then the llist node). The target's own `.AsyncioDebug`
    section gives task_name, task_coro, task_node and sizeof(TaskObj) at attach, and Spyglass only
    trusts these values when those four agree with it."""
    what = "sizeof(TaskObj)" if member is None else member
    return Const(value, "%s: TaskObj is private to Modules/_asynciomodule.c and Debian's _asyncio is "
                 "stripped; laid out by hand from its FutureObj_HEAD/TaskObj declarations, checked against "
                 "the target's .AsyncioDebug section at attach." % what)


PRIVATE_DICT = "the struct is private to Objects/dict-common.h in %s"

LAYOUT = {
    # _PyRuntimeState
    "runtimeInterpretersHead": rules(((3, 7), LAST, Off("_PyRuntimeState", "interpreters.head"))),
    "runtimeTstateCurrent": rules(((3, 7), (3, 11), Off("_PyRuntimeState", "gilstate.tstate_current"))),
    # PyInterpreterState
    "interpNext": rules((ALL, LAST, Off("PyInterpreterState", "next"))),
    "interpID": rules(((3, 7), LAST, Off("PyInterpreterState", "id"))),
    "interpThreadsHead": rules(
        (ALL, (3, 10), Off("PyInterpreterState", "tstate_head")),
        ((3, 11), LAST, Off("PyInterpreterState", "threads.head")),
    ),
    "interpModules": rules(
        (ALL, (3, 11), Off("PyInterpreterState", "modules")),
        ((3, 12), LAST, Off("PyInterpreterState", "imports.modules")),
    ),
    "interpCevalGil": rules(((3, 12), LAST, Off("PyInterpreterState", "ceval.gil"))),
    "interpGilRuntimeState": rules(((3, 12), LAST, Off("PyInterpreterState", "_gil"))),
    "interpSize": rules((ALL, LAST, Size("PyInterpreterState"))),
    # struct _gil_runtime_state
    "gilLastHolder": rules(((3, 7), LAST, Off("struct _gil_runtime_state", "last_holder"))),
    "gilLocked": rules(((3, 7), LAST, Off("struct _gil_runtime_state", "locked"))),
    # PyThreadState
    "tstatePrev": rules(((3, 6), LAST, Off("PyThreadState", "prev"))),
    "tstateNext": rules((ALL, LAST, Off("PyThreadState", "next"))),
    "tstateInterp": rules((ALL, LAST, Off("PyThreadState", "interp"))),
    "tstateFrame": rules(
        (ALL, (3, 10), Off("PyThreadState", "frame")),
        ((3, 11), (3, 12), Off("PyThreadState", "cframe")),
        ((3, 13), LAST, Off("PyThreadState", "current_frame")),
    ),
    "cframeCurrentFrame": rules(((3, 11), (3, 12), Off("_PyCFrame", "current_frame"))),
    "tstateThreadID": rules((ALL, LAST, Off("PyThreadState", "thread_id"))),
    "tstateNativeThreadID": rules(((3, 11), LAST, Off("PyThreadState", "native_thread_id"))),
    "tstateDatastackChunk": rules(((3, 11), LAST, Off("PyThreadState", "datastack_chunk"))),
    "tstateDatastackTop": rules(((3, 11), LAST, Off("PyThreadState", "datastack_top"))),
    "tstateDatastackLimit": rules(((3, 11), LAST, Off("PyThreadState", "datastack_limit"))),
    "tstateSize": rules((ALL, LAST, Size("PyThreadState"))),
    # _PyStackChunk
    "stackChunkPrevious": rules(((3, 11), LAST, Off("_PyStackChunk", "previous"))),
    "stackChunkSize": rules(((3, 11), LAST, Off("_PyStackChunk", "size"))),
    "stackChunkTop": rules(((3, 11), LAST, Off("_PyStackChunk", "top"))),
    "stackChunkData": rules(((3, 11), LAST, Off("_PyStackChunk", "data"))),
    # PyFrameObject
    "frameBack": rules((ALL, (3, 10), Off("PyFrameObject", "f_back"))),
    "frameCode": rules((ALL, (3, 10), Off("PyFrameObject", "f_code"))),
    "frameLasti": rules((ALL, (3, 10), Off("PyFrameObject", "f_lasti"))),
    "frameLineno": rules((ALL, (3, 10), Off("PyFrameObject", "f_lineno"))),
    "frameLocalsplus": rules((ALL, (3, 10), Off("PyFrameObject", "f_localsplus"))),
    # _PyInterpreterFrame
    "iframeCode": rules(
        ((3, 11), (3, 12), Off("_PyInterpreterFrame", "f_code")),
        ((3, 13), LAST, Off("_PyInterpreterFrame", "f_executable")),
    ),
    "iframePrevious": rules(((3, 11), LAST, Off("_PyInterpreterFrame", "previous"))),
    "iframeInstrPtr": rules(
        ((3, 11), (3, 12), Off("_PyInterpreterFrame", "prev_instr")),
        ((3, 13), LAST, Off("_PyInterpreterFrame", "instr_ptr")),
    ),
    "iframeOwner": rules(((3, 11), LAST, Off("_PyInterpreterFrame", "owner"))),
    "iframeIsEntry": rules(((3, 11), (3, 11), Off("_PyInterpreterFrame", "is_entry"))),
    "iframeLocalsplus": rules(((3, 11), LAST, Off("_PyInterpreterFrame", "localsplus"))),
    "iframeSize": rules(((3, 11), LAST, Size("_PyInterpreterFrame"))),
    # PyCodeObject
    "codeArgcount": rules((ALL, LAST, Off("PyCodeObject", "co_argcount"))),
    "codePosonlyargcount": rules(((3, 8), LAST, Off("PyCodeObject", "co_posonlyargcount"))),
    "codeKwonlyargcount": rules(((3, 0), LAST, Off("PyCodeObject", "co_kwonlyargcount"))),
    "codeNlocals": rules((ALL, LAST, Off("PyCodeObject", "co_nlocals"))),
    "codeFlags": rules((ALL, LAST, Off("PyCodeObject", "co_flags"))),
    "codeFirstlineno": rules((ALL, LAST, Off("PyCodeObject", "co_firstlineno"))),
    "codeCode": rules((ALL, (3, 10), Off("PyCodeObject", "co_code"))),
    "codeVarnames": rules(
        (ALL, (3, 10), Off("PyCodeObject", "co_varnames")),
        ((3, 11), LAST, Off("PyCodeObject", "co_localsplusnames")),
    ),
    "codeLocalspluskinds": rules(((3, 11), LAST, Off("PyCodeObject", "co_localspluskinds"))),
    "codeCellvars": rules((ALL, (3, 10), Off("PyCodeObject", "co_cellvars"))),
    "codeFreevars": rules((ALL, (3, 10), Off("PyCodeObject", "co_freevars"))),
    "codeFilename": rules((ALL, LAST, Off("PyCodeObject", "co_filename"))),
    "codeName": rules((ALL, LAST, Off("PyCodeObject", "co_name"))),
    "codeQualname": rules(((3, 11), LAST, Off("PyCodeObject", "co_qualname"))),
    "codeLinetable": rules(
        (ALL, (3, 9), Off("PyCodeObject", "co_lnotab")),
        ((3, 10), LAST, Off("PyCodeObject", "co_linetable")),
    ),
    "codeFirstTraceable": rules(((3, 11), (3, 13), Off("PyCodeObject", "_co_firsttraceable"))),
    "codeCodeAdaptive": rules(((3, 11), LAST, Off("PyCodeObject", "co_code_adaptive"))),
    "codeSize": rules((ALL, LAST, Size("PyCodeObject"))),
    # PyObject / PyVarObject / PyTypeObject
    "objectType": rules((ALL, LAST, Off("PyObject", "ob_type"))),
    "varObjectSize": rules((ALL, LAST, Off("PyVarObject", "ob_size"))),
    "typeName": rules((ALL, LAST, Off("PyTypeObject", "tp_name"))),
    "typeBasicSize": rules((ALL, LAST, Off("PyTypeObject", "tp_basicsize"))),
    "typeFlags": rules((ALL, LAST, Off("PyTypeObject", "tp_flags"))),
    "typeDictOffset": rules((ALL, LAST, Off("PyTypeObject", "tp_dictoffset"))),
    "heapTypeCachedKeys": rules(((3, 11), LAST, Off("PyHeapTypeObject", "ht_cached_keys"))),
    # builtin objects
    "tupleItems": rules((ALL, LAST, Off("PyTupleObject", "ob_item"))),
    "listItems": rules((ALL, LAST, Off("PyListObject", "ob_item"))),
    "bytesData": rules(
        (ALL, (2, 7), Off("PyStringObject", "ob_sval")),
        ((3, 0), LAST, Off("PyBytesObject", "ob_sval")),
    ),
    "floatValue": rules((ALL, LAST, Off("PyFloatObject", "ob_fval"))),
    "longDigits": rules(
        (ALL, (3, 11), Off("PyLongObject", "ob_digit")),
        ((3, 12), LAST, Off("PyLongObject", "long_value.ob_digit")),
    ),
    "longTag": rules(((3, 12), LAST, Off("PyLongObject", "long_value.lv_tag"))),
    "intValue": rules((ALL, (2, 7), Off("PyIntObject", "ob_ival"))),
    "moduleDict": rules(
        (
            ALL,
            (3, 9),
            Const(
                16,
                "PyModuleObject is private to Objects/moduleobject.c before 3.10 (no installed "
                "header); md_dict is the first member after PyObject_HEAD (16 bytes).",
                "(long)&((PyModuleObject *)0)->md_dict",
            ),
        ),
        ((3, 10), LAST, Off("PyModuleObject", "md_dict")),
    ),
    # str
    "unicodeLength": rules(
        (ALL, (2, 7), Off("PyUnicodeObject", "length")),
        ((3, 0), LAST, Off("PyASCIIObject", "length")),
    ),
    "unicodeState": rules(((3, 0), LAST, Off("PyASCIIObject", "state"))),
    "asciiObjectSize": rules(((3, 0), LAST, Size("PyASCIIObject"))),
    "compactUnicodeObjectSize": rules(((3, 0), LAST, Size("PyCompactUnicodeObject"))),
    "unicodeData": rules(((3, 0), LAST, Off("PyUnicodeObject", "data"))),
    "unicode27Data": rules((ALL, (2, 7), Off("PyUnicodeObject", "str"))),
    # dict
    "dictUsed": rules((ALL, LAST, Off("PyDictObject", "ma_used"))),
    "dictKeys": rules(((3, 0), LAST, Off("PyDictObject", "ma_keys"))),
    "dictValues": rules(((3, 0), LAST, Off("PyDictObject", "ma_values"))),
    "dictKeysSize": rules(
        (
            (3, 0),
            (3, 10),
            Const(8, PRIVATE_DICT % "3.6-3.10" + "; dk_size follows the Py_ssize_t dk_refcnt.",
                  "(long)&((PyDictKeysObject *)0)->dk_size"),
        ),
        ((3, 11), LAST, Off("PyDictKeysObject", "dk_log2_size")),
    ),
    "dictKeysLog2IndexBytes": rules(((3, 11), LAST, Off("PyDictKeysObject", "dk_log2_index_bytes"))),
    "dictKeysKind": rules(((3, 11), LAST, Off("PyDictKeysObject", "dk_kind"))),
    "dictKeysNentries": rules(
        (
            (3, 0),
            (3, 10),
            Const(32, PRIVATE_DICT % "3.6-3.10" + "; dk_refcnt, dk_size, dk_lookup, dk_usable, then "
                  "dk_nentries (5 words).", "(long)&((PyDictKeysObject *)0)->dk_nentries"),
        ),
        ((3, 11), LAST, Off("PyDictKeysObject", "dk_nentries")),
    ),
    "dictKeysIndices": rules(
        (
            (3, 0),
            (3, 10),
            Const(40, PRIVATE_DICT % "3.6-3.10" + "; dk_indices follows dk_nentries.",
                  "(long)&((PyDictKeysObject *)0)->dk_indices"),
        ),
        ((3, 11), LAST, Off("PyDictKeysObject", "dk_indices")),
    ),
    "dictKeyEntrySize": rules(
        (ALL, (2, 7), Size("PyDictEntry")),
        (
            (3, 0),
            (3, 10),
            Const(24, PRIVATE_DICT % "3.6-3.10" + "; PyDictKeyEntry is me_hash, me_key, me_value.",
                  "sizeof(PyDictKeyEntry)"),
        ),
        ((3, 11), LAST, Size("PyDictKeyEntry")),
    ),
    "dictUnicodeEntrySize": rules(((3, 11), LAST, Size("PyDictUnicodeEntry"))),
    "dictValuesValues": rules(
        ((3, 0), (3, 10), Const(0, "ma_values is a PyObject ** pointing at the values array.")),
        ((3, 11), LAST, Off("PyDictValues", "values")),
    ),
    "dictValuesValid": rules(((3, 13), LAST, Off("PyDictValues", "valid"))),
    "dict27Mask": rules((ALL, (2, 7), Off("PyDictObject", "ma_mask"))),
    "dict27Table": rules((ALL, (2, 7), Off("PyDictObject", "ma_table"))),
    # set / frozenset
    "setUsed": rules((ALL, LAST, Off("PySetObject", "used"))),
    "setMask": rules((ALL, LAST, Off("PySetObject", "mask"))),
    "setTable": rules((ALL, LAST, Off("PySetObject", "table"))),
    "setEntryKey": rules((ALL, LAST, Off("setentry", "key"))),
    "setEntrySize": rules((ALL, LAST, Size("setentry"))),
    # PyGenObject (coroutines and generators embed their frame, 3.11+)
    "genIframe": rules(((3, 11), LAST, Off("PyGenObject", "gi_iframe"))),
    "genFrameState": rules(((3, 11), LAST, Off("PyGenObject", "gi_frame_state"))),
    # value stack top of an interpreter frame (the object a suspended coroutine awaits)
    "iframeStacktop": rules(((3, 11), (3, 13), Off("_PyInterpreterFrame", "stacktop"))),
    "iframeStackpointer": rules(((3, 14), LAST, Off("_PyInterpreterFrame", "stackpointer"))),
    # weak references, bound methods, type bases
    "weakrefObject": rules((ALL, LAST, Off("PyWeakReference", "wr_object"))),
    "methodSelf": rules((ALL, LAST, Off("PyMethodObject", "im_self"))),
    "typeBase": rules((ALL, LAST, Off("PyTypeObject", "tp_base"))),
    # asyncio (3.14+ keeps each thread's running loop and task, and a list of its tasks, in the thread state)
    "tstateAsyncioRunningLoop": rules(((3, 14), LAST, Off("_PyThreadStateImpl", "asyncio_running_loop"))),
    "tstateAsyncioRunningTask": rules(((3, 14), LAST, Off("_PyThreadStateImpl", "asyncio_running_task"))),
    "tstateAsyncioTasksHead": rules(((3, 14), LAST, Off("_PyThreadStateImpl", "asyncio_tasks_head"))),
    "interpAsyncioTasksHead": rules(((3, 14), LAST, Off("PyInterpreterState", "asyncio_tasks_head"))),
    # _asyncio's FutureObj / TaskObj / FutureIter (Modules/_asynciomodule.c)
    "futureLoop": rules(((3, 11), (3, 13), Ext("TaskObj", "task_loop")), ((3, 14), LAST, TASK_HAND(16, "fut_loop"))),
    "futureCallback0": rules(
        ((3, 11), (3, 13), Ext("TaskObj", "task_callback0")), ((3, 14), LAST, TASK_HAND(24, "fut_callback0"))),
    "futureCallbacks": rules(
        ((3, 11), (3, 13), Ext("TaskObj", "task_callbacks")), ((3, 14), LAST, TASK_HAND(40, "fut_callbacks"))),
    "futureState": rules(((3, 11), (3, 13), Ext("TaskObj", "task_state")), ((3, 14), LAST, TASK_HAND(104, "fut_state"))),
    "futureAwaitedBy": rules(((3, 14), LAST, TASK_HAND(96, "fut_awaited_by"))),
    "futureAwaitedByIsSet": rules(((3, 14), LAST, TASK_HAND(109, "fut_awaited_by_is_set"))),
    "taskFutWaiter": rules(
        ((3, 11), (3, 13), Ext("TaskObj", "task_fut_waiter")), ((3, 14), LAST, TASK_HAND(120, "task_fut_waiter"))),
    "taskCoro": rules(((3, 11), (3, 13), Ext("TaskObj", "task_coro")), ((3, 14), LAST, TASK_HAND(128, "task_coro"))),
    "taskName": rules(((3, 11), (3, 13), Ext("TaskObj", "task_name")), ((3, 14), LAST, TASK_HAND(136, "task_name"))),
    "taskNode": rules(((3, 14), LAST, TASK_HAND(152, "task_node"))),
    "taskObjectSize": rules(((3, 11), (3, 13), Ext("TaskObj", None)), ((3, 14), LAST, TASK_HAND(168, None))),
    "futureIterFuture": rules(
        ((3, 11), (3, 13), Ext("futureiterobject", "future")), ((3, 14), LAST, TASK_HAND(16, "FutureIter.future"))),
}

# ---------------------------------------------------------------------------------------------------
# HeaderConstants (declared in VersionTraits.swift): header macros and enum values, so the hand-written
# PythonTraits can be checked against the headers.

FAKE = "((PyObject *)(uintptr_t)0x100000)"


def fake_delta(helper):
    # Pointer arithmetic through a static inline helper on a fake object address; nothing is
    # dereferenced because the program is compiled with NDEBUG.
    return "(char *)%s(%s) - (char *)%s" % (helper, FAKE, FAKE)


CONSTANTS = {
    "longShift": rules((ALL, LAST, Expr("PyLong_SHIFT", "PyLong_SHIFT"))),
    "codeUnitSize": rules(((3, 6), LAST, Expr("sizeof(_Py_CODEUNIT)", "sizeof(_Py_CODEUNIT)"))),
    "frameOwnedByThread": rules(((3, 11), LAST, Expr("FRAME_OWNED_BY_THREAD", "FRAME_OWNED_BY_THREAD"))),
    "frameOwnedByGenerator": rules(
        ((3, 11), LAST, Expr("FRAME_OWNED_BY_GENERATOR", "FRAME_OWNED_BY_GENERATOR"))),
    "frameOwnedByFrameObject": rules(
        ((3, 11), LAST, Expr("FRAME_OWNED_BY_FRAME_OBJECT", "FRAME_OWNED_BY_FRAME_OBJECT"))),
    "frameOwnedByCStack": rules(((3, 12), (3, 14), Expr("FRAME_OWNED_BY_CSTACK", "FRAME_OWNED_BY_CSTACK"))),
    "frameOwnedByInterpreter": rules(
        ((3, 14), LAST, Expr("FRAME_OWNED_BY_INTERPRETER", "FRAME_OWNED_BY_INTERPRETER"))),
    # _PyStackRef (3.14+: frames' f_executable and localsplus are tagged words)
    "stackRefTagBits": rules(((3, 14), LAST, Expr("Py_TAG_BITS", "Py_TAG_BITS"))),
    "stackRefIntTag": rules(((3, 14), LAST, Expr("Py_INT_TAG", "Py_INT_TAG"))),
    "managedDictOffset": rules(
        ((3, 11), (3, 11), Expr(fake_delta("_PyObject_ManagedDictPointer"), "_PyObject_ManagedDictPointer")),
        ((3, 12), (3, 12), Expr(fake_delta("_PyObject_DictOrValuesPointer"), "_PyObject_DictOrValuesPointer")),
        ((3, 13), LAST, Expr("MANAGED_DICT_OFFSET", "MANAGED_DICT_OFFSET")),
    ),
    "managedValuesOffset": rules(
        ((3, 11), (3, 11), Expr(fake_delta("_PyObject_ValuesPointer"), "_PyObject_ValuesPointer")),
    ),
    "inlineValuesOffset": rules(
        ((3, 13), (3, 13), Expr(fake_delta("_PyObject_InlineValues"), "_PyObject_InlineValues")),
    ),
    # 3.14 moved inline values from sizeof(PyObject) to the type's tp_basicsize: 1 when
    # _PyObject_InlineValues of an object whose (fake, static) type has tp_basicsize 48 is 48 past it.
    "inlineValuesAfterBasicSize": rules(
        ((3, 14), LAST, Expr("({ static PyTypeObject t; static PyObject o; t.tp_basicsize = 48; "
                             "o.ob_type = &t; (char *)_PyObject_InlineValues(&o) - (char *)&o == 48; })",
                             "_PyObject_InlineValues at tp_basicsize")),
    ),
    "tpflagsManagedDict": rules(((3, 11), LAST, Expr("Py_TPFLAGS_MANAGED_DICT", "Py_TPFLAGS_MANAGED_DICT"))),
    "tpflagsInlineValues": rules(((3, 13), LAST, Expr("Py_TPFLAGS_INLINE_VALUES", "Py_TPFLAGS_INLINE_VALUES"))),
    "tpflagsIntSubclass": rules((ALL, (2, 7), Expr("Py_TPFLAGS_INT_SUBCLASS", "Py_TPFLAGS_INT_SUBCLASS"))),
    "tpflagsLongSubclass": rules((ALL, LAST, Expr("Py_TPFLAGS_LONG_SUBCLASS", "Py_TPFLAGS_LONG_SUBCLASS"))),
    "tpflagsListSubclass": rules((ALL, LAST, Expr("Py_TPFLAGS_LIST_SUBCLASS", "Py_TPFLAGS_LIST_SUBCLASS"))),
    "tpflagsTupleSubclass": rules((ALL, LAST, Expr("Py_TPFLAGS_TUPLE_SUBCLASS", "Py_TPFLAGS_TUPLE_SUBCLASS"))),
    "tpflagsBytesSubclass": rules(
        (ALL, (2, 7), Expr("Py_TPFLAGS_STRING_SUBCLASS", "Py_TPFLAGS_STRING_SUBCLASS")),
        ((3, 0), LAST, Expr("Py_TPFLAGS_BYTES_SUBCLASS", "Py_TPFLAGS_BYTES_SUBCLASS")),
    ),
    "tpflagsUnicodeSubclass": rules(
        (ALL, LAST, Expr("Py_TPFLAGS_UNICODE_SUBCLASS", "Py_TPFLAGS_UNICODE_SUBCLASS"))),
    "tpflagsDictSubclass": rules((ALL, LAST, Expr("Py_TPFLAGS_DICT_SUBCLASS", "Py_TPFLAGS_DICT_SUBCLASS"))),
    # Measured by setting each bitfield of a zeroed PyASCIIObject.state and looking at the word.
    "unicodeStateInternedShift": rules(((3, 0), LAST, Expr("STATE_SHIFT(interned)", "state.interned"))),
    "unicodeStateInternedMask": rules(((3, 0), LAST, Expr("STATE_MASK(interned)", "state.interned"))),
    "unicodeStateKindShift": rules(((3, 0), LAST, Expr("STATE_SHIFT(kind)", "state.kind"))),
    "unicodeStateKindMask": rules(((3, 0), LAST, Expr("STATE_MASK(kind)", "state.kind"))),
    "unicodeStateCompactShift": rules(((3, 0), LAST, Expr("STATE_SHIFT(compact)", "state.compact"))),
    "unicodeStateAsciiShift": rules(((3, 0), LAST, Expr("STATE_SHIFT(ascii)", "state.ascii"))),
    "pyUnicodeSize": rules((ALL, (2, 7), Expr("sizeof(Py_UNICODE)", "sizeof(Py_UNICODE)"))),
    # gi_frame_state values of coroutines and generators (enum _framestate)
    "frameStateSuspended": rules(((3, 11), LAST, Expr("FRAME_SUSPENDED", "FRAME_SUSPENDED"))),
    "frameStateSuspendedYieldFrom": rules(
        ((3, 13), LAST, Expr("FRAME_SUSPENDED_YIELD_FROM", "FRAME_SUSPENDED_YIELD_FROM"))),
    "frameStateSuspendedYieldFromLocked": rules(
        ((3, 15), LAST, Expr("FRAME_SUSPENDED_YIELD_FROM_LOCKED", "FRAME_SUSPENDED_YIELD_FROM_LOCKED"))),
    "frameStateExecuting": rules(((3, 11), LAST, Expr("FRAME_EXECUTING", "FRAME_EXECUTING"))),
    "frameStateCleared": rules(((3, 11), LAST, Expr("FRAME_CLEARED", "FRAME_CLEARED"))),
    # 3.11/3.12 tell a coroutine suspended in an await by the RESUME after its last instruction
    "opcodeResume": rules(((3, 11), (3, 12), Expr("RESUME", "RESUME"))),
    "opcodeResumeQuick": rules(((3, 11), (3, 11), Expr("RESUME_QUICK", "RESUME_QUICK"))),
    "opcodeInstrumentedResume": rules(((3, 12), (3, 12), Expr("INSTRUMENTED_RESUME", "INSTRUMENTED_RESUME"))),
}

# Order of HeaderConstants' fields (must match VersionTraits.swift's declaration order).
CONSTANT_ORDER = list(CONSTANTS)

# Assumptions the Swift side relies on, checked in C: (lo, hi, name, condition).
CHECKS = [
    ((3, 11), LAST, "dk_indices_at_end",
     "offsetof(PyDictKeysObject, dk_indices) == sizeof(PyDictKeysObject)"),
    ((3, 6), LAST, "pointer_size_8", "sizeof(void *) == 8"),
    ((3, 11), LAST, "owner_is_char", "sizeof(((_PyInterpreterFrame *)0)->owner) == 1"),
]
CHECKS_BY_NAME = [(name, cond) for _, _, name, cond in CHECKS]

# ---------------------------------------------------------------------------------------------------
# _Py_DebugOffsets (3.13+). Every leaf member of the struct; the Swift field of DebugOffsetsTable is
# the camel-cased designator (runtime_state.interpreters_head -> runtimeStateInterpretersHead). A
# member a version lacks is nil; a member of the header the list does not know is reported.

DEBUG_MEMBERS = [
    "cookie",
    "version",
    "free_threaded",
    "runtime_state.size",
    "runtime_state.finalizing",
    "runtime_state.interpreters_head",
    "interpreter_state.size",
    "interpreter_state.id",
    "interpreter_state.next",
    "interpreter_state.threads_head",
    "interpreter_state.threads_main",
    "interpreter_state.gc",
    "interpreter_state.imports_modules",
    "interpreter_state.sysdict",
    "interpreter_state.builtins",
    "interpreter_state.ceval_gil",
    "interpreter_state.gil_runtime_state",
    "interpreter_state.gil_runtime_state_enabled",
    "interpreter_state.gil_runtime_state_locked",
    "interpreter_state.gil_runtime_state_holder",
    "interpreter_state.code_object_generation",
    "interpreter_state.tlbc_generation",
    "thread_state.size",
    "thread_state.prev",
    "thread_state.next",
    "thread_state.interp",
    "thread_state.current_frame",
    "thread_state.base_frame",
    "thread_state.last_profiled_frame",
    "thread_state.last_profiled_frame_seq",
    "thread_state.thread_id",
    "thread_state.native_thread_id",
    "thread_state.datastack_chunk",
    "thread_state.status",
    "thread_state.holds_gil",
    "thread_state.gil_requested",
    "thread_state.current_exception",
    "thread_state.exc_state",
    "err_stackitem.exc_value",
    "interpreter_frame.size",
    "interpreter_frame.previous",
    "interpreter_frame.executable",
    "interpreter_frame.instr_ptr",
    "interpreter_frame.localsplus",
    "interpreter_frame.owner",
    "interpreter_frame.stackpointer",
    "interpreter_frame.tlbc_index",
    "code_object.size",
    "code_object.filename",
    "code_object.name",
    "code_object.qualname",
    "code_object.linetable",
    "code_object.firstlineno",
    "code_object.argcount",
    "code_object.localsplusnames",
    "code_object.localspluskinds",
    "code_object.co_code_adaptive",
    "code_object.co_tlbc",
    "pyobject.size",
    "pyobject.ob_type",
    "type_object.size",
    "type_object.tp_name",
    "type_object.tp_repr",
    "type_object.tp_flags",
    "type_object.tp_basicsize",
    "type_object.tp_dictoffset",
    "heap_type_object.size",
    "heap_type_object.ht_cached_keys",
    "tuple_object.size",
    "tuple_object.ob_item",
    "tuple_object.ob_size",
    "list_object.size",
    "list_object.ob_item",
    "list_object.ob_size",
    "set_object.size",
    "set_object.used",
    "set_object.table",
    "set_object.mask",
    "dict_object.size",
    "dict_object.ma_keys",
    "dict_object.ma_values",
    "float_object.size",
    "float_object.ob_fval",
    "long_object.size",
    "long_object.lv_tag",
    "long_object.ob_digit",
    "bytes_object.size",
    "bytes_object.ob_size",
    "bytes_object.ob_sval",
    "unicode_object.size",
    "unicode_object.state",
    "unicode_object.length",
    "unicode_object.asciiobject_size",
    "unicode_object.compactunicodeobject_size",
    "gc.size",
    "gc.collecting",
    "gc.frame",
    "gc.generation_stats_size",
    "gc.generation_stats",
    "gen_object.size",
    "gen_object.gi_name",
    "gen_object.gi_iframe",
    "gen_object.gi_frame_state",
    "llist_node.next",
    "llist_node.prev",
    "debugger_support.eval_breaker",
    "debugger_support.remote_debugger_support",
    "debugger_support.remote_debugging_enabled",
    "debugger_support.debugger_pending_call",
    "debugger_support.debugger_script_path",
    "debugger_support.debugger_script_path_size",
]


def camel(designator):
    parts = re.split(r"[._]", designator)
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:] if p)


# ---------------------------------------------------------------------------------------------------
# Headers to include, per version.


def internal_headers(version):
    """Internal headers to include (those that exist in the version's include/internal/)."""
    if version < (3, 7):
        return []
    if version == (3, 7):
        return ["internal/pystate.h", "internal/gil.h"]
    names = [
        "pycore_pystate.h",
        "pycore_runtime.h",
        "pycore_interp.h",
        "pycore_gil.h",
        "pycore_ceval_state.h",
        "pycore_moduleobject.h",
        "pycore_code.h",
        "pycore_frame.h",
        "pycore_dict.h",
        "pycore_object.h",
        "pycore_tstate.h",
        "pycore_genobject.h",
        "pycore_interpframe_structs.h",
        "pycore_debug_offsets.h",  # where _Py_DebugOffsets lives after 3.13, if present
    ]
    return ["internal/" + n for n in names]


def public_headers(version):
    names = ["Python.h"]
    if version <= (3, 10):
        names += ["frameobject.h"]
    names += ["longintrepr.h", "opcode.h"]
    return names


# ---------------------------------------------------------------------------------------------------
# Interpreter discovery.


class Install:
    def __init__(self, version, patch, prefix, include, libpython, root, shown_root="$(pyenv root)",
                 extra_includes=(), dwarf_note=None):
        self.version, self.patch, self.prefix = version, patch, prefix
        self.include, self.libpython, self.root = include, libpython, root
        # How the include folder is shown in the generated file, and folders searched after the
        # host's own system headers (Debian's multiarch pyconfig.h lives under <root>/usr/include).
        self.shown_root, self.extra_includes = shown_root, list(extra_includes)
        # Why the DWARF cross-check cannot run for this install, when it cannot.
        self.dwarf_note = dwarf_note

    @property
    def name(self):
        return "%d.%d" % self.version

    def shown_include(self):
        return self.shown_root + self.include[len(self.root):]


def pyenv_root(explicit):
    if explicit:
        return explicit
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
        if out:
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    return os.path.expanduser("~/.pyenv")


def debian_roots(explicit):
    """The folder tools/debian-roots.sh keeps its roots in."""
    if explicit:
        return explicit
    return os.environ.get("SPYGLASS_ROOTS") or "/var/cache/spyglass/debian-roots"


def find_install(root, version):
    """The highest installed X.Y.Z (plain releases only) for `version`, or None."""
    candidates = []
    for path in glob.glob(os.path.join(root, "versions", "%d.%d.*" % version)):
        name = os.path.basename(path)
        if re.fullmatch(r"%d\.%d\.\d+" % version, name):
            candidates.append((int(name.rsplit(".", 1)[1]), name, path))
    if not candidates:
        return None, "%d.%d: nothing matches %s/versions/%d.%d.*" % (version + (root,) + version)
    _, patch, prefix = max(candidates)
    includes = [p for p in glob.glob(os.path.join(prefix, "include", "python%d.%d*" % version))
                if os.path.isfile(os.path.join(p, "Python.h"))]
    if not includes:
        return None, "%s has no include/python%d.%d*/Python.h" % ((prefix,) + version)
    include = sorted(includes)[0]
    if version >= (3, 7) and not os.path.isdir(os.path.join(include, "internal")):
        return None, "%s has no internal/ headers" % include
    libs = sorted(glob.glob(os.path.join(prefix, "lib", "libpython%d.%d*.so*" % version)))
    libpython = libs[-1] if libs else None
    return Install(version, patch, prefix, include, libpython, root), None


def find_debian_install(roots, suite, version):
    """The headers of Debian SUITE's pythonX.Y-dev in the root tools/debian-roots.sh made."""
    root = os.path.join(roots, suite)
    include = os.path.join(root, "usr/include/python%d.%d" % version)
    if not os.path.isfile(os.path.join(include, "Python.h")) or not os.path.isdir(os.path.join(include, "internal")):
        return None, ("%d.%d: %s has no Python.h and internal/ headers (run tools/debian-roots.sh, which installs "
                      "Debian %s's python%d.%d-dev)" % (version + (include, suite) + version))
    text = open(os.path.join(include, "patchlevel.h")).read()
    m = re.search(r'#define PY_VERSION\s+"([^"]+)"', text)
    if not m:
        return None, "%s/patchlevel.h has no PY_VERSION" % include
    lib = os.path.join(root, "usr/lib/x86_64-linux-gnu/libpython%d.%d.so.1.0" % version)
    return Install(version, m.group(1), root, include, lib if os.path.isfile(lib) else None, root,
                   shown_root="<debian %s root>" % suite, extra_includes=[os.path.join(root, "usr/include")],
                   dwarf_note="Debian's libpython is stripped; its DWARF is in the -dbgsym package"), None


# ---------------------------------------------------------------------------------------------------
# Measuring.


def rule_for(table, field, version):
    for lo, hi, rule in table[field]:
        if lo <= version <= hi:
            return rule
    return None


def c_program(install, layout_rules, constant_rules, debug_members, checks):
    v = install.version
    lines = [
        "/* generated by %s for CPython %s */" % (GENERATOR_PATH, install.patch),
        "#define Py_BUILD_CORE 1",
        "#define NDEBUG 1",
    ]
    # Python.h first, as the C API asks (it sets feature-test macros).
    for header in public_headers(v) + internal_headers(v):
        if os.path.isfile(os.path.join(install.include, header)):
            lines.append('#include "%s"' % header)
    lines += ["#include <stddef.h>", "#include <stdint.h>", "#include <stdio.h>", "#include <string.h>"]
    if v >= (3, 0):
        lines += [
            "",
            "static unsigned int state_word(PyASCIIObject *o) {",
            "  unsigned int w = 0;",
            "  memcpy(&w, (char *)o + offsetof(PyASCIIObject, state), sizeof w);",
            "  return w;",
            "}",
            "#define STATE_MASK(f) ({ PyASCIIObject o; memset(&o, 0, sizeof o); o.state.f = ~0u; "
            "(long)state_word(&o); })",
            "#define STATE_SHIFT(f) ((long)__builtin_ctzl(STATE_MASK(f)))",
        ]
    lines += ["", "int main(void) {"]
    for name, condition in checks:
        lines.append('  printf("X %s %%d\\n", (int)(%s));' % (name, condition))
    for kind, items in (("L", layout_rules), ("C", constant_rules)):
        for name, rule in items:
            lines.append('  printf("%s %s %%ld\\n", (long)(%s));' % (kind, name, rule.c()))
    for designator in debug_members:
        lines.append('  printf("D %s %%ld\\n", (long)offsetof(_Py_DebugOffsets, %s));' % (designator, designator))
        lines.append('  printf("S %s %%ld\\n", (long)sizeof(((_Py_DebugOffsets *)0)->%s));' % (designator, designator))
    if debug_members:
        lines.append('  printf("D sizeof %ld\\n", (long)sizeof(_Py_DebugOffsets));')
    lines += ["  return 0;", "}", ""]
    return "\n".join(lines)


class Failure(Exception):
    pass


def compile_and_run(install, source, workdir):
    c_path = os.path.join(workdir, "layout_%d_%d.c" % install.version)
    exe = c_path[:-2]
    with open(c_path, "w") as f:
        f.write(source)
    cmd = ["gcc", "-std=gnu11", "-w", "-I" + install.include]
    cmd += ["-idirafter" + extra for extra in install.extra_includes]
    cmd += ["-o", exe, c_path]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise Failure("gcc failed for %s (%s):\n%s" % (install.patch, " ".join(cmd), proc.stderr[-6000:]))
    run = subprocess.run([exe], capture_output=True, text=True)
    if run.returncode != 0:
        raise Failure("measuring program for %s failed: %s" % (install.patch, run.stderr))
    values = {"L": {}, "C": {}, "D": {}, "X": {}, "S": {}}
    for line in run.stdout.splitlines():
        kind, name, value = line.split()
        values[kind][name] = int(value)
    return values


def debug_leaves(install):
    """Leaf designators of _Py_DebugOffsets in this version's pycore_runtime.h (or pycore_debug_offsets.h),
    parsed from the header text, and the header's name; ([], None) when the version has no table."""
    for name in ("internal/pycore_debug_offsets.h", "internal/pycore_runtime.h"):
        path = os.path.join(install.include, name)
        if not os.path.isfile(path):
            continue
        text = open(path).read()
        m = re.search(r"typedef struct _Py_DebugOffsets \{(.*?)\n\} _Py_DebugOffsets;", text, re.S)
        if not m:
            continue
        body = re.sub(r"//[^\n]*|/\*.*?\*/", "", m.group(1), flags=re.S)
        # Attribute macros after a declarator (3.14: `char cookie[8] _Py_NONSTRING;`).
        body = re.sub(r"\b_Py_NONSTRING\b", "", body)
        leaves, stack, pending = [], [], []
        for token in re.finditer(r"struct(?:\s+\w+)?\s*\{|\}\s*(\w+)\s*;|[\w\s\[\]]+?(\w+)\s*(\[\s*\w+\s*\])?\s*;", body):
            text_token = token.group(0)
            if text_token.startswith("struct"):
                stack.append([])
            elif text_token.startswith("}"):
                group = token.group(1)
                members = stack.pop()
                target = stack[-1] if stack else leaves
                target.extend(group + "." + member for member in members)
            else:
                (stack[-1] if stack else leaves).append(token.group(2))
        return leaves, name
    return [], None


def dwarf_values(install, expressions, binary=None):
    """Evaluates gdb expressions against the DWARF of the libpython (or of `binary`): {key: int or error
    string}."""
    binary = binary or install.libpython
    if not binary:
        return None
    script = [
        "import gdb, json",
        "out = {}",
        "for key, expr in %r:" % (sorted(expressions.items()),),
        "    try:",
        "        out[key] = int(gdb.parse_and_eval(expr))",
        "    except Exception as error:",
        "        out[key] = str(error)",
        "print('@@JSON' + json.dumps(out))",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write("\n".join(script) + "\n")
        script_path = f.name
    try:
        proc = subprocess.run(["gdb", "-batch", "-nx", "-x", script_path, binary],
                              capture_output=True, text=True)
    finally:
        os.unlink(script_path)
    for line in proc.stdout.splitlines():
        if line.startswith("@@JSON"):
            return json.loads(line[6:])
    raise Failure("gdb produced no result for %s:\n%s" % (binary, proc.stderr[-2000:]))


def extension_module(install, module):
    """The version's build of an extension module (its lib-dynload .so), or None."""
    found = sorted(glob.glob(os.path.join(install.prefix, "lib", "python%d.%d" % install.version, "lib-dynload",
                                          "%s.cpython-*.so" % module)))
    return found[0] if found else None


def extension_values(install, rules_by_field):
    """Measures Ext rules with gdb from the DWARF of the extension module they name."""
    if not rules_by_field:
        return {}
    if not shutil.which("gdb"):
        raise Failure("%s: %s come from the DWARF of an extension module and need gdb (apt-get install gdb)"
                      % (install.patch, ", ".join(sorted(rules_by_field))))
    out = {}
    for module in sorted({r.module for r in rules_by_field.values()}):
        path = extension_module(install, module)
        if path is None:
            raise Failure("%s: no %s extension under %s/lib/python%d.%d/lib-dynload"
                          % ((install.patch, module, install.prefix) + install.version))
        fields = {f: r for f, r in rules_by_field.items() if r.module == module}
        found = dwarf_values(install, {f: r.gdb() for f, r in fields.items()}, binary=path)
        for field in fields:
            if not isinstance(found.get(field), int):
                raise Failure("%s %s: not in the DWARF of %s: %s" % (install.patch, field, path, found.get(field)))
            out[field] = found[field]
    return out


class Measured:
    def __init__(self, install, layout, constants, debug, debug_size, unknown_debug, dwarf_report):
        self.install, self.layout, self.constants = install, layout, constants
        self.debug, self.debug_size, self.unknown_debug = debug, debug_size, unknown_debug
        self.dwarf_report = dwarf_report


def measure(install, field_order, use_dwarf, workdir):
    v = install.version
    layout_rules, manual, extension = [], {}, {}
    for field in field_order:
        rule = rule_for(LAYOUT, field, v)
        if rule is None:
            continue
        if isinstance(rule, Const):
            manual[field] = rule
        elif isinstance(rule, Ext):
            extension[field] = rule
        else:
            layout_rules.append((field, rule))
    constant_rules = [(name, rule_for(CONSTANTS, name, v)) for name in CONSTANT_ORDER]
    constant_rules = [(n, r) for n, r in constant_rules if r is not None]
    leaves, debug_header = debug_leaves(install)
    debug_members = [d for d in DEBUG_MEMBERS if d in leaves]
    unknown_debug = [d for d in leaves if d not in DEBUG_MEMBERS]

    checks = [(name, cond) for lo, hi, name, cond in CHECKS if lo <= v <= hi]
    source = c_program(install, layout_rules, constant_rules, debug_members, checks)
    values = compile_and_run(install, source, workdir)
    for name, value in values["X"].items():
        if value != 1:
            raise Failure("%s: assumption %s does not hold: %s" % (install.patch, name, dict(CHECKS_BY_NAME)[name]))
    wide = [d for d, size in values["S"].items() if d != "cookie" and size != 8]
    if wide:
        raise Failure("%s: _Py_DebugOffsets members that are not uint64_t: %s (DebugOffsets.swift reads "
                      "every member as a uint64_t)" % (install.patch, ", ".join(wide)))
    if debug_members and (values["D"].get("cookie") != 0 or values["D"].get("version") != 8):
        raise Failure("%s: _Py_DebugOffsets no longer starts with cookie[8] and version; DebugOffsets.swift "
                      "reads those at fixed offsets 0 and 8 before it knows the version" % install.patch)

    measured_ext = extension_values(install, extension)
    layout = {}
    for field in field_order:
        if field in extension:
            layout[field] = (measured_ext[field], extension[field])
        elif field in manual:
            layout[field] = (manual[field].value, manual[field])
        elif field in values["L"]:
            layout[field] = (values["L"][field], rule_for(LAYOUT, field, v))
    constants = {name: values["C"][name] for name, _ in constant_rules}
    debug = {d: values["D"][d] for d in debug_members}
    debug_size = values["D"].get("sizeof")

    dwarf_report = "not checked"
    if use_dwarf and install.dwarf_note:
        dwarf_report = "not checked (%s)" % install.dwarf_note
    elif use_dwarf:
        # (what, value, gdb expression, must verify)
        checks = [(field, value, rule.gdb(), isinstance(rule, Const))
                  for field, (value, rule) in layout.items() if rule.gdb() and not isinstance(rule, Ext)]
        checks += [("_Py_DebugOffsets." + d, debug[d], "(long)&((_Py_DebugOffsets *)0)->" + d, False)
                   for d in debug_members]
        if debug_members:
            checks.append(("sizeof(_Py_DebugOffsets)", debug_size, "sizeof(_Py_DebugOffsets)", False))
        found = dwarf_values(install, {what: expr for what, _, expr, _ in checks})
        if found is None:
            dwarf_report = "not checked (no libpython)"
        else:
            checked, skipped = 0, []
            for what, value, _, must in checks:
                got = found[what]
                if isinstance(got, int):
                    if got != value:
                        raise Failure("%s %s: header value %d but DWARF of %s says %d"
                                      % (install.patch, what, value, install.libpython, got))
                    checked += 1
                elif must:
                    raise Failure("%s %s: cannot verify the hand-written value with gdb: %s"
                                  % (install.patch, what, got))
                else:
                    skipped.append(what)
            dwarf_report = "%d values agree with DWARF" % checked
            if skipped:
                dwarf_report += "; not in DWARF: " + ", ".join(skipped)
    result = Measured(install, layout, constants, debug, debug_size, unknown_debug, dwarf_report)
    result.debug_header = debug_header
    return result


# ---------------------------------------------------------------------------------------------------
# Swift output.


def swift_fields(path):
    fields = []
    for line in open(path):
        m = re.match(r"\s*(?:public|package) var (\w+): Int\?\s*$", line)
        if m:
            fields.append(m.group(1))
    return fields


def wrap_comment(text, indent, width=100):
    words, lines, current = text.split(), [], ""
    prefix = " " * indent + "// "
    for word in words:
        if current and len(prefix) + len(current) + 1 + len(word) > width:
            lines.append(prefix + current)
            current = word
        else:
            current = (current + " " + word).strip()
    if current:
        lines.append(prefix + current)
    return lines


def constant_literal(name, value):
    """Flags as shifts, masks in hex, everything else in decimal."""
    if name.startswith("tpflags") and value > 0 and value & (value - 1) == 0:
        return "1 << %d" % (value.bit_length() - 1)
    if name.endswith("Mask"):
        return "0x%x" % value
    return "%d" % value


def fit(lines, width=100):
    """Moves a trailing `// comment` above its line when the line is too long; fails on anything
    else that is too long, so the output always passes `swift format lint`."""
    out = []
    for line in lines:
        if len(line) > width and "  // " in line:
            code, comment = line.split("  // ", 1)
            indent = len(code) - len(code.lstrip())
            out.extend(wrap_comment(comment, indent, width))
            line = code
        if len(line) > width:
            raise Failure("generated line longer than %d columns: %s" % (width, line))
        out.append(line)
    return out


def ident(version):
    return "v%d_%d" % version


def render(measured, field_order):
    out = []
    out.append("//===--- PythonLayouts.generated.swift - generated; do not edit ---------===//")
    out.append("//")
    out.append("// GENERATED by %s from the C headers of the installed interpreters." % GENERATOR_PATH)
    out.append("// Do not edit: change the generator and run `python3 %s`" % GENERATOR_PATH)
    out.append("// (`--check` verifies this file is current).")
    out.append("//")
    out.append("// Target: x86_64 Linux, 64-bit. Each table was measured by compiling a C program against")
    out.append("// the public and internal (Py_BUILD_CORE) headers of:")
    for m in measured:
        out.append("//   %-8s %s" % (m.install.patch, m.install.shown_include()))
    out.append("//")
    out.append("// Values the headers do not give are written by hand in the generator, with the reason")
    out.append("// next to them below. Whenever gdb is available the generator re-measures those and")
    out.append("// every header value from the DWARF of each version's libpython, and fails on a mismatch.")
    out.append("//")
    out.append("//===----------------------------------------------------------------------===//")
    out.append("")
    out.append("// swift-format-ignore-file: AlwaysUseLowerCamelCase")
    out.append("")

    # PythonLayout
    out.append("extension PythonLayout {")
    for m in measured:
        out.append("  /// CPython %s, measured from the headers of %s." % (m.install.name, m.install.patch))
        out.append("  package static let %s: PythonLayout = {" % ident(m.install.version))
        out.append("    var layout = PythonLayout()")
        for field in field_order:
            if field not in m.layout:
                continue
            value, rule = m.layout[field]
            if isinstance(rule, Const):
                out.extend(wrap_comment(rule.why, 4))
                line = "    layout.%s = %d  // by hand" % (field, value)
                if rule.dwarf:
                    line += ", DWARF-checked"
                out.append(line)
            else:
                out.append("    layout.%s = %d  // %s" % (field, value, rule.note()))
        out.append("    return layout")
        out.append("  }()")
        out.append("")
    out.append("  /// The minor versions with a generated table, oldest first: the versions Spyglass supports")
    out.append("  /// (VERSIONS in the generator, the one list of them).")
    out.append("  package static let generatedVersions: [(major: Int, minor: Int)] = [")
    out.append("    " + ", ".join("(%d, %d)" % m.install.version for m in measured) + ",")
    out.append("  ]")
    out.append("")
    out.append("  /// The generated table for a minor version, or nil when the version is not supported.")
    out.append("  package static func generated(major: Int, minor: Int) -> PythonLayout? {")
    out.append("    switch (major, minor) {")
    for m in measured:
        out.append("    case (%d, %d): return %s" % (m.install.version + (ident(m.install.version),)))
    out.append("    default: return nil")
    out.append("    }")
    out.append("  }")
    out.append("}")
    out.append("")

    # HeaderConstants
    out.append("extension HeaderConstants {")
    for m in measured:
        out.append("  /// Header constants of CPython %s (%s)." % (m.install.name, m.install.patch))
        out.append("  package static let %s: HeaderConstants = {" % ident(m.install.version))
        out.append("    var constants = HeaderConstants()")
        for name in CONSTANT_ORDER:
            if name in m.constants:
                rule = rule_for(CONSTANTS, name, m.install.version)
                out.append("    constants.%s = %s  // %s" % (name, constant_literal(name, m.constants[name]), rule.note()))
        out.append("    return constants")
        out.append("  }()")
        out.append("")
    out.append("  /// The generated constants for a minor version, or nil when the version is not supported.")
    out.append("  package static func generated(major: Int, minor: Int) -> HeaderConstants? {")
    out.append("    switch (major, minor) {")
    for m in measured:
        out.append("    case (%d, %d): return %s" % (m.install.version + (ident(m.install.version),)))
    out.append("    default: return nil")
    out.append("    }")
    out.append("  }")
    out.append("}")
    out.append("")

    # DebugOffsetsTable
    with_table = [m for m in measured if m.debug]
    out.append("extension DebugOffsetsTable {")
    for m in with_table:
        out.append("  /// Where the members of `_Py_DebugOffsets` are in CPython %s," % m.install.name)
        out.append("  /// measured from %s of %s." % (m.debug_header, m.install.patch))
        out.append("  package static let %s: DebugOffsetsTable = {" % ident(m.install.version))
        out.append("    var table = DebugOffsetsTable()")
        out.append("    table.major = %d" % m.install.version[0])
        out.append("    table.minor = %d" % m.install.version[1])
        out.append("    table.tableSize = %d  // sizeof(_Py_DebugOffsets)" % m.debug_size)
        for designator in DEBUG_MEMBERS:
            if designator in m.debug:
                out.append("    table.%s = %d  // %s" % (camel(designator), m.debug[designator], designator))
        out.append("    return table")
        out.append("  }()")
        out.append("")
    out.append("  /// Every generated table description, oldest first.")
    out.append("  package static let allGenerated: [DebugOffsetsTable] = [%s]"
               % ", ".join(ident(m.install.version) for m in with_table))
    out.append("")
    out.append("  /// The table description for a minor version, or nil when none was generated for it.")
    out.append("  package static func generated(major: Int, minor: Int) -> DebugOffsetsTable? {")
    out.append("    allGenerated.first { $0.major == major && $0.minor == minor }")
    out.append("  }")
    out.append("}")
    return "\n".join(fit(out)) + "\n"


# ---------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify the committed file is current")
    parser.add_argument("--pyenv-root", help="pyenv root (default: $PYENV_ROOT, `pyenv root`, ~/.pyenv)")
    parser.add_argument("--debian-roots", help="Debian roots (default: $SPYGLASS_ROOTS, "
                        "/var/cache/spyglass/debian-roots; tools/debian-roots.sh makes them)")
    parser.add_argument("--no-dwarf", action="store_true", help="skip the gdb/DWARF cross-check")
    parser.add_argument("--output", default=OUTPUT, help=argparse.SUPPRESS)
    args = parser.parse_args()

    root = os.path.abspath(pyenv_root(args.pyenv_root))
    for tool in ("gcc",):
        if not shutil.which(tool):
            print("error: %s not found; cannot measure layouts" % tool, file=sys.stderr)
            return 2
    use_dwarf = not args.no_dwarf
    if use_dwarf and not shutil.which("gdb"):
        print("WARNING: gdb not found: the hand-written values and the header values are NOT "
              "cross-checked against the libpython DWARF", file=sys.stderr)
        use_dwarf = False

    installs, missing = [], []
    for version, source in VERSIONS:
        if source == "pyenv":
            install, problem = find_install(root, version)
        else:
            install, problem = find_debian_install(debian_roots(args.debian_roots), source.split(":", 1)[1], version)
        if install is None:
            missing.append(problem)
        else:
            installs.append(install)
    if missing:
        print("=" * 78, file=sys.stderr)
        print("ERROR: headers missing for %d supported version(s); the tables cannot be generated:"
              % len(missing), file=sys.stderr)
        for problem in missing:
            print("  MISSING: " + problem, file=sys.stderr)
        print("Install them with `pyenv install X.Y.Z` (they ship their headers), or tools/debian-roots.sh for the "
              "Debian ones.", file=sys.stderr)
        print("=" * 78, file=sys.stderr)
        return 1

    field_order = swift_fields(LAYOUT_SWIFT)
    unruled = [f for f in field_order if f not in LAYOUT]
    stale = [f for f in LAYOUT if f not in field_order]
    if unruled or stale:
        for f in unruled:
            print("error: PythonLayout.%s has no rule in %s" % (f, GENERATOR_PATH), file=sys.stderr)
        for f in stale:
            print("error: rule for %s, which PythonLayout does not declare" % f, file=sys.stderr)
        return 1

    declared = {}
    for path in (TRAITS_SWIFT, DEBUG_SWIFT):
        declared[path] = set(re.findall(r"(?:public|package) var (\w+)", open(path).read())) if os.path.isfile(path) else set()
    problems = ["HeaderConstants.%s is not declared in %s" % (n, os.path.relpath(TRAITS_SWIFT, PACKAGE))
                for n in CONSTANT_ORDER if n not in declared[TRAITS_SWIFT]]
    problems += ["DebugOffsetsTable.%s is not declared in %s" % (camel(d), os.path.relpath(DEBUG_SWIFT, PACKAGE))
                 for d in DEBUG_MEMBERS if camel(d) not in declared[DEBUG_SWIFT]]
    if problems:
        for problem in problems:
            print("error: " + problem, file=sys.stderr)
        return 1

    measured = []
    with tempfile.TemporaryDirectory(prefix="spyglass-layouts-") as workdir:
        for install in installs:
            try:
                m = measure(install, field_order, use_dwarf, workdir)
            except Failure as error:
                print("error: %s" % error, file=sys.stderr)
                return 1
            measured.append(m)
            print("%-7s %-45s %3d offsets, %2d constants, %2d debug-table members; %s"
                  % (install.patch, install.shown_include(), len(m.layout), len(m.constants), len(m.debug),
                     m.dwarf_report), file=sys.stderr)
            if m.unknown_debug:
                print("WARNING: _Py_DebugOffsets of %s has members the generator does not know: %s "
                      "(add them to DEBUG_MEMBERS and DebugOffsetsTable)"
                      % (install.patch, ", ".join(m.unknown_debug)), file=sys.stderr)

    try:
        text = render(measured, field_order)
    except Failure as error:
        print("error: %s" % error, file=sys.stderr)
        return 1
    if args.check:
        try:
            current = open(args.output).read()
        except FileNotFoundError:
            current = ""
        if current != text:
            diff = difflib.unified_diff(current.splitlines(True), text.splitlines(True),
                                        os.path.relpath(args.output, PACKAGE) + " (committed)",
                                        "regenerated")
            sys.stdout.writelines(diff)
            print("error: %s is out of date; run `python3 %s`"
                  % (os.path.relpath(args.output, PACKAGE), GENERATOR_PATH), file=sys.stderr)
            return 1
        print("ok: %s is current" % os.path.relpath(args.output, PACKAGE), file=sys.stderr)
        return 0
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    print("wrote %s" % os.path.relpath(args.output, PACKAGE), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
