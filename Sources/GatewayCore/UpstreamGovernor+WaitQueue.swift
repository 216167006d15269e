import DequeModule

extension UpstreamGovernor {
    /// The requests waiting for a slot, oldest first (also the shared governor's local queue, hence `package`).
    /// Joining, taking the oldest and cancelling any one cost the same (amortised) whatever the queue's
    /// length, so a full queue of `UPSTREAM_MAX_QUEUE` (up to a million) timing out does not stall the
    /// governor's lock.
    ///
    /// A cancelled waiter is forgotten at once but its entry stays in the order, skipped, until it reaches
    /// an end of it, or until cancelled entries outnumber waiting ones and the order is rebuilt without
    /// them: a rebuild costs as many steps as the cancellations since the last one, at most twice over.
    package struct WaitQueue {
        /// The waiting ids in arrival order, with cancelled ones not yet dropped. Its first and last
        /// entries, when it has any, are waiting.
        private var order: Deque<Int> = []
        /// The ids still waiting.
        private var waiting: Set<Int> = []
        /// Entries stepped over in all, dropping cancelled ones or rebuilding the order: the only work not
        /// bounded by a constant per call. For tests, which check that it grows with the number of calls, not
        /// with the queue's length.
        private(set) var entriesVisited = 0

        /// Cancelled entries tolerated beyond as many as there are waiters, so that a short queue is not
        /// rebuilt on every cancellation.
        private static let slack = 16

        /// An empty queue.
        package init() {}

        /// How many requests are waiting.
        package var count: Int { waiting.count }

        /// Whether no request is waiting.
        package var isEmpty: Bool { waiting.isEmpty }

        /// The oldest waiter, left in the queue.
        package var first: Int? { order.first }

        /// Entries held, cancelled ones included: at most twice ``count`` plus a few.
        var storedEntries: Int { order.count }

        /// The waiting ids, oldest first. Linear in the queue's length: for tests.
        var ids: [Int] { order.filter { waiting.contains($0) } }

        /// Queues `id`, which must not be waiting already.
        package mutating func append(_ id: Int) {
            let (inserted, _) = waiting.insert(id)
            precondition(inserted, "request \(id) is already waiting")
            order.append(id)
        }

        /// Takes the oldest waiter out, if any.
        package mutating func popFirst() -> Int? {
            guard let first = order.popFirst() else { return nil }
            waiting.remove(first)
            dropCancelledEnds()
            return first
        }

        /// Takes `id` out (its time ran out); `false` when it was not waiting.
        package mutating func remove(_ id: Int) -> Bool {
            guard waiting.remove(id) != nil else { return false }
            dropCancelledEnds()
            if order.count > 2 * waiting.count + Self.slack {
                entriesVisited += order.count
                let waiting = waiting
                order = Deque(order.lazy.filter { waiting.contains($0) })
            }
            return true
        }

        /// Takes every waiter out, oldest first.
        package mutating func removeAll() -> [Int] {
            let all = ids
            entriesVisited += order.count
            order = []
            waiting = []
            return all
        }

        /// Drops cancelled entries from both ends, so that the oldest entry is always a waiter.
        private mutating func dropCancelledEnds() {
            while let first = order.first, !waiting.contains(first) {
                order.removeFirst()
                entriesVisited += 1
            }
            while let last = order.last, !waiting.contains(last) {
                order.removeLast()
                entriesVisited += 1
            }
        }
    }
}
