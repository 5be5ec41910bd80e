/* The family registry and fipsc_model_load (see src/families/registry.h).
 *
 * Loading: a fipsc compressed .safetensors file first (its __metadata__ says so and names the
 * family; it carries a configuration too but is no plain checkpoint), then the families in the
 * order below, each asked whether the path is one of its checkpoints. */
#include "families/registry.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "families/gpt2/gpt2.h"
#include "families/llama/llama.h"
#include "families/use/use.h"
#include "families/vit/vit.h"
#include "model/compressed.h"

/* One line per family, in probing order: the most specific first, the Llama family last (it
 * takes any .bin and words the errors for Hugging Face checkpoints nobody claims). */
static const fipsc_family *const families[] = {
    &fipsc_family_vit,
    &fipsc_family_use,
    &fipsc_family_gpt2,
    &fipsc_family_llama,
};
enum { N_FAMILIES = sizeof families / sizeof families[0] };

int fipsc_family_count(void) { return N_FAMILIES; }

const fipsc_family *fipsc_family_at(int i) { return i >= 0 && i < N_FAMILIES ? families[i] : NULL; }

const fipsc_family *fipsc_family_named(const char *name)
{
    for (int i = 0; name && i < N_FAMILIES; i++)
        if (strcmp(families[i]->name, name) == 0) return families[i];
    return NULL;
}

const fipsc_family *fipsc_family_probe(const char *path, fipsc_probe *probe, fipsc_error *why)
{
    const fipsc_family *maybe = NULL;
    fipsc_error first_why = {0};
    for (int i = 0; i < N_FAMILIES; i++) {
        fipsc_error e = {0};
        fipsc_probe p = families[i]->probe(path, &e);
        if (p == FIPSC_PROBE_YES) {
            *probe = FIPSC_PROBE_YES;
            return families[i];
        }
        if (p == FIPSC_PROBE_MAYBE && !maybe) {
            maybe = families[i];
            first_why = e;
        }
    }
    *probe = maybe ? FIPSC_PROBE_MAYBE : FIPSC_PROBE_NO;
    if (why) *why = first_why;
    return maybe;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

fipsc_status fipsc_model_load_shapes(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    struct stat st;
    fipsc_probe probe;
    const fipsc_family *f = stat(path, &st) == 0 && !(!S_ISDIR(st.st_mode) && ends_with(path, ".safetensors") &&
                                                     fipsc_compressed_is_file(path))
                                ? fipsc_family_probe(path, &probe, NULL)
                                : NULL;
    if (f && probe == FIPSC_PROBE_YES && f->load_shapes) return f->load_shapes(path, out, err);
    return fipsc_model_load(path, out, err);
}

fipsc_status fipsc_model_load(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return fipsc_fail(err, errno == ENOENT ? FIPSC_ERR_NOT_FOUND : FIPSC_ERR_IO, "%s: %s", path,
                          strerror(errno));
    if (!S_ISDIR(st.st_mode) && ends_with(path, ".safetensors") && fipsc_compressed_is_file(path))
        return fipsc_compressed_read(path, fipsc_family_named, out, err);
    fipsc_probe probe;
    const fipsc_family *f = fipsc_family_probe(path, &probe, NULL);
    if (f) return f->load(path, out, err); /* a "maybe" family's loader says what is wrong */
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "%s: unknown checkpoint format (expected a Hugging Face directory, a GGUF file, a "
                      ".safetensors file or a llama2.c .bin)",
                      path);
}
