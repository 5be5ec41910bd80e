/* Image decoding: PNG (libpng), JPEG (libjpeg), PGM/PPM (by hand). See src/formats/image.h.
 *
 * Both libraries report errors by longjmp; each decoder keeps everything it must release in a
 * struct reached through a pointer that does not change across setjmp, so nothing is clobbered. */
#include "formats/image.h"

#include <ctype.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

void fipsc_image_free(fipsc_image *img)
{
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

fipsc_status fipsc_image_alloc(fipsc_image *img, int width, int height, int channels,
                               fipsc_error *err)
{
    memset(img, 0, sizeof *img);
    if (width <= 0 || height <= 0 || width > FIPSC_IMAGE_MAX_SIDE || height > FIPSC_IMAGE_MAX_SIDE ||
        (long long)width * height > FIPSC_IMAGE_MAX_PIXELS || channels < 1 || channels > 4)
        return fipsc_fail(err, FIPSC_ERR_ARG, "image of %d x %d pixels with %d channels is out of range",
                          width, height, channels);
    img->pixels = calloc((size_t)width * height * channels, 1);
    if (!img->pixels)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for a %d x %d image", width, height);
    img->width = width;
    img->height = height;
    img->channels = channels;
    return FIPSC_OK;
}

/* Checks a size read from a file before anything is allocated for it. */
static fipsc_status check_size(const char *name, long long width, long long height, fipsc_error *err)
{
    if (width <= 0 || height <= 0)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: image has no pixels (%lld x %lld)", name,
                          width, height);
    if (width > FIPSC_IMAGE_MAX_SIDE || height > FIPSC_IMAGE_MAX_SIDE ||
        width * height > FIPSC_IMAGE_MAX_PIXELS)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: image of %lld x %lld pixels is larger than fipsc accepts (%d per side, "
                          "%lld pixels)",
                          name, width, height, FIPSC_IMAGE_MAX_SIDE, FIPSC_IMAGE_MAX_PIXELS);
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ PNG */

typedef struct png_job {
    const unsigned char *bytes;
    size_t size, offset;
    const char *name;
    char message[256];
    png_structp png;
    png_infop info;
    fipsc_image img;
    png_bytep *rows;
} png_job;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_job *job = png_get_error_ptr(png);
    snprintf(job->message, sizeof job->message, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* warnings (e.g. a bad ancillary chunk) do not stop decoding */
}

static void png_read_memory(png_structp png, png_bytep out, png_size_t n)
{
    png_job *job = png_get_io_ptr(png);
    if (n > job->size - job->offset) png_error(png, "file is truncated");
    memcpy(out, job->bytes + job->offset, n);
    job->offset += n;
}

static fipsc_status decode_png(const unsigned char *bytes, size_t size, const char *name,
                               fipsc_image *out, fipsc_error *err)
{
    png_job *job = calloc(1, sizeof *job);
    if (!job) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", name);
    job->bytes = bytes;
    job->size = size;
    job->name = name;
    fipsc_status st = FIPSC_OK;
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
    if (job->png) job->info = png_create_info_struct(job->png);
    if (!job->png || !job->info) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    if (setjmp(png_jmpbuf(job->png))) {
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: corrupt PNG: %s", name, job->message);
        goto done;
    }
    png_set_read_fn(job->png, job, png_read_memory);
    png_read_info(job->png, job->info);
    png_uint_32 width = png_get_image_width(job->png, job->info);
    png_uint_32 height = png_get_image_height(job->png, job->info);
    if ((st = check_size(name, width, height, err))) goto done;
    /* Everything to 8-bit gray, gray+alpha, RGB or RGBA; no gamma handling (as PIL). */
    png_set_expand(job->png); /* palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha */
    png_set_strip_16(job->png);
    if (png_get_interlace_type(job->png, job->info) != PNG_INTERLACE_NONE)
        png_set_interlace_handling(job->png);
    png_read_update_info(job->png, job->info);
    int channels = png_get_channels(job->png, job->info);
    if (png_get_bit_depth(job->png, job->info) != 8 || channels < 1 || channels > 4) {
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: PNG layout not supported (%d channels)",
                        name, channels);
        goto done;
    }
    if ((st = fipsc_image_alloc(&job->img, (int)width, (int)height, channels, err))) goto done;
    job->rows = malloc(height * sizeof *job->rows);
    if (!job->rows) {
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    for (png_uint_32 y = 0; y < height; y++)
        job->rows[y] = job->img.pixels + (size_t)y * width * channels;
    png_read_image(job->png, job->rows);
    png_read_end(job->png, NULL);
    *out = job->img;
    job->img.pixels = NULL;
done:
    png_destroy_read_struct(job->png ? &job->png : NULL, job->info ? &job->info : NULL, NULL);
    free(job->rows);
    fipsc_image_free(&job->img);
    free(job);
    return st;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct jpeg_job {
    struct jpeg_error_mgr pub; /* first: libjpeg hands back this pointer */
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    struct jpeg_decompress_struct cinfo;
    bool created;
    fipsc_image img;
} jpeg_job;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_job *job = (jpeg_job *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, job->message);
    longjmp(job->jump, 1);
}

/* Warnings about recoverable damage (extraneous bytes, a bad Huffman code) are ignored, as PIL
 * does; a file that ends early is an error (PIL refuses truncated images by default too): its
 * missing rows would be invented. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

static fipsc_status decode_jpeg(const unsigned char *bytes, size_t size, const char *name,
                                fipsc_image *out, fipsc_error *err)
{
    jpeg_job *job = calloc(1, sizeof *job);
    if (!job) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", name);
    fipsc_status st = FIPSC_OK;
    job->cinfo.err = jpeg_std_error(&job->pub);
    job->pub.error_exit = jpeg_on_error;
    job->pub.emit_message = jpeg_on_message;
    if (setjmp(job->jump)) {
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: corrupt JPEG: %s", name, job->message);
        goto done;
    }
    jpeg_create_decompress(&job->cinfo);
    job->created = true;
    jpeg_mem_src(&job->cinfo, bytes, (unsigned long)size);
    jpeg_read_header(&job->cinfo, TRUE);
    if (job->cinfo.jpeg_color_space == JCS_CMYK || job->cinfo.jpeg_color_space == JCS_YCCK) {
        st = fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: CMYK JPEG images are not supported", name);
        goto done;
    }
    job->cinfo.out_color_space = job->cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if ((st = check_size(name, job->cinfo.image_width, job->cinfo.image_height, err))) goto done;
    jpeg_start_decompress(&job->cinfo);
    int channels = job->cinfo.output_components;
    if ((st = fipsc_image_alloc(&job->img, (int)job->cinfo.output_width,
                                (int)job->cinfo.output_height, channels, err)))
        goto done;
    while (job->cinfo.output_scanline < job->cinfo.output_height) {
        JSAMPROW row = job->img.pixels + (size_t)job->cinfo.output_scanline * job->img.width * channels;
        jpeg_read_scanlines(&job->cinfo, &row, 1);
    }
    jpeg_finish_decompress(&job->cinfo);
    *out = job->img;
    job->img.pixels = NULL;
done:
    if (job->created) jpeg_destroy_decompress(&job->cinfo);
    fipsc_image_free(&job->img);
    free(job);
    return st;
}

/* ------------------------------------------------------------------ PGM / PPM (netpbm) */

typedef struct pnm_cursor {
    const unsigned char *p, *end;
} pnm_cursor;

/* Skips whitespace and '#' comments (to end of line) between header fields. */
static void pnm_skip_space(pnm_cursor *c)
{
    while (c->p < c->end) {
        if (*c->p == '#') {
            while (c->p < c->end && *c->p != '\n' && *c->p != '\r') c->p++;
        } else if (isspace(*c->p)) {
            c->p++;
        } else {
            break;
        }
    }
}

/* A decimal field; false when absent or larger than limit. */
static bool pnm_number(pnm_cursor *c, long long limit, long long *out)
{
    pnm_skip_space(c);
    if (c->p >= c->end || !isdigit(*c->p)) return false;
    long long v = 0;
    while (c->p < c->end && isdigit(*c->p)) {
        v = v * 10 + (*c->p - '0');
        if (v > limit) return false;
        c->p++;
    }
    *out = v;
    return true;
}

static fipsc_status decode_pnm(const unsigned char *bytes, size_t size, const char *name,
                               fipsc_image *out, fipsc_error *err)
{
    char kind = (char)bytes[1]; /* '2' '3' ASCII, '5' '6' binary; '2' '5' gray, '3' '6' RGB */
    int channels = (kind == '2' || kind == '5') ? 1 : 3;
    bool binary = kind == '5' || kind == '6';
    pnm_cursor c = {bytes + 2, bytes + size};
    long long width, height, maxval;
    if (!pnm_number(&c, FIPSC_IMAGE_MAX_SIDE + 1LL, &width) ||
        !pnm_number(&c, FIPSC_IMAGE_MAX_SIDE + 1LL, &height) || !pnm_number(&c, 65535, &maxval))
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: corrupt P%c header (expected width, height and maxval)", name, kind);
    fipsc_status st = check_size(name, width, height, err);
    if (st) return st;
    if (maxval < 1)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: P%c maxval must be in 1..65535, got %lld",
                          name, kind, maxval);
    fipsc_image img;
    if ((st = fipsc_image_alloc(&img, (int)width, (int)height, channels, err))) return st;
    size_t n = (size_t)width * height * channels;
    int sample_bytes = maxval > 255 ? 2 : 1;
    if (binary) {
        /* exactly one whitespace byte separates the header from the samples */
        if (c.p >= c.end || !isspace(*c.p)) {
            fipsc_image_free(&img);
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: corrupt P%c header", name, kind);
        }
        c.p++;
        if ((size_t)(c.end - c.p) < n * sample_bytes) {
            fipsc_image_free(&img);
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: truncated: %zu bytes of samples expected, %zu present", name,
                              n * sample_bytes, (size_t)(c.end - c.p));
        }
    }
    for (size_t i = 0; i < n; i++) {
        long long v;
        if (binary) {
            v = sample_bytes == 2 ? (c.p[0] << 8 | c.p[1]) : c.p[0]; /* 16-bit samples are big-endian */
            c.p += sample_bytes;
        } else if (!pnm_number(&c, 65535, &v)) {
            fipsc_image_free(&img);
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: truncated or corrupt sample %zu of %zu",
                              name, i, n);
        }
        if (v > maxval) {
            fipsc_image_free(&img);
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: sample %zu is %lld, above maxval %lld",
                              name, i, v, maxval);
        }
        img.pixels[i] = (unsigned char)(maxval == 255 ? v : (v * 255 + maxval / 2) / maxval);
    }
    *out = img;
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ dispatch */

fipsc_status fipsc_image_decode(const void *data, size_t size, const char *name,
                                fipsc_image *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    const unsigned char *b = data;
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(b, png_magic, 8) == 0) return decode_png(b, size, name, out, err);
    if (size >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return decode_jpeg(b, size, name, out, err);
    if (size >= 3 && b[0] == 'P' && strchr("2356", b[1]) && b[1] && isspace(b[2]))
        return decode_pnm(b, size, name, out, err);
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "%s: not a PNG, JPEG, PGM (P2/P5) or PPM (P3/P6) image", name);
}

fipsc_status fipsc_image_read(const char *path, fipsc_image *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    fipsc_mapped_file *mf;
    fipsc_status st = fipsc_map_file(path, &mf, err);
    if (st) return st;
    st = fipsc_image_decode(mf->data, mf->size, path, out, err);
    fipsc_unmap_file(mf);
    return st;
}
