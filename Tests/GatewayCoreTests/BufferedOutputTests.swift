import GatewayCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("BufferedOutput")
struct BufferedOutputTests {
    private func pipeDescriptors() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        _ = pipe(&fds)
        let flags = fcntl(fds[0], F_GETFL)
        _ = fcntl(fds[0], F_SETFL, flags | O_NONBLOCK)
        return (fds[0], fds[1])
    }

    private func readAll(_ descriptor: Int32) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func keepsLinesWholeAndInOrderUntilFlushed() {
        let (readEnd, writeEnd) = pipeDescriptors()
        defer {
            close(readEnd)
            close(writeEnd)
        }
        let output = BufferedOutput(descriptor: writeEnd)

        for index in 0..<100 { output.write("line \(index)\n") }
        output.flush()

        let lines = readAll(readEnd).split(separator: "\n")
        #expect(lines == (0..<100).map { "line \($0)"[...] })
    }

    @Test func writesOnItsOwnWithinMoments() async throws {
        let (readEnd, writeEnd) = pipeDescriptors()
        defer {
            close(readEnd)
            close(writeEnd)
        }
        let output = BufferedOutput(descriptor: writeEnd)

        output.write("hello\n")
        var seen = ""
        for _ in 0..<100 where seen.isEmpty {
            try await Task.sleep(for: .milliseconds(50))
            seen = readAll(readEnd)
        }
        #expect(seen == "hello\n")
    }

    @Test func writesAtOnceWhenABatchIsFull() {
        let (readEnd, writeEnd) = pipeDescriptors()
        defer {
            close(readEnd)
            close(writeEnd)
        }
        let output = BufferedOutput(descriptor: writeEnd)
        let line = String(repeating: "x", count: 1023) + "\n"

        for _ in 0..<64 { output.write(line) }

        #expect(readAll(readEnd).utf8.count == 64 * 1024)
    }

    /// Threads gather their lines apart: every line arrives whole, once, and each thread's in the order it
    /// wrote them, through batches that fill and a final flush.
    @Test func linesFromManyThreadsArriveWholeOnceAndInEachThreadsOrder() async throws {
        var template = Array("/tmp/xi-buffered-output-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(descriptor >= 0)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer {
            close(descriptor)
            unlink(path)
        }
        let output = BufferedOutput(descriptor: descriptor)
        let threads = 4
        let linesPerThread = 5_000

        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    for index in 0..<linesPerThread {
                        output.write("thread \(thread) line \(index) \(String(repeating: "x", count: 20))\n")
                    }
                }
            }
        }
        output.flush()

        let reader = open(path, O_RDONLY)
        try #require(reader >= 0)
        defer { close(reader) }
        var next = [Int](repeating: 0, count: threads)
        var wrong = 0
        for line in readAll(reader).split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count == 5, let thread = Int(words[1]), let index = Int(words[3]),
                (0..<threads).contains(thread), index == next[thread], words[4].count == 20
            else {
                wrong += 1
                continue
            }
            next[thread] += 1
        }
        #expect(wrong == 0)
        #expect(next == [Int](repeating: linesPerThread, count: threads))
    }
}
