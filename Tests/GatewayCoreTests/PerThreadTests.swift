import Foundation
import GatewayCore
import GatewayTesting
import Testing

@Suite("PerThread")
struct PerThreadTests {
    /// Threads are numbered for the whole process, and a thread's stripe is its number modulo the count:
    /// with more stripes than this test process ever has threads, two threads never share one.
    static let manyStripes = 4_096

    @Test func aThreadAlwaysGetsTheSameStripe() {
        let counts = PerThread(stripeCount: 8) { 0 }

        for _ in 0..<10 { counts.withLocal { $0 += 1 } }

        #expect(counts.withLocal { $0 } == 10)
        #expect(counts.reduce(0, +) == 10)
    }

    @Test func differentThreadsGetDifferentStripes() throws {
        let counts = PerThread(stripeCount: Self.manyStripes) { 0 }
        counts.withLocal { $0 += 1 }

        let elsewhere = try onAnotherThread {
            counts.withLocal { count in
                count += 100
                return count
            }
        }

        #expect(elsewhere == 100)
        #expect(counts.withLocal { $0 } == 1)
        #expect(counts.reduce(0, +) == 101)
    }

    /// More threads than stripes share them; nothing is lost.
    @Test func moreThreadsThanStripesStillCountEverything() async {
        let counts = PerThread(stripeCount: 2) { 0 }

        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<10_000 { counts.withLocal { $0 += 1 } }
                }
            }
        }
        let threads = (0..<4).map { _ in
            Thread { for _ in 0..<10_000 { counts.withLocal { $0 += 1 } } }
        }
        for thread in threads { thread.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(1_000) }

        #expect(counts.reduce(0, +) == 120_000)
    }

    @Test func modifyEachReachesEveryStripe() throws {
        let counts = PerThread(stripeCount: Self.manyStripes) { 0 }
        counts.withLocal { $0 = 5 }
        try onAnotherThread { counts.withLocal { $0 = 7 } }

        var seen: [Int] = []
        counts.modifyEach { count in
            seen.append(count)
            count = 0
        }

        #expect(seen.count == Self.manyStripes)
        #expect(seen.filter { $0 != 0 }.sorted() == [5, 7])
        #expect(counts.reduce(0, +) == 0)
    }
}
