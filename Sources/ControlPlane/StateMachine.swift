public import Raft

/// The application replicated by Raft: every node applies the same commands in the same order
/// and must reach the same state. Implementations must be deterministic (no clocks, no randomness,
/// no iteration over unordered collections when producing results or snapshots).
public protocol ReplicatedStateMachine {
    /// Applies a committed command and returns its result for the client that proposed it.
    mutating func apply(_ command: [UInt8], at index: Index) -> [UInt8]
    /// Answers a read-only query against the current state.
    func query(_ query: [UInt8]) -> [UInt8]
    /// The whole state, for a snapshot.
    func snapshot() -> [UInt8]
    /// Replaces the state with a snapshot's.
    mutating func restore(_ snapshot: [UInt8]) throws(StateMachineError)
}

public struct StateMachineError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
