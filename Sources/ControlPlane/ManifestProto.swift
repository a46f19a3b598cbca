import Foundation
public import FlotillaProto
public import Manifest

// Conversions between the manifest's types and their protobuf form (validated on the way in).

extension TaskSpec {
    /// The spec a request describes; throws a message naming the bad field.
    public init(_ p: Flotilla_V1_TaskSpec) throws(ManifestRequestError) {
        guard let kind = TaskKind(name: p.kind.isEmpty ? "matmul" : p.kind) else {
            throw ManifestRequestError("spec.kind: unknown task kind '\(p.kind)' (known: matmul)")
        }
        guard let precision = TaskPrecision(name: p.precision.isEmpty ? "float32" : p.precision) else {
            throw ManifestRequestError("spec.precision: '\(p.precision)' is not float32 or float64")
        }
        guard p.threads <= 1024 else { throw ManifestRequestError("spec.threads: \(p.threads) is more than 1024") }
        guard p.maxAttempts <= 100 else { throw ManifestRequestError("spec.max_attempts: \(p.maxAttempts) is more than 100") }
        self.init(size: p.size)
        self.kind = kind
        self.precision = precision
        seed = p.seed
        threads = UInt16(p.threads)
        zone = p.zone
        job = p.job
        timeoutMillis = p.timeoutMs
        maxAttempts = p.maxAttempts == 0 ? 3 : UInt8(p.maxAttempts)
        if let problem { throw ManifestRequestError("spec: \(problem)") }
    }

    public var proto: Flotilla_V1_TaskSpec {
        .with {
            $0.kind = kind.description
            $0.size = size
            $0.precision = precision.description
            $0.seed = seed
            $0.threads = UInt32(threads)
            $0.zone = zone
            $0.job = job
            $0.timeoutMs = timeoutMillis
            $0.maxAttempts = UInt32(maxAttempts)
        }
    }
}

/// A request the manifest cannot accept, and why.
public struct ManifestRequestError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension TaskResult {
    public init(_ p: Flotilla_V1_TaskResult) {
        self.init()
        generationMicros = p.generationUs
        computeMicros = p.computeUs
        verificationMicros = p.verificationUs
        gflops = p.gflops
        verified = p.verified
        fingerprint = p.fingerprint
        kernel = p.kernel
        threads = UInt16(clamping: p.threads)
    }

    public var proto: Flotilla_V1_TaskResult {
        .with {
            $0.generationUs = generationMicros
            $0.computeUs = computeMicros
            $0.verificationUs = verificationMicros
            $0.gflops = gflops
            $0.verified = verified
            $0.fingerprint = fingerprint
            $0.kernel = kernel
            $0.threads = UInt32(threads)
        }
    }
}

extension TaskRecord {
    public var proto: Flotilla_V1_Task {
        .with { t in
            t.id = id
            t.key = key
            t.spec = spec.proto
            t.state = state.description
            t.submittedAtMs = submittedAt
            t.endedAtMs = endedAt ?? 0
            t.reason = reason
            if let result { t.result = result.proto }
            t.attempts = attempts.map { a in
                .with {
                    $0.number = a.number
                    $0.agent = a.agent
                    $0.assignedAtMs = a.assignedAt
                    $0.startedAtMs = a.startedAt ?? 0
                    $0.endedAtMs = a.endedAt ?? 0
                    switch a.outcome {
                    case .active: $0.outcome = "active"
                    case .succeeded: $0.outcome = "succeeded"
                    case .failed(let why):
                        $0.outcome = "failed"
                        $0.reason = why
                    case .abandoned(let why):
                        $0.outcome = "abandoned"
                        $0.reason = why
                    }
                }
            }
        }
    }
}

/// Milliseconds since 1970 now, the timestamp manifest commands carry.
public func wallClockMillis() -> Millis { Millis(max(0, Date().timeIntervalSince1970 * 1000)) }
