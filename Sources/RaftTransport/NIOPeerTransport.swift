import FlotillaProto
package import NIOCore
import NIOPosix
public import Raft
import Synchronization

/// Tuning shared by ``NIOPeerTransport`` (the sending side) and ``NIOPeerListener`` (the receiving
/// side). The defaults suit a LAN and a WAN alike.
public struct NIOPeerOptions: Sendable, Hashable {
    /// Batches kept per peer while its connection is slow or down; the oldest are dropped beyond.
    public var outboxCapacity = 1024
    /// The largest frame sent or accepted (a larger one closes the connection on receipt).
    public var maxFrameLength = PeerWire.defaultMaxFrameLength
    /// How long a dial may take before it counts as failed.
    public var connectTimeout: Duration = .seconds(2)
    /// Redial back-off: the first delay, doubled after each failure up to `maxBackoff`, each delay
    /// ±20 % at random. It restarts from `initialBackoff` after a connection that lasted a second.
    public var initialBackoff: Duration = .milliseconds(20)
    public var maxBackoff: Duration = .milliseconds(500)
    /// A sender writes a ping when it has written nothing for this long.
    public var pingInterval: Duration = .seconds(1)
    /// A receiver closes a connection on which no byte (not even a ping) arrived for this long.
    /// On Linux a sender also closes its connection when data it wrote stays unacknowledged for
    /// this long (`TCP_USER_TIMEOUT`): both ends notice a dead or unreachable peer, and the sender
    /// redials.
    public var deadPeerTimeout: Duration = .seconds(10)
    /// Write back-pressure: a connection stops taking batches from its outbox when more than
    /// `highWaterMark` bytes wait in its buffer, and resumes below `lowWaterMark`.
    public var lowWaterMark = 256 << 10
    public var highWaterMark = 1 << 20

    public init() {}
}

/// The production ``PeerTransport``: Raft batches as length-prefixed protobuf frames on one TCP
/// connection per peer, on SwiftNIO (the wire format is in `PeerWire.swift`; the measurements
/// that chose it are in docs/transport.md).
///
/// - `send` never blocks: it appends to the peer's bounded outbox (the oldest batch is dropped when
///   full) and returns. Messages to one peer keep their order.
/// - Each connection drains its outbox on its event loop, writing every waiting batch and flushing
///   once, and stops while the socket's buffer is above the high-water mark (back-pressure: the
///   outbox absorbs, and drops the oldest).
/// - A connection starts with a hello (protocol version, cluster id, this node's id); the peer's
///   ``NIOPeerListener`` closes a connection whose hello it refuses, and logs why.
/// - A lost connection is redialled with back-off (20 ms doubling to 500 ms, with jitter). Idle
///   connections carry a ping every second, and a dead peer is noticed by the listener's idle
///   timeout and, on Linux, `TCP_USER_TIMEOUT`.
/// - Each peer has its own outbox and connection, so a slow or dead peer never delays the others.
public final class NIOPeerTransport: PeerTransport {
    /// A peer: its id and the address of its ``NIOPeerListener`` (its `peer_port`).
    public struct Peer: Sendable, Hashable {
        public var id: NodeID
        public var host: String
        public var port: Int
        public init(id: NodeID, host: String, port: Int) {
            self.id = id
            self.host = host
            self.port = port
        }
    }

    private let peers: [Peer]
    private let outboxes: [NodeID: Outbox]
    private let hello: PeerHello
    private let options: NIOPeerOptions
    private let group: any EventLoopGroup
    private let log: @Sendable (String) -> Void

    /// - Parameters:
    ///   - localID: this node's id, sent in every hello.
    ///   - clusterID: the cluster's id (`cluster_id`), at most 255 UTF-8 bytes; peers refuse a
    ///     connection from another cluster.
    ///   - log: where to report what the sender cannot deliver at all (a message too large for a
    ///     frame); connection failures are not logged, since they are expected while a peer restarts.
    public init(
        localID: NodeID, clusterID: String, peers: [Peer], options: NIOPeerOptions = NIOPeerOptions(),
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.peers = peers
        self.options = options
        self.log = log
        hello = PeerHello(sender: localID, clusterID: clusterID)
        group = MultiThreadedEventLoopGroup.singleton
        outboxes = Dictionary(uniqueKeysWithValues: peers.map { ($0.id, Outbox(capacity: options.outboxCapacity)) })
    }

    public func send(_ messages: [Message]) {
        if messages.count == 1 {
            outboxes[messages[0].to]?.push(messages)
            return
        }
        var byPeer: [NodeID: [Message]] = [:]
        for m in messages { byPeer[m.to, default: []].append(m) }
        for (peer, batch) in byPeer { outboxes[peer]?.push(batch) }
    }

    /// Batches waiting for `peer` (for tests and diagnostics).
    public func pendingBatches(to peer: NodeID) -> Int { outboxes[peer]?.count ?? 0 }

    /// Keeps a connection to every peer until cancelled; returns once they are closed.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for peer in peers {
                let outbox = outboxes[peer.id]!
                group.addTask { await self.runConnection(to: peer, outbox: outbox) }
            }
        }
    }

    /// Dials `peer`, waits for the connection to end, backs off, and dials again, until cancelled.
    private func runConnection(to peer: Peer, outbox: Outbox) async {
        var backoff = options.initialBackoff
        while !Task.isCancelled {
            if let channel = try? await connect(to: peer, outbox: outbox) {
                let connected = ContinuousClock.now
                await withTaskCancellationHandler {
                    try? await channel.closeFuture.get()
                } onCancel: {
                    channel.close(promise: nil)
                }
                // A connection refused at once (its hello rejected) does not reset the back-off.
                if ContinuousClock.now - connected >= .seconds(1) { backoff = options.initialBackoff }
            }
            if Task.isCancelled { break }
            try? await Task.sleep(for: backoff * Double.random(in: 0.8...1.2))
            backoff = min(backoff * 2, options.maxBackoff)
        }
    }

    private func connect(to peer: Peer, outbox: Outbox) async throws -> any Channel {
        let hello = hello
        let options = options
        let log = log
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(options.connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: options.lowWaterMark, high: options.highWaterMark))
        #if os(Linux)
        // Close the connection when written data stays unacknowledged this long (a dead peer).
        bootstrap = bootstrap.channelOption(
            ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: tcpUserTimeout)),
            value: Int(options.deadPeerTimeout.milliseconds))
        #endif
        return try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        PeerSenderHandler(peer: peer.id, outbox: outbox, hello: hello, options: options, log: log))
                }
            }
            .connect(host: peer.host, port: peer.port).get()
    }
}

#if os(Linux)
/// `TCP_USER_TIMEOUT` of `<netinet/tcp.h>` (Linux 2.6.37 and later).
private let tcpUserTimeout: Int32 = 18
#endif

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// The sending end of one connection, on its event loop: writes the hello, then drains the
/// outbox whenever batches arrive and the channel is writable, and pings when idle.
private final class PeerSenderHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let peer: NodeID
    private let outbox: Outbox
    private let hello: PeerHello
    private let options: NIOPeerOptions
    private let log: @Sendable (String) -> Void
    private var context: ChannelHandlerContext?
    private var wake: (@Sendable () -> Void)?
    private var wroteSincePing = false
    private var pinger: RepeatedTask?

    init(peer: NodeID, outbox: Outbox, hello: PeerHello, options: NIOPeerOptions, log: @escaping @Sendable (String) -> Void) {
        self.peer = peer
        self.outbox = outbox
        self.hello = hello
        self.options = options
        self.log = log
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        // Called by `Outbox.push` on the sender's thread: hop to the event loop, then drain.
        wake = { bound.eventLoop.execute { bound.value.drain() } }
        pinger = context.eventLoop.scheduleRepeatedTask(
            initialDelay: TimeAmount(options.pingInterval), delay: TimeAmount(options.pingInterval)
        ) { _ in bound.value.pingIfIdle() }
        context.write(wrapOutboundOut(hello.frame()), promise: nil)
        drain()
        context.flush()  // the hello, if no batch was waiting
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        outbox.cancelWake(owner: ObjectIdentifier(self))
        pinger?.cancel()
        pinger = nil
        self.context = nil
        wake = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    /// The listener never writes; anything it might send is ignored.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Writes waiting batches while the channel is writable, then flushes once. Leaves a wake-up
    /// armed when the outbox is empty; none when back-pressure stopped it (writability resumes it).
    private func drain() {
        guard let context, let wake else { return }
        let owner = ObjectIdentifier(self)
        var wrote = false
        while context.channel.isWritable {
            guard let batch = outbox.take(orWake: wake, owner: owner) else { break }
            let (frames, dropped) = batchFrames(batch, limit: options.maxFrameLength, allocator: context.channel.allocator)
            if dropped > 0 {
                log("dropped \(dropped) Raft message(s) to node \(peer): larger than the \(options.maxFrameLength)-byte frame limit")
            }
            for frame in frames { context.write(wrapOutboundOut(frame), promise: nil) }
            wrote = wrote || !frames.isEmpty
        }
        if wrote {
            wroteSincePing = true
            context.flush()
        }
    }

    private func pingIfIdle() {
        guard let context else { return }
        if !wroteSincePing && context.channel.isWritable {
            context.writeAndFlush(wrapOutboundOut(pingFrame(allocator: context.channel.allocator)), promise: nil)
        }
        wroteSincePing = false
    }
}

/// The receiving side of ``NIOPeerTransport``: accepts peers' connections on the node's peer
/// port, checks each one's hello, decodes its frames and hands every batch to `deliver`.
///
/// A connection that breaks the protocol (a refused hello, an oversized frame, bytes that are not
/// a valid Raft batch, messages not from the hello's sender or not to this node, or nothing for
/// `deadPeerTimeout`) is closed and the reason logged, at most once a minute for the same reason
/// from the same host. The other connections go on.
public final class NIOPeerListener: Sendable {
    /// The address it listens on, with the port the kernel chose if it was bound to port 0.
    public let host: String
    public let port: Int

    private let server: any Channel
    private let connections: ConnectionSet

    private init(host: String, port: Int, server: any Channel, connections: ConnectionSet) {
        self.host = host
        self.port = port
        self.server = server
        self.connections = connections
    }

    /// Binds `host:port` and starts accepting.
    ///
    /// - Parameters:
    ///   - localID: this node's id: messages must be addressed to it, and a hello claiming it is
    ///     refused.
    ///   - clusterID: hellos must carry this cluster id.
    ///   - acceptedPeers: the node ids allowed to connect (the configuration's other nodes); nil
    ///     accepts any id but `localID`.
    ///   - deliver: called on an event-loop thread with each batch, in order per connection. It
    ///     should hand the messages over and return.
    /// - Throws: ``PeerListenerError/cannotBind(address:reason:)``.
    public static func bind(
        host: String, port: Int, localID: NodeID, clusterID: String, acceptedPeers: Set<NodeID>? = nil,
        options: NIOPeerOptions = NIOPeerOptions(), log: @escaping @Sendable (String) -> Void,
        deliver: @escaping @Sendable ([Message]) -> Void
    ) async throws(PeerListenerError) -> NIOPeerListener {
        let connections = ConnectionSet()
        let logLimiter = LogLimiter(log: log)
        let rules = PeerReceiverHandler.Rules(
            localID: localID, clusterID: clusterID, acceptedPeers: acceptedPeers, idleTimeout: options.deadPeerTimeout)
        let maxFrameLength = options.maxFrameLength
        let server: any Channel
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        connections.insert(channel)
                        try addPeerReceiveHandlers(
                            to: channel.pipeline.syncOperations, rules: rules, maxFrameLength: maxFrameLength, log: logLimiter,
                            deliver: deliver)
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            throw .cannotBind(address: "\(host):\(port)", reason: "\(error)")
        }
        return NIOPeerListener(host: host, port: server.localAddress?.port ?? port, server: server, connections: connections)
    }

    /// Waits until the task is cancelled, then closes the listener and its connections.
    public func run() async {
        await withTaskCancellationHandler {
            try? await server.closeFuture.get()
        } onCancel: {
            server.close(promise: nil)
        }
        await close()
    }

    /// Stops accepting and closes every accepted connection (senders will redial).
    public func close() async {
        try? await server.close()
        for channel in connections.closeAll() { try? await channel.closeFuture.get() }
    }
}

/// The handlers that receive one peer connection: idle detection, framing, hello and batch checks.
/// The listener and the peer-frame fuzz target (`FuzzTargets`) both build exactly this pipeline.
package func addPeerReceiveHandlers(
    to pipeline: ChannelPipeline.SynchronousOperations, localID: NodeID, clusterID: String, acceptedPeers: Set<NodeID>?,
    options: NIOPeerOptions, log: @escaping @Sendable (String) -> Void, deliver: @escaping @Sendable ([Message]) -> Void
) throws {
    let rules = PeerReceiverHandler.Rules(
        localID: localID, clusterID: clusterID, acceptedPeers: acceptedPeers, idleTimeout: options.deadPeerTimeout)
    try addPeerReceiveHandlers(to: pipeline, rules: rules, maxFrameLength: options.maxFrameLength, log: LogLimiter(log: log), deliver: deliver)
}

private func addPeerReceiveHandlers(
    to pipeline: ChannelPipeline.SynchronousOperations, rules: PeerReceiverHandler.Rules, maxFrameLength: Int, log: LogLimiter,
    deliver: @escaping @Sendable ([Message]) -> Void
) throws {
    // Any bytes count as life, so a large frame arriving slowly is not cut off.
    try pipeline.addHandler(IdleStateHandler(readTimeout: TimeAmount(rules.idleTimeout)))
    try pipeline.addHandler(ByteToMessageHandler(PeerFrameDecoder(maxFrameLength: maxFrameLength)))
    try pipeline.addHandler(PeerReceiverHandler(rules: rules, log: log, deliver: deliver))
}

/// Why a ``NIOPeerListener`` could not start.
public enum PeerListenerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The address is not one of this machine's, or the port is in use.
    case cannotBind(address: String, reason: String)

    public var description: String {
        switch self {
        case .cannotBind(let address, let reason):
            return "cannot listen for peers on \(address): \(reason); is it this machine's address, and is the port free?"
        }
    }
}

/// The accepted connections, so that closing the listener closes them too.
private final class ConnectionSet: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var closed = false
    }
    private let state = Mutex(State())

    func insert(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        let refused = state.withLock { s -> Bool in
            if s.closed { return true }
            s.channels[key] = channel
            return false
        }
        if refused {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in _ = state.withLock { $0.channels.removeValue(forKey: key) } }
    }

    /// Closes every connection; later ones are closed as they arrive.
    func closeAll() -> [any Channel] {
        let all = state.withLock { s in
            s.closed = true
            return Array(s.channels.values)
        }
        for c in all { c.close(promise: nil) }
        return all
    }
}

/// Logs a refused connection's reason, but the same reason from the same host at most once a
/// minute (a misconfigured peer redials twice a second), with a count of those left out.
private final class LogLimiter: Sendable {
    private let log: @Sendable (String) -> Void
    private let last = Mutex<[String: (at: ContinuousClock.Instant, suppressed: Int)]>([:])

    init(log: @escaping @Sendable (String) -> Void) { self.log = log }

    func report(_ error: PeerProtocolError, from remote: String, host: String) {
        let key = "\(host) \(error)"
        let now = ContinuousClock.now
        let suppressed = last.withLock { table -> Int? in
            if let entry = table[key], now - entry.at < .seconds(60) {
                table[key]!.suppressed += 1
                return nil
            }
            defer { table[key] = (now, 0) }
            return table[key]?.suppressed ?? 0
        }
        guard let suppressed else { return }
        log("closed the peer connection from \(remote): \(error)" + (suppressed > 0 ? " (\(suppressed) more like it in the last minute)" : ""))
    }
}

/// The receiving end of one connection, on its event loop.
private final class PeerReceiverHandler: ChannelInboundHandler {
    typealias InboundIn = PeerFrame

    struct Rules: Sendable {
        var localID: NodeID
        var clusterID: String
        var acceptedPeers: Set<NodeID>?
        var idleTimeout: Duration
    }

    private let rules: Rules
    private let log: LogLimiter
    private let deliver: @Sendable ([Message]) -> Void
    private var sender: NodeID?
    private var failed = false

    init(rules: Rules, log: LogLimiter, deliver: @escaping @Sendable ([Message]) -> Void) {
        self.rules = rules
        self.log = log
        self.deliver = deliver
    }

    /// The `IdleStateHandler` in front: no bytes for `idleTimeout`.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            fail(context, .idle(rules.idleTimeout))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let frame = Self.unwrapInboundIn(data)
        do throws(PeerProtocolError) {
            try handle(frame)
        } catch {
            fail(context, error)
        }
    }

    private func handle(_ frame: PeerFrame) throws(PeerProtocolError) {
        let type = PeerWire.FrameType(rawValue: frame.type)
        guard let sender else {
            guard type == .hello else { throw .notAPeer("the first frame is of type \(frame.type), not a hello") }
            let hello = try PeerHello(payload: frame.payload)
            guard hello.clusterID == rules.clusterID else { throw .wrongCluster(hello.clusterID, expected: rules.clusterID) }
            guard hello.sender != rules.localID else {
                throw .unexpectedSender(hello.sender, reason: "that is this node's own id (two nodes configured with one id?)")
            }
            if let accepted = rules.acceptedPeers, !accepted.contains(hello.sender) {
                throw .unexpectedSender(hello.sender, reason: "not a node of this cluster's configuration")
            }
            self.sender = hello.sender
            return
        }
        switch type {
        case .batch:
            let messages: [Message]
            do {
                messages = try [Message](Flotilla_V1_RaftBatch(serializedBytes: frame.payload.readableBytesSpan))
            } catch let error as WireError {
                throw .malformedBatch(error.description)
            } catch {
                throw .malformedBatch("not a RaftBatch protobuf (\(error))")
            }
            for (i, m) in messages.enumerated() where m.from != sender || m.to != rules.localID {
                throw .misaddressed("messages[\(i)] is from \(m.from) to \(m.to) on node \(sender)'s connection to node \(rules.localID)")
            }
            if !messages.isEmpty { deliver(messages) }
        case .ping:
            guard frame.payload.readableBytes == 0 else { throw .malformedFrame("a ping with \(frame.payload.readableBytes) bytes of payload") }
        case .hello:
            throw .malformedFrame("a second hello")
        case nil:
            throw .malformedFrame("unknown frame type \(frame.type)")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? PeerProtocolError {
            fail(context, error)
        } else if !(error is NIOCore.IOError) {
            fail(context, .malformedFrame("\(error)"))
        } else {
            context.close(promise: nil)
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ error: PeerProtocolError) {
        guard !failed else { return }
        failed = true
        let remote = context.channel.remoteAddress
        log.report(error, from: remote.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?", host: remote?.ipAddress ?? "?")
        context.close(promise: nil)
    }
}
