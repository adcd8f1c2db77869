/*
 * fuzz_util.h -- what the libFuzzer harnesses in fuzz/ share: libFuzzer's
 * two entry points (each fuzz_<target>.c defines both), a reader that
 * turns the fuzzer's bytes into small decisions (running out of bytes reads
 * zeros, so every input decodes), a memory file the path-based loaders can
 * open, the load/save round trip checks of the file-format targets (npy,
 * safetensors), and the one way a harness reports a finding.
 *
 * A harness returns 0 for every library error status: a failing call is
 * the library doing its job. A finding is a crash, a sanitizer report, a
 * leak, or a broken invariant the harness checks (reported through
 * FUZZ_CHECK, which prints the condition and traps, so libFuzzer saves the
 * input).
 */
#ifndef CGRAD_FUZZ_UTIL_H
#define CGRAD_FUZZ_UTIL_H

#include "cgrad.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the entry points ---------------------------------------------------- */

/* libFuzzer calls LLVMFuzzerInitialize once, then LLVMFuzzerTestOneInput
 * with each input; every harness defines both. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a finding ----------------------------------------------------------- */

#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "FUZZ FINDING %s:%d: %s\n", __FILE__, __LINE__,    \
                    #cond);                                                    \
            __builtin_trap();                                                  \
        }                                                                      \
    } while (0)

/* ---- reading decisions from the input -------------------------------------
 */

typedef struct fuzz_reader {
    const uint8_t *p;
    size_t n;
} fuzz_reader;

static inline uint8_t fz_u8(fuzz_reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

/* a value in [0, n) (n >= 1) */
static inline unsigned fz_pick(fuzz_reader *r, unsigned n)
{
    return (unsigned)fz_u8(r) % n;
}

static inline uint16_t fz_u16(fuzz_reader *r)
{
    uint16_t lo = fz_u8(r);
    return (uint16_t)(lo | (uint16_t)fz_u8(r) << 8);
}

static inline uint32_t fz_u32(fuzz_reader *r)
{
    uint32_t lo = fz_u16(r);
    return lo | (uint32_t)fz_u16(r) << 16;
}

static inline uint64_t fz_u64(fuzz_reader *r)
{
    uint64_t lo = fz_u32(r);
    return lo | (uint64_t)fz_u32(r) << 32;
}

/* ---- a file in memory for the path-based loaders ----------------------------
 */

/* An anonymous memory file and a path ("/proc/self/fd/N") that open() and
 * fopen() accept; it behaves as a regular file (fstat, seek, truncate). */
typedef struct fuzz_memfile {
    int fd;
    char path[64];
} fuzz_memfile;

static inline int fz_memfile_open(fuzz_memfile *m, const char *name)
{
    m->fd = memfd_create(name, 0);
    if (m->fd < 0)
        return -1;
    snprintf(m->path, sizeof m->path, "/proc/self/fd/%d", m->fd);
    return 0;
}

/* Replaces the file's contents with data[0..n). */
static inline int fz_memfile_write(fuzz_memfile *m, const uint8_t *data,
                                   size_t n)
{
    if (ftruncate(m->fd, 0) != 0)
        return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = pwrite(m->fd, data + off, n - off, (off_t)off);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* The file's contents into a buffer of its own (caller frees with free());
 * NULL on failure. */
static inline uint8_t *fz_memfile_read(fuzz_memfile *m, size_t *n)
{
    off_t size = lseek(m->fd, 0, SEEK_END);
    if (size < 0)
        return NULL;
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf)
        return NULL;
    size_t off = 0;
    while (off < (size_t)size) {
        ssize_t got = pread(m->fd, buf + off, (size_t)size - off, (off_t)off);
        if (got <= 0) {
            free(buf);
            return NULL;
        }
        off += (size_t)got;
    }
    *n = (size_t)size;
    return buf;
}

/* ---- the file-format targets (npy, safetensors): set-up, round trip ------ */

/* Opens the two memory files of a file-format target: in ("<name>_in"),
 * which the input is written to and loaded from, and out ("<name>_out"),
 * which what was loaded is saved to. Traps when it cannot: without them
 * nothing can be fuzzed. For LLVMFuzzerInitialize. */
static inline void fz_memfiles_open(fuzz_memfile *in, fuzz_memfile *out,
                                    const char *name)
{
    char in_name[32], out_name[32];
    snprintf(in_name, sizeof in_name, "%s_in", name);
    snprintf(out_name, sizeof out_name, "%s_out", name);
    if (fz_memfile_open(in, in_name) != 0 ||
        fz_memfile_open(out, out_name) != 0) {
        perror("memfd_create");
        __builtin_trap();
    }
}

/* A call that must succeed on what the library itself produced (saving a
 * loaded file, loading a saved one): true on CG_OK; false on CG_ERR_NOMEM,
 * which is no finding (the harness skips the rest of the input); any other
 * status is a finding, reported with `what` and the library's message. */
static inline bool fz_must_succeed(cg_status st, const char *what)
{
    if (st == CG_OK)
        return true;
    if (st == CG_ERR_NOMEM)
        return false;
    fprintf(stderr, "FUZZ FINDING: %s failed: %s: %s\n", what,
            cg_status_name(st), cg_last_error());
    __builtin_trap();
}

/* A tensor reloaded from a saved file is its original: the same dtype,
 * shape and bytes, both contiguous. */
static inline void fz_check_same_tensor(const cg_tensor *a, const cg_tensor *b)
{
    FUZZ_CHECK(cg_tensor_dtype(a) == cg_tensor_dtype(b));
    int nd = cg_tensor_dim(a);
    FUZZ_CHECK(nd == cg_tensor_dim(b));
    FUZZ_CHECK(nd == 0 || memcmp(cg_tensor_shape(a), cg_tensor_shape(b),
                                 (size_t)nd * sizeof(int64_t)) == 0);
    FUZZ_CHECK(cg_tensor_is_contiguous(a) && cg_tensor_is_contiguous(b));
    size_t bytes =
        (size_t)cg_tensor_numel(a) * cg_dtype_size(cg_tensor_dtype(a));
    FUZZ_CHECK(bytes == 0 ||
               memcmp(cg_tensor_data(a), cg_tensor_data(b), bytes) == 0);
}

/* Saving is canonical: the file m now holds must be the n bytes `first`
 * (the first save). Checked only when m can be read back. */
static inline void fz_check_same_file(fuzz_memfile *m, const uint8_t *first,
                                      size_t n)
{
    size_t n2 = 0;
    uint8_t *second = fz_memfile_read(m, &n2);
    if (!second)
        return;
    FUZZ_CHECK(n2 == n && memcmp(second, first, n) == 0);
    free(second);
}

#endif /* CGRAD_FUZZ_UTIL_H */
