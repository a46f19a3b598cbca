#if canImport(Glibc)
import Glibc
#endif
import FlotillaProto
import Raft
import RaftTransport
import SwiftProtobuf
import Synchronization
import Testing

/// `NIOPeerTransport` and `NIOPeerListener` on 127.0.0.1: the framing, the hello, delivery both
/// ways, reconnection, and isolation of a slow peer. Raw sockets write hand-built bytes (the
/// format documented in `PeerWire.swift`) where a test needs bytes the transport would never send.
/// Every wait is bounded; nothing asserts on timing.
@Suite(.timeLimit(.minutes(3)))
struct NIOPeerTransportTests {
    static let cluster = "test-cluster"

    // MARK: Framing and the hello, with raw bytes

    @Test func aFrameSplitAcrossReadsIsReassembled() async throws {
        let peer = try await Peer.listening(localID: 1)
        defer { peer.closeAfterTest() }
        let connection = try RawConnection(port: peer.listener.port)
        // The hello cut inside its length prefix and inside its payload, then a batch cut the same
        // way and at its last byte (a pause after each piece makes each arrive as its own read).
        let h = hello(sender: 2)
        let batch = try batchFrame(messages(from: 2, to: 1, commits: 1...3))
        let pieces = [h[..<1], h[1..<9], h[9...], batch[..<2], batch[2..<7], batch[7..<(batch.count - 1)], batch[(batch.count - 1)...]]
        for piece in pieces {
            #expect(connection.write(Array(piece)))
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(try await eventually { peer.inbox.batches.count == 1 })
        #expect(peer.inbox.batches == [messages(from: 2, to: 1, commits: 1...3)])
        #expect(peer.logs.all.isEmpty)
    }

    @Test func framesCoalescedInOneWriteAreEachDelivered() async throws {
        let peer = try await Peer.listening(localID: 1)
        defer { peer.closeAfterTest() }
        let connection = try RawConnection(port: peer.listener.port)
        let batches = [messages(from: 2, to: 1, commits: 1...1), messages(from: 2, to: 1, commits: 2...4), messages(from: 2, to: 1, commits: 5...5)]
        var bytes = hello(sender: 2)
        for (k, b) in batches.enumerated() {
            bytes += try batchFrame(b)
            if k == 0 { bytes += frame(type: 3, []) }  // a ping between batches
        }
        #expect(connection.write(bytes))
        #expect(try await eventually { peer.inbox.batches.count == 3 })
        #expect(peer.inbox.batches == batches)
    }

    @Test func anOversizedFrameClosesTheConnectionBeforeItsBytesArrive() async throws {
        var options = NIOPeerOptions()
        options.maxFrameLength = 1024
        let peer = try await Peer.listening(localID: 1, options: options)
        defer { peer.closeAfterTest() }
        let connection = try RawConnection(port: peer.listener.port)
        // A batch within the limit is delivered; then only the header of a frame of 1025 bytes.
        #expect(connection.write(hello(sender: 2) + (try batchFrame(messages(from: 2, to: 1, commits: 1...1)))))
        #expect(connection.write(be(UInt32(1025)) + [2]))
        #expect(connection.waitForClose())
        #expect(peer.inbox.batches == [messages(from: 2, to: 1, commits: 1...1)])
        #expect(peer.logs.contains("a frame of 1025 bytes exceeds the limit of 1024 bytes"))
    }

    @Test(
        "malformed bytes close the connection, and the reason is logged",
        arguments: [
            ("garbage in a batch", frame(type: 2, [0xFF, 0xFF, 0xFF, 0xFF]), "not a RaftBatch protobuf"),
            ("an invalid message", invalidBatchFrame(), "messages[0].to"),
            ("an unknown frame type", frame(type: 9, [1, 2]), "unknown frame type 9"),
            ("an empty frame", be(UInt32(0)), "a frame of length 0"),
            ("a ping with a payload", frame(type: 3, [1]), "a ping with 1 bytes of payload"),
            ("a second hello", hello(sender: 2), "a second hello"),
            ("a message from another node", try! batchFrame(messages(from: 3, to: 1, commits: 1...1)), "misaddressed"),
            ("a message to another node", try! batchFrame(messages(from: 2, to: 3, commits: 1...1)), "misaddressed"),
        ])
    func malformedAfterTheHello(name: String, bytes: [UInt8], logged: String) async throws {
        let peer = try await Peer.listening(localID: 1)
        defer { peer.closeAfterTest() }
        let connection = try RawConnection(port: peer.listener.port)
        #expect(connection.write(hello(sender: 2) + bytes))
        #expect(connection.waitForClose(), "\(name)")
        #expect(peer.inbox.batches.isEmpty)
        #expect(peer.logs.contains(logged), "\(name): \(peer.logs.all)")
    }

    @Test(
        "a connection that does not start with an acceptable hello is refused",
        arguments: [
            ("another cluster", hello(sender: 2, cluster: "other"), "belongs to cluster 'other', this node to 'test-cluster'"),
            ("another version", hello(sender: 2, version: 2), "version 2 is not supported"),
            ("an unknown node", hello(sender: 9), "hello from node 9: not a node of this cluster's configuration"),
            ("this node's own id", hello(sender: 1), "hello from node 1: that is this node's own id"),
            ("no magic", frame(type: 1, Array("XXXX".utf8) + be(UInt16(1)) + be(UInt64(2)) + [0]), "lacks the magic bytes"),
            ("a batch first", try! batchFrame(messages(from: 2, to: 1, commits: 1...1)), "not a hello"),
            ("an HTTP/2 client", Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8), "more than any hello"),
        ])
    func refusedHello(name: String, bytes: [UInt8], logged: String) async throws {
        let peer = try await Peer.listening(localID: 1)
        defer { peer.closeAfterTest() }
        let connection = try RawConnection(port: peer.listener.port)
        // What follows the hello is never delivered.
        #expect(connection.write(bytes + (try batchFrame(messages(from: 2, to: 1, commits: 1...1)))))
        #expect(connection.waitForClose(), "\(name)")
        #expect(peer.inbox.batches.isEmpty)
        #expect(peer.logs.contains(logged), "\(name): \(peer.logs.all)")
    }

    @Test func aSilentConnectionIsClosedAfterTheDeadPeerTimeout() async throws {
        var options = NIOPeerOptions()
        options.deadPeerTimeout = .milliseconds(200)
        let peer = try await Peer.listening(localID: 1, options: options)
        defer { peer.closeAfterTest() }
        let connection = try RawConnection(port: peer.listener.port)
        #expect(connection.write(hello(sender: 2)))
        #expect(connection.waitForClose())
        #expect(peer.logs.contains("nothing received for 200 ms"))
    }

    // MARK: Transports

    @Test func twoTransportsDeliverBatchesBothWaysInOrder() async throws {
        let one = try await Peer.listening(localID: 1)
        let two = try await Peer.listening(localID: 2)
        defer {
            one.closeAfterTest()
            two.closeAfterTest()
        }
        let fromOne = NIOPeerTransport(localID: 1, clusterID: Self.cluster, peers: [.init(id: 2, host: "127.0.0.1", port: two.listener.port)])
        let fromTwo = NIOPeerTransport(localID: 2, clusterID: Self.cluster, peers: [.init(id: 1, host: "127.0.0.1", port: one.listener.port)])
        let running = [Task { await fromOne.run() }, Task { await fromTwo.run() }]
        defer { for t in running { t.cancel() } }

        let toTwo: [[Raft.Message]] = (UInt64(0)..<50).map { (k: UInt64) in messages(from: 1, to: 2, commits: (3 * k + 1)...(3 * k + 3)) }
        let toOne: [[Raft.Message]] = (UInt64(1)...50).map { (k: UInt64) in messages(from: 2, to: 1, commits: k...k) }
        for k in 0..<50 {
            fromOne.send(toTwo[k])
            fromTwo.send(toOne[k])
        }
        #expect(try await eventually { two.inbox.messages.count == 150 && one.inbox.messages.count == 50 })
        #expect(two.inbox.messages == toTwo.flatMap { $0 })
        #expect(one.inbox.messages == toOne.flatMap { $0 })
        #expect(one.logs.all.isEmpty && two.logs.all.isEmpty)
        for t in running { t.cancel() }
        for t in running { await t.value }
    }

    @Test func aTransportOfAnotherClusterIsRefused() async throws {
        let two = try await Peer.listening(localID: 2)
        defer { two.closeAfterTest() }
        let stranger = NIOPeerTransport(localID: 1, clusterID: "other", peers: [.init(id: 2, host: "127.0.0.1", port: two.listener.port)])
        let running = Task { await stranger.run() }
        defer { running.cancel() }
        stranger.send(messages(from: 1, to: 2, commits: 1...1))
        #expect(try await eventually { two.logs.contains("belongs to cluster 'other'") })
        #expect(two.inbox.batches.isEmpty)
    }

    @Test func theSenderReconnectsAfterTheListenerRestarts() async throws {
        var two = try await Peer.listening(localID: 2)
        let port = two.listener.port
        let sender = NIOPeerTransport(localID: 1, clusterID: Self.cluster, peers: [.init(id: 2, host: "127.0.0.1", port: port)])
        let running = Task { await sender.run() }
        defer { running.cancel() }
        sender.send(messages(from: 1, to: 2, commits: 1...1))
        #expect(try await eventually { two.inbox.messages.count == 1 })

        await two.listener.close()
        two = try await Peer.listening(localID: 2, port: port)
        defer { two.closeAfterTest() }
        // Messages sent after the restart arrive once the sender has redialled. (A message written
        // into the old connection before the sender noticed its end may be lost: Raft resends.)
        var commit: UInt64 = 100
        let arrived = try await eventually {
            commit += 1
            sender.send(messages(from: 1, to: 2, commits: commit...commit))
            return !two.inbox.messages.isEmpty
        }
        #expect(arrived)
        let commits = two.inbox.messages.map(\.commitOfHeartbeat)
        #expect(commits.allSatisfy { $0 > 100 } && commits == commits.sorted())
    }

    @Test func aSlowPeerAndADeadPeerDoNotDelayAnother() async throws {
        // Node 2 accepts TCP connections but never reads (a listen backlog nobody accepts from);
        // node 3 is down (its port refuses); node 4 is healthy.
        let slow = try StalledListener()
        defer { slow.close() }
        let deadPort = try unusedPort()
        let healthy = try await Peer.listening(localID: 4)
        defer { healthy.closeAfterTest() }
        var options = NIOPeerOptions()
        options.outboxCapacity = 64
        let sender = NIOPeerTransport(
            localID: 1, clusterID: Self.cluster,
            peers: [
                .init(id: 2, host: "127.0.0.1", port: slow.port), .init(id: 3, host: "127.0.0.1", port: deadPort),
                .init(id: 4, host: "127.0.0.1", port: healthy.listener.port),
            ], options: options)
        let running = Task { await sender.run() }
        defer { running.cancel() }

        var expected = messages(from: 1, to: 4, commits: 0...0)
        sender.send(expected)
        #expect(try await eventually { healthy.inbox.messages.count == 1 })
        let big = [UInt8](repeating: 7, count: 256 << 10)
        for k in 1...200 {
            // 50 MB for each of the slow and the dead peer, far more than socket buffers hold.
            sender.send([append(from: 1, to: 2, index: UInt64(k), command: big), append(from: 1, to: 3, index: UInt64(k), command: big)])
            let m = messages(from: 1, to: 4, commits: UInt64(k)...UInt64(k))
            expected += m
            sender.send(m)
            // Keep the healthy peer's outbox below its capacity, so that it drops nothing.
            if k % 32 == 0 {
                let count = expected.count
                #expect(try await eventually { healthy.inbox.messages.count == count })
            }
        }
        #expect(try await eventually { healthy.inbox.messages.count == expected.count })
        #expect(healthy.inbox.messages == expected)
        // The slow and dead peers' outboxes stayed bounded (and the slow one really is stalled).
        #expect((1...64).contains(sender.pendingBatches(to: 2)))
        #expect(sender.pendingBatches(to: 3) <= 64)
    }
}

// MARK: - Helpers

/// What a listener delivered, in order.
private final class Inbox: Sendable {
    private let received = Mutex<[[Raft.Message]]>([])
    func append(_ batch: [Raft.Message]) { received.withLock { $0.append(batch) } }
    var batches: [[Raft.Message]] { received.withLock { $0 } }
    var messages: [Raft.Message] { batches.flatMap { $0 } }
}

private final class Logs: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}

/// A listener for node `localID` of `test-cluster`, accepting nodes 1 to 4, with what it delivered
/// and logged.
private struct Peer {
    let listener: NIOPeerListener
    let inbox: Inbox
    let logs: Logs

    static func listening(localID: NodeID, port: Int = 0, options: NIOPeerOptions = NIOPeerOptions()) async throws -> Peer {
        let inbox = Inbox()
        let logs = Logs()
        // A restarted listener may find its port still held for a moment: retry for a while.
        var attempts = 0
        while true {
            do {
                let listener = try await NIOPeerListener.bind(
                    host: "127.0.0.1", port: port, localID: localID, clusterID: NIOPeerTransportTests.cluster,
                    acceptedPeers: [1, 2, 3, 4], options: options, log: logs.append, deliver: inbox.append)
                return Peer(listener: listener, inbox: inbox, logs: logs)
            } catch {
                attempts += 1
                if attempts >= 50 { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    func closeAfterTest() {
        let listener = listener
        Task { await listener.close() }
    }
}

/// Polls `condition` every 10 ms for up to `seconds`; true as soon as it holds.
private func eventually(seconds: Double = 15, _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int(seconds * 1000)))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Heartbeats from `from` to `to`, one per commit index.
private func messages(from: NodeID, to: NodeID, commits: ClosedRange<UInt64>) -> [Raft.Message] {
    commits.map { Raft.Message(from: from, to: to, term: 1, payload: .heartbeat(Heartbeat(commit: $0, readRound: 0))) }
}

private func append(from: NodeID, to: NodeID, index: UInt64, command: [UInt8]) -> Raft.Message {
    Raft.Message(
        from: from, to: to, term: 1,
        payload: .append(AppendRequest(prevIndex: index - 1, prevTerm: index == 1 ? 0 : 1, entries: [Entry(term: 1, index: index, payload: .command(command))], commit: 0)))
}

extension Raft.Message {
    fileprivate var commitOfHeartbeat: UInt64 {
        if case .heartbeat(let h) = payload { return h.commit }
        return 0
    }
}

private func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

private func frame(type: UInt8, _ payload: [UInt8]) -> [UInt8] {
    be(UInt32(payload.count + 1)) + [type] + payload
}

private func hello(sender: NodeID, cluster: String = NIOPeerTransportTests.cluster, version: UInt16 = 1) -> [UInt8] {
    frame(type: 1, Array("FLTP".utf8) + be(version) + be(sender) + [UInt8(cluster.utf8.count)] + Array(cluster.utf8))
}

private func batchFrame(_ messages: [Raft.Message]) throws -> [UInt8] {
    frame(type: 2, try Flotilla_V1_RaftBatch(messages).serializedBytes())
}

private func invalidBatchFrame() -> [UInt8] {
    var batch = Flotilla_V1_RaftBatch(messages(from: 2, to: 1, commits: 1...1))
    batch.messages[0].to = 0
    return frame(type: 2, try! batch.serializedBytes())
}

/// A blocking TCP client socket to 127.0.0.1 whose reads give up after 10 s.
private final class RawConnection {
    private let fd: Int32

    init(port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        guard fd >= 0 else { throw SocketFailure(what: "socket") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw SocketFailure(what: "connect to port \(port)")
        }
    }

    deinit { Glibc.close(fd) }

    /// Writes all of `bytes`; false if the connection is gone.
    func write(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// True if the other end closes the connection (end of stream or reset) within 10 s; the
    /// listener never writes, so any byte read is a failure too.
    func waitForClose() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }
}

/// A listening socket whose connections are never accepted: the kernel completes their handshakes
/// and buffers what they send until its buffers are full, then the senders stall.
private final class StalledListener {
    private let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketFailure(what: "socket") }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok, listen(fd, 4) == 0 else {
            Glibc.close(fd)
            throw SocketFailure(what: "listen")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(fd) }
}

/// A port on 127.0.0.1 with nothing listening (a dead peer's).
private func unusedPort() throws -> Int {
    let listener = try StalledListener()
    listener.close()
    return listener.port
}

private func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

private struct SocketFailure: Error, CustomStringConvertible {
    var what: String
    var description: String { "\(what) failed: errno \(errno)" }
}
