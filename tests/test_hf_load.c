/* Hugging Face Llama checkpoints: write stories260K as a directory and read it back bit for bit
 * (directory, single file, shards, F16/BF16), and every bad-input path of the loader with its
 * message. Bad checkpoints are generated here with the safetensors writer. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "families/llama/llama2c.h"
#include "families/llama/llama.h"
#include "families/llama/runtime.h"
#include "compress/calibration.h"
#include "compress/compress.h"
#include "model/compressed.h"
#include "formats/corpus.h"
#include "families/registry.h"
#include "core/file.h"
#include "families/llama/hf.h"
#include "formats/safetensors.h"
#include "testutil.h"

static fipsc_model *stories;   /* the llama2.c original */
static const char *tmp;        /* this test's scratch directory */

static const char *join(char *buf, size_t cap, const char *name)
{
    test_pathf(buf, cap, "%s/%s", tmp, name);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* config.json text of stories260K with the first `from` replaced by `to` (malloc'ed). */
static char *config_variant(const char *from, const char *to)
{
    fipsc_error err = {0};
    char *text = NULL;
    if (fipsc_hf_config_to_json(&fipsc_model_llama(stories)->cfg, &text, &err)) {
        fprintf(stderr, "config_to_json: %s\n", err.message);
        exit(2);
    }
    if (!from) return text;
    char *at = strstr(text, from);
    if (!at) {
        fprintf(stderr, "test bug: '%s' not in\n%s\n", from, text);
        exit(2);
    }
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    free(text);
    return out;
}

/* How to spoil the tensors while writing a checkpoint. */
typedef struct {
    const char *skip;         /* leave this tensor out */
    const char *transpose;    /* write this 2-D tensor with its shape reversed */
    const char *poison;       /* put +Inf at flat index 5 of this tensor */
    const char *extra;        /* add a copy of model.norm.weight under this name */
    fipsc_dtype dtype;        /* storage dtype of every tensor (F32, F16, BF16) */
} spoil;

/* Adds stories260K's tensors [first, last) to w, spoiled as asked. Poisoned copies are kept in
 * *scratch (free after writing). */
static void add_tensors(fipsc_st_writer *w, int first, int last, const spoil *sp, float **scratch)
{
    fipsc_error err = {0};
    for (int i = first; i < last; i++) {
        const fipsc_tensor *t = &stories->tensors[i];
        if (sp->skip && strcmp(t->name, sp->skip) == 0) continue;
        int64_t shape[2] = {t->shape[0], t->ndim > 1 ? t->shape[1] : 0};
        if (sp->transpose && strcmp(t->name, sp->transpose) == 0) {
            shape[0] = t->shape[1];
            shape[1] = t->shape[0];
        }
        const float *data = t->data;
        if (sp->poison && strcmp(t->name, sp->poison) == 0) {
            size_t n = (size_t)fipsc_shape_numel(t->ndim, t->shape);
            *scratch = malloc(n * sizeof(float));
            memcpy(*scratch, t->data, n * sizeof(float));
            (*scratch)[5] = INFINITY;
            data = *scratch;
        }
        CHECK_OK(fipsc_st_writer_add_f32_as(w, t->name, sp->dtype, t->ndim, shape, data, &err), &err);
    }
    if (sp->extra) {
        const fipsc_tensor *t = fipsc_model_find(stories, "model.norm.weight");
        CHECK_OK(fipsc_st_writer_add_f32_as(w, sp->extra, sp->dtype, 1, t->shape, t->data, &err), &err);
    }
}

/* Writes DIR/config.json (config_text; NULL = none) and DIR/model.safetensors spoiled as asked.
 * With meta_config, the config text also goes into __metadata__. */
static const char *write_checkpoint(const char *name, const char *config_text, bool meta_config,
                                    const spoil *sp)
{
    static char dir[4096];
    char path[4200];
    fipsc_error err = {0};
    join(dir, sizeof dir, name);
    mkdir(dir, 0777);
    if (config_text) {
        test_pathf(path, sizeof path, "%s/config.json", dir);
        write_text(path, config_text);
    }
    fipsc_st_writer *w = fipsc_st_writer_new();
    float *scratch = NULL;
    add_tensors(w, 0, stories->n_tensors, sp, &scratch);
    if (meta_config) CHECK_OK(fipsc_st_writer_set_meta(w, FIPSC_HF_METADATA_CONFIG_KEY, config_text, &err), &err);
    test_pathf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
    fipsc_st_writer_free(w);
    free(scratch);
    return dir;
}

/* Same names, order, shapes and bytes. */
static void check_identical(const fipsc_model *a, const fipsc_model *b, const char *what)
{
    CHECK_MSG(a->n_tensors == b->n_tensors, "%s: %d vs %d tensors", what, a->n_tensors, b->n_tensors);
    for (int i = 0; i < a->n_tensors && i < b->n_tensors; i++) {
        const fipsc_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        int64_t n = fipsc_shape_numel(x->ndim, x->shape);
        bool same = strcmp(x->name, y->name) == 0 && x->ndim == y->ndim &&
                    n == fipsc_shape_numel(y->ndim, y->shape) &&
                    memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof x->shape[0]) == 0 &&
                    memcmp(x->data, y->data, (size_t)n * sizeof(float)) == 0;
        CHECK_MSG(same, "%s: tensor %d ('%s' vs '%s') differs", what, i, x->name, y->name);
    }
}

static void check_config(const fipsc_config *c, const char *arch_name)
{
    CHECK(strcmp(c->arch_name, arch_name) == 0);
    CHECK(c->dim == 64 && c->hidden_dim == 172 && c->n_layers == 5);
    CHECK(c->n_heads == 8 && c->n_kv_heads == 4 && c->head_dim == 8);
    CHECK(c->vocab_size == 512 && c->max_seq_len == 512);
    CHECK(c->norm_eps == 1e-5f && c->rope_theta == 10000.0f);
    CHECK(c->tie_embeddings && !c->qkv_bias);
    CHECK(c->bos_token == 1 && c->eos_token == 2);
}

static void test_round_trip(void)
{
    char dir[4096], path[4200];
    fipsc_error err = {0};
    join(dir, sizeof dir, "stories260K-hf");
    CHECK_OK(fipsc_hf_write_llama_dir(stories, dir, false, &err), &err);

    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(dir, &m, &err), &err);
    if (m) {
        check_config(&fipsc_model_llama(m)->cfg, "LlamaForCausalLM");
        check_identical(stories, m, "directory");
        CHECK(fipsc_model_count_params(m).mlp == 165120);
        CHECK(fipsc_model_llama(m)->lm_head.w == fipsc_model_llama(m)->tok_embeddings.w && fipsc_model_llama(m)->lm_head.w16 == fipsc_model_llama(m)->tok_embeddings.w16);
        /* F32 weights come straight from the map, without a copy */
        CHECK(!m->tensors[0].owned && m->tensors[0].source_dtype == FIPSC_F32);
        CHECK(m->n_mlps == 5 && m->mlps[4]->f == 172);
        fipsc_model_free(m);
    }

    /* the model.safetensors alone: configuration from __metadata__ */
    char copy[4096];
    join(copy, sizeof copy, "alone.safetensors");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s'", dir, copy);
    CHECK(system(cmd) == 0);
    m = NULL;
    CHECK_OK(fipsc_model_load(copy, &m, &err), &err);
    if (m) {
        check_config(&fipsc_model_llama(m)->cfg, "LlamaForCausalLM");
        check_identical(stories, m, "single file");
        fipsc_model_free(m);
    }

    /* writing onto a non-empty directory needs overwrite; the result loads the same */
    CHECK_FAILS(fipsc_hf_write_llama_dir(stories, dir, false, &err), FIPSC_ERR_IO, "not empty", &err);
    CHECK_OK(fipsc_hf_write_llama_dir(stories, dir, true, &err), &err);
    m = NULL;
    CHECK_OK(fipsc_model_load(dir, &m, &err), &err);
    if (m) check_identical(stories, m, "overwritten directory");
    fipsc_model_free(m);

    /* an existing empty directory is replaced whole; trailing slash accepted */
    join(dir, sizeof dir, "empty-target/");
    mkdir(dir, 0777);
    CHECK_OK(fipsc_hf_write_llama_dir(stories, dir, false, &err), &err);
    test_pathf(path, sizeof path, "%s/config.json", dir);
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    /* no temporary directory left behind */
    snprintf(path, sizeof path, "ls -d '%s'/*.tmp-* 2>/dev/null | grep -q .", tmp);
    CHECK(system(path) != 0);

    /* a regular file in the way */
    join(path, sizeof path, "alone.safetensors");
    CHECK_FAILS(fipsc_hf_write_llama_dir(stories, path, true, &err), FIPSC_ERR_IO, "not a directory", &err);
}

/* The logits of m over a fixed token sequence (malloc'ed, len × vocab). */
static float *logits_of(const fipsc_model *m, int len)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    int32_t tokens[16];
    for (int i = 0; i < len; i++) tokens[i] = (int32_t)((i * 37 + 11) % c->vocab_size);
    float *logits = malloc((size_t)len * c->vocab_size * sizeof *logits);
    fipsc_error err = {0};
    CHECK_OK(fipsc_llama_forward(m, tokens, 1, len, logits, NULL, &err), &err);
    return logits;
}

/* Compresses blocks 0-1 of m (fips, 10 steps, default options otherwise) on a fixed corpus, the
 * matrices replaced by their dense reconstruction or attached compressed. */
static fipsc_status compress_blocks01(fipsc_model *m, bool dense_reconstruction)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    enum { SEQS = 4, LEN = 32 };
    int32_t ids[SEQS * LEN];
    for (int i = 0; i < SEQS * LEN; i++) ids[i] = (int32_t)((i * 53 + 7) % c->vocab_size);
    fipsc_error err = {0};
    fipsc_corpus *corpus = NULL;
    fipsc_calibration cal = {0};
    CHECK_OK(fipsc_corpus_from_ids(ids, SEQS, LEN, c->vocab_size, &corpus, &err), &err);
    if (!corpus) return FIPSC_ERR_INTERNAL;
    int blocks[2] = {0, 1};
    CHECK_OK(fipsc_calibration_capture_tokens(m, corpus, "ids", blocks, 2, &cal, &err), &err);
    fipsc_corpus_free(corpus);
    fipsc_compress_options o;
    fipsc_compress_defaults(&o);
    o.groups = "0-1";
    o.steps = 10;
    o.dense_reconstruction = dense_reconstruction;
    fipsc_compress_report *rep = NULL;
    fipsc_status st = fipsc_compress_run(m, &cal, &o, NULL, NULL, &rep, &err);
    CHECK_OK(st, &err);
    fipsc_calibration_free(&cal);
    fipsc_compress_report_free(rep);
    return st;
}

/* The reconstructed up weights of blocks 0 and 1 after compress_blocks01 (malloc'ed, 2 × f × d
 * floats), or NULL. */
static float *compressed_up_weights(fipsc_model *m)
{
    const fipsc_config *c = &fipsc_model_llama(m)->cfg;
    if (compress_blocks01(m, true)) return NULL;
    const size_t each = (size_t)c->hidden_dim * c->dim;
    float *w = malloc(2 * each * sizeof *w);
    for (int l = 0; l < 2; l++) memcpy(w + l * each, m->mlps[l]->up.w, each * sizeof *w);
    return w;
}

/* A 16-bit checkpoint compressed (blocks 0-1, attached) and written: the group stores U and V
 * in the checkpoint's dtype (the auto default), the file read back keeps its other matrices in
 * 16 bits and its BF16 V values as bfloat16, and computes the attached model's logits bit for bit. */
static void check_compressed_16bit(const char *dir, fipsc_dtype dt)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(dir, &m, &err), &err);
    if (!m || compress_blocks01(m, false)) {
        fipsc_model_free(m);
        return;
    }
    const fipsc_compressed_group *g = fipsc_model_group(m, 0);
    CHECK_MSG(g && g->u_dtype == dt && g->v_dtype == dt, "%s: group stored as U %s, V %s", fipsc_dtype_name(dt),
              g ? fipsc_dtype_name(g->u_dtype) : "-", g ? fipsc_dtype_name(g->v_dtype) : "-");
    char path[4300];
    test_pathf(path, sizeof path, "%s/compressed-%s.safetensors", tmp, fipsc_dtype_name(dt));
    CHECK_OK(fipsc_compressed_write(m, path, NULL, &err), &err);
    fipsc_model *r = NULL;
    CHECK_OK(fipsc_model_load(path, &r, &err), &err);
    if (r) {
        const fipsc_tensor *q = fipsc_model_find(r, "model.layers.0.self_attn.q_proj.weight");
        CHECK_MSG(q && q->half && !q->data, "%s: the read file's q_proj is held as float32", fipsc_dtype_name(dt));
        const fipsc_factored_linear *fl = fipsc_model_factored_at(r, 0);
        CHECK(fl && (dt == FIPSC_BF16) == (fl->val16 != NULL));
        for (int len = 1; len <= 16; len += 15) {
            float *a = logits_of(m, len), *b = logits_of(r, len);
            CHECK_MSG(memcmp(a, b, (size_t)len * fipsc_model_llama(m)->cfg.vocab_size * sizeof *a) == 0,
                      "%s, %d tokens: the read file's logits differ from the attached model's", fipsc_dtype_name(dt), len);
            free(a);
            free(b);
        }
        fipsc_model_free(r);
    }
    fipsc_model_free(m);
}

/* F16 and BF16 weights keep their 16 bits: linear weights (and the embeddings) borrowed from the
 * map, norms converted to float32, every value exactly as the element conversion says; the
 * model computes the same logits, bit for bit, as after converting every weight to float32
 * (decode: one row; prefill: several). */
static void test_half_precision(void)
{
    fipsc_dtype dts[2] = {FIPSC_F16, FIPSC_BF16};
    for (int k = 0; k < 2; k++) {
        char *config = config_variant(NULL, NULL);
        spoil sp = {.dtype = dts[k]};
        const char *dir = write_checkpoint(k ? "bf16" : "f16", config, false, &sp);
        free(config);
        fipsc_error err = {0};
        fipsc_model *m = NULL;
        CHECK_OK(fipsc_model_load(dir, &m, &err), &err);
        if (!m) continue;
        CHECK(m->n_tensors == stories->n_tensors);
        int mismatches = 0;
        for (int i = 0; i < m->n_tensors && i < stories->n_tensors; i++) {
            const fipsc_tensor *t = &m->tensors[i], *o = &stories->tensors[i];
            const bool norm = t->ndim == 1;
            CHECK_MSG(t->source_dtype == dts[k] && (norm ? t->data && !t->half && t->owned : t->half && !t->data && !t->owned),
                      "%s: tensor %s held as %s", fipsc_dtype_name(dts[k]), t->name, t->half ? "16-bit" : "float32");
            int64_t n = fipsc_shape_numel(o->ndim, o->shape);
            for (int64_t j = 0; j < n; j++) {
                float want = k ? fipsc_bf16_to_f32(fipsc_f32_to_bf16(o->data[j]))
                               : fipsc_f16_to_f32(fipsc_f32_to_f16(o->data[j]));
                if (fipsc_tensor_value(t, j) != want) mismatches++;
            }
        }
        CHECK_MSG(mismatches == 0, "%s: %d values differ", fipsc_dtype_name(dts[k]), mismatches);
        CHECK(fipsc_model_count_16bit(m) > 0);
        { /* compressing from the 16-bit weights gives what compressing their float32 copy gives */
            fipsc_model *f32 = NULL;
            CHECK_OK(fipsc_model_load(dir, &f32, &err), &err);
            if (f32) CHECK_OK(fipsc_model_materialise_f32(f32, &err), &err);
            fipsc_model *kept = NULL;
            CHECK_OK(fipsc_model_load(dir, &kept, &err), &err);
            float *a = kept ? compressed_up_weights(kept) : NULL, *b = f32 ? compressed_up_weights(f32) : NULL;
            const fipsc_config *c = &fipsc_model_llama(m)->cfg;
            CHECK_MSG(a && b && memcmp(a, b, 2 * (size_t)c->hidden_dim * c->dim * sizeof *a) == 0,
                      "%s: compressing the 16-bit model differs from compressing its float32 copy",
                      fipsc_dtype_name(dts[k]));
            free(a);
            free(b);
            fipsc_model_free(kept);
            fipsc_model_free(f32);
        }
        check_compressed_16bit(dir, dts[k]);
        for (int len = 1; len <= 16; len += 15) {
            float *kept = logits_of(m, len);
            fipsc_model *f32 = NULL;
            CHECK_OK(fipsc_model_load(dir, &f32, &err), &err);
            if (f32) CHECK_OK(fipsc_model_materialise_f32(f32, &err), &err);
            if (f32) CHECK(fipsc_model_count_16bit(f32) == 0 && fipsc_model_llama(f32)->layers[0].mlp.up.w);
            float *converted = f32 ? logits_of(f32, len) : NULL;
            const size_t count = (size_t)len * fipsc_model_llama(m)->cfg.vocab_size;
            CHECK_MSG(converted && memcmp(kept, converted, count * sizeof *kept) == 0,
                      "%s, %d tokens: logits differ from the float32 model's", fipsc_dtype_name(dts[k]), len);
            free(kept);
            free(converted);
            fipsc_model_free(f32);
        }
        fipsc_model_free(m);
    }
}

/* Two shards and an index. */
static void test_sharded(void)
{
    char dir[4096], path[4200];
    fipsc_error err = {0};
    join(dir, sizeof dir, "sharded");
    mkdir(dir, 0777);
    char *config = config_variant(NULL, NULL);
    test_pathf(path, sizeof path, "%s/config.json", dir);
    write_text(path, config);
    free(config);
    spoil sp = {.dtype = FIPSC_F32};
    fipsc_st_writer *w[2] = {fipsc_st_writer_new(), fipsc_st_writer_new()};
    float *scratch = NULL;
    int half = stories->n_tensors / 2;
    add_tensors(w[0], 0, half, &sp, &scratch);
    add_tensors(w[1], half, stories->n_tensors, &sp, &scratch);
    const char *files[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (int s = 0; s < 2; s++) {
        test_pathf(path, sizeof path, "%s/%s", dir, files[s]);
        CHECK_OK(fipsc_st_writer_write(w[s], path, &err), &err);
    }
    test_pathf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    CHECK_OK(fipsc_st_write_index(path, 2, (const fipsc_st_writer *const *)w, files, &err), &err);
    fipsc_st_writer_free(w[0]);
    fipsc_st_writer_free(w[1]);

    fipsc_model *m = NULL;
    CHECK_OK(fipsc_model_load(dir, &m, &err), &err);
    if (m) {
        check_config(&fipsc_model_llama(m)->cfg, "LlamaForCausalLM");
        /* shards are read in file-name order, each in header order: the original order */
        check_identical(stories, m, "sharded");
        fipsc_model_free(m);
    }
    /* a sharded directory is not overwritten */
    CHECK_FAILS(fipsc_hf_write_llama_dir(stories, dir, true, &err), FIPSC_ERR_IO, "sharded", &err);
}

static void test_bad_checkpoints(void)
{
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    spoil clean = {.dtype = FIPSC_F32};

    /* shapes inconsistent with config.json: the tensor, the weights file and config.json named */
    char *config = config_variant("\"intermediate_size\":\t172", "\"intermediate_size\":\t170");
    const char *dir = write_checkpoint("bad-shape-config", config, false, &clean);
    free(config);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_SHAPE, "'model.layers.0.mlp.gate_proj.weight' has shape [172, 64]", &err);
    CHECK(strstr(err.message, "bad-shape-config/model.safetensors") && strstr(err.message, "bad-shape-config/config.json"));

    config = config_variant(NULL, NULL);
    spoil transposed = {.dtype = FIPSC_F32, .transpose = "model.layers.3.mlp.down_proj.weight"};
    dir = write_checkpoint("bad-shape-tensor", config, false, &transposed);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_SHAPE,
                "'model.layers.3.mlp.down_proj.weight' has shape [172, 64] but the configuration implies [64, 172]", &err);

    /* missing tensor */
    spoil missing = {.dtype = FIPSC_F32, .skip = "model.layers.4.self_attn.k_proj.weight"};
    dir = write_checkpoint("missing-tensor", config, false, &missing);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_NOT_FOUND, "missing tensor 'model.layers.4.self_attn.k_proj.weight'", &err);
    CHECK(strstr(err.message, "missing-tensor/model.safetensors") != NULL);

    /* a tensor the configuration has no place for (a sixth layer; lm_head although tied) */
    spoil extra = {.dtype = FIPSC_F32, .extra = "model.layers.5.input_layernorm.weight"};
    dir = write_checkpoint("extra-layer", config, false, &extra);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_FORMAT, "unexpected tensor 'model.layers.5.input_layernorm.weight'", &err);
    CHECK(strstr(err.message, "extra-layer/model.safetensors") && strstr(err.message, "5 layers"));

    /* NaN/Inf: the tensor and the file named */
    spoil poisoned = {.dtype = FIPSC_F32, .poison = "model.layers.2.mlp.up_proj.weight"};
    dir = write_checkpoint("inf", config, false, &poisoned);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_NUMERIC, "tensor 'model.layers.2.mlp.up_proj.weight' holds a non-finite value (inf) at flat index 5", &err);
    CHECK(strstr(err.message, "inf/model.safetensors") != NULL);
    spoil poisoned16 = {.dtype = FIPSC_BF16, .poison = "model.norm.weight"};
    dir = write_checkpoint("inf-bf16", config, false, &poisoned16);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_NUMERIC, "'model.norm.weight'", &err);
    free(config);

    /* missing config keys and wrong types, named with the file */
    config = config_variant("\"num_hidden_layers\"", "\"n_layers\"");
    dir = write_checkpoint("missing-key", config, false, &clean);
    free(config);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_FORMAT, "missing-key/config.json: missing required key 'num_hidden_layers'", &err);
    config = config_variant("\"vocab_size\":\t512", "\"vocab_size\":\t\"512\"");
    dir = write_checkpoint("wrong-type", config, false, &clean);
    free(config);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_FORMAT, "wrong-type/config.json: key 'vocab_size' must be an integer", &err);
    dir = write_checkpoint("invalid-json", "{\"architectures\": [\"LlamaForCausalLM\"", false, &clean);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_FORMAT, "invalid-json/config.json: invalid JSON", &err);

    /* the configuration in __metadata__ is checked the same way */
    config = config_variant("\"hidden_size\"", "\"dim\"");
    dir = write_checkpoint("meta-missing-key", config, true, &clean);
    free(config);
    char path[4200];
    test_pathf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_FAILS(fipsc_model_load(path, &m, &err), FIPSC_ERR_FORMAT, "missing required key 'hidden_size'", &err);
    CHECK(strstr(err.message, "meta-missing-key/model.safetensors (__metadata__ \"config\")") != NULL);

    /* no configuration anywhere */
    dir = write_checkpoint("no-config", NULL, false, &clean);
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_NOT_FOUND, "no-config: no config.json", &err);
    test_pathf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_FAILS(fipsc_model_load(path, &m, &err), FIPSC_ERR_NOT_FOUND, "no model configuration", &err);

    /* integer weights */
    config = config_variant(NULL, NULL);
    dir = write_checkpoint("int-weights", config, false, &clean);
    free(config);
    {
        fipsc_st_writer *w = fipsc_st_writer_new();
        spoil sp = {.dtype = FIPSC_F32, .skip = "model.norm.weight"};
        float *scratch = NULL;
        add_tensors(w, 0, stories->n_tensors, &sp, &scratch);
        int32_t ints[64] = {0};
        int64_t shape[1] = {64};
        CHECK_OK(fipsc_st_writer_add(w, "model.norm.weight", FIPSC_I32, 1, shape, ints, &err), &err);
        test_pathf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK_OK(fipsc_st_writer_write(w, path, &err), &err);
        fipsc_st_writer_free(w);
    }
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_UNSUPPORTED, "tensor 'model.norm.weight' has dtype I32", &err);

    /* paths */
    char missing_path[4200];
    join(missing_path, sizeof missing_path, "does-not-exist.bin");
    CHECK_FAILS(fipsc_model_load(missing_path, &m, &err), FIPSC_ERR_NOT_FOUND, "does-not-exist.bin", &err);
    join(path, sizeof path, "model.gguf");
    write_text(path, "GGUF"); /* the magic alone: read as GGUF, and refused as truncated */
    CHECK_FAILS(fipsc_model_load(path, &m, &err), FIPSC_ERR_FORMAT, "truncated GGUF file", &err);
    CHECK(m == NULL);
    join(path, sizeof path, "model.onnx");
    write_text(path, "\x08\x07");
    CHECK_FAILS(fipsc_model_load(path, &m, &err), FIPSC_ERR_UNSUPPORTED, "unknown checkpoint format", &err);
    CHECK(m == NULL);
}

/* Duplicate tensor names cannot come from the writer: the header is built by hand. */
static void test_duplicate_names(void)
{
    char config_path[4200], dir[4096];
    join(dir, sizeof dir, "duplicate");
    mkdir(dir, 0777);
    char *config = config_variant(NULL, NULL);
    test_pathf(config_path, sizeof config_path, "%s/config.json", dir);
    write_text(config_path, config);
    free(config);
    const char header[] =
        "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
    size_t hlen = sizeof header - 1;
    unsigned char bytes[512] = {0};
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(bytes + 8, header, hlen);
    char path[4200];
    test_pathf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *fp = fopen(path, "wb");
    fwrite(bytes, 1, 8 + hlen + 16, fp);
    fclose(fp);
    fipsc_error err = {0};
    fipsc_model *m = NULL;
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_FORMAT, "model.norm.weight", &err);
    CHECK(strstr(err.message, "duplicate/model.safetensors") != NULL);
    CHECK(m == NULL);
}

int main(void)
{
    char path[4096];
    fipsc_error err = {0};
    tmp = test_tmpdir("test_hf_load");
    test_path(path, sizeof path, "FIPSC_SOURCE_DIR", "models/stories260K.bin");
    if (fipsc_load_llama2c(path, &stories, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    test_round_trip();
    test_half_precision();
    test_sharded();
    test_bad_checkpoints();
    test_duplicate_names();
    fipsc_model_free(stories);
    return test_summary("test_hf_load");
}
