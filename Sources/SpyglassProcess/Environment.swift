//===--- Environment.swift - reading environment variables ----------------===//

import Glibc

package enum Environment {
  /// The value of the environment variable `name`, or nil when it is not set.
  package static func value(_ name: String) -> String? {
    // Safe: getenv's result points into the environment block, which nothing here changes while it
    // is copied into a String.
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
  }
}
