import Dispatch
import Foundation
public import Raft
import RaftStorage
public import RaftTransport
import Synchronization

/// How a node runs: its Raft configuration and the real-time parameters around it.
public struct NodeOptions: Sendable {
    public var raft: RaftConfig
    /// The founding voters (used only by a node whose storage names no configuration yet).
    public var bootstrap: Configuration
    /// Real time per Raft tick.
    public var tickInterval: Duration = .milliseconds(10)
    /// A snapshot is taken, and the log compacted behind it, every this many applied entries.
    public var snapshotInterval: UInt64 = 10_000
    /// A proposal or read not answered within this is failed with ``NodeError/timedOut``.
    public var requestTimeout: Duration = .seconds(5)
    /// A leader whose disk is this slow (`slowSyncCount` syncs in a row each took longer) hands
    /// leadership to its most up-to-date peer: with a sick disk it would hold every commit back.
    /// Nil: never (nodes started from a ``ClusterConfig`` use half the election timeout).
    public var slowSyncThreshold: Duration?
    public var slowSyncCount = 3
    /// Where the node says what it does on its own (leadership hand-offs, storage failures).
    public var log: @Sendable (String) -> Void = { _ in }

    public init(raft: RaftConfig, bootstrap: Configuration) {
        self.raft = raft
        self.bootstrap = bootstrap
    }
}

/// Why a request to a node failed, and what to do about it.
public enum NodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Retry on `leader` (``noNode``: no leader known yet, retry shortly).
    case notLeader(leader: NodeID)
    /// The leader changed before the proposal committed. Retry with the same client id and
    /// sequence number: it is applied at most once.
    case proposalLost
    /// No answer in time: the outcome is unknown. Retry with the same client id and sequence.
    case timedOut
    /// The client already had a later proposal applied; this one is ignored.
    case staleSequence
    /// The node is shutting down or stopped.
    case stopped
    /// The request is malformed.
    case invalidRequest(String)
    /// The core refused the request.
    case refused(RaftError)
    /// The node's storage failed; the node stopped. Nothing acknowledged was lost.
    case storageFailed(String)

    public var description: String {
        switch self {
        case .notLeader(let l): return l == noNode ? "no leader is known yet: retry shortly" : "not the leader: retry on node \(l)"
        case .proposalLost: return "the leader changed before the proposal committed: retry it with the same sequence number"
        case .timedOut: return "no answer in time, the outcome is unknown: retry with the same sequence number"
        case .staleSequence: return "a later proposal of this client was already applied; this one is ignored"
        case .stopped: return "the node is stopped"
        case .invalidRequest(let why): return "invalid request: \(why)"
        case .refused(let e): return e.description
        case .storageFailed(let why): return "storage failed, the node stopped: \(why)"
        }
    }
}

public struct ProposeResult: Sendable, Hashable {
    public var index: Index
    public var term: Term
    public var result: [UInt8]
}

public struct ReadResult: Sendable, Hashable {
    public var appliedIndex: Index
    public var result: [UInt8]
}

/// One control-plane node: a ``RaftNode`` driven in real time, with durable storage, a transport
/// and a replicated state machine.
///
/// The node runs on its own thread (``run()``): it waits for inputs (peer messages, client
/// requests) or the next tick, feeds them all to the core, then handles the core's `Ready` in the
/// documented order: persist (with one fsync), send, apply, answer clients. Every request that
/// arrived while the previous `Ready` was being synced goes into the next one, so one fsync serves
/// many proposals (group commit). Blocking file I/O on this dedicated thread keeps Swift's
/// cooperative thread pool free for the gRPC server and clients.
public final class NodeRuntime: Sendable {
    public let id: NodeID
    private let options: NodeOptions
    private let transport: any PeerTransport
    private let makeStorage: @Sendable () throws -> any LogStorage
    private let makeStateMachine: @Sendable () -> any ReplicatedStateMachine
    private let inbox = Inbox()

    public init(
        options: NodeOptions, transport: any PeerTransport,
        storage: @escaping @Sendable () throws -> any LogStorage,
        stateMachine: @escaping @Sendable () -> any ReplicatedStateMachine
    ) {
        id = options.raft.id
        self.options = options
        self.transport = transport
        makeStorage = storage
        makeStateMachine = stateMachine
    }

    /// Runs the node until ``stop(transferLeadership:)`` or the task's cancellation. Throws if
    /// the node cannot start (e.g. corrupt storage) or its storage fails while running.
    public func run() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                let thread = Thread { [self] in
                    // Whatever arrives once the loop is over (or never started) is answered at
                    // once: no thread would take it.
                    defer { for event in inbox.close() { event.reject(.stopped) } }
                    do {
                        try self.loop()
                        done.resume()
                    } catch {
                        done.resume(throwing: error)
                    }
                }
                thread.name = "raft-node-\(id)"
                thread.start()
            }
        } onCancel: {
            inbox.post(.stop(transferLeadership: false))
        }
    }

    /// Stops the node; a leader first hands leadership to its most up-to-date peer.
    public func stop(transferLeadership: Bool = true) { inbox.post(.stop(transferLeadership: transferLeadership)) }

    /// Hands messages from peers to the node.
    public func deliver(_ messages: [Message]) { inbox.post(.messages(messages)) }

    /// Proposes a command; returns once it is committed and applied, with its result.
    /// `client` and `sequence` identify retries of the same proposal (empty/0: no deduplication).
    public func propose(_ command: [UInt8], client: String = "", sequence: UInt64 = 0) async throws(NodeError) -> ProposeResult {
        let envelope = ProposalEnvelope(client: client, sequence: sequence, command: command)
        return try await request { .propose(envelope, $0) }
    }

    /// A linearizable read of the state machine.
    public func read(_ query: [UInt8]) async throws(NodeError) -> ReadResult {
        try await request { .read(query, $0) }
    }

    public func status() async throws(NodeError) -> Status {
        try await request { .status($0) }
    }

    public func transferLeadership(to target: NodeID) async throws(NodeError) {
        let _: Bool = try await request { .transfer(target, $0) }
    }

    /// Adds or removes one voter; returns once the change is committed.
    public func changeMembership(_ change: ConfigurationChange) async throws(NodeError) -> Index {
        try await request { .changeMembership(change, $0) }
    }

    private func request<T: Sendable>(_ make: (Reply<T>) -> Event) async throws(NodeError) -> T {
        let result: Result<T, NodeError> = await withCheckedContinuation { continuation in
            inbox.post(make(Reply(continuation)))
        }
        return try result.get()
    }

    private func loop() throws {
        let driver = try Driver(
            options: options, transport: transport, storage: makeStorage(), stateMachine: makeStateMachine())
        let clock = ContinuousClock()
        var nextTick = clock.now.advanced(by: options.tickInterval)
        defer { driver.failAll(.stopped) }
        while !driver.finished {
            let wait = max(clock.now.duration(to: nextTick), .zero)
            for event in inbox.take(waitingAtMost: wait) { driver.handle(event) }
            var ticks = 0
            while clock.now >= nextTick && ticks < 3 {
                driver.tick()
                nextTick = nextTick.advanced(by: options.tickInterval)
                ticks += 1
            }
            if clock.now >= nextTick { nextTick = clock.now.advanced(by: options.tickInterval) }
            try driver.drain()
        }
    }
}

/// A one-shot answer to a request, carried through the inbox.
struct Reply<T: Sendable>: Sendable {
    private let continuation: CheckedContinuation<Result<T, NodeError>, Never>
    init(_ c: CheckedContinuation<Result<T, NodeError>, Never>) { continuation = c }
    func succeed(_ value: T) { continuation.resume(returning: .success(value)) }
    func fail(_ error: NodeError) { continuation.resume(returning: .failure(error)) }
}

enum Event: Sendable {
    case messages([Message])
    case propose(ProposalEnvelope, Reply<ProposeResult>)
    case read([UInt8], Reply<ReadResult>)
    case status(Reply<Status>)
    case transfer(NodeID, Reply<Bool>)
    case changeMembership(ConfigurationChange, Reply<Index>)
    case stop(transferLeadership: Bool)
}

extension Event {
    /// Answers the request this event carries with `error` (nothing to answer for the others).
    func reject(_ error: NodeError) {
        switch self {
        case .propose(_, let reply): reply.fail(error)
        case .read(_, let reply): reply.fail(error)
        case .status(let reply): reply.fail(error)
        case .transfer(_, let reply): reply.fail(error)
        case .changeMembership(_, let reply): reply.fail(error)
        case .messages, .stop: break
        }
    }
}

/// The node thread's mailbox: any thread posts, the node thread takes everything at once. Once
/// closed (the node thread ended), a request posted is failed at once with ``NodeError/stopped``
/// instead of waiting forever for a thread that is gone.
final class Inbox: Sendable {
    private let events = Mutex<(queue: [Event], closed: Bool)>(([], false))
    private let wakeup = DispatchSemaphore(value: 0)

    func post(_ event: Event) {
        let accepted = events.withLock { state -> Bool in
            if state.closed { return false }
            state.queue.append(event)
            return true
        }
        guard accepted else { return event.reject(.stopped) }
        wakeup.signal()
    }

    /// Closes the inbox; returns what was posted and not taken.
    func close() -> [Event] {
        events.withLock { state -> [Event] in
            state.closed = true
            defer { state.queue.removeAll() }
            return state.queue
        }
    }

    func take(waitingAtMost wait: Duration) -> [Event] {
        let pending = events.withLock { state -> [Event] in
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
        if !pending.isEmpty { return pending }
        let (seconds, attoseconds) = wait.components
        let nanos = max(0, Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        _ = wakeup.wait(timeout: .now() + .nanoseconds(nanos))
        return events.withLock { state -> [Event] in
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
    }
}
