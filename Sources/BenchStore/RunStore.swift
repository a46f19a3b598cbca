public import Foundation
import GRDB

/// bench's SQLite store of runs and their raw samples (`results/flotilla-bench.sqlite` by default).
///
/// Opening a store creates its folder and file if needed and applies pending schema migrations
/// (see `Schema`), so an older store is upgraded in place with its data kept; a store written by a
/// newer bench is refused rather than misread. All methods are synchronous and thread-safe: they go
/// through one serialised SQLite connection, and another process (a second `bench list`) waits up to
/// 10 s for a lock instead of failing at once.
public final class RunStore: Sendable {
    /// The database file.
    public let path: String
    // DatabaseQueue is Sendable (it serialises every access on its own dispatch queue).
    private let queue: DatabaseQueue

    /// Opens (creating if needed) the store at `path`, creating missing parent folders, and brings
    /// its schema up to date.
    /// - Throws: `.cannotOpen` if the folder or file cannot be created or opened, `.corrupt` if the
    ///   file is not SQLite or belongs to another application, `.schemaTooNew` if a newer bench wrote it.
    public init(path: String) throws(BenchStoreError) {
        self.path = path
        queue = try Self.openQueue(path: path)
        try Self.migrate(queue, path: path, upTo: nil)
    }

    /// The schema migrations applied to this store, oldest first (e.g. ["v1", "v2"]).
    public func appliedMigrations() throws(BenchStoreError) -> [String] {
        try read("read the schema version") { db in try Schema.migrator.appliedMigrations(db) }
    }

    /// The schema migrations this build knows, oldest first.
    public static var knownMigrations: [String] { Schema.migrationIdentifiers }

    // MARK: Runs

    /// Records the start of a run and returns its id. `info.id` is ignored; `info.tag`, if set, must
    /// be valid and unused.
    /// - Throws: `.invalidTag`, `.duplicateTag`, `.database`.
    @discardableResult
    public func beginRun(_ info: RunInfo) throws(BenchStoreError) -> Int64 {
        if let tag = info.tag { try Self.validateTag(tag) }
        return try write("record the start of a \(info.phase) run") { db in
            if let tag = info.tag { try Self.checkTagUnused(tag, except: nil, db) }
            try db.execute(
                sql: """
                    INSERT INTO runs (tag, phase, started_at, finished_at, status, parameters_json,
                        git_commit, host, cpu_model, cores, memory_bytes, openblas_version,
                        openblas_kernel, swift_version, cluster_config, notes)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    info.tag, info.phase, info.startedAt.timeIntervalSince1970,
                    info.finishedAt?.timeIntervalSince1970, info.status.rawValue,
                    LabelsJSON.encode(info.parameters), info.gitCommit, info.host, info.cpuModel,
                    info.cores, Int64(clamping: info.memoryBytes), info.openBLASVersion,
                    info.openBLASKernel, info.swiftVersion, info.clusterConfig, info.notes,
                ])
            return db.lastInsertedRowID
        }
    }

    /// Records how and when a run ended, and optionally replaces its notes and cluster
    /// configuration (often known only once the phase has started its cluster). Nil keeps the
    /// stored value.
    /// - Throws: `.runNotFound` if no run has this id.
    public func finishRun(
        id: Int64, status: RunStatus, finishedAt: Date = Date(), notes: String? = nil,
        clusterConfig: String? = nil
    ) throws(BenchStoreError) {
        try write("record the end of run \(id)") { db in
            try db.execute(
                sql: """
                    UPDATE runs SET status = ?, finished_at = ?, notes = COALESCE(?, notes),
                        cluster_config = COALESCE(?, cluster_config)
                    WHERE id = ?
                    """,
                arguments: [status.rawValue, finishedAt.timeIntervalSince1970, notes, clusterConfig, id])
            if db.changesCount == 0 { throw BenchStoreError.runNotFound(String(id)) }
        }
    }

    /// Attaches `tag` to run `id` (replacing its previous tag), or removes its tag when `tag` is nil.
    /// - Throws: `.invalidTag`, `.duplicateTag` (another run has it), `.runNotFound`.
    public func setTag(_ tag: String?, for id: Int64) throws(BenchStoreError) {
        if let tag { try Self.validateTag(tag) }
        try write("tag run \(id)") { db in
            if let tag { try Self.checkTagUnused(tag, except: id, db) }
            try db.execute(sql: "UPDATE runs SET tag = ? WHERE id = ?", arguments: [tag, id])
            if db.changesCount == 0 { throw BenchStoreError.runNotFound(String(id)) }
        }
    }

    /// Deletes a run with its samples and summaries.
    /// - Throws: `.runNotFound` if no run has this id.
    public func deleteRun(id: Int64) throws(BenchStoreError) {
        try write("delete run \(id)") { db in
            try db.execute(sql: "DELETE FROM runs WHERE id = ?", arguments: [id])
            if db.changesCount == 0 { throw BenchStoreError.runNotFound(String(id)) }
        }
    }

    /// Runs newest first (by start time, then id), optionally of one phase only.
    public func runs(phase: String? = nil, limit: Int = 50) throws(BenchStoreError) -> [RunInfo] {
        let rows = try read("list runs") { db in
            if let phase {
                return try Row.fetchAll(
                    db, sql: "SELECT \(Self.runColumns) FROM runs WHERE phase = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                    arguments: [phase, limit])
            }
            return try Row.fetchAll(
                db, sql: "SELECT \(Self.runColumns) FROM runs ORDER BY started_at DESC, id DESC LIMIT ?",
                arguments: [limit])
        }
        var result: [RunInfo] = []
        result.reserveCapacity(rows.count)
        for row in rows { result.append(try Self.runInfo(row)) }
        return result
    }

    /// The run with this id, or nil.
    public func run(id: Int64) throws(BenchStoreError) -> RunInfo? {
        let row = try read("read run \(id)") { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.runColumns) FROM runs WHERE id = ?", arguments: [id])
        }
        guard let row else { return nil }
        return try Self.runInfo(row)
    }

    /// The run a command-line argument names, or nil: a numeric id ("42"), a tag
    /// ("baseline-2026-11"), "latest" (the newest run) or "latest:<phase>" (the newest run of that
    /// phase). Surrounding whitespace is ignored.
    public func resolve(_ idOrTag: String) throws(BenchStoreError) -> RunInfo? {
        let reference = idOrTag.trimmingCharacters(in: .whitespacesAndNewlines)
        if reference == "latest" { return try runs(limit: 1).first }
        if reference.hasPrefix("latest:") {
            return try runs(phase: String(reference.dropFirst("latest:".count)), limit: 1).first
        }
        if let id = Int64(reference) { return try run(id: id) }
        let row = try read("find the run tagged \(reference)") { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.runColumns) FROM runs WHERE tag = ?", arguments: [reference])
        }
        guard let row else { return nil }
        return try Self.runInfo(row)
    }

    /// Like `resolve(_:)`, but a missing run is an error whose message tells the user how to list runs.
    /// - Throws: `.runNotFound`.
    public func requireRun(_ idOrTag: String) throws(BenchStoreError) -> RunInfo {
        guard let run = try resolve(idOrTag) else { throw .runNotFound(idOrTag) }
        return run
    }

    // MARK: Samples

    /// Stores samples in one transaction (100 000 take well under a second). Runs must exist.
    /// - Throws: `.database` (for example a foreign-key failure when a sample's run does not exist);
    ///   nothing is stored then.
    public func addSamples(_ samples: [Sample]) throws(BenchStoreError) {
        guard !samples.isEmpty else { return }
        try write("store \(samples.count) samples") { db in
            let statement = try db.makeStatement(
                sql: """
                    INSERT INTO samples (run_id, sequence, metric, unit, value, repetition, warmup, labels_json, at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            // Samples of one configuration share their labels: encode each distinct map once.
            var encoded: [[String: String]: String] = [:]
            for sample in samples {
                let labels: String
                if let known = encoded[sample.labels] {
                    labels = known
                } else {
                    labels = LabelsJSON.encode(sample.labels)
                    encoded[sample.labels] = labels
                }
                statement.setUncheckedArguments([
                    sample.runID, sample.sequence, sample.metric, sample.unit,
                    sample.value.isNaN ? nil : sample.value, sample.repetition, sample.warmup, labels, sample.at,
                ])
                try statement.execute()
            }
        }
    }

    /// The samples of a run in `sequence` order, of one metric or all, without warm-ups unless
    /// `includeWarmup`.
    public func samples(
        runID: Int64, metric: String? = nil, includeWarmup: Bool = false
    ) throws(BenchStoreError) -> [Sample] {
        var sql = "SELECT run_id, sequence, metric, unit, value, repetition, warmup, labels_json, at FROM samples WHERE run_id = ?"
        var arguments: StatementArguments = [runID]
        if let metric {
            sql += " AND metric = ?"
            arguments += [metric]
        }
        if !includeWarmup { sql += " AND warmup = 0" }
        sql += " ORDER BY sequence, id"
        let finalSQL = sql
        let finalArguments = arguments
        let decoded: Result<[Sample], BenchStoreError> = try read("read the samples of run \(runID)") { db in
            var result: [Sample] = []
            // Samples of one configuration share their labels: decode each distinct text once.
            var decoded: [String: [String: String]] = [:]
            let cursor = try Row.fetchCursor(db, sql: finalSQL, arguments: finalArguments)
            while let row = try cursor.next() {
                let labelsText: String = row[7]
                let labels: [String: String]
                if let known = decoded[labelsText] {
                    labels = known
                } else if let parsed = LabelsJSON.decode(labelsText) {
                    labels = parsed
                    decoded[labelsText] = parsed
                } else {
                    return .failure(.invalidStoredValue(column: "samples.labels_json", value: labelsText))
                }
                let value: Double? = row[4]
                result.append(
                    Sample(
                        runID: row[0], metric: row[2], unit: row[3], value: value ?? .nan, repetition: row[5],
                        warmup: row[6], sequence: row[1], labels: labels, at: row[8]))
            }
            return .success(result)
        }
        return try decoded.get()
    }

    /// The distinct metrics a run has samples of (warm-ups included), sorted.
    public func metrics(runID: Int64) throws(BenchStoreError) -> [String] {
        try read("list the metrics of run \(runID)") { db in
            try String.fetchAll(
                db, sql: "SELECT DISTINCT metric FROM samples WHERE run_id = ? ORDER BY metric", arguments: [runID])
        }
    }

    /// How many samples a run has (warm-ups excluded unless `includeWarmup`).
    public func sampleCount(runID: Int64, includeWarmup: Bool = false) throws(BenchStoreError) -> Int {
        try read("count the samples of run \(runID)") { db in
            try Int.fetchOne(
                db,
                sql: "SELECT COUNT(*) FROM samples WHERE run_id = ?" + (includeWarmup ? "" : " AND warmup = 0"),
                arguments: [runID]) ?? 0
        }
    }

    /// The first free `sequence` number of a run (one more than the largest stored, 0 if none), for
    /// callers that add samples in several batches.
    public func nextSequence(runID: Int64) throws(BenchStoreError) -> Int {
        try read("read the last sample of run \(runID)") { db in
            try Int.fetchOne(db, sql: "SELECT MAX(sequence) + 1 FROM samples WHERE run_id = ?", arguments: [runID]) ?? 0
        }
    }

    // MARK: Summaries (schema v2)

    /// Stores summaries in one transaction, replacing any with the same run, metric and labels.
    public func addSummaries(_ summaries: [MetricSummary]) throws(BenchStoreError) {
        guard !summaries.isEmpty else { return }
        try write("store \(summaries.count) summaries") { db in
            let statement = try db.makeStatement(
                sql: """
                    INSERT OR REPLACE INTO summaries (run_id, metric, unit, labels_json, n, median, ci_low,
                        ci_high, confidence, mean, cv, min, max, p90, p99)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for summary in summaries {
                let optionals: [Double?] = [
                    summary.median, summary.ciLow, summary.ciHigh, summary.confidence, summary.mean,
                    summary.cv, summary.min, summary.max, summary.p90, summary.p99,
                ]
                var arguments: StatementArguments = [
                    summary.runID, summary.metric, summary.unit, LabelsJSON.encode(summary.labels), summary.count,
                ]
                arguments += StatementArguments(optionals.map { value in value.flatMap { $0.isNaN ? nil : $0 } })
                statement.setUncheckedArguments(arguments)
                try statement.execute()
            }
        }
    }

    /// A run's summaries ordered by metric and labels, of one metric or all.
    public func summaries(runID: Int64, metric: String? = nil) throws(BenchStoreError) -> [MetricSummary] {
        let decoded: Result<[MetricSummary], BenchStoreError> = try read("read the summaries of run \(runID)") { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT run_id, metric, unit, labels_json, n, median, ci_low, ci_high, confidence, mean, cv,
                        min, max, p90, p99
                    FROM summaries WHERE run_id = ? AND (?2 IS NULL OR metric = ?2) ORDER BY metric, labels_json
                    """,
                arguments: [runID, metric])
            var result: [MetricSummary] = []
            for row in rows {
                let labelsText: String = row[3]
                guard let labels = LabelsJSON.decode(labelsText) else {
                    return .failure(.invalidStoredValue(column: "summaries.labels_json", value: labelsText))
                }
                let median: Double? = row[5]
                result.append(
                    MetricSummary(
                        runID: row[0], metric: row[1], unit: row[2], labels: labels, count: row[4],
                        median: median ?? .nan, ciLow: row[6], ciHigh: row[7], confidence: row[8], mean: row[9],
                        cv: row[10], min: row[11], max: row[12], p90: row[13], p99: row[14]))
            }
            return .success(result)
        }
        return try decoded.get()
    }

    // MARK: Internals

    static let runColumns = """
        id, tag, phase, started_at, finished_at, status, parameters_json, git_commit, host, cpu_model, cores,
        memory_bytes, openblas_version, openblas_kernel, swift_version, cluster_config, notes
        """

    static func runInfo(_ row: Row) throws(BenchStoreError) -> RunInfo {
        let statusText: String = row["status"]
        guard let status = RunStatus(rawValue: statusText) else {
            throw .invalidStoredValue(column: "runs.status", value: statusText)
        }
        let parametersText: String = row["parameters_json"]
        guard let parameters = LabelsJSON.decode(parametersText) else {
            throw .invalidStoredValue(column: "runs.parameters_json", value: parametersText)
        }
        let finished: Double? = row["finished_at"]
        let memory: Int64 = row["memory_bytes"]
        return RunInfo(
            id: row["id"], tag: row["tag"], phase: row["phase"],
            startedAt: Date(timeIntervalSince1970: row["started_at"]),
            finishedAt: finished.map { Date(timeIntervalSince1970: $0) }, status: status, parameters: parameters,
            gitCommit: row["git_commit"], host: row["host"], cpuModel: row["cpu_model"], cores: row["cores"],
            memoryBytes: UInt64(max(0, memory)), openBLASVersion: row["openblas_version"],
            openBLASKernel: row["openblas_kernel"], swiftVersion: row["swift_version"],
            clusterConfig: row["cluster_config"], notes: row["notes"])
    }

    static func validateTag(_ tag: String) throws(BenchStoreError) {
        if tag.isEmpty { throw .invalidTag(tag: tag, reason: "it is empty") }
        if tag.allSatisfy(\.isNumber) { throw .invalidTag(tag: tag, reason: "it would be read as a run id") }
        if tag.hasPrefix("latest") {
            throw .invalidTag(tag: tag, reason: "'latest' and 'latest:<phase>' name the newest runs")
        }
        if tag.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw .invalidTag(tag: tag, reason: "it contains white space")
        }
    }

    static func checkTagUnused(_ tag: String, except id: Int64?, _ db: Database) throws {
        if let holder = try Int64.fetchOne(db, sql: "SELECT id FROM runs WHERE tag = ?", arguments: [tag]),
            holder != id
        {
            throw BenchStoreError.duplicateTag(tag: tag, existingRunID: holder)
        }
    }

    private func read<T>(_ operation: String, _ body: (Database) throws -> T) throws(BenchStoreError) -> T {
        do {
            return try queue.read(body)
        } catch {
            throw Self.storeError(error, operation: operation)
        }
    }

    private func write<T>(_ operation: String, _ body: (Database) throws -> T) throws(BenchStoreError) -> T {
        do {
            return try queue.write(body)
        } catch {
            throw Self.storeError(error, operation: operation)
        }
    }

    static func storeError(_ error: any Error, operation: String) -> BenchStoreError {
        if let error = error as? BenchStoreError { return error }
        return .database(operation: operation, reason: describe(error))
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message ?? "SQLite error \(error.extendedResultCode.rawValue)"
        }
        return String(describing: error)
    }

    static func openQueue(path: String) throws(BenchStoreError) -> DatabaseQueue {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw .cannotOpen(path: path, reason: "cannot create the folder \(folder.path): \(error.localizedDescription)")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "BenchStore"
        do {
            return try DatabaseQueue(path: path, configuration: configuration)
        } catch let error as DatabaseError where Self.isCorruption(error) {
            throw .corrupt(path: path, reason: describe(error))
        } catch {
            throw .cannotOpen(path: path, reason: describe(error))
        }
    }

    static func isCorruption(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_NOTADB || error.resultCode == .SQLITE_CORRUPT
    }

    /// Refuses stores from a newer bench or another application, then applies the pending
    /// migrations (all of them, or up to `target`).
    static func migrate(_ queue: DatabaseQueue, path: String, upTo target: String?) throws(BenchStoreError) {
        let migrator = Schema.migrator
        let applied: Set<String>
        let userTables: [String]
        do {
            (applied, userTables) = try queue.read { db in
                (
                    try migrator.appliedIdentifiers(db),
                    try String.fetchAll(
                        db,
                        sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                )
            }
        } catch let error as DatabaseError where isCorruption(error) {
            throw .corrupt(path: path, reason: describe(error))
        } catch {
            throw .cannotOpen(path: path, reason: describe(error))
        }
        let unknown = applied.subtracting(Schema.migrationIdentifiers).sorted()
        if !unknown.isEmpty { throw .schemaTooNew(path: path, unknownMigrations: unknown) }
        if applied.isEmpty, !userTables.isEmpty {
            throw .corrupt(
                path: path,
                reason: "it holds tables (\(userTables.prefix(5).joined(separator: ", "))) but no bench schema; "
                    + "it belongs to another application")
        }
        do {
            if let target {
                try migrator.migrate(queue, upTo: target)
            } else {
                try migrator.migrate(queue)
            }
        } catch {
            throw .database(operation: "upgrade the schema of \(path)", reason: describe(error))
        }
    }
}

// MARK: Test support

extension RunStore {
    /// Creates (or upgrades) the store at `path` only up to migration `identifier` ("v1"), as an
    /// older bench left it. For tests of migrations; bench itself always opens with `init(path:)`.
    package static func createForTesting(path: String, upTo identifier: String) throws(BenchStoreError) {
        let queue = try openQueue(path: path)
        try migrate(queue, path: path, upTo: identifier)
    }

    /// Runs raw SQL on the file at `path` without any schema check. For tests that build old or
    /// foreign databases.
    package static func executeForTesting(path: String, sql: String) throws(BenchStoreError) {
        let queue = try openQueue(path: path)
        do {
            try queue.write { db in try db.execute(sql: sql) }
        } catch {
            throw storeError(error, operation: "run test SQL")
        }
    }
}
