import ArgumentParser

public struct Top: ParsableCommand {
  public static let configuration = CommandConfiguration(abstract: "Displays a top like view of functions consuming CPU")
  public init() {}
}
