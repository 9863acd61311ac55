//===--- UploadDestination.swift - where uploads go, and how they are sent ---===//
//
// One `--upload URL` becomes an `UploadDestination`: the URL is taken apart here, once, so that a
// mistake in it is a sentence before sampling starts and never a failed request later. Only the
// scheme (http or https), the host, the port and a base path are kept; each request's path is
// appended to the base path. A `user:password@` in the URL becomes HTTP basic authentication and
// is never shown again: messages and counts name the URL without it.
//
//===----------------------------------------------------------------------===//

import SpyglassModel
import SpyglassOutput

/// One upload destination (`--upload URL`, repeatable) and its wire format.
package struct UploadDestination: Sendable, Equatable {
  package let format: UploadFormat
  /// Extra headers every request to this destination carries (after Spyglass's own, replacing
  /// one of the same name).
  package let headers: [Label]
  /// The URL as messages and counts show it: scheme, host, port when given, base path; never the
  /// user name or password.
  package let url: String
  /// `http` or `https`.
  package let scheme: String
  /// The host as the URL names it (an IPv6 address without its brackets).
  package let host: String
  package let port: Int
  /// The path requests are appended to: empty, or starting with `/` and without a trailing one.
  package let basePath: String
  /// `Basic …` from the URL's user information, or nil.
  let basicAuthorization: String?

  /// Takes `url` apart; a URL that is not `http://` or `https://` with a host (and optionally user
  /// information, a port and a base path) is refused with a sentence saying what is wrong.
  package init(url: String, format: UploadFormat, headers: [Label] = []) throws(SpyglassError) {
    let shown = UploadDestination.redacted(url)
    func invalid(_ reason: String) -> SpyglassError { .invalidUploadURL(url: shown, reason: reason) }

    if let bad = url.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
      throw invalid(
        bad == " " ? "it contains a space (write it as %20)" : "it contains a control character")
    }
    guard let separator = url.firstRange(of: "://") else {
      throw invalid("it must start with http:// or https://")
    }
    let scheme = url[..<separator.lowerBound].lowercased()
    guard scheme == "http" || scheme == "https" else {
      throw invalid("the scheme '\(url[..<separator.lowerBound])' is not supported: use http:// or https://")
    }
    let rest = url[separator.upperBound...]
    if rest.contains("?") || rest.contains("#") {
      throw invalid("a query (?…) or fragment (#…) cannot be sent with uploads: give the base URL only")
    }
    let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
    var authority = rest[..<authorityEnd]
    let path = rest[authorityEnd...]

    var basicAuthorization: String? = nil
    if let at = authority.lastIndex(of: "@") {
      let userInformation = authority[..<at]
      authority = authority[authority.index(after: at)...]
      let colon = userInformation.firstIndex(of: ":")
      guard let user = percentDecoded(userInformation[..<(colon ?? userInformation.endIndex)]),
        let password = colon.map({ percentDecoded(userInformation[userInformation.index(after: $0)...]) })
          ?? ""
      else {
        throw invalid("its user name or password has a % not followed by two hexadecimal digits")
      }
      if user.isEmpty { throw invalid("it has an '@' but no user name before it") }
      if user.contains(":") { throw invalid("its user name contains ':', which basic authentication cannot carry") }
      basicAuthorization = "Basic " + base64(Array((user + ":" + password).utf8))
    }

    var host: Substring
    var portText: Substring? = nil
    if authority.hasPrefix("[") {
      guard let close = authority.firstIndex(of: "]") else {
        throw invalid("its IPv6 address has no closing ']'")
      }
      host = authority[authority.index(after: authority.startIndex)..<close]
      let after = authority[authority.index(after: close)...]
      if !after.isEmpty {
        guard after.hasPrefix(":") else { throw invalid("something follows its IPv6 address that is not a port") }
        portText = after.dropFirst()
      }
      if host.isEmpty || !host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) {
        throw invalid("'[\(host)]' is not an IPv6 address")
      }
    } else {
      if let colon = authority.firstIndex(of: ":") {
        host = authority[..<colon]
        portText = authority[authority.index(after: colon)...]
      } else {
        host = authority
      }
      if let bad = host.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0))) }) {
        throw invalid("its host name contains '\(bad)'")
      }
    }
    if host.isEmpty { throw invalid("it names no host") }

    var port = scheme == "https" ? 443 : 80
    if let portText {
      guard let number = Int(portText), portText.allSatisfy(\.isASCII), (1...65535).contains(number) else {
        throw invalid(
          portText.isEmpty
            ? "it has a ':' but no port after it" : "the port '\(portText)' is not a number from 1 to 65535")
      }
      port = number
    }

    let allowedInPath = "-._~!$&'()*+,;=:@/%"
    if let bad = path.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || allowedInPath.contains($0))) }) {
      throw invalid("its path contains '\(bad)' (percent-encode it)")
    }
    if percentDecoded(path) == nil { throw invalid("its path has a % not followed by two hexadecimal digits") }
    var basePath = Substring(path)
    while basePath.hasSuffix("/") { basePath = basePath.dropLast() }

    for header in headers {
      try UploadDestination.checkHeader(name: header.key, value: header.value)
    }

    self.format = format
    self.headers = headers
    self.scheme = scheme
    self.host = String(host)
    self.port = port
    self.basePath = String(basePath)
    self.basicAuthorization = basicAuthorization
    let hostInURL = authority.hasPrefix("[") ? "[\(host)]" : String(host)
    self.url = "\(scheme)://\(hostInURL)\(portText != nil ? ":\(port)" : "")\(basePath)"
  }

  /// The URL a request with `path` (`/push.v1.PusherService/Push`) is sent to.
  package func requestURL(path: String) -> String {
    let hostInURL = host.contains(":") ? "[\(host)]" : host
    let slashed = path.hasPrefix("/") ? path : "/" + path
    return "\(scheme)://\(hostInURL):\(port)\(basePath)\(slashed)"
  }

  /// `url` with its password (or, when it cannot be told apart, its whole user information)
  /// replaced by `***`: what an error may show of a URL that could not be parsed.
  static func redacted(_ url: String) -> String {
    guard let separator = url.firstRange(of: "://") else { return url }
    let rest = url[separator.upperBound...]
    let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
    let authority = rest[..<authorityEnd]
    guard let at = authority.lastIndex(of: "@") else { return url }
    let userInformation = authority[..<at]
    let shownUser = userInformation.firstIndex(of: ":").map { String(userInformation[..<$0]) + ":***" } ?? "***"
    return String(url[..<separator.upperBound]) + shownUser + String(rest[at...])
  }

  /// Refuses a header that HTTP cannot carry: a name that is not a token, a value with a line
  /// break or another control character. The value never appears in the sentence (it may be a
  /// secret).
  static func checkHeader(name: String, value: String) throws(SpyglassError) {
    let tokenPunctuation = "!#$%&'*+-.^_`|~"
    if name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || tokenPunctuation.contains($0)) })
    {
      throw .invalidUploadHeader(
        name: name, reason: "a header name is letters, digits and !#$%&'*+-.^_`|~ only")
    }
    if value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" }) {
      throw .invalidUploadHeader(name: name, reason: "its value contains a line break")
    }
    if value.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
      throw .invalidUploadHeader(name: name, reason: "its value contains a control character")
    }
  }
}

/// Everything the uploader is told: where to send, how much to keep, how long to wait, and the
/// credentials and headers every request carries.
package struct UploadSettings: Sendable {
  package var destinations: [UploadDestination]
  /// The most request bytes each destination keeps waiting; past it the oldest requests are
  /// dropped (and counted).
  package var queueLimitBytes: Int
  /// The most requests each destination keeps waiting, however small (memory stays bounded when
  /// requests are tiny too): 4096 by default, over 11 hours of 10-second intervals.
  package var queueLimitRequests: Int
  /// Seconds one request may take from its start to the end of its answer.
  package var requestTimeout: Double
  /// Seconds a connection may take to open (TLS handshake included).
  package var connectTimeout: Double
  /// A PEM bundle of the certificate authorities HTTPS uploads trust instead of the system's.
  package var caFile: String?
  /// Sent as `X-Scope-OrgID` (Grafana's multi-tenancy) when set.
  package var tenant: String?
  /// Sent as `Authorization: Bearer …` to destinations without a user in their URL.
  package var bearerToken: String?
  package var userAgent: String
  /// The first retry waits about this long (half of it to all of it, at random), each further one
  /// twice as long as the one before, up to `retryMaxDelay`.
  package var retryInitialDelay: Double
  package var retryMaxDelay: Double
  /// The longest a `Retry-After` answer is waited for.
  package var retryAfterLimit: Double
  /// The least time between two sentences of the same kind about one destination.
  package var reportInterval: Double

  package init(
    destinations: [UploadDestination], queueLimitBytes: Int = 32 << 20, queueLimitRequests: Int = 4096,
    requestTimeout: Double = 10, connectTimeout: Double = 3, caFile: String? = nil, tenant: String? = nil,
    bearerToken: String? = nil, userAgent: String = "spyglass/\(spyglassVersion)", retryInitialDelay: Double = 1,
    retryMaxDelay: Double = 60, retryAfterLimit: Double = 300, reportInterval: Double = 60
  ) {
    self.destinations = destinations
    self.queueLimitBytes = queueLimitBytes
    self.queueLimitRequests = queueLimitRequests
    self.requestTimeout = requestTimeout
    self.connectTimeout = connectTimeout
    self.caFile = caFile
    self.tenant = tenant
    self.bearerToken = bearerToken
    self.userAgent = userAgent
    self.retryInitialDelay = retryInitialDelay
    self.retryMaxDelay = retryMaxDelay
    self.retryAfterLimit = retryAfterLimit
    self.reportInterval = reportInterval
  }
}

/// What became of one destination's uploads so far.
package struct UploadCounts: Sendable, Equatable {
  /// The destination's URL, without credentials.
  package var url: String
  /// Requests the destination accepted (a 2xx answer), and the interval profiles they carried.
  package var sentRequests = 0
  package var sentProfiles = 0
  /// Requests waiting (the one being sent among them) and their body bytes.
  package var queuedRequests = 0
  package var queuedBytes = 0
  /// Profiles (and request bytes) given up on: dropped from a full queue, refused by the
  /// destination (4xx), not encodable, or still queued at the end.
  package var droppedProfiles = 0
  package var droppedBytes = 0
  /// Attempts that failed and were retried (connection errors, timeouts, 408, 429, 5xx).
  package var failedAttempts = 0
  /// Why the last failed attempt failed, in a few words (bounded in length).
  package var lastError: String? = nil

  package init(url: String) { self.url = url }
}

/// Decodes `%XX` escapes; nil when a `%` is not followed by two hexadecimal digits or the result
/// is not UTF-8.
func percentDecoded(_ text: Substring) -> String? {
  var bytes: [UInt8] = []
  var utf8 = text.utf8[...]
  while let byte = utf8.popFirst() {
    guard byte == UInt8(ascii: "%") else {
      bytes.append(byte)
      continue
    }
    guard let high = utf8.popFirst().flatMap(hexValue), let low = utf8.popFirst().flatMap(hexValue) else {
      return nil
    }
    bytes.append(high << 4 | low)
  }
  return String(validating: bytes, as: UTF8.self)
}

private func hexValue(_ byte: UInt8) -> UInt8? {
  switch byte {
  case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
  case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
  case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
  default: nil
  }
}

/// Standard base64 with padding (RFC 4648), for basic authentication.
func base64(_ bytes: [UInt8]) -> String {
  let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
  var out: [UInt8] = []
  out.reserveCapacity((bytes.count + 2) / 3 * 4)
  var index = 0
  while index < bytes.count {
    let count = min(3, bytes.count - index)
    var group = UInt32(bytes[index]) << 16
    if count > 1 { group |= UInt32(bytes[index + 1]) << 8 }
    if count > 2 { group |= UInt32(bytes[index + 2]) }
    for position in 0..<4 {
      out.append(position <= count ? alphabet[Int(group >> UInt32(18 - 6 * position)) & 63] : UInt8(ascii: "="))
    }
    index += 3
  }
  return String(decoding: out, as: UTF8.self)
}
