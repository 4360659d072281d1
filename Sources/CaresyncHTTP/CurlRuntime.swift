import CCurl
import COpenSSL
import Glibc

/// Process-wide set-up, done once before the first client exists.
enum CurlRuntime {
    /// Ignores SIGPIPE (a peer closing a socket must not kill the daemon; libcurl is also told
    /// `CURLOPT_NOSIGNAL`), initialises OpenSSL without its exit-time cleanup (which otherwise
    /// races the transport thread at exit and crashes), then initialises libcurl.
    static let initialized: Bool = {
        signal(SIGPIPE, SIG_IGN)
        guard copenssl_init_without_atexit() == 1 else { return false }
        return curl_global_init(ccurl_global_default) == CURLE_OK
    }()
}
