import CCurlShim
import GatewayCore
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The upstream client: libcurl's multi interface on one dedicated thread.
///
/// That thread owns the `CURLM` handle and every easy handle. Other threads only queue a command under a
/// lock and wake the thread with `curl_multi_wakeup`; the thread starts queued transfers, drives them with
/// `curl_multi_perform`, completes the promises of finished ones and sleeps in `curl_multi_poll`.
/// Connections are reused through the multi handle's pool.
public final class CurlUpstreamClient: UpstreamClient {
    private let loop: CurlLoop
    private let thread: Locked<pthread_t?>

    /// Starts the client and its thread. Call ``shutdown()`` before releasing it.
    public init(configuration: CurlClientConfiguration, logger: Logger) throws(UpstreamError) {
        _ = Self.globalInit
        // curl_multi_wakeup and curl_multi_poll came in 7.68.0.
        guard gw_curl_version_number() >= 0x07_44_00 else {
            throw .connectFailed("libcurl 7.68.0 or later is needed; this one is \(Self.libcurlVersion)")
        }
        guard let multi = curl_multi_init() else {
            throw .connectFailed("curl_multi_init failed")
        }
        self.loop = CurlLoop(multi: multi, configuration: configuration, logger: logger)

        var thread = pthread_t()
        let box = Unmanaged.passRetained(loop).toOpaque()
        let result = pthread_create(
            &thread,
            nil,
            { argument in
                guard let argument else { return nil }
                let loop = Unmanaged<CurlLoop>.fromOpaque(argument).takeRetainedValue()
                loop.run()
                return nil
            },
            box
        )
        guard result == 0 else {
            Unmanaged<CurlLoop>.fromOpaque(box).release()
            throw .connectFailed("could not start the curl thread (\(result))")
        }
        self.thread = Locked(thread)
    }

    /// The version of the libcurl loaded at run time, e.g. `7.88.1`.
    public static var libcurlVersion: String { String(cString: gw_curl_version_text()) }

    /// libcurl's process-wide set-up, done once before the first handle exists.
    private static let globalInit: Void = {
        _ = gw_curl_global_init()
    }()

    public func execute(_ request: UpstreamRequest, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamResponse> {
        let promise = eventLoop.makePromise(of: UpstreamResponse.self)
        let transfer = CurlTransfer(
            request: request,
            promise: promise,
            maxResponseBytes: loop.configuration.maxResponseBytes
        )
        if !loop.enqueue(transfer) {
            promise.fail(UpstreamError.shutDown("the upstream client is shut down"))
        }
        return promise.futureResult
    }

    /// Stops the thread: requests still in flight fail with ``UpstreamError/shutDown(_:)``, later ones too.
    /// Blocks until the thread has exited; do not call it on an event loop. Calling it again does nothing.
    public func shutdown() {
        loop.requestShutdown()
        let thread = self.thread.withLock { thread in
            defer { thread = nil }
            return thread
        }
        if let thread {
            pthread_join(thread, nil)
        }
    }
}
