import CCurlShim
import GatewayCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The state of the curl thread: the multi handle, the transfers it runs, and the queue other threads
/// feed it through.
final class CurlLoop: @unchecked Sendable {
    private struct Commands {
        var pending: [CurlTransfer] = []
        var shuttingDown = false
    }

    let configuration: CurlClientConfiguration
    private let logger: Logger
    private let commands = Locked(Commands())
    /// `curl_multi_wakeup` is the one multi call libcurl allows from any thread.
    private let multi: UnsafeMutableRawPointer
    /// Transfers in flight, by easy handle. Curl thread only.
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
    private let baseURL: String

    init(multi: UnsafeMutableRawPointer, configuration: CurlClientConfiguration, logger: Logger) {
        self.multi = multi
        self.configuration = configuration
        self.logger = logger
        self.baseURL = configuration.baseURL.description
    }

    // Freed only when nothing can call `curl_multi_wakeup` any more: the client and the thread both hold
    // this object, so it goes after the thread has finished and the client is gone.
    deinit {
        curl_multi_cleanup(multi)
    }

    /// Queues `transfer` for the curl thread; `false` once shutting down. Any thread.
    func enqueue(_ transfer: CurlTransfer) -> Bool {
        let accepted = commands.withLock { commands in
            guard !commands.shuttingDown else { return false }
            commands.pending.append(transfer)
            return true
        }
        if accepted { curl_multi_wakeup(multi) }
        return accepted
    }

    /// Asks the curl thread to stop. Any thread.
    func requestShutdown() {
        commands.withLock { $0.shuttingDown = true }
        curl_multi_wakeup(multi)
    }

    /// The thread's body; returns once shut down.
    func run() {
        var running: Int32 = 0
        while true {
            let (pending, shuttingDown) = commands.withLock { commands in
                defer { commands.pending = [] }
                return (commands.pending, commands.shuttingDown)
            }
            if shuttingDown {
                for transfer in pending { transfer.promise.fail(UpstreamError.shutDown("shut down before sending")) }
                break
            }
            for transfer in pending { start(transfer) }
            let performed = curl_multi_perform(multi, &running)
            collectFinished()
            let polled = curl_multi_poll(multi, nil, 0, 1000, nil)
            if performed != CURLM_OK || polled != CURLM_OK {
                // Not expected from a healthy multi handle; never spin on it.
                logger.error(
                    "libcurl's multi interface failed",
                    metadata: ["perform": "\(performed.rawValue)", "poll": "\(polled.rawValue)"]
                )
                usleep(10_000)
            }
        }
        for (_, transfer) in active {
            finish(transfer, with: .failure(.shutDown("the upstream client shut down during the request")))
        }
    }

    private func start(_ transfer: CurlTransfer) {
        guard let easy = curl_easy_init() else {
            transfer.promise.fail(UpstreamError.connectFailed("curl_easy_init failed"))
            return
        }
        transfer.easy = easy
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for header in transfer.request.headers {
            list = curl_slist_append(list, "\(header.name): \(header.value)")
        }
        // No "Expect: 100-continue" round trip before a POST body.
        list = curl_slist_append(list, "Expect:")
        transfer.headerList = list

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        let url = baseURL + transfer.request.target
        var ok = gw_curl_easy_setopt_string(easy, CURLOPT_URL, url) == CURLE_OK
        ok = ok && gw_curl_easy_restrict_to_http(easy) == CURLE_OK
        // "" turns proxies off, the environment's included (libcurl reads http_proxy and the rest otherwise).
        ok = ok && gw_curl_easy_setopt_string(easy, CURLOPT_PROXY, configuration.proxy?.revealed ?? "") == CURLE_OK
        if transfer.request.method == .POST {
            let body = transfer.request.body.map { Array($0.readableBytesView) } ?? []
            ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_POST, 1) == CURLE_OK
            ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, body.count) == CURLE_OK
            // COPYPOSTFIELDS: libcurl keeps its own copy, so the bytes here may go.
            // One byte more than is sent, so even an empty body has an address.
            var terminated = body
            terminated.append(0)
            ok =
                ok
                && terminated.withUnsafeMutableBytes { bytes in
                    gw_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, bytes.baseAddress) == CURLE_OK
                }
        } else {
            ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1) == CURLE_OK
        }
        ok = ok && gw_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, configuration.timeoutMilliseconds) == CURLE_OK
        ok =
            ok
            && gw_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, configuration.connectTimeoutMilliseconds)
                == CURLE_OK
        ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 2) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1) == CURLE_OK
        if transfer.request.keepsContentCoding {
            // The request's own Accept-Encoding asks; the body arrives as sent, its coding undone by no one.
            ok = ok && gw_curl_easy_setopt_long(easy, CURLOPT_HTTP_CONTENT_DECODING, 0) == CURLE_OK
        } else {
            // "" asks for every coding this libcurl can decode; the body arrives decoded.
            ok = ok && gw_curl_easy_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK
        }
        ok = ok && gw_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, transfer.errorBuffer) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_write_function(easy, curlWriteBody) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_header_function(easy, curlWriteHeader) == CURLE_OK
        ok = ok && gw_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context) == CURLE_OK
        guard ok, curl_multi_add_handle(multi, easy) == CURLM_OK else {
            release(transfer)
            transfer.promise.fail(UpstreamError.invalidResponse("could not configure the request"))
            return
        }
        active[easy] = transfer
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            var easy: UnsafeMutableRawPointer? = nil
            var code = CURLE_OK
            guard gw_curl_message_done(message, &easy, &code) != 0, let easy,
                let transfer = active[easy]
            else { continue }
            finish(transfer, with: outcome(of: transfer, code: code))
        }
    }

    private func outcome(of transfer: CurlTransfer, code: CURLcode) -> Result<UpstreamResponse, UpstreamError> {
        guard code == CURLE_OK else {
            if transfer.exceededLimit {
                return .failure(.responseTooLarge("larger than \(transfer.maxResponseBytes) bytes"))
            }
            return .failure(Self.error(for: code, text: transfer.errorText(code)))
        }
        var status = 0
        if let easy = transfer.easy { _ = gw_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status) }
        guard (100...599).contains(status) else {
            return .failure(.invalidResponse("no HTTP status"))
        }
        var headers = transfer.headers
        // libcurl undid the coding: the body no longer has the one the upstream named.
        if !transfer.request.keepsContentCoding { headers.remove(name: "content-encoding") }
        return .success(UpstreamResponse(status: status, headers: headers, body: transfer.body))
    }

    private func finish(_ transfer: CurlTransfer, with result: Result<UpstreamResponse, UpstreamError>) {
        if let easy = transfer.easy {
            curl_multi_remove_handle(multi, easy)
            active[easy] = nil
        }
        release(transfer)
        switch result {
        case .success(let response): transfer.promise.succeed(response)
        case .failure(let error):
            logger.debug("upstream request failed", metadata: ["error": "\(error)"])
            transfer.promise.fail(error)
        }
    }

    private func release(_ transfer: CurlTransfer) {
        if let easy = transfer.easy { curl_easy_cleanup(easy) }
        transfer.easy = nil
        curl_slist_free_all(transfer.headerList)
        transfer.headerList = nil
    }

    /// The gateway's reading of a libcurl failure.
    static func error(for code: CURLcode, text: String) -> UpstreamError {
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return .timedOut(text)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT, CURLE_SSL_CONNECT_ERROR,
            CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE:
            return .connectFailed(text)
        case CURLE_GOT_NOTHING, CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE:
            return .connectionReset(text)
        default:
            return .invalidResponse(text)
        }
    }
}

/// `CURLOPT_WRITEFUNCTION`: runs on the curl thread only.
private let curlWriteBody: gw_curl_data_callback = { data, size, count, context in
    guard let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    guard let data, length > 0 else { return length }
    return transfer.appendBody(UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
}

/// `CURLOPT_HEADERFUNCTION`: runs on the curl thread only.
private let curlWriteHeader: gw_curl_data_callback = { data, size, count, context in
    guard let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    let length = size * count
    guard let data, length > 0 else { return length }
    transfer.appendHeaderLine(UnsafeRawBufferPointer(start: data, count: length))
    return length
}
