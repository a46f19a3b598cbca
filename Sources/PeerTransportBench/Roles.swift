import Foundation
import Raft
import RaftTransport
import Synchronization

let leaderID: NodeID = 1
let followerID: NodeID = 2

/// The leader's side of a workload: sends `MsgApp`-style appends, keeping `window` of them in
/// flight, and times each until the follower's append response comes back.
///
/// Message `seq` (from 1) carries entries `(seq-1)*entries+1 ... seq*entries`, so a response's
/// `index` names the message it answers. Responses are handled on whatever thread the transport
/// delivers them on, and the next appends are sent from there: no hop beyond the transport's own.
final class Driver: Sendable {
    private struct State {
        var sender: (any PeerTransport)?
        var nextSeq: UInt64 = 1
        var endSeq: UInt64 = 1
        var phaseFirstSeq: UInt64 = 1
        var outstanding = 0
        var received = 0
        var target = 0
        var sentAt: [ContinuousClock.Instant] = []
        var samples: [Duration] = []
        var batchesIn = 0
        var done: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let window: Int
    private let entries: UInt64
    private let payload: [UInt8]
    /// Responses received so far (for the stall watchdog).
    let progress = Atomic<Int>(0)

    init(workload: Workload) {
        window = workload.window
        entries = UInt64(workload.entries)
        payload = [UInt8](repeating: 0xA5, count: workload.payloadBytes)
    }

    func setSender(_ sender: any PeerTransport) { state.withLock { $0.sender = sender } }

    private func append(_ seq: UInt64) -> Message {
        let first = (seq - 1) * entries + 1
        let batch = (0..<entries).map { Entry(term: 1, index: first + $0, payload: .command(payload)) }
        return Message(
            from: leaderID, to: followerID, term: 1,
            payload: .append(AppendRequest(prevIndex: first - 1, prevTerm: first == 1 ? 0 : 1, entries: batch, commit: first - 1)))
    }

    /// Sends `count` appends, `window` at a time; returns each one's round trip and the number of
    /// batches the responses arrived in.
    func run(count: Int) async -> (samples: [Duration], batchesIn: Int) {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (sender, first) = state.withLock { s -> ((any PeerTransport)?, [Message]) in
                s.phaseFirstSeq = s.nextSeq
                s.endSeq = s.nextSeq + UInt64(count)
                s.received = 0
                s.target = count
                s.batchesIn = 0
                s.samples = []
                s.samples.reserveCapacity(count)
                s.sentAt = [ContinuousClock.Instant](repeating: .now, count: count)
                s.done = continuation
                var first: [Message] = []
                while s.outstanding < window && s.nextSeq < s.endSeq {
                    first.append(append(s.nextSeq))
                    s.sentAt[Int(s.nextSeq - s.phaseFirstSeq)] = .now
                    s.nextSeq += 1
                    s.outstanding += 1
                }
                return (s.sender, first)
            }
            // The first window goes out as separate sends, like proposals arriving one by one.
            for message in first { sender?.send([message]) }
        }
        return state.withLock { ($0.samples, $0.batchesIn) }
    }

    /// The transport's delivery callback.
    func receive(_ messages: [Message]) {
        let now = ContinuousClock.now
        var answered = 0
        let (sender, next, done) = state.withLock {
            s -> ((any PeerTransport)?, [Message], CheckedContinuation<Void, Never>?) in
            s.batchesIn += 1
            for message in messages {
                guard case .appendResponse(let r) = message.payload else { continue }
                let seq = r.index / entries
                guard seq >= s.phaseFirstSeq, seq < s.endSeq else { continue }
                s.samples.append(now - s.sentAt[Int(seq - s.phaseFirstSeq)])
                s.received += 1
                s.outstanding -= 1
                answered += 1
            }
            var next: [Message] = []
            while s.outstanding < window && s.nextSeq < s.endSeq {
                next.append(append(s.nextSeq))
                s.sentAt[Int(s.nextSeq - s.phaseFirstSeq)] = .now
                s.nextSeq += 1
                s.outstanding += 1
            }
            var done: CheckedContinuation<Void, Never>?
            if s.received == s.target {
                done = s.done
                s.done = nil
            }
            return (s.sender, next, done)
        }
        progress.add(answered, ordering: .relaxed)
        // The refills of one received batch go out as one batch, as one `Ready` of a node would.
        if !next.isEmpty { sender?.send(next) }
        done?.resume()
    }
}

/// The follower's state shared with its delivery callback.
final class FollowerState: Sendable {
    let sender = Mutex<(any PeerTransport)?>(nil)
    let batchesIn = Atomic<Int>(0)
    let messagesIn = Atomic<Int>(0)

    /// Answers every append in `messages` with a successful append response, in one batch.
    func receive(_ messages: [Message]) {
        batchesIn.add(1, ordering: .relaxed)
        messagesIn.add(messages.count, ordering: .relaxed)
        var responses: [Message] = []
        responses.reserveCapacity(messages.count)
        for m in messages {
            guard case .append(let a) = m.payload else { continue }
            responses.append(Message(
                from: m.to, to: m.from, term: m.term,
                payload: .appendResponse(AppendResponse(success: true, index: a.prevIndex + UInt64(a.entries.count)))))
        }
        if !responses.isEmpty, let sender = sender.withLock({ $0 }) { sender.send(responses) }
    }
}

/// The spawned partner: listens, dials the leader back, echoes appends until its stdin closes.
func runFollower(transport kind: TransportKind, leaderPort: Int) async throws -> Never {
    let state = FollowerState()
    let transport = makeBenchTransport(kind)
    let port = try await transport.listen(deliver: { state.receive($0) })
    let sender = transport.connect(to: leaderID, port: leaderPort)
    state.sender.withLock { $0 = sender }
    FileHandle.standardOutput.write(Data("port \(port)\n".utf8))
    Thread.detachNewThread {
        let commands = LineReader(fd: FileHandle.standardInput.fileDescriptor)
        while let command = commands.readLine() {
            if command == "mark" {
                let mark = FollowerMark(
                    cpu: .ofSelf(), batchesIn: state.batchesIn.load(ordering: .relaxed),
                    messagesIn: state.messagesIn.load(ordering: .relaxed))
                FileHandle.standardOutput.write(Data((mark.line + "\n").utf8))
            }
        }
        exit(0)  // the leader closed our stdin, or died
    }
    while true { try await Task.sleep(for: .seconds(3600)) }
}
