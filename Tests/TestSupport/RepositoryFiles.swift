//===--- RepositoryFiles.swift - files of the package's own checkout ------===//
//
// The tests need a few files of the checkout that are not test resources: tools/in-root.sh (to
// start the rooted interpreters) and tools/debian-roots.sh (where the roots are). They are found
// from this file's location, so the suite works from any scratch path. Nothing here looks outside
// the checkout: what the tests use is in the repository.
//
//===----------------------------------------------------------------------===//

import Foundation

package enum RepositoryFiles {
  /// The package root, from this file's location (<root>/Tests/TestSupport/RepositoryFiles.swift).
  package static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

  /// The absolute path of `relative` (e.g. "tools/in-root.sh") in the checkout.
  package static func path(_ relative: String) -> String { root + "/" + relative }
}
