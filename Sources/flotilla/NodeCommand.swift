import ArgumentParser
import ControlPlane
import Foundation
import NIOCore
import GRPCCore
import GRPCNIOTransportHTTP2
import Manifest
import Raft
import RaftStorage
import RaftTransport

/// `flotilla node`: runs one control-plane node of the cluster described by a config file.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run one control-plane node.",
        discussion: """
            Reads the cluster configuration (every node's id, addresses, zone and data directory, the \
            peer transport and the timing), opens this node's durable log, serves clients and agents \
            on its address and peers on its peer port (or, with peer_transport: grpc, on its address). \
            SIGTERM or SIGINT stops it gracefully: a leader first hands leadership to its most \
            up-to-date peer. A crash (SIGKILL) loses nothing that was acknowledged.
            """
    )

    @Option(help: "This node's id in the configuration.")
    var id: UInt64

    @Option(help: "The cluster configuration file (YAML).")
    var config: String

    @Option(help: "Serve Prometheus metrics (GET /metrics) on this port of the node's host. Off by default.")
    var metricsPort: Int?

    @Option(help: ArgumentHelp(
        "For tests: a file naming peer ids (comma-separated) this node is cut off from, re-read every 50 ms.",
        visibility: .hidden))
    var faultFile: String?

    @Option(help: ArgumentHelp(
        "For tests: a file saying how this node's disk misbehaves, re-read every 50 ms: 'delay MS' (every fsync sleeps MS first), 'fail' (the next fsync fails), or nothing (healthy).",
        visibility: .hidden))
    var diskFaultFile: String?

    func validate() throws {
        // Ids in a configuration are positive integers (ClusterConfig).
        try checkRange(id, "--id", 1...)
        try checkRange(metricsPort, "--metrics-port", 1...65_535)
    }

    func run() async throws {
        let cluster = try loadClusterConfig(config)
        guard let me = cluster.node(id) else {
            throw CLIError("\(config): no node with id \(id) (ids: \(cluster.nodes.map { String($0.id) }.joined(separator: ", ")))")
        }
        try FileManager.default.createDirectory(atPath: me.dataDirectory, withIntermediateDirectories: true)
        // Open the log now, so that a corrupt or locked data directory stops the node with its message.
        let diskFaults = diskFaultFile.map { _ in SyncFaultControl() }
        let storage = try Unchecked(FileLogStorage(directory: me.dataDirectory, control: diskFaults))
        let others = cluster.nodes.filter { $0.id != id }
        let transport: any PeerTransport
        let runTransport: @Sendable () async -> Void
        switch cluster.peerTransport {
        case .nio:
            let nio = NIOPeerTransport(
                localID: id, clusterID: cluster.clusterID,
                peers: others.map { NIOPeerTransport.Peer(id: $0.id, host: $0.host, port: $0.peerPort) },
                log: { say("flotilla node \(id): \($0)") })
            (transport, runTransport) = (nio, { await nio.run() })
        case .grpc:
            let grpc = GRPCPeerTransport(peers: others.map { GRPCPeerTransport.Peer(id: $0.id, host: $0.host, port: $0.port) })
            (transport, runTransport) = (grpc, { await grpc.run() })
        }
        let faults = faultFile.map { _ in FaultInjectingTransport(wrapping: transport) }
        let manifest = ManifestStore()
        // For the chaos suite's test that its checker catches a broken cluster (never set otherwise).
        if let name = ProcessInfo.processInfo.environment["FLOTILLA_INJECT_MANIFEST_BUG"] {
            guard let bug = ManifestBug(rawValue: name) else {
                throw CLIError("FLOTILLA_INJECT_MANIFEST_BUG: unknown bug '\(name)' (\(ManifestBug.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            manifest.inject([bug])
            say("flotilla node \(id): WARNING: running with the deliberate manifest bug '\(name)' (FLOTILLA_INJECT_MANIFEST_BUG), for tests only")
        }
        var options = cluster.nodeOptions(for: id)
        options.log = { say("flotilla node \(id): \($0)") }
        let node = NodeRuntime(
            options: options, transport: faults ?? transport,
            storage: { storage.take() }, stateMachine: { FlotillaStateMachine(manifest: manifest) })
        // Both peer transports' receiving sides deliver through here, past the fault filter.
        let deliver: @Sendable ([Raft.Message]) -> Void = { messages in node.deliver(faults?.filterInbound(messages) ?? messages) }
        let orchestrator = Orchestrator(node: node, store: manifest, config: cluster.scheduler)
        var services: [any RegistrableRPCService] = [
            ControlPlaneService(node: node, config: cluster),
            TasksService(orchestrator: orchestrator, config: cluster),
            AgentsService(orchestrator: orchestrator, config: cluster),
        ]
        let listener: NIOPeerListener?
        switch cluster.peerTransport {
        case .nio:
            // Bound before anything serves, so that a port in use stops the node at once.
            do {
                listener = try await NIOPeerListener.bind(
                    host: me.host, port: me.peerPort, localID: id, clusterID: cluster.clusterID,
                    acceptedPeers: Set(others.map(\.id)), log: { say("flotilla node \(id): \($0)") }, deliver: deliver)
            } catch {
                throw CLIError("node \(id) (peer_port \(me.peerPort)): \(error)")
            }
        case .grpc:
            listener = nil
            services.insert(RaftPeerService(deliver: deliver), at: 0)
        }
        let server = GRPCServer(
            transport: makeServerTransport(host: me.host, port: me.port),
            services: services)
        var metricsChannel: (any Channel)?
        if let metricsPort {
            do {
                metricsChannel = try await MetricsEndpoint(host: me.host, port: metricsPort).start()
            } catch {
                await listener?.close()
                throw CLIError("node \(id): cannot serve metrics on \(me.host):\(metricsPort): \(error)")
            }
        }
        defer { metricsChannel?.close(promise: nil) }
        let signals = SignalWatcher(signals: [SIGTERM, SIGINT]) { node.stop(transferLeadership: true) }
        defer { signals.cancel() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await server.serve()
                } catch {
                    node.stop(transferLeadership: false)
                    throw error
                }
            }
            // Fails if the address cannot be bound (not this machine's, or already in use).
            guard (try? await server.listeningAddress) != nil else {
                group.cancelAll()
                await listener?.close()
                throw CLIError("cannot listen on \(me.address): is it this machine's address, and is the port free?")
            }
            let peers = listener.map { "peers on \($0.host):\($0.port) (nio)" } ?? "peers on the same port (grpc)"
            say("flotilla node \(id): serving \(me.address), \(peers), cluster \(cluster.clusterID), zone \(me.zone), data \(me.dataDirectory)")
            if let listener { group.addTask { await listener.run() } }
            group.addTask { await runTransport() }
            group.addTask { await orchestrator.run() }
            if metricsChannel != nil {
                say("flotilla node \(id): metrics on http://\(me.host):\(metricsPort ?? 0)/metrics")
                group.addTask { await NodeMetrics(node: node, store: manifest).run() }
            }
            if let faults, let faultFile {
                group.addTask {
                    while !Task.isCancelled {
                        let text = (try? String(contentsOfFile: faultFile, encoding: .utf8)) ?? ""
                        faults.block(Set(text.split(whereSeparator: { $0 == "," || $0.isWhitespace }).compactMap { UInt64($0) }))
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
            if let diskFaults, let diskFaultFile {
                group.addTask { try await watchDiskFaults(diskFaultFile, diskFaults, node: id) }
            }
            // The node's end (graceful stop, or a storage failure) ends the process.
            defer { group.cancelAll() }
            do {
                try await node.run()
            } catch {
                // Storage failed: what is on disk is uncertain, so the process must go now (a
                // restart recovers what was made durable). Requests in flight were already failed;
                // their answers get half a second to leave, then the process ends without unwinding
                // (streams such as agents' assignments would hold a graceful shutdown open).
                say("flotilla node \(id): exiting: \(error)")
                server.beginGracefulShutdown()
                try? await Task.sleep(for: .milliseconds(500))
                _exit(1)
            }
            server.beginGracefulShutdown()
        }
        say("flotilla node \(id): stopped")
    }
}

/// Applies the disk fault a test writes into `path` (see `--disk-fault-file`), on every change.
private func watchDiskFaults(_ path: String, _ control: SyncFaultControl, node: UInt64) async throws {
    var last = ""
    while !Task.isCancelled {
        let text = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if text != last {
            last = text
            let words = text.split(separator: " ")
            if words.first == "delay", words.count == 2, let ms = Int(words[1]) {
                control.setDelay(.milliseconds(ms))
                say("flotilla node \(node): injected disk fault: every fsync now sleeps \(ms) ms first")
            } else if text == "fail" {
                control.failNextSync()
                say("flotilla node \(node): injected disk fault: the next fsync fails")
            } else {
                control.setDelay(.zero)
                if !text.isEmpty { say("flotilla node \(node): ignoring unknown disk fault '\(text)' (expected 'delay MS' or 'fail')") }
            }
        }
        try await Task.sleep(for: .milliseconds(50))
    }
}

/// Hands a non-Sendable value to the one closure that uses it.
///
/// `@unchecked Sendable` is sound here: `take()` is called exactly once, by the node thread that then
/// owns the value; nothing else touches it after construction.
final class Unchecked<T>: @unchecked Sendable {
    private var value: T?
    init(_ value: T) { self.value = value }
    func take() -> T {
        defer { value = nil }
        return value!
    }
}

/// Runs `action` when one of `signals` arrives (instead of the default, which kills the process).
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32], action: @escaping @Sendable () -> Void) {
        sources = signals.map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler(handler: action)
            source.resume()
            return source
        }
    }

    func cancel() { for s in sources { s.cancel() } }
}

/// A failure at run time (bad input is reported by `validate()` with the usage).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func loadClusterConfig(_ path: String) throws -> ClusterConfig {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw CLIError("cannot read the cluster configuration \(path)")
    }
    do {
        return try ClusterConfig.parse(yaml: text, source: path)
    } catch {
        throw CLIError(error.description)
    }
}
