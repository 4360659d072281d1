import CCurl
import Glibc
import Synchronization

/// The one thread that owns the libcurl multi handle. It loops on `curl_multi_poll`; other threads
/// only ever touch the locked inbox and call `curl_multi_wakeup` (libcurl allows both from any thread).
final class Engine: @unchecked Sendable {
    private struct Inbox {
        var starts: [Transfer] = []
        var cancels: [UInt64] = []
        var stopRequested = false
        /// The engine thread is in (or about to enter) `curl_multi_poll` and nobody has woken it yet:
        /// only then does new work need a `curl_multi_wakeup` (a system call).
        var sleeping = false
        /// Set by the engine thread as it exits; afterwards the multi handle is gone.
        var closed = false
    }

    private enum ThreadState {
        case running(pthread_t)
        case finished
    }

    /// The `CURLM *` multi handle; used by the engine thread, and by others only for wakeup under the
    /// inbox lock while `closed` is false.
    private let multi: UnsafeMutableRawPointer
    private let inbox = Mutex(Inbox())
    private let thread = Mutex(ThreadState.finished)
    /// Transfers attached to the multi handle, by id. Engine thread only.
    private var active: [UInt64: Transfer] = [:]

    init(configuration: HTTPClient.Configuration) {
        precondition(CurlRuntime.initialized, "libcurl or OpenSSL failed to initialise")
        guard let multi = curl_multi_init() else { preconditionFailure("curl_multi_init failed (out of memory)") }
        self.multi = multi
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_PIPELINING, ccurl_pipe_multiplex)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maximumConnectionsPerHost)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, configuration.maximumTotalConnections)
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.idleConnectionCacheSize)
    }

    /// Starts the engine thread. Called once, right after `init`.
    func start() {
        var id = pthread_t()
        let engine = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(&id, nil, engineThreadMain, engine)
        precondition(status == 0, "cannot start the HTTP engine thread (\(status))")
        thread.withLock { $0 = .running(id) }
    }

    // MARK: Called from any thread

    /// Hands `transfer` to the engine, or resumes it at once if it was cancelled or the client is down.
    func submit(_ transfer: Transfer) {
        enum Decision { case queued, cancelled, shutDown }
        let decision = transfer.ticket.state.withLock { state -> Decision in
            guard state == .created else { return .cancelled }
            let queued = inbox.withLock { inbox -> Bool in
                guard !inbox.stopRequested else { return false }
                inbox.starts.append(transfer)
                Self.wake(&inbox, multi)
                return true
            }
            guard queued else { return .shutDown }
            state = .submitted
            return .queued
        }
        switch decision {
        case .queued: break
        case .cancelled: transfer.resume(.failure(Self.cancelledError(transfer)))
        case .shutDown: transfer.resume(.failure(Self.shutDownError(transfer)))
        }
    }

    /// Asks the engine to abandon a transfer (the task awaiting it was cancelled).
    func cancel(_ ticket: TransferTicket) {
        ticket.state.withLock { state in
            switch state {
            case .created:
                state = .cancelled
            case .submitted:
                inbox.withLock { inbox in
                    guard !inbox.closed else { return }
                    inbox.cancels.append(ticket.id)
                    Self.wake(&inbox, multi)
                }
            case .cancelled:
                break
            }
        }
    }

    /// Fails every queued and running transfer with `.shutDown` and stops the thread. With `wait`, returns
    /// once the thread has exited (unless called on the engine thread itself).
    func stop(wait: Bool) {
        inbox.withLock { inbox in
            inbox.stopRequested = true
            if !inbox.closed { curl_multi_wakeup(multi) }
        }
        let running: pthread_t? = thread.withLock { state in
            guard case .running(let id) = state else { return nil }
            state = .finished
            return id
        }
        guard let running else { return }
        if wait, pthread_equal(running, pthread_self()) == 0 {
            pthread_join(running, nil)
        } else {
            pthread_detach(running)
        }
    }

    // MARK: Engine thread

    fileprivate func run() {
        var running: Int32 = 0
        while true {
            let (starts, cancels, stopRequested) = inbox.withLock { inbox in
                defer {
                    inbox.starts.removeAll(keepingCapacity: true)
                    inbox.cancels.removeAll(keepingCapacity: true)
                }
                return (inbox.starts, inbox.cancels, inbox.stopRequested)
            }
            for transfer in starts { attach(transfer) }
            for id in cancels { abandon(id, with: Self.cancelledError) }
            if stopRequested { break }

            curl_multi_perform(multi, &running)
            collectFinished()
            let idle = inbox.withLock { inbox -> Bool in
                guard inbox.starts.isEmpty, inbox.cancels.isEmpty, !inbox.stopRequested else { return false }
                inbox.sleeping = true
                return true
            }
            if idle {
                curl_multi_poll(multi, nil, 0, 1000, nil)
                inbox.withLock { $0.sleeping = false }
            }
        }
        for id in Array(active.keys) { abandon(id, with: Self.shutDownError) }
        let late = inbox.withLock { inbox in
            inbox.closed = true
            defer { inbox.starts.removeAll() }
            return inbox.starts
        }
        for transfer in late { transfer.resume(.failure(Self.shutDownError(transfer))) }
        curl_multi_cleanup(multi)
    }

    /// Wakes the engine thread if it sleeps; called with the inbox locked.
    private static func wake(_ inbox: inout Inbox, _ multi: UnsafeMutableRawPointer) {
        guard inbox.sleeping else { return }
        inbox.sleeping = false
        curl_multi_wakeup(multi)
    }

    private func attach(_ transfer: Transfer) {
        let status = curl_multi_add_handle(multi, transfer.easy)
        guard status == CURLM_OK else {
            let text = String(cString: curl_multi_strerror(status))
            transfer.resume(
                .failure(HTTPError(code: .internalError, message: "curl_multi_add_handle failed: \(text)", url: transfer.redactedURL)))
            return
        }
        active[transfer.ticket.id] = transfer
    }

    /// Removes a running transfer (its connection is closed, as the response is incomplete) and resumes it.
    private func abandon(_ id: UInt64, with error: (Transfer) -> HTTPError) {
        guard let transfer = active.removeValue(forKey: id) else { return }  // already finished
        curl_multi_remove_handle(multi, transfer.easy)
        transfer.resume(.failure(error(transfer)))
    }

    private func collectFinished() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let status = message.pointee.data.result
            var pointer: UnsafeMutableRawPointer?
            _ = ccurl_easy_getinfo_pointer(easy, CURLINFO_PRIVATE, &pointer)
            guard let pointer else { continue }
            let transfer = Unmanaged<Transfer>.fromOpaque(pointer).takeUnretainedValue()
            active.removeValue(forKey: transfer.ticket.id)
            curl_multi_remove_handle(multi, easy)
            transfer.resume(transfer.outcome(status))
        }
    }

    private static func cancelledError(_ transfer: Transfer) -> HTTPError {
        HTTPError(code: .cancelled, message: "the request was cancelled", url: transfer.redactedURL)
    }

    private static func shutDownError(_ transfer: Transfer) -> HTTPError {
        HTTPError(code: .shutDown, message: "the HTTP client was shut down", url: transfer.redactedURL)
    }
}

/// The engine thread's entry point: non-capturing, gets its engine through the argument.
private func engineThreadMain(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let engine = Unmanaged<Engine>.fromOpaque(argument!).takeRetainedValue()
    engine.run()
    return nil
}
