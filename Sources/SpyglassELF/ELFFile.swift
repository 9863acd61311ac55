//===--- ELFFile.swift - a 64-bit little-endian ELF file ------------------===//
//
// Reads what Spyglass needs from an executable or shared object: program headers (for the load
// bias), section headers (.bss, .PyRuntime), symbols from .dynsym and .symtab (locals included), and
// the GNU build ID.
//
// Headers are parsed and validated eagerly in `init`: a header table, string table or symbol table
// that lies outside the file throws. Symbol tables are then decoded lazily, once, on the first
// lookup; individual garbage entries in them (a name offset outside the string table) are skipped.
// Every loop is bounded by a count that was checked against the file size.
//
//===----------------------------------------------------------------------===//

import Glibc
import SpyglassProcess
import Synchronization

package final class ELFFile: Sendable {
  /// The mapping the file is read from; it lives as long as this object.
  package let mapped: MappedFile
  package var path: String { mapped.path }
  /// e_type: `.executable` (ET_EXEC, fixed address) or `.sharedObject` (ET_DYN: a .so or a PIE).
  package let type: ELFFileType
  /// e_machine (62 is x86-64, 183 is AArch64).
  package let machine: UInt16
  /// e_entry, before the load bias.
  package let entry: UInt64
  package let programHeaders: [ELFProgramHeader]
  /// Every section header in table order, index 0 (the null section) included.
  package let sections: [ELFSection]
  /// The descriptor of the NT_GNU_BUILD_ID note, when the file has one.
  package let buildID: [UInt8]?

  private let symbolTables: [SymbolTableLocation]
  private let symbolIndex = Mutex<SymbolIndex?>(nil)

  /// The file at `path`, opened once per file however many processes map it: every process
  /// running the same interpreter binary shares its mapping and its symbol index (the agent attaches
  /// to dozens of them). A file is kept while something uses it.
  package static func shared(path: String) throws(ELFError) -> ELFFile {
    guard let identity = FileIdentity(path: path) else { return try ELFFile(path: path) }
    if let file = openFiles.withLock({ $0[identity]?.file }) { return file }
    let file = try ELFFile(path: path)
    openFiles.withLock { files in
      files = files.filter { $0.value.file != nil }
      files[identity] = SharedFile(file)
    }
    return file
  }

  /// The files `shared` opened, held weakly.
  private static let openFiles = Mutex<[FileIdentity: SharedFile]>([:])

  private final class SharedFile: @unchecked Sendable {
    // SAFETY: read and written only under `openFiles`' lock.
    weak var file: ELFFile?
    init(_ file: ELFFile) { self.file = file }
  }

  /// Opens and maps the file at `path`.
  package convenience init(path: String) throws(ELFError) {
    let mapped: MappedFile
    do { mapped = try MappedFile(path: path) } catch { throw .cannotOpen(path: path, error) }
    try self.init(mapped: mapped)
  }

  package init(mapped: MappedFile) throws(ELFError) {
    self.mapped = mapped
    let header = try Self.parseHeader(mapped)
    type = header.type
    machine = header.machine
    entry = header.entry
    let sectionTable = try Self.parseSections(mapped, header)
    sections = sectionTable.sections
    programHeaders = try Self.parseProgramHeaders(
      mapped, header, extendedCount: sectionTable.extendedSegmentCount)
    symbolTables = try Self.locateSymbolTables(mapped, sections)
    buildID = Self.findBuildID(mapped, programHeaders: programHeaders, sections: sections)
  }

  // MARK: - Queries

  /// The first section with this name.
  package func section(named name: String) -> ELFSection? {
    sections.first { $0.name == name }
  }

  /// The largest NOBITS section named `.bss` (where CPython's zero-initialised globals live).
  package var bss: ELFSection? {
    sections.filter { $0.name == ".bss" && $0.type == .nobits }.max { $0.size < $1.size }
  }

  /// Whether the file has a full symbol table (.symtab), i.e. was not stripped.
  package var hasFullSymbolTable: Bool { symbolTables.contains { $0.table == .full } }

  /// The PT_LOAD segments in program-header order.
  package var loadSegments: [ELFProgramHeader] { programHeaders.filter { $0.type == .load } }

  /// The first PT_LOAD segment with PF_X (the code).
  package var firstExecutableLoadSegment: ELFProgramHeader? {
    programHeaders.first { $0.type == .load && $0.isExecutable }
  }

  /// The build ID as lowercase hex, as `file` and `readelf -n` print it.
  package var buildIDHex: String? {
    buildID.map { bytes in
      bytes.map { byte in
        let digits = String(byte, radix: 16)
        return byte < 16 ? "0" + digits : digits
      }.joined()
    }
  }

  /// A defined symbol by exact name, from .dynsym or .symtab, LOCAL symbols included. When several
  /// symbols share the name, a GLOBAL or WEAK one wins over a LOCAL one, and otherwise the first
  /// found (.dynsym before .symtab, then table order). The first call hashes every name of both
  /// tables once (no String per symbol: a few hundred µs for libpython's ~20,000 symbols).
  package func symbol(named name: String) -> ELFSymbol? {
    symbolIndex.withLock { index in
      if index == nil { index = buildSymbolIndex() }
      return index.flatMap { lookUp(name, in: $0) }
    }
  }

  /// Every defined symbol (no undefined, SECTION or FILE entries, no empty names) of one table, in
  /// table order. Decodes the table on each call.
  package func symbols(in table: ELFSymbolTable) -> [ELFSymbol] {
    var result: [ELFSymbol] = []
    for location in symbolTables where location.table == table {
      decodeSymbols(location) { result.append($0) }
    }
    return result
  }

  /// A copy of a section's bytes, or nil for NOBITS sections and ranges outside the file.
  package func contents(of section: ELFSection) -> [UInt8]? {
    guard section.hasFileContents, section.offset <= UInt64(Int.max),
      section.size <= UInt64(Int.max)
    else {
      return nil
    }
    return mapped.bytes(at: Int(section.offset), count: Int(section.size))
  }

  /// A copy of `count` bytes at a virtual address (before the load bias), when a PT_LOAD segment
  /// holds all of them in the file (not in its zero-filled tail).
  package func bytes(atVirtualAddress address: UInt64, count: Int) -> [UInt8]? {
    guard count >= 0 else { return nil }
    let length = UInt64(count)
    for segment in programHeaders where segment.type == .load {
      guard address >= segment.vaddr else { continue }
      let delta = address - segment.vaddr
      guard delta <= segment.filesz, length <= segment.filesz - delta else { continue }
      let (fileOffset, overflow) = segment.offset.addingReportingOverflow(delta)
      guard !overflow, mapped.contains(offset: fileOffset, length: length) else { return nil }
      return mapped.withWindow(offset: fileOffset, length: length) { $0.bytes(0, count) } ?? nil
    }
    return nil
  }

  // MARK: - Load bias

  /// The system's page size, which the dynamic loader and the kernel map segments with.
  package static let systemPageSize: UInt64 = {
    let size = sysconf(Int32(_SC_PAGESIZE))
    return size > 0 ? UInt64(size) : 4096
  }()

  /// The amount to add (wrapping) to a virtual address of this file to get the address at which it
  /// is mapped in a process, given one /proc/PID/maps entry of this file: its start address and file
  /// offset. 0 for a fixed-address executable (ET_EXEC); nil when no PT_LOAD segment maps that file
  /// offset.
  ///
  /// Each PT_LOAD segment is mapped from the page holding `p_offset`, at the page holding
  /// `p_vaddr + bias`. So the mapping at file offset `off` belongs to a segment with
  /// `pageDown(p_offset) <= off < p_offset + p_filesz`, and the file byte at `off` has the virtual
  /// address `p_vaddr - (p_offset - off)`, which the process sees at `start`:
  /// `bias = start - (p_vaddr - p_offset + off)`. This holds for every piece of a segment whose
  /// mapping was split (by the RELRO mprotect, say), not only for its first page.
  ///
  /// One entry can be ambiguous: two segments can share a file page (the last page of one and the
  /// first of the next, common in small PIEs) and then mean biases one page apart. A segment starting
  /// exactly at `off` is preferred, and `executable` (the mapping's x permission), when given, rules
  /// out segments with the other PF_X; the executable mapping is practically never ambiguous. When
  /// all the entries of the file are at hand, `loadBias(for: [MemoryMap])` resolves the ambiguity.
  package func loadBias(
    mapStart: UInt64, mapOffset: UInt64, executable: Bool? = nil,
    pageSize: UInt64 = ELFFile.systemPageSize
  ) -> UInt64? {
    loadBiasCandidates(
      mapStart: mapStart, mapOffset: mapOffset, executable: executable, pageSize: pageSize
    ).first
  }

  /// `loadBias(mapStart:mapOffset:executable:)` for one /proc/PID/maps entry of this file.
  package func loadBias(for map: MemoryMap) -> UInt64? {
    loadBias(mapStart: map.start, mapOffset: map.offset, executable: map.executable)
  }

  /// The load bias that agrees with the most of these /proc/PID/maps entries of this file (each
  /// entry agrees with every bias it could mean, see `loadBiasCandidates`); ties go to the preferred
  /// meaning of the earliest entry. nil when no entry is mapped from a PT_LOAD segment.
  package func loadBias(for maps: [MemoryMap]) -> UInt64? {
    if type == .executable { return 0 }
    var votes: [UInt64: Int] = [:]
    var order: [UInt64] = []
    for map in maps {
      let candidates = loadBiasCandidates(
        mapStart: map.start, mapOffset: map.offset, executable: map.executable)
      var seen: Set<UInt64> = []
      for bias in candidates where seen.insert(bias).inserted {
        if votes[bias] == nil { order.append(bias) }
        votes[bias, default: 0] += 1
      }
    }
    var best: (bias: UInt64, votes: Int)?
    for bias in order {
      let count = votes[bias, default: 0]
      if count > best?.votes ?? 0 { best = (bias, count) }
    }
    return best?.bias
  }

  /// Every load bias one /proc/PID/maps entry could mean (one per PT_LOAD segment that maps its file
  /// offset), the preferred first. `[0]` for a fixed-address executable.
  package func loadBiasCandidates(
    mapStart: UInt64, mapOffset: UInt64, executable: Bool? = nil,
    pageSize: UInt64 = ELFFile.systemPageSize
  ) -> [UInt64] {
    if type == .executable { return [0] }
    let mask = pageSize > 0 && pageSize & (pageSize &- 1) == 0 ? ~(pageSize &- 1) : ~UInt64(4095)
    let segments = programHeaders.filter { segment in
      guard segment.type == .load, segment.filesz > 0 else { return false }
      let (end, overflow) = segment.offset.addingReportingOverflow(segment.filesz)
      return segment.offset & mask <= mapOffset && (overflow || mapOffset < end)
    }
    // Preference: the right x permission, then a segment that starts at this page, then file order.
    func rank(_ segment: ELFProgramHeader) -> Int {
      var rank = 0
      if let executable, segment.isExecutable != executable { rank += 2 }
      if segment.offset & mask != mapOffset { rank += 1 }
      return rank
    }
    let ranked = segments.enumerated().sorted {
      (rank($0.element), $0.offset) < (rank($1.element), $1.offset)
    }
    return ranked.map { mapStart &- ($0.element.vaddr &- $0.element.offset &+ mapOffset) }
  }
}

// MARK: - Parsing

extension ELFFile {
  struct Header {
    var type: ELFFileType
    var machine: UInt16
    var entry: UInt64
    var phoff: UInt64
    var shoff: UInt64
    var phentsize: UInt16
    var phnum: UInt16
    var shentsize: UInt16
    var shnum: UInt16
    var shstrndx: UInt16
  }

  static let headerSize: UInt64 = 64
  static let programHeaderSize: UInt64 = 56
  static let sectionHeaderSize: UInt64 = 64
  static let symbolSize: UInt64 = 24
  /// e_phnum value meaning "the count is in section 0's sh_info".
  static let extendedNumbering: UInt16 = 0xffff
  /// e_shstrndx value meaning "the index is in section 0's sh_link".
  static let extendedIndex: UInt16 = 0xffff

  static func parseHeader(_ file: MappedFile) throws(ELFError) -> Header {
    let magic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]
    let prefix = file.bytes(at: 0, count: min(file.count, 4)) ?? []
    guard !prefix.isEmpty, prefix == Array(magic.prefix(prefix.count)) else { throw .notELF }
    guard let ident = file.bytes(at: 0, count: 16), prefix.count == 4 else {
      throw .truncated(what: "ELF identification")
    }
    guard ident[4] == 2 else { throw .unsupportedClass(ident[4]) }
    guard ident[5] == 1 else { throw .unsupportedByteOrder(ident[5]) }
    guard ident[6] == 1 else { throw .unsupportedVersion(ident[6]) }
    let header = file.withWindow(offset: 0, length: headerSize) { w in
      Header(
        type: ELFFileType(rawValue: w.u16(16)), machine: w.u16(18), entry: w.u64(24),
        phoff: w.u64(32),
        shoff: w.u64(40), phentsize: w.u16(54), phnum: w.u16(56), shentsize: w.u16(58),
        shnum: w.u16(60),
        shstrndx: w.u16(62))
    }
    guard let header else { throw .truncated(what: "ELF header") }
    return header
  }

  struct SectionTable {
    var sections: [ELFSection]
    var extendedSegmentCount: UInt32?
  }

  /// The `[offset, offset + count * entrySize)` range of a table, checked to lie inside the file.
  static func checkTable(
    _ file: MappedFile, what: String, offset: UInt64, count: UInt64, entrySize: UInt64
  ) throws(ELFError) {
    let (length, overflow) = count.multipliedReportingOverflow(by: entrySize)
    guard !overflow, file.contains(offset: offset, length: length) else {
      throw .truncated(what: what)
    }
  }

  static func parseSections(_ file: MappedFile, _ header: Header) throws(ELFError) -> SectionTable {
    guard header.shoff != 0 else {
      // No section headers (sstrip): nothing to name, only program headers.
      return SectionTable(sections: [], extendedSegmentCount: nil)
    }
    let entrySize = UInt64(header.shentsize)
    guard entrySize >= sectionHeaderSize else {
      throw .badEntrySize(what: "section header table", size: entrySize)
    }
    // Section 0 carries the real count and string-table index when they do not fit in 16 bits.
    let first = file.withWindow(offset: header.shoff, length: sectionHeaderSize) { w in
      (size: w.u64(32), link: w.u32(40), info: w.u32(44))
    }
    guard let first else { throw .truncated(what: "section header table") }
    let count = header.shnum == 0 ? first.size : UInt64(header.shnum)
    try checkTable(
      file, what: "section header table", offset: header.shoff, count: count, entrySize: entrySize)

    struct Raw {
      var name: UInt32
      var type: UInt32
      var flags: UInt64
      var addr: UInt64
      var offset: UInt64
      var size: UInt64
      var link: UInt32
      var info: UInt32
      var addralign: UInt64
      var entsize: UInt64
    }
    let tableLength = count * entrySize  // checked above
    let raws =
      file.withWindow(offset: header.shoff, length: tableLength) { w -> [Raw] in
        var raws: [Raw] = []
        raws.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
          let base = i * Int(entrySize)
          raws.append(
            Raw(
              name: w.u32(base), type: w.u32(base + 4), flags: w.u64(base + 8),
              addr: w.u64(base + 16),
              offset: w.u64(base + 24), size: w.u64(base + 32), link: w.u32(base + 40),
              info: w.u32(base + 44),
              addralign: w.u64(base + 48), entsize: w.u64(base + 56)))
        }
        return raws
      } ?? []

    // The section-name string table.
    var namesIndex = UInt64(header.shstrndx)
    if header.shstrndx == extendedIndex { namesIndex = UInt64(first.link) }
    var names: (offset: UInt64, size: UInt64)?
    if namesIndex != 0 {
      guard namesIndex < count else { throw .badIndex(what: "e_shstrndx", index: namesIndex) }
      let raw = raws[Int(namesIndex)]
      guard raw.type != ELFSectionType.nobits.rawValue, raw.type != ELFSectionType.null.rawValue
      else {
        throw .badIndex(what: "e_shstrndx", index: namesIndex)
      }
      guard file.contains(offset: raw.offset, length: raw.size) else {
        throw .truncated(what: "section name string table")
      }
      names = (raw.offset, raw.size)
    }

    var sections: [ELFSection] = []
    sections.reserveCapacity(raws.count)
    for (index, raw) in raws.enumerated() {
      var name = ""
      if let names, raw.name != 0 || index != 0 {
        let decoded = file.withWindow(offset: names.offset, length: names.size) { w in
          w.cString(at: Int(raw.name))
        }
        guard let decoded, let decoded else {
          throw .badStringOffset(what: "name of section \(index)", offset: UInt64(raw.name))
        }
        name = decoded
      }
      let section = ELFSection(
        index: index, name: name, type: ELFSectionType(rawValue: raw.type),
        flags: ELFSectionFlags(rawValue: raw.flags),
        addr: raw.addr, offset: raw.offset, size: raw.size, link: raw.link, info: raw.info,
        addralign: raw.addralign, entsize: raw.entsize)
      if section.hasFileContents, section.size > 0,
        !file.contains(offset: section.offset, length: section.size)
      {
        throw .truncated(what: "section \(index) \(name)")
      }
      sections.append(section)
    }
    return SectionTable(sections: sections, extendedSegmentCount: first.info)
  }

  static func parseProgramHeaders(
    _ file: MappedFile, _ header: Header, extendedCount: UInt32?
  ) throws(ELFError) -> [ELFProgramHeader] {
    var count = UInt64(header.phnum)
    if header.phnum == extendedNumbering, let extendedCount { count = UInt64(extendedCount) }
    guard count > 0, header.phoff != 0 else { return [] }
    let entrySize = UInt64(header.phentsize)
    guard entrySize >= programHeaderSize else {
      throw .badEntrySize(what: "program header table", size: entrySize)
    }
    try checkTable(
      file, what: "program header table", offset: header.phoff, count: count, entrySize: entrySize)
    let headers = file.withWindow(offset: header.phoff, length: count * entrySize) {
      w -> [ELFProgramHeader] in
      var result: [ELFProgramHeader] = []
      result.reserveCapacity(Int(count))
      for i in 0..<Int(count) {
        let base = i * Int(entrySize)
        result.append(
          ELFProgramHeader(
            type: ELFSegmentType(rawValue: w.u32(base)),
            flags: ELFSegmentFlags(rawValue: w.u32(base + 4)),
            offset: w.u64(base + 8), vaddr: w.u64(base + 16), filesz: w.u64(base + 32),
            memsz: w.u64(base + 40),
            align: w.u64(base + 48)))
      }
      return result
    }
    guard let headers else { throw .truncated(what: "program header table") }
    return headers
  }

  // MARK: - Symbols

  struct SymbolTableLocation: Sendable {
    var table: ELFSymbolTable
    var offset: UInt64
    var count: UInt64
    var entrySize: UInt64
    var stringsOffset: UInt64
    var stringsSize: UInt64
  }

  /// Checks .dynsym and .symtab and their string tables. A symbol table without file contents (as
  /// in a separate debug-info file, where allocated sections become NOBITS) is ignored.
  static func locateSymbolTables(_ file: MappedFile, _ sections: [ELFSection]) throws(ELFError)
    -> [SymbolTableLocation]
  {
    var result: [SymbolTableLocation] = []
    // .dynsym first: its names are the exported ones and win ties.
    for kind in [ELFSectionType.dynsym, .symtab] {
      for section in sections where section.type == kind && section.size > 0 {
        let entrySize = section.entsize == 0 ? symbolSize : section.entsize
        guard entrySize >= symbolSize, entrySize <= UInt64(UInt32.max) else {
          throw .badEntrySize(what: "symbol table \(section.name)", size: section.entsize)
        }
        let link = Int(section.link)
        guard link > 0, link < sections.count else {
          throw .badIndex(what: "sh_link of \(section.name)", index: UInt64(section.link))
        }
        let strings = sections[link]
        guard strings.type == .strtab else {
          throw .badIndex(what: "sh_link of \(section.name)", index: UInt64(section.link))
        }
        // Both ranges were checked against the file size when the sections were parsed.
        result.append(
          SymbolTableLocation(
            table: kind == .dynsym ? .dynamic : .full, offset: section.offset,
            count: section.size / entrySize,
            entrySize: entrySize, stringsOffset: strings.offset, stringsSize: strings.size))
      }
    }
    return result
  }

  /// Whether entry `base` of a symbol table is a defined, named symbol worth indexing (not
  /// undefined, not a SECTION or FILE entry); its name offset when it is.
  private static func indexableNameOffset(_ entries: ByteWindow, _ base: Int) -> Int? {
    guard entries.u16(base + 6) != 0 else { return nil }  // SHN_UNDEF: defined elsewhere
    let type = ELFSymbolType(rawValue: entries.u8(base + 4) & 0xf)
    guard type != .section, type != .file else { return nil }
    let nameOffset = Int(entries.u32(base))
    return nameOffset != 0 ? nameOffset : nil
  }

  /// The symbol of entry `base`, nil when it is not indexable or its name is empty or unterminated.
  private static func decodeSymbol(
    _ entries: ByteWindow, _ strings: ByteWindow, _ base: Int, table: ELFSymbolTable
  ) -> ELFSymbol? {
    guard let nameOffset = indexableNameOffset(entries, base), let name = strings.cString(at: nameOffset),
      !name.isEmpty
    else { return nil }
    let info = entries.u8(base + 4)
    return ELFSymbol(
      name: name, value: entries.u64(base + 8), size: entries.u64(base + 16),
      type: ELFSymbolType(rawValue: info & 0xf), binding: ELFSymbolBinding(rawValue: info >> 4),
      sectionIndex: entries.u16(base + 6), table: table)
  }

  /// Runs `body` with a symbol table's entries and its string table.
  private func withTable<R>(_ location: SymbolTableLocation, _ body: (ByteWindow, ByteWindow) -> R) -> R? {
    let length = location.count * location.entrySize  // <= the section size, checked at init
    return mapped.withWindow(offset: location.stringsOffset, length: location.stringsSize) { strings in
      mapped.withWindow(offset: location.offset, length: length) { entries in body(entries, strings) }
    }?.flatMap { $0 }
  }

  /// Calls `body` with every defined, named symbol of one table, in table order.
  func decodeSymbols(_ location: SymbolTableLocation, _ body: (ELFSymbol) -> Void) {
    _ = withTable(location) { entries, strings in
      let entrySize = Int(location.entrySize)
      for i in 0..<Int(location.count) {
        if let symbol = Self.decodeSymbol(entries, strings, i * entrySize, table: location.table) { body(symbol) }
      }
    }
  }

  /// An open-addressing table from the hash of a symbol's name to where the symbol is: built
  /// without decoding a single name into a String. Slots along one probe run keep table order.
  struct SymbolIndex {
    /// (table index in `symbolTables`, entry index) per indexed symbol, and its name's hash.
    var entries: [(hash: UInt32, table: UInt32, entry: UInt32)] = []
    /// 1 + an index into `entries`, 0 for an empty slot; the count is a power of two.
    var slots: [UInt32] = []
  }

  func buildSymbolIndex() -> SymbolIndex {
    var index = SymbolIndex()
    let total = symbolTables.reduce(0) { $0 + Int(min($1.count, 1 << 24)) }
    index.entries.reserveCapacity(total)
    for (tableNumber, location) in symbolTables.enumerated() {
      _ = withTable(location) { entries, strings in
        let entrySize = Int(location.entrySize)
        for i in 0..<Int(min(location.count, 1 << 24)) {
          guard let nameOffset = Self.indexableNameOffset(entries, i * entrySize),
            let hash = strings.cStringHash(at: nameOffset)
          else { continue }
          index.entries.append((hash, UInt32(tableNumber), UInt32(i)))
        }
      }
    }
    var slotCount = 16
    while slotCount < index.entries.count * 2 { slotCount *= 2 }
    index.slots = [UInt32](repeating: 0, count: slotCount)
    let mask = slotCount - 1
    for (number, entry) in index.entries.enumerated() {
      var slot = Int(entry.hash) & mask
      while index.slots[slot] != 0 { slot = (slot + 1) & mask }
      index.slots[slot] = UInt32(number + 1)
    }
    return index
  }

  /// The symbol `name` (see `symbol(named:)` for which one wins).
  func lookUp(_ name: String, in index: SymbolIndex) -> ELFSymbol? {
    guard !index.slots.isEmpty else { return nil }
    let hash = fnv1a(name.utf8)
    let mask = index.slots.count - 1
    var slot = Int(hash) & mask
    var found: ELFSymbol?
    // Bounded by the table size (half of it is empty, so runs end early).
    for _ in 0..<index.slots.count {
      let number = index.slots[slot]
      if number == 0 { break }
      slot = (slot + 1) & mask
      let entry = index.entries[Int(number - 1)]
      guard entry.hash == hash else { continue }
      let location = symbolTables[Int(entry.table)]
      let symbol = withTable(location) { entries, strings in
        Self.decodeSymbol(entries, strings, Int(entry.entry) * Int(location.entrySize), table: location.table)
      }
      guard let symbol = symbol ?? nil, symbol.name == name else { continue }
      if symbol.binding != .local { return symbol }
      if found == nil { found = symbol }
    }
    return found
  }

  // MARK: - Notes

  static let noteGNUBuildID: UInt32 = 3

  /// The NT_GNU_BUILD_ID descriptor from the PT_NOTE segments, or from SHT_NOTE sections when the
  /// file has no program headers. nil when absent or malformed.
  static func findBuildID(
    _ file: MappedFile, programHeaders: [ELFProgramHeader], sections: [ELFSection]
  ) -> [UInt8]? {
    var ranges: [(offset: UInt64, size: UInt64, align: UInt64)] = programHeaders.filter {
      $0.type == .note
    }.map {
      ($0.offset, $0.filesz, $0.align)
    }
    if ranges.isEmpty {
      ranges = sections.filter { $0.type == .note }.map { ($0.offset, $0.size, $0.addralign) }
    }
    for range in ranges {
      let found = file.withWindow(offset: range.offset, length: range.size) { w in
        findNote(in: w, type: noteGNUBuildID, name: "GNU", alignment: range.align == 8 ? 8 : 4)
      }
      if let found, let found { return found }
    }
    return nil
  }

  /// The descriptor of the first note of `type` owned by `name`. Each step advances by at least the
  /// 12-byte note header, so the walk ends within the window.
  static func findNote(in w: ByteWindow, type: UInt32, name: String, alignment: Int) -> [UInt8]? {
    let wantedName = Array(name.utf8) + [0]
    func aligned(_ value: Int) -> Int { (value + alignment - 1) & ~(alignment - 1) }
    var position = 0
    while w.contains(position, 12) {
      let nameSize = Int(w.u32(position))
      let descSize = Int(w.u32(position + 4))
      let noteType = w.u32(position + 8)
      let namePosition = position + 12
      let descPosition = namePosition + aligned(nameSize)
      guard w.contains(namePosition, nameSize), w.contains(descPosition, descSize) else {
        return nil
      }
      if noteType == type, w.bytes(namePosition, nameSize) == wantedName {
        return w.bytes(descPosition, descSize)
      }
      position = descPosition + aligned(descSize)
    }
    return nil
  }
}
