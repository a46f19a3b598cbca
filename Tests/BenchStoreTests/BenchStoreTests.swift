import BenchStore
import Foundation
import Testing

/// A fresh folder under the temporary directory, removed by `cleanUp()`.
struct TemporaryFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("bench-store-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func cleanUp() { try? FileManager.default.removeItem(atPath: path) }
}

func makeRun(phase: String = "scaling", startedAt: TimeInterval = 1_790_000_000.25, tag: String? = nil) -> RunInfo {
    RunInfo(
        tag: tag, phase: phase, startedAt: Date(timeIntervalSince1970: startedAt),
        parameters: ["agents": "1,2,4,8", "repetitions": "10", "note": "quoted \"value\", ünïcode ✓"],
        gitCommit: "538ee21", host: "bench-host", cpuModel: "Intel(R) Xeon(R) Processor", cores: 2,
        memoryBytes: 8_589_934_592, openBLASVersion: "0.3.26", openBLASKernel: "Haswell",
        swiftVersion: "Swift version 6.3.1", clusterConfig: "nodes: 3\nagents: 4\n", notes: "")
}

@Suite("Run store")
struct RunStoreTests {
    @Test("runs and samples round-trip with their labels, warm-ups excluded by default")
    func roundTrip() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        // A nested folder that does not exist yet: the store creates it.
        let store = try RunStore(path: folder.file("results/nested/bench.sqlite"))
        #expect(try store.appliedMigrations() == RunStore.knownMigrations)

        var info = makeRun(tag: "baseline-2026-11")
        let id = try store.beginRun(info)
        info.id = id
        #expect(try store.run(id: id) == info)

        let samples = [
            Sample(runID: id, metric: "gflops", unit: "GFLOP/s", value: 101.5, repetition: 0, warmup: true,
                   sequence: 0, labels: ["size": "1024", "threads": "2"]),
            Sample(runID: id, metric: "gflops", unit: "GFLOP/s", value: 0.1 + 0.2, repetition: 1,
                   sequence: 1, labels: ["size": "1024", "threads": "2", "precision": "float32"]),
            Sample(runID: id, metric: "commit_latency_ms", unit: "ms", value: .nan, repetition: 0,
                   sequence: 2, labels: ["agents": "4", "name": "ünïcode, \"quoted\"\nline"], at: 12.5),
            Sample(runID: id, metric: "commit_latency_ms", unit: "ms", value: .infinity, sequence: 3),
        ]
        try store.addSamples(samples)

        let all = try store.samples(runID: id, includeWarmup: true)
        #expect(all.count == 4)
        #expect(all[0] == samples[0])
        #expect(all[1] == samples[1])
        #expect(all[1].value == 0.1 + 0.2)
        #expect(all[2].value.isNaN)
        #expect(all[2].labels == samples[2].labels)
        #expect(all[2].at == 12.5)
        #expect(all[3] == samples[3])

        #expect(try store.samples(runID: id).map(\.sequence) == [1, 2, 3])
        #expect(try store.samples(runID: id, metric: "gflops").map(\.sequence) == [1])
        #expect(try store.samples(runID: id, metric: "gflops", includeWarmup: true).map(\.sequence) == [0, 1])
        #expect(try store.metrics(runID: id) == ["commit_latency_ms", "gflops"])
        #expect(try store.sampleCount(runID: id) == 3)
        #expect(try store.sampleCount(runID: id, includeWarmup: true) == 4)
        #expect(try store.nextSequence(runID: id) == 4)

        let finished = Date(timeIntervalSince1970: 1_790_000_600.5)
        try store.finishRun(
            id: id, status: .completed, finishedAt: finished, notes: "all good", clusterConfig: "nodes: 5\n")
        let reread = try #require(try store.run(id: id))
        #expect(reread.status == .completed)
        #expect(reread.finishedAt == finished)
        #expect(reread.notes == "all good")
        #expect(reread.clusterConfig == "nodes: 5\n")
        #expect(reread.parameters == info.parameters)

        // Reopening the file sees the same data.
        let reopened = try RunStore(path: store.path)
        #expect(try reopened.run(id: id) == reread)
        #expect(try reopened.samples(runID: id, includeWarmup: true).count == 4)
    }

    @Test("runs are listed newest first, optionally by phase, up to a limit")
    func listing() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let store = try RunStore(path: folder.file("bench.sqlite"))
        let a = try store.beginRun(makeRun(phase: "baseline", startedAt: 1000))
        let b = try store.beginRun(makeRun(phase: "scaling", startedAt: 3000))
        let c = try store.beginRun(makeRun(phase: "baseline", startedAt: 2000))
        // Same start time as b but inserted later: the higher id comes first.
        let d = try store.beginRun(makeRun(phase: "failover", startedAt: 3000))
        #expect(try store.runs().map(\.id) == [d, b, c, a])
        #expect(try store.runs(phase: "baseline").map(\.id) == [c, a])
        #expect(try store.runs(limit: 2).map(\.id) == [d, b])
        #expect(try store.runs(phase: "chaos").isEmpty)
    }

    @Test("a run resolves by id, tag, latest and latest:<phase>")
    func resolve() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let store = try RunStore(path: folder.file("bench.sqlite"))
        let old = try store.beginRun(makeRun(phase: "scaling", startedAt: 1000, tag: "baseline-2026-11"))
        let new = try store.beginRun(makeRun(phase: "failover", startedAt: 2000))
        #expect(try store.resolve(String(old))?.id == old)
        #expect(try store.resolve(" \(new) ")?.id == new)
        #expect(try store.resolve("baseline-2026-11")?.id == old)
        #expect(try store.resolve("latest")?.id == new)
        #expect(try store.resolve("latest:scaling")?.id == old)
        #expect(try store.resolve("latest:chaos") == nil)
        #expect(try store.resolve("999") == nil)
        #expect(try store.resolve("no-such-tag") == nil)
        let error = #expect(throws: BenchStoreError.self) { try store.requireRun("no-such-tag") }
        #expect(error == .runNotFound("no-such-tag"))
        #expect(error?.description.contains("bench list") == true)
    }

    @Test("tags are unique and validated; setTag replaces and clears")
    func tags() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let store = try RunStore(path: folder.file("bench.sqlite"))
        let first = try store.beginRun(makeRun(tag: "baseline"))
        let second = try store.beginRun(makeRun())

        let duplicate = #expect(throws: BenchStoreError.self) { try store.setTag("baseline", for: second) }
        #expect(duplicate == .duplicateTag(tag: "baseline", existingRunID: first))
        #expect(duplicate?.description.contains("already attached to run \(first)") == true)
        #expect(throws: BenchStoreError.duplicateTag(tag: "baseline", existingRunID: first)) {
            try store.beginRun(makeRun(tag: "baseline"))
        }
        // Re-tagging a run with its own tag is fine.
        try store.setTag("baseline", for: first)

        for bad in ["", "42", "latest", "latest:scaling", "two words"] {
            #expect(throws: BenchStoreError.self, "tag '\(bad)'") { try store.setTag(bad, for: second) }
        }
        #expect(throws: BenchStoreError.runNotFound("999")) { try store.setTag("other", for: 999) }

        try store.setTag(nil, for: first)
        try store.setTag("baseline", for: second)
        #expect(try store.run(id: first)?.tag == nil)
        #expect(try store.resolve("baseline")?.id == second)
        #expect(throws: BenchStoreError.runNotFound("999")) {
            try store.finishRun(id: 999, status: .failed)
        }
    }

    @Test("summaries round-trip and are replaced per run, metric and labels")
    func summaries() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let store = try RunStore(path: folder.file("bench.sqlite"))
        let id = try store.beginRun(makeRun())
        let summary = MetricSummary(
            runID: id, metric: "gflops", unit: "GFLOP/s", labels: ["size": "2048", "threads": "2"], count: 10,
            median: 140.5, ciLow: 138, ciHigh: 142.25, confidence: 0.95, mean: 140.1, cv: 0.02, min: 130,
            max: 150, p90: 148, p99: 149.9)
        let other = MetricSummary(runID: id, metric: "commit_latency_ms", unit: "ms", count: 3, median: 4)
        try store.addSummaries([summary, other])
        #expect(try store.summaries(runID: id) == [other, summary])
        #expect(try store.summaries(runID: id, metric: "gflops") == [summary])

        var updated = summary
        updated.median = 141
        // Same labels in another insertion order: same canonical JSON, so it replaces.
        updated.labels = ["threads": "2", "size": "2048"]
        try store.addSummaries([updated])
        #expect(try store.summaries(runID: id, metric: "gflops") == [updated])
    }

    @Test("deleting a run deletes its samples and summaries")
    func deleteCascades() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let store = try RunStore(path: folder.file("bench.sqlite"))
        let id = try store.beginRun(makeRun())
        try store.addSamples([Sample(runID: id, metric: "m", unit: "s", value: 1, sequence: 0)])
        try store.addSummaries([MetricSummary(runID: id, metric: "m", unit: "s", count: 1, median: 1)])
        try store.deleteRun(id: id)
        #expect(try store.run(id: id) == nil)
        #expect(try store.samples(runID: id, includeWarmup: true).isEmpty)
        #expect(try store.summaries(runID: id).isEmpty)
        #expect(throws: BenchStoreError.runNotFound(String(id))) { try store.deleteRun(id: id) }
    }

    @Test("samples of a run that does not exist are refused, and none of the batch is stored")
    func samplesNeedTheirRun() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let store = try RunStore(path: folder.file("bench.sqlite"))
        let id = try store.beginRun(makeRun())
        let error = #expect(throws: BenchStoreError.self) {
            try store.addSamples([
                Sample(runID: id, metric: "m", unit: "s", value: 1, sequence: 0),
                Sample(runID: id + 100, metric: "m", unit: "s", value: 1, sequence: 1),
            ])
        }
        guard case .database = error else {
            Issue.record("expected a database error, got \(String(describing: error))")
            return
        }
        #expect(try store.sampleCount(runID: id, includeWarmup: true) == 0)
    }

    @Test("50 000 samples go in one batch")
    func largeBatch() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let store = try RunStore(path: folder.file("bench.sqlite"))
        let id = try store.beginRun(makeRun())
        let count = 50_000
        let samples = (0..<count).map { index in
            Sample(
                runID: id, metric: "commit_latency_ms", unit: "ms", value: Double(index) / 7,
                repetition: index % 10, warmup: index < 100, sequence: index,
                labels: ["agents": String(1 << (index % 4)), "trial": String(index / 1000)])
        }
        let start = ContinuousClock.now
        try store.addSamples(samples)
        let inserted = ContinuousClock.now
        let read = try store.samples(runID: id, includeWarmup: true)
        print("50k samples: insert \(inserted - start), read \(ContinuousClock.now - inserted)")
        #expect(read == samples)
        #expect(try store.sampleCount(runID: id) == count - 100)
    }
}

@Suite("Schema migrations")
struct MigrationTests {
    @Test("a v1 store is upgraded to the current schema with its data intact")
    func upgradesV1() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let path = folder.file("old.sqlite")
        try RunStore.createForTesting(path: path, upTo: "v1")
        // What a v1 bench wrote: no tag column, no summaries table.
        try RunStore.executeForTesting(
            path: path,
            sql: """
                INSERT INTO runs (id, phase, started_at, finished_at, status, parameters_json, git_commit, host,
                    cpu_model, cores, memory_bytes, openblas_version, openblas_kernel, swift_version,
                    cluster_config, notes)
                VALUES (7, 'overhead', 1700000000.5, 1700000100, 'completed', '{"sizes":"512,1024"}', 'abc123',
                    'old-host', 'Xeon', 4, 17179869184, '0.3.21', 'SkylakeX', 'Swift 6.0', 'nodes: 3', 'v1 run');
                INSERT INTO samples (run_id, sequence, metric, unit, value, repetition, warmup, labels_json, at)
                VALUES (7, 0, 'overhead_percent', '%', 3.25, 0, 0, '{"size":"512"}', NULL),
                       (7, 1, 'overhead_percent', '%', NULL, 1, 1, '{"size":"1024"}', 2.5);
                """)
        #expect(throws: (any Error).self) {
            try RunStore.executeForTesting(path: path, sql: "SELECT tag FROM runs")
        }

        let store = try RunStore(path: path)
        #expect(try store.appliedMigrations() == ["v1", "v2"])
        let run = try #require(try store.run(id: 7))
        #expect(run.phase == "overhead")
        #expect(run.tag == nil)
        #expect(run.startedAt == Date(timeIntervalSince1970: 1_700_000_000.5))
        #expect(run.finishedAt == Date(timeIntervalSince1970: 1_700_000_100))
        #expect(run.status == .completed)
        #expect(run.parameters == ["sizes": "512,1024"])
        #expect(run.memoryBytes == 17_179_869_184)
        #expect(run.openBLASKernel == "SkylakeX")
        #expect(run.notes == "v1 run")
        let samples = try store.samples(runID: 7, includeWarmup: true)
        #expect(samples.count == 2)
        #expect(samples[0] == Sample(runID: 7, metric: "overhead_percent", unit: "%", value: 3.25, sequence: 0,
                                     labels: ["size": "512"]))
        #expect(samples[1].value.isNaN && samples[1].warmup && samples[1].at == 2.5)

        // What v2 added works on the upgraded store.
        try store.setTag("pre-upgrade", for: 7)
        #expect(try store.resolve("pre-upgrade")?.id == 7)
        try store.addSummaries([MetricSummary(runID: 7, metric: "overhead_percent", unit: "%", count: 1, median: 3.25)])
        #expect(try store.summaries(runID: 7).count == 1)
        // New runs continue after the old ids.
        #expect(try store.beginRun(makeRun()) > 7)
    }

    @Test("a store written by a newer bench is refused")
    func refusesNewerSchema() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let path = folder.file("future.sqlite")
        _ = try RunStore(path: path)
        try RunStore.executeForTesting(
            path: path, sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v3-from-the-future')")
        let error = #expect(throws: BenchStoreError.self) { try RunStore(path: path) }
        #expect(error == .schemaTooNew(path: path, unknownMigrations: ["v3-from-the-future"]))
        #expect(error?.description.contains("written by a newer bench") == true)
        #expect(error?.description.contains("upgrade") == true)
    }

    @Test("a file that is not SQLite, or another application's database, is refused")
    func refusesForeignFiles() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let garbage = folder.file("garbage.sqlite")
        try Data(String(repeating: "not a database ", count: 200).utf8).write(to: URL(fileURLWithPath: garbage))
        let notSQLite = #expect(throws: BenchStoreError.self) { try RunStore(path: garbage) }
        guard case .corrupt(let path, _) = notSQLite else {
            Issue.record("expected .corrupt, got \(String(describing: notSQLite))")
            return
        }
        #expect(path == garbage)

        let foreign = folder.file("foreign.sqlite")
        try RunStore.executeForTesting(path: foreign, sql: "CREATE TABLE contacts (name TEXT)")
        let other = #expect(throws: BenchStoreError.self) { try RunStore(path: foreign) }
        guard case .corrupt(_, let reason) = other else {
            Issue.record("expected .corrupt, got \(String(describing: other))")
            return
        }
        #expect(reason.contains("contacts"))
    }

    @Test("a path whose folder cannot be created gives cannotOpen")
    func cannotOpen() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let file = folder.file("plain-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let error = #expect(throws: BenchStoreError.self) { try RunStore(path: file + "/sub/bench.sqlite") }
        guard case .cannotOpen = error else {
            Issue.record("expected .cannotOpen, got \(String(describing: error))")
            return
        }
        #expect(error?.description.contains("--db") == true)
    }
}

@Suite("CSV export")
struct CSVTests {
    @Test("fields are quoted only when needed, with quotes doubled", arguments: [
        ("plain", "plain"),
        ("", ""),
        ("a,b", "\"a,b\""),
        ("say \"hi\"", "\"say \"\"hi\"\"\""),
        ("line\nbreak", "\"line\nbreak\""),
        ("carriage\rreturn", "\"carriage\rreturn\""),
        ("crlf\r\n", "\"crlf\r\n\""),
        ("ünïcode ✓ 漢字", "ünïcode ✓ 漢字"),
        ("ünï,code", "\"ünï,code\""),
        (" spaces kept ", " spaces kept "),
        ("\"", "\"\"\"\""),
    ])
    func fieldEscaping(input: String, expected: String) {
        #expect(csvField(input) == expected)
    }

    @Test("numbers round-trip; non-finite values are NaN, Inf, -Inf")
    func numbers() {
        for value in [0.1, 0.1 + 0.2, 1e-5, 2048, 1e300, -3.5, .leastNonzeroMagnitude, .greatestFiniteMagnitude] {
            #expect(Double(csvNumber(value)) == value)
        }
        #expect(csvNumber(.nan) == "NaN")
        #expect(csvNumber(.infinity) == "Inf")
        #expect(csvNumber(-.infinity) == "-Inf")
    }

    @Test("tidy CSV: header with the sorted union of label keys, one CRLF row per sample")
    func tidy() {
        let run = RunInfo(id: 3, phase: "baseline", startedAt: Date(timeIntervalSince1970: 0))
        let samples = [
            Sample(runID: 3, metric: "gflops", unit: "GFLOP/s", value: 12.5, repetition: 0, warmup: true,
                   sequence: 0, labels: ["threads": "2", "size": "1024"]),
            Sample(runID: 3, metric: "gflops", unit: "GFLOP/s", value: .nan, repetition: 1, sequence: 1,
                   labels: ["size": "2048", "precision": "float32"], at: 1.5),
            Sample(runID: 3, metric: "note_metric", unit: "%", value: 1, repetition: 2, sequence: 2,
                   labels: ["comment": "a, \"b\"\nc ✓", "metric": "shadow"]),
        ]
        let csv = tidyCSV(run: run, samples: samples)
        let records = csv.components(separatedBy: "\r\n")
        #expect(csv.hasSuffix("\r\n"))
        #expect(
            records[0]
                == "run_id,phase,metric,unit,value,repetition,warmup,sequence,at,comment,label_metric,precision,size,threads")
        #expect(records[1] == "3,baseline,gflops,GFLOP/s,12.5,0,true,0,,,,,1024,2")
        #expect(records[2] == "3,baseline,gflops,GFLOP/s,NaN,1,false,1,1.5,,,float32,2048,")
        // The quoted field keeps its LF; the record still ends with CRLF.
        #expect(records[3] == "3,baseline,note_metric,%,1.0,2,false,2,,\"a, \"\"b\"\"\nc ✓\",shadow,,,")
        #expect(records.count == 5 && records[4].isEmpty)
    }

    @Test("tidy CSV of no samples is just the header; writeTidyCSV creates folders")
    func writeFile() throws {
        let folder = try TemporaryFolder()
        defer { folder.cleanUp() }
        let run = RunInfo(id: 1, phase: "chaos", startedAt: Date())
        #expect(tidyCSV(run: run, samples: []) == "run_id,phase,metric,unit,value,repetition,warmup,sequence,at\r\n")
        let path = folder.file("results/chaos/run-1.csv")
        let samples = [Sample(runID: 1, metric: "m", unit: "s", value: 2, sequence: 0, labels: ["k": "ü"])]
        try writeTidyCSV(run: run, samples: samples, to: path)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == tidyCSV(run: run, samples: samples))
    }
}
