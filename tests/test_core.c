/*
 * test_core.c — status strings, version, the counting allocator (including injected failures) and
 * SHA-256 model verification on a temporary tree with a corrupted byte.
 */
#include "core/core.h"
#include "fk_test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

int main(void) {
    FK_CHECK_STR(fk_status_str(FK_OK), "ok");
    FK_CHECK_STR(fk_status_str(FK_ENOMEM), "out of memory");
    FK_CHECK_STR(fk_status_str(12345), "unknown status");
    FK_CHECK_INT(fk_version_number(), FK_VERSION_MAJOR * 10000 + FK_VERSION_MINOR * 100 + FK_VERSION_PATCH);

    size_t before = fk_mem_in_use();
    void *p = fk__malloc(1000);
    FK_CHECK(p != NULL);
    FK_CHECK_INT((uintptr_t)p % 64, 0);
    FK_CHECK_INT(fk_mem_in_use() - before, 1000);
    p = fk__realloc(p, 5000);
    FK_CHECK_INT(fk_mem_in_use() - before, 5000);
    fk__free(p);
    FK_CHECK_INT(fk_mem_in_use(), before);
    fk__free(NULL);
    fk__alloc_fail_at(2);
    void *a = fk__malloc(10), *b = fk__malloc(10), *c = fk__malloc(10);
    FK_CHECK(a != NULL);
    FK_CHECK(b == NULL);
    FK_CHECK(c != NULL);
    fk__free(a);
    fk__free(c);
    FK_CHECK(fk__calloc(SIZE_MAX / 2, 4) == NULL);

    /* sha256("abc") is a published test vector */
    char dir[] = "/tmp/fk_test_core_XXXXXX";
    FK_CHECK(mkdtemp(dir) != NULL);
    char path[512], sub[512], lock[512];
    snprintf(sub, sizeof sub, "%s/pkg", dir);
    mkdir(sub, 0700);
    snprintf(path, sizeof path, "%s/pkg/m.onnx", dir);
    write_file(path, "abc");
    char hex[65];
    uint64_t size = 0;
    FK_CHECK_INT(fk_sha256_file(path, hex, &size), FK_OK);
    FK_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    FK_CHECK_INT(size, 3);

    snprintf(lock, sizeof lock, "%s/models.lock", dir);
    write_file(lock, "# comment\nfile pkg m.onnx ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
                     "file pkg gone.onnx ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n");
    fk_model_file_check_t *res = NULL;
    size_t n = 0;
    FK_CHECK_INT(fk_models_verify(dir, lock, &res, &n, NULL, 0), FK_OK);
    FK_CHECK_INT(n, 2);
    if (n == 2) {
        FK_CHECK_INT(res[0].ok, 1);
        FK_CHECK_INT(res[1].ok, 0);
        FK_CHECK(strstr(res[1].problem, "missing") != NULL);
    }
    fk_free(res);
    write_file(path, "abd"); /* one byte differs */
    FK_CHECK_INT(fk_models_verify(dir, lock, &res, &n, NULL, 0), FK_OK);
    FK_CHECK_INT(res[0].ok, 0);
    FK_CHECK(strstr(res[0].problem, "sha256 differs") != NULL);
    fk_free(res);
    unlink(path);
    unlink(lock);
    rmdir(sub);
    rmdir(dir);
    return fk_t_finish();
}
