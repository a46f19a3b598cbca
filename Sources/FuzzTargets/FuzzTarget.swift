import ControlPlane
import Dispatch
import FlotillaProto
import Foundation
import Manifest
import NIOCore
import NIOEmbedded
import Raft
import RaftStorage
import RaftTransport
import SwiftProtobuf
import Synchronization

/// The places where bytes from outside enter a node, each as a function of the bytes that must
/// never trap (and, where a decoded value can be checked, must check out).
///
/// The same functions run three ways: under libFuzzer (`flotilla-fuzz`, built by `make fuzz`
/// with `-sanitize=fuzzer,address`), over the seed corpora and every crash kept under `Fuzz/`
/// (`FuzzCorpusTests`, in `swift test`), and from the property tests.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Bytes arriving on a peer connection, through the listener's real pipeline (framing, hello,
    /// batch decoding and validation).
    case peerFrames = "peer-frames"
    /// A `RaftBatch` protobuf through the message codec; what decodes must re-encode to the same.
    case raftBatch = "raft-batch"
    /// A write-ahead log segment, opened as a node opens its data directory after a crash.
    case walSegment = "wal-segment"
    /// A node snapshot (sessions, key-value store, manifest), restored as a restarting node does.
    case nodeSnapshot = "node-snapshot"
    /// A manifest command and reply; a command that decodes round-trips and is applied.
    case manifestCommand = "manifest-command"
    /// `cluster.yaml`.
    case clusterConfig = "cluster-config"
    /// One request to a small in-process cluster serving the real services: first byte the method,
    /// second the node, the rest the request's protobuf encoding.
    case requests

    /// Runs the target on one input. Throws a finding when a checked property fails; a trap is a
    /// finding by itself. Blocks the calling thread for the request target: call it from a plain
    /// thread (libFuzzer's), never from Swift's concurrency pool; async code calls ``check(_:)``.
    public func run(_ bytes: [UInt8]) throws(FuzzFinding) {
        if self == .requests {
            let result = blockOn { () -> FuzzFinding? in
                do throws(FuzzFinding) {
                    try await fuzzRequests(bytes)
                    return nil
                } catch {
                    return error
                }
            }
            if let result { throw result }
            return
        }
        try runSynchronously(bytes)
    }

    /// ``run(_:)`` for async callers (tests): the request target is awaited, not blocked on.
    public func check(_ bytes: [UInt8]) async throws(FuzzFinding) {
        if self == .requests { try await fuzzRequests(bytes) } else { try runSynchronously(bytes) }
    }

    private func runSynchronously(_ bytes: [UInt8]) throws(FuzzFinding) {
        switch self {
        case .peerFrames: try fuzzPeerFrames(bytes)
        case .raftBatch: try fuzzRaftBatch(bytes)
        case .walSegment: try fuzzWalSegment(bytes)
        case .nodeSnapshot: _ = try? decodeNodeSnapshot(bytes)
        case .manifestCommand: try fuzzManifestCommand(bytes)
        case .clusterConfig: _ = try? ClusterConfig.parse(yaml: String(decoding: bytes, as: UTF8.self))
        case .requests: preconditionFailure("the request target is asynchronous")
        }
    }
}

// MARK: - Peer frames

private func fuzzPeerFrames(_ bytes: [UInt8]) throws(FuzzFinding) {
    let channel = EmbeddedChannel()
    // Node 2 listens, node 1 may connect (as in a 3-node cluster).
    do {
        try addPeerReceiveHandlers(
            to: channel.pipeline.syncOperations, localID: 2, clusterID: "fuzz", acceptedPeers: [1, 3], options: NIOPeerOptions(),
            log: { _ in }, deliver: { messages in
                for m in messages where m.from != 1 || m.to != 2 { fatalError("a misaddressed message was delivered: \(m)") }
            })
    } catch {
        throw FuzzFinding("cannot build the pipeline: \(error)")
    }
    // Fed in two pieces, as TCP may cut a stream anywhere.
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    for piece in [bytes[..<cut], bytes[cut...]] where channel.isActive {
        var buffer = channel.allocator.buffer(capacity: piece.count)
        buffer.writeBytes(piece)
        _ = try? channel.writeInbound(buffer)
    }
    _ = try? channel.finish()
}

// MARK: - Raft messages

private func fuzzRaftBatch(_ bytes: [UInt8]) throws(FuzzFinding) {
    guard let wire = try? Flotilla_V1_RaftBatch(serializedBytes: bytes), let messages = try? [Raft.Message](wire) else { return }
    // What the codec accepts, it must encode back to the same messages.
    let again: [Raft.Message]
    do {
        let encoded: [UInt8] = try Flotilla_V1_RaftBatch(messages).serializedBytes()
        again = try [Raft.Message](Flotilla_V1_RaftBatch(serializedBytes: encoded))
    } catch {
        throw FuzzFinding("accepted messages do not survive re-encoding: \(error)")
    }
    if again != messages { throw FuzzFinding("accepted messages change through re-encoding") }
}

// MARK: - Write-ahead log

/// Where scratch data directories go: in memory when /dev/shm exists.
private let scratchBase = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()

/// The name of the first segment of a fresh log.
let firstSegmentName = "0000000000000001-0000000000000001.log"

private func fuzzWalSegment(_ bytes: [UInt8]) throws(FuzzFinding) {
    let fm = FileManager.default
    // One directory per input: tests run inputs in parallel.
    let walScratch = "\(scratchBase)/flotilla-fuzz-wal-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)"
    defer { try? fm.removeItem(atPath: walScratch) }
    do {
        try fm.createDirectory(atPath: walScratch + "/wal", withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: walScratch + "/wal/" + firstSegmentName))
    } catch {
        throw FuzzFinding("cannot write the scratch segment: \(error)")
    }
    guard let storage = try? FileLogStorage(directory: walScratch), let state = try? storage.load() else { return }
    // What recovery accepts is a log a node can run on: indexes contiguous.
    for (k, e) in state.entries.enumerated() where k > 0 && e.index != state.entries[k - 1].index + 1 {
        throw FuzzFinding("recovered entries are not contiguous at \(e.index)")
    }
}

// MARK: - Manifest

/// A manifest with a few tasks in every state and two agents, to apply fuzzed commands to.
private let primedManifest: TaskManifest = {
    var m = TaskManifest()
    for command in primingCommands { _ = m.apply(command) }
    return m
}()

let primingCommands: [ManifestCommand] = [
    .agentJoined(agent: "a1", zone: "z1", slots: 2, incarnation: 1, info: "", at: 1),
    .agentJoined(agent: "a2", zone: "z2", slots: 1, incarnation: 1, info: "", at: 1),
    .submit(key: "k", spec: TaskSpec(size: 64), count: 4, at: 2),
    .assign(task: 1, attempt: 1, agent: "a1", at: 3),
    .started(task: 1, attempt: 1, agent: "a1", at: 4),
    .assign(task: 2, attempt: 1, agent: "a2", at: 3),
    .complete(task: 2, attempt: 1, agent: "a2", result: TaskResult(), at: 5),
    .cancel(task: 3, reason: "r", at: 6),
    .pauseJob(job: "j", at: 7),
]

private func fuzzManifestCommand(_ bytes: [UInt8]) throws(FuzzFinding) {
    _ = try? ManifestReply(decoding: bytes)
    guard let command = try? ManifestCommand(decoding: bytes) else { return }
    // Compared as bytes: a result's NaN gflops is not equal to itself.
    guard let again = try? ManifestCommand(decoding: command.encoded), again.encoded == command.encoded else {
        throw FuzzFinding("a decoded manifest command changes through re-encoding: \(command)")
    }
    var m = primedManifest
    let reply = m.apply(command)
    guard (try? ManifestReply(decoding: reply.encoded)) == reply else { throw FuzzFinding("a reply does not round-trip: \(reply)") }
    // Applying is deterministic, and the result survives a snapshot.
    var twin = primedManifest
    _ = twin.apply(command)
    guard m.snapshot() == twin.snapshot() else { throw FuzzFinding("applying \(command) twice gave two manifests") }
}

// MARK: - Requests

/// The cluster requests go to: started on first use, kept for the process's life.
private let requestCluster = InProcessCluster()
private let requestClusterStart = Mutex<Task<Void, Never>?>(nil)

private func fuzzRequests(_ bytes: [UInt8]) async throws(FuzzFinding) {
    guard bytes.count >= 2 else { return }
    let method = RequestMethod.allCases[Int(bytes[0]) % RequestMethod.allCases.count]
    let started = requestClusterStart.withLock { task in
        if task == nil { task = Task { try? await requestCluster.start() } }
        return task!
    }
    await started.value
    _ = try await requestCluster.check(method, payload: Array(bytes[2...]), to: Int(bytes[1]))
}

/// Runs `body` on Swift's concurrency pool and waits for it on this (non-async) thread: libFuzzer
/// calls each input on a plain thread.
func blockOn<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    let box = ResultBox<T>()
    Task {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

/// Written by one task before the semaphore is signalled, read after the wait: the semaphore
/// orders the two accesses, so no lock is needed.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
