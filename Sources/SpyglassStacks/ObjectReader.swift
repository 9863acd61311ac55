//===--- ObjectReader.swift - Python objects out of target memory ---------===//
//
// Reads str, bytes, int and dict objects through a MemoryReader, following one version's layout.
// Every length and count read from the target is bounded before it is used.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassProcess

/// Bounds for anything whose size comes from the target.
package enum ReadLimits {
  /// Longest function or file name read, in characters (py-spy refuses 4096 and more).
  package static let nameCharacters = 4096
  /// Most dict entries scanned in one dict.
  package static let dictEntries = 1 << 16
  /// Most threads walked in one interpreter.
  package static let threads = 4096
  /// Most frames walked in one thread: far above any real stack (a 5,000-deep recursion under
  /// `sys.setrecursionlimit(10000)` is ordinary; 3.11+ recurses in Python without the C stack), so
  /// it only bounds a chain that does not end. A deeper stack keeps its innermost frames under a
  /// `<stack cut: …>` root (`cutRoot`); a chain that loops is an error.
  package static let frames = 100_000
  /// The root a thread's stack gets when its walk stopped at `frames`.
  package static let cutRoot = "<stack cut: deeper than 100000 frames>"
  /// Most frames a walk reserves room for from the previous sample's depth.
  package static let reservedFrames = 4096
  /// Largest line table read.
  package static let lineTableBytes = 1 << 16
  /// Most ranges a sample's first read guesses from the previous sample (the kernel takes 1024
  /// iovecs per process_vm_readv).
  package static let guessedRanges = 1000
  /// Most bytes a sample's first read guesses (a real 50-thread target needs well under 1 MiB).
  package static let guessedBytes = 4 << 20
  /// Most frame objects (≤3.10) guessed per thread.
  package static let guessedFrameObjects = 512
  /// Bytes past a data stack's top (3.11+) guessed for the next sample: a frame or two deeper.
  /// Deeper stacks are read when met; every byte guessed is a cache line the target's CPU owns,
  /// copied across.
  package static let dataStackSlack: UInt64 = 512
  /// Blocking mode: the CPU a target held between two frames must use before its tick is read
  /// again, and the longest wait for it (`ProcessSampler.letTargetRun`).
  package static let retryProgressNanoseconds: UInt64 = 50_000
  package static let retryWaitNanoseconds: UInt64 = 50_000_000
}

/// Reads Python objects of one interpreter version.
package struct ObjectReader<Memory: MemoryReader> {
  package let memory: Memory
  package let layout: PythonLayout
  package let model: PythonTraits

  package init(memory: Memory, layout: PythonLayout, model: PythonTraits) {
    self.memory = memory
    self.layout = layout
    self.model = model
  }

  // .. strings ..............................................................

  /// A `str` (3.x) or `str`/`bytes` (2.7) object as text, at most `limit` characters. Invalid
  /// UTF-8 or lone surrogates are replaced (U+FFFD), never trusted. A longer string is cut to
  /// `limit` characters followed by "…", so a shortened name says so.
  package func string(at address: RemoteAddress, limit: Int = ReadLimits.nameCharacters) throws(ReadFault) -> String {
    if model.stringModel == .bytes27 {
      let bytes = try bytes27(at: address, limit: limit)
      let text = String(decoding: bytes, as: UTF8.self)
      guard bytes.count >= limit, limit > 0 else { return text }
      let size = Int(
        bitPattern: UInt(try memory.readUInt64(at: address &+ UInt64(layout.varObjectSize.member("varObjectSize")))))
      return size > limit ? text + "…" : text
    }
    let (text, length) = try unicode(at: address, limit: limit)
    return length > limit ? text + "…" : text
  }

  /// The raw bytes of a 2.7 `str` or a 3.x `bytes` object, at most `limit` bytes.
  package func bytesObject(at address: RemoteAddress, limit: Int) throws(ReadFault) -> [UInt8] {
    let size = Int(
      bitPattern: UInt(try memory.readUInt64(at: address &+ UInt64(layout.varObjectSize.member("varObjectSize")))))
    guard size >= 0, size <= maximumReadSize else { throw .implausible("bytes size \(size)") }
    return try memory.readBytes(
      at: address &+ UInt64(layout.bytesData.member("bytesData")), count: Swift.min(size, limit))
  }

  func bytes27(at address: RemoteAddress, limit: Int) throws(ReadFault) -> [UInt8] {
    try bytesObject(at: address, limit: limit)
  }

  /// A PEP 393 string: its text (cut to `limit` characters) and its full length in characters.
  package func unicode(at address: RemoteAddress, limit: Int) throws(ReadFault) -> (text: String, length: Int) {
    let header = ByteView(
      try memory.readBytes(at: address, count: layout.compactUnicodeObjectSize.member("compactUnicodeObjectSize")))
    let length = try Int(header.i64(layout.unicodeLength.member("unicodeLength")))
    guard length >= 0, length < (1 << 40) else { throw .implausible("string length \(length)") }
    guard let bits = model.unicodeState else { throw .implausible("no PEP 393 strings in this version") }
    let state = try header.u32(layout.unicodeState.member("unicodeState"))
    let kind = Int((state >> UInt32(bits.kindShift)) & bits.kindMask)
    let compact = (state >> UInt32(bits.compactShift)) & 1 == 1
    let ascii = (state >> UInt32(bits.asciiShift)) & 1 == 1
    guard kind == 1 || kind == 2 || kind == 4 else { throw .implausible("string kind \(kind)") }
    let count = Swift.min(length, limit)
    if count == 0 { return ("", length) }
    let data: RemoteAddress
    if compact {
      data =
        try address
        &+ UInt64(
          ascii
            ? layout.asciiObjectSize.member("asciiObjectSize")
            : layout.compactUnicodeObjectSize.member("compactUnicodeObjectSize"))
    } else {
      data = try header.u64(layout.unicodeData.member("unicodeData"))
    }
    let raw = try memory.readBytes(at: data, count: count * kind)
    switch kind {
    case 1:
      if ascii { return (String(decoding: raw, as: UTF8.self), length) }
      // Latin-1: one code point per byte.
      var scalars = String.UnicodeScalarView()
      for byte in raw { scalars.append(Unicode.Scalar(byte)) }
      return (String(scalars), length)
    case 2:
      var units: [UInt16] = []
      units.reserveCapacity(count)
      var i = 0
      while i + 1 < raw.count {
        units.append(UInt16(raw[i]) | UInt16(raw[i + 1]) << 8)
        i += 2
      }
      return (String(decoding: units, as: UTF16.self), length)
    default:
      var scalars = String.UnicodeScalarView()
      var i = 0
      while i + 3 < raw.count {
        let value = UInt32(raw[i]) | UInt32(raw[i + 1]) << 8 | UInt32(raw[i + 2]) << 16 | UInt32(raw[i + 3]) << 24
        scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
        i += 4
      }
      return (String(scalars), length)
    }
  }

  /// A 2.7 `unicode` object (`PyUnicodeObject`: a length in code units and a pointer to its
  /// `Py_UNICODE` data, UCS4 on the builds Linux makes): its text, cut to `limit` characters, and
  /// its full length. Lone surrogates and invalid code points become U+FFFD.
  package func unicode27(at address: RemoteAddress, limit: Int) throws(ReadFault) -> (text: String, length: Int) {
    guard let unit = model.unicode27UnitSize, let dataOffset = layout.unicode27Data else {
      throw .implausible("no 2.7 unicode objects in this version")
    }
    let length = Int(
      Int64(bitPattern: try memory.readUInt64(at: address &+ UInt64(layout.unicodeLength.member("unicodeLength")))))
    guard length >= 0, length < (1 << 40) else { throw .implausible("unicode length \(length)") }
    let count = Swift.min(length, Swift.max(0, limit))
    if count == 0 { return ("", length) }
    let data = try memory.readPointer(at: address &+ UInt64(dataOffset))
    let raw = ByteView(try memory.readBytes(at: data, count: count * unit))
    if unit == 2 {
      var units: [UInt16] = []
      units.reserveCapacity(count)
      for i in 0..<count { units.append(raw.u16(i * 2)) }
      return (String(decoding: units, as: UTF16.self), length)
    }
    var scalars = String.UnicodeScalarView()
    for i in 0..<count { scalars.append(Unicode.Scalar(raw.u32(i * 4)) ?? "\u{FFFD}") }
    return (String(scalars), length)
  }

  // .. types ................................................................

  package func typeAddress(of object: RemoteAddress) throws(ReadFault) -> RemoteAddress {
    try memory.readPointer(at: object &+ UInt64(layout.objectType.member("objectType")))
  }

  /// `tp_name` of a type object (at most 128 bytes).
  package func typeName(ofType type: RemoteAddress) throws(ReadFault) -> String {
    let namePointer = try memory.readPointer(at: type &+ UInt64(layout.typeName.member("typeName")))
    return String(decoding: try memory.readCString(at: namePointer, limit: 128), as: UTF8.self)
  }

  package func typeFlags(ofType type: RemoteAddress) throws(ReadFault) -> UInt64 {
    try memory.readUInt64(at: type &+ UInt64(layout.typeFlags.member("typeFlags")))
  }

  // .. integers ..............................................................

  /// An `int` (3.x `PyLong`, 2.7 `PyIntObject` or `PyLongObject`) that fits in 64 bits, as its
  /// two's-complement bit pattern; nil when it is larger.
  package func integer(at address: RemoteAddress, isPython2Int: Bool = false) throws(ReadFault) -> Int64? {
    if isPython2Int {
      return try Int64(bitPattern: memory.readUInt64(at: address &+ UInt64(layout.intValue.member("intValue"))))
    }
    let header = ByteView(try memory.readBytes(at: address, count: layout.longDigits.member("longDigits")))
    var digitCount: Int
    var negative: Bool
    if let tagOffset = layout.longTag {
      let tag = header.u64(tagOffset)
      digitCount = Int(tag >> 3)
      negative = tag & 3 == 2
    } else {
      let size = try header.i64(layout.varObjectSize.member("varObjectSize"))
      negative = size < 0
      digitCount = Int(clamping: size.magnitude)  // Int64.min's magnitude does not fit in an Int
    }
    if digitCount == 0 { return 0 }
    guard digitCount <= 3 else { return nil }
    let digits = ByteView(
      try memory.readBytes(at: address &+ UInt64(layout.longDigits.member("longDigits")), count: digitCount * 4))
    var magnitude: UInt64 = 0
    for i in stride(from: digitCount - 1, through: 0, by: -1) {
      let digit = UInt64(digits.u32(i * 4) & 0x3fff_ffff)
      if i == 2 && digit > 0xf { return nil }  // more than 64 bits
      magnitude = magnitude << 30 | digit
    }
    if negative {
      guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
      return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
    }
    return Int64(bitPattern: magnitude)
  }

  // .. dicts ..................................................................

  /// The (key, value) pairs of a dict object, in insertion order where the version keeps it.
  package func dictEntries(at dict: RemoteAddress) throws(ReadFault) -> [(key: RemoteAddress, value: RemoteAddress)] {
    if model.dictModel == .table27 { return try dictEntries27(at: dict) }
    let keys = try memory.readPointer(at: dict &+ UInt64(layout.dictKeys.member("dictKeys")))
    let values = try memory.readUInt64(at: dict &+ UInt64(layout.dictValues.member("dictValues")))
    return try entries(
      keys: keys, splitValues: values == 0 ? nil : values &+ UInt64(layout.dictValuesValues ?? 0))
  }

  /// Entries of a keys object; with `splitValues`, values come from that array instead.
  package func entries(keys: RemoteAddress, splitValues: RemoteAddress?) throws(ReadFault) -> [(
    key: RemoteAddress, value: RemoteAddress
  )] {
    let header = ByteView(try memory.readBytes(at: keys, count: layout.dictKeysIndices.member("dictKeysIndices")))
    let nentries = try Int(header.i64(layout.dictKeysNentries.member("dictKeysNentries")))
    guard nentries >= 0, nentries <= ReadLimits.dictEntries else { throw .implausible("dict with \(nentries) entries") }
    let entriesStart: RemoteAddress
    let entrySize: Int
    var keyOffset = 8
    var valueOffset = 16
    if let log2Offset = layout.dictKeysLog2IndexBytes {
      let log2IndexBytes = Int(header.u8(log2Offset))
      guard log2IndexBytes < 40 else { throw .implausible("dict index size") }
      entriesStart =
        try keys &+ UInt64(layout.dictKeysIndices.member("dictKeysIndices")) &+ (UInt64(1) << UInt64(log2IndexBytes))
      if try header.u8(layout.dictKeysKind.member("dictKeysKind")) != 0 {
        entrySize = try layout.dictUnicodeEntrySize.member("dictUnicodeEntrySize")
        keyOffset = 0
        valueOffset = 8
      } else {
        entrySize = try layout.dictKeyEntrySize.member("dictKeyEntrySize")
      }
    } else {
      let size = try header.u64(layout.dictKeysSize.member("dictKeysSize"))
      guard size > 0, size <= UInt64(ReadLimits.dictEntries) * 4 else { throw .implausible("dict size \(size)") }
      let indexWidth: UInt64 = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffff_ffff ? 4 : 8
      entriesStart = try keys &+ UInt64(layout.dictKeysIndices.member("dictKeysIndices")) &+ size * indexWidth
      entrySize = try layout.dictKeyEntrySize.member("dictKeyEntrySize")
    }
    if nentries == 0 { return [] }
    let table = ByteView(try memory.readBytes(at: entriesStart, count: nentries * entrySize))
    var valueTable: ByteView?
    if let splitValues {
      valueTable = ByteView(try memory.readBytes(at: splitValues, count: nentries * 8))
    }
    var result: [(key: RemoteAddress, value: RemoteAddress)] = []
    for i in 0..<nentries {
      let key = table.u64(i * entrySize + keyOffset)
      let value = valueTable.map { $0.u64(i * 8) } ?? table.u64(i * entrySize + valueOffset)
      if key != 0 && value != 0 { result.append((key, value)) }
    }
    return result
  }

  func dictEntries27(at dict: RemoteAddress) throws(ReadFault) -> [(key: RemoteAddress, value: RemoteAddress)] {
    let header = ByteView(try memory.readBytes(at: dict, count: layout.dict27Table.member("dict27Table") + 8))
    let mask = try Int(header.i64(layout.dict27Mask.member("dict27Mask")))
    guard mask >= 0, mask < ReadLimits.dictEntries * 4 else { throw .implausible("dict mask \(mask)") }
    let table = ByteView(
      try memory.readBytes(at: header.u64(layout.dict27Table.member("dict27Table")), count: (mask + 1) * 24))
    var result: [(key: RemoteAddress, value: RemoteAddress)] = []
    for i in 0...mask {
      let key = table.u64(i * 24 + 8)
      let value = table.u64(i * 24 + 16)
      if key != 0 && value != 0 { result.append((key, value)) }
    }
    return result
  }

  /// The value stored under the string key `name` in a dict, or nil.
  package func dictValue(at dict: RemoteAddress, forKey name: String) throws(ReadFault) -> RemoteAddress? {
    try lookup(name, in: try dictEntries(at: dict))
  }

  /// The attribute `name` of an ordinary instance (its `__dict__`, managed or not, or 3.13's
  /// inline values), or nil.
  package func instanceAttribute(of object: RemoteAddress, named name: String) throws(ReadFault) -> RemoteAddress? {
    let type = try typeAddress(of: object)
    let flags = try typeFlags(ofType: type)
    func sharedKeys() throws(ReadFault) -> RemoteAddress {
      try memory.readPointer(at: type &+ UInt64(layout.heapTypeCachedKeys.member("heapTypeCachedKeys")))
    }
    func word(_ offset: Int) throws(ReadFault) -> UInt64 {
      try memory.readUInt64(at: UInt64(bitPattern: Int64(bitPattern: object) &+ Int64(offset)))
    }
    let isManaged = model.typeFlags.managedDict.map { flags & $0 != 0 } ?? false
    switch model.managedDict {
    case .dictPointerAndInlineValues(let dictOffset) where isManaged:
      let dict = try word(dictOffset)
      if dict != 0 { return try dictValue(at: dict, forKey: name) }
      guard let inline = model.typeFlags.inlineValues, flags & inline != 0 else { return nil }
      // The values sit right after the object (tp_basicsize), as a _PyDictValues.
      let basicSize = try memory.readUInt64(at: type &+ UInt64(layout.typeBasicSize.member("typeBasicSize")))
      guard basicSize < 1 << 20 else { throw .implausible("tp_basicsize") }
      let values = object &+ basicSize &+ UInt64(layout.dictValuesValues ?? 0)
      return try lookup(name, in: try entries(keys: try sharedKeys(), splitValues: values))
    case .valuesAndDictPointers(let valuesOffset, let dictOffset) where isManaged:
      let dict = try word(dictOffset)
      if dict != 0 { return try dictValue(at: dict, forKey: name) }
      let values = try word(valuesOffset)
      guard values != 0 else { return nil }
      return try lookup(name, in: try entries(keys: try sharedKeys(), splitValues: values))
    case .taggedDictOrValues(let offset) where isManaged:
      // `PyDictOrValues`: with the low bit set it is the values array minus one, else a dict.
      let tagged = try word(offset)
      if tagged & 1 == 1 {
        return try lookup(name, in: try entries(keys: try sharedKeys(), splitValues: tagged &+ 1))
      }
      guard tagged != 0 else { return nil }
      return try dictValue(at: tagged, forKey: name)
    default:
      let dictOffset = Int64(
        bitPattern: try memory.readUInt64(at: type &+ UInt64(layout.typeDictOffset.member("typeDictOffset"))))
      guard dictOffset > 0, dictOffset < 1 << 20 else { return nil }
      let dict = try memory.readUInt64(at: object &+ UInt64(dictOffset))
      guard dict != 0 else { return nil }
      return try dictValue(at: dict, forKey: name)
    }
  }

  private func lookup(_ name: String, in entries: [(key: RemoteAddress, value: RemoteAddress)]) throws(ReadFault)
    -> RemoteAddress?
  {
    for (key, value) in entries {
      if let text = try? string(at: key, limit: name.utf8.count + 1), text == name { return value }
    }
    return nil
  }
}
