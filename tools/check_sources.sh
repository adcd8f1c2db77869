#!/usr/bin/env bash
# check_sources.sh -- the library's "no process killers, one allocator"
# rules, checked over the sources of core/, nn/ and optim/ (.c and .h):
#
#   1. no direct malloc/calloc/realloc/free/strdup/strndup/aligned_alloc/
#      posix_memalign outside core/alloc.c: every allocation goes through
#      the installed cg_allocator (cg_malloc/cg__malloc and friends);
#   2. no abort(, exit(, _Exit(, quick_exit(, assert( or <assert.h>: a
#      library reports errors through cg_status, it never ends the process;
#   3. every cg_malloc/cg_calloc/cg_realloc (and cg__ forms) result is
#      tested for NULL: the call either sits in a test itself
#      (`if (!(p = cg_malloc(n)))`) or its target is tested (`!p`,
#      `p == NULL`, `p != NULL`, `if (p)`, `p ?`, `p &&`) within the next
#      LOOKAHEAD lines after the statement. A heuristic: it reads text, not
#      C, but it has no false positive on the tree and catches the usual
#      mistake (an allocation used without a test).
#
# Comments and string literals are ignored. Prints file:line: reason for
# each finding and exits 1 if there is any. Usage: tools/check_sources.sh
# [root] (default: the repository holding this script);
# CHECK_SOURCES_VERBOSE=1 also lists the wrappers and their checked calls.
set -euo pipefail
root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
cd "$root"

LOOKAHEAD=6

files=$(find core nn optim -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
[ -n "$files" ] || { echo "check_sources: no sources under $root" >&2; exit 2; }

# shellcheck disable=SC2086
awk -v lookahead="$LOOKAHEAD" -v verbose="${CHECK_SOURCES_VERBOSE:-0}" '
# Blanks comments and the insides of string and character literals so the
# patterns below see code only. `incomment` carries /* */ across lines.
function strip(s,    out, i, c, n, q) {
    out = ""; n = length(s); i = 1
    while (i <= n) {
        c = substr(s, i, 1)
        if (incomment) {
            if (c == "*" && substr(s, i + 1, 1) == "/") { incomment = 0; i += 2; out = out "  "; continue }
            out = out " "; i++; continue
        }
        if (c == "/" && substr(s, i + 1, 1) == "*") { incomment = 1; out = out "  "; i += 2; continue }
        if (c == "/" && substr(s, i + 1, 1) == "/") break
        if (c == "\"" || c == "\047") {
            q = c; out = out c; i++
            while (i <= n && substr(s, i, 1) != q) {
                if (substr(s, i, 1) == "\\") { out = out " "; i++ }
                out = out " "; i++
            }
            out = out q; i++; continue
        }
        out = out c; i++
    }
    return out
}
function report(file, line, msg) {
    printf "%s:%d: %s\n", file, line, msg
    bad++
}
# Regex-escapes an lvalue such as g->stash, s.p[0] or *out.
function esc(s,    r) {
    r = s
    gsub(/[][\\.^$*+?(){}|]/, "\\\\&", r)
    return r
}
# True when code (the lines after an allocation) tests lvalue x for NULL.
function tested(code, x,    e, after) {
    e = esc(x)
    after = "([^A-Za-z0-9_.[-]|$)"
    if (code ~ ("!\\(*[ \t]*" e after)) return 1
    if (code ~ ("(^|[^A-Za-z0-9_.>])" e "[ \t]*[!=]=[ \t]*NULL")) return 1
    if (code ~ ("NULL[ \t]*[!=]=[ \t]*" e after)) return 1
    if (code ~ ("(if|while)[ \t]*\\([ \t]*" e "[ \t]*(\\)|&&|\\|\\|)")) return 1
    if (code ~ ("(&&|\\|\\|)[ \t]*" e "[ \t]*(\\)|&&|\\|\\|)")) return 1
    if (code ~ ("(^|[^A-Za-z0-9_.>])" e "[ \t]*\\?")) return 1
    return 0
}
FNR == 1 {
    incomment = 0
    files[++nfiles] = FILENAME
}
{
    text[FILENAME, FNR] = strip($0)
    fname[FILENAME] = FNR
}
# The function whose body holds line i of file (definitions start in
# column 0 in this code base: `static char *join(const char *p, ...)`).
function enclosing(file, i,    k, l) {
    for (k = i; k >= 1; k--) {
        l = text[file, k]
        if (l ~ /^[A-Za-z_].*[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/ && l !~ /^(typedef|struct|enum|union)/) {
            sub(/[ \t]*\(.*$/, "", l)
            sub(/^.*[^A-Za-z0-9_]/, "", l)
            return l
        }
    }
    return ""
}
# Checks the allocating call that starts at column `at` of line i (`what`
# names it in messages). Returns 1 when it is tested; records wrappers:
# functions that return the tested result to their caller.
function check_alloc(file, i, n, at, what,    s, pre, j, stmt, tgt, lead, decl, after, k, rest, w) {
    s = text[file, i]
    pre = substr(s, 1, at - 1)
    # the whole statement, from the line holding the call to its ";"
    stmt = substr(s, at); j = i
    while (stmt !~ /;/ && j < n && j < i + 10) { j++; stmt = stmt " " text[file, j] }
    # core/alloc.c passes results through to the caller, who tests them
    if (file == "core/alloc.c" && pre ~ /return[ \t]*$/) return 1
    # the call inside a test: if (!(x = cg_malloc(...))), !(x = ...)
    if (pre ~ /!\(*[ \t]*[A-Za-z_*][A-Za-z0-9_.>\[\]*-]*[ \t]*=[ \t]*$/) return 1
    # its target: the lvalue before the last "=" preceding the call, on
    # this line or, for `T *p =\n    cg_malloc(...)`, the line before
    tgt = ""; lead = ""
    if (pre ~ /^[ \t]*$/ && i > 1 && text[file, i - 1] ~ /=[ \t]*$/)
        pre = text[file, i - 1]
    if (match(pre, /[A-Za-z_*][A-Za-z0-9_.>\[\]*-]*[ \t]*=[ \t]*[^=]*$/)) {
        tgt = substr(pre, RSTART)
        lead = substr(pre, 1, RSTART - 1)
        sub(/[ \t]*=.*$/, "", tgt)
    }
    if (tgt == "") {
        report(file, i, "result of " what "() not assigned to a variable that is then tested for NULL")
        return 0
    }
    # a pointer declarator names p: `T *p = cg_malloc(...)`, or
    # `*p = cg_malloc(...)` continuing a declaration whose line before
    # ends with ","; otherwise `*p = ...` stores through p and only a test
    # of *p counts
    decl = tgt
    if (lead ~ /[A-Za-z_]/ || (i > 1 && text[file, i - 1] ~ /,[ \t]*$/))
        sub(/^\*+/, "", decl)
    rest = substr(s, at)
    for (k = i + 1; k <= j + lookahead && k <= n; k++) rest = rest "\n" text[file, k]
    if (!tested(rest, tgt) && !(decl != tgt && tested(rest, decl))) {
        report(file, i, "result of " what "() into \"" tgt "\" is not tested for NULL within " lookahead " lines")
        return 0
    }
    # a wrapper hands the (possibly NULL) result to its caller: its own
    # calls are then checked the same way
    if (rest ~ ("return[ \t]+" esc(decl) "[ \t]*;")) {
        w = enclosing(file, i)
        if (w != "" && !(w in wrapper)) {
            wrapper[w] = (w ~ /^cg_/) ? "" : file
            nwrap++
        }
    }
    return 1
}
END {
    bad = 0
    nwrap = 0
    for (f = 1; f <= nfiles; f++) {
        file = files[f]
        n = fname[file]
        isalloc = (file == "core/alloc.c")
        for (i = 1; i <= n; i++) {
            s = text[file, i]
            if (s ~ /^[ \t]*$/) continue
            # 1. the C library allocator, directly
            if (!isalloc && match(s, /(^|[^A-Za-z0-9_.>])(malloc|calloc|realloc|free|strdup|strndup|aligned_alloc|posix_memalign)[ \t]*\(/)) {
                fn = substr(s, RSTART, RLENGTH); sub(/^[^a-z_]/, "", fn); sub(/[ \t]*\($/, "", fn)
                report(file, i, "direct " fn "(): allocate through cg_malloc/cg_calloc/cg_realloc/cg_free (core/alloc.c)")
            }
            # 2. process killers
            if (match(s, /(^|[^A-Za-z0-9_.>])(abort|exit|_Exit|quick_exit|assert)[ \t]*\(/)) {
                fn = substr(s, RSTART, RLENGTH); sub(/^[^a-zA-Z_]/, "", fn); sub(/[ \t]*\($/, "", fn)
                report(file, i, fn "(): the library must return a cg_status, never end the process")
            }
            if (s ~ /^[ \t]*#[ \t]*include[ \t]*<assert\.h>/)
                report(file, i, "<assert.h>: the library must not assert")
            # 3. unchecked allocations (calls sit in function bodies, which
            # are indented: a match in column 0 is a prototype/definition)
            if (s ~ /^[A-Za-z_]/) continue
            if (match(s, /(^|[^A-Za-z0-9_])cg__?(malloc|calloc|realloc)[ \t]*\(/)) {
                at = RSTART + (substr(s, RSTART, 1) ~ /[A-Za-z_]/ ? 0 : 1)
                what = substr(s, at); sub(/[ \t]*\(.*$/, "", what)
                check_alloc(file, i, n, at, what)
            }
        }
    }
    # 3b. the calls of the wrappers found above (a wrapper named cg_*/cg__*
    # anywhere; a static one in its own file), to a fixed point
    done_wrap = 0
    while (done_wrap < nwrap) {
        done_wrap = nwrap
        nw = 0
        for (w in wrapper) if (!(w in checked_wrap)) todo[++nw] = w
        for (t = 1; t <= nw; t++) {
            w = todo[t]
            checked_wrap[w] = 1
            if (verbose) printf "wrapper %s (%s)\n", w, wrapper[w] == "" ? "global" : wrapper[w]
            for (f = 1; f <= nfiles; f++) {
                file = files[f]
                if (wrapper[w] != "" && wrapper[w] != file) continue
                n = fname[file]
                for (i = 1; i <= n; i++) {
                    s = text[file, i]
                    if (s ~ /^[A-Za-z_]/) continue
                    if (match(s, "(^|[^A-Za-z0-9_])" w "[ \t]*\\(")) {
                        at = RSTART + (substr(s, RSTART, 1) ~ /[A-Za-z_]/ ? 0 : 1)
                        if (check_alloc(file, i, n, at, w) && verbose)
                            printf "  %s:%d: %s() result tested\n", file, i, w
                    }
                }
            }
        }
    }
    if (bad) {
        printf "check_sources: %d finding(s)\n", bad > "/dev/stderr"
        exit 1
    }
    printf "check_sources: %d files clean (allocator, no abort/exit/assert, allocations and %d allocating wrappers checked)\n", nfiles, nwrap
}
' $files
