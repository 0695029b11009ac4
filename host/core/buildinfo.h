/* host/core/buildinfo.h — facts about this build of libwb, recorded in every run
 * (config.json, checkpoint metadata) and printed by `workbench version`. */
#ifndef WB_BUILDINFO_H
#define WB_BUILDINFO_H

const char *wb_build_version(void);    /* "0.1.0"                                   */
const char *wb_build_commit(void);     /* git commit at build time, "-dirty" if the tree had changes */
const char *wb_lua_source_dir(void);   /* <source>/scripts/lua                      */
const char *wb_lua_install_dir(void);  /* <prefix>/share/wb/lua                     */
int wb_build_has_cuda(void);           /* 1 when the CUDA backend was compiled in   */

#endif
