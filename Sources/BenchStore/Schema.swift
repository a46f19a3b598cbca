import GRDB
import Foundation

/// The store's schema, as GRDB migrations recorded in the `grdb_migrations` table. Migrations are
/// append-only: a released migration is never edited; later versions add new ones. A database that
/// records a migration missing from this list was written by a newer bench and is refused
/// (`BenchStoreError.schemaTooNew`).
///
/// Conventions: times are REAL seconds since 1970-01-01 UTC (`datetime(started_at, 'unixepoch')`
/// shows them); key/value maps are JSON objects with sorted keys in `*_json` TEXT columns; a NULL
/// sample value is NaN (SQLite cannot store NaN).
enum Schema {
    /// Identifiers of the migrations this build knows, oldest first.
    static let migrationIdentifiers = ["v1", "v2"]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // v1: runs and their raw samples.
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE runs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        phase TEXT NOT NULL,
                        started_at REAL NOT NULL,
                        finished_at REAL,
                        status TEXT NOT NULL,
                        parameters_json TEXT NOT NULL DEFAULT '{}',
                        git_commit TEXT NOT NULL DEFAULT '',
                        host TEXT NOT NULL DEFAULT '',
                        cpu_model TEXT NOT NULL DEFAULT '',
                        cores INTEGER NOT NULL DEFAULT 0,
                        memory_bytes INTEGER NOT NULL DEFAULT 0,
                        openblas_version TEXT NOT NULL DEFAULT '',
                        openblas_kernel TEXT NOT NULL DEFAULT '',
                        swift_version TEXT NOT NULL DEFAULT '',
                        cluster_config TEXT NOT NULL DEFAULT '',
                        notes TEXT NOT NULL DEFAULT ''
                    );
                    CREATE INDEX runs_by_started ON runs(started_at);
                    CREATE INDEX runs_by_phase_started ON runs(phase, started_at);
                    CREATE TABLE samples (
                        id INTEGER PRIMARY KEY,
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        sequence INTEGER NOT NULL,
                        metric TEXT NOT NULL,
                        unit TEXT NOT NULL,
                        value REAL,
                        repetition INTEGER NOT NULL DEFAULT 0,
                        warmup INTEGER NOT NULL DEFAULT 0 CHECK (warmup IN (0, 1)),
                        labels_json TEXT NOT NULL DEFAULT '{}',
                        at REAL
                    );
                    CREATE INDEX samples_by_run_metric ON samples(run_id, metric, sequence);
                    """)
        }
        // v2: tags (unique names for runs, for `bench compare baseline-2026-11 latest`) and stored
        // summaries (median and its confidence interval per metric and configuration).
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    ALTER TABLE runs ADD COLUMN tag TEXT;
                    CREATE UNIQUE INDEX runs_by_tag ON runs(tag) WHERE tag IS NOT NULL;
                    CREATE TABLE summaries (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        metric TEXT NOT NULL,
                        unit TEXT NOT NULL,
                        labels_json TEXT NOT NULL DEFAULT '{}',
                        n INTEGER NOT NULL,
                        median REAL,
                        ci_low REAL,
                        ci_high REAL,
                        confidence REAL,
                        mean REAL,
                        cv REAL,
                        min REAL,
                        max REAL,
                        p90 REAL,
                        p99 REAL,
                        PRIMARY KEY (run_id, metric, labels_json)
                    );
                    """)
        }
        return migrator
    }
}

/// Flat string maps as JSON objects with sorted keys: a canonical text, so equal maps give equal
/// strings (the summaries' primary key relies on it) and SQLite's JSON functions can read them.
enum LabelsJSON {
    static func encode(_ labels: [String: String]) -> String {
        if labels.isEmpty { return "{}" }
        var out = "{"
        for (index, key) in labels.keys.sorted().enumerated() {
            if index > 0 { out += "," }
            appendQuoted(key, to: &out)
            out += ":"
            appendQuoted(labels[key] ?? "", to: &out)
        }
        out += "}"
        return out
    }

    /// Nil if `text` is not a JSON object of strings.
    static func decode(_ text: String) -> [String: String]? {
        if text == "{}" { return [:] }
        return try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }

    private static func appendQuoted(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
