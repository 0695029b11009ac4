/* host/cli/run_args.c — the check of `workbench run`'s key=value pairs
 * (declared in cli/run_args.h): what main.c's cmd_run refuses before a Lua
 * state exists. Fuzzed by tests/fuzz/fuzz_run_args.c.
 */
#include "cli/run_args.h"

#include <stdio.h>
#include <string.h>

#include "core/escape.h"

/* A name-like key: [A-Za-z0-9_.-]. */
static int key_char(char c) {
    return c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* Length of the key of "key=value", or 0 when s is not such a pair. */
static size_t pair_key_len(const char *s) {
    const char *eq = strchr(s, '=');
    if (!eq || eq == s) return 0;
    for (const char *p = s; p < eq; p++)
        if (!key_char(*p)) return 0;
    return (size_t)(eq - s);
}

int wb_run_args_check(int n, char *const *pairs, char *err, size_t errlen) {
    char shown[256];
    for (int i = 0; i < n; i++) {
        const char *pair = pairs[i] ? pairs[i] : "";
        size_t klen = pair_key_len(pair);
        if (klen == 0) {
            if (errlen)
                snprintf(err, errlen, "argument '%s' is not of the form key=value", wb_escape(pair, shown, sizeof shown));
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (pairs[j] && strncmp(pairs[j], pair, klen) == 0 && pairs[j][klen] == '=') {
                if (errlen) snprintf(err, errlen, "key '%s' given twice", wb_escape_n(pair, klen, shown, sizeof shown));
                return -1;
            }
    }
    return 0;
}
