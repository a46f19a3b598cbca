import Foundation

/// The two peer transports under comparison.
enum TransportKind: String, CaseIterable, Sendable {
    /// The production path: `GRPCPeerTransport` sending, `RaftPeerService` in a `GRPCServer` receiving.
    case grpc
    /// Length-prefixed `Flotilla_V1_RaftBatch` frames over plain TCP on SwiftNIO (`NIOFrameTransport`).
    case nio
}

/// One traffic pattern: `window` append messages in flight, each carrying `entries` entries of
/// `payloadBytes` bytes, for `warmup` unmeasured then `count` measured round trips.
struct Workload: Sendable {
    var name: String
    var window: Int
    var entries: Int
    var payloadBytes: Int
    var warmup: Int
    var count: Int

    static func all(scale: Double) -> [Workload] {
        func n(_ x: Int) -> Int { max(1, Int((Double(x) * scale).rounded())) }
        return [
            Workload(name: "latency", window: 1, entries: 1, payloadBytes: 128, warmup: n(2_000), count: n(20_000)),
            Workload(name: "throughput", window: 64, entries: 1, payloadBytes: 128, warmup: n(10_000), count: n(200_000)),
            Workload(name: "batched", window: 8, entries: 64, payloadBytes: 128, warmup: n(1_000), count: n(20_000)),
        ]
    }
}

let usage = """
    usage: peer-transport-bench [--transport grpc|nio|both] [--workload latency|throughput|batched|all]
                                [--repeat N] [--scale X] [--json]

    Measures the Raft peer transport candidates between two processes on 127.0.0.1. This process
    is the leader: it spawns its partner (the follower) from its own executable for every run,
    sends append messages and times the follower's answers.

      --transport  grpc (production GRPCPeerTransport + RaftPeerService), nio (length-prefixed
                   frames on SwiftNIO) or both (default: both)
      --workload   latency (1 in flight, 1 entry of 128 B), throughput (64 in flight, 1 entry),
                   batched (8 in flight, 64 entries of 128 B) or all (default: all)
      --repeat     runs of each (transport, workload), interleaved (default: 1)
      --scale      multiplies every warm-up and measured count, e.g. 0.05 for a smoke test (default: 1)
      --json       one JSON line per run and per median instead of the tables
    """

struct Options: Sendable {
    enum Role: Sendable {
        case leader
        /// The spawned partner: listens, connects back to the leader at `leaderPort`, echoes.
        case follower(leaderPort: Int)
    }

    var role: Role = .leader
    var transports: [TransportKind] = TransportKind.allCases
    var workloads: [String] = ["latency", "throughput", "batched"]
    var repeats = 1
    var scale = 1.0
    var json = false

    struct UsageError: Error, CustomStringConvertible {
        var description: String
    }

    /// Parses `arguments` (without the executable's path).
    static func parse(_ arguments: [String]) throws(UsageError) -> Options {
        var options = Options()
        var transport: TransportKind?
        var i = 0
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < arguments.count else { throw UsageError(description: "\(flag) needs a value") }
            return arguments[i]
        }
        while i < arguments.count {
            let flag = arguments[i]
            switch flag {
            case "--transport":
                let v = try value(flag)
                if v == "both" {
                    options.transports = TransportKind.allCases
                } else if let kind = TransportKind(rawValue: v) {
                    options.transports = [kind]
                    transport = kind
                } else {
                    throw UsageError(description: "--transport must be grpc, nio or both, not \(v)")
                }
            case "--workload":
                let v = try value(flag)
                if v == "all" {
                    options.workloads = ["latency", "throughput", "batched"]
                } else if ["latency", "throughput", "batched"].contains(v) {
                    options.workloads = [v]
                } else {
                    throw UsageError(description: "--workload must be latency, throughput, batched or all, not \(v)")
                }
            case "--repeat":
                let v = try value(flag)
                guard let n = Int(v), n >= 1 else { throw UsageError(description: "--repeat must be a positive integer") }
                options.repeats = n
            case "--scale":
                let v = try value(flag)
                guard let x = Double(v), x > 0 else { throw UsageError(description: "--scale must be a positive number") }
                options.scale = x
            case "--json":
                options.json = true
            case "--follower-of":  // internal: the role of a spawned partner
                let v = try value(flag)
                guard let port = Int(v) else { throw UsageError(description: "--follower-of needs a port") }
                options.role = .follower(leaderPort: port)
            case "-h", "--help":
                throw UsageError(description: "")
            default:
                throw UsageError(description: "unknown argument \(flag)")
            }
            i += 1
        }
        if case .follower = options.role, transport == nil {
            throw UsageError(description: "a follower needs exactly one --transport")
        }
        return options
    }
}
