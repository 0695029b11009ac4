#!/usr/bin/env python3
"""tests/check_exports.py — libwb exports exactly the public API (CTest:
exported_symbols).

Lists the dynamic symbols libwb.so defines (`nm -D --defined-only`) and the
functions and variables include/wb/*.h declare, and fails on any difference
in either direction, printing it:
  - exported but not declared: an internal function leaked out of libwb
    (a plugin could start depending on it), or a public header lost it;
  - declared but not exported: a public function libwb does not provide
    (not implemented, or defined in libwb_host instead of libwb, or its
    definition does not see the header's `visibility push(default)`).
Declarations marked WB_PLUGIN_EXPORT (wb_plugin_entry) are what plugins
define, never libwb, and are left out. static inline helpers (wb/elementwise.h)
are not symbols at all.

The declarations come from the C preprocessor's view of the headers (macros
expanded, comments gone), keeping only the text that comes from include/wb/,
split into top-level declarations.

usage: check_exports.py --lib libwb.so --include <dir holding wb/> --cc CC --nm NM
"""
import argparse
import glob
import os
import re
import subprocess
import sys

# Symbols every ELF shared object defines (linker-provided), not API.
PLATFORM_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}


def exported_symbols(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            names.add(fields[2].split("@")[0])
    return names - PLATFORM_SYMBOLS


def public_header_text(cc, include_dir):
    """The preprocessed text of every public header, only the lines that come
    from include/wb/ itself (not from system headers)."""
    headers = sorted(glob.glob(os.path.join(include_dir, "wb", "*.h")))
    if not headers:
        sys.exit("check_exports: no headers in %s/wb" % include_dir)
    tu = "".join('#include "wb/%s"\n' % os.path.basename(h) for h in headers)
    pre = subprocess.run([cc, "-std=c11", "-E", "-I", include_dir, "-x", "c", "-"], input=tu, check=True,
                         capture_output=True, text=True).stdout
    wb_dir = os.path.realpath(os.path.join(include_dir, "wb"))
    keep, text = False, []
    for line in pre.splitlines():
        marker = re.match(r'#\s*\d+\s+"([^"]*)"', line)
        if marker:
            path = marker.group(1)
            keep = os.path.dirname(os.path.realpath(path)) == wb_dir if path[:1] != "<" else False
            continue
        if line.startswith("#"):  # #pragma GCC visibility ... lines
            continue
        if keep:
            text.append(line)
    return headers, "\n".join(text)


def strip_attributes(text):
    """Removes __attribute__((...)) and friends, balanced."""
    out, i = [], 0
    while True:
        m = re.compile(r"\b__attribute__\s*\(").search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        i = j
    text = "".join(out)
    return re.sub(r"\b(__extension__|__restrict|__inline)\b", " ", text)


def top_level_statements(text):
    """Top-level declarations: split at ';' outside braces and parentheses,
    and after a function body's closing brace. Brace contents are dropped."""
    stmts, cur, depth, paren, body_of_function = [], [], 0, 0, False
    for ch in text:
        if ch == "{":
            if depth == 0:
                before = "".join(cur).rstrip()
                body_of_function = before.endswith(")")
                cur.append("{")
            depth += 1
            continue
        if ch == "}":
            depth -= 1
            if depth == 0:
                cur.append("}")
                if body_of_function:
                    stmts.append("".join(cur))
                    cur = []
            continue
        if depth:
            continue
        if ch == "(":
            paren += 1
        elif ch == ")":
            paren -= 1
        if ch == ";" and paren == 0:
            stmts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    return [" ".join(s.split()) for s in stmts if s.strip()]


def declared_symbols(text):
    names = set()
    for s in top_level_statements(strip_attributes(text)):
        words = re.findall(r"\w+", s)
        if not words or words[0] == "typedef" or "static" in words:
            continue
        if re.fullmatch(r"(struct|union|enum) \w+( \{\})?", s):  # a tag, no declarator
            continue
        fnptr = re.search(r"\(\s*\*\s*(\w+)\s*\)", s)
        if fnptr:  # a function-pointer variable
            names.add(fnptr.group(1))
            continue
        fn = re.search(r"(\w+)\s*\(", s)
        if fn:
            names.add(fn.group(1))
            continue
        var = re.search(r"(\w+)\s*(\[[^\]]*\])*\s*(=.*)?$", s)  # extern T name[...];
        if var:
            names.add(var.group(1))
    return names


def plugin_defined(headers):
    """Names declared with WB_PLUGIN_EXPORT: defined by plugins, not libwb."""
    names = set()
    for h in headers:
        src = open(h, encoding="utf-8").read()
        src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
        for m in re.finditer(r"^\s*WB_PLUGIN_EXPORT\b[^;{#]*?(\w+)\s*\(", src, flags=re.M):
            names.add(m.group(1))
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--include", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--nm", required=True)
    a = ap.parse_args()

    exported = exported_symbols(a.nm, a.lib)
    headers, text = public_header_text(a.cc, a.include)
    by_plugins = plugin_defined(headers)
    declared = declared_symbols(text) - by_plugins
    # The parse must have seen the API at all (a broken parse is no pass).
    for must in ("wb_graph_new", "wb_linear", "wb_backend_cpu", "wb_net_denoise", "wb_config_number"):
        if must not in declared:
            sys.exit("check_exports: parsing include/wb found no declaration of %s" % must)

    leaked = sorted(exported - declared)
    missing = sorted(declared - exported)
    print("libwb: %d exported symbols; include/wb: %d declarations (+ %s, defined by plugins)"
          % (len(exported), len(declared), ", ".join(sorted(by_plugins)) or "none"))
    if leaked:
        print("exported by %s but declared in no public header (%d):" % (a.lib, len(leaked)))
        for n in leaked:
            print("  " + n)
    if missing:
        print("declared in include/wb but not exported by %s (%d):" % (a.lib, len(missing)))
        for n in missing:
            print("  " + n)
    if leaked or missing:
        return 1
    print("OK: the exports are exactly the public API")
    return 0


if __name__ == "__main__":
    sys.exit(main())
