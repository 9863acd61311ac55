//===--- WalkOffsets.swift - the layout members a stack walk reads --------===//
//
// Resolved once, when a StackWalker is made: every member the walk needs for the version's frame
// model is checked to be present (a layout without one is refused with a fault that names it), and
// the walk's hot loops read plain offsets. Members only some versions have stay Optional here too.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

struct WalkOffsets {
  var threadsHead: Int
  var tstateNext: Int
  var tstateInterp: Int
  var tstateFrame: Int
  var tstateThreadID: Int
  /// `native_thread_id` (3.11+).
  var tstateNativeThreadID: Int?
  /// `datastack_chunk`, `datastack_top` and `_PyStackChunk.size` (3.11+).
  var dataStack: (chunk: Int, top: Int, chunkSize: Int)?
  var tstateSize: Int?
  /// `_gil_runtime_state.locked` and `last_holder` (3.12+, read when the GIL is a `.gilState`).
  var gil: (locked: Int, lastHolder: Int)?
  var frames: Frames
  var objectType: Int
  var code: Code

  enum Frames {
    /// ≤3.10: PyFrameObject.
    case objects(back: Int, code: Int, lasti: Int)
    /// 3.11+: _PyInterpreterFrame (`cframeCurrentFrame` on 3.11/3.12, `isEntry` on 3.11), and
    /// `co_code_adaptive`, where instruction offsets count from.
    case interpreter(
      cframeCurrentFrame: Int?, previous: Int, code: Int, instrPtr: Int, owner: Int, isEntry: Int?, codeAdaptive: Int)
  }

  struct Code {
    var filename: Int
    var name: Int
    var firstlineno: Int
    var linetable: Int
    var qualname: Int?
    var argcount: Int?
    var kwonlyargcount: Int?
    var posonlyargcount: Int?
    var nlocals: Int?
    var varnames: Int?
    var localspluskinds: Int?
    var cellvars: Int?
    var freevars: Int?
    var firstTraceable: Int?

    /// Bytes of a code object one read takes.
    var readSize: Int { (all.compactMap { $0 }.max() ?? 0) + 8 }

    /// Every member, for the size of one read of a code object.
    var all: [Int?] {
      [
        filename, name, firstlineno, linetable, qualname, argcount, kwonlyargcount, posonlyargcount, nlocals, varnames,
        localspluskinds, cellvars, freevars, firstTraceable,
      ]
    }
  }

  init(_ layout: PythonLayout, _ model: PythonTraits, gil: GILLocation) throws(ReadFault) {
    threadsHead = try layout.interpThreadsHead.member("interpThreadsHead")
    tstateNext = try layout.tstateNext.member("tstateNext")
    tstateInterp = try layout.tstateInterp.member("tstateInterp")
    tstateFrame = try layout.tstateFrame.member("tstateFrame")
    tstateThreadID = try layout.tstateThreadID.member("tstateThreadID")
    tstateNativeThreadID = layout.tstateNativeThreadID
    if let chunk = layout.tstateDatastackChunk {
      dataStack = (
        chunk, try layout.tstateDatastackTop.member("tstateDatastackTop"),
        try layout.stackChunkSize.member("stackChunkSize")
      )
    }
    tstateSize = layout.tstateSize
    if case .gilState = gil {
      self.gil = (try layout.gilLocked.member("gilLocked"), try layout.gilLastHolder.member("gilLastHolder"))
    }
    switch model.frameModel {
    case .frameObject:
      frames = .objects(
        back: try layout.frameBack.member("frameBack"), code: try layout.frameCode.member("frameCode"),
        lasti: try layout.frameLasti.member("frameLasti"))
    case .interpreterFrameViaCFrame, .interpreterFrame:
      let cframe: Int? =
        model.frameModel == .interpreterFrameViaCFrame
        ? try layout.cframeCurrentFrame.member("cframeCurrentFrame") : nil
      frames = .interpreter(
        cframeCurrentFrame: cframe, previous: try layout.iframePrevious.member("iframePrevious"),
        code: try layout.iframeCode.member("iframeCode"), instrPtr: try layout.iframeInstrPtr.member("iframeInstrPtr"),
        owner: try layout.iframeOwner.member("iframeOwner"), isEntry: layout.iframeIsEntry,
        codeAdaptive: try layout.codeCodeAdaptive.member("codeCodeAdaptive"))
    }
    objectType = try layout.objectType.member("objectType")
    code = Code(
      filename: try layout.codeFilename.member("codeFilename"), name: try layout.codeName.member("codeName"),
      firstlineno: try layout.codeFirstlineno.member("codeFirstlineno"),
      linetable: try layout.codeLinetable.member("codeLinetable"),
      qualname: model.hasQualname ? layout.codeQualname : nil, argcount: layout.codeArgcount,
      kwonlyargcount: layout.codeKwonlyargcount, posonlyargcount: layout.codePosonlyargcount,
      nlocals: layout.codeNlocals, varnames: layout.codeVarnames, localspluskinds: layout.codeLocalspluskinds,
      cellvars: layout.codeCellvars, freevars: layout.codeFreevars, firstTraceable: layout.codeFirstTraceable)
  }

  /// Bytes of a thread state one read takes: every member the walk reads.
  var threadStateFields: Int {
    [
      tstateNext, tstateInterp, tstateFrame, tstateThreadID, tstateNativeThreadID ?? 0, dataStack?.chunk ?? 0,
      dataStack?.top ?? 0,
    ].max()! + 8
  }

  /// Bytes of a frame one read takes.
  var frameFields: Int {
    switch frames {
    case .objects(let back, let code, let lasti): return Swift.max(back, code, lasti) + 8
    case .interpreter(_, let previous, let code, let instrPtr, let owner, let isEntry, _):
      return Swift.max(previous, code, instrPtr, owner, isEntry ?? 0) + 8
    }
  }
}
