import NIOCore
import NIOPosix

/// What the proxy keeps of a connection to close it from any thread.
struct ConnectionRef: Sendable {
    let id: ObjectIdentifier
    let close: @Sendable () -> Void
}

/// Bytes waiting for their delivery time, in the order they were read.
private struct DelayQueue {
    var items: [(at: NIODeadline, bytes: ByteBuffer)] = []
    var last = NIODeadline.uptimeNanoseconds(0)
    var timer: Scheduled<Void>?

    mutating func push(_ bytes: ByteBuffer, delayMs: Double) {
        let at = max(last, .now() + .nanoseconds(Int64(delayMs * 1_000_000)))
        last = at
        items.append((at, bytes))
    }
}

/// One proxied connection: the dialer's side (`inbound`) and the target's (`outbound`), both on
/// the inbound channel's event loop, which is the only thread that touches this object.
final class ProxyConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let proxy: LinkProxy
    private let inbound: any Channel
    private var outbound: (any Channel)?
    private var connecting = false
    private var toTarget = DelayQueue()
    private var toSource = DelayQueue()
    private var closing = false

    init(proxy: LinkProxy, inbound: any Channel) {
        self.proxy = proxy
        self.inbound = inbound
    }

    private var id: ObjectIdentifier { ObjectIdentifier(self) }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        proxy.register(ConnectionRef(id: id, close: { loop.execute { bound.value.closeBoth() } }))
    }

    func channelActive(context: ChannelHandlerContext) {
        // A cut link starves new connections: the target is dialled when the first bytes may pass.
        if !proxy.fault.cut { connect() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let delay = proxy.admit(bytes: bytes.readableBytes) else { return }
        if outbound == nil { connect() }
        toTarget.push(bytes, delayMs: delay)
        pumpToTarget()
    }

    func channelInactive(context: ChannelHandlerContext) {
        proxy.unregister(id)
        closing = true
        closeOutboundWhenDrained()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: The target's side

    private func connect() {
        guard outbound == nil, !connecting, !closing else { return }
        connecting = true
        let bound = NIOLoopBound(self, eventLoop: inbound.eventLoop)
        ClientBootstrap(group: inbound.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TargetHandler(connection: bound))
                }
            }
            .connect(host: proxy.targetHost, port: proxy.targetPort)
            .whenComplete { result in
                let me = bound.value
                me.connecting = false
                switch result {
                case .success(let channel):
                    if me.closing {
                        channel.close(promise: nil)
                    } else {
                        me.outbound = channel
                        me.pumpToTarget()
                    }
                case .failure:
                    // The target is down: so is the link, as a refused connection would be.
                    me.inbound.close(promise: nil)
                }
            }
    }

    /// Bytes from the target, travelling back to the dialer.
    fileprivate func fromTarget(_ bytes: ByteBuffer) {
        guard let delay = proxy.admit(bytes: bytes.readableBytes) else { return }
        toSource.push(bytes, delayMs: delay)
        pumpToSource()
    }

    fileprivate func targetClosed() {
        outbound = nil
        closing = true
        // Deliver what was in flight, then close the dialer's side.
        if toSource.items.isEmpty { inbound.close(promise: nil) }
    }

    // MARK: Delivery

    private enum Direction { case toTarget, toSource }

    private func pumpToTarget() {
        guard let outbound else { return }
        if pump(.toTarget, into: outbound) { closeOutboundWhenDrained() }
    }

    private func pumpToSource() {
        if pump(.toSource, into: inbound) && outbound == nil && closing {
            inbound.close(promise: nil)
        }
    }

    /// Takes the chunks that are due out of a queue (no access to the queue outlives this).
    private func takeDue(_ direction: Direction, now: NIODeadline) -> (due: [ByteBuffer], next: NIODeadline?, arm: Bool) {
        func take(_ q: inout DelayQueue) -> (due: [ByteBuffer], next: NIODeadline?, arm: Bool) {
            let n = q.items.prefix { $0.at <= now }.count
            let due = q.items.prefix(n).map(\.bytes)
            q.items.removeFirst(n)
            let next = q.items.first?.at
            let arm = next != nil && q.timer == nil
            return (due, next, arm)
        }
        switch direction {
        case .toTarget: return take(&toTarget)
        case .toSource: return take(&toSource)
        }
    }

    /// Writes every chunk that is due; arms a timer for the next one. True when nothing waits.
    /// Writing can close channels and re-enter this object, so the queues are not held meanwhile.
    private func pump(_ direction: Direction, into channel: any Channel) -> Bool {
        let (due, next, arm) = takeDue(direction, now: .now())
        for bytes in due { channel.write(bytes, promise: nil) }
        if !due.isEmpty { channel.flush() }
        if let next, arm {
            let bound = NIOLoopBound(self, eventLoop: inbound.eventLoop)
            let timer = inbound.eventLoop.scheduleTask(deadline: next) {
                let me = bound.value
                switch direction {
                case .toTarget:
                    me.toTarget.timer = nil
                    me.pumpToTarget()
                case .toSource:
                    me.toSource.timer = nil
                    me.pumpToSource()
                }
            }
            switch direction {
            case .toTarget: toTarget.timer = timer
            case .toSource: toSource.timer = timer
            }
        }
        return next == nil
    }

    private func closeOutboundWhenDrained() {
        guard closing, toTarget.items.isEmpty else { return }
        outbound?.close(promise: nil)
        outbound = nil
    }

    fileprivate func closeBoth() {
        closing = true
        toTarget.items.removeAll()
        toSource.items.removeAll()
        outbound?.close(promise: nil)
        outbound = nil
        inbound.close(promise: nil)
    }
}

/// The target side's reads and closure, handed to the connection (same event loop).
private final class TargetHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let connection: NIOLoopBound<ProxyConnection>

    init(connection: NIOLoopBound<ProxyConnection>) { self.connection = connection }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.value.fromTarget(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.value.targetClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
