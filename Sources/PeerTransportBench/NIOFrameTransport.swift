import FlotillaProto
import NIOCore
import NIOPosix
import Raft
import RaftTransport
import Synchronization

// The challenger: Raft batches as length-prefixed protobuf frames over plain TCP on SwiftNIO.
//
// Frame = 4-byte big-endian length + the serialized `Flotilla_V1_RaftBatch`. One TCP connection per
// direction (each node dials the other's listener), like the gRPC client streams. Same semantics as
// `GRPCPeerTransport`: `send` never blocks, a bounded outbox drops its oldest batch when full, order
// is kept per peer, a broken connection is redialled after a back-off. It is a fair minimal
// implementation, not a production one: no keepalive, no TLS, no write back-pressure, no
// connection-level flow control beyond TCP's.

/// Frames larger than this are refused (the connection is closed): a peer never sends one.
let maxFrameLength = 64 << 20

struct FrameTooLarge: Error {
    var length: Int
}

/// Splits the byte stream into frames (without their length prefix).
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameLength else { throw FrameTooLarge(length: Int(length)) }
        guard let frame = buffer.getSlice(at: buffer.readerIndex + 4, length: Int(length)) else {
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: 4 + Int(length))
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }
}

/// Decodes each frame into Raft messages (validated by the production codec) and delivers them.
/// A malformed frame closes the connection, as the gRPC service fails the stream.
final class BatchReceiver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let deliver: @Sendable ([Message]) -> Void

    init(deliver: @escaping @Sendable ([Message]) -> Void) { self.deliver = deliver }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        do {
            let batch = try Flotilla_V1_RaftBatch(serializedBytes: frame.readableBytesSpan)
            deliver(try [Message](batch))
        } catch {
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Encodes `messages` as one frame; nil if protobuf refuses (it cannot for proto3 without
/// required fields below 2 GB).
func encodeFrame(_ messages: [Message]) -> ByteBuffer? {
    guard let bytes: [UInt8] = try? Flotilla_V1_RaftBatch(messages).serializedBytes(),
        bytes.count <= maxFrameLength
    else { return nil }
    var buffer = ByteBufferAllocator().buffer(capacity: 4 + bytes.count)
    buffer.writeInteger(UInt32(bytes.count))
    buffer.writeBytes(bytes)
    return buffer
}

/// The sending side to one peer: a bounded outbox of encoded frames, drained on the connection's
/// event loop — every frame waiting is written, then one flush (one `writev`) for all of them.
final class NIOFramePeerTransport: PeerTransport {
    private struct State {
        var pending: [ByteBuffer] = []
        var channel: (any Channel)?
        var flushScheduled = false
    }
    private let state = Mutex(State())
    private let peer: NodeID
    private let host: String
    private let port: Int
    private let capacity: Int
    private let group: any EventLoopGroup

    init(peer: NodeID, host: String, port: Int, group: any EventLoopGroup, outboxCapacity: Int = 1024) {
        self.peer = peer
        self.host = host
        self.port = port
        self.group = group
        capacity = outboxCapacity
    }

    func send(_ messages: [Message]) {
        let mine = messages.allSatisfy({ $0.to == peer }) ? messages : messages.filter { $0.to == peer }
        guard !mine.isEmpty, let frame = encodeFrame(mine) else { return }
        let channel = state.withLock { s -> (any Channel)? in
            s.pending.append(frame)
            if s.pending.count > capacity { s.pending.removeFirst() }
            guard let channel = s.channel, !s.flushScheduled else { return nil }
            s.flushScheduled = true
            return channel
        }
        if let channel { channel.eventLoop.execute { self.drain(into: channel) } }
    }

    /// On `channel`'s event loop: writes every waiting frame, then flushes once.
    private func drain(into channel: any Channel) {
        let frames = state.withLock { s -> [ByteBuffer] in
            s.flushScheduled = false
            defer { s.pending = [] }
            return s.pending
        }
        for frame in frames { channel.write(frame, promise: nil) }
        channel.flush()
    }

    /// Keeps a connection to the peer until cancelled, redialling after a back-off.
    func run() async {
        var backoff: Duration = .milliseconds(10)
        while !Task.isCancelled {
            do {
                let channel = try await ClientBootstrap(group: group)
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .connect(host: host, port: port).get()
                backoff = .milliseconds(10)
                let drainNow = state.withLock { s -> Bool in
                    s.channel = channel
                    guard !s.pending.isEmpty, !s.flushScheduled else { return false }
                    s.flushScheduled = true
                    return true
                }
                if drainNow { channel.eventLoop.execute { self.drain(into: channel) } }
                await withTaskCancellationHandler {
                    try? await channel.closeFuture.get()
                } onCancel: {
                    channel.close(promise: nil)
                }
                state.withLock {
                    $0.channel = nil
                    $0.flushScheduled = false
                }
            } catch {
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(500))
            }
        }
    }
}

/// Listener + sender on the shared NIO event loops (the same singleton group gRPC's Posix
/// transports use by default).
final class NIOBenchTransport: BenchTransport {
    private struct State {
        var server: (any Channel)?
        var tasks: [Task<Void, Never>] = []
    }
    private let state = Mutex(State())
    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    func listen(deliver: @escaping @Sendable ([Message]) -> Void) async throws -> Int {
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(BatchReceiver(deliver: deliver))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        state.withLock { $0.server = server }
        guard let port = server.localAddress?.port else { throw BenchError("the NIO listener has no port") }
        return port
    }

    func connect(to peer: NodeID, port: Int) -> any PeerTransport {
        let transport = NIOFramePeerTransport(peer: peer, host: "127.0.0.1", port: port, group: group)
        let task = Task { await transport.run() }
        state.withLock { $0.tasks.append(task) }
        return transport
    }

    func shutdown() async {
        let (server, tasks) = state.withLock { s in
            defer { s = State() }
            return (s.server, s.tasks)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        try? await server?.close()
    }
}
