/* Checks that fipsc's GGUF tensor bytes are the bytes llama.cpp's own converters produce: the
 * reference quantizers quantize_row_q8_0_ref / quantize_row_q4_0_ref and the row converters
 * ggml_fp32_to_fp16_row / ggml_fp32_to_bf16_row, called from llama.cpp's libggml-base.so (the
 * prebuilt library node-llama-cpp ships), loaded with dlopen.
 *
 *   quant_agree LIBGGML_BASE.so [F32.gguf TYPED.gguf ...]
 *
 * First every type on rows of edge cases (zeros, a lone extreme, ties of |max|, halves at the
 * rounding boundaries, subnormals, values past the half range) and random rows; then, for each
 * TYPED.gguf, every tensor whose type is not F32 is compared with llama.cpp's conversion of the
 * same-named F32 tensor of F32.gguf (written by fipsc from the same model). Exit 0 when every
 * byte agrees. */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "formats/gguf.h"

typedef void (*row_fn)(const float *x, void *y, int64_t k);

static row_fn ref_for(void *lib, fipsc_ggml_type t)
{
    const char *name = t == FIPSC_GGML_Q8_0   ? "quantize_row_q8_0_ref"
                       : t == FIPSC_GGML_Q4_0 ? "quantize_row_q4_0_ref"
                       : t == FIPSC_GGML_F16  ? "ggml_fp32_to_fp16_row"
                       : t == FIPSC_GGML_BF16 ? "ggml_fp32_to_bf16_row_ref"
                                              : NULL;
    row_fn f = name ? (row_fn)dlsym(lib, name) : NULL;
    if (name && !f) fprintf(stderr, "quant_agree: %s not found: %s\n", name, dlerror());
    return f;
}

/* Compares one row; prints the first difference. */
static int compare_row(void *lib, fipsc_ggml_type t, const float *x, int64_t n, const char *what)
{
    row_fn ref = ref_for(lib, t);
    if (!ref) return 1;
    size_t bytes = (size_t)(n / fipsc_ggml_block_values(t)) * fipsc_ggml_block_bytes(t);
    unsigned char *a = calloc(bytes + 1, 1), *b = calloc(bytes + 1, 1);
    fipsc_ggml_quantize_row(t, x, n, a);
    ref(x, b, n);
    int bad = memcmp(a, b, bytes) != 0;
    if (bad) {
        size_t i = 0;
        while (a[i] == b[i]) i++;
        fprintf(stderr, "quant_agree: %s as %s: byte %zu is %u in fipsc's, %u in llama.cpp's\n", what,
                fipsc_ggml_type_name(t), i, a[i], b[i]);
    }
    free(a);
    free(b);
    return bad;
}

static int edge_cases(void *lib)
{
    enum { N = 32 * 16 };
    static float x[N];
    fipsc_rng rng;
    fipsc_rng_seed(&rng, 42);
    for (int i = 0; i < N; i++) x[i] = (float)((fipsc_rng_uniform(&rng) - 0.5) * 4.0);
    /* block 0 zeros; 1 a lone extreme; 2 a tie of |max| with opposite signs (Q4_0 keeps the first);
     * 3 values whose x/d lands on .5; 4 subnormals; 5 values beyond the half range; 6 all equal;
     * 7 tiny scale (d underflows in half) */
    for (int j = 0; j < 32; j++) x[j] = 0.0f;
    x[32 + 5] = 1000.0f;
    x[64 + 3] = -2.5f, x[64 + 9] = 2.5f;
    for (int j = 0; j < 32; j++) x[96 + j] = (float)(j - 16) * 0.5f / 127.0f * 3.0f;
    for (int j = 0; j < 32; j++) x[128 + j] = (float)(j + 1) * 1e-41f;
    for (int j = 0; j < 32; j++) x[160 + j] = (j % 2 ? -1.0f : 1.0f) * 1e6f * (float)(j + 1);
    for (int j = 0; j < 32; j++) x[192 + j] = 0.7f;
    for (int j = 0; j < 32; j++) x[224 + j] = (float)(j - 7) * 1e-9f;
    static const fipsc_ggml_type types[] = {FIPSC_GGML_Q8_0, FIPSC_GGML_Q4_0, FIPSC_GGML_F16, FIPSC_GGML_BF16};
    int bad = 0;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) bad += compare_row(lib, types[t], x, N, "edge-case rows");
    return bad;
}

static int compare_files(void *lib, const char *f32_path, const char *typed_path)
{
    fipsc_error err = {0};
    fipsc_gguf *src, *typed;
    if (fipsc_gguf_open(f32_path, &src, &err) || fipsc_gguf_open(typed_path, &typed, &err)) {
        fprintf(stderr, "quant_agree: %s\n", err.message);
        return 1;
    }
    int bad = 0, compared = 0;
    for (int64_t i = 0; i < typed->n_tensors; i++) {
        const fipsc_gguf_tensor *t = &typed->tensors[i];
        if (t->type == FIPSC_GGML_F32) continue;
        const fipsc_gguf_tensor *s = fipsc_gguf_find_tensor(src, t->name);
        if (!s || s->type != FIPSC_GGML_F32 || memcmp(s->ne, t->ne, sizeof s->ne) != 0) {
            fprintf(stderr, "quant_agree: %s has no F32 twin of '%s' in %s\n", typed_path, t->name, f32_path);
            bad++;
            continue;
        }
        row_fn ref = ref_for(lib, t->type);
        if (!ref) return 1;
        const int64_t row = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
        const size_t row_bytes = (size_t)(row / fipsc_ggml_block_values(t->type)) * fipsc_ggml_block_bytes(t->type);
        unsigned char *b = malloc(row_bytes ? row_bytes : 1);
        for (int64_t r = 0; r < rows; r++) {
            ref((const float *)s->data + r * row, b, row);
            if (memcmp(b, t->data + r * row_bytes, row_bytes) != 0) {
                fprintf(stderr, "quant_agree: %s: tensor '%s' (%s) row %lld differs from llama.cpp's\n", typed_path,
                        t->name, fipsc_ggml_type_name(t->type), (long long)r);
                bad++;
                break;
            }
        }
        free(b);
        compared++;
    }
    printf("%s: %d tensors compared with llama.cpp's conversion of %s, %d differ\n", typed_path, compared, f32_path, bad);
    fipsc_gguf_close(src);
    fipsc_gguf_close(typed);
    return bad || compared == 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc % 2 != 0) {
        fprintf(stderr, "usage: quant_agree LIBGGML_BASE.so [F32.gguf TYPED.gguf ...]\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "quant_agree: %s\n", dlerror());
        return 2;
    }
    int bad = edge_cases(lib);
    printf("edge-case and random rows: %s\n", bad ? "DIFFER" : "identical for Q8_0, Q4_0, F16 and BF16");
    for (int i = 2; i + 1 < argc; i += 2) bad += compare_files(lib, argv[i], argv[i + 1]);
    dlclose(lib);
    return bad ? 1 : 0;
}
