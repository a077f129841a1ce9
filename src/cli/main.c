/*
 * main.c — `facekit` dispatcher: finds the sub-command in one table and hands it the rest of argv.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FK_DEFAULT_MODELS_DIR
#define FK_DEFAULT_MODELS_DIR "models"
#endif
#ifndef FK_DEFAULT_DATA_DIR
#define FK_DEFAULT_DATA_DIR "../shared/data"
#endif

static const struct {
    const char *name;
    fk_cli_fn fn;
    const char *help;
} commands[] = {
    {"version", fk_cli_version, "print the library version"},
    {"models", fk_cli_models, "verify model files against models/models.lock"},
    {"nn", fk_cli_nn, "neural-network models: nn info|run|bench MODEL"},
    {"detect", fk_cli_detect, "find faces: detect IMG [--draw out.jpg] [--size WxH] [--min-face PX]"},
    {"analyze", fk_cli_analyze, "quality, liveness and attributes of each face: analyze IMG"},
    {"embed", fk_cli_embed, "template of the largest face: embed IMG --out face.fkt [--flip]"},
    {"compare", fk_cli_compare, "compare two faces: compare A B [--threshold T] (images or .fkt)"},
    {"bench", fk_cli_bench, "stage timings: bench pipeline IMG [--threads N] [--runs N]"},
    {"calibrate", fk_cli_calibrate, "fit the compare calibration: calibrate lfw --pairs P --root D --out M"},
    {"eval", fk_cli_eval, "accuracy: eval lfw (verification), eval detect (recall, false positives)"},
    {"enroll", fk_cli_enroll, "enrol a person: enroll --data DIR --name NAME [--group G] [--external-id ID] IMG..."},
    {"identify", fk_cli_identify, "1:N search: identify --data DIR IMG [--group G] [--top K]"},
    {"gallery", fk_cli_gallery, "gallery list|show|remove|export|import --data DIR ..."},
    {"serve", fk_cli_serve, "the HTTP service: serve --data DIR --listen HOST:PORT [--config FILE]"},
    {"user", fk_cli_user, "accounts: echo PASS | user add --data DIR --name NAME --role ROLE --password-stdin"},
    {"apikey", fk_cli_apikey, "API keys: apikey create --data DIR --role ROLE --name NAME"},
    {"audit", fk_cli_audit, "audit log: audit verify --data DIR"},
};

const char *fk_cli_models_dir(void) {
    const char *d = getenv("FK_MODELS_DIR");
    return d && *d ? d : FK_DEFAULT_MODELS_DIR;
}

const char *fk_cli_data_dir(void) {
    const char *d = getenv("FK_DATA");
    return d && *d ? d : FK_DEFAULT_DATA_DIR;
}

static void usage(FILE *f) {
    fprintf(f, "usage: facekit COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    /* `bench search` lives with the gallery (cmd_gallery.c); other bench kinds in the table's entry */
    if (argc > 2 && !strcmp(argv[1], "bench") && !strcmp(argv[2], "search")) return fk_cli_bench_search(argc - 2, argv + 2);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "facekit: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
