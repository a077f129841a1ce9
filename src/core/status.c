/*
 * status.c — version numbers and status strings: the smallest piece of the public API.
 */
#include "core.h"

#include <stdio.h>

int fk_version_number(void) { return FK_VERSION_MAJOR * 10000 + FK_VERSION_MINOR * 100 + FK_VERSION_PATCH; }

const char *fk_version_string(void) { return FK_VERSION_STRING; }

const char *fk_status_str(int status) {
    switch (status) {
#define FK__STATUS_CASE(name, value, text) \
    case value:                            \
        return text;
        FK_STATUS_LIST(FK__STATUS_CASE)
#undef FK__STATUS_CASE
    default:
        return "unknown status";
    }
}

void fk__seterr(char *buf, size_t size, const char *fmt, ...) {
    if (!buf || size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}
