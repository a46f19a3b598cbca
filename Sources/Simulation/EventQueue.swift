/// A min-heap of timed events. Ties in time are broken by insertion order, so the order of
/// events (and with it the whole run) depends on nothing but the seed.
struct EventQueue<Payload> {
    private struct Item {
        var time: UInt64
        var seq: UInt64
        var payload: Payload
        func before(_ other: Item) -> Bool { time != other.time ? time < other.time : seq < other.seq }
    }

    private var heap: [Item] = []
    private var nextSeq: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func push(_ payload: Payload, at time: UInt64) {
        heap.append(Item(time: time, seq: nextSeq, payload: payload))
        nextSeq += 1
        var k = heap.count - 1
        while k > 0 {
            let parent = (k - 1) / 2
            guard heap[k].before(heap[parent]) else { break }
            heap.swapAt(k, parent)
            k = parent
        }
    }

    mutating func pop() -> (time: UInt64, payload: Payload)? {
        guard !heap.isEmpty else { return nil }
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var k = 0
            while true {
                let l = 2 * k + 1
                let r = l + 1
                var m = k
                if l < heap.count && heap[l].before(heap[m]) { m = l }
                if r < heap.count && heap[r].before(heap[m]) { m = r }
                if m == k { break }
                heap.swapAt(k, m)
                k = m
            }
        }
        return (top.time, top.payload)
    }
}
