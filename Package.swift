// swift-tools-version:6.2
//
// Spyglass: a sampling profiler for CPython, read from outside the process.
//
// Layers, data flowing one way (each target depends only on the ones above it):
//   CSpyglass        C shims for what Glibc does not export (process_vm_readv, ptrace, wait macros, zlib)
//   SpyglassProcess  the only place for syscalls, ptrace, /proc and raw pointers
//   SpyglassELF      ELF reading: sections, symbols, program headers
//   SpyglassLayouts  CPython layouts: pure data, one table per minor version, plus _Py_DebugOffsets
//   SpyglassStacks   finding the interpreter and walking threads and frames
//   SpyglassProfile  the profile model: interned frames and stacks, aggregation, timeline
//   SpyglassOutput   writers: flamegraph SVG, speedscope, chrome trace, raw, pprof
//   SpyglassCLI      swift-argument-parser commands
//   spyglass         the thin executable
import PackageDescription

let pure: [SwiftSetting] = [.strictMemorySafety(), .treatWarning("StrictMemorySafety", as: .error)]
// The sampling path's modules drop run-time exclusivity checks in release builds: they showed as
// 4% of a 10 kHz sample's CPU (swift_beginAccess on class properties). Debug builds, and with them
// the whole test suite, keep the checks, so an overlapping access still fails there.
let samplingPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
  name: "Spyglass",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "spyglass", targets: ["spyglass"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    // Without its default traits: BinaryDelimitedStreams imports all of Foundation (and with it ICU),
    // which Spyglass does not use; the rest of SwiftProtobuf needs only FoundationEssentials.
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
  ],
  targets: [
    .target(
      name: "CSpyglass",
      cSettings: [.define("_GNU_SOURCE")],
      linkerSettings: [.linkedLibrary("z")]
    ),
    .target(name: "SpyglassProcess", dependencies: ["CSpyglass"], swiftSettings: samplingPath),
    .target(name: "SpyglassELF", dependencies: ["SpyglassProcess"]),
    .target(name: "SpyglassLayouts", swiftSettings: pure),
    .target(
      name: "SpyglassStacks", dependencies: ["SpyglassProcess", "SpyglassELF", "SpyglassLayouts"],
      swiftSettings: samplingPath),
    .target(name: "SpyglassProfile", swiftSettings: pure + samplingPath),
    .target(
      name: "SpyglassOutput",
      dependencies: [
        "SpyglassProfile", "CSpyglass",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ]
    ),
    .target(
      name: "SpyglassCLI",
      dependencies: [
        "SpyglassProcess", "SpyglassStacks", "SpyglassProfile", "SpyglassOutput",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: samplingPath
    ),
    // A fully static executable (Swift runtime, glibc, libstdc++, zlib): a profiler should not cost
    // its target's machine the ~10 MiB of shared Swift libraries, nor the ~3 MiB of shared C and
    // C++ libraries and the relocated data pages of a position-independent executable (max RSS
    // 15.3 -> 11.7 MiB, BENCHMARKS.md). glibc warns at link time that its user-database lookups
    // (getpwuid_r, used by FoundationEssentials for home directories) would load the machine's own
    // NSS modules at run time; Spyglass never looks users up.
    .executableTarget(
      name: "spyglass", dependencies: ["SpyglassCLI"],
      linkerSettings: [
        .unsafeFlags(["-static-executable"], .when(platforms: [.linux])),
        // FoundationEssentials's static archive does not name these two of its own dependencies.
        .linkedLibrary("_FoundationCollections", .when(platforms: [.linux])),
        .linkedLibrary("_FoundationCShims", .when(platforms: [.linux])),
      ]
    ),
    .target(
      name: "TestSupport",
      dependencies: ["SpyglassProcess"],
      path: "Tests/TestSupport"
    ),
    .testTarget(
      name: "SpyglassTests",
      dependencies: [
        "TestSupport", "SpyglassProcess", "SpyglassELF", "SpyglassLayouts", "SpyglassStacks",
        "SpyglassProfile", "SpyglassOutput", "SpyglassCLI",
      ],
      resources: [.copy("Fixtures")]
    ),
  ]
)
