/* host/cli/run_args.h — the check of `workbench run FILE.lua key=value ...`'s
 * pairs (host/cli/run_args.c): every argument after the script must be
 * key=value with a name-like key ([A-Za-z0-9_.-]+), and no key may be given
 * twice. Pure: no Lua, no I/O, so tests/fuzz/fuzz_run_args.c feeds it
 * arbitrary argv arrays.
 */
#ifndef WB_RUN_ARGS_H
#define WB_RUN_ARGS_H

#include <stddef.h>

/* 0 when every pairs[0..n-1] is a valid, distinct key=value; else -1 and a
 * message ("argument 'x' is not of the form key=value", "key 'k' given
 * twice"; non-printable bytes written as \xNN) in err (errlen > 0). */
int wb_run_args_check(int n, char *const *pairs, char *err, size_t errlen);

#endif
