//===--- JSONReader.swift - a small pull reader for JSON -------------------===//
//
// Reads JSON (RFC 8259) from bytes as the caller asks for values: an object calls back per key, an
// array per element, scalars come out typed. It is what reads a recording file (which may be
// damaged or made up): every failure is a `JSONError` with the byte offset, nesting is bounded,
// nothing is allocated beyond what the input itself holds, and numbers are checked against the
// type asked for (an id that does not fit a UInt32 is an error, never a wrap or a trap).
//
//===----------------------------------------------------------------------===//

/// Why the JSON could not be read: what was expected, and at which byte.
struct JSONError: Error, Equatable, CustomStringConvertible {
  var offset: Int
  var problem: String
  /// True when the input ended before the value did.
  var truncated: Bool = false

  var description: String { "\(problem) at byte \(offset)" }
}

struct JSONReader {
  private let bytes: [UInt8]
  private(set) var offset = 0
  private var depth = 0
  static let maximumDepth = 64

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  // MARK: Structure

  /// Reads an object, calling `body` with each key; `body` must read (or skip) the key's value.
  mutating func object(_ body: (inout JSONReader, String) throws(JSONError) -> Void) throws(JSONError) {
    try enter(UInt8(ascii: "{"), "an object")
    defer { depth -= 1 }
    if try consume(UInt8(ascii: "}")) { return }
    repeat {
      let key = try string()
      try expect(UInt8(ascii: ":"), "':'")
      try body(&self, key)
    } while try consume(UInt8(ascii: ","))
    try expect(UInt8(ascii: "}"), "',' or '}'")
  }

  /// Reads an array, calling `body` once per element; `body` must read (or skip) the element.
  mutating func array(_ body: (inout JSONReader) throws(JSONError) -> Void) throws(JSONError) {
    try enter(UInt8(ascii: "["), "an array")
    defer { depth -= 1 }
    if try consume(UInt8(ascii: "]")) { return }
    repeat {
      try body(&self)
    } while try consume(UInt8(ascii: ","))
    try expect(UInt8(ascii: "]"), "',' or ']'")
  }

  /// An array of unsigned integers, each at most `maximum`.
  mutating func unsignedArray(maximum: UInt64 = .max) throws(JSONError) -> [UInt64] {
    var values: [UInt64] = []
    try array { (reader: inout JSONReader) throws(JSONError) in values.append(try reader.unsigned(maximum: maximum)) }
    return values
  }

  /// Checks that nothing but white space follows the value read.
  mutating func end() throws(JSONError) {
    skipSpace()
    if offset < bytes.count { throw failure("nothing after the end of the document") }
  }

  /// Reads and drops one value of any kind.
  mutating func skipValue() throws(JSONError) {
    skipSpace()
    guard offset < bytes.count else { throw failure("a value", truncated: true) }
    switch bytes[offset] {
    case UInt8(ascii: "{"):
      try object { (reader: inout JSONReader, _: String) throws(JSONError) in try reader.skipValue() }
    case UInt8(ascii: "["): try array { (reader: inout JSONReader) throws(JSONError) in try reader.skipValue() }
    case UInt8(ascii: "\""): _ = try string()
    case UInt8(ascii: "t"), UInt8(ascii: "f"): _ = try bool()
    case UInt8(ascii: "n"):
      guard try null() else { throw failure("a value") }
    default: _ = try double()
    }
  }

  // MARK: Scalars

  /// Consumes `null` if it comes next.
  mutating func null() throws(JSONError) -> Bool {
    skipSpace()
    guard offset < bytes.count, bytes[offset] == UInt8(ascii: "n") else { return false }
    try literal("null")
    return true
  }

  mutating func bool() throws(JSONError) -> Bool {
    skipSpace()
    guard offset < bytes.count else { throw failure("true or false", truncated: true) }
    if bytes[offset] == UInt8(ascii: "t") {
      try literal("true")
      return true
    }
    if bytes[offset] == UInt8(ascii: "f") {
      try literal("false")
      return false
    }
    throw failure("true or false")
  }

  /// A non-negative integer no larger than `maximum` (no fraction, no exponent).
  mutating func unsigned(maximum: UInt64 = .max) throws(JSONError) -> UInt64 {
    skipSpace()
    let start = offset
    var value: UInt64 = 0
    while offset < bytes.count, bytes[offset] >= UInt8(ascii: "0"), bytes[offset] <= UInt8(ascii: "9") {
      let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times10.addingReportingOverflow(UInt64(bytes[offset] - UInt8(ascii: "0")))
      if overflow1 || overflow2 { throw failure("an integer no larger than \(maximum)", at: start) }
      value = sum
      offset += 1
    }
    if offset == start { throw failure("a non-negative integer", truncated: offset >= bytes.count) }
    if offset - start > 1 && bytes[start] == UInt8(ascii: "0") {
      throw failure("a number without leading zeros", at: start)
    }
    if offset < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[offset]) {
      throw failure("an integer", at: start)
    }
    if value > maximum { throw failure("an integer no larger than \(maximum)", at: start) }
    return value
  }

  /// An integer between `minimum` and `maximum`.
  mutating func signed(minimum: Int64 = .min, maximum: Int64 = .max) throws(JSONError) -> Int64 {
    skipSpace()
    let start = offset
    let negative = offset < bytes.count && bytes[offset] == UInt8(ascii: "-")
    if negative { offset += 1 }
    let magnitude = try unsigned()
    let value: Int64?
    if negative {
      value = magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil
    } else {
      value = Int64(exactly: magnitude)
    }
    guard let value, value >= minimum, value <= maximum else {
      throw failure("an integer between \(minimum) and \(maximum)", at: start)
    }
    return value
  }

  /// A number, as the nearest double (JSON's grammar, checked).
  mutating func double() throws(JSONError) -> Double {
    skipSpace()
    let start = offset
    func digits() -> Int {
      let first = offset
      while offset < bytes.count, bytes[offset] >= UInt8(ascii: "0"), bytes[offset] <= UInt8(ascii: "9") { offset += 1 }
      return offset - first
    }
    if offset < bytes.count, bytes[offset] == UInt8(ascii: "-") { offset += 1 }
    let integerStart = offset
    let integerDigits = digits()
    guard integerDigits > 0 else { throw failure("a number", truncated: offset >= bytes.count) }
    if integerDigits > 1 && bytes[integerStart] == UInt8(ascii: "0") {
      throw failure("a number without leading zeros", at: start)
    }
    if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
      offset += 1
      guard digits() > 0 else { throw failure("digits after '.'", truncated: offset >= bytes.count) }
    }
    if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
      offset += 1
      if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
      guard digits() > 0 else { throw failure("an exponent", truncated: offset >= bytes.count) }
    }
    let text = String(decoding: bytes[start..<offset], as: UTF8.self)
    guard let value = Double(text), value.isFinite else { throw failure("a finite number", at: start) }
    return value
  }

  /// A string, its escapes decoded; invalid UTF-8 and lone surrogates become U+FFFD.
  mutating func string() throws(JSONError) -> String {
    skipSpace()
    guard offset < bytes.count else { throw failure("a string", truncated: true) }
    guard bytes[offset] == UInt8(ascii: "\"") else { throw failure("a string") }
    offset += 1
    let start = offset
    // The common case: no escape.
    while offset < bytes.count, bytes[offset] != UInt8(ascii: "\""), bytes[offset] != UInt8(ascii: "\\"),
      bytes[offset] >= 0x20
    {
      offset += 1
    }
    guard offset < bytes.count else { throw failure("the end of a string", truncated: true) }
    if bytes[offset] == UInt8(ascii: "\"") {
      offset += 1
      return String(decoding: bytes[start..<(offset - 1)], as: UTF8.self)
    }
    var text: [UInt8] = Array(bytes[start..<offset])
    var pendingHigh: UInt32? = nil
    func flushSurrogate() {
      if pendingHigh != nil { text.append(contentsOf: [0xEF, 0xBF, 0xBD]) }
      pendingHigh = nil
    }
    while true {
      guard offset < bytes.count else { throw failure("the end of a string", truncated: true) }
      let byte = bytes[offset]
      if byte == UInt8(ascii: "\"") {
        flushSurrogate()
        offset += 1
        return String(decoding: text, as: UTF8.self)
      }
      if byte < 0x20 { throw failure("a control character escaped in a string") }
      if byte != UInt8(ascii: "\\") {
        flushSurrogate()
        text.append(byte)
        offset += 1
        continue
      }
      offset += 1
      guard offset < bytes.count else { throw failure("an escape", truncated: true) }
      let escape = bytes[offset]
      offset += 1
      if escape == UInt8(ascii: "u") {
        let unit = try hex4()
        if (0xD800...0xDBFF).contains(unit) {
          flushSurrogate()
          pendingHigh = unit
        } else if (0xDC00...0xDFFF).contains(unit) {
          if let high = pendingHigh {
            let scalar = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00)
            text.append(contentsOf: Array(String(Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8))
            pendingHigh = nil
          } else {
            text.append(contentsOf: [0xEF, 0xBF, 0xBD])
          }
        } else {
          flushSurrogate()
          text.append(contentsOf: Array(String(Unicode.Scalar(unit) ?? "\u{FFFD}").utf8))
        }
        continue
      }
      flushSurrogate()
      switch escape {
      case UInt8(ascii: "\""): text.append(UInt8(ascii: "\""))
      case UInt8(ascii: "\\"): text.append(UInt8(ascii: "\\"))
      case UInt8(ascii: "/"): text.append(UInt8(ascii: "/"))
      case UInt8(ascii: "b"): text.append(0x08)
      case UInt8(ascii: "f"): text.append(0x0C)
      case UInt8(ascii: "n"): text.append(0x0A)
      case UInt8(ascii: "r"): text.append(0x0D)
      case UInt8(ascii: "t"): text.append(0x09)
      default: throw failure("a valid escape", at: offset - 2)
      }
    }
  }

  /// A string, or nil for `null`.
  mutating func optionalString() throws(JSONError) -> String? {
    try null() ? nil : try string()
  }

  // MARK: Plumbing

  private mutating func hex4() throws(JSONError) -> UInt32 {
    guard offset + 4 <= bytes.count else { throw failure("four hex digits", truncated: true) }
    var value: UInt32 = 0
    for _ in 0..<4 {
      let byte = bytes[offset]
      let digit: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: throw failure("a hex digit")
      }
      value = value << 4 | UInt32(digit)
      offset += 1
    }
    return value
  }

  private mutating func enter(_ open: UInt8, _ what: String) throws(JSONError) {
    skipSpace()
    guard offset < bytes.count else { throw failure(what, truncated: true) }
    guard bytes[offset] == open else { throw failure(what) }
    guard depth < Self.maximumDepth else { throw failure("at most \(Self.maximumDepth) levels of nesting") }
    depth += 1
    offset += 1
  }

  private mutating func consume(_ byte: UInt8) throws(JSONError) -> Bool {
    skipSpace()
    guard offset < bytes.count else { throw failure("'\(Character(Unicode.Scalar(byte)))'", truncated: true) }
    if bytes[offset] == byte {
      offset += 1
      return true
    }
    return false
  }

  private mutating func expect(_ byte: UInt8, _ what: String) throws(JSONError) {
    skipSpace()
    guard offset < bytes.count else { throw failure(what, truncated: true) }
    guard bytes[offset] == byte else { throw failure(what) }
    offset += 1
  }

  private mutating func literal(_ word: String) throws(JSONError) {
    let expected = Array(word.utf8)
    guard offset + expected.count <= bytes.count else { throw failure(word, truncated: true) }
    guard bytes[offset..<(offset + expected.count)].elementsEqual(expected) else { throw failure(word) }
    offset += expected.count
  }

  private mutating func skipSpace() {
    while offset < bytes.count {
      switch bytes[offset] {
      case 0x20, 0x09, 0x0A, 0x0D: offset += 1
      default: return
      }
    }
  }

  private func failure(_ expected: String, at position: Int? = nil, truncated: Bool = false) -> JSONError {
    JSONError(offset: position ?? offset, problem: "expected \(expected)", truncated: truncated)
  }
}
