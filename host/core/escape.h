/* host/core/escape.h — bytes from a file (a checkpoint key, a plugin's
 * default string) made safe to put into an error message: printable ASCII
 * and well-formed UTF-8 stay as they are, every other byte (controls, DEL,
 * stray or overlong UTF-8 bytes) becomes \xNN and a backslash becomes \\, so
 * a message never carries raw terminal controls or invalid UTF-8. Header
 * only (static inline): libwb (safetensors.c) and libwb_host (registry.c)
 * both use it, and libwb exports nothing beyond include/wb.
 */
#ifndef WB_CORE_ESCAPE_H
#define WB_CORE_ESCAPE_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence of 2..4 bytes at s (at most n
 * available), or 0 when there is none (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
static inline size_t wb_utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (c == 0xe0 && s[1] < 0xa0) return 0; /* overlong */
    if (c == 0xed && s[1] > 0x9f) return 0; /* surrogate */
    if (c == 0xf0 && s[1] < 0x90) return 0; /* overlong */
    if (c == 0xf4 && s[1] > 0x8f) return 0; /* above U+10FFFF */
    return len;
}

/* The first len bytes of s, escaped, into out (cap >= 4, always
 * NUL-terminated); cut with "..." when they do not fit. Returns out, so a
 * call can stand in a printf argument list. s may be NULL ("(null)"). */
static inline const char *wb_escape_n(const char *s, size_t len, char *out, size_t cap) {
    if (!s) s = "(null)", len = 6;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char piece[8];
        size_t pl, adv = 1;
        if (u[i] == '\\') {
            memcpy(piece, "\\\\", 2), pl = 2;
        } else if (u[i] >= 0x20 && u[i] < 0x7f) {
            piece[0] = (char)u[i], pl = 1;
        } else if ((adv = wb_utf8_seq_len(u + i, len - i)) > 0) {
            memcpy(piece, u + i, adv), pl = adv;
        } else {
            snprintf(piece, sizeof piece, "\\x%02x", u[i]), pl = 4, adv = 1;
        }
        if (o + pl + 4 > cap) { /* room for "..." and the NUL */
            memcpy(out + o, "...", 3), o += 3;
            break;
        }
        memcpy(out + o, piece, pl);
        o += pl;
        i += adv;
    }
    out[o] = '\0';
    return out;
}

/* wb_escape_n over the whole NUL-terminated string. */
static inline const char *wb_escape(const char *s, char *out, size_t cap) {
    return wb_escape_n(s, s ? strlen(s) : 0, out, cap);
}

/* Enough for a key shown in a message: longer ones end in "...". */
#define WB_ESCAPED_KEY 200

#endif
