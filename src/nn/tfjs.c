/*
 * tfjs.c — front-end placeholder: replaced by the tfjs loader work. Reports "unsupported" so that callers see a
 * clear error instead of a crash.
 */
#include "nn/graph.h"

#include <stdio.h>

int fk__tfjs_load(fk__graph *g, const char *path) {
    snprintf(g->err, sizeof g->err, "%s: the tfjs front-end is not built yet", path);
    return FK_EUNSUPPORTED;
}
