import Raft
import Synchronization

/// The batches waiting to go to one peer: bounded (the oldest are dropped when it is full, since Raft
/// resends what matters and fresh messages supersede old ones), and consumable by one reader at a
/// time across reconnections. Unlike `AsyncStream`, a reader's cancellation does not end it: the next
/// stream to the peer picks up where the broken one stopped.
final class Outbox: Sendable {
    private struct State {
        var batches: [[Message]] = []
        var waiter: CheckedContinuation<[Message]?, Never>?
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func push(_ batch: [Message]) {
        let waiter = state.withLock { s -> CheckedContinuation<[Message]?, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.batches.append(batch)
            if s.batches.count > capacity { s.batches.removeFirst() }
            return nil
        }
        waiter?.resume(returning: batch)
    }

    /// The next batch, waiting for one; nil if the calling task is cancelled.
    func next() async -> [Message]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<[Message]?, Never>) in
                let ready = state.withLock { s -> [Message]?? in
                    if !s.batches.isEmpty { return .some(s.batches.removeFirst()) }
                    s.waiter = c
                    return .none
                }
                if let ready {
                    c.resume(returning: ready)
                } else if Task.isCancelled {
                    takeWaiter()?.resume(returning: nil)
                }
            }
        } onCancel: {
            takeWaiter()?.resume(returning: nil)
        }
    }

    private func takeWaiter() -> CheckedContinuation<[Message]?, Never>? {
        state.withLock { s in
            defer { s.waiter = nil }
            return s.waiter
        }
    }
}
