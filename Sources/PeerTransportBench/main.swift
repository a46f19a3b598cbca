// peer-transport-bench: measures the Raft peer transport candidates (the production gRPC client
// streams vs length-prefixed protobuf frames on SwiftNIO) between two processes on 127.0.0.1.
// docs/transport.md records the method, the results and the decision.

import Foundation

/// One measured run: a fresh follower process, a fresh transport on both sides, warm-up, then
/// `workload.count` timed round trips with both processes' CPU time taken around them.
func runOne(_ kind: TransportKind, _ workload: Workload, run: Int) async throws -> RunResult {
    let driver = Driver(workload: workload)
    let transport = makeBenchTransport(kind)
    let port = try await transport.listen(deliver: { driver.receive($0) })
    let partner: Partner
    do {
        partner = try await Partner(transport: kind, leaderPort: port)
    } catch {
        await transport.shutdown()
        throw error
    }
    // A run that stops making progress (a lost connection, a wedged partner) ends the whole tool.
    let partnerPID = partner.pid
    let watchdog = Task {
        var last = -1
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(10))
            let now = driver.progress.load(ordering: .relaxed)
            if now == last && !Task.isCancelled {
                FileHandle.standardError.write(Data("peer-transport-bench: \(kind) \(workload.name) stalled at \(now) responses\n".utf8))
                kill(partnerPID, SIGKILL)
                exit(2)
            }
            last = now
        }
    }
    defer { watchdog.cancel() }
    do {
        driver.setSender(transport.connect(to: followerID, port: partner.port))
        _ = await driver.run(count: workload.warmup)
        let followerBefore = try await partner.mark()
        let leaderBefore = CPUTime.ofSelf()
        let start = ContinuousClock.now
        let (samples, leaderBatchesIn) = await driver.run(count: workload.count)
        let elapsed = (ContinuousClock.now - start).seconds
        let leaderCPU = CPUTime.ofSelf() - leaderBefore
        let followerAfter = try await partner.mark()
        partner.stop()
        await transport.shutdown()

        let followerCPU = followerAfter.cpu - followerBefore.cpu
        let sorted = samples.sorted()
        let n = Double(workload.count)
        return RunResult(
            transport: kind.rawValue, workload: workload.name, run: run, window: workload.window,
            entriesPerMessage: workload.entries, payloadBytes: workload.payloadBytes, roundTrips: workload.count,
            seconds: elapsed, roundTripsPerSecond: n / elapsed, messagesPerSecond: 2 * n / elapsed,
            entriesPerSecond: n * Double(workload.entries) / elapsed,
            p50Us: percentile(sorted, 0.50).microseconds, p90Us: percentile(sorted, 0.90).microseconds,
            p99Us: percentile(sorted, 0.99).microseconds, maxUs: sorted.last!.microseconds,
            leaderCPUUsPerRoundTrip: leaderCPU.total.microseconds / n,
            followerCPUUsPerRoundTrip: followerCPU.total.microseconds / n,
            totalCPUUsPerRoundTrip: (leaderCPU.total + followerCPU.total).microseconds / n,
            coresBusy: (leaderCPU.total + followerCPU.total).seconds / elapsed,
            leaderContextSwitchesPerRoundTrip: Double(leaderCPU.contextSwitches) / n,
            followerContextSwitchesPerRoundTrip: Double(followerCPU.contextSwitches) / n,
            leaderUserSeconds: leaderCPU.user.seconds, leaderSystemSeconds: leaderCPU.system.seconds,
            followerUserSeconds: followerCPU.user.seconds, followerSystemSeconds: followerCPU.system.seconds,
            followerMessagesPerBatch: Double(followerAfter.messagesIn - followerBefore.messagesIn)
                / Double(max(1, followerAfter.batchesIn - followerBefore.batchesIn)),
            leaderMessagesPerBatch: n / Double(max(1, leaderBatchesIn)))
    } catch {
        partner.stop()
        await transport.shutdown()
        throw error
    }
}

func runLeader(_ options: Options) async throws {
    let workloads = Workload.all(scale: options.scale).filter { options.workloads.contains($0.name) }
    var results: [RunResult] = []
    for run in 1...options.repeats {
        for workload in workloads {
            // Alternate which transport goes first, so neither always runs on a "warmer" machine.
            let kinds = run % 2 == 1 ? options.transports : options.transports.reversed()
            for kind in kinds {
                let result = try await runOne(kind, workload, run: run)
                results.append(result)
                if options.json { print(jsonLine(result)) }
                FileHandle.standardError.write(Data((runLine(result) + "\n").utf8))
            }
        }
    }
    let summaries = summarize(results)
    if options.json {
        for s in summaries { print(jsonLine(s)) }
    } else {
        print(table(summaries), terminator: "")
    }
}

func entryPoint() async -> Int32 {
    let options: Options
    do {
        options = try Options.parse(Array(CommandLine.arguments.dropFirst()))
    } catch {
        if !error.description.isEmpty { FileHandle.standardError.write(Data("error: \(error.description)\n".utf8)) }
        FileHandle.standardError.write(Data((usage + "\n").utf8))
        return error.description.isEmpty ? 0 : 64
    }
    do {
        switch options.role {
        case .follower(let leaderPort):
            try await runFollower(transport: options.transports[0], leaderPort: leaderPort)
        case .leader:
            try await runLeader(options)
        }
        return 0
    } catch {
        FileHandle.standardError.write(Data("peer-transport-bench: \(error)\n".utf8))
        return 1
    }
}

exit(await entryPoint())
