#ifndef CARESYNC_COPENSSL_SIGNING_H
#define CARESYNC_COPENSSL_SIGNING_H
/* Helpers for signing JWT assertions (RS512) with a PEM private key through EVP_DigestSign.
 * Kept apart from shim.h, which belongs to the transport. */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stddef.h>

/* A passphrase callback that refuses: an encrypted key fails to load instead of prompting on a terminal. */
static inline int caresync_refuse_passphrase(char *buffer, int size, int rwflag, void *userdata) {
    (void)buffer; (void)size; (void)rwflag; (void)userdata;
    return -1;
}

/* Parses a PEM private key (PKCS#8 or traditional RSA); NULL when it does not parse or is encrypted. */
static inline EVP_PKEY *caresync_private_key_from_pem(const unsigned char *pem, size_t length) {
    if (length > 1024 * 1024) return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, caresync_refuse_passphrase, NULL);
    BIO_free(bio);
    return key;
}

static inline void caresync_private_key_free(EVP_PKEY *key) {
    EVP_PKEY_free(key);
}

/* 1 when the key is RSA (including RSA-PSS keys, which RS512 cannot use: those return 0). */
static inline int caresync_private_key_is_rsa(const EVP_PKEY *key) {
    return EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
}

/* The key size in bits. */
static inline int caresync_private_key_bits(const EVP_PKEY *key) {
    return EVP_PKEY_get_bits(key);
}

/* The largest signature the key makes, in bytes. */
static inline size_t caresync_private_key_signature_size(const EVP_PKEY *key) {
    int size = EVP_PKEY_get_size(key);
    return size > 0 ? (size_t)size : 0;
}

/* RSASSA-PKCS1-v1_5 with SHA-512 (JWS "RS512") over message; returns 1 on success and sets *signature_length. */
static inline int caresync_sign_rs512(EVP_PKEY *key, const unsigned char *message, size_t message_length,
                                      unsigned char *signature, size_t *signature_length) {
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    if (context == NULL) return 0;
    int ok = EVP_DigestSignInit(context, NULL, EVP_sha512(), NULL, key) == 1
        && EVP_DigestSign(context, signature, signature_length, message, message_length) == 1;
    EVP_MD_CTX_free(context);
    return ok ? 1 : 0;
}

/* The oldest queued OpenSSL error as text (empty when none), and clears the queue. */
static inline void caresync_last_openssl_error(char *buffer, size_t length) {
    unsigned long code = ERR_get_error();
    if (length == 0) return;
    buffer[0] = '\0';
    if (code != 0) ERR_error_string_n(code, buffer, length);
    ERR_clear_error();
}
#endif
