import Agent
import ArgumentParser
import ControlPlane
import Foundation
import Kernels
import Synchronization

/// `flotilla agent`: a node agent that runs tasks for the cluster.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run a node agent: register with the leader, receive tasks, run them, report results.",
        discussion: """
            The agent finds the leader among the control-plane addresses by itself, and again after \
            a failover; tasks keep running through a leader change and their results are reported \
            to the new leader. Matmul tasks run on OpenBLAS. If OpenBLAS would fall back to a \
            generic kernel on this CPU (Debian's 0.3.21 does on recent Xeons), the agent restarts \
            itself once with OPENBLAS_CORETYPE set from the CPU's flags; set the variable yourself \
            to choose another kernel. SIGTERM or SIGINT makes the agent leave the cluster: the \
            leader puts its running tasks back in the queue at once (rather than after dead_after) \
            and the agent stops; with --drain-timeout it first finishes them, taking no new ones. \
            A second signal stops it at once.
            """)

    @Option(help: "This agent's id (unique in the cluster).")
    var id: String

    @Option(help: "The zone the agent runs in, e.g. aws-us-east-1 (tasks may ask for a zone).")
    var zone = "local"

    @Option(help: "How many tasks it runs at once.")
    var slots = 1

    @Option(help: "Comma-separated control-plane addresses (host:port). Or use --dir / --config.")
    var controlPlane: String?

    @OptionGroup var location: ClusterLocation

    @Option(help: ArgumentHelp("For tests and benchmarks: milliseconds added to every task.", visibility: .hidden))
    var injectDelayMs = 0

    @Option(help: "On SIGTERM, first finish the running tasks (taking no new ones) for up to this many seconds, then leave. 0: leave at once.")
    var drainTimeout: Double = 0

    func validate() throws {
        try checkRange(slots, "--slots", 1...1024)
        try checkLength(id, "--id", 1...256)
        try checkRange(injectDelayMs, "--inject-delay-ms", 0...3_600_000)
        try checkRange(drainTimeout, "--drain-timeout", 0...86_400, unit: "seconds")
    }

    func run() async throws {
        OpenBLAS.reexecWithRecommendedCoreTypeIfNeeded(log: say)
        let addresses = try controlPlane.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            ?? location.addresses()
        guard !addresses.isEmpty else { throw CLIError("no control-plane address given") }
        var options = AgentOptions(id: id, zone: zone, slots: slots, controlPlane: addresses)
        options.info = kernelInfo()
        options.injectedDelay = .milliseconds(injectDelayMs)
        options.log = { [id] in say("flotilla agent \(id): \($0)") }
        if let advice = OpenBLAS.coreTypeAdvice { say("warning: \(advice)") }
        let agent = AgentRuntime(options: options, execute: matmulExecutor())
        say("flotilla agent \(id): zone \(zone), \(slots) slot\(slots == 1 ? "" : "s"), \(options.info), control plane \(addresses.joined(separator: ","))")
        let task = Task { try await agent.run() }
        // The first SIGTERM or SIGINT leaves the cluster (the leader re-queues the running
        // attempts at once) and exits without waiting for them; a second one exits at once.
        let name = id
        let drain = drainTimeout
        let signalled = SignalCount()
        let signals = SignalWatcher(signals: [SIGTERM, SIGINT]) {
            if signalled.increment() > 1 { _exit(1) }
            Task {
                if drain > 0 { await agent.drain(timeout: .milliseconds(Int64(drain * 1000))) }
                await agent.leave()
                say("flotilla agent \(name): stopped after \(agent.completedCount) task\(agent.completedCount == 1 ? "" : "s")")
                Glibc.exit(0)
            }
        }
        defer { signals.cancel() }
        try await task.value
    }
}

/// How many stop signals a process received.
final class SignalCount: Sendable {
    private let count = Atomic<Int>(0)
    /// Counts one more; returns the new count.
    func increment() -> Int { count.add(1, ordering: .relaxed).newValue }
}

/// Writes a line to standard output at once (not buffered): long-running processes log to files,
/// and a line must be there even if the process is then killed.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
