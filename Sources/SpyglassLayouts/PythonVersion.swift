//===--- PythonVersion.swift - a CPython version number -------------------===//
//
// Where a target's version comes from, best first: the `Py_Version` symbol (3.11+, PY_VERSION_HEX),
// `_Py_DebugOffsets.version` (3.13+, the same), or a version string found in the binary's data
// ("3.7.0rc1 (v3.7.0rc1:dfad352267, Jul 20 2018, 13:27:54)"), which `scan` finds with py-spy's rule.
//
//===----------------------------------------------------------------------===//

package struct PythonVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
  package var major: Int
  package var minor: Int
  package var micro: Int
  /// "" for a final release, else the pre-release tag as written: "a1", "b2", "rc1" (a scanned
  /// "c1" stays "c1"; it orders like "rc1").
  package var releaseLevel: String
  /// What followed a `+` in a scanned version string ("2.7.15+" → "", "2.8.5+cinder" → "cinder");
  /// nil when there was no `+`.
  package var buildMetadata: String?

  package init(
    major: Int, minor: Int, micro: Int = 0, releaseLevel: String = "", buildMetadata: String? = nil
  ) {
    self.major = major
    self.minor = minor
    self.micro = micro
    self.releaseLevel = releaseLevel
    self.buildMetadata = buildMetadata
  }

  // .. PY_VERSION_HEX ...........................................................

  /// Decodes a PY_VERSION_HEX (`0x030D00F0` is 3.13.0): major in bits 24–31, minor 16–23, micro
  /// 8–15, release level 4–7 (0xA alpha, 0xB beta, 0xC candidate, 0xF final) and serial 0–3.
  /// Nil when the level nibble is none of those or the version is implausible.
  package init?(hex: UInt32) {
    let level = (hex >> 4) & 0xF
    let serial = Int(hex & 0xF)
    let tag: String
    switch level {
    case 0xA: tag = "a\(serial)"
    case 0xB: tag = "b\(serial)"
    case 0xC: tag = "rc\(serial)"
    case 0xF: tag = ""
    default: return nil
    }
    self.init(
      major: Int(hex >> 24), minor: Int((hex >> 16) & 0xFF), micro: Int((hex >> 8) & 0xFF),
      releaseLevel: tag)
    guard isPlausible else { return nil }
  }

  /// A version Spyglass could conceivably meet: major 2 or 3, minor at most 20.
  package var isPlausible: Bool {
    (major == 2 || major == 3) && (0...20).contains(minor) && (0...255).contains(micro)
  }

  /// PY_VERSION_HEX for this version (build metadata is not part of it).
  package var hex: UInt32 {
    let (rank, serial) = releaseRankAndSerial
    let level: UInt32 = [0xA, 0xB, 0xC, 0xF][rank]
    return UInt32(truncatingIfNeeded: major) << 24 | UInt32(truncatingIfNeeded: minor & 0xFF) << 16
      | UInt32(truncatingIfNeeded: micro & 0xFF) << 8 | level << 4
      | UInt32(truncatingIfNeeded: serial & 0xF)
  }

  // .. ordering ....................................................................

  /// 0 alpha, 1 beta, 2 candidate, 3 final; and the serial number after the letters.
  var releaseRankAndSerial: (rank: Int, serial: Int) {
    if releaseLevel.isEmpty { return (3, 0) }
    let letters = releaseLevel.utf8.prefix { !Self.isDigit($0) }
    var serial = 0
    for byte in releaseLevel.utf8.dropFirst(letters.count) where Self.isDigit(byte) {
      serial = serial * 10 + Int(byte - UInt8(ascii: "0"))
    }
    switch letters.first {
    case UInt8(ascii: "a"): return (0, serial)
    case UInt8(ascii: "b"): return (1, serial)
    default: return (2, serial)
    }
  }

  /// Orders by major, minor, micro, then alpha < beta < candidate < final and the serial; the
  /// spelling of the release tag and the build metadata only break ties.
  package static func < (a: PythonVersion, b: PythonVersion) -> Bool {
    if (a.major, a.minor, a.micro) != (b.major, b.minor, b.micro) {
      return (a.major, a.minor, a.micro) < (b.major, b.minor, b.micro)
    }
    let (ra, rb) = (a.releaseRankAndSerial, b.releaseRankAndSerial)
    if (ra.rank, ra.serial) != (rb.rank, rb.serial) {
      return (ra.rank, ra.serial) < (rb.rank, rb.serial)
    }
    if a.releaseLevel != b.releaseLevel { return a.releaseLevel < b.releaseLevel }
    switch (a.buildMetadata, b.buildMetadata) {
    case (nil, nil): return false
    case (nil, _): return true
    case (_, nil): return false
    case (let x?, let y?): return x < y
    }
  }

  /// "3.13.0", "3.7.0rc1", "2.7.15+", "2.8.5+cinder".
  package var description: String {
    var text = "\(major).\(minor).\(micro)\(releaseLevel)"
    if let buildMetadata { text += "+" + buildMetadata }
    return text
  }

  // .. scanning ......................................................................

  /// The first version string in `bytes`, by py-spy's rule
  ///
  ///     ((2|3)\.(3|4|5|6|7|8|9|10|11|12|13|14)\.(\d{1,2}))((a|b|c|rc)\d{1,2})?
  ///     (\+(?:[0-9a-z-]+(?:[.][0-9a-z-]+)*)?)? (.{1,64})
  ///
  /// (one pattern; wrapped here): a version, an optional pre-release tag, optional `+metadata`,
  /// then a space and at least one more character (`.` is any UTF-8 encoded character but a
  /// newline). Matched by hand: at each start position the pattern can only succeed along one path
  /// (no alternative or repetition can give way to the part after it), so a single forward pass per
  /// start position is exact. Digits are ASCII only.
  package static func scan(_ bytes: [UInt8]) -> PythonVersion? {
    var start = 0
    while start < bytes.count {
      // Every match begins with '2' or '3'.
      if bytes[start] == UInt8(ascii: "2") || bytes[start] == UInt8(ascii: "3"),
        let version = match(bytes, at: start)
      {
        return version
      }
      start += 1
    }
    return nil
  }

  /// The pattern anchored at `start`.
  static func match(_ bytes: [UInt8], at start: Int) -> PythonVersion? {
    func at(_ index: Int) -> UInt8? { index < bytes.count ? bytes[index] : nil }
    func digit(_ index: Int) -> Int? {
      guard let byte = at(index), isDigit(byte) else { return nil }
      return Int(byte - UInt8(ascii: "0"))
    }
    var i = start
    // (2|3)\.
    guard let major = digit(i), major == 2 || major == 3, at(i + 1) == UInt8(ascii: ".") else {
      return nil
    }
    i += 2
    // (3|4|5|6|7|8|9|10|11|12|13|14)\.   The one-digit choices never start with 1, the two-digit
    // ones always do, so at most one choice applies.
    guard let first = digit(i) else { return nil }
    let minor: Int
    if first >= 3 {
      minor = first
      i += 1
    } else if first == 1, let second = digit(i + 1), second <= 4 {
      minor = 10 + second
      i += 2
    } else {
      return nil
    }
    guard at(i) == UInt8(ascii: ".") else { return nil }
    i += 1
    // (\d{1,2}): taking one digit where two are there leaves a digit, which nothing after accepts.
    guard var micro = digit(i) else { return nil }
    i += 1
    if let second = digit(i) {
      micro = micro * 10 + second
      i += 1
    }
    // ((a|b|c|rc)\d{1,2})?: skipping it leaves a letter, which nothing after accepts.
    var releaseLevel = ""
    let tagStart = i
    if at(i) == UInt8(ascii: "r"), at(i + 1) == UInt8(ascii: "c") {
      i += 2
    } else if let byte = at(i),
      byte == UInt8(ascii: "a") || byte == UInt8(ascii: "b") || byte == UInt8(ascii: "c")
    {
      i += 1
    }
    if i > tagStart {
      guard digit(i) != nil else { return nil }
      i += 1
      if digit(i) != nil { i += 1 }
      releaseLevel = String(decoding: bytes[tagStart..<i], as: UTF8.self)
    }
    // (\+(?:[0-9a-z-]+(?:[.][0-9a-z-]+)*)?)?: greedy; a shorter identifier would leave a class
    // character or a '.', and only a space may follow.
    var buildMetadata: String?
    if at(i) == UInt8(ascii: "+") {
      i += 1
      let metadataStart = i
      if isMetadata(at(i)) {
        while isMetadata(at(i)) { i += 1 }
        while at(i) == UInt8(ascii: "."), isMetadata(at(i + 1)) {
          i += 1
          while isMetadata(at(i)) { i += 1 }
        }
      }
      buildMetadata = String(decoding: bytes[metadataStart..<i], as: UTF8.self)
    }
    // ' ' (.{1,64}): a space and at least one character.
    guard at(i) == UInt8(ascii: " "), startsWithCharacter(bytes, at: i + 1) else { return nil }
    return PythonVersion(
      major: major, minor: minor, micro: micro, releaseLevel: releaseLevel,
      buildMetadata: buildMetadata)
  }

  static func isDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
  }

  /// [0-9a-z-]
  static func isMetadata(_ byte: UInt8?) -> Bool {
    guard let byte else { return false }
    return isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
      || byte == UInt8(ascii: "-")
  }

  /// Whether a well-formed UTF-8 encoded scalar other than "\n" starts at `index` (what the
  /// regex's `.` matches).
  static func startsWithCharacter(_ bytes: [UInt8], at index: Int) -> Bool {
    guard index < bytes.count else { return false }
    let lead = bytes[index]
    func continuation(_ offset: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
      index + offset < bytes.count && range.contains(bytes[index + offset])
    }
    switch lead {
    case 0x0A: return false
    case 0x00...0x7F: return true
    case 0xC2...0xDF: return continuation(1)
    case 0xE0: return continuation(1, 0xA0...0xBF) && continuation(2)
    case 0xE1...0xEC, 0xEE...0xEF: return continuation(1) && continuation(2)
    case 0xED: return continuation(1, 0x80...0x9F) && continuation(2)
    case 0xF0: return continuation(1, 0x90...0xBF) && continuation(2) && continuation(3)
    case 0xF1...0xF3: return continuation(1) && continuation(2) && continuation(3)
    case 0xF4: return continuation(1, 0x80...0x8F) && continuation(2) && continuation(3)
    default: return false
    }
  }
}
