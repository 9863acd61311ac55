//===--- ThreadIdentity.swift - names and OS ids of Python threads --------===//
//
// Thread names come from the target's own `threading._active` dict ({ident: Thread}); each Thread's
// `_name` (`_Thread__name` on 2.7). OS thread ids come from `native_thread_id` on 3.11+; before,
// from glibc's `struct pthread`, which records the kernel tid at a fixed offset: the offset is
// found once by matching every thread's pthread_t against the process's task list, so it needs no
// ptrace and works in non-blocking mode too.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

extension StackWalker {
  /// {Python thread ident: threading name} for the threads `threading` knows about.
  package func threadNames() throws(ReadFault) -> [UInt64: String] {
    guard let modulesOffset = layout.interpModules else { return [:] }
    let modules = try memory.readPointer(at: interpreter &+ UInt64(modulesOffset))
    guard let threading = try objects.dictValue(at: modules, forKey: "threading") else { return [:] }
    let moduleDict = try memory.readPointer(at: threading &+ UInt64(layout.moduleDict.member("moduleDict")))
    guard let active = try objects.dictValue(at: moduleDict, forKey: "_active") else { return [:] }
    let nameAttribute = model.threadNameAttribute
    var names: [UInt64: String] = [:]
    for (key, thread) in try objects.dictEntries(at: active) {
      var isInt = false
      if let intFlag = model.typeFlags.intSubclass {
        let flags = try objects.typeFlags(ofType: try objects.typeAddress(of: key))
        isInt = flags & intFlag != 0
      }
      guard let ident = try objects.integer(at: key, isPython2Int: isInt) else { continue }
      guard let nameObject = try? objects.instanceAttribute(of: thread, named: nameAttribute),
        let name = try? objects.string(at: nameObject, limit: 1024)
      else { continue }
      names[UInt64(bitPattern: ident)] = name
    }
    return names
  }
}

/// Where glibc's `struct pthread` keeps the kernel thread id.
package enum PthreadTIDOffset {
  /// glibc x86_64's offset of `tid` in `struct pthread`, preferred when several offsets fit.
  package static let glibcX86Offset = 720

  /// Finds the offset at which every thread's `struct pthread` (at its pthread_t) holds a distinct
  /// id of a live task of the process. Returns nil when no offset fits.
  package static func discover<Memory: MemoryReader>(memory: Memory, pthreads: [UInt64], tasks: Set<Int32>) -> Int? {
    let span = 1024
    let blocks = pthreads.compactMap { try? ByteView(memory.readBytes(at: $0, count: span)) }
    guard !blocks.isEmpty, blocks.count == pthreads.count else { return nil }
    var fits: [Int] = []
    for offset in stride(from: 0, to: span, by: 4) {
      var seen = Set<Int32>()
      var ok = true
      for block in blocks {
        let value = block.i32(offset)
        if !tasks.contains(value) || !seen.insert(value).inserted {
          ok = false
          break
        }
      }
      if ok { fits.append(offset) }
    }
    if fits.contains(glibcX86Offset) { return glibcX86Offset }
    return fits.count == 1 ? fits[0] : nil
  }
}
