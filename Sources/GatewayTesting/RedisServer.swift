import Foundation
import GatewayCore
import NIOCore

/// A real `redis-server` for tests, on a Unix socket in a fresh temporary folder, so servers of tests
/// running side by side never collide and nothing listens on the network. It never assumes a server is
/// already running: ``start(password:)`` launches one and waits until it answers `PING`.
///
/// ``stop()`` and ``restart()`` make Redis go away and come back on the same socket, as the shared tier's
/// tests need; ``suspend()`` and ``resume()`` make it hang without closing anything. The process is killed
/// and the folder removed when the value goes away, if the test did not stop it.
public final class RedisServer: Sendable {
    /// Why the server could not be started.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong, with the end of the server's log when it started and stopped.
        public let description: String
    }

    /// The server's folder (its configuration, log and socket).
    public let directory: String
    /// The Unix socket it listens on.
    public let socketPath: String
    /// `requirepass`; `nil`: none.
    public let password: String?
    /// The TCP port on `127.0.0.1` where it speaks TLS, when started with a certificate.
    public let tlsPort: Int?
    private let tls: ListenerTLSSettings?
    private let executable: String
    private let state = Locked(State())

    private struct State {
        var process: Process?
        var isSuspended = false
    }

    /// How long starting, and stopping, may take.
    private static let patience: Duration = .seconds(10)

    /// `unix://<socket>`, with `:<password>@` when there is one: what `REDIS_URL` would say.
    public var url: String {
        guard let password else { return "unix://\(socketPath)" }
        let escaped = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        return "unix://:\(escaped)@\(socketPath)"
    }

    /// The endpoint ``url`` names, with `database`.
    public func endpoint(database: Int = 0) -> RedisEndpoint {
        RedisEndpoint(address: .unix(path: socketPath), password: password.map(Secret.init), database: database)
    }

    /// The process's id while it runs.
    public var processIdentifier: Int32? {
        state.withLock { $0.process.flatMap { $0.isRunning ? $0.processIdentifier : nil } }
    }

    private init(
        directory: String,
        password: String?,
        executable: String,
        tls: ListenerTLSSettings?,
        tlsPort: Int?
    ) {
        self.tls = tls
        self.tlsPort = tlsPort
        self.directory = directory
        self.socketPath = directory + "/redis.sock"
        self.password = password
        self.executable = executable
    }

    /// Starts a server (requiring `password` when given) and waits until it answers `PING`. With `tls`, it
    /// also speaks TLS with that certificate on a TCP port of `127.0.0.1` (``tlsPort``), not asking clients
    /// for certificates.
    public static func start(password: String? = nil, tls: ListenerTLSSettings? = nil) async throws -> RedisServer {
        let executable = try locate()
        // Short, so the socket's path stays far below the 104 bytes a Unix socket's path may have.
        let directory = "/tmp/xg-redis-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        try FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: false,
            attributes: [.posixPermissions: 0o700]
        )
        let server = RedisServer(
            directory: directory,
            password: password,
            executable: executable,
            tls: tls,
            tlsPort: try tls.map { _ in try freePort() }
        )
        try server.writeConfiguration()
        try await server.launch()
        return server
    }

    /// Kills the server (SIGKILL, as a crash would) and waits until it has exited. The socket is gone
    /// afterwards; the folder stays for ``restart()``.
    ///
    /// Not SIGTERM: a child launched by `Process` from a test's thread inherits that thread's signal mask,
    /// in which SIGTERM is blocked, so Redis would never see it. Nothing is persisted, so nothing is lost.
    public func stop() async {
        let running = state.withLock { state in
            defer { state.process = nil }
            return state.process
        }
        guard let process = running else { return }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        _ = await Self.waitUntil(.seconds(5)) { !process.isRunning }
        state.withLock { $0.isSuspended = false }
        try? FileManager.default.removeItem(atPath: socketPath)
    }

    /// Stops the server and starts it again on the same socket, empty (nothing is persisted).
    public func restart() async throws {
        await stop()
        try await launch()
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing is answered, as with a Redis that
    /// hangs. ``resume()`` undoes it.
    public func suspend() {
        state.withLock { state in
            guard let process = state.process, process.isRunning else { return }
            kill(process.processIdentifier, SIGSTOP)
            state.isSuspended = true
        }
    }

    /// Lets a suspended server run again (SIGCONT).
    public func resume() {
        state.withLock { state in
            guard let process = state.process, process.isRunning, state.isSuspended else { return }
            kill(process.processIdentifier, SIGCONT)
            state.isSuspended = false
        }
    }

    deinit {
        state.withLock { state in
            if let process = state.process, process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
            state.process = nil
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - Starting

    private func launch() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [directory + "/redis.conf"]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let logPath = directory + "/redis.log"
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            throw Failure(description: "cannot write \(logPath)")
        }
        _ = try? log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try? FileManager.default.removeItem(atPath: socketPath)
        try process.run()
        try? log.close()
        state.withLock { $0.process = process }
        let socketPath = socketPath
        let password = password
        let ready = await Self.waitUntil(Self.patience) {
            guard process.isRunning else { return true }
            guard FileManager.default.fileExists(atPath: socketPath) else { return false }
            return await Self.ping(socketPath: socketPath, password: password, timeout: .seconds(1))
        }
        guard ready, process.isRunning else {
            let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            await stop()
            throw Failure(
                description: "redis-server did not answer PING within \(Self.patience) on \(socketPath); its log:\n"
                    + output.suffix(2000)
            )
        }
    }

    private func writeConfiguration() throws {
        var lines = [
            "port 0",
            "unixsocket \(Self.quoted(socketPath))",
            "unixsocketperm 700",
            "save \"\"",
            "appendonly no",
            "dir \(Self.quoted(directory))",
            "daemonize no",
            "logfile \"\"",
            "loglevel notice",
        ]
        if let password { lines.append("requirepass \(Self.quoted(password))") }
        if let tls, let tlsPort {
            lines += [
                "tls-port \(tlsPort)", "bind 127.0.0.1", "tls-cert-file \(Self.quoted(tls.certificateFile))",
                "tls-key-file \(Self.quoted(tls.keyFile))", "tls-auth-clients no",
            ]
        }
        try (lines.joined(separator: "\n") + "\n").write(
            toFile: directory + "/redis.conf",
            atomically: true,
            encoding: .utf8
        )
    }

    /// A TCP port on `127.0.0.1` free just now (Redis takes no 0 for its TLS port).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(fd, address, length) == 0 && getsockname(fd, address, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "no free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `text` as a double-quoted string of Redis's configuration syntax.
    private static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// The `redis-server` on `PATH`, or in the usual places.
    private static func locate() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        for folder in folders where FileManager.default.isExecutableFile(atPath: folder + "/redis-server") {
            return folder + "/redis-server"
        }
        throw Failure(
            description: "redis-server not found on PATH nor in /usr/bin, /usr/sbin, /usr/local/bin: install it "
                + "(Debian: apt-get install redis-server, or ./scripts/install-deps.sh)"
        )
    }

    /// Polls `condition` every 20 ms until it holds or `limit` has passed; whether it held.
    private static func waitUntil(
        _ limit: Duration,
        _ condition: () async -> Bool
    ) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await condition()
    }
}
