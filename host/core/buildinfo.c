/* host/core/buildinfo.c — build facts. The commit comes from wb_commit.h, which
 * the build regenerates on every `cmake --build` (cmake/commit.cmake), so a
 * run never records a stale commit after new work without a reconfigure. */
#include "core/buildinfo.h"
#include "wb_commit.h"

#ifndef WB_VERSION
#define WB_VERSION "unknown"
#endif
#ifndef WB_LUA_SOURCE_DIR
#define WB_LUA_SOURCE_DIR ""
#endif
#ifndef WB_LUA_INSTALL_DIR
#define WB_LUA_INSTALL_DIR ""
#endif

const char *wb_build_version(void) { return WB_VERSION; }
const char *wb_build_commit(void) { return WB_GIT_COMMIT; }
const char *wb_lua_source_dir(void) { return WB_LUA_SOURCE_DIR; }
const char *wb_lua_install_dir(void) { return WB_LUA_INSTALL_DIR; }
int wb_build_has_cuda(void) {
#ifdef WB_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}
