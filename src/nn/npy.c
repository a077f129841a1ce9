/*
 * npy.c — NumPy .npy files (float32, C order) for model inputs and outputs: `facekit nn run` reads and writes
 * them and the reference scripts in tests/ref exchange tensors through them. The reader is strict because
 * the files come from outside: only '<f4', fortran_order False, a well-formed header dict and exactly the
 * data the shape announces; everything else is FK_EFORMAT with a message, never a crash.
 */
#include "nn/ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* Finds 'KEY': in the header dict and returns a pointer just after the colon (spaces skipped). */
static const char *dict_value(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

int fk_nn_npy_read(const char *path, float **data, int *rank, int64_t dims[FK_NN_MAX_RANK], char *errbuf,
                   size_t errbuf_size) {
    if (!path || !data || !rank || !dims) return FK_EINVAL;
    *data = NULL;
    *rank = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fk__seterr(errbuf, errbuf_size, "%s: %s", path, strerror(errno));
        return FK_EIO;
    }
    int rc = FK_EFORMAT;
    char *hdr = NULL;
    float *vals = NULL;
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, npy_magic, 6)) {
        fk__seterr(errbuf, errbuf_size, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            fk__seterr(errbuf, errbuf_size, "%s: truncated header", path);
            goto out;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        fk__seterr(errbuf, errbuf_size, "%s: unsupported .npy version %d", path, pre[6]);
        goto out;
    }
    if (hlen == 0 || hlen > 65536) {
        fk__seterr(errbuf, errbuf_size, "%s: header length %zu", path, hlen);
        goto out;
    }
    hdr = fk__malloc(hlen + 1);
    if (!hdr) {
        rc = FK_ENOMEM;
        goto out;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        fk__seterr(errbuf, errbuf_size, "%s: truncated header", path);
        goto out;
    }
    hdr[hlen] = 0;
    if (memchr(hdr, 0, hlen)) {
        fk__seterr(errbuf, errbuf_size, "%s: NUL in header", path);
        goto out;
    }
    const char *v = dict_value(hdr, "descr");
    if (!v || (strncmp(v, "'<f4'", 5) && strncmp(v, "'float32'", 9))) {
        fk__seterr(errbuf, errbuf_size, "%s: dtype must be little-endian float32 '<f4'", path);
        goto out;
    }
    v = dict_value(hdr, "fortran_order");
    if (!v || strncmp(v, "False", 5)) {
        fk__seterr(errbuf, errbuf_size, "%s: only C order (fortran_order False) is supported", path);
        goto out;
    }
    v = dict_value(hdr, "shape");
    if (!v || *v != '(') {
        fk__seterr(errbuf, errbuf_size, "%s: missing shape", path);
        goto out;
    }
    v++;
    int r = 0;
    int64_t numel = 1;
    for (;;) {
        while (*v == ' ' || *v == ',') v++;
        if (*v == ')') break;
        if (*v < '0' || *v > '9' || r == FK_NN_MAX_RANK) {
            fk__seterr(errbuf, errbuf_size, "%s: bad shape (rank above %d or not integers)", path, FK_NN_MAX_RANK);
            goto out;
        }
        char *end;
        errno = 0;
        long long d = strtoll(v, &end, 10);
        if (errno || d < 0 || d > ((int64_t)1 << 32)) {
            fk__seterr(errbuf, errbuf_size, "%s: bad dimension", path);
            goto out;
        }
        dims[r++] = d;
        numel *= d;
        if (numel > FK__MAX_NUMEL) {
            fk__seterr(errbuf, errbuf_size, "%s: array too large", path);
            rc = FK_ELIMIT;
            goto out;
        }
        v = end;
    }
    size_t bytes = (size_t)numel * sizeof(float);
    vals = fk__malloc(bytes ? bytes : 4);
    if (!vals) {
        rc = FK_ENOMEM;
        goto out;
    }
    if (fread(vals, 1, bytes, f) != bytes) {
        fk__seterr(errbuf, errbuf_size, "%s: truncated data (%lld values expected)", path, (long long)numel);
        goto out;
    }
    if (fgetc(f) != EOF) {
        fk__seterr(errbuf, errbuf_size, "%s: trailing bytes after the data", path);
        goto out;
    }
    for (int i = r; i < FK_NN_MAX_RANK; i++) dims[i] = 0;
    *rank = r;
    *data = vals;
    vals = NULL;
    rc = FK_OK;
out:
    fclose(f);
    fk__free(hdr);
    fk__free(vals);
    return rc;
}

int fk_nn_npy_write(const char *path, const float *data, int rank, const int64_t *dims, char *errbuf,
                    size_t errbuf_size) {
    if (!path || (!data && rank) || rank < 0 || rank > FK_NN_MAX_RANK || (rank && !dims)) return FK_EINVAL;
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    int64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return FK_EINVAL;
        len += snprintf(dict + len, sizeof dict - (size_t)len, "%lld,%s", (long long)dims[i],
                        i + 1 < rank ? " " : "");
        numel *= dims[i];
    }
    if (rank > 1) len--; /* numpy writes (2, 3) but (5,) */
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    /* header padded with spaces and a newline so that the data starts on a 64-byte boundary */
    size_t total = 10 + (size_t)len + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)len + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    FILE *f = fopen(path, "wb");
    if (!f) {
        fk__seterr(errbuf, errbuf_size, "%s: %s", path, strerror(errno));
        return FK_EIO;
    }
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(data, sizeof(float), (size_t)numel, f) == (size_t)numel;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        fk__seterr(errbuf, errbuf_size, "%s: write failed", path);
        return FK_EIO;
    }
    return FK_OK;
}
