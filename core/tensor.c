/*
 * tensor.c -- storage, tensor headers, creation, properties and element
 * access, mirroring torch.Tensor's strided CPU tensors (PyTorch 1.13).
 *
 * A tensor is a header (dtype, shape, strides, offset, autograd state) over
 * a reference-counted storage that views share. Sizes are checked for
 * negative entries and int64 overflow before anything is allocated, with
 * PyTorch's messages. Not here: views (view.c), copies and conversions
 * (copy.c), autograd (autograd.c), random fills (rng.c).
 */
#include "tensor_internal.h"
#include "autograd_internal.h"

#include <math.h>
#include <string.h>

/* ---- storage ---------------------------------------------------------- */

static cg_status storage_new(size_t nbytes, bool zero, cg_storage **out)
{
    cg_storage *s = cg__malloc(sizeof *s);
    if (!s)
        return cg__error_nomem(sizeof *s);
    if (nbytes > SIZE_MAX - CG_STORAGE_ALIGN) {
        cg__free(s);
        return cg__error_nomem(nbytes);
    }
    void *raw = cg__storage_alloc(nbytes + CG_STORAGE_ALIGN);
    if (!raw) {
        cg__free(s);
        return cg__error_nomem(nbytes);
    }
    uintptr_t a = ((uintptr_t)raw + CG_STORAGE_ALIGN - 1) &
                  ~(uintptr_t)(CG_STORAGE_ALIGN - 1);
    s->raw = raw;
    s->data = (void *)a;
    s->nbytes = nbytes;
    if (zero)
        memset(s->data, 0, nbytes);
    atomic_init(&s->refs, 1);
    atomic_init(&s->version, 0);
    *out = s;
    return CG_OK;
}

static void storage_release(cg_storage *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        cg__storage_free(s->raw, s->nbytes + CG_STORAGE_ALIGN);
        cg__free(s);
    }
}

/* ---- shapes ----------------------------------------------------------- */

bool cg__shape_numel(const int64_t *shape, int ndim, int64_t *out)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !cg__mul_overflow(n, shape[i], &n))
            return false;
    }
    *out = n;
    return true;
}

void cg__contiguous_strides(const int64_t *shape, int ndim, int64_t *strides)
{
    /* in uint64_t: the sizes of an empty tensor ([0, 1, 2**40, 2**40]) can
     * overflow the product, and its strides then wrap around as PyTorch's
     * do (nothing addresses memory through them) */
    uint64_t acc = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = (int64_t)acc;
        acc *= (uint64_t)(shape[i] > 1 ? shape[i] : 1);
    }
}

char *cg__format_shape(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "[");
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%lld",
                              i ? ", " : "", (long long)shape[i]);
    snprintf(buf + n, n < size ? size - n : 0, "]");
    return buf;
}

cg_status cg__check_ndim(int ndim)
{
    if (ndim < 0 || ndim > CG_MAX_DIMS)
        return cg__error(CG_ERR_RUNTIME,
                         "cgrad tensors have at most %d dimensions, but got "
                         "%d",
                         CG_MAX_DIMS, ndim);
    return CG_OK;
}

cg_status cg__check_shape_arg(const int64_t *shape, int ndim)
{
    cg_status st = cg__check_ndim(ndim);
    if (st != CG_OK)
        return st;
    if (ndim > 0 && !shape)
        return cg__error_null("shape");
    return CG_OK;
}

/* Checks a requested shape as torch.empty does. */
cg_status cg__check_new_shape(const int64_t *shape, int ndim, int64_t *numel)
{
    cg_status st_shape = cg__check_shape_arg(shape, ndim);
    if (st_shape != CG_OK)
        return st_shape;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char buf[512];
            return cg__error(CG_ERR_RUNTIME,
                             "Trying to create tensor with negative dimension "
                             "%lld: %s",
                             (long long)shape[i],
                             cg__format_shape(shape, ndim, buf, sizeof buf));
        }
    }
    int64_t n;
    if (!cg__shape_numel(shape, ndim, &n) ||
        (uint64_t)n > (uint64_t)(INT64_MAX / 16)) {
        char buf[512];
        return cg__error(CG_ERR_RUNTIME,
                         "Storage size calculation overflowed with sizes=%s",
                         cg__format_shape(shape, ndim, buf, sizeof buf));
    }
    *numel = n;
    return CG_OK;
}

cg_status cg__wrap_dim(int64_t dim, int ndim, int64_t *out)
{
    int64_t n = ndim > 0 ? ndim : 1;
    if (dim < -n || dim >= n)
        return cg__error(CG_ERR_INDEX,
                         "Dimension out of range (expected to be in range of "
                         "[%lld, %lld], but got %lld)",
                         (long long)-n, (long long)(n - 1), (long long)dim);
    *out = dim < 0 ? dim + n : dim;
    return CG_OK;
}

/* ---- tensor headers ----------------------------------------------------- */

cg_status cg__tensor_make(cg_storage *storage, cg_dtype dt,
                          const int64_t *shape, const int64_t *strides,
                          int ndim, int64_t offset, cg_tensor **out)
{
    /* TensorImpl::refresh_numel: the sizes multiplied in order must fit,
     * so a view such as [0, 2**40, 2**40].permute(1, 2, 0) is refused
     * and every tensor's numel (and each prefix of it) is an int64 */
    int64_t numel;
    if (!cg__shape_numel(shape, ndim, &numel))
        return cg__error(CG_ERR_RUNTIME,
                         "numel: integer multiplication overflow");
    cg_tensor *t = cg__malloc(sizeof *t);
    if (!t)
        return cg__error_nomem(sizeof *t);
    memset(t, 0, sizeof *t);
    atomic_init(&t->refs, 1);
    t->dtype = dt;
    t->ndim = ndim;
    if (ndim > 0)
        memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    if (strides && ndim > 0)
        memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);
    else
        cg__contiguous_strides(t->shape, ndim, t->strides);
    t->offset = offset;
    atomic_fetch_add(&storage->refs, 1);
    t->storage = storage;
    *out = t;
    return CG_OK;
}

static cg_status tensor_new(const int64_t *shape, int ndim, cg_dtype dt,
                            bool zero, cg_tensor **out)
{
    cg_status st = cg__check_dtype(dt);
    if (st != CG_OK)
        return st;
    int64_t numel;
    if ((st = cg__check_new_shape(shape, ndim, &numel)) != CG_OK)
        return st;
    if (!out)
        return cg__error_null("out");
    cg_storage *s = NULL;
    if ((st = storage_new((size_t)numel * cg_dtype_size(dt), zero, &s)) !=
        CG_OK)
        return st;
    st = cg__tensor_make(s, dt, shape, NULL, ndim, 0, out);
    storage_release(s); /* the tensor holds its own reference */
    return st;
}

cg_status cg__tensor_new(const int64_t *shape, int ndim, cg_dtype dt,
                         cg_tensor **out)
{
    return tensor_new(shape, ndim, dt, true, out);
}

cg_status cg__tensor_new_uninit(const int64_t *shape, int ndim, cg_dtype dt,
                                cg_tensor **out)
{
    return tensor_new(shape, ndim, dt, false, out);
}

cg_status cg__tensor_view_of(const cg_tensor *t, const int64_t *shape,
                             const int64_t *strides, int ndim, int64_t offset,
                             cg_tensor **out)
{
    return cg__tensor_make(t->storage, t->dtype, shape, strides, ndim, offset,
                           out);
}

cg_tensor *cg_tensor_retain(cg_tensor *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

void cg_tensor_release(cg_tensor *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    cg__autograd_tensor_dying(t);
    cg_tensor_release(t->grad);
    cg__node_release(t->grad_fn);
    storage_release(t->storage);
    cg__free(t);
}

/* ---- creation ----------------------------------------------------------- */

cg_status cg_empty(const int64_t *shape, int ndim, cg_dtype dt, cg_tensor **out)
{
    return cg__tensor_new(shape, ndim, dt, out);
}

cg_status cg_zeros(const int64_t *shape, int ndim, cg_dtype dt, cg_tensor **out)
{
    return cg__tensor_new(shape, ndim, dt, out);
}

cg_status cg_full_complex(const int64_t *shape, int ndim, double re, double im,
                          cg_dtype dt, cg_tensor **out)
{
    if (cg__dtype_valid(dt) && !cg_dtype_is_complex(dt) && im != 0.0)
        return cg__error(CG_ERR_TYPE, "can't convert complex to float");
    cg_tensor *t;
    cg_status st = cg__tensor_new(shape, ndim, dt, &t);
    if (st != CG_OK)
        return st;
    int64_t n = cg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        cg__store(t, i, re, im);
    *out = t;
    return CG_OK;
}

cg_status cg_full(const int64_t *shape, int ndim, double value, cg_dtype dt,
                  cg_tensor **out)
{
    return cg_full_complex(shape, ndim, value, 0.0, dt, out);
}

cg_status cg_ones(const int64_t *shape, int ndim, cg_dtype dt, cg_tensor **out)
{
    return cg_full_complex(shape, ndim, 1.0, 0.0, dt, out);
}

cg_status cg_tensor_from_data(const void *data, const int64_t *shape, int ndim,
                              cg_dtype dt, cg_tensor **out)
{
    cg_tensor *t;
    cg_status st = cg__tensor_new(shape, ndim, dt, &t);
    if (st != CG_OK)
        return st;
    size_t nbytes = (size_t)cg_tensor_numel(t) * cg_dtype_size(dt);
    if (nbytes > 0) {
        if (!data) {
            cg_tensor_release(t);
            return cg__error_null("data");
        }
        memcpy(t->storage->data, data, nbytes);
    }
    *out = t;
    return CG_OK;
}

cg_status cg_arange(int64_t n, cg_dtype dt, cg_tensor **out)
{
    if (n < 0)
        return cg__error(CG_ERR_RUNTIME,
                         "upper bound and larger bound inconsistent with step "
                         "sign");
    cg_tensor *t;
    cg_status st = cg__tensor_new(&n, 1, dt, &t);
    if (st != CG_OK)
        return st;
    for (int64_t i = 0; i < n; i++)
        cg__store(t, i, (double)i, 0.0);
    *out = t;
    return CG_OK;
}

/* ---- element access ----------------------------------------------------- */

void cg__load(const cg_tensor *t, int64_t i, double *re, double *im)
{
    const char *p = cg__elem_ptr(t, i);
    switch (t->dtype) {
    case CG_FLOAT32:
        *re = *(const float *)p;
        *im = 0.0;
        break;
    case CG_FLOAT64:
        *re = *(const double *)p;
        *im = 0.0;
        break;
    case CG_COMPLEX64:
        *re = ((const float *)p)[0];
        *im = ((const float *)p)[1];
        break;
    default:
        *re = ((const double *)p)[0];
        *im = ((const double *)p)[1];
        break;
    }
}

void cg__store(cg_tensor *t, int64_t i, double re, double im)
{
    char *p = cg__elem_ptr(t, i);
    switch (t->dtype) {
    case CG_FLOAT32:
        *(float *)p = (float)re;
        break;
    case CG_FLOAT64:
        *(double *)p = re;
        break;
    case CG_COMPLEX64:
        ((float *)p)[0] = (float)re;
        ((float *)p)[1] = (float)im;
        break;
    default:
        ((double *)p)[0] = re;
        ((double *)p)[1] = im;
        break;
    }
}

void cg__iter_init(cg_iter *it, const cg_tensor *t)
{
    cg__iter_init_dims(it, t->shape, t->strides, t->ndim, t->offset);
}

void cg__iter_init_dims(cg_iter *it, const int64_t *shape,
                        const int64_t *strides, int ndim, int64_t base)
{
    it->ndim = ndim;
    it->pos = base;
    it->remaining = 1;
    for (int d = 0; d < ndim; d++) {
        it->shape[d] = shape[d];
        it->strides[d] = strides[d];
        it->idx[d] = 0;
        it->remaining *= shape[d];
    }
}

/* Storage index of a (possibly negative) multi-index, with PyTorch's
 * IndexError on an out-of-range entry. */
static cg_status element_index(const cg_tensor *t, const int64_t *index,
                               int64_t *pos)
{
    if (t->ndim > 0 && !index)
        return cg__error_null("index");
    int64_t p = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        int64_t i = index[d];
        if (i < -t->shape[d] || i >= t->shape[d])
            return cg__error(CG_ERR_INDEX,
                             "index %lld is out of bounds for dimension %d "
                             "with size %lld",
                             (long long)i, d, (long long)t->shape[d]);
        if (i < 0)
            i += t->shape[d];
        p += i * t->strides[d];
    }
    *pos = p;
    return CG_OK;
}

cg_status cg_tensor_get(const cg_tensor *t, const int64_t *index, double *re,
                        double *im)
{
    if (!t)
        return cg__error_null("tensor");
    if (!re)
        return cg__error_null("re");
    int64_t pos;
    cg_status st = element_index(t, index, &pos);
    if (st != CG_OK)
        return st;
    double r, i;
    cg__load(t, pos, &r, &i);
    *re = r;
    if (im)
        *im = i;
    return CG_OK;
}

cg_status cg_tensor_set(cg_tensor *t, const int64_t *index, double re,
                        double im)
{
    if (!t)
        return cg__error_null("tensor");
    if (!cg_dtype_is_complex(t->dtype) && im != 0.0)
        return cg__error(CG_ERR_TYPE, "can't convert complex to float");
    int64_t pos;
    cg_status st = element_index(t, index, &pos);
    if (st != CG_OK)
        return st;
    if ((st = cg__check_inplace(t, "cg_tensor_set")) != CG_OK)
        return st;
    cg__store(t, pos, re, im);
    cg__bump_version(t);
    return CG_OK;
}

cg_status cg_tensor_item(const cg_tensor *t, double *re, double *im)
{
    if (!t)
        return cg__error_null("tensor");
    if (!re)
        return cg__error_null("re");
    int64_t n = cg_tensor_numel(t);
    if (n != 1)
        return cg__error(CG_ERR_VALUE, "only one element tensors can be "
                                       "converted to Python scalars");
    cg_iter it;
    cg__iter_init(&it, t);
    double r, i;
    cg__load(t, it.pos, &r, &i);
    *re = r;
    if (im)
        *im = i;
    return CG_OK;
}

cg_status cg_tensor_to_doubles(const cg_tensor *t, double *dst, int64_t cap)
{
    if (!t)
        return cg__error_null("tensor");
    int64_t n = cg_tensor_numel(t);
    int per = cg_dtype_is_complex(t->dtype) ? 2 : 1;
    if (cap < n * per)
        return cg__error(CG_ERR_VALUE,
                         "destination holds %lld values but the tensor has "
                         "%lld",
                         (long long)cap, (long long)(n * per));
    if (n == 0)
        return CG_OK;
    if (!dst)
        return cg__error_null("dst");
    if (cg_tensor_is_contiguous(t) && t->dtype == CG_FLOAT32) {
        const float *s = cg_tensor_data(t);
        for (int64_t k = 0; k < n; k++)
            dst[k] = s[k];
        return CG_OK;
    }
    if (cg_tensor_is_contiguous(t) && t->dtype == CG_FLOAT64) {
        memcpy(dst, cg_tensor_data(t), (size_t)n * sizeof *dst);
        return CG_OK;
    }
    cg_iter it;
    cg__iter_init(&it, t);
    int64_t k = 0;
    do {
        double r, i;
        cg__load(t, it.pos, &r, &i);
        dst[k++] = r;
        if (per == 2)
            dst[k++] = i;
    } while (cg__iter_next(&it));
    return CG_OK;
}

/* ---- properties --------------------------------------------------------- */

cg_dtype cg_tensor_dtype(const cg_tensor *t)
{
    return t ? t->dtype : CG_FLOAT32;
}

int cg_tensor_dim(const cg_tensor *t)
{
    return t ? t->ndim : 0;
}

int64_t cg_tensor_numel(const cg_tensor *t)
{
    if (!t)
        return 0;
    int64_t n = 1; /* cannot overflow: cg__tensor_make checked the sizes */
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

const int64_t *cg_tensor_shape(const cg_tensor *t)
{
    return t ? t->shape : NULL;
}

const int64_t *cg_tensor_strides(const cg_tensor *t)
{
    return t ? t->strides : NULL;
}

int64_t cg_tensor_storage_offset(const cg_tensor *t)
{
    return t ? t->offset : 0;
}

cg_status cg_tensor_size(const cg_tensor *t, int64_t dim, int64_t *out)
{
    if (!t)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    int64_t d = 0;
    if (t->ndim == 0)
        return cg__error(CG_ERR_INDEX,
                         "dimension specified as %lld but tensor has no "
                         "dimensions",
                         (long long)dim);
    cg_status st = cg__wrap_dim(dim, t->ndim, &d);
    if (st != CG_OK)
        return st;
    *out = t->shape[d];
    return CG_OK;
}

bool cg_tensor_is_contiguous(const cg_tensor *t)
{
    if (!t)
        return false;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0)
            return true; /* (before any product of sizes that can overflow) */
    int64_t expected = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1) {
            if (t->strides[d] != expected)
                return false;
            expected *= t->shape[d];
        }
    }
    return true;
}

void *cg_tensor_data(const cg_tensor *t)
{
    return t ? cg__elem_ptr(t, t->offset) : NULL;
}

bool cg_tensor_shares_storage(const cg_tensor *a, const cg_tensor *b)
{
    return a && b && a->storage == b->storage;
}

cg_status cg_tensor_set_name(cg_tensor *t, const char *name)
{
    if (!t)
        return cg__error_null("tensor");
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    return CG_OK;
}

const char *cg_tensor_name(const cg_tensor *t)
{
    return t && t->name[0] ? t->name : NULL;
}

cg_status cg_tensor_set_parameter(cg_tensor *t, bool is_parameter)
{
    if (!t)
        return cg__error_null("tensor");
    t->is_parameter = is_parameter;
    return CG_OK;
}

bool cg_tensor_is_parameter(const cg_tensor *t)
{
    return t && t->is_parameter;
}
