/*
 * fuzz_multipart.c — fuzz target for the service's body parsers (src/server/http.c): multipart/form-data
 * (fk__multipart_parse), JSON bodies (fk__json_body_parse) and the base64 images inside them
 * (fk__b64_decode). Input layout: the first line is the Content-Type header value, the rest is the body
 * (so the fuzzer mutates boundaries and bodies together). With clang the build links it with
 * -fsanitize=fuzzer,address,undefined (and compiles http.c into it, so the parser carries the coverage
 * and sanitizer instrumentation); with other compilers FK_FUZZ_STANDALONE gives a main() that runs the
 * files named on the command line (a corpus or crash reproducers), or a few built-in seeds without
 * arguments. tests/test_server_parse.c is the deterministic ctest over the same entry points.
 */
#include "server/server.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!size) data = (const uint8_t *)""; /* libFuzzer may pass NULL for the empty input */
    const uint8_t *nl = memchr(data, '\n', size < 512 ? size : 512);
    size_t cl = nl ? (size_t)(nl - data) : 0;
    char ctype[513];
    memcpy(ctype, data, cl);
    ctype[cl] = 0;
    const uint8_t *body = nl ? nl + 1 : data;
    size_t n = size - (size_t)(body - data);
    /* an exact-size copy: reads past the body are heap overflows the sanitizer reports */
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return 0;
    if (n) memcpy(b, body, n);
    fk_part_t parts[FK_MAX_PARTS];
    int np = 0;
    int rc = fk__multipart_parse(b, n, ctype, parts, FK_MAX_PARTS, &np);
    if (rc != 0 && rc != -1 && rc != -2) abort();
    for (int i = 0; i < np; i++) {
        if (parts[i].data < b || parts[i].data + parts[i].size > b + n) abort();
        if (!memchr(parts[i].name, 0, sizeof parts[i].name)) abort();
        uint8_t *dec = NULL;
        size_t dn = 0;
        if (fk__b64_decode((const char *)parts[i].data, parts[i].size, &dec, &dn) == FK_OK) fk__free(dec);
    }
    char err[200];
    json_t *j = fk__json_body_parse(b, n, err, sizeof err);
    if (j) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (!json_is_string(v)) continue;
            uint8_t *dec = NULL;
            size_t dn = 0;
            if (fk__b64_decode(json_string_value(v), json_string_length(v), &dec, &dn) == FK_OK) fk__free(dec);
        }
        json_decref(j);
    }
    free(b);
    return 0;
}

#ifdef FK_FUZZ_STANDALONE
static const char *seeds[] = {
    "multipart/form-data; boundary=xx\n--xx\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.jpg\"\r\n"
    "Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n--xx\r\nContent-Disposition: form-data; name=b\r\n\r\nv\r\n--xx--\r\n",
    "application/json\n{\"image\":\"data:image/png;base64,iVBORw0KGgo=\",\"name\":\"x\"}",
    "multipart/form-data; boundary=\"q\"\n--q\r\n\r\n\r\n--q--",
};

int main(int argc, char **argv) {
    int runs = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "fuzz_multipart: cannot open %s\n", argv[i]);
            return 2;
        }
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0, got;
        uint8_t chunk[65536];
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
            if (n + got > cap) {
                cap = (n + got) * 2;
                uint8_t *nb = realloc(buf, cap);
                if (!nb) return 2;
                buf = nb;
            }
            memcpy(buf + n, chunk, got);
            n += got;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf ? buf : (const uint8_t *)"", n);
        free(buf);
        runs++;
    }
    if (argc < 2)
        for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++, runs++)
            LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], strlen(seeds[i]));
    printf("fuzz_multipart: %d inputs, no crash\n", runs);
    return 0;
}
#endif
