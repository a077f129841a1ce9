/*
 * cli.h — the `facekit` command: one entry point per sub-command, each in its own cmd_<area>.c file.
 * The CLI is a thin front-end over the library: it parses arguments, calls facekit.h and prints JSON.
 */
#ifndef FK_CLI_H
#define FK_CLI_H

/* Each returns the process exit code: 0 success, 1 failure reported on stderr, 2 usage error. */
typedef int (*fk_cli_fn)(int argc, char **argv);

int fk_cli_version(int argc, char **argv);
int fk_cli_models(int argc, char **argv);
int fk_cli_nn(int argc, char **argv); /* cmd_nn.c: nn info|run|bench */
/* cmd_face.c: the face pipeline */
int fk_cli_detect(int argc, char **argv);
int fk_cli_analyze(int argc, char **argv);
int fk_cli_embed(int argc, char **argv);
int fk_cli_compare(int argc, char **argv);
int fk_cli_bench(int argc, char **argv);     /* bench pipeline */
int fk_cli_calibrate(int argc, char **argv); /* calibrate lfw */
int fk_cli_eval(int argc, char **argv); /* cmd_eval.c: eval lfw|detect */
int fk_cli_enroll(int argc, char **argv);       /* cmd_gallery.c */
int fk_cli_identify(int argc, char **argv);     /* cmd_gallery.c */
int fk_cli_gallery(int argc, char **argv);      /* cmd_gallery.c: gallery list|show|remove */
int fk_cli_bench_search(int argc, char **argv); /* cmd_gallery.c: bench search (from main.c) */
int fk_cli_serve(int argc, char **argv);  /* cmd_server.c: serve --data DIR --listen HOST:PORT */
int fk_cli_user(int argc, char **argv);   /* cmd_server.c: user add */
int fk_cli_apikey(int argc, char **argv); /* cmd_server.c: apikey create */
int fk_cli_audit(int argc, char **argv);  /* cmd_server.c: audit verify */

/* Directory holding models/<package>/ files: $FK_MODELS_DIR, else the source tree's models/. */
const char *fk_cli_models_dir(void);
/* Test and evaluation data: $FK_DATA, else ../shared/data beside the source tree. */
const char *fk_cli_data_dir(void);

#endif
