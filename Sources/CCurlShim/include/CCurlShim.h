// Typed entry points for libcurl's variadic functions, which Swift cannot call directly.
#ifndef XI_GATEWAY_CCURLSHIM_H
#define XI_GATEWAY_CCURLSHIM_H

#include "../../CCurl/CCurl.h"

typedef size_t (*gw_curl_data_callback)(char *data, size_t size, size_t count, void *userdata);

CURLcode gw_curl_global_init(void);
/// The run-time libcurl's version as 0xXXYYZZ, and as text.
unsigned int gw_curl_version_number(void);
const char *gw_curl_version_text(void);
void gw_curl_global_cleanup(void);

CURLcode gw_curl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode gw_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode gw_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode gw_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode gw_curl_easy_setopt_write_function(CURL *handle, gw_curl_data_callback callback);
CURLcode gw_curl_easy_setopt_header_function(CURL *handle, gw_curl_data_callback callback);

CURLcode gw_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode gw_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);

/// Allows only http and https (no file://, no redirects to other schemes), on any libcurl version.
CURLcode gw_curl_easy_restrict_to_http(CURL *handle);

CURLMcode gw_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value);

/// The easy handle and result of a finished transfer; returns 0 when `message` is not CURLMSG_DONE.
int gw_curl_message_done(CURLMsg *message, CURL **handle, CURLcode *result);

#endif
