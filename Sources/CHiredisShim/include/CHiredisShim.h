// Entry points of hiredis whose C signature differs between versions (0.14 returns int where 1.x returns
// long long) or that are macros or raw struct fields, so the Swift side compiles against either.
#ifndef XI_GATEWAY_CHIREDISSHIM_H
#define XI_GATEWAY_CHIREDISSHIM_H

#include <stddef.h>
#include "../../CHiredis/CHiredis.h"

/// Encodes one command in RESP (an array of bulk strings) into a buffer allocated with malloc, stored in
/// `*target`; returns its length, or -1 (and `*target` NULL) when out of memory. Free it with
/// gw_redis_free_command.
long long gw_redis_format_command(char **target, int argc, const char **argv, const size_t *argvlen);

/// Frees a buffer made by gw_redis_format_command; NULL is allowed.
void gw_redis_free_command(char *command);

/// The reader's error text (empty when it has none); valid while the reader lives.
const char *gw_redis_reader_error(const redisReader *reader);

/// Whether the reader is in error (a malformed stream or out of memory); it is then unusable.
int gw_redis_reader_failed(const redisReader *reader);

#endif
