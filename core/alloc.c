/*
 * alloc.c -- the one door through which cgrad allocates memory.
 *
 * Every allocation in the library calls cg__malloc / cg__calloc /
 * cg__realloc / cg__free, which forward to the installed cg_allocator
 * (the C library's by default). Users bring arenas or count memory this
 * way, and the tests fail allocations one by one through it.
 *
 * Tensor storage also goes through a small cache of large freed blocks
 * (cg__storage_alloc / cg__storage_free), used only with the C library's
 * allocator: see tensor_internal.h for why.
 */
#include "tensor_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *std_malloc(size_t size, void *user)
{
    (void)user;
    return malloc(size);
}

static void *std_realloc(void *p, size_t size, void *user)
{
    (void)user;
    return realloc(p, size);
}

static void std_free(void *p, void *user)
{
    (void)user;
    free(p);
}

static cg_allocator current = {std_malloc, std_realloc, std_free, NULL};

/* ---- the storage cache ------------------------------------------------ */

/* Blocks are kept oldest first; a free that does not fit evicts the oldest
 * (sizes a program no longer uses leave the cache that way). Sizes are
 * rounded up to whole pages, so that requests a few bytes apart share
 * blocks. */
enum {
    CACHE_SLOTS = 64,
    CACHE_MIN_BLOCK = 64 << 10, /* smaller blocks glibc recycles itself */
    CACHE_PAGE = 4096,
};
#define CACHE_MAX_BYTES ((size_t)256 << 20)

static struct {
    pthread_mutex_t lock;
    int n;                    /* blocks held, in slot[0..n), oldest first */
    size_t bytes;             /* their total size */
    void *block[CACHE_SLOTS]; /* made by std_malloc */
    size_t size[CACHE_SLOTS];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool is_std(void)
{
    return current.malloc_fn == std_malloc;
}

/* Whether the cache takes blocks of `size` bytes. */
static bool cacheable(size_t size)
{
    return size >= CACHE_MIN_BLOCK && size <= CACHE_MAX_BYTES && is_std();
}

/* The size a cacheable block is made with and kept at: whole pages. */
static size_t page_round(size_t size)
{
    return (size + CACHE_PAGE - 1) / CACHE_PAGE * CACHE_PAGE;
}

/* Removes slot i, keeping the others' order. Called with the lock held. */
static void cache_remove(int i)
{
    cache.bytes -= cache.size[i];
    cache.n--;
    memmove(&cache.block[i], &cache.block[i + 1],
            (size_t)(cache.n - i) * sizeof cache.block[0]);
    memmove(&cache.size[i], &cache.size[i + 1],
            (size_t)(cache.n - i) * sizeof cache.size[0]);
}

/* Frees every cached block with the allocator that made them. */
static void cache_flush(void)
{
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < cache.n; i++)
        free(cache.block[i]);
    cache.n = 0;
    cache.bytes = 0;
    pthread_mutex_unlock(&cache.lock);
}

void *cg__storage_alloc(size_t size)
{
    if (!cacheable(size))
        return cg__malloc(size);
    const size_t bytes = page_round(size);
    void *p = NULL;
    pthread_mutex_lock(&cache.lock);
    for (int i = cache.n - 1; i >= 0; i--) { /* the newest first */
        if (cache.size[i] == bytes) {
            p = cache.block[i];
            cache_remove(i);
            break;
        }
    }
    pthread_mutex_unlock(&cache.lock);
    if (p)
        return p;
    return cg__malloc(bytes);
}

void cg__storage_free(void *p, size_t size)
{
    if (!p)
        return;
    if (!cacheable(size)) {
        cg__free(p);
        return;
    }
    const size_t bytes = page_round(size);
    void *evicted[CACHE_SLOTS];
    int ne = 0;
    pthread_mutex_lock(&cache.lock);
    while (cache.n > 0 &&
           (cache.n == CACHE_SLOTS || cache.bytes + bytes > CACHE_MAX_BYTES)) {
        evicted[ne++] = cache.block[0];
        cache_remove(0);
    }
    cache.block[cache.n] = p;
    cache.size[cache.n] = bytes;
    cache.n++;
    cache.bytes += bytes;
    pthread_mutex_unlock(&cache.lock);
    for (int i = 0; i < ne; i++)
        cg__free(evicted[i]);
}

/* A buffer's header: its size, so that cg__buffer_free needs none. 64
 * bytes keep the data as aligned as the block. */
enum { BUFFER_HEADER = 64 };

void *cg__buffer_alloc(size_t size)
{
    if (size > SIZE_MAX - BUFFER_HEADER)
        return NULL;
    char *raw = cg__storage_alloc(size + BUFFER_HEADER);
    if (!raw)
        return NULL;
    memcpy(raw, &size, sizeof size);
    return raw + BUFFER_HEADER;
}

void *cg__buffer_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = cg__buffer_alloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void cg__buffer_free(void *p)
{
    if (!p)
        return;
    char *raw = (char *)p - BUFFER_HEADER;
    size_t size;
    memcpy(&size, raw, sizeof size);
    cg__storage_free(raw, size + BUFFER_HEADER);
}

cg_status cg_set_allocator(const cg_allocator *a)
{
    if (a && (!a->malloc_fn || !a->realloc_fn || !a->free_fn))
        return cg__error(CG_ERR_MISUSE,
                         "cg_set_allocator: malloc_fn, realloc_fn and "
                         "free_fn must all be set");
    /* The cached blocks belong to the C library's allocator: give them
     * back before another one takes over. */
    cache_flush();
    if (!a) {
        current = (cg_allocator){std_malloc, std_realloc, std_free, NULL};
        return CG_OK;
    }
    current = *a;
    return CG_OK;
}

void *cg__malloc(size_t size)
{
    return current.malloc_fn(size ? size : 1, current.user);
}

void *cg__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = n * size;
    void *p = cg__malloc(bytes);
    if (p && bytes > 0)
        memset(p, 0, bytes);
    return p;
}

void *cg__realloc(void *p, size_t size)
{
    return current.realloc_fn(p, size ? size : 1, current.user);
}

void cg__free(void *p)
{
    if (p)
        current.free_fn(p, current.user);
}

bool cg__mul_overflow(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool cg__add_overflow(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

void *cg_malloc(size_t size)
{
    return cg__malloc(size);
}

void *cg_calloc(size_t n, size_t size)
{
    return cg__calloc(n, size);
}

void *cg_realloc(void *ptr, size_t size)
{
    return cg__realloc(ptr, size);
}

void cg_free(void *ptr)
{
    cg__free(ptr);
}
