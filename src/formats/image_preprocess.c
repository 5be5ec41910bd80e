/* Hugging Face image preprocessing: preprocessor_config.json and the pipeline convert -> resize ->
 * centre crop -> rescale -> normalise (see src/formats/image.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/image.h"

/* transformers' IMAGENET_DEFAULT_MEAN/STD (DeiT) and IMAGENET_STANDARD_MEAN/STD (ViT). */
static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

static void set_stats(fipsc_image_preproc *pp, const float *mean, const float *std)
{
    for (int c = 0; c < 3; c++) {
        pp->mean[c] = mean[c];
        pp->std[c] = std[c];
    }
}

void fipsc_image_preproc_default(fipsc_image_preproc *pp, int channels, int height, int width)
{
    memset(pp, 0, sizeof *pp);
    pp->channels = channels;
    pp->do_resize = true;
    pp->resize_mode = FIPSC_RESIZE_EXACT;
    pp->resize_height = (int)lround(height * 256.0 / 224.0);
    pp->resize_width = (int)lround(width * 256.0 / 224.0);
    pp->resample = FIPSC_RESAMPLE_BICUBIC;
    pp->do_center_crop = true;
    pp->crop_height = height;
    pp->crop_width = width;
    pp->do_rescale = true;
    pp->rescale_factor = 1.0 / 255.0;
    pp->do_normalize = true;
    set_stats(pp, imagenet_mean, imagenet_std);
}

/* ------------------------------------------------------------------ preprocessor_config.json */

static void describe(const cJSON *v, char *buf, size_t cap)
{
    char *text = cJSON_PrintUnformatted(v);
    snprintf(buf, cap, "%s", text ? text : "(unprintable)");
    if (strlen(buf) > 40) memcpy(buf + 37, "...", 4);
    free(text);
}

static fipsc_status bad_value(const char *origin, const char *key, const char *want, const cJSON *v,
                              fipsc_error *err)
{
    char got[64];
    describe(v, got, sizeof got);
    return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: key '%s' must be %s, got %s", origin, key, want, got);
}

/* An optional boolean: *present tells whether the key was there (null counts as absent). */
static fipsc_status get_flag(const cJSON *root, const char *origin, const char *key, bool *present,
                             bool *out, fipsc_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    *present = v && !cJSON_IsNull(v);
    if (!*present) return FIPSC_OK;
    if (!cJSON_IsBool(v)) return bad_value(origin, key, "true or false", v, err);
    *out = cJSON_IsTrue(v);
    return FIPSC_OK;
}

static bool is_size_int(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= 1 &&
           v->valuedouble <= FIPSC_IMAGE_MAX_SIDE;
}

/* A size: {"height": h, "width": w}, an integer (square) or, when shortest is non-NULL,
 * {"shortest_edge": s}. */
static fipsc_status get_size(const cJSON *v, const char *origin, const char *key, int *h, int *w,
                             int *shortest, fipsc_error *err)
{
    const char *want = shortest ? "an integer, {\"height\", \"width\"} or {\"shortest_edge\"} in pixels"
                                : "an integer or {\"height\", \"width\"} in pixels";
    if (shortest) *shortest = 0;
    if (is_size_int(v)) {
        *h = *w = (int)v->valuedouble;
        return FIPSC_OK;
    }
    if (!cJSON_IsObject(v)) return bad_value(origin, key, want, v, err);
    const cJSON *vh = cJSON_GetObjectItemCaseSensitive(v, "height");
    const cJSON *vw = cJSON_GetObjectItemCaseSensitive(v, "width");
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(v, "shortest_edge");
    if (vh && vw && is_size_int(vh) && is_size_int(vw)) {
        *h = (int)vh->valuedouble;
        *w = (int)vw->valuedouble;
        return FIPSC_OK;
    }
    if (shortest && !vh && !vw && vs && is_size_int(vs)) {
        *shortest = (int)vs->valuedouble;
        return FIPSC_OK;
    }
    return bad_value(origin, key, want, v, err);
}

/* image_mean / image_std: a number, or a list with one entry per channel. */
static fipsc_status get_stats(const cJSON *v, const char *origin, const char *key, int channels,
                              bool positive, float *out, fipsc_error *err)
{
    char want[96];
    snprintf(want, sizeof want, "a %snumber or a list of %d %snumbers", positive ? "positive " : "",
             channels, positive ? "positive " : "");
    double vals[3];
    if (cJSON_IsNumber(v)) {
        for (int c = 0; c < channels; c++) vals[c] = v->valuedouble;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == channels) {
        for (int c = 0; c < channels; c++) {
            const cJSON *e = cJSON_GetArrayItem(v, c);
            if (!cJSON_IsNumber(e)) return bad_value(origin, key, want, v, err);
            vals[c] = e->valuedouble;
        }
    } else {
        return bad_value(origin, key, want, v, err);
    }
    for (int c = 0; c < channels; c++) {
        /* tested as floats: 1e300 overflows to inf, 1e-50 rounds to 0 */
        float f = (float)vals[c];
        if (!isfinite(f) || (positive && !(f > 0))) return bad_value(origin, key, want, v, err);
        out[c] = f;
    }
    return FIPSC_OK;
}

fipsc_status fipsc_image_preproc_parse(const char *json_text, const char *origin, int channels,
                                       int height, int width, fipsc_image_preproc *pp,
                                       fipsc_error *err)
{
    memset(pp, 0, sizeof *pp);
    if (channels != 1 && channels != 3)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: models with %d input channels are not supported (1 or 3)",
                          origin, channels);
    cJSON *root = cJSON_Parse(json_text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a JSON object", origin);
    }
    fipsc_status st = FIPSC_OK;
    pp->channels = channels;

    /* The processor class decides the defaults of parameters a step needs but the file omits. */
    bool deit = false;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "image_processor_type");
    if (type && !cJSON_IsNull(type)) {
        if (!cJSON_IsString(type)) {
            st = bad_value(origin, "image_processor_type", "a string", type, err);
            goto done;
        }
        deit = strncmp(type->valuestring, "DeiT", 4) == 0;
    }
    static const float half[3] = {0.5f, 0.5f, 0.5f};
    set_stats(pp, deit ? imagenet_mean : half, deit ? imagenet_std : half);
    pp->resample = deit ? FIPSC_RESAMPLE_BICUBIC : FIPSC_RESAMPLE_BILINEAR;
    pp->resize_height = pp->crop_height = height;
    pp->resize_width = pp->crop_width = width;
    pp->rescale_factor = 1.0 / 255.0;

    bool present;
    /* resize */
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(root, "size");
    bool has_size = size && !cJSON_IsNull(size);
    if ((st = get_flag(root, origin, "do_resize", &present, &pp->do_resize, err))) goto done;
    if (!present) pp->do_resize = has_size;
    if (has_size && (st = get_size(size, origin, "size", &pp->resize_height, &pp->resize_width,
                                   &pp->shortest_edge, err)))
        goto done;
    pp->resize_mode = pp->shortest_edge ? FIPSC_RESIZE_SHORTEST_EDGE : FIPSC_RESIZE_EXACT;
    const cJSON *resample = cJSON_GetObjectItemCaseSensitive(root, "resample");
    if (resample && !cJSON_IsNull(resample)) {
        if (!cJSON_IsNumber(resample) || resample->valuedouble != floor(resample->valuedouble) ||
            resample->valuedouble < 0 || resample->valuedouble > FIPSC_RESAMPLE_HAMMING) {
            st = bad_value(origin, "resample", "a PIL filter number 0..5", resample, err);
            goto done;
        }
        pp->resample = (fipsc_resample)(int)resample->valuedouble;
    }
    /* centre crop */
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(root, "crop_size");
    bool has_crop = crop && !cJSON_IsNull(crop);
    if ((st = get_flag(root, origin, "do_center_crop", &present, &pp->do_center_crop, err))) goto done;
    if (!present) pp->do_center_crop = has_crop;
    if (has_crop && (st = get_size(crop, origin, "crop_size", &pp->crop_height, &pp->crop_width, NULL, err)))
        goto done;
    /* rescale: on unless switched off */
    const cJSON *factor = cJSON_GetObjectItemCaseSensitive(root, "rescale_factor");
    if ((st = get_flag(root, origin, "do_rescale", &present, &pp->do_rescale, err))) goto done;
    if (!present) pp->do_rescale = true;
    if (factor && !cJSON_IsNull(factor)) {
        if (!cJSON_IsNumber(factor) || !isfinite(factor->valuedouble) || !(factor->valuedouble > 0)) {
            st = bad_value(origin, "rescale_factor", "a positive number", factor, err);
            goto done;
        }
        pp->rescale_factor = factor->valuedouble;
    }
    /* normalise */
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(root, "image_mean");
    const cJSON *std = cJSON_GetObjectItemCaseSensitive(root, "image_std");
    bool has_mean = mean && !cJSON_IsNull(mean), has_std = std && !cJSON_IsNull(std);
    if ((st = get_flag(root, origin, "do_normalize", &present, &pp->do_normalize, err))) goto done;
    if (!present) pp->do_normalize = has_mean || has_std;
    if (has_mean && (st = get_stats(mean, origin, "image_mean", channels, false, pp->mean, err))) goto done;
    if (has_std && (st = get_stats(std, origin, "image_std", channels, true, pp->std, err))) goto done;
done:
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------------ the pipeline */

/* The resize target for an input of in_h × in_w. */
static void resize_target(const fipsc_image_preproc *pp, int in_h, int in_w, int *h, int *w)
{
    if (pp->resize_mode == FIPSC_RESIZE_EXACT) {
        *h = pp->resize_height;
        *w = pp->resize_width;
        return;
    }
    /* transformers' get_resize_output_image_size(default_to_square=False): the short side
     * becomes s and the long side int(s · long / short) (truncated). */
    int s = pp->shortest_edge;
    if (in_w <= in_h) {
        *w = s;
        *h = (int)((double)s * in_h / in_w);
    } else {
        *h = s;
        *w = (int)((double)s * in_w / in_h);
    }
}

void fipsc_image_preproc_output_size(const fipsc_image_preproc *pp, int in_height, int in_width,
                                     int *height, int *width)
{
    *height = in_height;
    *width = in_width;
    if (pp->do_resize) resize_target(pp, in_height, in_width, height, width);
    if (pp->do_center_crop) {
        *height = pp->crop_height;
        *width = pp->crop_width;
    }
}

fipsc_status fipsc_image_preprocess(const fipsc_image *img, const fipsc_image_preproc *pp,
                                    int expect_height, int expect_width, float *out,
                                    const char *name, fipsc_error *err)
{
    int out_h, out_w;
    fipsc_image_preproc_output_size(pp, img->height, img->width, &out_h, &out_w);
    if (out_h != expect_height || out_w != expect_width)
        return fipsc_fail(err, FIPSC_ERR_SHAPE,
                          "%s: preprocessing turns this %d x %d (width x height) image into %d x %d, "
                          "but the model takes %d x %d",
                          name, img->width, img->height, out_w, out_h, expect_width, expect_height);
    fipsc_image converted = {0}, resized = {0}, cropped = {0};
    fipsc_status st = fipsc_image_convert(img, pp->channels, &converted, err);
    const fipsc_image *cur = &converted;
    if (!st && pp->do_resize) {
        int h, w;
        resize_target(pp, cur->height, cur->width, &h, &w);
        st = fipsc_image_resize(cur, w, h, pp->resample, &resized, err);
        cur = &resized;
    }
    if (!st && pp->do_center_crop) {
        st = fipsc_image_center_crop(cur, pp->crop_width, pp->crop_height, &cropped, err);
        cur = &cropped;
    }
    if (!st) {
        /* transformers rescales in float64 and stores float32, then normalises in float32. */
        int C = pp->channels;
        size_t plane = (size_t)cur->width * cur->height;
        for (int c = 0; c < C; c++) {
            float mean = pp->do_normalize ? pp->mean[c] : 0.0f;
            float std = pp->do_normalize ? pp->std[c] : 1.0f;
            for (size_t i = 0; i < plane; i++) {
                double v = cur->pixels[i * C + c];
                float x = (float)(pp->do_rescale ? v * pp->rescale_factor : v);
                out[(size_t)c * plane + i] = pp->do_normalize ? (x - mean) / std : x;
            }
        }
    }
    if (st) fipsc_fail_context(err, "%s: ", name);
    fipsc_image_free(&converted);
    fipsc_image_free(&resized);
    fipsc_image_free(&cropped);
    return st;
}
