/*
 * alloc.c -- the one door through which cgrad allocates memory.
 *
 * Every allocation in the library calls cg__malloc / cg__calloc /
 * cg__realloc / cg__free, which forward to the installed cg_allocator
 * (the C library's by default). Users bring arenas or count memory this
 * way, and the tests fail allocations one by one through it.
 */
#include "tensor_internal.h"

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

cg_status cg_set_allocator(const cg_allocator *a)
{
    if (!a) {
        current = (cg_allocator){std_malloc, std_realloc, std_free, NULL};
        return CG_OK;
    }
    if (!a->malloc_fn || !a->realloc_fn || !a->free_fn)
        return cg__error(CG_ERR_MISUSE,
                         "cg_set_allocator: malloc_fn, realloc_fn and "
                         "free_fn must all be set");
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
