#ifndef CARESYNC_COPENSSL_SHIM_H
#define CARESYNC_COPENSSL_SHIM_H
#include <openssl/crypto.h>
#include <openssl/evp.h>
#endif
