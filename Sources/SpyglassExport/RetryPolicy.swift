//===--- RetryPolicy.swift - which failures are tried again, and when ------===//
//
// A request that failed in a way that waiting can mend is tried again: no connection, no answer
// in time, 408 (the server timed out), 429 (too many requests) and any 5xx. Each further attempt
// waits twice as long as the one before (from `retryInitialDelay` up to `retryMaxDelay`), a random
// part of it shaved off so that many agents restarted together do not keep knocking at the same
// moment. A `Retry-After` answer is obeyed instead, within `retryAfterLimit`, never earlier. Any
// other answer is final: a 4xx says this request will never be taken, so it is dropped.
//
//===----------------------------------------------------------------------===//

/// How one attempt ended, as the uploader acts on it.
enum AttemptOutcome: Equatable {
  /// The destination took the request (2xx).
  case sent
  /// Try again later: `reason` in a few words, `retryAfter` seconds when the answer said so.
  case retry(reason: String, retryAfter: Double?)
  /// The destination will not take this request: drop it.
  case rejected(reason: String)
}

enum RetryPolicy {
  /// The outcome of an answer with `status` (and its `Retry-After` header, its reason phrase and
  /// a bounded excerpt of its body, for the reason).
  static func outcome(
    status: Int, reasonPhrase: String, retryAfter: String?, excerpt: String, nowUnixSeconds: Double
  ) -> AttemptOutcome {
    if (200..<300).contains(status) { return .sent }
    var reason = "HTTP \(status)"
    if !reasonPhrase.isEmpty { reason += " \(reasonPhrase)" }
    if !excerpt.isEmpty { reason += ": \(excerpt)" }
    if status == 408 || status == 429 || (500..<600).contains(status) {
      return .retry(
        reason: reason, retryAfter: retryAfter.flatMap { delay(retryAfter: $0, nowUnixSeconds: nowUnixSeconds) })
    }
    if (300..<400).contains(status) { reason += " (redirects are not followed: give the URL it points to)" }
    return .rejected(reason: reason)
  }

  /// The wait before attempt `failures + 1` after `failures` consecutive failures (1 or more):
  /// `initial` doubled per further failure, at most `maximum`, then between half of it and all of
  /// it as `random` (0 to 1) says.
  static func backoff(failures: Int, initial: Double, maximum: Double, random: Double) -> Double {
    let doublings = min(max(0, failures - 1), 40)
    let full = min(maximum, initial * Double(1 << UInt64(doublings)))
    return full * (0.5 + 0.5 * min(max(random, 0), 1))
  }

  /// Seconds from now that a `Retry-After` value asks to wait: delta-seconds or an HTTP-date
  /// (RFC 9110: IMF-fixdate, and the obsolete RFC 850 and asctime forms). nil for anything else.
  static func delay(retryAfter value: String, nowUnixSeconds: Double) -> Double? {
    var text = Substring(value)
    while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
    while let last = text.last, last == " " || last == "\t" { text.removeLast() }
    if !text.isEmpty, text.utf8.count <= 18, text.allSatisfy({ $0.isASCII && $0.isNumber }) {
      return Double(text)
    }
    guard let date = httpDate(String(text)) else { return nil }
    return max(0, date - nowUnixSeconds)
  }

  /// An HTTP-date as Unix seconds: "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37
  /// GMT" or "Sun Nov  6 08:49:37 1994".
  static func httpDate(_ text: String) -> Double? {
    let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" || $0 == "\t" })
    guard tokens.count >= 5, tokens.count <= 6 else { return nil }
    var month: Int? = nil
    var day: Int? = nil
    var year: Int? = nil
    var clock: [Int]? = nil
    for (position, token) in tokens.enumerated() {
      if position == 0 { continue }  // the day of the week
      if let index = months.firstIndex(of: token.lowercased()) {
        month = index + 1
      } else if token.contains(":") {
        let parts = token.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 != nil }) else { return nil }
        clock = parts.map { $0! }
      } else if token == "GMT" || token == "UTC" {
        continue
      } else if let number = Int(token), token.allSatisfy(\.isNumber), token.count <= 4 {
        // In all three forms the day comes before the year.
        if day == nil {
          day = number
        } else if year == nil {
          // RFC 850's two-digit year: taken as 19xx from 70 on, else 20xx.
          year = token.count == 2 ? (number < 70 ? 2000 + number : 1900 + number) : number
        } else {
          return nil
        }
      } else {
        return nil
      }
    }
    guard let month, let day, let year, let clock, (1...31).contains(day), clock[0] < 24, clock[1] < 60,
      clock[2] <= 60
    else { return nil }
    let days = daysFromUnixEpoch(year: year, month: month, day: day)
    return Double(days * 86_400 + clock[0] * 3_600 + clock[1] * 60 + clock[2])
  }

  /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
  static func daysFromUnixEpoch(year: Int, month: Int, day: Int) -> Int {
    // Count from 0000-03-01 so that the leap day ends a year: a year's days are then
    // 365 + its leap day, and a month's start follows from (153 * m + 2) / 5.
    let shiftedYear = month <= 2 ? year - 1 : year
    let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
    let yearOfEra = shiftedYear - era * 400
    let shiftedMonth = (month + 9) % 12
    let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }
}
