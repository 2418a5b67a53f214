// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "gproxy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gproxy", targets: ["gproxy"])
    ],
    dependencies: [
        // ManagedAtomic: the one strong, atomically swappable reference the routing-table publisher needs
        // (stdlib Atomic cannot hold a class reference; see shared/reference/swift-idioms.md §2b).
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        // swift-log: the logging API the health checker and session logs go through (issue #4).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "CEpoll",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "Splicer",
            dependencies: [
                "CEpoll",
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: [.strictMemorySafety()]
        ),
        .executableTarget(
            name: "gproxy",
            dependencies: [
                "Splicer",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // perf/: benchmarks, not run by `swift test`.
        .executableTarget(
            name: "AcceptBench",
            dependencies: ["Splicer", "CEpoll"],
            path: "perf/AcceptBench"
        ),
        .testTarget(
            name: "SplicerTests",
            dependencies: ["Splicer", "CEpoll"]
        ),
        .testTarget(
            name: "gproxyTests",
            dependencies: ["gproxy", "Splicer"]
        ),
    ]
)
