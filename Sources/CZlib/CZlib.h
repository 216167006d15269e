#ifndef XI_GATEWAY_CZLIB_H
#define XI_GATEWAY_CZLIB_H
#include <zlib.h>
#endif
