/*
 * error.c -- the status codes and the thread-local last error.
 *
 * Mirrors how PyTorch reports failures: each status maps to the Python
 * exception class PyTorch raises, and the message is PyTorch's text, so
 * "<cg_status_name>: <cg_last_error>" reads exactly like Python's last
 * traceback line. The message lives in a fixed thread-local buffer, so
 * reporting an error never allocates (it must work when memory is out).
 */
#include "tensor_internal.h"

#include <stdio.h>
#include <string.h>

#define CG_ERROR_CAP 1024

static _Thread_local char last_message[CG_ERROR_CAP];
static _Thread_local cg_status last_status = CG_OK;

static const char *const status_names[CG_STATUS_COUNT] = {
    [CG_OK] = "OK",
    [CG_ERR_VALUE] = "ValueError",
    [CG_ERR_RUNTIME] = "RuntimeError",
    [CG_ERR_TYPE] = "TypeError",
    [CG_ERR_INDEX] = "IndexError",
    [CG_ERR_ATTRIBUTE] = "AttributeError",
    [CG_ERR_NOMEM] = "MemoryError",
    [CG_ERR_MISUSE] = "TypeError",
    [CG_ERR_NOT_IMPLEMENTED] = "NotImplementedError",
    [CG_ERR_IO] = "OSError",
    [CG_ERR_OVERFLOW] = "OverflowError",
};

const char *cg_status_name(cg_status st)
{
    if ((int)st < 0 || st >= CG_STATUS_COUNT)
        return "UnknownError";
    return status_names[st];
}

const char *cg_last_error(void)
{
    return last_message;
}

cg_status cg_last_status(void)
{
    return last_status;
}

void cg_clear_error(void)
{
    last_message[0] = '\0';
    last_status = CG_OK;
}

void cg_print_last_error(FILE *f)
{
    if (f)
        fprintf(f, "%s: %s\n", cg_status_name(last_status), last_message);
}

static cg_status set_error(cg_status st, const char *fmt, va_list ap)
{
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    last_status = st;
    return st;
}

cg_status cg__error(cg_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(st, fmt, ap);
    va_end(ap);
    return st;
}

cg_status cg_error(cg_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(st, fmt, ap);
    va_end(ap);
    return st;
}

cg_status cg__error_nomem(size_t bytes)
{
    return cg__error(CG_ERR_NOMEM,
                     "DefaultCPUAllocator: can't allocate memory: you tried "
                     "to allocate %zu bytes.",
                     bytes);
}

cg_status cg__error_null(const char *what)
{
    return cg__error(CG_ERR_MISUSE, "%s must not be NULL", what);
}
