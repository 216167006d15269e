import CCurlShim
import GatewayCore
import NIOCore
import NIOHTTP1

/// One upstream request as the curl thread sees it: the easy handle, the promise to complete, and the
/// answer as it accumulates.
///
/// Created on the caller's thread; from the moment it is queued it is touched by the curl thread only.
final class CurlTransfer: @unchecked Sendable {
    let request: UpstreamRequest
    let promise: EventLoopPromise<UpstreamResponse>
    let maxResponseBytes: Int

    // Everything below: curl thread only.
    var easy: UnsafeMutableRawPointer?
    var headerList: UnsafeMutablePointer<curl_slist>?
    let errorBuffer: UnsafeMutablePointer<CChar>
    var body: ByteBuffer
    var headers = HTTPHeaders()
    var exceededLimit = false

    init(request: UpstreamRequest, promise: EventLoopPromise<UpstreamResponse>, maxResponseBytes: Int) {
        self.request = request
        self.promise = promise
        self.maxResponseBytes = maxResponseBytes
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        self.body = ByteBufferAllocator().buffer(capacity: 0)
    }

    deinit {
        errorBuffer.deallocate()
    }

    /// curl's own words about the last failure, or its generic text for `code`.
    func errorText(_ code: CURLcode) -> String {
        if errorBuffer.pointee != 0 { return String(cString: errorBuffer) }
        return String(cString: curl_easy_strerror(code))
    }

    /// Appends body bytes; `false` once the body would exceed the limit.
    func appendBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.readableBytes + bytes.count <= maxResponseBytes else {
            exceededLimit = true
            return false
        }
        body.writeBytes(bytes)
        return true
    }

    /// Takes one header line as curl delivers it (status lines included, CRLF at the end).
    func appendHeaderLine(_ bytes: UnsafeRawBufferPointer) {
        var line = Substring(decoding: bytes, as: UTF8.self)
        while let last = line.last, last == "\r\n" || last == "\n" || last == "\r" { line.removeLast() }
        if line.hasPrefix("HTTP/") {
            // A new response (after an interim 1xx): only the final one's headers count.
            headers = HTTPHeaders()
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].trimmingWhitespace()
            let value = line[line.index(after: colon)...].trimmingWhitespace()
            if !name.isEmpty { headers.add(name: String(name), value: String(value)) }
        }
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
