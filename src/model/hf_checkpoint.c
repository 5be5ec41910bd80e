/* Where a Hugging Face checkpoint keeps its configuration (see src/model/hf_checkpoint.h). */
#include "model/hf_checkpoint.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/path.h"
#include "model/hf_write.h"

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Reads a config.json, refusing text with a NUL byte (cJSON would stop there silently). */
static fipsc_status read_text(const char *path, char **text, fipsc_error *err)
{
    size_t size;
    fipsc_status st = fipsc_read_file(path, text, &size, err);
    if (st) return st;
    if (strlen(*text) != size) {
        free(*text);
        *text = NULL;
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: contains a NUL byte (not a JSON text)", path);
    }
    return FIPSC_OK;
}

fipsc_status fipsc_hf_config_text(const char *path, char **text, char *origin, size_t origin_cap, fipsc_st_set **set,
                                  fipsc_error *err)
{
    *text = NULL;
    *set = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fipsc_status st = fipsc_path_join(origin, origin_cap, path, "config.json", err);
        if (st) return st;
        if (!exists(origin))
            return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "%s: no config.json (not a Hugging Face checkpoint directory)",
                              path);
        return read_text(origin, text, err);
    }
    fipsc_status st = fipsc_st_set_open(path, set, err);
    if (st) return st;
    const char *meta = fipsc_st_meta(fipsc_st_set_shard(*set, 0), FIPSC_HF_METADATA_CONFIG_KEY);
    if (meta) {
        fipsc_path_format(origin, origin_cap, NULL, "%s (__metadata__ \"%s\")", path, FIPSC_HF_METADATA_CONFIG_KEY);
        if (!(*text = strdup(meta))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    } else {
        const char *slash = strrchr(path, '/');
        st = fipsc_path_format(origin, origin_cap, err, "%.*sconfig.json", slash ? (int)(slash + 1 - path) : 0, path);
        if (!st && !exists(origin))
            st = fipsc_fail(err, FIPSC_ERR_NOT_FOUND,
                            "%s: no model configuration: __metadata__ has no \"%s\" entry and there is no "
                            "config.json beside the file",
                            path, FIPSC_HF_METADATA_CONFIG_KEY);
        if (!st) st = read_text(origin, text, err);
    }
    if (st) {
        fipsc_st_set_close(*set);
        *set = NULL;
    }
    return st;
}
