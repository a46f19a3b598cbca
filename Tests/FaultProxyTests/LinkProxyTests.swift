import FaultProxy
import Foundation
import NIOCore
import NIOPosix
import Testing

/// An echo server on 127.0.0.1 (the proxy's target).
private func echoServer(_ group: any EventLoopGroup) async throws -> any Channel {
    try await ServerBootstrap(group: group)
        .childChannelInitializer { child in
            child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(Echo()) }
        }
        .bind(host: "127.0.0.1", port: 0).get()
}

private final class Echo: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.writeAndFlush(data, promise: nil) }
}

/// A blocking client socket with a receive timeout.
private final class Client {
    let fd: Int32
    init(port: Int, timeoutMs: Int = 3000) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard ok else { throw ProxyTestError.connect }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
    deinit { close(fd) }

    func send(_ text: String) { _ = text.utf8CString.withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count - 1, 0) } }

    /// Reads until `count` bytes arrived, the peer closed (returns what came), or the timeout.
    func receive(_ count: Int) -> (text: String, closed: Bool) {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while data.count < count {
            let n = recv(fd, &buffer, min(buffer.count, count - data.count), 0)
            if n == 0 { return (String(decoding: data, as: UTF8.self), true) }
            if n < 0 { break }
            data += buffer[0..<n]
        }
        return (String(decoding: data, as: UTF8.self), false)
    }
}

private enum ProxyTestError: Error { case connect }

@Suite("LinkProxy: cut, delay and heal real TCP connections")
struct LinkProxyTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test("a clear link forwards both ways, in order")
    func clear() async throws {
        let server = try await echoServer(group)
        let proxy = try await LinkProxy.start(name: "t", targetPort: server.localAddress!.port!, seed: 1, group: group)
        let client = try Client(port: proxy.port)
        let message = (0..<200).map { "m\($0);" }.joined()
        for chunk in message.split(separator: ";") { client.send(chunk + ";") }
        #expect(client.receive(message.utf8.count).text == message)
        #expect(proxy.counters.forwarded == 2 * UInt64(message.utf8.count))
        await proxy.stop()
        try await server.close()
    }

    @Test("a cut link drops bytes both ways; healing closes the starved connection and a new one passes")
    func cutAndHeal() async throws {
        let server = try await echoServer(group)
        let proxy = try await LinkProxy.start(name: "t", targetPort: server.localAddress!.port!, seed: 1, group: group)
        let client = try Client(port: proxy.port, timeoutMs: 300)
        client.send("before;")
        #expect(client.receive(7).text == "before;")
        proxy.set(.cutOff)
        client.send("during;")
        let during = client.receive(7)
        #expect(during.text.isEmpty && !during.closed)
        // A connection made while the link is cut is accepted and starved too.
        let late = try Client(port: proxy.port, timeoutMs: 300)
        late.send("late;")
        #expect(late.receive(5).text.isEmpty)
        #expect(proxy.counters.dropped == 12)
        proxy.set(.none)
        #expect(client.receive(1).closed)
        #expect(late.receive(1).closed)
        let after = try Client(port: proxy.port)
        after.send("after;")
        #expect(after.receive(6).text == "after;")
        await proxy.stop()
        try await server.close()
    }

    @Test("delay and jitter hold bytes back but keep their order")
    func delayKeepsOrder() async throws {
        let server = try await echoServer(group)
        let proxy = try await LinkProxy.start(name: "t", targetPort: server.localAddress!.port!, seed: 7, group: group)
        proxy.set(.latency(40, jitter: 30, loss: 0.2))
        let client = try Client(port: proxy.port)
        let sent = ContinuousClock.now
        let message = (0..<50).map { "x\($0);" }.joined()
        for chunk in message.split(separator: ";") {
            client.send(chunk + ";")
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(client.receive(message.utf8.count).text == message)
        // Both directions are delayed by at least delay − jitter: 2 × 10 ms at the very least.
        #expect(sent.duration(to: .now) >= .milliseconds(20))
        #expect(proxy.fault.description.contains("40"))
        await proxy.stop()
        try await server.close()
    }

    @Test("a link whose target is down closes the dialer's connection")
    func targetDown() async throws {
        let server = try await echoServer(group)
        let port = server.localAddress!.port!
        try await server.close()
        let proxy = try await LinkProxy.start(name: "t", targetPort: port, seed: 1, group: group)
        let client = try Client(port: proxy.port)
        client.send("x")
        #expect(client.receive(1).closed)
        await proxy.stop()
    }
}
