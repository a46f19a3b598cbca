import Raft
import Synchronization

/// The batches waiting to go to one peer: bounded (the oldest are dropped when it is full, since Raft
/// resends what matters and fresh messages supersede old ones), and consumable by one reader at a
/// time across reconnections. Unlike `AsyncStream`, a reader's cancellation does not end it: the next
/// stream to the peer picks up where the broken one stopped.
///
/// Two kinds of reader, never both on one outbox: an async task calling ``next()`` (the gRPC
/// stream), or an event-loop handler that must not wait and calls ``take(orWake:owner:)`` (the
/// NIO connection).
final class Outbox: Sendable {
    private struct State {
        /// `batches[head...]` are waiting, oldest first (a moving head keeps taking O(1)).
        var batches: [[Message]] = []
        var head = 0
        var waiter: CheckedContinuation<[Message]?, Never>?
        var wake: (owner: ObjectIdentifier, call: @Sendable () -> Void)?

        var count: Int { batches.count - head }

        mutating func removeFirst() -> [Message] {
            let batch = batches[head]
            batches[head] = []
            head += 1
            if head == batches.count {
                batches.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= 64 && head * 2 >= batches.count {
                batches.removeFirst(head)
                head = 0
            }
            return batch
        }
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Appends `batch`, dropping the oldest when full; hands it straight to a waiting reader, or
    /// calls a reader's wake-up.
    func push(_ batch: [Message]) {
        let (waiter, wake) = state.withLock { s -> (CheckedContinuation<[Message]?, Never>?, (@Sendable () -> Void)?) in
            if let w = s.waiter {
                s.waiter = nil
                return (w, nil)
            }
            s.batches.append(batch)
            if s.count > capacity { _ = s.removeFirst() }
            defer { s.wake = nil }
            return (nil, s.wake?.call)
        }
        waiter?.resume(returning: batch)
        wake?()
    }

    /// The next batch, waiting for one; nil if the calling task is cancelled.
    func next() async -> [Message]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<[Message]?, Never>) in
                let ready = state.withLock { s -> [Message]?? in
                    if s.count > 0 { return .some(s.removeFirst()) }
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

    /// For a reader that must not wait: the oldest batch, or nil after arranging for `wake` to be
    /// called once, from the thread of the next ``push(_:)`` (it should only schedule work).
    /// `owner` identifies the reader, for ``cancelWake(owner:)``.
    func take(orWake wake: @escaping @Sendable () -> Void, owner: ObjectIdentifier) -> [Message]? {
        state.withLock { s in
            if s.count > 0 { return s.removeFirst() }
            s.wake = (owner, wake)
            return nil
        }
    }

    /// Forgets `owner`'s wake-up, if it is still armed (a closed connection's reader; a newer
    /// reader's wake-up stays).
    func cancelWake(owner: ObjectIdentifier) {
        state.withLock { s in
            if s.wake?.owner == owner { s.wake = nil }
        }
    }

    /// How many batches are waiting.
    var count: Int { state.withLock { $0.count } }

    private func takeWaiter() -> CheckedContinuation<[Message]?, Never>? {
        state.withLock { s in
            defer { s.waiter = nil }
            return s.waiter
        }
    }
}
