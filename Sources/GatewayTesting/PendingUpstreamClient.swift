import GatewayCore
import NIOCore
import Synchronization

/// An in-memory ``UpstreamClient`` whose requests stay open until the test answers them, so a test can
/// see exactly what is in flight at every moment and decide when and how each request ends.
public final class PendingUpstreamClient: UpstreamClient {
    private struct State {
        var all: [UpstreamRequest] = []
        var open: [(request: UpstreamRequest, promise: EventLoopPromise<UpstreamResponse>)] = []
        var maxOpen = 0
    }

    private let state = Locked(State())

    /// Creates a client with nothing in flight.
    public init() {}

    /// Every request received, in order.
    public var requests: [UpstreamRequest] { state.withLock { $0.all } }

    /// The targets of the requests still open, oldest first.
    public var openTargets: [String] { state.withLock { $0.open.map(\.request.target) } }

    /// The most requests that were open at once.
    public var maxOpen: Int { state.withLock { $0.maxOpen } }

    public func execute(_ request: UpstreamRequest, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamResponse> {
        let promise = eventLoop.makePromise(of: UpstreamResponse.self)
        state.withLock { state in
            state.all.append(request)
            state.open.append((request, promise))
            state.maxOpen = max(state.maxOpen, state.open.count)
        }
        return promise.futureResult
    }

    /// Ends the oldest open request (or the oldest whose target contains `targetContaining`) with `result`;
    /// `false` when there is none.
    @discardableResult
    public func answer(
        _ result: Result<UpstreamResponse, UpstreamError>,
        targetContaining: String? = nil
    ) -> Bool {
        let promise = state.withLock { state -> EventLoopPromise<UpstreamResponse>? in
            guard
                let index = state.open.firstIndex(where: { entry in
                    targetContaining.map { entry.request.target.contains($0) } ?? true
                })
            else { return nil }
            return state.open.remove(at: index).promise
        }
        guard let promise else { return false }
        promise.completeWith(result.mapError { $0 as any Error })
        return true
    }
}
