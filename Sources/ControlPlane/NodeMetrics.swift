import Manifest
import Metrics
import Raft

/// The numbers a node exports through swift-metrics (`flotilla node --metrics-port` serves them in
/// Prometheus' text format). Most are sampled once a second from the node's status and its copy of
/// the manifest, so the node thread does no more work for them; the node thread itself records
/// only each fsync's duration and each change of leader (see ``Driver``).
///
/// | name | kind | what |
/// | --- | --- | --- |
/// | `flotilla_raft_term` | gauge | the node's current term |
/// | `flotilla_raft_is_leader` | gauge | 1 on the leader, else 0 |
/// | `flotilla_raft_leader_id` | gauge | the leader this node knows (0: none) |
/// | `flotilla_raft_commit_index`, `_applied_index`, `_last_index` | gauge | log positions |
/// | `flotilla_raft_leader_changes_total` | counter | new leaders this node has seen since it started |
/// | `flotilla_storage_sync_seconds` | histogram | each durable write (fsync) of the node's log |
/// | `flotilla_tasks{state}` | gauge | tasks per state in the manifest |
/// | `flotilla_agents{state}` | gauge | agents per state (live, dead, left) |
public struct NodeMetrics: Sendable {
    private let node: NodeRuntime
    private let store: ManifestStore

    public init(node: NodeRuntime, store: ManifestStore) {
        self.node = node
        self.store = store
    }

    /// Samples every `interval` until cancelled.
    public func run(every interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            await sample()
            try? await Task.sleep(for: interval)
        }
    }

    /// Records the current values once.
    public func sample() async {
        if let s = try? await node.status() {
            Gauge(label: "flotilla_raft_term").record(s.term)
            Gauge(label: "flotilla_raft_is_leader").record(s.role == .leader ? 1 : 0)
            Gauge(label: "flotilla_raft_leader_id").record(s.leader)
            Gauge(label: "flotilla_raft_commit_index").record(s.commitIndex)
            Gauge(label: "flotilla_raft_applied_index").record(s.appliedIndex)
            Gauge(label: "flotilla_raft_last_index").record(s.lastIndex)
        }
        let (tasks, agents) = store.read { m in
            (m.counts, Dictionary(grouping: m.agents.values, by: \.state).mapValues(\.count))
        }
        for state in TaskState.allCases {
            Gauge(label: "flotilla_tasks", dimensions: [("state", state.description)]).record(tasks[state] ?? 0)
        }
        for state in [AgentRecord.State.live, .dead, .left] {
            Gauge(label: "flotilla_agents", dimensions: [("state", state.description)]).record(agents[state] ?? 0)
        }
    }
}

/// What the node thread records (no-ops until a metrics backend is bootstrapped).
enum NodeThreadMetrics {
    static let syncs = Metrics.Timer(label: "flotilla_storage_sync_seconds")
    static let leaderChanges = Counter(label: "flotilla_raft_leader_changes_total")
}
