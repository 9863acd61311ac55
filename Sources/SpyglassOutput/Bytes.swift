//===--- Bytes.swift - appending text, numbers and escaped strings to bytes ---===//
//
// Every writer builds its output by appending UTF-8 into a `[UInt8]`. This file is the one place
// that knows how to print numbers (no Foundation, no String(format:)) and how to escape text for
// each kind of output:
//
// - `visible(_:)`: control characters and characters XML cannot hold become a visible escape
//   (`\x1B`, `\u{FFFE}`), so a hostile name can never break a line-based format or an XML file.
// - `append(json:)`: a JSON string literal (quotes included).
// - `append(xml:)`: XML character data / attribute value, after `visible(_:)`.
//
//===----------------------------------------------------------------------===//

extension [UInt8] {
  /// Appends trusted text (literals and already-escaped strings) as UTF-8.
  mutating func append(_ text: String) {
    append(contentsOf: text.utf8)
  }

  /// Appends a decimal integer.
  mutating func append(decimal value: UInt64) {
    // Digits are produced least significant first, then reversed in place.
    let start = count
    var rest = value
    repeat {
      append(UInt8(ascii: "0") + UInt8(rest % 10))
      rest /= 10
    } while rest > 0
    self[start...].reverse()
  }

  /// Appends a signed decimal integer.
  mutating func append(decimal value: Int64) {
    if value < 0 {
      append(UInt8(ascii: "-"))
      append(decimal: value.magnitude)
    } else {
      append(decimal: UInt64(value))
    }
  }

  mutating func append(decimal value: Int) { append(decimal: Int64(value)) }

  /// Appends `value / 10^fractionDigits` exactly, as a plain decimal without trailing zeros
  /// (`1500, 3` → `1.5`; `2000, 3` → `2`; `7, 3` → `0.007`). Never uses exponent notation.
  mutating func append(fixed value: Int64, fractionDigits: Int) {
    precondition(fractionDigits >= 0 && fractionDigits <= 18)
    if value < 0 { append(UInt8(ascii: "-")) }
    let magnitude = value.magnitude
    var scale: UInt64 = 1
    for _ in 0..<fractionDigits { scale *= 10 }
    append(decimal: magnitude / scale)
    var fraction = magnitude % scale
    if fraction == 0 { return }
    var width = fractionDigits
    while fraction % 10 == 0 {
      fraction /= 10
      width -= 1
    }
    append(UInt8(ascii: "."))
    let start = count
    for _ in 0..<width {
      append(UInt8(ascii: "0") + UInt8(fraction % 10))
      fraction /= 10
    }
    self[start...].reverse()
  }

  /// Appends a finite `Double` rounded to `fractionDigits` decimals (trailing zeros dropped).
  /// Non-finite values print as 0 so the output stays valid JSON/SVG.
  mutating func append(rounded value: Double, fractionDigits: Int) {
    var scale = 1.0
    for _ in 0..<fractionDigits { scale *= 10 }
    let scaled = (value * scale).rounded()
    guard scaled.isFinite, abs(scaled) < 9.0e18 else {
      append(UInt8(ascii: "0"))
      return
    }
    append(fixed: Int64(scaled), fractionDigits: fractionDigits)
  }

  /// Appends `text` as a JSON string literal, quotes included. Control characters, `"` and `\` are
  /// escaped; U+2028/U+2029 too, so the JSON is also a valid JavaScript literal.
  mutating func append(json text: String) {
    append(UInt8(ascii: "\""))
    for scalar in text.unicodeScalars {
      switch scalar.value {
      case 0x22: append("\\\"")
      case 0x5C: append("\\\\")
      case 0x0A: append("\\n")
      case 0x0D: append("\\r")
      case 0x09: append("\\t")
      case 0x08: append("\\b")
      case 0x0C: append("\\f")
      case 0x00..<0x20, 0x7F, 0x2028, 0x2029:
        append("\\u")
        appendHex(scalar.value, width: 4)
      default:
        append(contentsOf: String(scalar).utf8)
      }
    }
    append(UInt8(ascii: "\""))
  }

  /// Appends `text` escaped for XML character data and (double- or single-quoted) attribute
  /// values: `&<>"'` become entities and characters that are not allowed (or not visible) in XML
  /// are replaced as by `visible(_:)`.
  mutating func append(xml text: String) {
    for scalar in text.unicodeScalars {
      switch scalar.value {
      case 0x26: append("&amp;")
      case 0x3C: append("&lt;")
      case 0x3E: append("&gt;")
      case 0x22: append("&quot;")
      case 0x27: append("&#39;")
      default:
        if needsVisibleEscape(scalar) {
          appendVisibleEscape(scalar)
        } else {
          append(contentsOf: String(scalar).utf8)
        }
      }
    }
  }

  /// Appends `text` with control characters replaced as by `visible(_:)`.
  mutating func append(visible text: String) {
    for scalar in text.unicodeScalars {
      if needsVisibleEscape(scalar) {
        appendVisibleEscape(scalar)
      } else {
        append(contentsOf: String(scalar).utf8)
      }
    }
  }

  fileprivate mutating func appendVisibleEscape(_ scalar: Unicode.Scalar) {
    if scalar.value <= 0xFF {
      append("\\x")
      appendHex(scalar.value, width: 2)
    } else {
      append("\\u{")
      appendHex(scalar.value, width: 4)
      append(UInt8(ascii: "}"))
    }
  }

  fileprivate mutating func appendHex(_ value: UInt32, width: Int) {
    var shift = (width - 1) * 4
    while shift >= 0 {
      let digit = UInt8((value >> UInt32(shift)) & 0xF)
      append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "A") + digit - 10)
      shift -= 4
    }
  }
}

/// True for characters that must not appear literally in a single-line label or in XML: C0
/// controls (tab and newline included), DEL, C1 controls and the noncharacters U+FFFE/U+FFFF
/// (outside XML 1.0's `Char` production). Swift strings hold no surrogates, and invalid UTF-8 has
/// already become U+FFFD when the target's bytes were decoded.
@inline(__always)
func needsVisibleEscape(_ scalar: Unicode.Scalar) -> Bool {
  let v = scalar.value
  return v < 0x20 || (v >= 0x7F && v <= 0x9F) || v == 0xFFFE || v == 0xFFFF
}

/// `text` with every character for which `needsVisibleEscape` holds replaced by a visible escape:
/// `\xHH` for code points up to U+00FF, `\u{HHHH}` above. Strings that need nothing are returned
/// unchanged.
func visible(_ text: String) -> String {
  if !text.unicodeScalars.contains(where: needsVisibleEscape) { return text }
  var bytes: [UInt8] = []
  bytes.reserveCapacity(text.utf8.count + 8)
  bytes.append(visible: text)
  return String(decoding: bytes, as: UTF8.self)
}
