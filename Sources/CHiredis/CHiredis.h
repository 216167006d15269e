#ifndef XI_GATEWAY_CHIREDIS_H
#define XI_GATEWAY_CHIREDIS_H
#include <hiredis/hiredis.h>
#endif
