import GatewayCore
import Logging
import NIOCore
import NIOHTTP1

/// Answers list requests: validates the query, serves fresh pages from the cache, and asks the upstream
/// for the rest, storing what may be stored.
public final class ListService: Sendable {
    /// The identity of this gateway, in `User-Agent` and `Cache-Status`.
    public static let cacheName = "xi-gateway"
    /// Sent upstream as `User-Agent`.
    public static let userAgent = "xi-gateway/\(GatewayVersion.current)"

    private let cache: ResponseCache
    private let upstream: any UpstreamClient
    private let apiKey: Secret
    private let credential: String
    private let logger: Logger
    private let allocator = ByteBufferAllocator()

    /// Creates the service; `apiKey` is sent upstream as `xi-api-key` and its fingerprint keys the cache.
    public init(cache: ResponseCache, upstream: any UpstreamClient, apiKey: Secret, logger: Logger) {
        self.cache = cache
        self.upstream = upstream
        self.apiKey = apiKey
        self.credential = apiKey.fingerprint
        self.logger = logger
    }

    /// The answer to a list request whose query (after `?`) is `query`. Never fails: every problem is an
    /// answer. The future completes on `eventLoop`.
    public func respond(toQuery query: Substring, on eventLoop: any EventLoop) -> EventLoopFuture<GatewayResponse> {
        let listQuery: ListQuery
        do {
            listQuery = try ListQuery.parse(query)
        } catch {
            let gatewayError: GatewayError
            switch error {
            case .invalid(let issues): gatewayError = .invalidQuery(issues)
            case .malformed(let failure): gatewayError = .malformedQuery(failure)
            }
            return eventLoop.makeSucceededFuture(errorResponse(gatewayError, cacheStatus: nil))
        }

        let key = CacheKey(credential: credential, query: listQuery)
        if case .fresh(let page, let age, let ttlLeft) = cache.lookup(key) {
            return eventLoop.makeSucceededFuture(
                pageResponse(page, age: age, cacheStatus: "\(Self.cacheName); hit; ttl=\(ttlLeft)")
            )
        }

        let request = upstreamRequest(for: key)
        return upstream.execute(request, on: eventLoop).map { response in
            self.answer(for: response, key: key)
        }.recover { error in
            let upstreamError = error as? UpstreamError ?? .invalidResponse("\(error)")
            self.logger.warning(
                "upstream request failed",
                metadata: ["error": "\(upstreamError)", "query": "\(key.query)"]
            )
            let gatewayError = GatewayError(upstreamError)
            return self.errorResponse(
                gatewayError,
                cacheStatus: "\(Self.cacheName); fwd=miss; detail=\(gatewayError.shortDescription)"
            )
        }
    }

    /// The request sent upstream for `key`: the canonical query, the key, and nothing from the client.
    func upstreamRequest(for key: CacheKey) -> UpstreamRequest {
        let headers = HTTPHeaders([
            ("xi-api-key", apiKey.revealed),
            ("Accept", "application/json"),
            ("User-Agent", Self.userAgent),
        ])
        return UpstreamRequest(target: Route.listPath + "?" + key.query, headers: headers)
    }

    private func answer(for response: UpstreamResponse, key: CacheKey) -> GatewayResponse {
        let contentType = response.headers.first(name: "content-type") ?? "application/json"
        guard response.status == 200 else {
            return passThrough(response, contentType: contentType)
        }
        guard response.body.withUnsafeReadableBytes({ JSONValidator.isValid($0) }) else {
            logger.warning("upstream sent a 200 that is not JSON; not stored", metadata: ["query": "\(key.query)"])
            let error = GatewayError.badUpstreamResponse
            return errorResponse(
                error,
                cacheStatus: "\(Self.cacheName); fwd=miss; fwd-status=200; detail=\(error.shortDescription)"
            )
        }
        let page = CachedPage(body: response.body, contentType: contentType, storedAt: cache.now())
        let cacheStatus: String
        switch cache.store(page, for: key) {
        case .stored: cacheStatus = "\(Self.cacheName); fwd=miss; fwd-status=200; stored"
        case .tooLarge: cacheStatus = "\(Self.cacheName); fwd=miss; fwd-status=200; detail=too-large"
        }
        return pageResponse(page, age: 0, cacheStatus: cacheStatus)
    }

    /// Headers of an upstream error worth passing on: its body's type and what tells a client when to retry.
    private static let passedHeaders = ["retry-after", "current-concurrent-requests", "maximum-concurrent-requests"]

    private func passThrough(_ response: UpstreamResponse, contentType: String) -> GatewayResponse {
        var headers = HTTPHeaders([("Content-Type", contentType)])
        for name in Self.passedHeaders {
            for value in response.headers[name] { headers.add(name: name, value: value) }
        }
        headers.add(name: "Cache-Status", value: "\(Self.cacheName); fwd=miss; fwd-status=\(response.status)")
        headers.add(name: "Age", value: "0")
        return GatewayResponse(
            status: HTTPResponseStatus(statusCode: response.status),
            headers: headers,
            body: response.body
        )
    }

    private func pageResponse(_ page: CachedPage, age: Int, cacheStatus: String) -> GatewayResponse {
        let headers = HTTPHeaders([
            ("Content-Type", page.contentType),
            ("Cache-Status", cacheStatus),
            ("Age", String(age)),
        ])
        return GatewayResponse(status: .ok, headers: headers, body: page.body)
    }

    private func errorResponse(_ error: GatewayError, cacheStatus: String?) -> GatewayResponse {
        var response = error.response(allocator: allocator)
        response.headers.add(
            name: "Cache-Status",
            value: cacheStatus ?? "\(Self.cacheName); detail=\(error.shortDescription)"
        )
        response.headers.add(name: "Age", value: "0")
        return response
    }
}
