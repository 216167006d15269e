import NIOCore

/// Where an upstream request takes its turn: concurrency slots, the queue, and the key-wide back-off. The
/// seam a shared tier implements with leases every replica sees (``UpstreamGovernor`` is the in-process
/// one).
public protocol UpstreamSlots: Sendable {
    /// A slot for one upstream request: the future completes on `eventLoop` when it may start, or fails
    /// with ``UpstreamGovernor/Rejection``. Every success is followed by one ``release(_:)``.
    func acquire(on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// Gives a slot back with what its request came to (a 429 starts the back-off).
    func release(_ outcome: UpstreamGovernor.Outcome)

    /// In flight, queued, the limit and the back-off left, for statistics and metrics.
    var snapshot: UpstreamGovernor.Snapshot { get }

    /// Applies new limits (a configuration reload) to requests that come from now on.
    func update(_ configuration: UpstreamGovernor.Configuration)
}

extension UpstreamGovernor: UpstreamSlots {}
