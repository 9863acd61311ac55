//===--- Locals.swift - arguments, locals and their reprs (dump --locals) -===//
//
// A frame's fast locals are read from the frame's trailing array (`f_localsplus` / `localsplus`),
// named by `co_varnames` / `co_localsplusnames`; the first `co_argcount` are the arguments (as
// py-spy shows them). Values are rendered by a bounded repr: every container walk is limited in
// depth and length, every string in characters, and the whole repr in a character budget
// (128 × the number of -l), so a hostile or huge object can never balloon the output.
//
//===----------------------------------------------------------------------===//

import SpyglassLayouts
import SpyglassModel
import SpyglassProcess

extension StackWalker {
  /// The arguments and locals of a sampled frame, with reprs of at most `budget` characters.
  ///
  /// Cell and free variables are listed too, with the value their cell holds (py-spy leaves them
  /// out): a local that a nested function captures, and in the nested function the variable it
  /// captured. 3.11+ names every slot in `co_localsplusnames`; before, the cells follow the fast
  /// locals, named by `co_cellvars` then `co_freevars`, and an argument that is captured moves
  /// into its cell (its own slot is cleared), so it is named an argument there. A cell with
  /// nothing in it yet is left out like an unbound local.
  package func locals(of frame: SampledFrame, budget: Int) -> [LocalVariable] {
    guard case .python(let id, _, let frameAddress, _) = frame else { return [] }
    let code = codes.code(id)
    guard code.varnames != 0, var names = try? tupleItems(code.varnames, limit: Self.maximumSlots) else {
      return []
    }
    let fastLocals = Swift.min(Swift.max(code.localCount, 0), names.count)
    if code.localsKinds == 0 {
      // ≤3.10: only the first co_nlocals of co_varnames have slots, then the cells.
      names.removeLast(names.count - fastLocals)
      for tuple in [code.cellvars, code.freevars] where tuple != 0 && names.count < Self.maximumSlots {
        guard let more = try? tupleItems(tuple, limit: Self.maximumSlots - names.count) else { break }
        names += more
      }
    }
    let count = names.count
    guard count > 0 else { return [] }
    let localsplus: Int?
    switch model.frameModel {
    case .frameObject: localsplus = layout.frameLocalsplus
    case .interpreterFrameViaCFrame, .interpreterFrame: localsplus = layout.iframeLocalsplus
    }
    guard let base = localsplus else { return [] }
    guard let slots = try? memory.readBytes(at: frameAddress &+ UInt64(base), count: count * 8) else { return [] }
    let values = ByteView(slots)
    var renderer = ReprRenderer(objects: objects)
    var result: [LocalVariable] = []
    func name(_ index: Int) -> String { (try? objects.string(at: names[index], limit: 256)) ?? "?" }
    let argumentCount = Swift.min(Swift.max(code.argumentCount, 0), fastLocals)
    let argumentNames = Set((0..<argumentCount).map(name))
    for index in 0..<count {
      var value = values.u64(index * 8)
      if let tags = model.stackRef {
        // 3.14+: a `_PyStackRef`. A tagged int holds its value in the word itself.
        if value & tags.tagBits == tags.intTag {
          let number = Int64(bitPattern: value) >> Int64(tags.intShift)
          result.append(
            LocalVariable(name: name(index), address: value, isArgument: index < argumentCount, repr: String(number)))
          continue
        }
        value &= ~tags.tagBits
      }
      guard value != 0 else { continue }  // unbound
      let name = name(index)
      var isArgument = index < argumentCount
      if let contents = renderer.cellContents(value) {
        guard contents != 0 else { continue }  // a cell not yet assigned
        value = contents
        if index >= fastLocals && argumentNames.contains(name) {
          // A captured argument's cell (≤3.10): 2.7 also keeps the value it was called with in
          // the argument's own slot; the cell holds the current one.
          isArgument = true
          result.removeAll { $0.isArgument && $0.name == name }
        }
      }
      result.append(
        LocalVariable(name: name, address: value, isArgument: isArgument, repr: renderer.repr(value, budget: budget)))
    }
    return result
  }

  /// The most variables listed for one frame.
  static var maximumSlots: Int { 512 }

  func tupleItems(_ tuple: RemoteAddress, limit: Int) throws(ReadFault) -> [RemoteAddress] {
    try objects.sequenceItems(tuple, isTuple: true, limit: limit)
  }
}

extension ObjectReader {
  /// The item pointers of a tuple (inline items) or list (an item array), at most `limit`.
  package func sequenceItems(_ object: RemoteAddress, isTuple: Bool, limit: Int) throws(ReadFault) -> [RemoteAddress] {
    let size = Int(
      Int64(bitPattern: try memory.readUInt64(at: object &+ UInt64(layout.varObjectSize.member("varObjectSize")))))
    guard size >= 0, size < 1 << 40 else { throw .implausible("sequence size \(size)") }
    let count = Swift.min(size, limit)
    if count == 0 { return [] }
    let items =
      try isTuple
      ? object &+ UInt64(layout.tupleItems.member("tupleItems"))
      : memory.readPointer(at: object &+ UInt64(layout.listItems.member("listItems")))
    let view = ByteView(try memory.readBytes(at: items, count: count * 8))
    return (0..<count).map { view.u64($0 * 8) }
  }

  /// Number of items of a sized object (ob_size).
  func size(of object: RemoteAddress) throws(ReadFault) -> Int {
    Int(Int64(bitPattern: try memory.readUInt64(at: object &+ UInt64(layout.varObjectSize.member("varObjectSize")))))
  }
}

/// Renders Python values read from the target, within a character budget.
struct ReprRenderer<Memory: MemoryReader> {
  let objects: ObjectReader<Memory>
  private var typeNames: [RemoteAddress: String] = [:]
  /// Deepest container nesting rendered.
  static var maximumDepth: Int { 8 }
  /// Most items rendered per container (the budget usually stops earlier).
  static var maximumItems: Int { 256 }

  init(objects: ObjectReader<Memory>) { self.objects = objects }

  mutating func repr(_ object: RemoteAddress, budget: Int) -> String? {
    if budget <= 5 { return "..." }
    var out = ""
    guard (try? render(object, budget: budget, depth: 0, into: &out)) != nil else { return nil }
    return out
  }

  /// What `object` holds when it is a cell (0 when the cell is empty), nil for any other object.
  mutating func cellContents(_ object: RemoteAddress) -> RemoteAddress? {
    guard let type = try? objects.typeAddress(of: object), typeName(type) == "cell" else { return nil }
    return (try? objects.memory.readUInt64(at: object &+ Self.cellReference)) ?? 0
  }

  /// `PyCellObject.ob_ref`, right after the object header in every version.
  static var cellReference: UInt64 { 16 }

  private mutating func typeName(_ type: RemoteAddress) -> String {
    if let name = typeNames[type] { return name }
    let name = (try? objects.typeName(ofType: type)) ?? "?"
    if typeNames.count < 4096 { typeNames[type] = name }
    return name
  }

  /// Appends the repr of `object` to `out`, using at most `budget` characters.
  private mutating func render(_ object: RemoteAddress, budget: Int, depth: Int, into out: inout String)
    throws(ReadFault)
  {
    let type = try objects.typeAddress(of: object)
    let flags = try objects.typeFlags(ofType: type)
    let name = typeName(type)
    let traits = objects.model
    let flagBits = traits.typeFlags
    let bytesAreStrings = traits.stringModel == .bytes27
    func emit(_ text: String) {
      if text.count <= budget { out += text } else { out += String(text.prefix(Swift.max(0, budget - 3))) + "..." }
    }
    if name == "bool" {
      // bool is an int subclass (a PyIntObject on 2.7, a PyLong on 3.x).
      emit((try objects.integer(at: object, isPython2Int: flagBits.intSubclass != nil) ?? 1) != 0 ? "True" : "False")
    } else if let intFlag = flagBits.intSubclass, flags & intFlag != 0 {
      emit(String(try objects.integer(at: object, isPython2Int: true) ?? 0))
    } else if flags & flagBits.longSubclass != 0 {
      emit(try bigInteger(object))
    } else if flags & flagBits.unicodeSubclass != 0 {
      if bytesAreStrings {
        // 2.7 `unicode`, shown as Python 2 writes it: u"…".
        let (text, length) = try objects.unicode27(at: object, limit: Swift.max(0, budget - 1))
        emit("u" + quoted(text, truncated: length > text.count || text.count + 3 > budget, budget: budget - 1))
      } else {
        let (text, length) = try objects.unicode(at: object, limit: Swift.max(0, budget))
        emit(quoted(text, truncated: length > text.count || text.count + 2 > budget, budget: budget))
      }
    } else if flags & flagBits.bytesSubclass != 0 {
      let bytes = try objects.bytesObject(at: object, limit: Swift.max(0, budget))
      let total = try objects.size(of: object)
      if bytesAreStrings {
        // A 2.7 str is bytes (usually UTF-8): never cut inside a multi-byte sequence.
        let text = String(decoding: bytes[..<utf8Boundary(bytes, complete: total <= bytes.count)], as: UTF8.self)
        emit(quoted(text, truncated: total > bytes.count || bytes.count + 2 > budget, budget: budget))
      } else {
        emit(
          "b"
            + quoted(
              bytesText(bytes), truncated: total > bytes.count || bytes.count + 3 > budget, budget: budget - 1,
              escaping: false))
      }
    } else if flags & flagBits.dictSubclass != 0 {
      try renderDict(object, budget: budget, depth: depth, into: &out)
    } else if flags & flagBits.listSubclass != 0 {
      try renderSequence(
        objects.sequenceItems(object, isTuple: false, limit: Self.maximumItems), open: "[", close: "]",
        total: objects.size(of: object), budget: budget, depth: depth, into: &out)
    } else if flags & flagBits.tupleSubclass != 0 {
      let items = try objects.sequenceItems(object, isTuple: true, limit: Self.maximumItems)
      try renderSequence(
        items, open: "(", close: items.count == 1 ? ",)" : ")", total: objects.size(of: object), budget: budget,
        depth: depth, into: &out)
    } else if name == "float" {
      let bits = try objects.memory.readUInt64(at: object &+ UInt64(objects.layout.floatValue.member("floatValue")))
      emit(floatRepr(Double(bitPattern: bits)))
    } else if name == "NoneType" {
      emit("None")
    } else if (name == "set" || name == "frozenset"), objects.layout.setTable != nil {
      try renderSet(object, frozen: name == "frozenset", budget: budget, depth: depth, into: &out)
    } else if name == "cell", depth < Self.maximumDepth {
      let contents = try objects.memory.readUInt64(at: object &+ Self.cellReference)
      if contents == 0 {
        emit("<empty cell>")
      } else {
        try render(contents, budget: budget, depth: depth + 1, into: &out)
      }
    } else if let scalar = try numpyScalar(object, typeName: name) {
      emit(scalar)
    } else {
      emit("<\(name) at 0x\(String(object, radix: 16))>")
    }
  }

  /// The end of the last whole UTF-8 sequence in `bytes` (all of it when `complete`).
  private func utf8Boundary(_ bytes: [UInt8], complete: Bool) -> Int {
    if complete { return bytes.count }
    var end = bytes.count
    var back = 0
    // Step back over continuation bytes to the lead byte of the last sequence.
    while end > 0 && back < 4 && bytes[end - 1] & 0xC0 == 0x80 {
      end -= 1
      back += 1
    }
    guard end > 0 else { return bytes.count }
    let lead = bytes[end - 1]
    let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
    // Keep the last sequence only when all its bytes are there.
    return back + 1 >= length ? bytes.count : end - 1
  }

  private func quoted(_ text: String, truncated: Bool, budget: Int, escaping: Bool = true) -> String {
    var escaped = ""
    if !escaping { escaped = text }
    for character in text where escaping {
      switch character {
      case "\"": escaped += "\\\""
      case "\\": escaped += "\\\\"
      case "\n": escaped += "\\n"
      case "\r": escaped += "\\r"
      case "\t": escaped += "\\t"
      default:
        // Other control characters (ESC, NUL, DEL, C1) are shown as \xNN, as Python's repr does.
        if let scalar = character.unicodeScalars.first, character.unicodeScalars.count == 1,
          scalar.value < 0x20 || (scalar.value >= 0x7F && scalar.value < 0xA0)
        {
          let hex = String(scalar.value, radix: 16)
          escaped += "\\x" + (hex.count == 1 ? "0" + hex : hex)
        } else {
          escaped.append(character)
        }
      }
    }
    if !truncated && escaped.count + 2 <= budget { return "\"" + escaped + "\"" }
    // Cut on a character boundary: budget − 5 characters, then `...` and the closing quote.
    return "\"" + String(escaped.prefix(Swift.max(0, budget - 5))) + "...\""
  }

  private func bytesText(_ bytes: [UInt8]) -> String {
    var text = ""
    for byte in bytes {
      if byte >= 0x20 && byte < 0x7f && byte != UInt8(ascii: "\\") && byte != UInt8(ascii: "\"") {
        text.append(Character(Unicode.Scalar(byte)))
      } else {
        let hex = String(byte, radix: 16)
        text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
      }
    }
    return text
  }

  private func floatRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    let text = value.description
    return text
  }

  private mutating func renderSequence(
    _ items: [RemoteAddress], open: String, close: String, total: Int, budget: Int, depth: Int, into out: inout String
  ) throws(ReadFault) {
    var remaining = budget - open.count - close.count
    // No room for even one item: the whole value is "...", as py-spy shows it.
    if remaining <= 5 && !items.isEmpty {
      out += "..."
      return
    }
    out += open
    if depth >= Self.maximumDepth && !items.isEmpty {
      out += "..." + close
      return
    }
    for (index, item) in items.enumerated() {
      if index > 0 {
        out += ", "
        remaining -= 2
      }
      if remaining <= 5 {
        out += "..."
        out += close
        return
      }
      var piece = ""
      try render(item, budget: remaining, depth: depth + 1, into: &piece)
      out += piece
      remaining -= piece.count
    }
    if total > items.count { out += ", ..." }
    out += close
  }

  private mutating func renderDict(_ object: RemoteAddress, budget: Int, depth: Int, into out: inout String)
    throws(ReadFault)
  {
    let entries = try objects.dictEntries(at: object).prefix(Self.maximumItems)
    var remaining = budget - 2
    // No room for even one entry: the whole value is "...", as py-spy shows it.
    if remaining <= 5 && !entries.isEmpty {
      out += "..."
      return
    }
    out += "{"
    if depth >= Self.maximumDepth && !entries.isEmpty {
      out += "...}"
      return
    }
    for (index, entry) in entries.enumerated() {
      if index > 0 {
        out += ", "
        remaining -= 2
      }
      if remaining <= 5 {
        out += "...}"
        return
      }
      var key = ""
      try render(entry.key, budget: remaining, depth: depth + 1, into: &key)
      out += key + ": "
      remaining -= key.count + 2
      if remaining <= 5 {
        out += "...}"
        return
      }
      var value = ""
      try render(entry.value, budget: remaining, depth: depth + 1, into: &value)
      out += value
      remaining -= value.count
    }
    out += "}"
  }

  private mutating func renderSet(
    _ object: RemoteAddress, frozen: Bool, budget: Int, depth: Int, into out: inout String
  ) throws(ReadFault) {
    let layout = objects.layout
    let header = ByteView(try objects.memory.readBytes(at: object, count: layout.setTable.member("setTable") + 8))
    let used = try Int(header.i64(layout.setUsed.member("setUsed")))
    let mask = try Int(header.i64(layout.setMask.member("setMask")))
    guard used >= 0, mask >= 0, mask < 1 << 24 else { throw .implausible("set size") }
    if used == 0 {
      out += frozen ? "frozenset()" : "set()"
      return
    }
    let slots = Swift.min(mask + 1, 1 << 16)
    let table = ByteView(
      try objects.memory.readBytes(
        at: header.u64(layout.setTable.member("setTable")), count: slots * layout.setEntrySize.member("setEntrySize")))
    var items: [RemoteAddress] = []
    for i in 0..<slots where items.count < Self.maximumItems {
      let key = try table.u64(i * layout.setEntrySize.member("setEntrySize") + layout.setEntryKey.member("setEntryKey"))
      // A dummy (deleted) entry points at a shared sentinel; it is not a real item but can't be
      // told apart cheaply, so entries are capped at `used`.
      if key != 0 && items.count < used { items.append(key) }
    }
    var inner = ""
    try renderSequence(
      items, open: "{", close: "}", total: used, budget: budget - (frozen ? 11 : 0), depth: depth, into: &inner)
    out += frozen ? "frozenset(" + inner + ")" : inner
  }

  /// An int of any size, in decimal (cut to a budget-friendly number of digits).
  private func bigInteger(_ object: RemoteAddress) throws(ReadFault) -> String {
    if let small = try objects.integer(at: object) { return String(small) }
    let layout = objects.layout
    let header = ByteView(try objects.memory.readBytes(at: object, count: layout.longDigits.member("longDigits")))
    // The digit count comes from the target: any 64-bit value (Int64.min's magnitude included).
    var digitCount: UInt64
    var negative: Bool
    if let tagOffset = layout.longTag {
      let tag = header.u64(tagOffset)
      digitCount = tag >> 3
      negative = tag & 3 == 2
    } else {
      let size = try header.i64(layout.varObjectSize.member("varObjectSize"))
      negative = size < 0
      digitCount = size.magnitude
    }
    guard digitCount <= 4096 else {
      let bits = digitCount <= UInt64.max / 30 ? "\(digitCount * 30)-bit" : "huge"
      return negative ? "-<\(bits) int>" : "<\(bits) int>"
    }
    let count = Int(digitCount)
    let digits = ByteView(
      try objects.memory.readBytes(at: object &+ UInt64(layout.longDigits.member("longDigits")), count: count * 4))
    // Base 2^30 digits (least significant first) → base 10^9 chunks.
    var chunks: [UInt64] = [0]
    for i in stride(from: count - 1, through: 0, by: -1) {
      var carry = UInt64(digits.u32(i * 4) & 0x3fff_ffff)
      for j in 0..<chunks.count {
        let value = chunks[j] << 30 + carry
        chunks[j] = value % 1_000_000_000
        carry = value / 1_000_000_000
      }
      while carry > 0 {
        chunks.append(carry % 1_000_000_000)
        carry /= 1_000_000_000
      }
    }
    var text = String(chunks.last ?? 0)
    for chunk in chunks.dropLast().reversed() {
      let part = String(chunk)
      text += String(repeating: "0", count: 9 - part.count) + part
    }
    return negative ? "-" + text : text
  }

  /// numpy scalars whose value sits right after the object header.
  private func numpyScalar(_ object: RemoteAddress, typeName name: String) throws(ReadFault) -> String? {
    guard name.hasPrefix("numpy.") else { return nil }
    let address = object &+ 16
    let memory = objects.memory
    switch name {
    case "numpy.bool", "numpy.bool_": return try memory.readBytes(at: address, count: 1)[0] != 0 ? "True" : "False"
    case "numpy.int8": return String(Int8(truncatingIfNeeded: try memory.readBytes(at: address, count: 1)[0]))
    case "numpy.uint8": return String(try memory.readBytes(at: address, count: 1)[0])
    case "numpy.int16":
      let b = try memory.readBytes(at: address, count: 2)
      return String(Int16(bitPattern: UInt16(b[0]) | UInt16(b[1]) << 8))
    case "numpy.uint16":
      let b = try memory.readBytes(at: address, count: 2)
      return String(UInt16(b[0]) | UInt16(b[1]) << 8)
    case "numpy.int32": return String(Int32(bitPattern: try memory.readUInt32(at: address)))
    case "numpy.uint32": return String(try memory.readUInt32(at: address))
    case "numpy.int64", "numpy.longlong": return String(Int64(bitPattern: try memory.readUInt64(at: address)))
    case "numpy.uint64": return String(try memory.readUInt64(at: address))
    case "numpy.float32": return Float(bitPattern: try memory.readUInt32(at: address)).description
    case "numpy.float64": return floatRepr(Double(bitPattern: try memory.readUInt64(at: address)))
    default: return nil
    }
  }
}
