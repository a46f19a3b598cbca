// The peer wire protocol of `NIOPeerTransport` and `NIOPeerListener`: length-prefixed frames on one
// TCP connection per direction (docs/transport.md).
//
//   frame = length: UInt32 big-endian (bytes after this field, ≥ 1) · type: UInt8 · payload
//   type 1, hello: magic "FLTP" · version: UInt16 BE · sender node id: UInt64 BE
//                  · cluster id length: UInt8 · cluster id (UTF-8)
//   type 2, batch: a serialized `flotilla.v1.RaftBatch` (Protos/flotilla.proto)
//   type 3, ping:  empty; sent when a connection has been idle, so the receiver can tell a quiet
//                  peer from a dead one
//
// The dialling node sends a hello first, then batches and pings; the listening node never writes.
// Everything after the version field may change in a later version: a receiver checks the magic
// and the version before it reads the rest.

import FlotillaProto
import NIOCore
public import Raft

/// Constants of the peer wire protocol.
public enum PeerWire {
    /// The protocol version this build speaks (and the only one it accepts).
    public static let version: UInt16 = 1
    /// The first bytes of a hello's payload.
    public static let magic: [UInt8] = Array("FLTP".utf8)
    /// The largest frame a listener accepts by default: far above the largest Raft batch (appends
    /// and snapshot chunks are 1 MiB by default; a batch carries one `Ready`'s messages to one peer).
    public static let defaultMaxFrameLength = 64 << 20
    /// A connection whose first frame announces more than this is not a peer (a hello is ~30 bytes).
    static let maxHelloLength = 1024

    enum FrameType: UInt8 {
        case hello = 1
        case batch = 2
        case ping = 3
    }
}

/// Why a peer connection was refused or closed by its receiver. The listener logs it with the
/// remote address.
public enum PeerProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A frame announced more bytes than the limit; the connection is closed before reading them.
    case frameTooLarge(length: Int, limit: Int)
    /// The first bytes are not a hello (e.g. a gRPC client dialled the peer port).
    case notAPeer(String)
    /// A frame of length 0, an unknown type, a ping with a payload, or a second hello.
    case malformedFrame(String)
    /// The hello is cut short or its cluster id is not UTF-8.
    case malformedHello(String)
    /// The sender speaks another protocol version.
    case unsupportedVersion(UInt16, supported: UInt16)
    /// The sender belongs to another cluster (its `cluster_id` differs).
    case wrongCluster(String, expected: String)
    /// The hello names a node id this listener does not accept (not in the configuration, or its
    /// own id).
    case unexpectedSender(NodeID, reason: String)
    /// A batch does not decode, or fails the codec's validation.
    case malformedBatch(String)
    /// A batch holds a message not from the hello's sender, or not to this node.
    case misaddressed(String)
    /// Not a byte (not even a ping) arrived for this long.
    case idle(Duration)

    public var description: String {
        switch self {
        case .frameTooLarge(let length, let limit): return "a frame of \(length) bytes exceeds the limit of \(limit) bytes"
        case .notAPeer(let why): return "not a Flotilla peer: \(why)"
        case .malformedFrame(let why): return "malformed frame: \(why)"
        case .malformedHello(let why): return "malformed hello: \(why)"
        case .unsupportedVersion(let got, let supported):
            return "peer protocol version \(got) is not supported (this node speaks version \(supported)); run the same flotilla release on every node"
        case .wrongCluster(let got, let expected):
            return "the sender belongs to cluster '\(got)', this node to '\(expected)' (cluster_id in cluster.yaml); is an address or peer_port in its configuration wrong?"
        case .unexpectedSender(let id, let reason): return "hello from node \(id): \(reason)"
        case .malformedBatch(let why): return "malformed Raft batch: \(why)"
        case .misaddressed(let why): return "misaddressed message: \(why)"
        case .idle(let d): return "nothing received for \(d.milliseconds) ms: the peer is presumed dead"
        }
    }
}

/// What a hello says about its sender.
struct PeerHello: Sendable, Hashable {
    var version: UInt16 = PeerWire.version
    var sender: NodeID
    var clusterID: String

    /// The whole frame, length prefix included. `clusterID` must be at most 255 UTF-8 bytes.
    func frame() -> ByteBuffer {
        let id = Array(clusterID.utf8.prefix(255))
        var buffer = ByteBufferAllocator().buffer(capacity: 5 + 4 + 2 + 8 + 1 + id.count)
        buffer.writeInteger(UInt32(1 + 4 + 2 + 8 + 1 + id.count))
        buffer.writeInteger(PeerWire.FrameType.hello.rawValue)
        buffer.writeBytes(PeerWire.magic)
        buffer.writeInteger(version)
        buffer.writeInteger(sender)
        buffer.writeInteger(UInt8(id.count))
        buffer.writeBytes(id)
        return buffer
    }

    /// Parses a hello's payload: magic and version first, the rest only for a known version.
    init(payload: ByteBuffer) throws(PeerProtocolError) {
        var p = payload
        guard p.readBytes(length: 4) == PeerWire.magic else { throw .notAPeer("the hello lacks the magic bytes") }
        guard let version = p.readInteger(as: UInt16.self) else { throw .malformedHello("no version") }
        guard version == PeerWire.version else { throw .unsupportedVersion(version, supported: PeerWire.version) }
        guard let sender = p.readInteger(as: UInt64.self), let length = p.readInteger(as: UInt8.self),
            let bytes = p.readBytes(length: Int(length))
        else { throw .malformedHello("cut short") }
        guard p.readableBytes == 0 else { throw .malformedHello("\(p.readableBytes) bytes after the cluster id") }
        guard let clusterID = String(validating: bytes, as: UTF8.self) else { throw .malformedHello("the cluster id is not UTF-8") }
        self.version = version
        self.sender = sender
        self.clusterID = clusterID
    }

    init(sender: NodeID, clusterID: String) {
        self.sender = sender
        self.clusterID = clusterID
    }
}

/// One decoded frame, without its length prefix.
struct PeerFrame {
    var type: UInt8
    var payload: ByteBuffer
}

/// The frames of `messages`, length prefixes included: one frame for all of them if it fits
/// `limit`, otherwise one per message; a message that alone exceeds `limit` is left out and
/// counted in `dropped` (Raft's default sizes never come near it).
func batchFrames(_ messages: [Message], limit: Int, allocator: ByteBufferAllocator) -> (frames: [ByteBuffer], dropped: Int) {
    func frame(_ messages: [Message]) -> ByteBuffer? {
        // Encoding a proto3 message without required fields cannot fail.
        guard let bytes: [UInt8] = try? Flotilla_V1_RaftBatch(messages).serializedBytes(), bytes.count + 1 <= limit else {
            return nil
        }
        var buffer = allocator.buffer(capacity: 5 + bytes.count)
        buffer.writeInteger(UInt32(1 + bytes.count))
        buffer.writeInteger(PeerWire.FrameType.batch.rawValue)
        buffer.writeBytes(bytes)
        return buffer
    }
    if let whole = frame(messages) { return ([whole], 0) }
    var frames: [ByteBuffer] = []
    var dropped = 0
    for m in messages {
        if let f = frame([m]) { frames.append(f) } else { dropped += 1 }
    }
    return (frames, dropped)
}

/// A ping frame, length prefix included.
func pingFrame(allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 5)
    buffer.writeInteger(UInt32(1))
    buffer.writeInteger(PeerWire.FrameType.ping.rawValue)
    return buffer
}

/// Splits the byte stream into frames, however TCP cut or merged them. A length above the limit
/// (or, for the first frame, above the size of any hello) closes the connection at once, before
/// its bytes are buffered.
struct PeerFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = PeerFrame
    let maxFrameLength: Int
    private var sawFirstFrame = false

    init(maxFrameLength: Int) { self.maxFrameLength = maxFrameLength }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self).map(Int.init) else { return .needMoreData }
        if !sawFirstFrame && length > PeerWire.maxHelloLength {
            throw PeerProtocolError.notAPeer("the first frame announces \(length) bytes, more than any hello (a client dialling the peer port?)")
        }
        guard length <= maxFrameLength else { throw PeerProtocolError.frameTooLarge(length: length, limit: maxFrameLength) }
        guard length >= 1 else { throw PeerProtocolError.malformedFrame("a frame of length 0") }
        guard buffer.readableBytes >= 4 + length else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let type = buffer.readInteger(as: UInt8.self)!
        let payload = buffer.readSlice(length: length - 1)!
        sawFirstFrame = true
        context.fireChannelRead(Self.wrapInboundOut(PeerFrame(type: type, payload: payload)))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
