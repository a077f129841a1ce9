/*
 * test_server_parse.c — the service's body parsers in-process (src/server/http.c): multipart/form-data
 * (fk__multipart_parse) and JSON bodies (fk__json_body_parse) with base64 images (fk__b64_decode). Valid
 * bodies parse to the exact fields and bytes (boundary quoted or not, binary data holding CRLF and "--",
 * preamble and epilogue); then thousands of truncated and mutated bodies and boundaries are parsed from
 * exact-size heap copies, so that a sanitizer build (ASan/UBSan) catches any read outside the body, and
 * every answer must be one of the documented codes with parts lying inside the body. Deterministic (fixed
 * PRNG seed); tests/fuzz_multipart.c runs the same entry points under libFuzzer.
 */
#include "fk_test.h"
#include "server/server.h"

#include <stdint.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) { /* xorshift64*: the same sequence on every run */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static void put(buf_t *b, const void *p, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }
static void insert_at(buf_t *b, size_t at, const void *p, size_t k) {
    buf_t tail = {0};
    put(&tail, b->p + at, b->n - at);
    b->n = at;
    put(b, p, k);
    put(b, tail.p, tail.n);
    free(tail.p);
}

/* three fields: text, a binary "file" full of CR, LF and dashes, and an empty one */
static uint8_t file_bytes[3000];
static buf_t valid_body(const char *boundary, int preamble) {
    buf_t b = {0};
    if (preamble) puts_(&b, "this is a preamble; clients may send one\r\n");
    char line[300];
    snprintf(line, sizeof line, "--%s\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda Lovelace\r\n", boundary);
    puts_(&b, line);
    snprintf(line, sizeof line,
             "--%s\r\ncontent-disposition: form-data; name=\"image\"; filename=\"a b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n",
             boundary);
    puts_(&b, line);
    put(&b, file_bytes, sizeof file_bytes);
    snprintf(line, sizeof line, "\r\n--%s\r\nContent-Disposition: form-data; name=empty\r\n\r\n\r\n--%s--\r\n", boundary,
             boundary);
    puts_(&b, line);
    if (preamble) puts_(&b, "epilogue, ignored");
    return b;
}

/* parses an exact-size heap copy (so ASan sees any overread); checks the invariants every answer keeps */
static int parse_copy(const uint8_t *p, size_t n, const char *ctype, fk_part_t *parts, int *np) {
    uint8_t *c = malloc(n ? n : 1);
    if (n) memcpy(c, p, n);
    int rc = fk__multipart_parse(c, n, ctype, parts, FK_MAX_PARTS, np);
    int ok = (rc == 0 || rc == -1 || rc == -2) && *np >= 0 && *np <= FK_MAX_PARTS;
    for (int i = 0; i < *np && ok; i++) {
        ok = parts[i].data >= c && parts[i].size <= n && parts[i].data + parts[i].size <= c + n &&
             memchr(parts[i].name, 0, sizeof parts[i].name) && memchr(parts[i].filename, 0, sizeof parts[i].filename) &&
             memchr(parts[i].ctype, 0, sizeof parts[i].ctype);
        /* rebase onto the caller's buffer before the copy goes */
        if (ok) parts[i].data = p + (parts[i].data - c);
    }
    free(c);
    if (!ok) {
        static int shown;
        if (shown++ < 5) fprintf(stderr, "invariant broken: rc %d, %d parts, n %zu\n", rc, *np, n);
        return -99;
    }
    return rc;
}

static void check_valid(const buf_t *b, const char *ctype, const char *what) {
    fk_part_t parts[FK_MAX_PARTS];
    int np = 0;
    int rc = parse_copy(b->p, b->n, ctype, parts, &np);
    if (rc || np != 3) fprintf(stderr, "valid body (%s): rc %d, %d parts\n", what, rc, np);
    FK_CHECK_INT(rc, 0);
    FK_CHECK_INT(np, 3);
    if (np != 3) return;
    FK_CHECK_STR(parts[0].name, "name");
    FK_CHECK(parts[0].size == 12 && !memcmp(parts[0].data, "Ada Lovelace", 12));
    FK_CHECK_STR(parts[1].name, "image");
    FK_CHECK_STR(parts[1].filename, "a b.jpg");
    FK_CHECK_STR(parts[1].ctype, "image/jpeg");
    FK_CHECK(parts[1].size == sizeof file_bytes && !memcmp(parts[1].data, file_bytes, sizeof file_bytes));
    FK_CHECK_STR(parts[2].name, "empty");
    FK_CHECK_INT(parts[2].size, 0);
}

static void mutate(buf_t *b) {
    int kind = (int)(rnd() % 6);
    size_t at = b->n ? rnd() % b->n : 0;
    static const char *tokens[] = {"\r\n", "--", "\r\n\r\n", "\"", ";", "name=", "boundary=", "\r\n--", "\0"};
    switch (kind) {
    case 0: if (b->n) b->p[at] = (uint8_t)rnd(); break;                       /* flip a byte */
    case 1: if (b->n) b->p[at] ^= (uint8_t)(1u << (rnd() % 8)); break;        /* flip a bit */
    case 2: {                                                                 /* delete a run */
        size_t k = rnd() % 16;
        if (at + k > b->n) k = b->n - at;
        memmove(b->p + at, b->p + at + k, b->n - at - k);
        b->n -= k;
        break;
    }
    case 3: {                                                                 /* insert a token */
        const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
        insert_at(b, at, t, t[0] ? strlen(t) : 1);
        break;
    }
    case 4: b->n = at; break;                                                 /* truncate */
    default: {                                                                /* duplicate a run */
        size_t k = rnd() % 64;
        if (at + k > b->n) k = b->n - at;
        uint8_t tmp[64];
        memcpy(tmp, b->p + at, k);
        insert_at(b, b->n ? rnd() % b->n : 0, tmp, k);
    }
    }
}

static void multipart_tests(void) {
    for (size_t i = 0; i < sizeof file_bytes; i++) {
        static const uint8_t pick[] = {'\r', '\n', '-', 'x', 0, 0xff};
        file_bytes[i] = rnd() % 3 ? (uint8_t)rnd() : pick[rnd() % sizeof pick];
    }
    /* valid bodies: plain, quoted, extra parameters, preamble + epilogue, the longest boundary RFC 2046 allows */
    const char *B = "fkTest7d93a1";
    buf_t b = valid_body(B, 0);
    check_valid(&b, "multipart/form-data; boundary=fkTest7d93a1", "plain");
    check_valid(&b, "multipart/form-data; boundary=\"fkTest7d93a1\"", "quoted");
    check_valid(&b, "Multipart/Form-Data;Boundary=fkTest7d93a1; charset=utf-8", "case, params");
    buf_t bp = valid_body(B, 1);
    check_valid(&bp, "multipart/form-data; boundary=fkTest7d93a1", "preamble");
    char b70[71], ct70[120];
    memset(b70, 'q', 70);
    b70[70] = 0;
    snprintf(ct70, sizeof ct70, "multipart/form-data; boundary=%s", b70);
    buf_t bl = valid_body(b70, 0);
    check_valid(&bl, ct70, "70-char boundary");

    /* no boundary, empty boundary, a boundary absent from the body, an empty body: malformed, not a crash */
    fk_part_t parts[FK_MAX_PARTS];
    int np;
    FK_CHECK_INT(parse_copy(b.p, b.n, "multipart/form-data", parts, &np), -1);
    FK_CHECK_INT(parse_copy(b.p, b.n, "multipart/form-data; boundary=", parts, &np), -1);
    FK_CHECK_INT(parse_copy(b.p, b.n, "multipart/form-data; boundary=\"\"", parts, &np), -1);
    FK_CHECK_INT(parse_copy(b.p, b.n, "multipart/form-data; boundary=other", parts, &np), -1);
    FK_CHECK_INT(parse_copy(b.p, 0, "multipart/form-data; boundary=fkTest7d93a1", parts, &np), -1);
    FK_CHECK_INT(fk__multipart_parse(NULL, 0, "multipart/form-data; boundary=x", parts, FK_MAX_PARTS, &np), -1);
    /* more fields than FK_MAX_PARTS: -2 */
    buf_t many = {0};
    for (int i = 0; i < FK_MAX_PARTS + 3; i++) puts_(&many, "--zz\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n");
    puts_(&many, "--zz--\r\n");
    FK_CHECK_INT(parse_copy(many.p, many.n, "multipart/form-data; boundary=zz", parts, &np), -2);

    /* every truncation of the valid body: malformed until the closing delimiter is whole */
    size_t close_at = b.n - 2; /* "--B--" ends before the final CRLF */
    int trunc_bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        int rc = parse_copy(b.p, n, "multipart/form-data; boundary=fkTest7d93a1", parts, &np);
        if (rc == -99 || (n < close_at && rc == 0) || (n >= close_at && (rc != 0 || np != 3))) trunc_bad++;
    }
    FK_CHECK_INT(trunc_bad, 0);

    /* long, odd and binary boundaries in the header, each against the valid body and a mutated copy */
    int bnd_bad = 0;
    for (int i = 0; i < 2000; i++) {
        char ct[400];
        int k = snprintf(ct, sizeof ct, "multipart/form-data; %sboundary=%s", rnd() % 2 ? "" : "x=1; ", rnd() % 3 ? "" : "\"");
        int len = (int)(rnd() % 300);
        for (int j = 0; j < len && k < (int)sizeof ct - 1; j++) {
            char ch = (char)(rnd() % 3 ? "fkTest7d93a1-\"; \r\n="[rnd() % 19] : (char)(1 + rnd() % 255));
            ct[k++] = ch;
        }
        ct[k] = 0;
        buf_t m = {0};
        put(&m, b.p, b.n);
        if (i % 2) mutate(&m);
        if (parse_copy(m.p, m.n, ct, parts, &np) == -99) bnd_bad++;
        free(m.p);
    }
    FK_CHECK_INT(bnd_bad, 0);

    /* 6000 mutated bodies (1-8 edits each): documented codes only, parts inside the body */
    int mut_bad = 0, still_ok = 0;
    for (int i = 0; i < 6000; i++) {
        buf_t m = {0};
        const buf_t *src = i % 3 == 0 ? &bp : i % 3 == 1 ? &b : &many;
        put(&m, src->p, src->n);
        int edits = 1 + (int)(rnd() % 8);
        for (int e = 0; e < edits; e++) mutate(&m);
        const char *ct = src == &many ? "multipart/form-data; boundary=zz" : "multipart/form-data; boundary=fkTest7d93a1";
        int rc = parse_copy(m.p, m.n, ct, parts, &np);
        if (rc == -99) mut_bad++;
        if (rc == 0) still_ok++;
        free(m.p);
    }
    FK_CHECK_INT(mut_bad, 0);
    FK_CHECK(still_ok > 0); /* some edits land inside the data and leave the body well-formed */
    free(b.p);
    free(bp.p);
    free(bl.p);
    free(many.p);
}

static void json_tests(void) {
    char err[200];
    const char *ok = "{\"image\":\"data:image/png;base64,iVBORw0KGgo=\",\"name\":\"Ada\",\"n\":[1,2.5,null,true]}";
    json_t *j = fk__json_body_parse((const uint8_t *)ok, strlen(ok), err, sizeof err);
    FK_CHECK(j && json_is_object(j));
    FK_CHECK_STR(json_string_value(json_object_get(j, "name")), "Ada");
    json_decref(j);
    static const char *bad[] = {"", "[]", "1", "\"s\"", "null", "{", "{\"a\":1,\"a\":2}", "{\"a\":}", "{'a':1}"};
    int bad_ok = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = fk__json_body_parse((const uint8_t *)bad[i], strlen(bad[i]), err, sizeof err);
        if (j) bad_ok++;
        json_decref(j);
        FK_CHECK(err[0] != 0);
    }
    FK_CHECK_INT(bad_ok, 0);
    /* base64: round trip, then garbage */
    uint8_t raw[256];
    for (int i = 0; i < 256; i++) raw[i] = (uint8_t)i;
    char *enc = fk__b64_encode(raw, sizeof raw);
    uint8_t *dec = NULL;
    size_t dn = 0;
    FK_CHECK(enc && fk__b64_decode(enc, strlen(enc), &dec, &dn) == FK_OK && dn == sizeof raw && !memcmp(dec, raw, dn));
    fk__free(dec);
    fk__free(enc);
    /* truncations and mutations of a JSON body: never a crash; an object or NULL */
    int jbad = 0;
    size_t okn = strlen(ok);
    for (size_t n = 0; n < okn; n++) {
        char *c = malloc(n ? n : 1);
        memcpy(c, ok, n);
        j = fk__json_body_parse((const uint8_t *)c, n, err, sizeof err);
        if (j) jbad++; /* every strict prefix is incomplete */
        json_decref(j);
        free(c);
    }
    FK_CHECK_INT(jbad, 0);
    for (int i = 0; i < 3000; i++) {
        buf_t m = {0};
        put(&m, ok, okn);
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits; e++) mutate(&m);
        char *c = malloc(m.n ? m.n : 1);
        memcpy(c, m.p, m.n);
        j = fk__json_body_parse((const uint8_t *)c, m.n, err, sizeof err);
        if (j && !json_is_object(j)) jbad++;
        json_t *img = json_object_get(j, "image");
        if (json_is_string(img) && fk__b64_decode(json_string_value(img), json_string_length(img), &dec, &dn) == FK_OK)
            fk__free(dec);
        json_decref(j);
        /* the raw bytes as base64 too */
        if (fk__b64_decode(c, m.n, &dec, &dn) == FK_OK) fk__free(dec);
        free(c);
        free(m.p);
    }
    FK_CHECK_INT(jbad, 0);
}

int main(void) {
    multipart_tests();
    json_tests();
    return fk_t_finish();
}
