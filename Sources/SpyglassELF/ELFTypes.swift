//===--- ELFTypes.swift - headers, sections and symbols as values ---------===//
//
// The "kind" fields (file type, segment type, section type, symbol type and binding) are open
// structs over the raw value rather than enums: a file may carry OS- or processor-specific values
// that must survive parsing.
//
//===----------------------------------------------------------------------===//

/// e_type.
public struct ELFFileType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt16
  public init(rawValue: UInt16) { self.rawValue = rawValue }

  public static let none = ELFFileType(rawValue: 0)
  public static let relocatable = ELFFileType(rawValue: 1)
  /// ET_EXEC: a fixed-address (non-PIE) executable; its load bias is 0.
  public static let executable = ELFFileType(rawValue: 2)
  /// ET_DYN: a shared object or a position-independent executable.
  public static let sharedObject = ELFFileType(rawValue: 3)
  public static let core = ELFFileType(rawValue: 4)

  public var description: String {
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
public struct ELFSegmentType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  public static let null = ELFSegmentType(rawValue: 0)
  public static let load = ELFSegmentType(rawValue: 1)
  public static let dynamic = ELFSegmentType(rawValue: 2)
  public static let interpreter = ELFSegmentType(rawValue: 3)
  public static let note = ELFSegmentType(rawValue: 4)
  public static let programHeaders = ELFSegmentType(rawValue: 6)
  public static let tls = ELFSegmentType(rawValue: 7)
  public static let gnuEHFrame = ELFSegmentType(rawValue: 0x6474_e550)
  public static let gnuStack = ELFSegmentType(rawValue: 0x6474_e551)
  public static let gnuRelro = ELFSegmentType(rawValue: 0x6474_e552)
  public static let gnuProperty = ELFSegmentType(rawValue: 0x6474_e553)

  public var description: String {
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
public struct ELFSegmentFlags: OptionSet, Hashable, Sendable {
  public var rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  public static let execute = ELFSegmentFlags(rawValue: 1)
  public static let write = ELFSegmentFlags(rawValue: 2)
  public static let read = ELFSegmentFlags(rawValue: 4)
}

/// One program header (segment).
public struct ELFProgramHeader: Hashable, Sendable {
  public var type: ELFSegmentType
  public var flags: ELFSegmentFlags
  /// File offset of the segment's first byte.
  public var offset: UInt64
  /// Virtual address of the segment's first byte, before the load bias.
  public var vaddr: UInt64
  /// Bytes present in the file.
  public var filesz: UInt64
  /// Bytes in memory (larger than `filesz` when the segment ends in zero-filled .bss).
  public var memsz: UInt64
  public var align: UInt64

  public init(
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

  public var isExecutable: Bool { flags.contains(.execute) }
}

/// sh_type.
public struct ELFSectionType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }

  public static let null = ELFSectionType(rawValue: 0)
  public static let progbits = ELFSectionType(rawValue: 1)
  public static let symtab = ELFSectionType(rawValue: 2)
  public static let strtab = ELFSectionType(rawValue: 3)
  public static let rela = ELFSectionType(rawValue: 4)
  public static let hash = ELFSectionType(rawValue: 5)
  public static let dynamic = ELFSectionType(rawValue: 6)
  public static let note = ELFSectionType(rawValue: 7)
  /// Occupies no file space (.bss, .tbss): `offset` is meaningless.
  public static let nobits = ELFSectionType(rawValue: 8)
  public static let rel = ELFSectionType(rawValue: 9)
  public static let dynsym = ELFSectionType(rawValue: 11)
  public static let initArray = ELFSectionType(rawValue: 14)
  public static let finiArray = ELFSectionType(rawValue: 15)
  public static let preinitArray = ELFSectionType(rawValue: 16)
  public static let group = ELFSectionType(rawValue: 17)
  public static let symtabShndx = ELFSectionType(rawValue: 18)
  public static let gnuHash = ELFSectionType(rawValue: 0x6fff_fff6)
  public static let gnuVerdef = ELFSectionType(rawValue: 0x6fff_fffd)
  public static let gnuVerneed = ELFSectionType(rawValue: 0x6fff_fffe)
  public static let gnuVersym = ELFSectionType(rawValue: 0x6fff_ffff)

  /// The name readelf prints in `readelf -S`.
  public var description: String {
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
public struct ELFSectionFlags: OptionSet, Hashable, Sendable {
  public var rawValue: UInt64
  public init(rawValue: UInt64) { self.rawValue = rawValue }

  public static let write = ELFSectionFlags(rawValue: 0x1)
  public static let alloc = ELFSectionFlags(rawValue: 0x2)
  public static let execInstr = ELFSectionFlags(rawValue: 0x4)
  public static let merge = ELFSectionFlags(rawValue: 0x10)
  public static let strings = ELFSectionFlags(rawValue: 0x20)
  public static let infoLink = ELFSectionFlags(rawValue: 0x40)
  public static let linkOrder = ELFSectionFlags(rawValue: 0x80)
  public static let group = ELFSectionFlags(rawValue: 0x200)
  public static let tls = ELFSectionFlags(rawValue: 0x400)
  public static let compressed = ELFSectionFlags(rawValue: 0x800)
}

/// One section header.
public struct ELFSection: Hashable, Sendable {
  /// Index in the section header table.
  public var index: Int
  public var name: String
  public var type: ELFSectionType
  public var flags: ELFSectionFlags
  /// Virtual address when loaded (0 for sections that are not allocated), before the load bias.
  public var addr: UInt64
  /// File offset; meaningless for NOBITS sections.
  public var offset: UInt64
  public var size: UInt64
  public var link: UInt32
  public var info: UInt32
  public var addralign: UInt64
  public var entsize: UInt64

  public init(
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
  public var hasFileContents: Bool { type != .nobits && type != .null }
}

/// The low four bits of st_info.
public struct ELFSymbolType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }

  public static let notype = ELFSymbolType(rawValue: 0)
  public static let object = ELFSymbolType(rawValue: 1)
  public static let function = ELFSymbolType(rawValue: 2)
  public static let section = ELFSymbolType(rawValue: 3)
  public static let file = ELFSymbolType(rawValue: 4)
  public static let common = ELFSymbolType(rawValue: 5)
  /// A thread-local variable: the value is an offset in the TLS block, not an address.
  public static let tls = ELFSymbolType(rawValue: 6)
  public static let gnuIFunc = ELFSymbolType(rawValue: 10)

  public var description: String {
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
public struct ELFSymbolBinding: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
  public var rawValue: UInt8
  public init(rawValue: UInt8) { self.rawValue = rawValue }

  /// A file-local (`static`) symbol, present only in .symtab.
  public static let local = ELFSymbolBinding(rawValue: 0)
  public static let global = ELFSymbolBinding(rawValue: 1)
  public static let weak = ELFSymbolBinding(rawValue: 2)
  public static let gnuUnique = ELFSymbolBinding(rawValue: 10)

  public var description: String {
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
public enum ELFSymbolTable: Hashable, Sendable {
  /// .dynsym: the exported symbols, kept in stripped binaries.
  case dynamic
  /// .symtab: all symbols including locals, removed by strip.
  case full
}

/// A defined symbol.
public struct ELFSymbol: Hashable, Sendable {
  public var name: String
  /// The symbol's virtual address (before the load bias), or its TLS offset for `.tls` symbols.
  public var value: UInt64
  public var size: UInt64
  public var type: ELFSymbolType
  public var binding: ELFSymbolBinding
  /// st_shndx: the section the symbol is defined in, or a special index (0xfff1 SHN_ABS, ...).
  public var sectionIndex: UInt16
  public var table: ELFSymbolTable

  public init(
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
