import GatewayCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started with `posix_spawn`, its output appended to a log file, its standard input
/// `/dev/null`, every signal unblocked and at its default.
///
/// Not Foundation's `Process`: its `run()` reads `/proc/self/fd` with a copy that AddressSanitizer reports
/// as a heap overflow once a test process has many descriptors open (as the Redis tests do), and a child
/// it starts from a test thread inherits that thread's blocked signals.
final class SpawnedProcess: Sendable {
    /// Why the child could not be started.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let processIdentifier: pid_t
    /// Set once the child has been reaped.
    private let exited = Locked(false)

    /// Starts `executable` with `arguments`, in this process's working directory.
    init(executable: String, arguments: [String], logPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) }
        defer { for pointer in argv { free(pointer) } }
        var argvWithEnd = argv + [nil]
        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, &argvWithEnd, environ)
        guard result == 0 else {
            throw Failure(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        processIdentifier = pid
    }

    /// Whether the child still runs (reaping it once it has exited).
    var isRunning: Bool {
        exited.withLock { exited in
            guard !exited else { return false }
            var status: Int32 = 0
            let reaped = waitpid(processIdentifier, &status, WNOHANG)
            if reaped == processIdentifier || (reaped == -1 && errno == ECHILD) { exited = true }
            return !exited
        }
    }

    /// Sends `signal` to the child while it runs.
    func send(_ signal: Int32) {
        guard isRunning else { return }
        kill(processIdentifier, signal)
    }
}
