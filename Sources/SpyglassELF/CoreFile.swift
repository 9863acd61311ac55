//===--- CoreFile.swift - a core file of a process, and its memory --------===//
//
// A core (ET_CORE) from the kernel or from gdb's `gcore`: its PT_LOAD segments are the process's
// memory, its PT_NOTE segments name the threads (NT_PRSTATUS, one per thread, the kernel's tid at
// offset 32 on x86_64), the process (NT_PRPSINFO: pid, command line cut to 80 bytes), the auxiliary
// vector (NT_AUXV: AT_PHDR says which mapping is the executable) and the file mappings (NT_FILE:
// a count, the page size, then start, end and file offset in pages for each, then their
// NUL-terminated paths).
//
// `CoreMemory` reads a segment's bytes from the core. Where the core does not hold them (the
// kernel leaves read-only file mappings out, `p_filesz` < `p_memsz`, except the first page of an
// ELF file), the bytes are read from the mapped file itself, found by its NT_FILE path (under a
// root folder when the process ran in one): text, read-only data and the symbol tables the walk
// needs are the file's own. A file that changed since the dump gives what the file holds now.
//
// Everything in a core is untrusted: every count is bounded (notes, threads, mappings, string
// lengths), every offset is checked against the file, and a malformed core is an `ELFError` (`notCore`, `malformedCore`, `truncatedCore`).
//
//===----------------------------------------------------------------------===//

import SpyglassProcess

/// One file mapping of NT_FILE.
package struct CoreFileMapping: Sendable, Equatable {
  package var start: UInt64
  package var end: UInt64
  /// The offset in the file, in bytes.
  package var offset: UInt64
  package var path: String
}

/// A parsed core file.
package final class CoreFile: Sendable {
  /// Most notes, threads and file mappings read (a real process has far fewer).
  package static let maximumNotes = 1 << 16
  package static let maximumThreads = 1 << 14
  package static let maximumMappings = 1 << 16

  package let path: String
  package let elf: ELFFile
  /// The PT_LOAD segments, by address.
  package let segments: [ELFProgramHeader]
  /// The threads' kernel ids, in note order (the first is the one that received the signal).
  package let threadIDs: [Int32]
  /// NT_PRPSINFO's pid, else the first thread's.
  package let pid: Int32
  /// NT_PRPSINFO's pr_fname and pr_psargs (the command line, cut to 80 bytes by the kernel).
  package let programName: String?
  package let arguments: String?
  package let fileMappings: [CoreFileMapping]
  /// AT_PHDR of NT_AUXV: an address inside the executable's mapping.
  package let programHeaderAddress: UInt64?
  /// NT_AUXV's (key, value) pairs, up to AT_NULL (at most 512).
  package let auxiliaryVector: [(key: UInt64, value: UInt64)]

  package init(path: String) throws(ELFError) {
    self.path = path
    let elf: ELFFile
    elf = try ELFFile(path: path)
    guard elf.type == .core else { throw .notCore }
    self.elf = elf
    let loads = elf.programHeaders.filter { $0.type == .load && $0.memsz > 0 }
    segments = loads.sorted { $0.vaddr < $1.vaddr }
    guard !segments.isEmpty else { throw .malformedCore("no memory segments") }
    // A core cut short (a full disk, a core size limit) is refused as a whole rather than read
    // with holes: what it lacks is the memory written last, which may be any thread's stack.
    let size = UInt64(elf.mapped.count)
    for segment in segments {
      let (end, overflow) = segment.offset.addingReportingOverflow(segment.filesz)
      guard !overflow, end <= size else { throw .truncatedCore }
    }

    var threads: [Int32] = []
    var pid: Int32?
    var programName: String?
    var arguments: String?
    var mappings: [CoreFileMapping] = []
    var phdr: UInt64?
    var auxv: [(key: UInt64, value: UInt64)] = []
    var notes = 0
    for note in elf.programHeaders where note.type == .note {
      guard note.filesz <= UInt64(Int.max), note.offset <= UInt64(Int.max),
        let bytes = elf.mapped.bytes(at: Int(note.offset), count: Int(note.filesz))
      else { throw .malformedCore("a note segment extends past the end of the file") }
      let view = ByteView(bytes)
      var cursor = 0
      while cursor + 12 <= bytes.count {
        notes += 1
        guard notes <= Self.maximumNotes else { throw .malformedCore("more than \(Self.maximumNotes) notes") }
        let nameSize = Int(view.u32(cursor))
        let descSize = Int(view.u32(cursor + 4))
        let type = view.u32(cursor + 8)
        let nameStart = cursor + 12
        let descStart = nameStart + Self.aligned4(nameSize)
        let next = descStart + Self.aligned4(descSize)
        guard nameSize <= bytes.count, descSize <= bytes.count, next <= bytes.count + 3 else {
          throw .malformedCore("a note extends past its segment")
        }
        let name = view.slice(nameStart, Swift.max(0, nameSize - 1))
        let desc = ByteView(bytes, base: descStart, count: Swift.min(descSize, bytes.count - descStart))
        if name.elementsEqual("CORE".utf8) {
          switch type {
          case 1:  // NT_PRSTATUS
            guard desc.count >= 36 else { throw .malformedCore("a thread's status note is too short") }
            if threads.count < Self.maximumThreads { threads.append(desc.i32(32)) }
          case 3:  // NT_PRPSINFO
            if desc.count >= 136 {
              pid = desc.i32(24)
              programName = Self.cString(desc.slice(40, 16))
              arguments = Self.cString(desc.slice(56, 80))
            }
          case 6:  // NT_AUXV
            var entry = 0
            auxv = []
            while entry + 16 <= desc.count && auxv.count < 512 {
              let key = desc.u64(entry)
              if key == 0 { break }
              if key == 3 { phdr = desc.u64(entry + 8) }  // AT_PHDR
              auxv.append((key, desc.u64(entry + 8)))
              entry += 16
            }
          case 0x4649_4c45:  // NT_FILE
            mappings = try Self.fileMappings(desc)
          default: break
          }
        }
        cursor = next
      }
    }
    guard !threads.isEmpty else { throw .malformedCore("no thread status notes") }
    threadIDs = threads
    self.pid = pid.flatMap { $0 > 0 ? $0 : nil } ?? threads[0]
    self.programName = programName
    self.arguments = arguments
    fileMappings = mappings
    programHeaderAddress = phdr
    auxiliaryVector = auxv
  }

  static func aligned4(_ value: Int) -> Int { (value + 3) & ~3 }

  static func cString(_ bytes: ArraySlice<UInt8>) -> String? {
    let text = bytes.prefix { $0 != 0 }
    return text.isEmpty ? nil : String(decoding: text, as: UTF8.self)
  }

  static func fileMappings(_ desc: ByteView) throws(ELFError) -> [CoreFileMapping] {
    let count = desc.u64(0)
    let pageSize = desc.u64(8)
    guard count <= UInt64(maximumMappings) else { throw .malformedCore("more than \(maximumMappings) file mappings") }
    guard pageSize > 0, pageSize <= 1 << 30, pageSize & (pageSize - 1) == 0 else {
      throw .malformedCore("a file note's page size of \(pageSize)")
    }
    let entries = Int(count)
    guard 16 + entries * 24 <= desc.count else { throw .malformedCore("the file note is truncated") }
    var names = 16 + entries * 24
    var result: [CoreFileMapping] = []
    result.reserveCapacity(entries)
    for index in 0..<entries {
      let base = 16 + index * 24
      let start = desc.u64(base)
      let end = desc.u64(base + 8)
      let (offset, overflow) = desc.u64(base + 16).multipliedReportingOverflow(by: pageSize)
      guard start < end, !overflow else { throw .malformedCore("a file mapping's range") }
      var length = 0
      while names + length < desc.count && desc.u8(names + length) != 0 { length += 1 }
      guard names + length < desc.count else { throw .malformedCore("the file note's names are truncated") }
      let path = String(decoding: desc.slice(names, length), as: UTF8.self)
      names += length + 1
      result.append(CoreFileMapping(start: start, end: end, offset: offset, path: path))
    }
    return result
  }

  /// The process's mappings as /proc/PID/maps would list them: each PT_LOAD segment with the
  /// permissions of its flags and, where NT_FILE maps a file there, its path and offset; file
  /// mappings the core has no segment for are added as readable.
  package var maps: [MemoryMap] {
    var byStart: [UInt64: CoreFileMapping] = [:]
    for mapping in fileMappings where byStart[mapping.start] == nil { byStart[mapping.start] = mapping }
    var result: [MemoryMap] = []
    var covered = Set<UInt64>()
    for segment in segments {
      let file = byStart[segment.vaddr]
      if file != nil { covered.insert(segment.vaddr) }
      result.append(
        MemoryMap(
          start: segment.vaddr, end: segment.vaddr &+ segment.memsz, readable: segment.flags.contains(.read),
          writable: segment.flags.contains(.write), executable: segment.flags.contains(.execute),
          offset: file?.offset ?? 0, inode: file == nil ? 0 : 1, path: file?.path ?? ""))
    }
    for mapping in fileMappings where !covered.contains(mapping.start) {
      result.append(
        MemoryMap(
          start: mapping.start, end: mapping.end, readable: true, writable: false, executable: false,
          offset: mapping.offset, inode: 1, path: mapping.path))
    }
    return result.sorted { $0.start < $1.start }
  }

  /// The executable's path as the process saw it: the file mapped where AT_PHDR points, else
  /// the first file mapping.
  package var executablePath: String? {
    if let phdr = programHeaderAddress,
      let mapping = fileMappings.first(where: { $0.start <= phdr && phdr < $0.end })
    {
      return mapping.path
    }
    return fileMappings.first?.path
  }
}

/// A core file's memory, as a `MemoryReader` (see the file comment): the segments' bytes from the
/// core, the rest of file mappings from their files. `fileOpener` maps a path as the process saw
/// it to a file here (`root` prepended, or `--exe` for the executable); nil leaves the bytes out.
package struct CoreMemory: MemoryReader, Sendable {
  struct Segment: Sendable {
    var start: UInt64
    var end: UInt64
    /// Bytes of the segment held in the core, from its start.
    var inCore: UInt64
    var coreOffset: UInt64
  }
  struct Backing: Sendable {
    var start: UInt64
    var end: UInt64
    var offset: UInt64
    var file: MappedFile
  }

  let core: MappedFile
  let segments: [Segment]
  /// File mappings whose file could be opened, by address.
  let backings: [Backing]

  package init(core file: CoreFile, fileOpener: (String) -> String?) {
    core = file.elf.mapped
    segments = file.segments.map { segment in
      // The core's bytes of the segment, cut to what the file holds.
      let available =
        segment.offset < UInt64(file.elf.mapped.count) ? UInt64(file.elf.mapped.count) - segment.offset : 0
      return Segment(
        start: segment.vaddr, end: segment.vaddr &+ segment.memsz,
        inCore: Swift.min(segment.filesz, segment.memsz, available), coreOffset: segment.offset)
    }
    var opened: [String: MappedFile?] = [:]
    var backings: [Backing] = []
    for mapping in file.fileMappings {
      // Only where the core leaves bytes out.
      let needed =
        segments.contains { $0.start < mapping.end && mapping.start < $0.end && $0.inCore < $0.end - $0.start }
        || !segments.contains { $0.start <= mapping.start && mapping.start < $0.end }
      guard needed else { continue }
      if opened[mapping.path] == nil {
        opened[mapping.path] = .some(fileOpener(mapping.path).flatMap { try? MappedFile(path: $0) })
      }
      if let mapped = opened[mapping.path] ?? nil {
        backings.append(Backing(start: mapping.start, end: mapping.end, offset: mapping.offset, file: mapped))
      }
    }
    self.backings = backings.sorted { $0.start < $1.start }
  }

  /// The last element of `array` whose start is at or below `address`.
  static func index<T>(in array: [T], startingAtOrBelow address: UInt64, start: (T) -> UInt64) -> Int? {
    var low = 0
    var high = array.count
    while low < high {
      let mid = (low + high) / 2
      if start(array[mid]) <= address { low = mid + 1 } else { high = mid }
    }
    return low == 0 ? nil : low - 1
  }

  package func read(at address: RemoteAddress, into buffer: UnsafeMutableRawBufferPointer) throws(ReadFault) {
    let count = buffer.count
    if count == 0 { return }
    let (_, overflow) = address.addingReportingOverflow(UInt64(count))
    guard address != 0, !overflow else { throw .unmapped(address: address) }
    var done = 0
    // Piece by piece: a read may cross from one segment into the next.
    while done < count {
      let cursor = address &+ UInt64(done)
      let got = copy(at: cursor, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
      if got == 0 {
        if done == 0 { throw .unmapped(address: address) }
        throw .partial(address: address, wanted: count, got: done)
      }
      done += got
    }
  }

  /// Copies what one segment (or its file) holds at `address`; the bytes copied, 0 for none.
  private func copy(at address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
    var segmentEnd = UInt64.max
    if let i = Self.index(in: segments, startingAtOrBelow: address, start: \.start), address < segments[i].end {
      let segment = segments[i]
      segmentEnd = segment.end
      let delta = address - segment.start
      if delta < segment.inCore {
        let length = Int(Swift.min(UInt64(buffer.count), segment.inCore - delta))
        let offset = Int(segment.coreOffset + delta)
        core.withUnsafeBytes { bytes in
          buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
        }
        return length
      }
    }
    // Left out of the core: the mapped file's bytes.
    guard let j = Self.index(in: backings, startingAtOrBelow: address, start: \.start) else { return 0 }
    let backing = backings[j]
    guard address < backing.end else { return 0 }
    let (fileOffset, overflow) = backing.offset.addingReportingOverflow(address - backing.start)
    guard !overflow, fileOffset < UInt64(backing.file.count) else { return 0 }
    let limit = Swift.min(segmentEnd, backing.end) - address
    let length = Int(Swift.min(UInt64(buffer.count), limit, UInt64(backing.file.count) - fileOffset))
    let offset = Int(fileOffset)
    backing.file.withUnsafeBytes { bytes in
      buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]))
    }
    return length
  }
}
