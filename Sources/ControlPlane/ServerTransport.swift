public import GRPCNIOTransportHTTP2
import NIOCore
import NIOHPACK
import NIOHTTP2

/// The HTTP/2 server transport every node serves its gRPC services on: plaintext, with the
/// request size limit set deliberately (``RequestLimits/messageBytes``) and refused with a status
/// that names it.
public func makeServerTransport(host: String, port: Int) -> HTTP2ServerTransport.Posix {
    var config = HTTP2ServerTransport.Posix.Config.defaults
    config.rpc.maxRequestPayloadSize = RequestLimits.messageBytes
    config.channelDebuggingCallbacks.onAcceptHTTP2Stream = { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(OversizedRequestGuard(limit: RequestLimits.messageBytes), position: .first)
        }
    }
    return HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: port), transportSecurity: .plaintext, config: config)
}

/// Answers a request message longer than `limit` with `RESOURCE_EXHAUSTED` naming the limit.
///
/// grpc-swift-nio-transport (2.9) answers such a message with a bare HTTP/2 stream reset, which
/// clients report as an internal or unavailable error with no hint of the cause (and retry). This
/// handler sits first in each stream's pipeline, reads the 5-byte prefix of every gRPC message
/// (compressed flag, 4-byte big-endian length) as DATA frames arrive, and before the message is
/// buffered sends a trailers-only response (`grpc-status: 8`) and closes the stream. Everything
/// else passes through untouched.
final class OversizedRequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let limit: Int
    /// The bytes of the current message's prefix seen so far (up to 5).
    private var prefix: [UInt8] = []
    /// Bytes of the current message still to come after its prefix.
    private var remaining = 0
    private var refused = false

    init(limit: Int) {
        self.limit = limit
        prefix.reserveCapacity(5)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        let payload = unwrapInboundIn(data)
        if case .data(let frame) = payload, case .byteBuffer(let buffer) = frame.data, let length = oversizedLength(in: buffer) {
            refuse(context: context, length: length)
            return
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Once refused, the stream is answered: the service's own (late) answer is dropped.
        guard !refused else {
            promise?.succeed()
            return
        }
        context.write(data, promise: promise)
    }

    /// Follows the message boundaries through `buffer`; the length of a message over the limit.
    private func oversizedLength(in buffer: ByteBuffer) -> Int? {
        let view = buffer.readableBytesView
        var i = view.startIndex
        while i < view.endIndex {
            if remaining > 0 {
                let take = min(remaining, view.endIndex - i)
                remaining -= take
                i += take
                continue
            }
            prefix.append(view[i])
            i += 1
            if prefix.count == 5 {
                let length = Int(prefix[1]) << 24 | Int(prefix[2]) << 16 | Int(prefix[3]) << 8 | Int(prefix[4])
                prefix.removeAll(keepingCapacity: true)
                if length > limit { return length }
                remaining = length
            }
        }
        return nil
    }

    private func refuse(context: ChannelHandlerContext, length: Int) {
        refused = true
        let message = "request message of \(length) bytes is larger than this server's limit of \(limit) bytes (\(limit >> 20) MiB)"
        let headers: HPACKHeaders = [
            ":status": "200", "content-type": "application/grpc",
            "grpc-status": "8",  // RESOURCE_EXHAUSTED
            "grpc-message": percentEncoded(message),
        ]
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        // The client may still be sending the rest: the stream is reset behind the answer.
        context.close(promise: nil)
    }
}

/// `grpc-message` is percent-encoded: printable ASCII but '%' as is, every other byte as %XX.
private func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }
    return out
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
