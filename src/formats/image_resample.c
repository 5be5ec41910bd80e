/* Pixel operations that must agree with what the Hugging Face image processors do through PIL:
 * channel conversion, resizing and centre cropping of 8-bit images. See src/formats/image.h.
 *
 * Resizing, as PIL computes it for 8-bit images (Pillow's Resample.c; written here from the
 * mathematics, not copied). For one axis of length `in` resized to `out`:
 *   scale = in / out,  fs = max(scale, 1)      (a filter stretched by fs when shrinking)
 *   support = filter_support · fs
 *   output pixel x has centre c = (x + 0.5) · scale in input coordinates, and takes the input
 *   pixels i in [max(0, int(c - support + 0.5)), min(in, int(c + support + 0.5))) with weights
 *   w_i = K((i - c + 0.5) / fs), normalised to sum 1, then quantised to integers with 22
 *   fractional bits (round half away from zero).
 *   value = clamp((2^21 + Σ w_i · p_i) >> 22, 0, 255)
 * The horizontal pass runs first, then the vertical one; a pass whose length is unchanged is
 * skipped (PIL does the same), so an identity resize is an exact copy. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/image.h"

enum { COEF_BITS = 22 };

const char *fipsc_resample_name(fipsc_resample r)
{
    static const char *const names[] = {"nearest", "lanczos", "bilinear", "bicubic", "box", "hamming"};
    return (unsigned)r <= FIPSC_RESAMPLE_HAMMING ? names[r] : "?";
}

/* ------------------------------------------------------------------ channel conversion */

fipsc_status fipsc_image_convert(const fipsc_image *in, int channels, fipsc_image *out,
                                 fipsc_error *err)
{
    if (channels != 1 && channels != 3)
        return fipsc_fail(err, FIPSC_ERR_ARG, "cannot convert an image to %d channels (1 or 3)", channels);
    fipsc_status st = fipsc_image_alloc(out, in->width, in->height, channels, err);
    if (st) return st;
    size_t n = (size_t)in->width * in->height;
    int cin = in->channels;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *s = in->pixels + i * cin;
        unsigned char *d = out->pixels + i * channels;
        bool color = cin >= 3;
        if (channels == 1) {
            /* ITU-R 601-2 luma in 16.16 fixed point, rounded: PIL's RGB -> L */
            d[0] = color ? (unsigned char)((s[0] * 19595u + s[1] * 38470u + s[2] * 7471u + 0x8000u) >> 16)
                         : s[0];
        } else {
            d[0] = s[0];
            d[1] = color ? s[1] : s[0];
            d[2] = color ? s[2] : s[0];
        }
    }
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ resampling filters */

static double filter_box(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double filter_triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_hamming(double x)
{
    x = fabs(x);
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x *= M_PI;
    return sin(x) / x * (0.54 + 0.46 * cos(x));
}

/* Keys' cubic convolution with a = -0.5. */
static double filter_cubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

static double sinc(double x)
{
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double filter_lanczos3(double x) { return x > -3.0 && x < 3.0 ? sinc(x) * sinc(x / 3.0) : 0.0; }

typedef struct {
    double (*kernel)(double);
    double support;
} filter_def;

static filter_def filter_for(fipsc_resample r)
{
    switch (r) {
    case FIPSC_RESAMPLE_BOX: return (filter_def){filter_box, 0.5};
    case FIPSC_RESAMPLE_BILINEAR: return (filter_def){filter_triangle, 1.0};
    case FIPSC_RESAMPLE_HAMMING: return (filter_def){filter_hamming, 1.0};
    case FIPSC_RESAMPLE_BICUBIC: return (filter_def){filter_cubic, 2.0};
    case FIPSC_RESAMPLE_LANCZOS: return (filter_def){filter_lanczos3, 3.0};
    case FIPSC_RESAMPLE_NEAREST: break;
    }
    return (filter_def){NULL, 0.0};
}

/* The fixed-point weights of one axis: output pixel x reads input pixels first[x] ..
 * first[x] + count[x] - 1 with weights coef[x · stride + k]. */
typedef struct {
    int *first, *count;
    int32_t *coef;
    int stride;
} axis_weights;

static void axis_free(axis_weights *a)
{
    free(a->first);
    free(a->count);
    free(a->coef);
}

static fipsc_status axis_compute(int in, int out, filter_def f, axis_weights *a, fipsc_error *err)
{
    double scale = (double)in / out;
    double fs = scale < 1.0 ? 1.0 : scale;
    double support = f.support * fs;
    a->stride = (int)ceil(support) * 2 + 1;
    a->first = malloc((size_t)out * sizeof *a->first);
    a->count = malloc((size_t)out * sizeof *a->count);
    a->coef = calloc((size_t)out * a->stride, sizeof *a->coef);
    double *w = malloc((size_t)a->stride * sizeof *w);
    if (!a->first || !a->count || !a->coef || !w) {
        free(w);
        axis_free(a);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory resizing an image");
    }
    for (int x = 0; x < out; x++) {
        double centre = (x + 0.5) * scale;
        int lo = (int)(centre - support + 0.5), hi = (int)(centre + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo;
        if (n > a->stride) n = a->stride;
        double total = 0.0;
        for (int k = 0; k < n; k++) {
            w[k] = f.kernel((k + lo - centre + 0.5) / fs);
            total += w[k];
        }
        for (int k = 0; k < n; k++) {
            double v = total != 0.0 ? w[k] / total : w[k];
            double q = v * (double)(1 << COEF_BITS);
            a->coef[(size_t)x * a->stride + k] = (int32_t)(q < 0 ? q - 0.5 : q + 0.5);
        }
        a->first[x] = lo;
        a->count[x] = n;
    }
    free(w);
    return FIPSC_OK;
}

static unsigned char clamp_round(int64_t acc)
{
    int64_t v = (acc + ((int64_t)1 << (COEF_BITS - 1))) >> COEF_BITS;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Resamples along x: src is [h][w_in][c], dst [h][w_out][c]. */
static void pass_horizontal(const unsigned char *src, int w_in, int h, int c, const axis_weights *a,
                            unsigned char *dst, int w_out)
{
    (void)w_in;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w_out; x++) {
            const int32_t *k = a->coef + (size_t)x * a->stride;
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = 0;
                const unsigned char *s = src + ((size_t)y * w_in + a->first[x]) * c + ch;
                for (int i = 0; i < a->count[x]; i++) acc += (int64_t)k[i] * s[(size_t)i * c];
                dst[((size_t)y * w_out + x) * c + ch] = clamp_round(acc);
            }
        }
}

/* Resamples along y: src is [h_in][w][c], dst [h_out][w][c]. */
static void pass_vertical(const unsigned char *src, int w, int c, const axis_weights *a,
                          unsigned char *dst, int h_out)
{
    size_t row = (size_t)w * c;
    for (int y = 0; y < h_out; y++) {
        const int32_t *k = a->coef + (size_t)y * a->stride;
        for (size_t j = 0; j < row; j++) {
            int64_t acc = 0;
            const unsigned char *s = src + (size_t)a->first[y] * row + j;
            for (int i = 0; i < a->count[y]; i++) acc += (int64_t)k[i] * s[(size_t)i * row];
            dst[(size_t)y * row + j] = clamp_round(acc);
        }
    }
}

static fipsc_status resize_nearest(const fipsc_image *in, int width, int height, fipsc_image *out,
                                   fipsc_error *err)
{
    fipsc_status st = fipsc_image_alloc(out, width, height, in->channels, err);
    if (st) return st;
    int c = in->channels;
    for (int y = 0; y < height; y++) {
        int sy = (int)floor((y + 0.5) * in->height / height);
        if (sy >= in->height) sy = in->height - 1;
        for (int x = 0; x < width; x++) {
            int sx = (int)floor((x + 0.5) * in->width / width);
            if (sx >= in->width) sx = in->width - 1;
            memcpy(out->pixels + ((size_t)y * width + x) * c,
                   in->pixels + ((size_t)sy * in->width + sx) * c, (size_t)c);
        }
    }
    return FIPSC_OK;
}

fipsc_status fipsc_image_resize(const fipsc_image *in, int width, int height, fipsc_resample filter,
                                fipsc_image *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    if ((unsigned)filter > FIPSC_RESAMPLE_HAMMING)
        return fipsc_fail(err, FIPSC_ERR_ARG, "unknown resampling filter %d", (int)filter);
    if (width <= 0 || height <= 0 || width > FIPSC_IMAGE_MAX_SIDE || height > FIPSC_IMAGE_MAX_SIDE)
        return fipsc_fail(err, FIPSC_ERR_ARG, "cannot resize to %d x %d", width, height);
    if (filter == FIPSC_RESAMPLE_NEAREST) return resize_nearest(in, width, height, out, err);

    filter_def f = filter_for(filter);
    int c = in->channels;
    fipsc_image tmp = {0};
    const fipsc_image *cur = in;
    fipsc_status st = FIPSC_OK;
    if (width != in->width) {
        axis_weights a;
        if ((st = axis_compute(in->width, width, f, &a, err))) return st;
        if ((st = fipsc_image_alloc(&tmp, width, in->height, c, err))) {
            axis_free(&a);
            return st;
        }
        pass_horizontal(in->pixels, in->width, in->height, c, &a, tmp.pixels, width);
        axis_free(&a);
        cur = &tmp;
    }
    if (height != in->height) {
        axis_weights a;
        if ((st = axis_compute(in->height, height, f, &a, err))) goto done;
        if ((st = fipsc_image_alloc(out, width, height, c, err))) {
            axis_free(&a);
            goto done;
        }
        pass_vertical(cur->pixels, width, c, &a, out->pixels, height);
        axis_free(&a);
    } else if (cur == &tmp) {
        *out = tmp;
        tmp.pixels = NULL;
    } else {
        if ((st = fipsc_image_alloc(out, width, height, c, err))) goto done;
        memcpy(out->pixels, in->pixels, (size_t)width * height * c);
    }
done:
    fipsc_image_free(&tmp);
    return st;
}

/* ------------------------------------------------------------------ centre crop */

/* Python's floor division for the (possibly negative) offsets. */
static int floor_div2(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

fipsc_status fipsc_image_center_crop(const fipsc_image *in, int width, int height,
                                     fipsc_image *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "cannot crop to %d x %d", width, height);
    fipsc_status st = fipsc_image_alloc(out, width, height, in->channels, err);
    if (st) return st;
    /* transformers: top = (H - h) // 2 and left = (W - w) // 2 (floor division). When the crop
     * is larger than the image along an axis, the image is first centred on a zero canvas with
     * ceil((h - H) / 2) rows above it, and that padding equals -top; either way output row y
     * shows image row y + top, and rows outside the image are zero. */
    int top = floor_div2(in->height - height), left = floor_div2(in->width - width);
    int c = in->channels;
    for (int y = 0; y < height; y++) {
        int sy = y + top;
        if (sy < 0 || sy >= in->height) continue;
        for (int x = 0; x < width; x++) {
            int sx = x + left;
            if (sx < 0 || sx >= in->width) continue;
            memcpy(out->pixels + ((size_t)y * width + x) * c,
                   in->pixels + ((size_t)sy * in->width + sx) * c, (size_t)c);
        }
    }
    return FIPSC_OK;
}
