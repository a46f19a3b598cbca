public import GRPCNIOTransportHTTP2

/// The HTTP/2 client transport every Flotilla client uses: names or IP addresses (resolved by DNS),
/// plaintext, and connection back-off tuned for a cluster (a restarted peer is reached again
/// within half a second, not gRPC's default of up to two minutes).
public func makeClientTransport(host: String, port: Int) throws -> HTTP2ClientTransport.Posix {
    var config = HTTP2ClientTransport.Posix.Config.defaults
    config.backoff = .init(initial: .milliseconds(20), max: .milliseconds(500), multiplier: 1.6, jitter: 0.2)
    return try HTTP2ClientTransport.Posix(target: .dns(host: host, port: port), transportSecurity: .plaintext, config: config)
}
