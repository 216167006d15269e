import GatewayCore
import NIOCore
import Synchronization

/// An in-memory ``UpstreamClient``: answers from a script, records every request, sends nothing anywhere.
public final class ScriptedUpstreamClient: UpstreamClient {
    private let script: @Sendable (UpstreamRequest) -> Result<UpstreamResponse, UpstreamError>
    private let log = Locked<[UpstreamRequest]>([])

    /// Creates a client answering with `script`.
    public init(script: @escaping @Sendable (UpstreamRequest) -> Result<UpstreamResponse, UpstreamError>) {
        self.script = script
    }

    /// Every request received, in order.
    public var requests: [UpstreamRequest] { log.withLock { $0 } }

    public func execute(_ request: UpstreamRequest, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamResponse> {
        log.withLock { $0.append(request) }
        return eventLoop.makeCompletedFuture(script(request).mapError { $0 as any Error })
    }
}
