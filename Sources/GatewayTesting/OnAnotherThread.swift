import NIOCore
import NIOPosix

/// Runs `body` on a thread made for it, waits, and returns what it returned: for tests of state kept per
/// thread. Never call it on an event loop.
public func onAnotherThread<Result: Sendable>(_ body: @escaping @Sendable () -> Result) throws -> Result {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    defer { try? group.syncShutdownGracefully() }
    return try group.next().submit(body).wait()
}
