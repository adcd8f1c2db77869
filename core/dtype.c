/*
 * dtype.c -- the element types and their names (PyTorch's spellings).
 */
#include "tensor_internal.h"

static const struct {
    const char *name;   /* torch.<name> */
    const char *scalar; /* c10::ScalarType name, used in messages */
    size_t size;
} dtypes[CG_DTYPE_COUNT] = {
    [CG_FLOAT32] = {"float32", "Float", 4},
    [CG_FLOAT64] = {"float64", "Double", 8},
    [CG_COMPLEX64] = {"complex64", "ComplexFloat", 8},
    [CG_COMPLEX128] = {"complex128", "ComplexDouble", 16},
};

bool cg__dtype_valid(cg_dtype dt)
{
    return (int)dt >= 0 && dt < CG_DTYPE_COUNT;
}

cg_status cg__check_dtype(cg_dtype dt)
{
    if (!cg__dtype_valid(dt))
        return cg__error(CG_ERR_VALUE, "invalid dtype %d", (int)dt);
    return CG_OK;
}

const char *cg_dtype_name(cg_dtype dt)
{
    return cg__dtype_valid(dt) ? dtypes[dt].name : "invalid";
}

const char *cg__dtype_scalar_name(cg_dtype dt)
{
    return cg__dtype_valid(dt) ? dtypes[dt].scalar : "Undefined";
}

size_t cg_dtype_size(cg_dtype dt)
{
    return cg__dtype_valid(dt) ? dtypes[dt].size : 0;
}

bool cg_dtype_is_complex(cg_dtype dt)
{
    return dt == CG_COMPLEX64 || dt == CG_COMPLEX128;
}

cg_dtype cg_dtype_to_real(cg_dtype dt)
{
    switch (dt) {
    case CG_COMPLEX64:
        return CG_FLOAT32;
    case CG_COMPLEX128:
        return CG_FLOAT64;
    default:
        return dt;
    }
}

cg_dtype cg_dtype_to_complex(cg_dtype dt)
{
    switch (dt) {
    case CG_FLOAT32:
        return CG_COMPLEX64;
    case CG_FLOAT64:
        return CG_COMPLEX128;
    default:
        return dt;
    }
}
