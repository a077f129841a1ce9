/*
 * cmd_core.c — `facekit version` and `facekit models`.
 */
#include "cli.h"
#include "facekit.h"

#include <stdio.h>
#include <string.h>

int fk_cli_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("facekit %s\n", fk_version_string());
    return 0;
}

int fk_cli_models(int argc, char **argv) {
    const char *dir = fk_cli_models_dir();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr, "usage: facekit models [--dir MODELS_DIR]\n");
            return 2;
        }
    }
    char lock[4096], err[256] = "";
    snprintf(lock, sizeof lock, "%s/models.lock", dir);
    fk_model_file_check_t *res = NULL;
    size_t n = 0;
    int rc = fk_models_verify(dir, lock, &res, &n, err, sizeof err);
    if (rc != FK_OK) {
        fprintf(stderr, "facekit models: %s: %s\n", fk_status_str(rc), err);
        return 1;
    }
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        printf("%-40s %10llu %s %s\n", res[i].name, (unsigned long long)res[i].size,
               res[i].sha256[0] ? res[i].sha256 : "-", res[i].ok ? "ok" : res[i].problem);
        if (!res[i].ok) {
            fprintf(stderr, "facekit models: %s: %s\n", res[i].name, res[i].problem);
            bad++;
        }
    }
    fk_free(res);
    if (n == 0) {
        fprintf(stderr, "facekit models: %s lists no model files\n", lock);
        return 1;
    }
    return bad ? 1 : 0;
}
