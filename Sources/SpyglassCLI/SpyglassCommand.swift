import ArgumentParser

public struct SpyglassCommand: ParsableCommand {
  public static let configuration = CommandConfiguration(
    commandName: "spyglass", abstract: "Sampling profiler for Python programs")
  public init() {}
}
