/* The sentence-encoder view of a model: configuration JSON, binding the view to the tensors under
 * fipsc's names with every shape checked, and routing a path to the right loader (see
 * src/families/use/use.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/safetensors.h"
#include "families/use/use.h"
#include "core/path.h"

/* ------------------------------------------------------------------ configuration */

fipsc_status fipsc_use_config_to_json(const fipsc_use *u, char **out, fipsc_error *err)
{
    /* Floats with 9 significant digits: parsing them back gives the same float. */
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "{\"architectures\": [\"" FIPSC_USE_ARCH_NAME "\"], \"model_type\": \"use-lite\", "
                     "\"vocab_size\": %d, \"embedding_size\": %d, \"hidden_size\": %d, "
                     "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
                     "\"hidden_act\": \"relu\", \"layer_norm_eps\": %.9g, \"l2_normalize_eps\": %.9g, "
                     "\"max_position_embeddings\": %d, \"tokenizer_reserved_symbols\": %d}",
                     u->vocab_size, u->embed_dim, u->dim, u->hidden, u->n_layers, u->n_heads,
                     (double)u->ln_eps, (double)u->l2_eps, u->max_tokens, u->tokenizer_reserved);
    if (n < 0 || (size_t)n >= sizeof buf)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "sentence-encoder configuration does not fit");
    if (!(*out = strdup(buf))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    return FIPSC_OK;
}

static fipsc_status get_int(const cJSON *root, const char *origin, const char *key, int lo, int *out,
                            fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: missing \"%s\"", origin, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > 1e8 ||
        v->valuedouble != (double)(int)v->valuedouble) /* range before the cast */
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: \"%s\" must be an integer >= %d", origin, key, lo);
    *out = (int)v->valuedouble;
    return FIPSC_OK;
}

static fipsc_status get_eps(const cJSON *root, const char *origin, const char *key, float *out,
                            fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: missing \"%s\"", origin, key);
    /* tested as a float: a tiny positive double such as 1e-50 rounds to 0 */
    if (!cJSON_IsNumber(v) || !((float)v->valuedouble > 0) || v->valuedouble > 1)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: \"%s\" must be a number in (0, 1]", origin, key);
    *out = (float)v->valuedouble;
    return FIPSC_OK;
}

/* Whether a parsed config names the architecture. */
static bool config_names_use(const cJSON *root)
{
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures"), *a;
    cJSON_ArrayForEach(a, archs) {
        const char *s = cJSON_GetStringValue(a);
        if (s && strcmp(s, FIPSC_USE_ARCH_NAME) == 0) return true;
    }
    return false;
}

fipsc_status fipsc_use_parse_config(const char *json_text, const char *origin, fipsc_use *u,
                                    fipsc_error *err)
{
    cJSON *root = cJSON_Parse(json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: the configuration is not a JSON object", origin);
    }
    fipsc_status st = FIPSC_OK;
    const char *act = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "hidden_act"));
    if (!config_names_use(root))
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: \"architectures\" does not name %s", origin,
                        FIPSC_USE_ARCH_NAME);
    else if (!act || strcmp(act, "relu") != 0)
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: hidden_act must be \"relu\"", origin);
    else if ((st = get_int(root, origin, "vocab_size", 1, &u->vocab_size, err)) ||
             (st = get_int(root, origin, "embedding_size", 2, &u->embed_dim, err)) ||
             (st = get_int(root, origin, "hidden_size", 1, &u->dim, err)) ||
             (st = get_int(root, origin, "intermediate_size", 1, &u->hidden, err)) ||
             (st = get_int(root, origin, "num_hidden_layers", 1, &u->n_layers, err)) ||
             (st = get_int(root, origin, "num_attention_heads", 1, &u->n_heads, err)) ||
             (st = get_int(root, origin, "max_position_embeddings", 1, &u->max_tokens, err)) ||
             (st = get_int(root, origin, "tokenizer_reserved_symbols", 0, &u->tokenizer_reserved, err)) ||
             (st = get_eps(root, origin, "layer_norm_eps", &u->ln_eps, err)) ||
             (st = get_eps(root, origin, "l2_normalize_eps", &u->l2_eps, err)))
        ;
    else if (u->embed_dim % 2 || u->embed_dim % u->n_heads || u->dim % u->n_heads)
        st = fipsc_fail(err, FIPSC_ERR_FORMAT,
                        "%s: embedding_size %d must be even and, like hidden_size %d, a multiple of "
                        "num_attention_heads %d",
                        origin, u->embed_dim, u->dim, u->n_heads);
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------------ the view */

static void release_view(void *p)
{
    fipsc_use *u = p;
    fipsc_sp_free(u->tokenizer);
    free(u->vocab_json);
    free(u->layers);
    free(u);
}

const fipsc_use *fipsc_model_use(const fipsc_model *m)
{
    return m && m->family == &fipsc_family_use ? m->view : NULL;
}

fipsc_status fipsc_use_set_view(fipsc_model *m, fipsc_use *u, fipsc_error *err)
{
    if (m->view) {
        release_view(u);
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "the model has a view already");
    }
    fipsc_model_set_view(m, &fipsc_family_use, u, release_view);
    return fipsc_path_format(m->arch_name, sizeof m->arch_name, err, "%s", FIPSC_USE_ARCH_NAME);
}

static fipsc_status need_vector(const fipsc_model *m, const char *name, int64_t n, const float **data,
                                fipsc_error *err)
{
    return fipsc_model_require(m, name, 1, &n, data, err);
}

/* "<name>.weight" [out, in] (dense or factored) and "<name>.bias" [out]. */
static fipsc_status need_linear(const fipsc_model *m, const char *name, int out, int in,
                                fipsc_linear *lin, fipsc_error *err)
{
    char full[256];
    memset(lin, 0, sizeof *lin);
    lin->out = out;
    lin->in = in;
    snprintf(full, sizeof full, "%s.weight", name);
    /* the dense tensor, or the factored form of a compressed MLP weight */
    fipsc_status st = fipsc_model_bind_weight(m, full, out, in, lin, err);
    if (st) return st;
    snprintf(full, sizeof full, "%s.bias", name);
    return need_vector(m, full, out, &lin->bias, err);
}

static fipsc_status bind_layer(const fipsc_model *m, const fipsc_use *u, int l, fipsc_use_layer *L,
                               fipsc_error *err)
{
    char p[64], name[128];
    snprintf(p, sizeof p, "encoder.layer.%d.", l);
    const int din = l == 0 ? u->embed_dim : u->dim, d = u->dim, f = u->hidden;
    L->d_in = din;
    L->n_heads = u->n_heads;
    L->head_dim = din / u->n_heads;
    L->has_residual_projection = din != d;
    fipsc_status st;
#define NAME(suffix) (snprintf(name, sizeof name, "%s%s", p, suffix), name)
    if ((st = need_vector(m, NAME("attention_norm.weight"), din, &L->attn_norm_w, err)) ||
        (st = need_vector(m, NAME("attention_norm.bias"), din, &L->attn_norm_b, err)) ||
        (st = need_linear(m, NAME("attention.query"), din, din, &L->q, err)) ||
        (st = need_linear(m, NAME("attention.key"), din, din, &L->k, err)) ||
        (st = need_linear(m, NAME("attention.value"), din, din, &L->v, err)) ||
        (st = need_linear(m, NAME("attention.output"), d, din, &L->o, err)) ||
        (st = need_vector(m, NAME("mlp_norm.weight"), d, &L->mlp_norm_w, err)) ||
        (st = need_vector(m, NAME("mlp_norm.bias"), d, &L->mlp_norm_b, err)))
        return st;
    memset(&L->residual, 0, sizeof L->residual);
    if (L->has_residual_projection &&
        (st = need_linear(m, NAME("residual_projection"), d, din, &L->residual, err)))
        return st;
    fipsc_mlp *mlp = &L->mlp;
    memset(mlp, 0, sizeof *mlp);
    mlp->kind = FIPSC_MLP_PLAIN;
    mlp->act = FIPSC_ACT_RELU;
    mlp->d = d;
    mlp->f = f;
    if ((st = need_linear(m, NAME("mlp.fc1"), f, d, &mlp->up, err)) ||
        (st = need_linear(m, NAME("mlp.fc2"), d, f, &mlp->down, err)))
        return st;
#undef NAME
    return FIPSC_OK;
}

static fipsc_status bind_weights(const fipsc_model *m, fipsc_use *u, fipsc_error *err)
{
    int64_t emb_shape[2] = {u->vocab_size, u->embed_dim};
    fipsc_status st;
    if ((st = fipsc_model_require(m, "embeddings.word_embeddings.weight", 2, emb_shape,
                                  &u->word_embeddings, err)) ||
        (st = need_vector(m, "embeddings.timing_inv_timescales", u->embed_dim / 2, &u->inv_timescales, err)))
        return st;
    for (int l = 0; l < u->n_layers; l++)
        if ((st = bind_layer(m, u, l, &u->layers[l], err))) return st;
    return need_linear(m, "pooler.dense", u->dim, u->dim, &u->pooler, err);
}

fipsc_status fipsc_model_bind_use(fipsc_model *m, fipsc_use *uc, fipsc_error *err)
{
    fipsc_use u = *uc; /* the configuration; the vocabulary and tokenizer move into the view */
    uc->vocab_json = NULL;
    uc->tokenizer = NULL;
    u.layers = NULL;
    fipsc_status st = FIPSC_OK;
    fipsc_mlp **mlps = NULL;
    if (u.n_layers <= 0 || u.n_heads <= 0 || u.embed_dim % u.n_heads || u.dim % u.n_heads ||
        u.embed_dim % 2 || !u.tokenizer || u.max_tokens <= 0) {
        st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "fipsc_model_bind_use: inconsistent configuration");
        goto fail;
    }
    if (fipsc_sp_vocab_size(u.tokenizer) > u.vocab_size) {
        st = fipsc_fail(err, FIPSC_ERR_SHAPE,
                        "the vocabulary has %d pieces but the embedding table only %d rows",
                        fipsc_sp_vocab_size(u.tokenizer), u.vocab_size);
        goto fail;
    }
    u.layers = calloc((size_t)u.n_layers, sizeof *u.layers);
    mlps = calloc((size_t)u.n_layers, sizeof *mlps);
    if (!u.layers || !mlps) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory binding %d layers", u.n_layers);
        goto fail;
    }
    if ((st = bind_weights(m, &u, err))) goto fail;

    /* Install: reuse the view allocation a previous bind registered with the model. */
    fipsc_use *view = m->family == &fipsc_family_use ? m->view : NULL;
    if (!view) {
        view = calloc(1, sizeof *view);
        if (!view) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the sentence-encoder view");
            goto fail;
        }
        if ((st = fipsc_use_set_view(m, view, err))) goto fail; /* view released */
    } else {
        fipsc_sp_free(view->tokenizer);
        free(view->vocab_json);
        free(view->layers);
    }
    *view = u;
    for (int l = 0; l < u.n_layers; l++) mlps[l] = &view->layers[l].mlp;
    fipsc_model_set_mlps(m, mlps, u.n_layers);
    return FIPSC_OK;
fail:
    free(mlps);
    free(u.layers);
    fipsc_sp_free(u.tokenizer);
    free(u.vocab_json);
    return st;
}

/* ------------------------------------------------------------------ routing */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The TF.js directory of path (a directory, or a model.json inside one), or false. */
static bool tfjs_dir_of(const char *path, char *dir, size_t cap)
{
    struct stat st;
    if (stat(path, &st) != 0) return false;
    fipsc_status fits;
    if (S_ISDIR(st.st_mode)) fits = fipsc_path_format(dir, cap, NULL, "%s", path);
    else if (ends_with(path, "/model.json"))
        fits = fipsc_path_format(dir, cap, NULL, "%.*s", (int)(strlen(path) - 11), path);
    else if (strcmp(path, "model.json") == 0) fits = fipsc_path_format(dir, cap, NULL, ".");
    else return false;
    char probe[4200];
    return !fits && !fipsc_path_join(probe, sizeof probe, dir, "model.json", NULL) && is_file(probe) &&
           !fipsc_path_join(probe, sizeof probe, dir, "vocab.json", NULL) && is_file(probe);
}

bool fipsc_use_path_is_use(const char *path)
{
    char dir[4096];
    if (tfjs_dir_of(path, dir, sizeof dir)) return true;
    if (!ends_with(path, ".safetensors") || !is_file(path)) return false;
    fipsc_st_file *f = NULL;
    fipsc_error err = {0};
    if (fipsc_st_open(path, &f, &err)) return false;
    const char *config = fipsc_st_meta(f, FIPSC_USE_METADATA_CONFIG_KEY);
    cJSON *root = config ? cJSON_Parse(config) : NULL;
    bool yes = root && config_names_use(root);
    cJSON_Delete(root);
    fipsc_st_close(f);
    return yes;
}

fipsc_status fipsc_use_load(const char *path, fipsc_model **out, fipsc_error *err)
{
    char dir[4096];
    if (tfjs_dir_of(path, dir, sizeof dir)) return fipsc_use_load_tfjs(dir, out, err);
    return fipsc_use_load_safetensors(path, out, err);
}
