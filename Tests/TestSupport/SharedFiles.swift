import Foundation

/// Files of the project's `shared/` folder (validators, benchmark workloads), which sits beside the
/// checkout (`<package root>/../shared`) on developer machines and in CI.
public enum SharedFiles {
  /// The package root, from this file's location (<root>/Tests/TestSupport/SharedFiles.swift).
  public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

  /// The absolute path of `relative` inside shared/: beside the checkout, else /work/shared.
  public static func path(_ relative: String) -> String {
    let beside = (packageRoot as NSString).appendingPathComponent("../shared/" + relative)
    if FileManager.default.fileExists(atPath: beside) { return (beside as NSString).standardizingPath }
    return "/work/shared/" + relative
  }
}
