// swift-tools-version:6.2
//
// A client of the Spyglass library, outside the library's own package: it depends on Spyglass by
// path, as any other package would by URL. The tests build and run it against live processes.
import PackageDescription

let package = Package(
  name: "StackPrinter",
  platforms: [.macOS(.v15)],
  dependencies: [.package(name: "Spyglass", path: "../..")],
  targets: [
    .executableTarget(
      name: "StackPrinter", dependencies: [.product(name: "Spyglass", package: "Spyglass")])
  ]
)
