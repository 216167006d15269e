/// A map with a cost bound that forgets its least recently used entries first.
///
/// Entries live in a slab of slots; the recency list links slots by index in two plain integer arrays,
/// so a hit is one hash lookup and a few integer writes: no allocation, no copy of the entry, no
/// reference counting of list nodes. Not thread-safe; ``ResponseCache`` keeps each one behind a lock.
struct LRUStore<Key: Hashable, Value> {
    private static var none: Int { -1 }

    /// By slot: the key, `nil` for a free slot. Keys, values and costs are kept apart so that a hit copies
    /// out its value alone (a copy of a whole entry would also retain and release its key).
    private var keys: [Key?] = []
    private var values: [Value?] = []
    private var costs: [Int] = []
    /// For each slot, the next more recently used slot.
    private var newer: [Int] = []
    /// For each slot, the next less recently used slot.
    private var older: [Int] = []
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
        return values[index]
    }

    /// Changes the value for `key` in place, if present, without touching its recency or cost.
    mutating func update(_ key: Key, _ change: (inout Value) -> Void) {
        guard let index = indexByKey[key], values[index] != nil else { return }
        change(&values[index]!)
    }

    /// Inserts or replaces; `false` (and nothing stored, any old value removed) when `cost` exceeds capacity.
    mutating func insert(_ value: Value, for key: Key, cost: Int) -> Bool {
        removeValue(for: key)
        guard cost <= capacity else { return false }
        while totalCost + cost > capacity, oldest != Self.none {
            evict(oldest)
        }
        let index: Int
        if let free = freeSlots.popLast() {
            index = free
            keys[index] = key
            values[index] = value
            costs[index] = cost
        } else {
            index = keys.count
            keys.append(key)
            values.append(value)
            costs.append(cost)
            newer.append(Self.none)
            older.append(Self.none)
        }
        linkAsNewest(index)
        indexByKey[key] = index
        totalCost += cost
        return true
    }

    /// Removes `key`'s entry, if any.
    @discardableResult
    mutating func removeValue(for key: Key) -> Value? {
        guard let index = indexByKey.removeValue(forKey: key), let value = values[index] else { return nil }
        unlink(index)
        keys[index] = nil
        values[index] = nil
        freeSlots.append(index)
        totalCost -= costs[index]
        return value
    }

    /// Removes every entry whose key `matches`; returns how many.
    mutating func removeAll(where matches: (Key) -> Bool) -> Int {
        let doomed = indexByKey.keys.filter(matches)
        for key in doomed { removeValue(for: key) }
        return doomed.count
    }

    /// Calls `body` with every key, in no particular order.
    func forEachKey(_ body: (Key) -> Void) {
        for key in indexByKey.keys { body(key) }
    }

    /// Keys from most to least recently used (for tests).
    var keysByRecency: [Key] {
        var keys: [Key] = []
        var index = newest
        while index != Self.none, let key = self.keys[index] {
            keys.append(key)
            index = older[index]
        }
        return keys
    }

    private mutating func evict(_ index: Int) {
        guard let key = keys[index] else { return }
        removeValue(for: key)
        evictions += 1
    }

    private mutating func moveToFront(_ index: Int) {
        guard index != newest else { return }
        unlink(index)
        linkAsNewest(index)
    }

    private mutating func linkAsNewest(_ index: Int) {
        older[index] = newest
        newer[index] = Self.none
        if newest != Self.none { newer[newest] = index }
        newest = index
        if oldest == Self.none { oldest = index }
    }

    private mutating func unlink(_ index: Int) {
        let newerIndex = newer[index]
        let olderIndex = older[index]
        if newerIndex != Self.none { older[newerIndex] = olderIndex } else { newest = olderIndex }
        if olderIndex != Self.none { newer[olderIndex] = newerIndex } else { oldest = newerIndex }
        newer[index] = Self.none
        older[index] = Self.none
    }
}
