import Dispatch
import NIOConcurrencyHelpers
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Log lines gathered in memory and written in batches: at 64 KiB, every 100 ms, and on ``flush()``.
///
/// One `write` per log line would cost a system call per request when the access log is on, more than the
/// rest of a cache hit. Each thread gathers its own lines (``PerThread``), so event loops logging at once
/// do not share a lock. Lines are never split or interleaved, and each thread's stay in order; at most
/// the last 100 ms are lost if the process is killed outright.
public final class BufferedOutput: Sendable {
    /// Standard output.
    public static let standardOutput = BufferedOutput(descriptor: STDOUT_FILENO)

    private static let flushThreshold = 64 * 1024

    private let descriptor: Int32
    private let pending = PerThread<[UInt8]> { [] }
    /// Held while writing, so batches reach the descriptor in the order they were taken.
    private let writing = NIOLock()
    private let timer: Locked<(any DispatchSourceTimer)?> = Locked(nil)
    /// Set once the timer runs, so a line does not take the timer's lock to learn it.
    private let timerStarted = Atomic<Bool>(false)

    /// Output to `descriptor`.
    public init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Adds `line` (which ends with its own newline).
    public func write(_ line: String) {
        append { $0.append(contentsOf: line.utf8) }
    }

    /// Adds what `build` appends to the calling thread's pending bytes: one or more whole lines, each
    /// ending with its newline. A line built in place is neither built apart first nor copied. `build`
    /// runs under the thread's lock, so it must not write to this output itself.
    public func append(_ build: (inout [UInt8]) -> Void) {
        let full: [UInt8]? = pending.withLocal { pending in
            build(&pending)
            guard pending.count >= Self.flushThreshold else { return nil }
            defer {
                // Room for the next batch at once, rather than growing to it by copies.
                pending = []
                pending.reserveCapacity(Self.flushThreshold + 4096)
            }
            return pending
        }
        if let full {
            writing.withLock { writeAll(full, to: descriptor) }
        } else {
            startTimerOnce()
        }
    }

    /// Writes everything gathered so far, by every thread.
    public func flush() {
        writing.withLock {
            var batches: [[UInt8]] = []
            pending.modifyEach { pending in
                guard !pending.isEmpty else { return }
                batches.append(pending)
                pending = []
            }
            for bytes in batches { writeAll(bytes, to: descriptor) }
        }
    }

    private func startTimerOnce() {
        guard !timerStarted.load(ordering: .acquiring) else { return }
        timer.withLock { timer in
            guard timer == nil else { return }
            let source = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
            source.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100))
            source.setEventHandler { [weak self] in self?.flush() }
            source.resume()
            timer = source
            timerStarted.store(true, ordering: .releasing)
        }
    }
}
