#ifndef CARESYNC_CCURL_SHIM_H
#define CARESYNC_CCURL_SHIM_H
#include <curl/curl.h>
#endif
