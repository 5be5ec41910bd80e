/* fipsc_model_load: picks the loader from what the path is.
 *
 *   a fipsc compressed .safetensors (its __metadata__ says so) -> model/compressed_read.c, first:
 *                         it carries a configuration too but is no plain checkpoint
 *   a directory        -> Hugging Face checkpoint (config.json + safetensors): ViT/DeiT
 *                         (families/vit/hf_load.c) when config.json says so, else Llama family (families/llama/hf_load.c)
 *   *.safetensors      -> the same for one file, configuration in its __metadata__ or a
 *                         config.json beside it
 *   TF.js directory    -> Universal Sentence Encoder Lite (families/use/import_tfjs.c); its safetensors form
 *                         (families/use/safetensors.c) when the file's "config" metadata names it
 *   *.bin              -> llama2.c checkpoint, families/llama/llama2c.c
 *   anything else      -> FIPSC_ERR_UNSUPPORTED naming the path */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "model/compressed.h"
#include "families/llama/hf.h"
#include "model/model.h"
#include "families/use/use.h"
#include "families/vit/vit.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

fipsc_status fipsc_model_load(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return fipsc_fail(err, errno == ENOENT ? FIPSC_ERR_NOT_FOUND : FIPSC_ERR_IO, "%s: %s", path,
                          strerror(errno));
    if (!S_ISDIR(st.st_mode) && ends_with(path, ".safetensors") && fipsc_compressed_is_file(path))
        return fipsc_compressed_read(path, out, err);
    /* ViT/DeiT image classifiers: a config.json naming ViT or DeiT (families/vit/hf_load.c) */
    if ((S_ISDIR(st.st_mode) || ends_with(path, ".safetensors")) && fipsc_vit_path_is_vit(path))
        return fipsc_vit_load(path, out, err);
    /* the Universal Sentence Encoder Lite: a TF.js directory (or its model.json) with vocab.json,
     * or a .safetensors whose "config" metadata names it (families/use/import_tfjs.c, families/use/safetensors.c) */
    if (fipsc_use_path_is_use(path)) return fipsc_use_load(path, out, err);
    if (S_ISDIR(st.st_mode)) return fipsc_hf_load_dir(path, out, err);
    if (ends_with(path, ".safetensors")) return fipsc_hf_load_safetensors(path, out, err);
    if (ends_with(path, ".bin")) return fipsc_load_llama2c(path, out, err);
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "%s: unknown checkpoint format (expected a Hugging Face directory, a "
                      ".safetensors file or a llama2.c .bin)",
                      path);
}
