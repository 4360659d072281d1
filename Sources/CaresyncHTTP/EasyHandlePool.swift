import CCurl
import Synchronization

/// Easy handles kept for reuse: `curl_easy_reset` clears a finished handle's options far more cheaply
/// than `curl_easy_cleanup` + `curl_easy_init` rebuild it. Connections live in the multi handle, not
/// here, so reuse of handles does not affect which connection a request gets.
final class EasyHandlePool: Sendable {
    /// A `CURL *` that is in no multi handle and used by no transfer.
    private struct Handle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let idle = Mutex<[Handle]>([])
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    deinit {
        for handle in idle.withLock({ $0 }) { curl_easy_cleanup(handle.pointer) }
    }

    /// A handle with default options: a recycled one, else a new one (`nil` when out of memory).
    func take() -> UnsafeMutableRawPointer? {
        idle.withLock { $0.popLast() }?.pointer ?? curl_easy_init()
    }

    /// Takes back a handle that has left its multi handle; resets it, or frees it when the pool is full.
    func recycle(_ pointer: UnsafeMutableRawPointer) {
        curl_easy_reset(pointer)
        let kept = idle.withLock { idle -> Bool in
            guard idle.count < capacity else { return false }
            idle.append(Handle(pointer: pointer))
            return true
        }
        if !kept { curl_easy_cleanup(pointer) }
    }
}
