public import Manifest
public import Raft
import Synchronization

/// The manifest of one node, shared between the node thread (which applies commands) and the
/// services and scheduler (which read it). Reads see the state after some prefix of the log.
public final class ManifestStore: Sendable {
    private let state = Mutex(TaskManifest())
    private let observer = Mutex<(@Sendable (ManifestCommand, ManifestReply) -> Void)?>(nil)

    public init() {}

    /// Deliberate bugs, for tests that show the checkers catch them (never in a real deployment).
    package func inject(_ bugs: Set<ManifestBug>) { state.withLock { $0.injectedBugs = bugs } }

    /// Runs `body` on the current manifest (under a lock: keep it short).
    public func read<T>(_ body: (borrowing TaskManifest) throws -> T) rethrows -> T {
        try state.withLock { try body($0) }
    }

    /// Called on the node thread after each applied manifest command (set once, by the orchestrator).
    public func observe(_ callback: @escaping @Sendable (ManifestCommand, ManifestReply) -> Void) {
        observer.withLock { $0 = callback }
    }

    func apply(_ bytes: [UInt8]) -> [UInt8] {
        let command: ManifestCommand
        do {
            command = try ManifestCommand(decoding: bytes)
        } catch {
            return ManifestReply.refused("malformed manifest command: \(error.reason) at byte \(error.offset)").encoded
        }
        let reply = state.withLock { $0.apply(command) }
        observer.withLock { $0 }?(command, reply)
        return reply.encoded
    }

    func snapshot() -> [UInt8] { state.withLock { $0.snapshot() } }

    func restore(_ bytes: [UInt8]) throws(StateMachineError) {
        do {
            let restored = try TaskManifest(snapshot: bytes)
            state.withLock { $0 = restored }
        } catch {
            throw StateMachineError("corrupt manifest snapshot at byte \(error.offset): \(error.reason)")
        }
    }
}

/// What `flotilla node` replicates: the task manifest, and the key-value store that tools and the
/// cluster tests use. A command's first byte says which: manifest commands start at
/// ``manifestCommandTagBase`` (0x10), key-value commands below it.
public struct FlotillaStateMachine: ReplicatedStateMachine, Sendable {
    public let manifest: ManifestStore
    private var keyValues = KeyValueStore()

    public init(manifest: ManifestStore) { self.manifest = manifest }

    public mutating func apply(_ command: [UInt8], at index: Index) -> [UInt8] {
        if let tag = command.first, tag >= manifestCommandTagBase { return manifest.apply(command) }
        return keyValues.apply(command, at: index)
    }

    public func query(_ query: [UInt8]) -> [UInt8] { keyValues.query(query) }

    public func snapshot() -> [UInt8] {
        var w = BinaryWriter()
        w.write(lengthPrefixed: keyValues.snapshot())
        w.write(lengthPrefixed: manifest.snapshot())
        return w.bytes
    }

    public mutating func restore(_ snapshot: [UInt8]) throws(StateMachineError) {
        var r = BinaryReader(snapshot[...])
        let kv: [UInt8]
        let m: [UInt8]
        do {
            kv = try r.readLengthPrefixed()
            m = try r.readLengthPrefixed()
            try r.expectEnd("the state machine snapshot")
        } catch {
            throw StateMachineError("corrupt snapshot at byte \(error.offset): \(error.reason)")
        }
        var restoredKV = KeyValueStore()
        try restoredKV.restore(kv)
        try manifest.restore(m)
        keyValues = restoredKV
    }
}
