// libFuzzer's driver, which the fuzz targets call from their own main (SwiftPM gives every executable
// target a main, so libFuzzer's own cannot be used).
#ifndef XI_GATEWAY_CFUZZER_H
#define XI_GATEWAY_CFUZZER_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
