/* libFuzzer target: config.json of ViT/DeiT models (fipsc_vit_parse_config and
 * fipsc_vit_config_is_vit).
 *
 * The input is the config.json text. A parsed configuration must be self-consistent: the head
 * size divides the width, the patch grid fits the image and the token count follows from it,
 * every label (when id2label is given) is set, and layer_norm_eps is a positive finite float.
 * Failures must free everything (LeakSanitizer). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "families/vit/vit.h"
#include "fuzzutil.h"

#define REQUIRE(cond) \
    do {              \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    (void)fipsc_vit_config_is_vit(text);
    fipsc_vit vc;
    fipsc_error err;
    if (fipsc_vit_parse_config(text, "fuzz/config.json", &vc, &err) == FIPSC_OK) {
        fuzz_note(NULL);
        REQUIRE(vc.dim > 0 && vc.n_heads > 0 && vc.head_dim * vc.n_heads == vc.dim);
        REQUIRE(vc.n_layers > 0 && vc.hidden > 0 && (vc.channels == 1 || vc.channels == 3));
        REQUIRE(vc.patch_h > 0 && vc.patch_w > 0 && vc.grid_h > 0 && vc.grid_w > 0);
        REQUIRE(vc.grid_h * vc.patch_h <= vc.image_h && vc.grid_w * vc.patch_w <= vc.image_w);
        REQUIRE(vc.n_patches == vc.grid_h * vc.grid_w && vc.n_tokens == vc.n_prefix + vc.n_patches);
        REQUIRE(vc.n_labels >= 0 && vc.ln_eps > 0 && isfinite(vc.ln_eps));
        for (int i = 0; vc.labels && i < vc.n_labels; i++) REQUIRE(vc.labels[i]);
        fipsc_vit_config_free(&vc);
    } else {
        fuzz_note(&err);
        REQUIRE(vc.labels == NULL && err.code != FIPSC_OK && err.message[0]);
    }
    free(text);
    return 0;
}
