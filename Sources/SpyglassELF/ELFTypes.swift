//===--- ELFTypes.swift - headers, sections and symbols as values ---------===//
//
// The "kind" fields (file type, segment type, section type, symbol type and binding) are open
// structs over the raw value rather than enums: a file may carry OS- or processor-specific values
// that must survive parsing.
//
//===----------------------------------------------------------------------===//

/// e_type.
package struct ELFFileType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  package var rawValue: UInt16
  package init(rawValue: UInt16) { self.rawValue = rawValue }

  package static let none = ELFFileType(rawValue: 0)
  package static let relocatable = ELFFileType(rawValue: 1)
  /// ET_EXEC: a fixed-address (non-PIE) executable; its load bias is 0.
  package static let executable = ELFFileType(rawValue: 2)
  /// ET_DYN: a shared object or a position-independent executable.
  package static let sharedObject = ELFFileType(rawValue: 3)
  package static let core = ELFFileType(rawValue: 4)

  package var description: String {
    switch self {
    case .none: return "NONE"
    case .relocatable: return "REL"
    case .executable: return "EXEC"
    case .sharedObject: return "DYN"
    case .core: return "CORE"
    default: return "ET_\(rawValue)"
    }
  }
}

/// p_type.
package struct ELFSegmentType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  package var rawValue: UInt32
  package init(rawValue: UInt32) { self.rawValue = rawValue }

  package static let null = ELFSegmentType(rawValue: 0)
  package static let load = ELFSegmentType(rawValue: 1)
  package static let dynamic = ELFSegmentType(rawValue: 2)
  package static let interpreter = ELFSegmentType(rawValue: 3)
  package static let note = ELFSegmentType(rawValue: 4)
  package static let programHeaders = ELFSegmentType(rawValue: 6)
  package static let tls = ELFSegmentType(rawValue: 7)
  package static let gnuEHFrame = ELFSegmentType(rawValue: 0x6474_e550)
  package static let gnuStack = ELFSegmentType(rawValue: 0x6474_e551)
  package static let gnuRelro = ELFSegmentType(rawValue: 0x6474_e552)
  package static let gnuProperty = ELFSegmentType(rawValue: 0x6474_e553)

  package var description: String {
    switch self {
    case .null: return "NULL"
    case .load: return "LOAD"
    case .dynamic: return "DYNAMIC"
    case .interpreter: return "INTERP"
    case .note: return "NOTE"
    case .programHeaders: return "PHDR"
    case .tls: return "TLS"
    case .gnuEHFrame: return "GNU_EH_FRAME"
    case .gnuStack: return "GNU_STACK"
    case .gnuRelro: return "GNU_RELRO"
    case .gnuProperty: return "GNU_PROPERTY"
    default: return "PT_0x" + String(rawValue, radix: 16)
    }
  }
}

/// p_flags.
package struct ELFSegmentFlags: OptionSet, Hashable, Sendable {
  package var rawValue: UInt32
  package init(rawValue: UInt32) { self.rawValue = rawValue }

  package static let execute = ELFSegmentFlags(rawValue: 1)
  package static let write = ELFSegmentFlags(rawValue: 2)
  package static let read = ELFSegmentFlags(rawValue: 4)
}

/// One program header (segment).
package struct ELFProgramHeader: Hashable, Sendable {
  package var type: ELFSegmentType
  package var flags: ELFSegmentFlags
  /// File offset of the segment's first byte.
  package var offset: UInt64
  /// Virtual address of the segment's first byte, before the load bias.
  package var vaddr: UInt64
  /// Bytes present in the file.
  package var filesz: UInt64
  /// Bytes in memory (larger than `filesz` when the segment ends in zero-filled .bss).
  package var memsz: UInt64
  package var align: UInt64

  package init(
    type: ELFSegmentType, flags: ELFSegmentFlags, offset: UInt64, vaddr: UInt64, filesz: UInt64,
    memsz: UInt64, align: UInt64
  ) {
    self.type = type
    self.flags = flags
    self.offset = offset
    self.vaddr = vaddr
    self.filesz = filesz
    self.memsz = memsz
    self.align = align
  }

  package var isExecutable: Bool { flags.contains(.execute) }
}

/// sh_type.
package struct ELFSectionType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  package var rawValue: UInt32
  package init(rawValue: UInt32) { self.rawValue = rawValue }

  package static let null = ELFSectionType(rawValue: 0)
  package static let progbits = ELFSectionType(rawValue: 1)
  package static let symtab = ELFSectionType(rawValue: 2)
  package static let strtab = ELFSectionType(rawValue: 3)
  package static let rela = ELFSectionType(rawValue: 4)
  package static let hash = ELFSectionType(rawValue: 5)
  package static let dynamic = ELFSectionType(rawValue: 6)
  package static let note = ELFSectionType(rawValue: 7)
  /// Occupies no file space (.bss, .tbss): `offset` is meaningless.
  package static let nobits = ELFSectionType(rawValue: 8)
  package static let rel = ELFSectionType(rawValue: 9)
  package static let dynsym = ELFSectionType(rawValue: 11)
  package static let initArray = ELFSectionType(rawValue: 14)
  package static let finiArray = ELFSectionType(rawValue: 15)
  package static let preinitArray = ELFSectionType(rawValue: 16)
  package static let group = ELFSectionType(rawValue: 17)
  package static let symtabShndx = ELFSectionType(rawValue: 18)
  package static let gnuHash = ELFSectionType(rawValue: 0x6fff_fff6)
  package static let gnuVerdef = ELFSectionType(rawValue: 0x6fff_fffd)
  package static let gnuVerneed = ELFSectionType(rawValue: 0x6fff_fffe)
  package static let gnuVersym = ELFSectionType(rawValue: 0x6fff_ffff)

  /// The name readelf prints in `readelf -S`.
  package var description: String {
    switch self {
    case .null: return "NULL"
    case .progbits: return "PROGBITS"
    case .symtab: return "SYMTAB"
    case .strtab: return "STRTAB"
    case .rela: return "RELA"
    case .hash: return "HASH"
    case .dynamic: return "DYNAMIC"
    case .note: return "NOTE"
    case .nobits: return "NOBITS"
    case .rel: return "REL"
    case .dynsym: return "DYNSYM"
    case .initArray: return "INIT_ARRAY"
    case .finiArray: return "FINI_ARRAY"
    case .preinitArray: return "PREINIT_ARRAY"
    case .group: return "GROUP"
    case .symtabShndx: return "SYMTAB SECTION INDICES"
    case .gnuHash: return "GNU_HASH"
    case .gnuVerdef: return "VERDEF"
    case .gnuVerneed: return "VERNEED"
    case .gnuVersym: return "VERSYM"
    default: return "SHT_0x" + String(rawValue, radix: 16)
    }
  }
}

/// sh_flags.
package struct ELFSectionFlags: OptionSet, Hashable, Sendable {
  package var rawValue: UInt64
  package init(rawValue: UInt64) { self.rawValue = rawValue }

  package static let write = ELFSectionFlags(rawValue: 0x1)
  package static let alloc = ELFSectionFlags(rawValue: 0x2)
  package static let execInstr = ELFSectionFlags(rawValue: 0x4)
  package static let merge = ELFSectionFlags(rawValue: 0x10)
  package static let strings = ELFSectionFlags(rawValue: 0x20)
  package static let infoLink = ELFSectionFlags(rawValue: 0x40)
  package static let linkOrder = ELFSectionFlags(rawValue: 0x80)
  package static let group = ELFSectionFlags(rawValue: 0x200)
  package static let tls = ELFSectionFlags(rawValue: 0x400)
  package static let compressed = ELFSectionFlags(rawValue: 0x800)
}

/// One section header.
package struct ELFSection: Hashable, Sendable {
  /// Index in the section header table.
  package var index: Int
  package var name: String
  package var type: ELFSectionType
  package var flags: ELFSectionFlags
  /// Virtual address when loaded (0 for sections that are not allocated), before the load bias.
  package var addr: UInt64
  /// File offset; meaningless for NOBITS sections.
  package var offset: UInt64
  package var size: UInt64
  package var link: UInt32
  package var info: UInt32
  package var addralign: UInt64
  package var entsize: UInt64

  package init(
    index: Int, name: String, type: ELFSectionType, flags: ELFSectionFlags, addr: UInt64,
    offset: UInt64,
    size: UInt64, link: UInt32, info: UInt32, addralign: UInt64, entsize: UInt64
  ) {
    self.index = index
    self.name = name
    self.type = type
    self.flags = flags
    self.addr = addr
    self.offset = offset
    self.size = size
    self.link = link
    self.info = info
    self.addralign = addralign
    self.entsize = entsize
  }

  /// Whether the section occupies bytes in the file.
  package var hasFileContents: Bool { type != .nobits && type != .null }
}

/// The low four bits of st_info.
package struct ELFSymbolType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  package var rawValue: UInt8
  package init(rawValue: UInt8) { self.rawValue = rawValue }

  package static let notype = ELFSymbolType(rawValue: 0)
  package static let object = ELFSymbolType(rawValue: 1)
  package static let function = ELFSymbolType(rawValue: 2)
  package static let section = ELFSymbolType(rawValue: 3)
  package static let file = ELFSymbolType(rawValue: 4)
  package static let common = ELFSymbolType(rawValue: 5)
  /// A thread-local variable: the value is an offset in the TLS block, not an address.
  package static let tls = ELFSymbolType(rawValue: 6)
  package static let gnuIFunc = ELFSymbolType(rawValue: 10)

  package var description: String {
    switch self {
    case .notype: return "NOTYPE"
    case .object: return "OBJECT"
    case .function: return "FUNC"
    case .section: return "SECTION"
    case .file: return "FILE"
    case .common: return "COMMON"
    case .tls: return "TLS"
    case .gnuIFunc: return "IFUNC"
    default: return "STT_\(rawValue)"
    }
  }
}

/// The high four bits of st_info.
package struct ELFSymbolBinding: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  package var rawValue: UInt8
  package init(rawValue: UInt8) { self.rawValue = rawValue }

  /// A file-local (`static`) symbol, present only in .symtab.
  package static let local = ELFSymbolBinding(rawValue: 0)
  package static let global = ELFSymbolBinding(rawValue: 1)
  package static let weak = ELFSymbolBinding(rawValue: 2)
  package static let gnuUnique = ELFSymbolBinding(rawValue: 10)

  package var description: String {
    switch self {
    case .local: return "LOCAL"
    case .global: return "GLOBAL"
    case .weak: return "WEAK"
    case .gnuUnique: return "UNIQUE"
    default: return "STB_\(rawValue)"
    }
  }
}

/// Which table a symbol was read from.
package enum ELFSymbolTable: Hashable, Sendable {
  /// .dynsym: the exported symbols, kept in stripped binaries.
  case dynamic
  /// .symtab: all symbols including locals, removed by strip.
  case full
}

/// A defined symbol.
package struct ELFSymbol: Hashable, Sendable {
  package var name: String
  /// The symbol's virtual address (before the load bias), or its TLS offset for `.tls` symbols.
  package var value: UInt64
  package var size: UInt64
  package var type: ELFSymbolType
  package var binding: ELFSymbolBinding
  /// st_shndx: the section the symbol is defined in, or a special index (0xfff1 SHN_ABS, ...).
  package var sectionIndex: UInt16
  package var table: ELFSymbolTable

  package init(
    name: String, value: UInt64, size: UInt64, type: ELFSymbolType, binding: ELFSymbolBinding,
    sectionIndex: UInt16, table: ELFSymbolTable
  ) {
    self.name = name
    self.value = value
    self.size = size
    self.type = type
    self.binding = binding
    self.sectionIndex = sectionIndex
    self.table = table
  }
}
