// swift-tools-version:6.2
//
// Spyglass: a sampling profiler for CPython, read from outside the process.
//
// Layers, data flowing one way (each target depends only on the ones above it):
//   CSpyglass        C shims for what Glibc does not export (process_vm_readv, ptrace, wait macros, zlib)
//   SpyglassProcess  the only place for syscalls, ptrace, /proc and raw pointers
//   SpyglassELF      ELF reading: sections, symbols, program headers
//   CElfutils        native unwinding and symbols through elfutils' libdwfl (C, over libdw/libelf)
//   SpyglassNative   native stacks of stopped threads and of core files, symbolised and cached
//   SpyglassLayouts  CPython layouts: pure data, one table per minor version, plus _Py_DebugOffsets
//   SpyglassModel    the values every layer above shares: Config, Frame, StackTrace, TaskTrace and
//                    the one error family (SpyglassError), public through the library
//   SpyglassStacks   finding the interpreter in a process or a core, walking threads and frames
//   SpyglassProfile  the profile model: interned frames and stacks, aggregation, timeline
//   SpyglassOutput   the output seam: one writer per format behind one registry (flamegraph SVG,
//                    speedscope, chrome trace, raw, pprof, pstats, callgrind, the lossless
//                    recording), its reader, and the dump writers
//   SpyglassExport   continuous profiling: interval profiles encoded for Pyroscope's Push API and
//                    OTLP profiles, uploaded beside the sampling loop (async-http-client)
//   Spyglass         the library product: Config, PythonSpy, PythonCoreDump, Sampler (py-spy's
//                    embedding API), ProfileRecorder, and the one sampling loop (session, timer,
//                    CPU accounting, profile builder)
//   SpyglassCLI      swift-argument-parser commands over the library: no system call of its own
//   CStaticLink      the static executable's link-time hook (libdebuginfod is never loaded)
//   spyglass         the thin executable
// Every target above SpyglassProcess, SpyglassELF and SpyglassNative builds with strict memory safety.
import PackageDescription

let pure: [SwiftSetting] = [.strictMemorySafety(), .treatWarning("StrictMemorySafety", as: .error)]
// The sampling path's modules drop run-time exclusivity checks in release builds: they showed as
// 4% of a 10 kHz sample's CPU (swift_beginAccess on class properties). Debug builds, and with them
// the whole test suite, keep the checks, so an overlapping access still fails there.
let samplingPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
// Release builds give each function its own section, so the link can place the functions a
// recording runs side by side (see `linkOrder` below and bench/link-order/README.md).
let functionSections: [SwiftSetting] = [
  .unsafeFlags(["-Xfrontend", "-function-sections"], .when(platforms: [.linux], configuration: .release))
]
// The release link on Linux: lld, laying out the executable's code in the order of
// bench/link-order/order.txt (by symbol) and hot.ld (a linker script fragment for what has no
// symbol): the code a recording runs (start-up, attaching, sampling, writing) first and together.
// The kernel maps an executable's code 64 KiB at a time around each page touched, so code run
// spread over the whole 12 MB .text was resident as 6.1 MiB; laid out together, 2.8 MiB (max RSS
// of a 1000 Hz record of a 3.12 target 9.4 -> 6.6 MiB, of a 2.7 target 8.5 -> 5.7 MiB). A name the
// file lists that no longer exists is skipped and code it does not list is laid out as before, so
// a stale file costs memory, never correctness.
// bench/link-order/generate.sh makes both files anew (README.md there).
let packageRoot = String(#filePath.dropLast("Package.swift".count))
let linkOrder: [LinkerSetting] = [
  .unsafeFlags(
    [
      "-use-ld=lld", "-Xlinker", "--symbol-ordering-file=\(packageRoot)bench/link-order/order.txt",
      "-Xlinker", "--no-warn-symbol-ordering", "-Xlinker", "-T", "-Xlinker", "\(packageRoot)bench/link-order/hot.ld",
    ], .when(platforms: [.linux], configuration: .release))
]

let package = Package(
  name: "Spyglass",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "spyglass", targets: ["spyglass"]),
    .library(name: "Spyglass", targets: ["Spyglass"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    // Without its default traits: BinaryDelimitedStreams imports all of Foundation (and with it ICU),
    // which Spyglass does not use; the rest of SwiftProtobuf needs only FoundationEssentials.
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
    // The uploads' HTTP client (HTTP/1.1 and 2, TLS through BoringSSL, pooled connections,
    // timeouts): SwiftNIO's, well kept and statically linkable.
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    // async-http-client's own dependencies, named for the types its API takes: event loops,
    // deadlines and headers (swift-nio), the TLS configuration and CA certificates (swift-nio-ssl).
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
  ],
  targets: [
    .target(
      name: "CSpyglass",
      cSettings: [
        .define("_GNU_SOURCE"),
        .unsafeFlags(["-ffunction-sections"], .when(platforms: [.linux], configuration: .release)),
      ],
      linkerSettings: [.linkedLibrary("z")]
    ),
    .target(name: "SpyglassProcess", dependencies: ["CSpyglass"], swiftSettings: samplingPath + functionSections),
    .target(name: "SpyglassELF", dependencies: ["SpyglassProcess"], swiftSettings: functionSections),
    // elfutils' libdwfl does the native unwinding (CFI, frame pointers) and the symbol and line
    // lookups; Debian's libdw-dev ships the static archives a static Spyglass links (with the
    // compression libraries libelf reads compressed sections with).
    .target(
      name: "CElfutils",
      cSettings: [
        .define("_GNU_SOURCE"),
        .unsafeFlags(["-ffunction-sections"], .when(platforms: [.linux], configuration: .release)),
      ],
      linkerSettings: [
        .linkedLibrary("dw"), .linkedLibrary("elf"), .linkedLibrary("z"), .linkedLibrary("lzma"),
        .linkedLibrary("bz2"), .linkedLibrary("stdc++"),
      ]
    ),
    .target(
      name: "SpyglassNative", dependencies: ["CElfutils", "SpyglassProcess"],
      swiftSettings: samplingPath + functionSections),
    .target(name: "SpyglassLayouts", swiftSettings: pure + functionSections),
    .target(
      name: "SpyglassModel", dependencies: ["SpyglassProcess", "SpyglassLayouts"],
      swiftSettings: pure + functionSections),
    .target(
      name: "SpyglassStacks",
      dependencies: ["SpyglassProcess", "SpyglassELF", "SpyglassLayouts", "SpyglassNative", "SpyglassModel"],
      swiftSettings: pure + samplingPath + functionSections),
    .target(
      name: "SpyglassProfile", dependencies: ["SpyglassModel"], swiftSettings: pure + samplingPath + functionSections),
    .target(
      name: "SpyglassOutput",
      dependencies: [
        "SpyglassModel", "SpyglassProfile", "SpyglassProcess",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
      ],
      swiftSettings: pure + functionSections
    ),
    // Continuous profiling: each interval's profile encoded for Pyroscope's Push API or OTLP
    // profiles, and sent beside the sampling loop through a bounded queue.
    .target(
      name: "SpyglassExport",
      dependencies: [
        "SpyglassProcess", "SpyglassModel", "SpyglassProfile", "SpyglassOutput",
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ],
      swiftSettings: functionSections
    ),
    // The library: py-spy's embedding API in Swift (Config, PythonSpy, Sampler) and the one
    // sampling loop record, top and Sampler share.
    .target(
      name: "Spyglass",
      dependencies: [
        "SpyglassProcess", "SpyglassLayouts", "SpyglassModel", "SpyglassStacks", "SpyglassProfile", "SpyglassOutput",
      ],
      swiftSettings: pure + samplingPath + functionSections
    ),
    .target(
      name: "SpyglassCLI",
      dependencies: [
        "Spyglass", "SpyglassProcess", "SpyglassLayouts", "SpyglassModel", "SpyglassStacks", "SpyglassProfile",
        "SpyglassOutput", "SpyglassExport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: pure + samplingPath + functionSections
    ),
    // A fully static executable (Swift runtime, glibc, libstdc++, zlib): a profiler should not cost
    // its target's machine the ~10 MiB of shared Swift libraries, nor the ~3 MiB of shared C and
    // C++ libraries and the relocated data pages of a position-independent executable (max RSS
    // 15.3 -> 11.7 MiB, BENCHMARKS.md). glibc warns at link time that its user-database lookups
    // (getpwuid_r, used by FoundationEssentials for home directories) would load the machine's own
    // NSS modules at run time; Spyglass never looks users up.
    // The static executable's link-time hooks (CStaticLink/static_link.c: libdebuginfod is never
    // loaded), linked through `--wrap=dlopen`.
    .target(name: "CStaticLink"),
    .executableTarget(
      name: "spyglass", dependencies: ["SpyglassCLI", "CStaticLink"], swiftSettings: functionSections,
      linkerSettings: linkOrder + [
        .unsafeFlags(["-static-executable"], .when(platforms: [.linux])),
        // gold (the debug link's default) fails on the wrapped symbol: lld links both configurations.
        .unsafeFlags(["-Xlinker", "--wrap=dlopen"], .when(platforms: [.linux])),
        .unsafeFlags(["-use-ld=lld"], .when(platforms: [.linux], configuration: .debug)),
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
        "TestSupport", "SpyglassProcess", "SpyglassELF", "SpyglassNative", "SpyglassLayouts", "SpyglassModel",
        "SpyglassStacks", "SpyglassProfile", "SpyglassOutput", "SpyglassExport", "SpyglassCLI", "Spyglass",
      ],
      resources: [.copy("Fixtures")]
    ),
  ]
)
