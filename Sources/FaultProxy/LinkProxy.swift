public import NIOCore
import NIOPosix
import Synchronization

/// What a link does to the bytes that cross it.
public struct LinkFault: Sendable, Hashable, CustomStringConvertible {
    /// Nothing crosses (both directions of every connection on the link): bytes are read and
    /// discarded, as a firewall DROP would, and new connections are accepted and then starved.
    /// When the cut heals, the link's connections are closed so that the peer reconnects cleanly
    /// (a stream cut mid-frame cannot be resumed).
    public var cut: Bool
    /// One-way delay added to every chunk of bytes, in milliseconds.
    public var delayMs: Double
    /// Each chunk's delay varies uniformly by ± this much (order is kept: a chunk is never
    /// delivered before the one read before it, as on a TCP stream).
    public var jitterMs: Double
    /// The share of chunks (0...1) that are "lost": TCP retransmits a lost segment, so the
    /// application sees it late, not missing. A lost chunk is delayed by `retransmitMs` more.
    public var loss: Double
    public var retransmitMs: Double

    public init(cut: Bool = false, delayMs: Double = 0, jitterMs: Double = 0, loss: Double = 0, retransmitMs: Double = 200) {
        self.cut = cut
        self.delayMs = delayMs
        self.jitterMs = jitterMs
        self.loss = loss
        self.retransmitMs = retransmitMs
    }

    /// Bytes pass at once.
    public static let none = LinkFault()
    public static let cutOff = LinkFault(cut: true)

    public static func latency(_ ms: Double, jitter: Double = 0, loss: Double = 0) -> LinkFault {
        LinkFault(delayMs: ms, jitterMs: jitter, loss: loss)
    }

    var delays: Bool { delayMs > 0 || jitterMs > 0 || loss > 0 }

    public var description: String {
        if cut { return "cut" }
        if !delays { return "clear" }
        var s = "\(delayMs) ± \(jitterMs) ms"
        if loss > 0 { s += ", \(loss * 100) % late by \(retransmitMs) ms" }
        return s
    }
}

/// A TCP proxy for one directed link (e.g. node 1's connections to node 2's peer port) on
/// 127.0.0.1, whose ``LinkFault`` can be changed while connections run: the chaos suite's way of
/// cutting, delaying and slowing real sockets between real processes, since this kernel has no
/// `netem`. The nodes are told to dial the proxy's port instead of the peer's.
///
/// Delays are scheduled on the connection's event loop; jitter is drawn from a seeded generator,
/// so a link's sequence of delays is repeatable (the moments bytes arrive are not).
public final class LinkProxy: Sendable {
    public let name: String
    public let targetHost: String
    /// The port to dial instead of the target's.
    public let port: Int
    private let channel: any Channel
    private let state: Mutex<State>

    struct State {
        var targetPort: Int
        var fault = LinkFault.none
        var random: UInt64
        var connections: [ObjectIdentifier: ConnectionRef] = [:]
        var bytesForwarded: UInt64 = 0
        var bytesDropped: UInt64 = 0
    }

    /// Starts listening on an ephemeral port of 127.0.0.1; connections are forwarded to
    /// `targetHost:targetPort`.
    public static func start(
        name: String, targetHost: String = "127.0.0.1", targetPort: Int, seed: UInt64, group: any EventLoopGroup
    ) async throws -> LinkProxy {
        let box = ProxyBox()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    guard let proxy = box.proxy.withLock({ $0 }) else { throw ChannelError.ioOnClosedChannel }
                    try child.pipeline.syncOperations.addHandler(ProxyConnection(proxy: proxy, inbound: child))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw ChannelError.unknownLocalAddress }
        let proxy = LinkProxy(name: name, targetHost: targetHost, targetPort: targetPort, port: port, channel: channel, seed: seed)
        box.proxy.withLock { $0 = proxy }
        return proxy
    }

    private init(name: String, targetHost: String, targetPort: Int, port: Int, channel: any Channel, seed: UInt64) {
        self.name = name
        self.targetHost = targetHost
        self.port = port
        self.channel = channel
        state = Mutex(State(targetPort: targetPort, random: seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed))
    }

    /// The port connections are forwarded to.
    public var targetPort: Int { state.withLock { $0.targetPort } }

    /// Forwards new connections to `port` from now on (a proxy can be started before its target
    /// exists, so that its own port is taken first).
    public func retarget(port: Int) { state.withLock { $0.targetPort = port } }

    public var fault: LinkFault { state.withLock { $0.fault } }

    /// Bytes delivered and bytes discarded by cuts, so far.
    public var counters: (forwarded: UInt64, dropped: UInt64) { state.withLock { ($0.bytesForwarded, $0.bytesDropped) } }

    /// Changes what the link does from now on. Healing a cut closes the connections it starved.
    public func set(_ fault: LinkFault) {
        let starved: [ConnectionRef] = state.withLock { s in
            let healing = s.fault.cut && !fault.cut
            s.fault = fault
            return healing ? Array(s.connections.values) : []
        }
        for c in starved { c.close() }
    }

    /// Stops listening and closes every connection.
    public func stop() async {
        try? await channel.close()
        let all = state.withLock { s in
            defer { s.connections = [:] }
            return Array(s.connections.values)
        }
        for c in all { c.close() }
    }

    // MARK: Used by connections

    func register(_ c: ConnectionRef) { state.withLock { $0.connections[c.id] = c } }
    func unregister(_ id: ObjectIdentifier) { state.withLock { $0.connections[id] = nil } }

    /// For a chunk of `bytes`: nil if the link is cut (the chunk is discarded), else its delay in ms.
    func admit(bytes: Int) -> Double? {
        state.withLock { s in
            let f = s.fault
            if f.cut {
                s.bytesDropped += UInt64(bytes)
                return nil
            }
            s.bytesForwarded += UInt64(bytes)
            guard f.delays else { return 0 }
            var delay = f.delayMs
            if f.jitterMs > 0 { delay += (Self.unit(&s.random) * 2 - 1) * f.jitterMs }
            if f.loss > 0 && Self.unit(&s.random) < f.loss { delay += f.retransmitMs }
            return max(0, delay)
        }
    }

    /// SplitMix64 → [0, 1).
    private static func unit(_ x: inout UInt64) -> Double {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}

/// Holds the proxy for the accept callback, which exists before the proxy does (a connection
/// arriving in between finds nil and is refused).
private final class ProxyBox: Sendable {
    let proxy = Mutex<LinkProxy?>(nil)
}
