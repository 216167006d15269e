import Foundation
import Testing

@testable import GatewayCore

/// gzip through zlib, checked against the system's `gzip` both ways, and against what an upstream or an
/// attacker may send: a stream that unpacks to far more than it weighs, a cut one, a damaged one.
@Suite("Gzip")
struct GzipTests {
    private let page = Array(
        (0..<300).map { #"{"id":"inv_\#($0)","agent_id":"agent_\#($0 % 7)","status":"passed"},"# }.joined().utf8
    )

    /// `input` through `/bin/gzip` with `arguments`.
    private func gzipTool(_ arguments: [String], _ input: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/gzip")
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        try stdin.fileHandleForWriting.write(contentsOf: Data(input))
        try stdin.fileHandleForWriting.close()
        let output = try stdout.fileHandleForReading.readToEnd() ?? Data()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return Array(output)
    }

    @Test func whatItPacksTheSystemsGzipUnpacksAndTheOtherWayRound() throws {
        let packed = try #require(page.withUnsafeBytes { Gzip.compress($0) })
        #expect(packed.count * 5 < page.count, "a list page packs to well under a fifth: \(packed.count)")
        #expect(try gzipTool(["-d", "-c"], packed) == page)
        let theirs = try gzipTool(["-c", "-6"], page)
        #expect(try theirs.withUnsafeBytes { try Gzip.decompress($0, limit: page.count) } == page)
    }

    @Test func anEmptyBodyPacksAndUnpacks() throws {
        let packed = try #require([UInt8]().withUnsafeBytes { Gzip.compress($0) })
        #expect(try packed.withUnsafeBytes { try Gzip.decompress($0, limit: 0) } == [])
    }

    /// Ten MiB of zeros weigh about ten KiB packed: refused at the bound, not unpacked whole.
    @Test func aStreamThatUnpacksPastTheBoundIsRefused() throws {
        let bomb = try #require([UInt8](repeating: 0, count: 10 << 20).withUnsafeBytes { Gzip.compress($0) })
        #expect(bomb.count < 64 * 1024)
        #expect(throws: Gzip.Failure.tooLarge(limit: 1 << 20)) {
            try bomb.withUnsafeBytes { try Gzip.decompress($0, limit: 1 << 20) }
        }
        #expect(try bomb.withUnsafeBytes { try Gzip.decompress($0, limit: 10 << 20) }.count == 10 << 20)
    }

    @Test(arguments: [1, 8, 100])
    func aCutStreamIsTruncated(cut: Int) throws {
        let packed = try #require(page.withUnsafeBytes { Gzip.compress($0) })
        let cutOff = Array(packed.dropLast(cut))
        #expect(throws: Gzip.Failure.truncated) {
            try cutOff.withUnsafeBytes { try Gzip.decompress($0, limit: 1 << 20) }
        }
    }

    @Test func aDamagedOrForeignStreamIsCorrupt() throws {
        var packed = try #require(page.withUnsafeBytes { Gzip.compress($0) })
        packed[packed.count - 6] ^= 0xFF  // the CRC-32 in the trailer
        #expect(throws: Gzip.Failure.self) { try packed.withUnsafeBytes { try Gzip.decompress($0, limit: 1 << 20) } }
        let json = Array(#"{"not":"gzip"}"#.utf8)
        #expect(throws: Gzip.Failure.self) { try json.withUnsafeBytes { try Gzip.decompress($0, limit: 1 << 20) } }
        #expect(throws: Gzip.Failure.truncated) { try [UInt8]().withUnsafeBytes { try Gzip.decompress($0, limit: 9) } }
    }

    /// RFC 1952 allows members one after another; bytes after the last that are not one are refused.
    @Test func concatenatedMembersUnpackInOrderAndTrailingBytesAreRefused() throws {
        let first = try #require(Array("abc".utf8).withUnsafeBytes { Gzip.compress($0) })
        let second = try #require(Array("def".utf8).withUnsafeBytes { Gzip.compress($0) })
        #expect(try (first + second).withUnsafeBytes { try Gzip.decompress($0, limit: 100) } == Array("abcdef".utf8))
        #expect(throws: Gzip.Failure.self) {
            try (first + Array("junk!junk!".utf8)).withUnsafeBytes { try Gzip.decompress($0, limit: 100) }
        }
    }
}
