#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed number of values, each behind its own lock, laid out in one allocation so that no two slots
/// share a cache line: the storage of state that is split to keep cores apart (``PerThread``'s stripes,
/// ``ResponseCache``'s shards).
///
/// An array of ``Locked`` boxes defeats such a split. The boxes are small objects allocated one after
/// another, so several share a cache line, and taking one's lock retains it: a write to its reference
/// count, which takes the line away from the core working on its neighbour. Here a slot is reached by
/// arithmetic on one pointer, with no reference counting, and each slot (a `pthread_mutex_t`, then the
/// value) starts on a 128-byte boundary and ends before the next one (two lines, because cores fetch
/// lines in adjacent pairs).
///
/// The lock is a pthread mutex for the reason ``Locked`` gives: ThreadSanitizer sees it.
public final class LockedSlots<Value>: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let stride: Int
    @usableFromInline let valueOffset: Int
    /// How many slots there are.
    public let count: Int

    /// The boundary every slot starts on.
    static var slotAlignment: Int { 128 }

    /// `count` slots, slot `i` starting as `initial(i)`.
    public init(count: Int, initial: (Int) -> Value) {
        precondition(count > 0, "LockedSlots needs a slot")
        let mutexBytes = MemoryLayout<pthread_mutex_t>.size
        valueOffset = Self.roundUp(mutexBytes, to: MemoryLayout<Value>.alignment)
        stride = Self.roundUp(valueOffset + MemoryLayout<Value>.size, to: Self.slotAlignment)
        base = UnsafeMutableRawPointer.allocate(
            byteCount: stride * count,
            alignment: max(Self.slotAlignment, MemoryLayout<Value>.alignment)
        )
        self.count = count
        for index in 0..<count {
            let slot = base + index * stride
            let mutex = slot.bindMemory(to: pthread_mutex_t.self, capacity: 1)
            mutex.initialize(to: pthread_mutex_t())
            let created = pthread_mutex_init(mutex, nil)
            precondition(created == 0, "pthread_mutex_init failed: \(created)")
            (slot + valueOffset).bindMemory(to: Value.self, capacity: 1).initialize(to: initial(index))
        }
    }

    deinit {
        for index in 0..<count {
            let slot = base + index * stride
            pthread_mutex_destroy(slot.assumingMemoryBound(to: pthread_mutex_t.self))
            (slot + valueOffset).assumingMemoryBound(to: Value.self).deinitialize(count: 1)
        }
        base.deallocate()
    }

    private static func roundUp(_ value: Int, to multiple: Int) -> Int {
        (value + multiple - 1) / multiple * multiple
    }

    /// Runs `body` on slot `index`'s value, with that slot's lock held.
    @inlinable
    public func withLock<Result>(_ index: Int, _ body: (inout Value) throws -> Result) rethrows -> Result {
        precondition(index >= 0 && index < count, "slot \(index) out of 0..<\(count)")
        let slot = base + index * stride
        let mutex = slot.assumingMemoryBound(to: pthread_mutex_t.self)
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&(slot + valueOffset).assumingMemoryBound(to: Value.self).pointee)
    }

    /// The address of slot `index`'s first byte, for tests of the layout.
    func address(ofSlot index: Int) -> UnsafeRawPointer { UnsafeRawPointer(base + index * stride) }
}
