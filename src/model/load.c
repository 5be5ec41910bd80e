/* fipsc_model_load: picks the loader from what the path is. */
#include <string.h>
#include <sys/stat.h>

#include "fipsc/model.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

fipsc_status fipsc_model_load(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return fipsc_fail(err, FIPSC_ERR_IO, "%s: no such file or directory", path);
    if (S_ISDIR(st.st_mode))
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: Hugging Face directories are not supported yet", path);
    if (ends_with(path, ".bin")) return fipsc_load_llama2c(path, out, err);
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "%s: unknown checkpoint format (expected a llama2.c .bin)", path);
}
