/* ViT / DeiT bad input: every way a generated checkpoint, its preprocessing file, an image or a
 * labels file can be wrong, each with the status and the words its message must contain. */
#include <stdlib.h>
#include <string.h>

#include "families/llama/llama.h"
#include "families/registry.h"
#include "eval/classify.h"
#include "families/vit/vit.h"
#include "testutil.h"
#include "vit_fixture.h"

static const char *tmp;
static vit_fixture fx_bias, fx_nobias;

/* Writes the fixture (spoilt) to a fresh directory and loads it through fipsc_model_load. */
static fipsc_status load_spoilt(const vit_fixture *fx, const vit_spoil *sp, fipsc_error *err)
{
    static int counter;
    char dir[4200];
    test_pathf(dir, sizeof dir, "%s/bad%d", tmp, counter++);
    fx_write(fx, dir, sp, false);
    fipsc_model *m = NULL;
    fipsc_status st = fipsc_model_load(dir, &m, err);
    CHECK(st != FIPSC_OK || m != NULL);
    fipsc_model_free(m);
    return st;
}

static void check_checkpoints(void)
{
    fipsc_error err = {0};
    /* the unspoilt ones load */
    CHECK_OK(load_spoilt(&fx_bias, NULL, &err), &err);
    CHECK_OK(load_spoilt(&fx_nobias, NULL, &err), &err);

    vit_spoil sp = {0};
    sp.config_from = "ViTForImageClassification";
    sp.config_to = "ViTForMaskedImageModeling";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_UNSUPPORTED, "ViTForMaskedImageModeling", &err);
    CHECK(strstr(err.message, "config.json") != NULL);

    memset(&sp, 0, sizeof sp);
    sp.skip = "vit.encoder.layer.1.intermediate.dense.bias";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_NOT_FOUND, "vit.encoder.layer.1.intermediate.dense.bias", &err);

    memset(&sp, 0, sizeof sp);
    sp.skip = "classifier.weight";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_NOT_FOUND, "classifier.weight", &err);

    memset(&sp, 0, sizeof sp);
    sp.reshape = "vit.encoder.layer.0.output.dense.weight";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_SHAPE, "vit.encoder.layer.0.output.dense.weight", &err);

    memset(&sp, 0, sizeof sp);
    sp.reshape = "vit.embeddings.patch_embeddings.projection.weight";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_SHAPE, "patch_embeddings.projection.weight", &err);

    memset(&sp, 0, sizeof sp);
    sp.poison = "vit.encoder.layer.1.attention.attention.key.weight";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_NUMERIC, "vit.encoder.layer.1.attention.attention.key.weight", &err);

    memset(&sp, 0, sizeof sp);
    sp.extra = "vit.encoder.layer.2.output.dense.weight"; /* the model has layers 0 and 1 */
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_FORMAT, "unexpected tensor 'vit.encoder.layer.2.output.dense.weight'", &err);

    memset(&sp, 0, sizeof sp);
    sp.extra = "deit.embeddings.distillation_token"; /* a DeiT tensor in a ViT */
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_FORMAT, "deit.embeddings.distillation_token", &err);

    /* the configuration says no qkv bias but the tensors have them, and the other way round */
    memset(&sp, 0, sizeof sp);
    sp.config_from = "\"qkv_bias\": true";
    sp.config_to = "\"qkv_bias\": false";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_FORMAT, "query.bias", &err);
    sp.config_from = "\"qkv_bias\": false";
    sp.config_to = "\"qkv_bias\": true";
    CHECK_FAILS(load_spoilt(&fx_nobias, &sp, &err), FIPSC_ERR_NOT_FOUND, "deit.encoder.layer.0.attention.attention.query.bias", &err);

    memset(&sp, 0, sizeof sp);
    sp.config_from = "\"num_attention_heads\": 2";
    sp.config_to = "\"num_attention_heads\": 3";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_FORMAT, "not a multiple of num_attention_heads", &err);

    sp.config_from = "\"image_size\": [12, 20]";
    sp.config_to = "\"image_size\": \"big\"";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_FORMAT, "'image_size'", &err);

    /* a larger image means more patches than there are position embeddings */
    sp.config_to = "\"image_size\": [16, 20]";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_SHAPE, "position_embeddings", &err);

    sp.config_to = "\"image_size\": [12, 20], \"patch_size\": 32, \"x\": 0";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_FORMAT, "larger than image_size", &err);

    sp.config_from = "\"hidden_act\": \"gelu\"";
    sp.config_to = "\"hidden_act\": \"swiglu_unknown\"";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_UNSUPPORTED, "swiglu_unknown", &err);

    sp.config_from = "\"0\": \"class0\"";
    sp.config_to = "\"7\": \"class0\"";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_FORMAT, "id2label", &err);

    sp.config_from = "\"num_channels\": 3";
    sp.config_to = "\"num_channels\": 1";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_SHAPE, "patch_embeddings.projection.weight", &err);

    sp.config_from = "\"hidden_size\": 16";
    sp.config_to = "\"hidden_size\": -16";
    CHECK_FAILS(load_spoilt(&fx_bias, &sp, &err), FIPSC_ERR_FORMAT, "'hidden_size'", &err);

    /* direct calls: not JSON (fipsc_model_load would not recognise it as a ViT); no
     * config.json; a .safetensors without configuration */
    char dir[4200], path[4300];
    fipsc_model *m = NULL;
    test_pathf(dir, sizeof dir, "%s/notjson", tmp);
    sp.config_from = "{";
    sp.config_to = "[";
    fx_write(&fx_bias, dir, &sp, false);
    CHECK_FAILS(fipsc_vit_load(dir, &m, &err), FIPSC_ERR_FORMAT, "config.json: not a JSON object", &err);
    test_pathf(dir, sizeof dir, "%s/empty", tmp);
    mkdir(dir, 0755);
    CHECK_FAILS(fipsc_vit_load(dir, &m, &err), FIPSC_ERR_NOT_FOUND, "no config.json", &err);
    CHECK(m == NULL);
    test_pathf(dir, sizeof dir, "%s/noconfig", tmp);
    fx_write(&fx_bias, dir, NULL, false);
    test_pathf(path, sizeof path, "%s/config.json", dir);
    remove(path);
    test_pathf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_FAILS(fipsc_vit_load(path, &m, &err), FIPSC_ERR_NOT_FOUND, "no model configuration", &err);

    /* recognising ViT configurations (the loader dispatch) */
    CHECK(fipsc_vit_config_is_vit("{\"architectures\": [\"DeiTForImageClassificationWithTeacher\"]}"));
    CHECK(fipsc_vit_config_is_vit("{\"model_type\": \"vit\"}"));
    CHECK(!fipsc_vit_config_is_vit("{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\"}"));
    CHECK(!fipsc_vit_config_is_vit("not json"));
    CHECK(!fipsc_vit_path_is_vit(path)); /* no configuration at all */
}

/* preprocessor_config.json beside the weights */
static void check_preprocessor(void)
{
    fipsc_error err = {0};
    char dir[4200], path[4300];
    test_pathf(dir, sizeof dir, "%s/prep", tmp);
    fx_write(&fx_bias, dir, NULL, false);
    test_pathf(path, sizeof path, "%s/preprocessor_config.json", dir);
    fx_write_text(path, "{\"do_resize\": true, \"size\": {\"height\": 12, \"width\": 20}, \"resample\": 9}");
    fipsc_model *m = NULL;
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_FORMAT, "'resample'", &err);
    CHECK(strstr(err.message, "preprocessor_config.json") != NULL);
    fx_write_text(path, "{\"image_mean\": [0.5, 0.5], \"image_std\": [0.5, 0.5, 0.5]}");
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_FORMAT, "'image_mean'", &err);
    fx_write_text(path, "{\"crop_size\": {\"height\": 0, \"width\": 4}}");
    CHECK_FAILS(fipsc_model_load(dir, &m, &err), FIPSC_ERR_FORMAT, "'crop_size'", &err);

    /* a preprocessing that does not produce the model's input size: the image is named */
    fx_write_text(path, "{\"do_resize\": false, \"do_center_crop\": false, \"image_mean\": 0.5, \"image_std\": 0.5}");
    CHECK_OK(fipsc_model_load(dir, &m, &err), &err);
    if (!m) return;
    const fipsc_vit *v = fipsc_model_vit(m);
    CHECK(v && !v->preproc.do_resize && !v->preproc.do_center_crop && v->preproc.do_normalize);
    test_pathf(path, sizeof path, "%s/small.pgm", tmp);
    fx_write_text(path, "P2 3 2 255 0 1 2 3 4 5\n");
    float pixels[3 * 12 * 20];
    CHECK_FAILS(fipsc_classify_load_image(m, path, pixels, &err), FIPSC_ERR_SHAPE, "small.pgm", &err);
    CHECK(strstr(err.message, "20 x 12") != NULL);
    const char *paths[1] = {path};
    float logits[5];
    CHECK_FAILS(fipsc_classify_files(m, paths, 1, 0, logits, &err), FIPSC_ERR_SHAPE, "small.pgm", &err);
    test_pathf(path, sizeof path, "%s/not-an-image.txt", tmp);
    fx_write_text(path, "hello");
    CHECK_FAILS(fipsc_classify_load_image(m, path, pixels, &err), FIPSC_ERR_UNSUPPORTED, "not-an-image.txt", &err);
    test_pathf(path, sizeof path, "%s/missing.png", tmp);
    CHECK_FAILS(fipsc_classify_load_image(m, path, pixels, &err), FIPSC_ERR_IO, "missing.png", &err);

    /* labels files */
    fipsc_labelled_image *items;
    int n;
    test_pathf(path, sizeof path, "%s/labels.tsv", tmp);
    fx_write_text(path, "a.png\t1\nb.png\tclass4\r\n\nsub/c.png\t0\n");
    CHECK_OK(fipsc_read_image_labels(m, path, "/data", &items, &n, &err), &err);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(strcmp(items[0].path, "/data/a.png") == 0 && items[0].label == 1);
        CHECK(strcmp(items[1].path, "/data/b.png") == 0 && items[1].label == 4);
        CHECK(strcmp(items[2].path, "/data/sub/c.png") == 0 && items[2].label == 0);
    }
    fipsc_labelled_images_free(items, n);
    fx_write_text(path, "a.png\t1\nb.png 2\n");
    CHECK_FAILS(fipsc_read_image_labels(m, path, "/data", &items, &n, &err), FIPSC_ERR_FORMAT, "labels.tsv:2:", &err);
    fx_write_text(path, "a.png\t1\nb.png\t5\n");
    CHECK_FAILS(fipsc_read_image_labels(m, path, "/data", &items, &n, &err), FIPSC_ERR_FORMAT, "class '5'", &err);
    fx_write_text(path, "\n\n");
    CHECK_FAILS(fipsc_read_image_labels(m, path, "/data", &items, &n, &err), FIPSC_ERR_FORMAT, "lists no images", &err);
    fipsc_model_free(m);

    /* the ViT entry points refuse other models */
    fipsc_model *llama = fipsc_model_new();
    snprintf(llama->arch_name, sizeof llama->arch_name, "LlamaForCausalLM");
    CHECK_FAILS(fipsc_vit_forward(llama, pixels, 1, logits, NULL, &err), FIPSC_ERR_ARG, "LlamaForCausalLM", &err);
    CHECK_FAILS(fipsc_classify_load_image(llama, path, pixels, &err), FIPSC_ERR_UNSUPPORTED, "not an image classifier", &err);
    fipsc_model_free(llama);
}

int main(void)
{
    tmp = test_tmpdir("test_vit_errors");
    const vit_spec with_bias = {"ViTForImageClassification", 16, 2, 2, 40, 12, 20, 4, 4, 3, 5, true, "gelu", 7};
    const vit_spec without = {"DeiTForImageClassificationWithTeacher", 8, 1, 2, 16, 8, 8, 4, 4, 1, 3, false, "gelu", 8};
    fx_build(&fx_bias, &with_bias);
    fx_build(&fx_nobias, &without);
    check_checkpoints();
    check_preprocessor();
    fx_free(&fx_bias);
    fx_free(&fx_nobias);
    return test_summary("test_vit_errors");
}
