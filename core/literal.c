/*
 * literal.c -- torch.tensor(<literal>): a tensor from the text of a Python
 * literal, cg_tensor_literal and cg_tensor_literal_dtype.
 *
 * Mirrors torch.tensor(data[, dtype]) of PyTorch 1.13 on the data Python
 * would evaluate from the text (Python 3.11 semantics):
 *
 *   value    := sequence | number
 *   sequence := '[' [value (',' value)* [',']] ']'
 *             | '(' ')' | '(' value ',' ')' | '(' value (',' value)+ [','] ')'
 *             | '(' sequence ')'                      (grouping)
 *   number   := term (('+' | '-') term)*
 *   term     := ('+' | '-')* atom
 *   atom     := int | float | imaginary (Python's literal forms: 3, 3.,
 *               .5, 1e-3, 2.5E+4, 4j, 1.5e3J; no leading zeros in ints)
 *             | inf | nan | infj | nanj     (as torch prints them)
 *             | True | False
 *             | float() | float('<str>') | float(number)
 *             | complex() | complex(number) | complex(number, number)
 *             | '(' number ')'
 *
 * Whitespace (space, tab, newline, CR, form feed) may appear between any
 * two tokens. Arithmetic follows Python: ints add exactly (in int64; past
 * it, in double), a real operand meets a complex one as (x + 0j), so
 * "-3.5-0.25j" is complex(-3.5, -0.25) and "-0.+0.j" is complex(0, 0).
 *
 * Then torch.tensor's rules, in its order:
 *   - dtype: float32, or complex64 if any element anywhere is complex (as
 *     for float data with the default dtype). cgrad has no integer or
 *     bool dtype, so ints and bools become float32 too, as with
 *     torch.tensor(data, dtype=torch.float32).
 *   - shape: the lengths met by following the first element of each
 *     sequence down to a number or an empty sequence ("[]" is (0,),
 *     "[[], []]" is (2, 0), "3.5" is ()).
 *   - values are stored depth first; the first mismatch raises PyTorch's
 *     error: "expected sequence of length 2 at dim 1 (got 3)"
 *     (ValueError), "not a sequence" where a number stands for a
 *     sequence, "must be real number, not list" where a sequence stands
 *     for a number, "must be real number, not complex" for a complex
 *     value into a real dtype (TypeError).
 *   - when the shape has no elements nothing is stored, so nothing is
 *     checked: torch.tensor([[], [1, 2]]) is an empty (2, 0) tensor.
 *
 * Text Python itself would refuse is a ValueError "invalid literal at
 * position P: ..." (P counts bytes from 0). Not supported: other Python
 * expressions (*, /, **, names other than the above), parenthesised
 * sequences inside arithmetic, string arguments to complex(), hex/octal/
 * binary ints and digit underscores, comments. A shape deeper than
 * CG_MAX_DIMS is an error (PyTorch allows more); so is nesting deeper than
 * 200 brackets (Python's own parser limit).
 *
 * Numbers are converted locale-independently: the digits of a literal are
 * rewritten as "<digits>e<exponent>" (no radix character, which is the
 * only part of strtod's input a locale changes) and handed to strtod,
 * which rounds correctly, as Python does.
 *
 * Two passes over the text: the first checks the syntax and finds the
 * dtype, shape and number count; the second stores (or only validates,
 * when the shape promises more numbers than the text holds).
 */
#include "tensor_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LIT_MAX_NESTING 200 /* Python's limit on nested brackets */
#define LIT_MAX_DIGITS 800  /* significant digits handed to strtod */
#define LIT_MAX_EXP 100000  /* |exponent| past which a double is 0 or inf */

/* ---- numbers ------------------------------------------------------------ */

typedef enum num_kind { NUM_INT, NUM_FLOAT, NUM_COMPLEX } num_kind;

/* A Python number: an int (exact in `i`), a float (`re`) or a complex. */
typedef struct num {
    num_kind kind;
    int64_t i;
    double re, im;
} num;

static double num_real(const num *a)
{
    return a->kind == NUM_INT ? (double)a->i : a->re;
}

static num make_float(double x)
{
    num r = {NUM_FLOAT, 0, x, 0.0};
    return r;
}

static num make_complex(double re, double im)
{
    num r = {NUM_COMPLEX, 0, re, im};
    return r;
}

static num num_negate(num a)
{
    switch (a.kind) {
    case NUM_INT:
        if (a.i == INT64_MIN)
            return make_float(-(double)a.i);
        a.i = -a.i;
        return a;
    case NUM_FLOAT:
        a.re = -a.re;
        return a;
    default:
        a.re = -a.re;
        a.im = -a.im;
        return a;
    }
}

/* a + b, or a - b when `sub`, with Python's promotions. */
static num num_add(num a, num b, bool sub)
{
    if (a.kind == NUM_INT && b.kind == NUM_INT) {
        int64_t r;
        if (sub ? !__builtin_sub_overflow(a.i, b.i, &r)
                : !__builtin_add_overflow(a.i, b.i, &r)) {
            num n = {NUM_INT, r, 0.0, 0.0};
            return n;
        }
    }
    if (a.kind == NUM_COMPLEX || b.kind == NUM_COMPLEX) {
        double ar = num_real(&a), ai = a.kind == NUM_COMPLEX ? a.im : 0.0;
        double br = num_real(&b), bi = b.kind == NUM_COMPLEX ? b.im : 0.0;
        return sub ? make_complex(ar - br, ai - bi)
                   : make_complex(ar + br, ai + bi);
    }
    double x = num_real(&a), y = num_real(&b);
    return make_float(sub ? x - y : x + y);
}

/* A decimal number as Python spells one, split at the '.': integer
 * digits, fraction digits (either may be empty or hold leading zeros) and
 * the written exponent. */
typedef struct decimal {
    const char *int_part;
    size_t int_len;
    const char *frac;
    size_t frac_len;
    int64_t exp10; /* saturated at +-1e15 while reading */
} decimal;

/* The value of a decimal, correctly rounded, as Python's float() and its
 * float literals give it. The digits are handed to strtod as
 * "<digits>e<exponent>", with no radix character: that form reads the
 * same in every locale. Only the first 800 significant digits and whether
 * any later digit is non-zero can change the rounding (a double's halfway
 * points have at most 767), so longer mantissas keep 799 digits and one
 * sticky digit. */
static double decimal_value(const decimal *d)
{
    char buf[LIT_MAX_DIGITS + 32];
    size_t k = 0;
    bool sticky = false;
    int64_t drop = 0; /* digits left out after the kept ones */
    const char *parts[2] = {d->int_part, d->frac};
    size_t lens[2] = {d->int_len, d->frac_len};
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < lens[p]; i++) {
            char c = parts[p][i];
            if (k == 0 && c == '0')
                continue; /* a leading zero: changes nothing */
            if (k < LIT_MAX_DIGITS - 1) {
                buf[k++] = c;
            } else {
                sticky = sticky || c != '0';
                drop++;
            }
        }
    if (k == 0)
        return 0.0;
    if (drop > 0) {
        buf[k++] = sticky ? '1' : '0';
        drop--;
    }
    /* value = kept digits x 10^(exp10 - frac_len + digits dropped) */
    int64_t e = d->exp10 - (int64_t)d->frac_len + drop;
    if (e > LIT_MAX_EXP)
        e = LIT_MAX_EXP;
    if (e < -LIT_MAX_EXP)
        e = -LIT_MAX_EXP;
    snprintf(buf + k, sizeof buf - k, "e%lld", (long long)e);
    return strtod(buf, NULL);
}

/* ---- the parser --------------------------------------------------------- */

typedef enum pass { PASS_SCAN, PASS_STORE } pass;

typedef struct parser {
    const char *s;
    size_t pos;
    int nesting; /* open brackets and parentheses */
    pass mode;
    /* found by the scan pass */
    bool any_complex;
    int ndim;                   /* -1 until the first path ends */
    int64_t sizes[CG_MAX_DIMS]; /* first-path lengths */
    int64_t numbers;            /* numbers in the text */
    /* used by the store pass */
    cg_dtype dtype;
    cg_tensor *t; /* where values go; NULL to validate only */
    int64_t next; /* row-major index of the next value */
} parser;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || is_digit(c);
}

static void skip_space(parser *P)
{
    while (is_space(P->s[P->pos]))
        P->pos++;
}

static char peek(const parser *P)
{
    return P->s[P->pos];
}

/* ValueError "invalid literal at position P: <what>". */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static cg_status
syntax_error(size_t pos, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cg__error(CG_ERR_VALUE, "invalid literal at position %zu: %s", pos,
                     what);
}

/* "unexpected ']'" for the byte at the current position. */
static cg_status unexpected(const parser *P)
{
    unsigned char c = (unsigned char)peek(P);
    if (c == '\0')
        return syntax_error(P->pos, "unexpected end of input");
    if (c == '\'')
        return syntax_error(P->pos, "unexpected \"'\"");
    if (c >= 0x20 && c < 0x7f)
        return syntax_error(P->pos, "unexpected '%c'", c);
    return syntax_error(P->pos, "unexpected byte 0x%02x", c);
}

static cg_status expect(parser *P, char c)
{
    skip_space(P);
    if (peek(P) != c)
        return unexpected(P);
    P->pos++;
    return CG_OK;
}

static cg_status open_bracket(parser *P)
{
    if (P->nesting >= LIT_MAX_NESTING)
        return syntax_error(P->pos, "too many nested parentheses (at most %d)",
                            LIT_MAX_NESTING);
    P->nesting++;
    P->pos++;
    return CG_OK;
}

/* Looks ahead from the bracket at `open` to its match: how many elements
 * it holds at its own level and whether a comma sits at that level. Never
 * fails: on malformed text it stops at the end, and the parse proper
 * reports the error. */
static void look_ahead(const char *s, size_t open, int64_t *count, bool *comma)
{
    int level = 0;
    int64_t commas = 0;
    bool filled = false; /* something since the last comma at level 1 */
    for (size_t i = open; s[i]; i++) {
        char c = s[i];
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (s[j] && s[j] != c)
                j++;
            if (!s[j])
                break;
            i = j;
            filled = filled || level == 1;
        } else if (c == '[' || c == '(') {
            if (level == 1)
                filled = true;
            level++;
        } else if (c == ']' || c == ')') {
            if (--level == 0)
                break;
        } else if (level == 1 && c == ',') {
            commas++;
            filled = false;
        } else if (level == 1 && !is_space(c)) {
            filled = true;
        }
    }
    *count = commas + (filled ? 1 : 0);
    *comma = commas > 0;
}

/* Is the '(' at `open` a tuple ("()", "(x,)", "(x, y)") rather than a
 * grouping "(x)"? */
static bool is_tuple(const char *s, size_t open)
{
    int64_t count;
    bool comma;
    look_ahead(s, open, &count, &comma);
    return comma || count == 0;
}

/* Is the '(' at `open` a grouping around a sequence: "([1, 2])",
 * "((1, 2))"? (A grouping around a number is part of the number.) */
static bool groups_sequence(const char *s, size_t open)
{
    size_t i = open;
    while (s[i] == '(' && !is_tuple(s, i)) {
        i++;
        while (is_space(s[i]))
            i++;
    }
    return i != open && (s[i] == '[' || s[i] == '(');
}

static cg_status parse_number(parser *P, num *out);

/* The text of a Python str literal: '...' or "..." without escapes. */
static cg_status parse_string(parser *P, const char **text, size_t *len)
{
    char q = peek(P);
    size_t start = P->pos;
    size_t i = start + 1;
    while (P->s[i] && P->s[i] != q && P->s[i] != '\\' && P->s[i] != '\n')
        i++;
    if (P->s[i] == '\\')
        return syntax_error(i, "escape sequences are not supported");
    if (P->s[i] != q)
        return syntax_error(start, "unterminated string");
    *text = P->s + start + 1;
    *len = i - start - 1;
    P->pos = i + 1;
    return CG_OK;
}

/* Lower-case comparison of s[0, n) with a lower-case word. */
static bool word_is(const char *s, size_t n, const char *word)
{
    if (strlen(word) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return true;
}

/* float('<text>'): Python's float() of a string. */
static cg_status float_of_string(const char *s, size_t n, double *out)
{
    size_t a = 0, b = n;
    while (a < b && (is_space(s[a]) || s[a] == '\v'))
        a++;
    while (b > a && (is_space(s[b - 1]) || s[b - 1] == '\v'))
        b--;
    bool neg = false;
    size_t i = a;
    if (i < b && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    bool ok = false;
    double v = 0.0;
    if (word_is(s + i, b - i, "inf") || word_is(s + i, b - i, "infinity")) {
        v = INFINITY;
        ok = true;
    } else if (word_is(s + i, b - i, "nan")) {
        v = NAN;
        ok = true;
    } else {
        decimal d = {s + i, 0, NULL, 0, 0};
        while (i < b && is_digit(s[i]))
            i++;
        d.int_len = (size_t)(s + i - d.int_part);
        if (i < b && s[i] == '.') {
            d.frac = s + ++i;
            while (i < b && is_digit(s[i]))
                i++;
            d.frac_len = (size_t)(s + i - d.frac);
        }
        ok = d.int_len + d.frac_len > 0;
        if (ok && i < b && (s[i] == 'e' || s[i] == 'E')) {
            i++;
            bool eneg = false;
            if (i < b && (s[i] == '+' || s[i] == '-'))
                eneg = s[i++] == '-';
            ok = i < b && is_digit(s[i]);
            while (i < b && is_digit(s[i])) {
                if (d.exp10 < 1000000000000000LL)
                    d.exp10 = d.exp10 * 10 + (s[i] - '0');
                i++;
            }
            if (eneg)
                d.exp10 = -d.exp10;
        }
        ok = ok && i == b;
        if (ok)
            v = decimal_value(&d);
    }
    if (!ok) {
        /* Python's message, with repr() of the whole argument */
        char rep[200];
        size_t k = 0;
        char q = (memchr(s, '\'', n) && !memchr(s, '"', n)) ? '"' : '\'';
        rep[k++] = q;
        for (size_t j = 0; j < n && k + 10 < sizeof rep; j++) {
            unsigned char c = (unsigned char)s[j];
            if (c == '\t' || c == '\r')
                k += (size_t)snprintf(rep + k, sizeof rep - k, "\\%c",
                                      c == '\t' ? 't' : 'r');
            else if (c < 0x20 || c == 0x7f)
                k += (size_t)snprintf(rep + k, sizeof rep - k, "\\x%02x", c);
            else
                rep[k++] = (char)c;
        }
        rep[k++] = q;
        rep[k] = '\0';
        return cg__error(CG_ERR_VALUE, "could not convert string to float: %s",
                         rep);
    }
    *out = neg ? -v : v;
    return CG_OK;
}

/* float(...) and complex(...), after the name. */
static cg_status parse_call(parser *P, bool is_complex, num *out)
{
    skip_space(P);
    if (peek(P) != '(')
        return unexpected(P);
    cg_status st = open_bracket(P);
    if (st != CG_OK)
        return st;
    num args[2];
    int nargs = 0;
    skip_space(P);
    while (peek(P) != ')') {
        if (nargs == (is_complex ? 2 : 1))
            return unexpected(P);
        if (!is_complex && nargs == 0 && (peek(P) == '\'' || peek(P) == '"')) {
            const char *text = NULL;
            size_t len = 0;
            if ((st = parse_string(P, &text, &len)) != CG_OK)
                return st;
            double v = 0.0;
            if ((st = float_of_string(text, len, &v)) != CG_OK)
                return st;
            args[nargs++] = make_float(v);
        } else {
            if ((st = parse_number(P, &args[nargs])) != CG_OK)
                return st;
            nargs++;
        }
        skip_space(P);
        if (peek(P) == ',') {
            P->pos++;
            skip_space(P);
        } else if (peek(P) != ')') {
            return unexpected(P);
        }
    }
    P->pos++;
    P->nesting--;
    if (!is_complex) {
        if (nargs == 1 && args[0].kind == NUM_COMPLEX)
            return cg__error(CG_ERR_TYPE, "float() argument must be a string "
                                          "or a real number, not 'complex'");
        *out = make_float(nargs ? num_real(&args[0]) : 0.0);
        return CG_OK;
    }
    /* CPython's complex(r, i): r + i*1j, computed as it computes it */
    if (nargs == 0) {
        *out = make_complex(0.0, 0.0);
    } else if (nargs == 1) {
        *out = args[0].kind == NUM_COMPLEX
                   ? args[0]
                   : make_complex(num_real(&args[0]), 0.0);
    } else {
        bool rc = args[0].kind == NUM_COMPLEX, ic = args[1].kind == NUM_COMPLEX;
        double re = num_real(&args[0]), rim = rc ? args[0].im : 0.0;
        double im = num_real(&args[1]);
        if (ic)
            re -= args[1].im;
        if (rc)
            im += rim;
        *out = make_complex(re, im);
    }
    return CG_OK;
}

/* A numeric literal: int, float or imaginary, Python's spellings. */
static cg_status parse_numeral(parser *P, num *out)
{
    const char *s = P->s;
    size_t start = P->pos, i = start;
    decimal d = {s + i, 0, NULL, 0, 0};
    bool is_int = true;
    while (is_digit(s[i]))
        i++;
    d.int_len = i - start;
    if (s[i] == '.') {
        is_int = false;
        d.frac = s + ++i;
        while (is_digit(s[i]))
            i++;
        d.frac_len = (size_t)(s + i - d.frac);
    }
    bool bad = d.int_len + d.frac_len == 0;
    if (!bad && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        bool eneg = false;
        if (s[j] == '+' || s[j] == '-')
            eneg = s[j++] == '-';
        if (is_digit(s[j])) {
            is_int = false;
            while (is_digit(s[j])) {
                if (d.exp10 < 1000000000000000LL)
                    d.exp10 = d.exp10 * 10 + (s[j] - '0');
                j++;
            }
            if (eneg)
                d.exp10 = -d.exp10;
            i = j;
        } else {
            bad = true;
        }
    }
    bool imag = false;
    if (!bad && (s[i] == 'j' || s[i] == 'J')) {
        imag = true;
        i++;
    }
    if (bad || is_name_char(s[i]) || s[i] == '.') {
        size_t end = i;
        while (is_name_char(s[end]) || s[end] == '.')
            end++;
        int shown = end - start > 40 ? 40 : (int)(end - start);
        return syntax_error(start, "malformed number '%.*s%s'", shown,
                            s + start, end - start > 40 ? "..." : "");
    }
    P->pos = i;
    if (imag) {
        *out = make_complex(0.0, decimal_value(&d));
        return CG_OK;
    }
    if (!is_int) {
        *out = make_float(decimal_value(&d));
        return CG_OK;
    }
    /* ints: exact in int64 when they fit, else rounded as Python's
     * int.__float__ rounds, and too large for a double is an error */
    size_t z = 0;
    while (z < d.int_len && d.int_part[z] == '0')
        z++;
    if (z > 0 && z < d.int_len)
        return syntax_error(start, "leading zeros in decimal integer "
                                   "literals are not permitted");
    int64_t v = 0;
    bool fits = true;
    for (size_t k = 0; k < d.int_len && fits; k++) {
        int digit = d.int_part[k] - '0';
        if (v > (INT64_MAX - digit) / 10)
            fits = false;
        else
            v = v * 10 + digit;
    }
    if (fits) {
        num n = {NUM_INT, v, 0.0, 0.0};
        *out = n;
        return CG_OK;
    }
    double x = decimal_value(&d);
    if (isinf(x))
        return syntax_error(start, "int too large to convert to float");
    *out = make_float(x);
    return CG_OK;
}

/* An atom: numeral, name, call or parenthesised number. */
static cg_status parse_atom(parser *P, num *out)
{
    skip_space(P);
    char c = peek(P);
    cg_status st;
    if (is_digit(c) || (c == '.' && is_digit(P->s[P->pos + 1])))
        return parse_numeral(P, out);
    if (c == '(') {
        if ((st = open_bracket(P)) != CG_OK)
            return st;
        if ((st = parse_number(P, out)) != CG_OK)
            return st;
        if ((st = expect(P, ')')) != CG_OK)
            return st;
        P->nesting--;
        return CG_OK;
    }
    if (!is_name_start(c))
        return unexpected(P);
    size_t start = P->pos, end = start;
    while (is_name_char(P->s[end]))
        end++;
    const char *name = P->s + start;
    size_t len = end - start;
    P->pos = end;
#define NAME_IS(w) (len == sizeof(w) - 1 && memcmp(name, w, len) == 0)
    if (NAME_IS("inf"))
        *out = make_float(INFINITY);
    else if (NAME_IS("nan"))
        *out = make_float(NAN);
    else if (NAME_IS("infj"))
        *out = make_complex(0.0, INFINITY);
    else if (NAME_IS("nanj"))
        *out = make_complex(0.0, NAN);
    else if (NAME_IS("True") || NAME_IS("False")) {
        num n = {NUM_INT, NAME_IS("True") ? 1 : 0, 0.0, 0.0};
        *out = n;
    } else if (NAME_IS("float") || NAME_IS("complex"))
        return parse_call(P, NAME_IS("complex"), out);
    else {
        int shown = len > 40 ? 40 : (int)len;
        return syntax_error(start, "name '%.*s%s' is not defined", shown, name,
                            len > 40 ? "..." : "");
    }
#undef NAME_IS
    return CG_OK;
}

/* term := ('+' | '-')* atom */
static cg_status parse_term(parser *P, num *out)
{
    bool neg = false;
    for (;;) {
        skip_space(P);
        if (peek(P) == '-')
            neg = !neg;
        else if (peek(P) != '+')
            break;
        P->pos++;
    }
    cg_status st = parse_atom(P, out);
    if (st == CG_OK && neg)
        *out = num_negate(*out);
    return st;
}

/* number := term (('+' | '-') term)* */
static cg_status parse_number(parser *P, num *out)
{
    num acc = {NUM_INT, 0, 0.0, 0.0};
    cg_status st = parse_term(P, &acc);
    for (;;) {
        if (st != CG_OK)
            return st;
        skip_space(P);
        char c = peek(P);
        if (c != '+' && c != '-')
            break;
        P->pos++;
        num rhs = {NUM_INT, 0, 0.0, 0.0};
        st = parse_term(P, &rhs);
        if (st == CG_OK)
            acc = num_add(acc, rhs, c == '-');
    }
    *out = acc;
    return CG_OK;
}

static cg_status parse_value(parser *P, int depth, bool first);

/* A list or tuple whose opening bracket is at the current position; its
 * elements sit at dimension depth + 1. */
static cg_status parse_sequence(parser *P, int depth, bool first)
{
    char close = peek(P) == '[' ? ']' : ')';
    const char *kind = close == ']' ? "list" : "tuple";
    cg_status st;
    if (P->mode == PASS_STORE) {
        if (depth == P->ndim)
            return cg__error(CG_ERR_TYPE, "must be real number, not %s", kind);
        int64_t count;
        bool comma;
        look_ahead(P->s, P->pos, &count, &comma);
        if (count != P->sizes[depth])
            return cg__error(CG_ERR_VALUE,
                             "expected sequence of length %lld at dim %d "
                             "(got %lld)",
                             (long long)P->sizes[depth], depth,
                             (long long)count);
    }
    if ((st = open_bracket(P)) != CG_OK)
        return st;
    int64_t count = 0;
    skip_space(P);
    while (peek(P) != close) {
        if ((st = parse_value(P, depth + 1, first && count == 0)) != CG_OK)
            return st;
        count++;
        skip_space(P);
        if (peek(P) == ',') {
            P->pos++;
            skip_space(P);
        } else if (peek(P) != close) {
            return unexpected(P);
        }
    }
    P->pos++;
    P->nesting--;
    if (P->mode == PASS_SCAN && first) {
        if (depth < CG_MAX_DIMS)
            P->sizes[depth] = count;
        if (count == 0)
            P->ndim = depth + 1;
    }
    return CG_OK;
}

/* A value at dimension `depth`; `first` when every sequence above it was
 * entered through its first element (the path that gives the shape). */
static cg_status parse_value(parser *P, int depth, bool first)
{
    cg_status st;
    skip_space(P);
    char c = peek(P);
    if (c == '[' || (c == '(' && is_tuple(P->s, P->pos)))
        return parse_sequence(P, depth, first);
    if (c == '(' && groups_sequence(P->s, P->pos)) {
        if ((st = open_bracket(P)) != CG_OK)
            return st;
        if ((st = parse_value(P, depth, first)) != CG_OK)
            return st;
        if ((st = expect(P, ')')) != CG_OK)
            return st;
        P->nesting--;
        return CG_OK;
    }
    if (P->mode == PASS_STORE && depth < P->ndim)
        return cg__error(CG_ERR_TYPE, "not a sequence");
    num v = {NUM_INT, 0, 0.0, 0.0};
    if ((st = parse_number(P, &v)) != CG_OK)
        return st;
    if (P->mode == PASS_SCAN) {
        P->numbers++;
        P->any_complex = P->any_complex || v.kind == NUM_COMPLEX;
        if (first)
            P->ndim = depth;
        return CG_OK;
    }
    if (v.kind == NUM_COMPLEX && !cg_dtype_is_complex(P->dtype))
        return cg__error(CG_ERR_TYPE, "must be real number, not complex");
    if (P->t)
        cg__store(P->t, P->next, num_real(&v),
                  v.kind == NUM_COMPLEX ? v.im : 0.0);
    P->next++;
    return CG_OK;
}

/* ---- entry points ------------------------------------------------------- */

static cg_status tensor_literal(const char *text, bool have_dtype, cg_dtype dt,
                                cg_tensor **out)
{
    if (!text)
        return cg__error_null("text");
    if (!out)
        return cg__error_null("out");
    cg_status st;
    if (have_dtype && (st = cg__check_dtype(dt)) != CG_OK)
        return st;

    /* pass 1: syntax, dtype, shape */
    parser P = {.s = text, .mode = PASS_SCAN, .ndim = -1};
    if ((st = parse_value(&P, 0, true)) != CG_OK)
        return st;
    skip_space(&P);
    if (peek(&P) != '\0')
        return unexpected(&P);
    if (P.ndim > CG_MAX_DIMS)
        return cg__error(CG_ERR_VALUE,
                         "the literal has %d dimensions, but cgrad tensors "
                         "have at most %d",
                         P.ndim, CG_MAX_DIMS);
    if (P.ndim < 0) /* the first path always ends; guard the invariant */
        return cg__error(CG_ERR_RUNTIME,
                         "internal error: literal shape not found");
    if (!have_dtype)
        dt = P.any_complex ? CG_COMPLEX64 : CG_FLOAT32;

    /* pass 2: store in row-major order, checking as torch.tensor does.
     * PyTorch checks nothing when the shape has no elements. */
    int64_t numel = 1;
    bool overflow = false;
    for (int d = 0; d < P.ndim; d++)
        overflow = overflow || !cg__mul_overflow(numel, P.sizes[d], &numel);
    cg_tensor *t = NULL;
    if (!overflow && numel <= P.numbers &&
        (st = cg__tensor_new(P.sizes, P.ndim, dt, &t)) != CG_OK)
        return st;
    if (overflow || numel > 0) {
        /* More elements than numbers means a ragged literal: validate
         * without allocating, the store pass will say where. */
        P.pos = 0;
        P.nesting = 0;
        P.mode = PASS_STORE;
        P.dtype = dt;
        P.t = t;
        P.next = 0;
        st = parse_value(&P, 0, true);
        if (st == CG_OK && (!t || P.next != numel))
            st = cg__error(CG_ERR_RUNTIME,
                           "internal error: literal stored %lld of %lld "
                           "values",
                           (long long)P.next, (long long)numel);
        if (st != CG_OK) {
            cg_tensor_release(t);
            return st;
        }
    }
    *out = t;
    return CG_OK;
}

cg_status cg_tensor_literal(const char *text, cg_tensor **out)
{
    return tensor_literal(text, false, CG_FLOAT32, out);
}

cg_status cg_tensor_literal_dtype(const char *text, cg_dtype dt,
                                  cg_tensor **out)
{
    return tensor_literal(text, true, dt, out);
}
