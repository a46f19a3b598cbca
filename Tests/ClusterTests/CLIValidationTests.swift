import Foundation
import Testing

/// Every option of `flotilla` and `bench` that takes a number (or one of a set of words) refuses
/// a bad value in `validate()`: exit status 64 and an error line naming the option, before
/// anything starts — never a range trap (SIGILL), a cluster started for nothing, or a hang.
///
/// Each case runs the built executable for at most a few seconds; the arguments also point every
/// folder, store and cluster into a temporary directory, and whatever a case left running there
/// (only possible if validation let it through) is killed.
@Suite(.timeLimit(.minutes(5)))
struct CLIValidationTests {
    enum Tool: String, Sendable {
        case flotilla, bench

        var path: String { self == .flotilla ? ProcessClusterTests.executable : BenchProcessTests.bench }
    }

    /// One refused value: `tool command... context... option=value` (`{dir}` is the case's temporary folder).
    struct BadValue: Sendable, CustomTestStringConvertible {
        var tool: Tool
        var command: [String]
        /// `--name`, or `<name>` for a positional argument.
        var option: String
        var value: String
        var context: [String]

        var arguments: [String] {
            if option.hasPrefix("<") { return command + context + (value.hasPrefix("-") ? ["--", value] : [value]) }
            // `--name=value`: a value starting with '-' reaches the parser and validate() as a value.
            return command + context + ["\(option)=\(value)"]
        }
        var testDescription: String { "\(tool.rawValue) \(arguments.joined(separator: " "))" }
    }

    /// Cases for `option` of `tool command`, one per value.
    static func bad(_ tool: Tool, _ command: String, _ option: String, _ values: [String], _ context: [String] = []) -> [BadValue] {
        values.map { BadValue(tool: tool, command: command.split(separator: " ").map(String.init), option: option, value: $0, context: context) }
    }

    static let benchOutput = ["--db", "{dir}/db.sqlite", "--results", "{dir}/results", "--plots", "{dir}/plots", "--work-dir", "{dir}/clusters"]
    static let cluster = ["--dir", "{dir}/cluster"]
    static let long = String(repeating: "z", count: 257)

    static let flotillaCases: [BadValue] =
        bad(.flotilla, "agent", "--slots", ["0", "-1", "1025"], ["--id", "a1"] + cluster)
        + bad(.flotilla, "agent", "--inject-delay-ms", ["-1", "3600001", "99999999999999"], ["--id", "a1"] + cluster)
        + bad(.flotilla, "agent", "--drain-timeout", ["-1", "86401", "inf", "nan"], ["--id", "a1"] + cluster)
        + bad(.flotilla, "agent", "--id", ["", long], cluster)
        + bad(.flotilla, "cluster up", "--nodes", ["0", "-1", "10"], cluster)
        + bad(.flotilla, "cluster up", "--agents", ["-1", "65"], cluster)
        + bad(.flotilla, "cluster up", "--slots", ["0", "-1", "1025"], cluster)
        + bad(.flotilla, "cluster up", "--heartbeat", ["0", "-1", "61", "inf", "nan"], cluster)
        + bad(.flotilla, "cluster up", "--heartbeat", ["3"], cluster)  // the default --dead-after (5 s) is less than twice that
        + bad(.flotilla, "cluster up", "--dead-after", ["0", "-1", "3601", "nan"], cluster)
        + bad(.flotilla, "cluster up", "--dead-after", ["1"], cluster + ["--heartbeat", "1"])
        + bad(.flotilla, "cluster up", "--agent-delay-ms", ["-1", "3600001"], cluster)
        + bad(.flotilla, "cluster up", "--metrics-base-port", ["0", "-1", "65536"], cluster)
        + bad(.flotilla, "cluster up", "--metrics-base-port", ["65534"], cluster + ["--nodes", "3"])  // node 3 would need 65536
        + bad(.flotilla, "cluster up", "--peer-transport", ["tcp"], cluster)
        + bad(.flotilla, "cluster restart-node", "<id>", ["0", "-1", "10"], cluster)
        + bad(.flotilla, "measure commit", "--clients", ["0", "-1", "1025"], cluster)
        + bad(.flotilla, "measure commit", "--seconds", ["0", "-1", "601", "inf", "nan"], cluster)
        + bad(.flotilla, "measure commit", "--size", ["-1", "1048577"], cluster)
        + bad(.flotilla, "measure failover", "--trials", ["0", "-1", "1001"], cluster)
        + bad(.flotilla, "measure task-failover", "--trials", ["0", "-1", "1001"], cluster)
        + bad(.flotilla, "measure task-failover", "--size", ["0", "-1", "65537"], cluster)
        + bad(.flotilla, "node", "--id", ["0", "-1"], ["--config", "{dir}/cluster.yaml"])
        + bad(.flotilla, "node", "--metrics-port", ["0", "-1", "65536"], ["--id", "1", "--config", "{dir}/cluster.yaml"])
        + bad(.flotilla, "transfer-leadership", "--to", ["0", "-1"], cluster)
        + bad(.flotilla, "simulate", "--seeds", ["0", "-1", "1000000001"], ["--seed", "1"])
        + bad(.flotilla, "simulate", "--first-seed", ["-1", "18446744073709551615"], ["--seed", "1", "--seeds", "10"])
        + bad(.flotilla, "simulate", "--seed", ["-1"])
        + bad(.flotilla, "simulate", "--nodes", ["0", "-1", "10"], ["--seed", "1"])
        + bad(.flotilla, "simulate", "--spare-nodes", ["-1", "5"], ["--seed", "1"])
        + bad(.flotilla, "simulate", "--fault-ms", ["-1", "3600001", "18446744073709551615"], ["--seed", "1"])
        + bad(.flotilla, "simulate", "--liveness-ms", ["0", "-1", "999", "3600001", "99999999999999999"], ["--seed", "1"])
        + bad(.flotilla, "simulate", "--trace-length", ["-1", "1000001", "9223372036854775807"], ["--seed", "1"])
        + bad(.flotilla, "simulate", "--jobs", ["0", "-1", "100000000"], ["--seed", "1"])
        + bad(.flotilla, "simulate", "--inject-bug", ["no-such-bug"], ["--seed", "1"])
        + bad(.flotilla, "simulate", "--inject-bug", ["no-such-bug"], ["--seed", "1", "--manifest"])
        + bad(.flotilla, "simulate", "--model-flaw", ["no-such-flaw"], ["--seed", "1", "--manifest"])
        + bad(.flotilla, "simulate", "--disable-check", ["no-such-check"], ["--seed", "1", "--manifest"])
        + bad(.flotilla, "submit", "<kind>", ["sort"], ["--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--size", ["0", "-1", "65537"], ["matmul"] + cluster)
        + bad(.flotilla, "submit", "--count", ["0", "-1", "100001"], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--precision", ["float16"], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--seed", ["-1"], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--threads", ["-1", "1025"], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--timeout", ["-1", "604801", "inf", "nan"], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--max-attempts", ["0", "-1", "101"], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--wait-timeout", ["-1", "2592001", "inf", "nan"], ["matmul", "--size", "64", "--wait"] + cluster)
        + bad(.flotilla, "submit", "--zone", [long], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--job", [long], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "submit", "--key", [long], ["matmul", "--size", "64"] + cluster)
        + bad(.flotilla, "tasks", "--limit", ["0", "-1", "100001"], cluster)
        + bad(.flotilla, "tasks", "--after", ["-1"], cluster)
        + bad(.flotilla, "tasks", "--state", ["done"], cluster)
        + bad(.flotilla, "task", "<id>", ["0", "-1"], cluster)

    /// The options every measuring phase takes (`CommonOptions`), for each command that takes them.
    static let commonCases: [BadValue] = ["phase baseline", "phase overhead", "phase scaling", "phase failover", "all"].flatMap { command in
        bad(.bench, command, "--repeat", ["0", "-1", "1001"], benchOutput)
            + bad(.bench, command, "--warmup", ["-1", "101"], benchOutput)
            + bad(.bench, command, "--inject-agent-delay-ms", ["-1", "3600001"], benchOutput)
    }

    static let benchCases: [BadValue] =
        // The four that trapped (exit 132) before.
        bad(.bench, "phase failover", "--trials", ["0", "-1", "1001"], benchOutput)
        + bad(.bench, "phase failover", "--agents", ["0", "-1", "65"], benchOutput)
        + bad(.bench, "phase overhead", "--nodes", ["0", "-1", "10"], benchOutput)
        + bad(.bench, "phase failover", "--size", ["0", "-1", "65537", "-9223372036854775808"], benchOutput)
        // The rest of the phases.
        + bad(.bench, "phase baseline", "--size", ["0", "-1", "65537", "x", "", "1000,0"], benchOutput)
        + bad(.bench, "phase baseline", "--threads", ["0", "-1", "1025", "1,x"], benchOutput)
        + bad(.bench, "phase baseline", "--precision", ["float16"], benchOutput)
        + bad(.bench, "phase overhead", "--size", ["0", "-1", "65537", "512,-4"], benchOutput)
        + bad(.bench, "phase overhead", "--stream", ["0", "-1", "1000001"], benchOutput)
        + bad(.bench, "phase overhead", "--clients", ["0", "-1", "1025"], benchOutput)
        + bad(.bench, "phase scaling", "--nodes", ["0", "-1", "10"], benchOutput)
        + bad(.bench, "phase scaling", "--agents", ["0", "-1", "65", "1,,x"], benchOutput)
        + bad(.bench, "phase scaling", "--size", ["0", "-1", "65537", "4294967297"], benchOutput)
        + bad(.bench, "phase scaling", "--tasks-per-agent", ["0", "-1", "1001"], benchOutput)
        + bad(.bench, "phase failover", "--nodes", ["0", "-1", "2", "10"], benchOutput)
        + bad(.bench, "phase failover", "--agents", ["1"], benchOutput + ["--victim", "agent"])
        + bad(.bench, "phase failover", "--victim", ["follower"], benchOutput)
        + commonCases
        + bad(.bench, "chaos", "--nodes", ["0", "-1", "2", "10"], benchOutput)
        + bad(.bench, "chaos", "--agents", ["0", "-1", "65"], benchOutput)
        + bad(.bench, "chaos", "--clients", ["0", "-1", "65"], benchOutput)
        + bad(.bench, "chaos", "--pinned-clients", ["-1", "65"], benchOutput)
        + bad(.bench, "chaos", "--size", ["0", "-1", "15", "4097"], benchOutput)
        + bad(.bench, "chaos", "--seed", ["-1"], benchOutput)
        + bad(.bench, "chaos", "--warmup-seconds", ["-1", "3601", "inf", "nan"], benchOutput)
        + bad(.bench, "chaos", "--hold", ["0", "-1", "3601", "inf", "nan"], benchOutput)
        + bad(.bench, "chaos", "--recovery", ["-1", "3601", "inf", "nan"], benchOutput)
        + bad(.bench, "chaos", "--scenario", ["nope", "", ",", "leader-kill,nope"], benchOutput)
        + bad(.bench, "list", "--limit", ["0", "-1", "1000001"], ["--db", "{dir}/db.sqlite"])
        + bad(.bench, "compare", "--threshold", ["-0.1", "1.5", "inf", "nan"], ["a", "b", "--db", "{dir}/db.sqlite"])

    static let cases = flotillaCases + benchCases

    @Test(arguments: CLIValidationTests.cases)
    func refusesABadValueBeforeAnythingStarts(_ c: BadValue) async throws {
        let result = try await Self.run(c.tool, c.arguments)
        let error = Self.errorLine(result.output)
        #expect(result.status == 64, "exit status \(result.status), not 64 (validation): \(result.output.prefix(2000))")
        #expect(error.contains(c.option), "the error does not name \(c.option): \(result.output.prefix(2000))")
    }

    /// Every option that takes a value, of every command that `--experimental-dump-help` lists,
    /// given `-1` (a negative number, or a missing value: both refused before anything runs).
    @Test(arguments: [Tool.flotilla, .bench])
    func everyOptionOfEveryCommandRefusesMinusOne(_ tool: Tool) async throws {
        let commands = try await Self.commands(tool)
        #expect(commands.count > 5)
        for command in commands where !command.options.isEmpty {
            let arguments = command.path + command.options.flatMap { [$0, "-1"] }
            let result = try await Self.run(tool, arguments)
            #expect(result.status == 64, "\(tool.rawValue) \(arguments.joined(separator: " ")): exit status \(result.status): \(result.output.prefix(2000))")
        }
    }

    /// Options whose value is free text (paths, addresses, names): nothing to range-check.
    static func isFreeText(_ tool: Tool, _ command: String, _ option: String) -> Bool {
        switch tool {
        case .flotilla:
            // ClusterLocation's --nodes is a list of addresses; cluster up's and simulate's are counts.
            if option == "--nodes" { return !["cluster up", "simulate"].contains(command) }
            return ["--dir", "--config", "--control-plane", "--zone", "--fault-file", "--disk-fault-file", "--durable-dir"].contains(option)
        case .bench:
            return ["--db", "--results", "--plots", "--tag", "--work-dir", "--phase", "--run", "--out", "--metrics"].contains(option)
        }
    }

    /// The table above has a case for every option that is not free text: a new option needs one.
    @Test(arguments: [Tool.flotilla, .bench])
    func everyCheckedOptionHasACase(_ tool: Tool) async throws {
        let covered = Set(Self.cases.filter { $0.tool == tool }.map { $0.command.joined(separator: " ") + " " + $0.option })
        var missing: [String] = []
        for command in try await Self.commands(tool) {
            let name = command.path.joined(separator: " ")
            for option in command.options where !Self.isFreeText(tool, name, option) && !covered.contains(name + " " + option) {
                missing.append("\(tool.rawValue) \(name) \(option)")
            }
        }
        #expect(missing.isEmpty, "options without a bad-value case (add one, or list them as free text): \(missing)")
    }

    /// Values at the edges of the ranges pass validation: these commands get as far as reading
    /// the (missing) cluster configuration or run store, and fail there, not in validate().
    @Test(arguments: [
        (Tool.flotilla, ["measure", "commit", "--clients", "1024", "--seconds", "600", "--size", "1048576", "--dir", "{dir}/cluster"]),
        (.flotilla, ["measure", "commit", "--clients", "1", "--seconds", "0.001", "--size", "0", "--dir", "{dir}/cluster"]),
        (.flotilla, ["measure", "task-failover", "--trials", "1000", "--size", "65536", "--dir", "{dir}/cluster"]),
        (.flotilla, ["cluster", "restart-node", "9", "--dir", "{dir}/cluster"]),
        (.flotilla, ["node", "--id", "1", "--config", "{dir}/cluster.yaml", "--metrics-port", "65535"]),
        (.flotilla, [
            "submit", "matmul", "--size", "65536", "--count", "100000", "--threads", "0", "--timeout", "604800", "--max-attempts", "100",
            "--precision", "f64", "--dir", "{dir}/cluster",
        ]),
        (.flotilla, ["tasks", "--limit", "100000", "--state", "pending", "--dir", "{dir}/cluster"]),
        (.flotilla, ["task", "1", "--dir", "{dir}/cluster"]),
        (.flotilla, ["transfer-leadership", "--to", "1", "--dir", "{dir}/cluster"]),
        (.bench, ["list", "--limit", "1000000", "--db", "{dir}/db.sqlite"]),
        (.bench, ["compare", "a", "b", "--threshold", "0", "--db", "{dir}/db.sqlite"]),
        (.bench, ["compare", "a", "b", "--threshold", "1", "--db", "{dir}/db.sqlite"]),
    ])
    func acceptsTheEdgesOfTheRanges(_ tool: Tool, _ arguments: [String]) async throws {
        let result = try await Self.run(tool, arguments)
        let error = Self.errorLine(result.output)
        #expect(result.status == 1 || result.status == 64, "exit status \(result.status): \(result.output.prefix(2000))")
        #expect(!error.contains(" must "), "refused by validation: \(error)")
        #expect(error.contains("cannot read") || error.contains("no run store"), "\(result.output.prefix(2000))")
    }

    // MARK: - helpers

    /// At most this many of the suite's processes at once (the machine may have 2 cores).
    static let slots = ProcessSlots(4)

    /// Runs `tool` with `{dir}` replaced by a fresh temporary folder, for at most a few seconds;
    /// kills whatever it started there and removes the folder.
    static func run(_ tool: Tool, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let dir = NSTemporaryDirectory() + "cli-validation-\(UUID().uuidString.prefix(8))"
        defer {
            killProcesses(mentioning: dir)
            try? FileManager.default.removeItem(atPath: dir)
        }
        var environment = ProcessInfo.processInfo.environment
        environment["FLOTILLA_BIN"] = ProcessClusterTests.executable
        // A trap ends the process at once (the backtracer would hold it for many seconds).
        environment["SWIFT_BACKTRACE"] = "enable=no"
        await slots.acquire()
        let result: (status: Int32, output: String)
        do {
            result = try await runProcess(
                tool.path, arguments.map { $0.replacingOccurrences(of: "{dir}", with: dir) }, environment: environment, timeout: 10)
        } catch {
            await slots.release()
            throw error
        }
        await slots.release()
        return result
    }

    /// The line ArgumentParser (or the command) printed the error on, or "".
    static func errorLine(_ output: String) -> String {
        output.split(separator: "\n").first { $0.hasPrefix("Error:") }.map(String.init) ?? ""
    }

    struct Command: Sendable {
        /// Subcommand names after the executable's.
        var path: [String]
        /// The preferred names of the options that take a value (`--db`).
        var options: [String]
    }

    /// Every command and subcommand `tool --experimental-dump-help` describes.
    static func commands(_ tool: Tool) async throws -> [Command] {
        let result = try await runProcess(tool.path, ["--experimental-dump-help"], timeout: 30)
        try #require(result.status == 0, "\(result.output.prefix(2000))")
        let info = try JSONDecoder().decode(ToolInfo.self, from: Data(result.output.utf8))
        var commands: [Command] = []
        func walk(_ c: ToolInfo.CommandInfo, _ path: [String]) {
            let options = (c.arguments ?? []).filter { $0.kind == "option" }.compactMap { a -> String? in
                guard let n = a.preferredName ?? a.names?.first else { return nil }
                return n.kind == "long" ? "--" + n.name : "-" + n.name
            }
            commands.append(Command(path: path, options: options))
            for s in c.subcommands ?? [] where s.commandName != "help" { walk(s, path + [s.commandName]) }
        }
        walk(info.command, [])
        return commands
    }

    /// The part of ArgumentParser's `ToolInfoV0` this suite reads.
    struct ToolInfo: Decodable {
        struct Name: Decodable {
            var kind: String
            var name: String
        }
        struct Argument: Decodable {
            var kind: String
            var names: [Name]?
            var preferredName: Name?
        }
        struct CommandInfo: Decodable {
            var commandName: String
            var subcommands: [CommandInfo]?
            var arguments: [Argument]?
        }
        var command: CommandInfo
    }
}

/// A counting semaphore for async code: `acquire` waits (without blocking a thread) until one of
/// `count` slots is free.
actor ProcessSlots {
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { free = count }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
