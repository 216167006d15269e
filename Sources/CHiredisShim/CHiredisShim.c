#include "CHiredisShim.h"

#include <stdlib.h>

long long gw_redis_format_command(char **target, int argc, const char **argv, const size_t *argvlen) {
    *target = NULL;
    long long length = redisFormatCommandArgv(target, argc, argv, argvlen);
    if (length < 0) {
        // hiredis leaves nothing allocated on failure, but make sure the caller never sees a stale pointer.
        *target = NULL;
        return -1;
    }
    return length;
}

void gw_redis_free_command(char *command) { free(command); }

const char *gw_redis_reader_error(const redisReader *reader) { return reader->errstr; }

int gw_redis_reader_failed(const redisReader *reader) { return reader->err != 0; }
