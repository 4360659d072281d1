#ifndef CARESYNC_COPENSSL_TRANSPORT_H
#define CARESYNC_COPENSSL_TRANSPORT_H

// What the HTTP transport (CaresyncHTTP) needs from OpenSSL: process-wide initialisation without
// OpenSSL's exit-time cleanup, and the TLS version of a connection libcurl negotiated.

#include <openssl/crypto.h>
#include <openssl/ssl.h>

/// Initialises libcrypto without registering OpenSSL's atexit cleanup. Call before
/// curl_global_init: otherwise OpenSSL tears itself down at exit while the transport thread may
/// still hold TLS state, and the process crashes on the way out. Returns 1 on success.
static inline int copenssl_init_without_atexit(void) {
    return OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}

/// "TLSv1.2", "TLSv1.3", … for an `SSL *` (libcurl's CURLINFO_TLS_SSL_PTR with the OpenSSL backend).
static inline const char *copenssl_ssl_version(void *ssl) {
    return SSL_get_version((const SSL *)ssl);
}

#endif
