/* llama2.c loader: configuration, tensor names and shapes, the RoPE row permutation, and errors
 * for truncated or corrupt files. */
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama2c.h"
#include "families/llama/llama.h"
#include "core/file.h"
#include "model/model.h"
#include "testutil.h"

static void test_stories260k(void)
{
    char path[4096];
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_load_llama2c(path, &m, &err), &err);
    if (!m) return;
    CHECK(fipsc_model_llama(m)->cfg.dim == 64);
    CHECK(fipsc_model_llama(m)->cfg.hidden_dim == 172);
    CHECK(fipsc_model_llama(m)->cfg.n_layers == 5);
    CHECK(fipsc_model_llama(m)->cfg.n_heads == 8);
    CHECK(fipsc_model_llama(m)->cfg.n_kv_heads == 4);
    CHECK(fipsc_model_llama(m)->cfg.vocab_size == 512);
    CHECK(fipsc_model_llama(m)->cfg.max_seq_len == 512);
    CHECK(fipsc_model_llama(m)->cfg.tie_embeddings);
    fipsc_param_counts pc = fipsc_model_count_params(m);
    CHECK_MSG(pc.mlp == 165120, "mlp params %lld", pc.mlp);
    CHECK(fipsc_model_llama(m)->lm_head.w == fipsc_model_llama(m)->tok_embeddings.w && fipsc_model_llama(m)->lm_head.w16 == fipsc_model_llama(m)->tok_embeddings.w16);

    /* Row permutation: HF q row (h*hs + j) is llama2.c row (h*hs + 2j); read the raw file. */
    fipsc_mapped_file *mf;
    CHECK_OK(fipsc_map_file(path, &mf, &err), &err);
    const float *raw = (const float *)(mf->data + 28);
    size_t off = 512 * 64 + 5 * 64; /* token embeddings, rms_att */
    const float *wq0 = raw + off;
    const float *q = fipsc_model_llama(m)->layers[0].q.w;
    int hs = 8;
    for (int h = 0; h < 8; h++)
        for (int j = 0; j < hs / 2; j++) {
            CHECK(memcmp(q + (h * hs + j) * 64, wq0 + (h * hs + 2 * j) * 64, 64 * sizeof(float)) == 0);
            CHECK(memcmp(q + (h * hs + hs / 2 + j) * 64, wq0 + (h * hs + 2 * j + 1) * 64, 64 * sizeof(float)) == 0);
        }
    fipsc_unmap_file(mf);
    fipsc_model_free(m);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    fwrite(data, 1, n, fp);
    fclose(fp);
}

static void test_bad_files(void)
{
    char path[4096], src[4096];
    const char *dir = test_tmpdir("test_llama2c");
    test_path(src, sizeof src, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    fipsc_error err = {0};
    fipsc_mapped_file *mf;
    CHECK_OK(fipsc_map_file(src, &mf, &err), &err);
    fipsc_model *m = NULL;

    test_pathf(path, sizeof path, "%s/short-header.bin", dir);
    write_bytes(path, mf->data, 20);
    CHECK_FAILS(fipsc_load_llama2c(path, &m, &err), FIPSC_ERR_FORMAT, "header", &err);

    test_pathf(path, sizeof path, "%s/truncated.bin", dir);
    write_bytes(path, mf->data, mf->size - 100);
    CHECK_FAILS(fipsc_load_llama2c(path, &m, &err), FIPSC_ERR_FORMAT, "truncated", &err);

    test_pathf(path, sizeof path, "%s/trailing.bin", dir);
    unsigned char *buf = malloc(mf->size + 8);
    memcpy(buf, mf->data, mf->size);
    memset(buf + mf->size, 0, 8);
    write_bytes(path, buf, mf->size + 8);
    CHECK_FAILS(fipsc_load_llama2c(path, &m, &err), FIPSC_ERR_FORMAT, "trailing", &err);

    test_pathf(path, sizeof path, "%s/bad-header.bin", dir);
    memcpy(buf, mf->data, mf->size);
    int32_t heads = 7; /* 64 is not divisible by 7 */
    memcpy(buf + 12, &heads, 4);
    write_bytes(path, buf, mf->size);
    CHECK_FAILS(fipsc_load_llama2c(path, &m, &err), FIPSC_ERR_FORMAT, "not a valid llama2.c header", &err);

    test_pathf(path, sizeof path, "%s/nan.bin", dir);
    memcpy(buf, mf->data, mf->size);
    float nan = NAN;
    /* first element of layer 2's up_proj (w3) */
    size_t off = 28 + sizeof(float) * (512 * 64 + 5 * 64 + 5 * 64 * 64 * 2 + 5 * 32 * 64 * 2 + 5 * 64 +
                                       5 * 172 * 64 * 2 + 2 * 172 * 64);
    memcpy(buf + off, &nan, 4);
    write_bytes(path, buf, mf->size);
    CHECK_FAILS(fipsc_load_llama2c(path, &m, &err), FIPSC_ERR_NUMERIC, "model.layers.2.mlp.up_proj.weight", &err);

    test_pathf(path, sizeof path, "%s/missing.bin", dir);
    CHECK_FAILS(fipsc_load_llama2c(path, &m, &err), FIPSC_ERR_IO, "missing.bin", &err);
    CHECK(m == NULL);
    free(buf);
    fipsc_unmap_file(mf);
}

int main(void)
{
    test_stories260k();
    test_bad_files();
    return test_summary("test_llama2c");
}
