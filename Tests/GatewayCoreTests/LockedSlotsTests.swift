import Foundation
import Testing

@testable import GatewayCore

@Suite("LockedSlots")
struct LockedSlotsTests {
    @Test func eachSlotStartsAsItsInitialValueAndChangesAlone() {
        let slots = LockedSlots(count: 5) { index in [index] }

        slots.withLock(2) { $0.append(20) }

        #expect((0..<5).map { index in slots.withLock(index) { $0 } } == [[0], [1], [2, 20], [3], [4]])
    }

    /// The point of the type: no two slots on one cache line, nor on an adjacent pair of lines, whatever
    /// the size of the value.
    @Test(arguments: [1, 8, 40, 64, 100, 200, 500])
    func slotsStartOnTheirOwnPairOfCacheLines(valueBytes: Int) {
        let slots = LockedSlots(count: 4) { _ in [UInt8](repeating: 0, count: valueBytes) }
        checkLayout(of: slots)
        let wide = LockedSlots(count: 3) { _ in Wide() }
        checkLayout(of: wide)
        #expect(wide.stride >= MemoryLayout<pthread_mutex_t>.size + MemoryLayout<Wide>.size)
    }

    private func checkLayout<Value>(of slots: LockedSlots<Value>) {
        let alignment = LockedSlots<Value>.slotAlignment
        #expect(alignment >= 128)
        for index in 0..<slots.count {
            let address = Int(bitPattern: slots.address(ofSlot: index))
            #expect(address % alignment == 0)
            #expect(slots.valueOffset >= MemoryLayout<pthread_mutex_t>.size)
            #expect(slots.valueOffset + MemoryLayout<Value>.size <= slots.stride)
            if index > 0 {
                #expect(address - Int(bitPattern: slots.address(ofSlot: index - 1)) == slots.stride)
            }
        }
    }

    /// A value wider than one slot's alignment.
    private struct Wide {
        var words: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int) = (
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        )
    }

    @Test func valuesAreReleasedWithTheSlots() {
        final class Tracked: Sendable {}
        weak var first: Tracked?
        weak var last: Tracked?
        do {
            let slots = LockedSlots(count: 3) { _ in Tracked() }
            first = slots.withLock(0) { $0 }
            last = slots.withLock(2) { $0 }
            #expect(first != nil && last != nil)
        }
        #expect(first == nil)
        #expect(last == nil)
    }

    /// Threads counting into their own slot and into one slot they share: every count arrives, so each
    /// slot's lock guards it.
    @Test func concurrentUseLosesNothing() async {
        let slots = LockedSlots(count: 5) { _ in 0 }
        let threads = 4
        let rounds = 20_000

        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    for _ in 0..<rounds {
                        slots.withLock(thread) { $0 += 1 }
                        slots.withLock(4) { $0 += 1 }
                    }
                }
            }
        }

        #expect((0..<threads).map { index in slots.withLock(index) { $0 } } == Array(repeating: rounds, count: threads))
        #expect(slots.withLock(4) { $0 } == threads * rounds)
    }
}
