import GRPCCore
public import GRPCNIOTransportHTTP2

/// The HTTP/2 client transport every Flotilla client uses: names or IP addresses (resolved by DNS),
/// plaintext, and connection back-off tuned for a cluster (a restarted peer is reached again
/// within half a second, not gRPC's default of up to two minutes).
///
/// Unary calls give up after ``unaryCallTimeout`` unless the call sets its own timeout: a node
/// that accepts connections but does not answer (stopped, swapping, wedged) must not hold a
/// client forever; ``ClusterClient`` then tries the next node. The long polls (`AwaitTasks`,
/// which carries its own timeout) and the agents' assignment stream have none.
public func makeClientTransport(host: String, port: Int) throws -> HTTP2ClientTransport.Posix {
    var config = HTTP2ClientTransport.Posix.Config.defaults
    config.backoff = .init(initial: .milliseconds(20), max: .milliseconds(500), multiplier: 1.6, jitter: 0.2)
    return try HTTP2ClientTransport.Posix(
        target: .dns(host: host, port: port), transportSecurity: .plaintext, config: config, serviceConfig: clientServiceConfig)
}

/// How long one unary call to one node may take by default.
public let unaryCallTimeout: Duration = .seconds(5)

private let clientServiceConfig = ServiceConfig(methodConfig: [
    MethodConfig(
        names: ["ControlPlane", "Tasks", "Agents"].map { MethodConfig.Name(service: "flotilla.v1." + $0) }, timeout: unaryCallTimeout),
    MethodConfig(
        names: [MethodConfig.Name(service: "flotilla.v1.Tasks", method: "AwaitTasks"),
                MethodConfig.Name(service: "flotilla.v1.Agents", method: "Assignments")]),
])
