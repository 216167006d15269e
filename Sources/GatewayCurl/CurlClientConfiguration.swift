import GatewayCore

/// How ``CurlUpstreamClient`` reaches the upstream.
public struct CurlClientConfiguration: Sendable {
    /// The upstream's base URL; each request's target is appended to it.
    public var baseURL: UpstreamURL
    /// The whole request, connect to last byte.
    public var timeoutMilliseconds: Int
    /// The connect phase (TCP and TLS).
    public var connectTimeoutMilliseconds: Int
    /// A larger body fails the request with ``UpstreamError/responseTooLarge(_:)``; memory stays bounded.
    public var maxResponseBytes: Int
    /// The proxy every request goes through (`UPSTREAM_PROXY`); `nil`: none. The environment's
    /// `http_proxy`, `https_proxy` and `ALL_PROXY` are never used: a stray variable must not route the key
    /// through a proxy nobody configured.
    public var proxy: Secret?

    /// Creates a configuration.
    public init(
        baseURL: UpstreamURL,
        timeoutMilliseconds: Int,
        connectTimeoutMilliseconds: Int,
        maxResponseBytes: Int = 8 * 1024 * 1024,
        proxy: Secret? = nil
    ) {
        self.baseURL = baseURL
        self.timeoutMilliseconds = timeoutMilliseconds
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.maxResponseBytes = maxResponseBytes
        self.proxy = proxy
    }

    /// The configuration the gateway's settings describe.
    public init(_ configuration: GatewayConfiguration) {
        self.init(
            baseURL: configuration.upstreamURL,
            timeoutMilliseconds: configuration.upstreamTimeoutMilliseconds,
            connectTimeoutMilliseconds: configuration.upstreamConnectTimeoutMilliseconds,
            maxResponseBytes: configuration.upstreamMaxBodyBytes,
            proxy: configuration.upstreamProxy
        )
    }
}
