/// A map with a cost bound that forgets its least recently used entries first.
///
/// Entries live in a slab of slots linked into a recency list by index, so a hit is one hash lookup and a
/// few index writes: no allocation, no reference counting of list nodes. Not thread-safe; ``ResponseCache``
/// keeps each one behind a lock.
struct LRUStore<Key: Hashable, Value> {
    private struct Slot {
        var key: Key
        var value: Value
        var cost: Int
        var newer: Int
        var older: Int
    }

    private static var none: Int { -1 }

    private var slots: [Slot?] = []
    private var freeSlots: [Int] = []
    private var indexByKey: [Key: Int] = [:]
    /// Most recently used.
    private var newest = LRUStore.none
    /// Least recently used: evicted first.
    private var oldest = LRUStore.none

    /// The bound on the sum of costs.
    let capacity: Int
    private(set) var totalCost = 0
    private(set) var evictions = 0

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { indexByKey.count }

    /// The value for `key`, which becomes the most recently used.
    mutating func value(for key: Key) -> Value? {
        guard let index = indexByKey[key] else { return nil }
        moveToFront(index)
        return slots[index]?.value
    }

    /// Changes the value for `key` in place, if present, without touching its recency or cost.
    mutating func update(_ key: Key, _ change: (inout Value) -> Void) {
        guard let index = indexByKey[key], slots[index] != nil else { return }
        change(&slots[index]!.value)
    }

    /// Inserts or replaces; `false` (and nothing stored, any old value removed) when `cost` exceeds capacity.
    mutating func insert(_ value: Value, for key: Key, cost: Int) -> Bool {
        removeValue(for: key)
        guard cost <= capacity else { return false }
        while totalCost + cost > capacity, oldest != Self.none {
            evict(oldest)
        }
        let slot = Slot(key: key, value: value, cost: cost, newer: Self.none, older: newest)
        let index: Int
        if let free = freeSlots.popLast() {
            index = free
            slots[index] = slot
        } else {
            index = slots.count
            slots.append(slot)
        }
        if newest != Self.none { slots[newest]?.newer = index }
        newest = index
        if oldest == Self.none { oldest = index }
        indexByKey[key] = index
        totalCost += cost
        return true
    }

    /// Removes `key`'s entry, if any.
    @discardableResult
    mutating func removeValue(for key: Key) -> Value? {
        guard let index = indexByKey.removeValue(forKey: key), let slot = slots[index] else { return nil }
        unlink(index)
        slots[index] = nil
        freeSlots.append(index)
        totalCost -= slot.cost
        return slot.value
    }

    /// Keys from most to least recently used (for tests).
    var keysByRecency: [Key] {
        var keys: [Key] = []
        var index = newest
        while index != Self.none, let slot = slots[index] {
            keys.append(slot.key)
            index = slot.older
        }
        return keys
    }

    private mutating func evict(_ index: Int) {
        guard let key = slots[index]?.key else { return }
        removeValue(for: key)
        evictions += 1
    }

    private mutating func moveToFront(_ index: Int) {
        guard index != newest else { return }
        unlink(index)
        slots[index]?.older = newest
        slots[index]?.newer = Self.none
        if newest != Self.none { slots[newest]?.newer = index }
        newest = index
        if oldest == Self.none { oldest = index }
    }

    private mutating func unlink(_ index: Int) {
        guard let slot = slots[index] else { return }
        if slot.newer != Self.none { slots[slot.newer]?.older = slot.older } else { newest = slot.older }
        if slot.older != Self.none { slots[slot.older]?.newer = slot.newer } else { oldest = slot.newer }
        slots[index]?.newer = Self.none
        slots[index]?.older = Self.none
    }
}
