/* Loading Hugging Face ViT / DeiT image classifiers (see src/families/vit/vit.h).
 *
 * The configuration comes from config.json (or the safetensors __metadata__ "config" entry),
 * the preprocessing from preprocessor_config.json beside it, the weights from a safetensors set.
 * Keys absent from config.json take transformers' ViTConfig/DeiTConfig defaults, so that a file
 * means here what it means to transformers; every tensor is then checked against the
 * configuration. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/json.h"
#include "formats/safetensors.h"
#include "model/ingest.h"
#include "families/vit/vit.h"
#include "model/hf_checkpoint.h"
#include "core/path.h"


static const struct {
    const char *architecture;
    fipsc_vit_kind kind;
    const char *prefix;
} architectures[] = {
    {"ViTForImageClassification", FIPSC_VIT_PLAIN, "vit"},
    {"DeiTForImageClassification", FIPSC_VIT_DEIT, "deit"},
    {"DeiTForImageClassificationWithTeacher", FIPSC_VIT_DEIT_TEACHER, "deit"},
};
#define N_ARCHITECTURES ((int)(sizeof architectures / sizeof architectures[0]))

/* Bounds that keep size products far inside int and catch garbage early. */
#define MAX_DIM (1 << 16)
#define MAX_LAYERS 1024
#define MAX_LABELS (1 << 20)

/* ------------------------------------------------------------------ config.json */

static bool is_int_in(const cJSON *v, long long lo, long long hi)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= (double)lo &&
           v->valuedouble <= (double)hi;
}

/* image_size / patch_size: an integer (square) or [height, width]; absent keeps *h, *w. */
static fipsc_status get_pair(const cJSON *root, const char *origin, const char *key, int *h, int *w,
                             fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return FIPSC_OK;
    if (is_int_in(v, 1, FIPSC_IMAGE_MAX_SIDE)) {
        *h = *w = (int)v->valuedouble;
        return FIPSC_OK;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 &&
        is_int_in(cJSON_GetArrayItem(v, 0), 1, FIPSC_IMAGE_MAX_SIDE) &&
        is_int_in(cJSON_GetArrayItem(v, 1), 1, FIPSC_IMAGE_MAX_SIDE)) {
        *h = (int)cJSON_GetArrayItem(v, 0)->valuedouble;
        *w = (int)cJSON_GetArrayItem(v, 1)->valuedouble;
        return FIPSC_OK;
    }
    return fipsc_json_bad_key(origin, key, "a positive integer or [height, width]", v, err);
}

/* id2label: {"0": "name", ...} with exactly the keys 0 .. n-1. */
static fipsc_status get_labels(const cJSON *root, const char *origin, fipsc_vit *vc, fipsc_error *err)
{
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    if (!map || cJSON_IsNull(map)) return FIPSC_OK;
    int n = cJSON_IsObject(map) ? cJSON_GetArraySize(map) : -1;
    if (n <= 0 || n > MAX_LABELS)
        return fipsc_json_bad_key(origin, "id2label", "a non-empty object {\"0\": name, ...}", map, err);
    vc->labels = calloc((size_t)n, sizeof *vc->labels);
    if (!vc->labels) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for %d labels", origin, n);
    vc->n_labels = n;
    const cJSON *e;
    cJSON_ArrayForEach(e, map)
    {
        char *end;
        long id = strtol(e->string, &end, 10);
        if (end == e->string || *end || id < 0 || id >= n || !cJSON_IsString(e) || vc->labels[id])
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: id2label must map each of the ids 0..%d once to a string; entry "
                              "'%s' does not fit",
                              origin, n - 1, e->string);
        if (!(vc->labels[id] = strdup(e->valuestring)))
            return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory for labels", origin);
    }
    return FIPSC_OK;
}

/* Keeps the configuration text in vc->config_text. An embedded FIPSC_VIT_PREPROC_KEY object is
 * the preprocessing: parsed into vc->preproc, kept as vc->preproc_text, and cut out of the
 * config text (which is then re-printed without it). */
static fipsc_status take_texts(cJSON *root, const char *json_text, const char *origin, fipsc_vit *vc,
                               fipsc_error *err)
{
    cJSON *pre = cJSON_DetachItemFromObjectCaseSensitive(root, FIPSC_VIT_PREPROC_KEY);
    char *pre_text = NULL;
    fipsc_status st = FIPSC_OK;
    if (pre && !cJSON_IsObject(pre)) {
        st = fipsc_json_bad_key(origin, FIPSC_VIT_PREPROC_KEY, "a preprocessor_config.json object", pre, err);
    } else if (pre) {
        pre_text = cJSON_Print(pre);
        vc->config_text = pre_text ? cJSON_Print(root) : NULL;
        if (!pre_text || !vc->config_text)
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", origin);
        else
            st = fipsc_image_preproc_parse(pre_text, origin, vc->channels, vc->image_h, vc->image_w,
                                           &vc->preproc, err);
    } else if (!(vc->config_text = strdup(json_text))) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", origin);
    }
    cJSON_Delete(pre);
    if (pre_text && !st && !(vc->preproc_text = strdup(pre_text)))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", origin);
    cJSON_free(pre_text);
    return st;
}

bool fipsc_vit_config_is_vit(const char *config_json_text)
{
    cJSON *root = cJSON_Parse(config_json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return false;
    }
    const char *model_type, *arch = fipsc_json_architecture(root, &model_type);
    bool yes = arch ? strncmp(arch, "ViT", 3) == 0 || strncmp(arch, "DeiT", 4) == 0
                    : model_type && (strcmp(model_type, "vit") == 0 || strcmp(model_type, "deit") == 0);
    cJSON_Delete(root);
    return yes;
}

fipsc_status fipsc_vit_parse_config(const char *json_text, const char *origin, fipsc_vit *vc,
                                    fipsc_error *err)
{
    memset(vc, 0, sizeof *vc);
    cJSON *root = cJSON_Parse(json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a JSON object", origin);
    }
    fipsc_status st = FIPSC_OK;
    bool given; /* whether an optional key was there (an absent one keeps its default) */
    const char *model_type, *arch = fipsc_json_architecture(root, &model_type);
    int which = -1;
    for (int i = 0; arch && i < N_ARCHITECTURES; i++)
        if (strcmp(arch, architectures[i].architecture) == 0) which = i;
    if (which < 0) {
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                        "%s: architecture '%s' is not supported for images (supported: "
                        "ViTForImageClassification, DeiTForImageClassification, "
                        "DeiTForImageClassificationWithTeacher)",
                        origin, arch ? arch : "(no 'architectures' key)");
        goto done;
    }
    vc->kind = architectures[which].kind;
    snprintf(vc->prefix, sizeof vc->prefix, "%s", architectures[which].prefix);
    /* transformers' ViTConfig / DeiTConfig defaults */
    vc->dim = 768;
    vc->n_layers = 12;
    vc->n_heads = 12;
    vc->hidden = 3072;
    vc->image_h = vc->image_w = 224;
    vc->patch_h = vc->patch_w = 16;
    vc->channels = 3;
    vc->qkv_bias = true;
    vc->ln_eps = 1e-12f;
    vc->act = FIPSC_ACT_GELU;
    if ((st = fipsc_json_int(root, origin, "hidden_size", 1, MAX_DIM, &given, &vc->dim, err)) ||
        (st = fipsc_json_int(root, origin, "num_hidden_layers", 1, MAX_LAYERS, &given, &vc->n_layers, err)) ||
        (st = fipsc_json_int(root, origin, "num_attention_heads", 1, MAX_DIM, &given, &vc->n_heads, err)) ||
        (st = fipsc_json_int(root, origin, "intermediate_size", 1, 1 << 20, &given, &vc->hidden, err)) ||
        (st = fipsc_json_int(root, origin, "num_channels", 1, 3, &given, &vc->channels, err)) ||
        (st = get_pair(root, origin, "image_size", &vc->image_h, &vc->image_w, err)) ||
        (st = get_pair(root, origin, "patch_size", &vc->patch_h, &vc->patch_w, err)))
        goto done;
    if ((st = fipsc_json_bool(root, origin, "qkv_bias", &vc->qkv_bias, err)) ||
        (st = fipsc_json_positive(root, origin, "layer_norm_eps", &vc->ln_eps, err)))
        goto done;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) {
            st = fipsc_json_bad_key(origin, "hidden_act", "a string", v, err);
            goto done;
        }
        if (!fipsc_activation_parse(v->valuestring, &vc->act)) {
            st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported", origin,
                            v->valuestring);
            goto done;
        }
    }
    if (vc->channels == 2) {
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: num_channels 2 is not supported (1 or 3)", origin);
        goto done;
    }
    if (vc->dim % vc->n_heads) {
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d",
                        origin, vc->dim, vc->n_heads);
        goto done;
    }
    vc->head_dim = vc->dim / vc->n_heads;
    vc->grid_h = vc->image_h / vc->patch_h;
    vc->grid_w = vc->image_w / vc->patch_w;
    if (vc->grid_h == 0 || vc->grid_w == 0) {
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: patch_size %d x %d is larger than image_size %d x %d",
                        origin, vc->patch_h, vc->patch_w, vc->image_h, vc->image_w);
        goto done;
    }
    vc->n_patches = vc->grid_h * vc->grid_w;
    vc->n_prefix = vc->kind == FIPSC_VIT_PLAIN ? 1 : 2;
    vc->n_tokens = vc->n_prefix + vc->n_patches;
    if ((st = get_labels(root, origin, vc, err))) goto done;
    if (!vc->labels && (st = fipsc_json_int(root, origin, "num_labels", 1, MAX_LABELS, &given, &vc->n_labels, err))) goto done;
    fipsc_image_preproc_default(&vc->preproc, vc->channels, vc->image_h, vc->image_w);
    st = take_texts(root, json_text, origin, vc, err);
done:
    cJSON_Delete(root);
    if (st) fipsc_vit_config_free(vc);
    return st;
}

/* ------------------------------------------------------------------ tensors */

bool fipsc_vit_is_tensor(const char *name, const fipsc_vit *vc)
{
    size_t pl = strlen(vc->prefix);
    if (vc->kind == FIPSC_VIT_DEIT_TEACHER) {
        static const char *const heads[] = {"cls_classifier.weight", "cls_classifier.bias",
                                            "distillation_classifier.weight", "distillation_classifier.bias"};
        for (int i = 0; i < 4; i++)
            if (strcmp(name, heads[i]) == 0) return true;
    } else if (strcmp(name, "classifier.weight") == 0 || strcmp(name, "classifier.bias") == 0) {
        return true;
    }
    if (strncmp(name, vc->prefix, pl) != 0 || name[pl] != '.') return false;
    const char *rest = name + pl + 1;
    static const char *const top[] = {
        "embeddings.cls_token", "embeddings.position_embeddings",
        "embeddings.patch_embeddings.projection.weight", "embeddings.patch_embeddings.projection.bias",
        "layernorm.weight", "layernorm.bias",
        /* present in some checkpoints, unused by classification */
        "embeddings.mask_token", "pooler.dense.weight", "pooler.dense.bias"};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (strcmp(rest, top[i]) == 0) return true;
    if (vc->n_prefix == 2 && strcmp(rest, "embeddings.distillation_token") == 0) return true;
    static const char layer_prefix[] = "encoder.layer.";
    if (strncmp(rest, layer_prefix, sizeof layer_prefix - 1) != 0) return false;
    const char *num = rest + sizeof layer_prefix - 1;
    char *end;
    long l = strtol(num, &end, 10);
    if (end == num || *end != '.' || l < 0 || l >= vc->n_layers) return false;
    char canonical[32];
    int n = snprintf(canonical, sizeof canonical, "%ld.", l);
    if (strncmp(num, canonical, (size_t)n) != 0) return false; /* "01." is not layer 1 */
    const char *suffix = num + n;
    static const char *const per_layer[] = {
        "layernorm_before.weight", "layernorm_before.bias",
        "attention.attention.query.weight", "attention.attention.key.weight",
        "attention.attention.value.weight", "attention.output.dense.weight",
        "attention.output.dense.bias", "layernorm_after.weight", "layernorm_after.bias",
        "intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight",
        "output.dense.bias"};
    for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++)
        if (strcmp(suffix, per_layer[i]) == 0) return true;
    if (vc->qkv_bias)
        return strcmp(suffix, "attention.attention.query.bias") == 0 ||
               strcmp(suffix, "attention.attention.key.bias") == 0 ||
               strcmp(suffix, "attention.attention.value.bias") == 0;
    return false;
}

static void close_set(void *set) { fipsc_st_set_close(set); }

/* Adds every tensor of the set to m: aligned F32 in place (the model keeps the set), F16/BF16
 * converted. */
static fipsc_status add_tensors(fipsc_model *m, const fipsc_st_set *set, const fipsc_vit *vc,
                                const char *config_origin, fipsc_error *err)
{
    int n = fipsc_st_set_count(set);
    for (int i = 0; i < n; i++) {
        const fipsc_st_tensor *t = fipsc_st_set_at(set, i);
        if (!fipsc_vit_is_tensor(t->name, vc))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: unexpected tensor '%s': not part of the %s with %d layers%s that %s "
                              "describes",
                              t->file, t->name, m->arch_name, vc->n_layers,
                              vc->qkv_bias ? "" : " and no qkv bias", config_origin);
        fipsc_status st = fipsc_model_ingest(m, t, FIPSC_ERR_UNSUPPORTED, false, err);
        if (st) return st;
    }
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ loading */

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* "<directory of file>/<name>" into buf. */
static fipsc_status beside(const char *file, const char *name, char *buf, size_t cap, fipsc_error *err)
{
    const char *slash = strrchr(file, '/');
    if (slash) return fipsc_path_format(buf, cap, err, "%.*s/%s", (int)(slash - file), file, name);
    return fipsc_path_format(buf, cap, err, "%s", name);
}

bool fipsc_vit_path_is_vit(const char *path)
{
    char *text, origin[4200];
    fipsc_st_set *set;
    fipsc_error err;
    bool yes = false;
    if (fipsc_hf_config_text(path, &text, origin, sizeof origin, &set, &err) == FIPSC_OK)
        yes = fipsc_vit_config_is_vit(text);
    free(text);
    fipsc_st_set_close(set);
    return yes;
}

fipsc_status fipsc_vit_load(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    char *text = NULL, origin[4200], pre_path[4200];
    fipsc_st_set *set = NULL;
    fipsc_model *m = NULL;
    fipsc_vit vc;
    memset(&vc, 0, sizeof vc);
    fipsc_status st = fipsc_hf_config_text(path, &text, origin, sizeof origin, &set, err);
    if (st) goto fail;
    if ((st = fipsc_vit_parse_config(text, origin, &vc, err))) goto fail;
    free(text);
    text = NULL;

    /* preprocessor_config.json: in the directory, or beside the file */
    if (is_dir(path)) st = fipsc_path_join(pre_path, sizeof pre_path, path, "preprocessor_config.json", err);
    else st = beside(path, "preprocessor_config.json", pre_path, sizeof pre_path, err);
    if (st) goto fail;
    if (exists(pre_path)) {
        if ((st = fipsc_read_file(pre_path, &text, NULL, err)) ||
            (st = fipsc_image_preproc_parse(text, pre_path, vc.channels, vc.image_h, vc.image_w,
                                            &vc.preproc, err)))
            goto fail;
        free(vc.preproc_text); /* the file beside the weights wins over an embedded copy */
        vc.preproc_text = text;
        text = NULL;
    }

    if (!set && (st = fipsc_st_set_open(path, &set, err))) goto fail;
    if (!(m = fipsc_model_new())) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    fipsc_st_set *kept = set;
    set = NULL;
    if ((st = fipsc_model_keep(m, kept, close_set, err))) goto fail;
    if ((st = fipsc_path_format(m->arch_name, sizeof m->arch_name, err, "%s", fipsc_vit_architecture_name(vc.kind))))
        goto fail;
    if ((st = fipsc_model_set_source_path(m, path, err))) goto fail;
    if ((st = add_tensors(m, kept, &vc, origin, err))) goto fail;
    if ((st = fipsc_model_bind_vit(m, &vc, err))) {
        fipsc_fail_context(err, "%s (configuration: %s): ", path, origin);
        goto fail;
    }
    *out = m;
    return FIPSC_OK;
fail:
    free(text);
    fipsc_vit_config_free(&vc);
    fipsc_st_set_close(set);
    fipsc_model_free(m);
    return st;
}

/* ------------------------------------------------------------------ configuration as text */

fipsc_status fipsc_vit_config_json(const fipsc_model *m, bool with_preproc, char **out,
                                   fipsc_error *err)
{
    *out = NULL;
    const fipsc_vit *v = fipsc_model_vit(m);
    if (!v || !v->config_text)
        return fipsc_fail(err, FIPSC_ERR_ARG, "%s: not a ViT/DeiT model with a configuration text",
                          m && m->arch_name[0] ? m->arch_name : "model");
    if (!with_preproc || !v->preproc_text) {
        if (!(*out = strdup(v->config_text))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        return FIPSC_OK;
    }
    cJSON *root = cJSON_Parse(v->config_text), *pre = cJSON_Parse(v->preproc_text);
    fipsc_status st = FIPSC_OK;
    if (!cJSON_IsObject(root) || !cJSON_IsObject(pre)) {
        st = fipsc_fail(err, FIPSC_ERR_INTERNAL, "the kept ViT configuration texts are not JSON objects");
    } else {
        cJSON_AddItemToObject(root, FIPSC_VIT_PREPROC_KEY, pre);
        pre = NULL;
        char *text = cJSON_Print(root);
        if (!text || !(*out = strdup(text))) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        cJSON_free(text);
    }
    cJSON_Delete(root);
    cJSON_Delete(pre);
    return st;
}

const char *fipsc_vit_architecture_name(fipsc_vit_kind kind)
{
    for (int i = 0; i < N_ARCHITECTURES; i++)
        if (architectures[i].kind == kind) return architectures[i].architecture;
    return "?";
}
