import ArgumentParser

/// `flotilla`: the one executable for nodes, agents and operators.
@main
struct Flotilla: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flotilla",
        abstract: "A fault-tolerant orchestrator for compute tasks, replicated with Raft.",
        version: "0.1.0",
        subcommands: [
            NodeCommand.self, AgentCommand.self, ClusterCommand.self, StatusCommand.self, SubmitCommand.self, TasksCommand.self,
            TaskCommand.self, AgentsCommand.self, JobCommand.self, TransferLeadershipCommand.self, MeasureCommand.self, SimulateCommand.self,
        ]
    )
}
