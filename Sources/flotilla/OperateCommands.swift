import ArgumentParser
import ControlPlane
import FlotillaProto
import Foundation

/// `flotilla job pause|resume NAME`: stop and restart the placement of a job's pending tasks.
struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Pause or resume a job (the tasks submitted with --job NAME).",
        discussion: """
            A paused job's pending tasks are not placed on agents; its running tasks finish, and \
            nothing is cancelled. Resuming lets the scheduler place them again. The pause is \
            replicated: it survives a failover and a restart of the whole cluster.
            """,
        subcommands: [Pause.self, Resume.self])

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop placing the job's pending tasks.")
        @Argument(help: "The job's name.") var name: String
        @OptionGroup var location: ClusterLocation
        func validate() throws { try validateJobName(name) }
        func run() async throws {
            try await act(on: location, .pauseJob(name))
            print("job \(name) paused: its pending tasks wait; its running tasks finish")
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Place the job's pending tasks again.")
        @Argument(help: "The job's name.") var name: String
        @OptionGroup var location: ClusterLocation
        func validate() throws { try validateJobName(name) }
        func run() async throws {
            try await act(on: location, .resumeJob(name))
            print("job \(name) resumed")
        }
    }
}

private func validateJobName(_ name: String) throws {
    guard !name.isEmpty, name.utf8.count <= 256 else { throw ValidationError("a job name has 1 to 256 bytes") }
}

/// Sends one `Tasks.Act` action, exactly once.
private func act(on location: ClusterLocation, _ action: Flotilla_V1_ActionRequest.OneOf_Action) async throws {
    let response = try await ClusterClient.withCluster(try location.addresses()) { client in
        try await client.withSession { clientID, sequence in
            let request = Flotilla_V1_ActionRequest.with {
                $0.clientID = clientID
                $0.sequence = sequence
                $0.action = action
            }
            return try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).act(request) }
        }
    }
    if !response.changed && !response.message.isEmpty { throw CLIError(response.message) }
}

/// `flotilla transfer-leadership`: move leadership to another node, e.g. before maintenance.
struct TransferLeadershipCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer-leadership",
        abstract: "Hand leadership to another node (by default the most up-to-date follower).",
        discussion: """
            The leader stops accepting proposals, brings the target's log up to date and tells it \
            to campaign at once, so the hand-over costs about one round trip instead of an election \
            timeout. Use it before stopping or upgrading the leader's machine (a node stopped with \
            SIGTERM hands over by itself). Waits up to 5 s for the target to lead.
            """)

    @Option(help: "The node to hand leadership to (default: the follower with the most applied entries).")
    var to: UInt64?

    @OptionGroup var location: ClusterLocation

    func validate() throws {
        try checkRange(to, "--to", 1...)
    }

    func run() async throws {
        let addresses = try location.addresses()
        let statuses = try await nodeStatuses(addresses).compactMap(\.status)
        guard let leader = statuses.first(where: { $0.role == "leader" }) else {
            throw CLIError("no node leads right now (flotilla status shows the nodes); try again in a moment")
        }
        let followers = statuses.filter { $0.role != "leader" }
        let target: UInt64
        if let to {
            guard to != leader.id else {
                print("node \(to) already leads (term \(leader.term))")
                return
            }
            target = to
        } else {
            guard let best = followers.max(by: { $0.appliedIndex < $1.appliedIndex }) else {
                throw CLIError("no follower answered: there is no node to hand leadership to")
            }
            target = best.id
        }
        try await ClusterClient.withCluster(addresses) { client in
            try await client.transferLeadership(to: target)
            for _ in 0..<50 {
                for a in addresses {
                    if let s = await client.status(of: a, timeout: .milliseconds(300)), s.role == "leader", s.id == target {
                        print("node \(target) leads (term \(s.term)); node \(leader.id) follows")
                        return
                    }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw CLIError("node \(target) did not take over within 5 s (the transfer gives up after an election timeout); flotilla status shows who leads")
        }
    }
}
