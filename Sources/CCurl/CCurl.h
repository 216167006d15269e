#ifndef XI_GATEWAY_CCURL_H
#define XI_GATEWAY_CCURL_H
#include <curl/curl.h>
#endif
