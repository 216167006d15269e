#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One response as a test client read it, byte for byte.
public struct TestResponse: Sendable {
    /// The status code.
    public var status: Int
    /// The headers, in order, names as sent.
    public var headers: [(name: String, value: String)]
    /// The body bytes.
    public var body: [UInt8]

    /// The first value of the header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Why a test connection failed.
public struct TestHTTPError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) { self.description = description }
}

/// A deliberately plain HTTP/1.1 client over a blocking socket, for tests that must control the exact
/// bytes on the wire (pipelining, malformed requests, oversized heads) and read the exact bytes back.
/// Every read has a timeout, so a test never hangs.
public final class TestHTTPConnection {
    private let socket: Int32
    private var buffer: [UInt8] = []

    /// Connects to `127.0.0.1:port`; reads give up after `timeoutSeconds`.
    public init(port: Int, timeoutSeconds: Int = 10) throws {
        #if canImport(Glibc) || canImport(Musl)
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw TestHTTPError(description: "socket() failed") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw TestHTTPError(description: "connect to port \(port) failed (errno \(errno))")
        }
        self.socket = fd
    }

    deinit { close(socket) }

    /// Sends `text` as it is.
    public func send(_ text: String) throws {
        try send(Array(text.utf8))
    }

    /// Sends `bytes` as they are.
    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            guard written > 0 else { throw TestHTTPError(description: "write failed (errno \(errno))") }
            offset += written
        }
    }

    /// Shuts down the sending side (a half-close): the server reads end of stream, and may still answer.
    public func shutdownWriting() {
        _ = shutdown(socket, Int32(SHUT_WR))
    }

    /// Reads one response; `isHead` says it answers a HEAD request, so it has no body.
    public func readResponse(isHead: Bool = false) throws -> TestResponse {
        let headEnd = try readUntilHeadEnd()
        let headText = String(decoding: buffer[..<headEnd], as: UTF8.self)
        buffer.removeFirst(headEnd + 4)
        var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { throw TestHTTPError(description: "empty response head") }
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw TestHTTPError(description: "bad status line in \(headText)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].drop { $0 == " " }
            headers.append((String(line[..<colon]), String(value)))
        }
        var response = TestResponse(status: status, headers: headers, body: [])
        let length = isHead || status == 204 || status == 304 ? 0 : Int(response.header("content-length") ?? "0") ?? 0
        while buffer.count < length {
            guard try fill() else { throw TestHTTPError(description: "connection closed mid-body") }
        }
        response.body = Array(buffer[..<length])
        buffer.removeFirst(length)
        return response
    }

    /// Whether the server closes the connection (reads end of stream) before the read timeout, discarding data.
    public func waitForClose() -> Bool {
        while true {
            do {
                guard try fill() else { return true }
            } catch {
                return false
            }
        }
    }

    private func readUntilHeadEnd() throws -> Int {
        let marker: [UInt8] = [13, 10, 13, 10]
        var searchFrom = 0
        while true {
            if buffer.count >= 4 {
                for index in searchFrom...(buffer.count - 4) where buffer[index..<(index + 4)].elementsEqual(marker) {
                    return index
                }
                searchFrom = buffer.count - 3
            }
            guard try fill() else { throw TestHTTPError(description: "connection closed before a response head") }
        }
    }

    /// Reads what is available; `false` at end of stream; throws on timeout or error.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
        if count < 0 { throw TestHTTPError(description: "read failed or timed out (errno \(errno))") }
        if count == 0 { return false }
        buffer.append(contentsOf: chunk[..<count])
        return true
    }
}

extension TestHTTPConnection {
    /// Opens a connection, sends one request and reads its response.
    public static func request(
        port: Int,
        method: String = "GET",
        target: String,
        headers: [(String, String)] = []
    ) throws -> TestResponse {
        let connection = try TestHTTPConnection(port: port)
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        try connection.send(text)
        return try connection.readResponse(isHead: method == "HEAD")
    }
}
