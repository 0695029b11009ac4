/* tests/fuzz/fuzz_run_args.c — fuzzes the check of `workbench run`'s
 * key=value arguments (wb_run_args_check, host/cli/run_args.c), which
 * main.c's cmd_run applies before a Lua state exists.
 *
 * Input: cut at NUL bytes (an argv string never holds one) into up to 64
 * arguments; checked with a roomy message buffer, a tiny one and none. The
 * target also checks what the function promises: an accepted list has a
 * '=' after a non-empty key in every argument, and a refusal's message holds
 * no control byte (every byte of an argument that is not printable or UTF-8
 * is shown as \xNN). Seeds: corpus/fuzz_run_args/ (make_corpus.py).
 */
#include "fuzz_util.h"

#include "cli/run_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_part parts[64];
    size_t n = size ? fuzz_split(data, size, "\0", 1, parts, 64) : 0;
    char *argv[64] = {NULL};
    for (size_t i = 0; i < n; i++) argv[i] = fuzz_strdup(parts[i]);

    char err[512], tiny[8];
    int rc = wb_run_args_check((int)n, argv, err, sizeof err);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            const char *eq = strchr(argv[i], '=');
            if (!eq || eq == argv[i]) {
                fprintf(stderr, "fuzz_run_args: accepted '%s', which is not key=value\n", argv[i]);
                abort();
            }
        }
    } else {
        for (const unsigned char *p = (const unsigned char *)err; *p; p++)
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(stderr, "fuzz_run_args: control byte 0x%02x in the message\n", *p);
                abort();
            }
    }
    if (wb_run_args_check((int)n, argv, tiny, sizeof tiny) != rc) abort();
    if (wb_run_args_check((int)n, argv, NULL, 0) != rc) abort();
    for (size_t i = 0; i < n; i++) free(argv[i]);
    return 0;
}
