/* Images: decoding PNG / JPEG / PGM / PPM files written here (with libpng and libjpeg), channel
 * conversion, PIL-compatible resizing (hand-computed values and an independent double-precision
 * reference), transformers' centre crop (with padding), preprocessor_config.json parsing and the
 * full preprocessing pipeline, and corrupt input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>

#include "core/file.h"
#include "formats/image.h"
#include "testutil.h"

static const char *tmp;

static const char *path_of(const char *name)
{
    static char buf[4][4200];
    static int next;
    char *p = buf[next++ % 4];
    test_pathf(p, 4200, "%s/%s", tmp, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, n, fp) != n || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    char *text;
    fipsc_error err;
    if (fipsc_read_file(path, &text, n, &err)) {
        fprintf(stderr, "%s\n", err.message);
        exit(2);
    }
    return (unsigned char *)text;
}

/* A PNG of color_type / bit_depth from 8- or 16-bit samples (rows of width·channels values). */
static void write_png(const char *path, int w, int h, int color_type, int bit_depth, const uint16_t *samples,
                      int interlace, const png_color *palette, int n_palette, const png_byte *trns, int n_trns)
{
    FILE *fp = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!fp || !png || !info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "libpng write failed for %s\n", path);
        exit(2);
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, n_palette);
    if (trns) png_set_tRNS(png, info, trns, n_trns, NULL);
    png_write_info(png, info);
    if (bit_depth < 8) png_set_packing(png);
    if (bit_depth == 16) png_set_swap(png); /* our samples are host (little-endian) order */
    int channels = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
                   : color_type == PNG_COLOR_TYPE_GRAY_ALPHA                               ? 2
                   : color_type == PNG_COLOR_TYPE_RGB                                      ? 3
                                                                                            : 4;
    int bytes = bit_depth == 16 ? 2 : 1;
    png_bytep *rows = malloc((size_t)h * sizeof *rows);
    unsigned char *buf = malloc((size_t)w * h * channels * bytes);
    for (int i = 0; i < w * h * channels; i++) {
        if (bytes == 2) memcpy(buf + 2 * i, &samples[i], 2);
        else buf[i] = (unsigned char)samples[i];
    }
    for (int y = 0; y < h; y++) rows[y] = buf + (size_t)y * w * channels * bytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(fp);
    free(rows);
    free(buf);
}

static void write_jpeg(const char *path, int w, int h, int channels, const unsigned char *px)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    FILE *fp = fopen(path, "wb");
    if (!fp) exit(2);
    jpeg_stdio_dest(&c, fp);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = channels;
    c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    for (int i = 0; i < c.num_components; i++) /* no chroma subsampling: only rounding remains */
        c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * channels);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(fp);
}

/* ------------------------------------------------------------------ decoding */

static void check_png(void)
{
    fipsc_error err = {0};
    fipsc_image img;
    uint16_t s[4 * 3 * 4];
    /* 8-bit gray, 3 x 2 */
    for (int i = 0; i < 6; i++) s[i] = (uint16_t)(i * 40 + 5);
    write_png(path_of("gray.png"), 3, 2, PNG_COLOR_TYPE_GRAY, 8, s, 0, NULL, 0, NULL, 0);
    CHECK_OK(fipsc_image_read(path_of("gray.png"), &img, &err), &err);
    CHECK(img.width == 3 && img.height == 2 && img.channels == 1);
    for (int i = 0; i < 6 && img.pixels; i++) CHECK(img.pixels[i] == i * 40 + 5);
    fipsc_image_free(&img);

    /* RGB, interlaced (Adam7), 4 x 3 */
    for (int i = 0; i < 36; i++) s[i] = (uint16_t)((i * 37) % 256);
    write_png(path_of("rgb.png"), 4, 3, PNG_COLOR_TYPE_RGB, 8, s, 1, NULL, 0, NULL, 0);
    CHECK_OK(fipsc_image_read(path_of("rgb.png"), &img, &err), &err);
    CHECK(img.width == 4 && img.height == 3 && img.channels == 3);
    for (int i = 0; i < 36 && img.pixels; i++) CHECK(img.pixels[i] == (i * 37) % 256);
    fipsc_image_free(&img);

    /* RGBA keeps its alpha channel */
    for (int i = 0; i < 16; i++) s[i] = (uint16_t)(i * 16);
    write_png(path_of("rgba.png"), 2, 2, PNG_COLOR_TYPE_RGB_ALPHA, 8, s, 0, NULL, 0, NULL, 0);
    CHECK_OK(fipsc_image_read(path_of("rgba.png"), &img, &err), &err);
    CHECK(img.channels == 4);
    for (int i = 0; i < 16 && img.pixels; i++) CHECK(img.pixels[i] == i * 16);
    fipsc_image_free(&img);

    /* 16-bit gray: the high byte */
    uint16_t s16[4] = {0x0000, 0x12ff, 0x8001, 0xffff};
    write_png(path_of("gray16.png"), 2, 2, PNG_COLOR_TYPE_GRAY, 16, s16, 0, NULL, 0, NULL, 0);
    CHECK_OK(fipsc_image_read(path_of("gray16.png"), &img, &err), &err);
    CHECK(img.channels == 1 && img.pixels && img.pixels[0] == 0x00 && img.pixels[1] == 0x12 &&
          img.pixels[2] == 0x80 && img.pixels[3] == 0xff);
    fipsc_image_free(&img);

    /* 1-bit gray expands to 0 / 255 */
    uint16_t bits[5] = {0, 1, 1, 0, 1};
    write_png(path_of("gray1.png"), 5, 1, PNG_COLOR_TYPE_GRAY, 1, bits, 0, NULL, 0, NULL, 0);
    CHECK_OK(fipsc_image_read(path_of("gray1.png"), &img, &err), &err);
    CHECK(img.width == 5 && img.channels == 1 && img.pixels);
    for (int i = 0; i < 5 && img.pixels; i++) CHECK(img.pixels[i] == (bits[i] ? 255 : 0));
    fipsc_image_free(&img);

    /* palette with a transparent entry: RGB + alpha */
    png_color pal[3] = {{10, 20, 30}, {200, 100, 0}, {1, 2, 3}};
    png_byte trns[1] = {0};
    uint16_t idx[4] = {0, 1, 2, 1};
    write_png(path_of("palette.png"), 2, 2, PNG_COLOR_TYPE_PALETTE, 8, idx, 0, pal, 3, trns, 1);
    CHECK_OK(fipsc_image_read(path_of("palette.png"), &img, &err), &err);
    CHECK(img.channels == 4);
    if (img.channels == 4) {
        const unsigned char want[16] = {10, 20, 30, 0, 200, 100, 0, 255, 1, 2, 3, 255, 200, 100, 0, 255};
        CHECK(memcmp(img.pixels, want, 16) == 0);
    }
    fipsc_image_free(&img);

    /* corrupt: truncated, a flipped data byte (CRC), garbage after the signature */
    size_t n;
    unsigned char *bytes = read_bytes(path_of("rgb.png"), &n);
    write_bytes(path_of("trunc.png"), bytes, n / 2);
    CHECK_FAILS(fipsc_image_read(path_of("trunc.png"), &img, &err), FIPSC_ERR_FORMAT, "corrupt PNG", &err);
    CHECK(strstr(err.message, "trunc.png") != NULL && img.pixels == NULL);
    bytes[n - 20] ^= 0x55; /* inside IDAT */
    write_bytes(path_of("flip.png"), bytes, n);
    CHECK_FAILS(fipsc_image_read(path_of("flip.png"), &img, &err), FIPSC_ERR_FORMAT, "corrupt PNG", &err);
    memset(bytes + 8, 0xee, 16);
    write_bytes(path_of("garbage.png"), bytes, n);
    CHECK_FAILS(fipsc_image_read(path_of("garbage.png"), &img, &err), FIPSC_ERR_FORMAT, "corrupt PNG", &err);
    free(bytes);
}

static void check_jpeg(void)
{
    fipsc_error err = {0};
    fipsc_image img;
    /* a smooth RGB gradient at quality 100 decodes close to its source */
    enum { W = 16, H = 8 };
    unsigned char rgb[W * H * 3], gray[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            rgb[(y * W + x) * 3 + 0] = (unsigned char)(x * 15);
            rgb[(y * W + x) * 3 + 1] = (unsigned char)(y * 30);
            rgb[(y * W + x) * 3 + 2] = 128;
            gray[y * W + x] = (unsigned char)(x * 8 + y * 10);
        }
    write_jpeg(path_of("rgb.jpg"), W, H, 3, rgb);
    CHECK_OK(fipsc_image_read(path_of("rgb.jpg"), &img, &err), &err);
    CHECK(img.width == W && img.height == H && img.channels == 3);
    int worst = 0;
    for (int i = 0; i < W * H * 3 && img.pixels; i++) worst = abs(img.pixels[i] - rgb[i]) > worst ? abs(img.pixels[i] - rgb[i]) : worst;
    CHECK_MSG(worst <= 6, "RGB JPEG off by %d", worst);
    fipsc_image_free(&img);
    write_jpeg(path_of("gray.jpg"), W, H, 1, gray);
    CHECK_OK(fipsc_image_read(path_of("gray.jpg"), &img, &err), &err);
    CHECK(img.width == W && img.height == H && img.channels == 1);
    worst = 0;
    for (int i = 0; i < W * H && img.pixels; i++) worst = abs(img.pixels[i] - gray[i]) > worst ? abs(img.pixels[i] - gray[i]) : worst;
    CHECK_MSG(worst <= 2, "gray JPEG off by %d", worst);
    fipsc_image_free(&img);

    size_t n;
    unsigned char *bytes = read_bytes(path_of("rgb.jpg"), &n);
    write_bytes(path_of("trunc.jpg"), bytes, n / 2);
    CHECK_FAILS(fipsc_image_read(path_of("trunc.jpg"), &img, &err), FIPSC_ERR_FORMAT, "Premature end", &err);
    write_bytes(path_of("header.jpg"), bytes, 40);
    CHECK_FAILS(fipsc_image_read(path_of("header.jpg"), &img, &err), FIPSC_ERR_FORMAT, "corrupt JPEG", &err);
    free(bytes);
}

static void check_pnm(void)
{
    fipsc_error err = {0};
    fipsc_image img;
    /* binary PGM with a comment */
    const unsigned char p5[] = "P5\n# a comment\n3 1\n255\n\x01\x80\xff";
    write_bytes(path_of("a.pgm"), p5, sizeof p5 - 1);
    CHECK_OK(fipsc_image_read(path_of("a.pgm"), &img, &err), &err);
    CHECK(img.width == 3 && img.height == 1 && img.channels == 1 && img.pixels && img.pixels[0] == 1 &&
          img.pixels[1] == 0x80 && img.pixels[2] == 0xff);
    fipsc_image_free(&img);
    /* binary PPM */
    const unsigned char p6[] = "P6 2 1 255 \x0a\x0b\x0c\xfa\xfb\xfc";
    write_bytes(path_of("a.ppm"), p6, sizeof p6 - 1);
    CHECK_OK(fipsc_image_read(path_of("a.ppm"), &img, &err), &err);
    CHECK(img.width == 2 && img.channels == 3 && img.pixels && img.pixels[0] == 10 && img.pixels[5] == 0xfc);
    fipsc_image_free(&img);
    /* ASCII PPM with maxval 1000: rescaled with rounding, 500 -> 128 (127.5 rounds up) */
    const char *p3 = "P3\n1 2\n1000\n0 500 1000\n1 2 999\n";
    write_bytes(path_of("b.ppm"), p3, strlen(p3));
    CHECK_OK(fipsc_image_read(path_of("b.ppm"), &img, &err), &err);
    if (img.pixels) {
        const unsigned char want[6] = {0, 128, 255, 0, 1, 255};
        CHECK(img.width == 1 && img.height == 2 && memcmp(img.pixels, want, 6) == 0);
    }
    fipsc_image_free(&img);
    /* 16-bit binary PGM (big-endian samples) */
    const unsigned char p5_16[] = "P5 2 1 65535\n\x80\x00\xff\xff";
    write_bytes(path_of("c.pgm"), p5_16, sizeof p5_16 - 1);
    CHECK_OK(fipsc_image_read(path_of("c.pgm"), &img, &err), &err);
    CHECK(img.pixels && img.pixels[0] == 128 && img.pixels[1] == 255);
    fipsc_image_free(&img);

    const unsigned char short_p6[] = "P6 2 2 255\n\x01\x02\x03\x04\x05";
    write_bytes(path_of("short.ppm"), short_p6, sizeof short_p6 - 1);
    CHECK_FAILS(fipsc_image_read(path_of("short.ppm"), &img, &err), FIPSC_ERR_FORMAT, "truncated", &err);
    const char *bad_sample = "P2 2 1 100 50 101\n";
    write_bytes(path_of("bad.pgm"), bad_sample, strlen(bad_sample));
    CHECK_FAILS(fipsc_image_read(path_of("bad.pgm"), &img, &err), FIPSC_ERR_FORMAT, "above maxval", &err);
    const char *huge = "P5 100000 100000 255\n";
    write_bytes(path_of("huge.pgm"), huge, strlen(huge));
    CHECK_FAILS(fipsc_image_read(path_of("huge.pgm"), &img, &err), FIPSC_ERR_FORMAT, "corrupt P5 header", &err);
    const char *big = "P5 30000 30000 255\n";
    write_bytes(path_of("big.pgm"), big, strlen(big));
    CHECK_FAILS(fipsc_image_read(path_of("big.pgm"), &img, &err), FIPSC_ERR_UNSUPPORTED, "larger than fipsc accepts", &err);
    const char *zero = "P5 0 3 255\n";
    write_bytes(path_of("zero.pgm"), zero, strlen(zero));
    CHECK_FAILS(fipsc_image_read(path_of("zero.pgm"), &img, &err), FIPSC_ERR_FORMAT, "no pixels", &err);
    write_bytes(path_of("empty.png"), "", 0);
    CHECK_FAILS(fipsc_image_read(path_of("empty.png"), &img, &err), FIPSC_ERR_UNSUPPORTED, "not a PNG, JPEG", &err);
    CHECK_FAILS(fipsc_image_read(path_of("does-not-exist.png"), &img, &err), FIPSC_ERR_IO, "does-not-exist.png", &err);
}

/* ------------------------------------------------------------------ pixel operations */

static void check_convert(void)
{
    fipsc_error err = {0};
    fipsc_image rgba, out;
    CHECK_OK(fipsc_image_alloc(&rgba, 4, 1, 4, &err), &err);
    const unsigned char px[16] = {255, 0, 0, 9, 0, 255, 0, 9, 0, 0, 255, 9, 100, 100, 100, 0};
    memcpy(rgba.pixels, px, 16);
    CHECK_OK(fipsc_image_convert(&rgba, 1, &out, &err), &err);
    /* PIL: L("red") = 76, L("lime") = 150, L("blue") = 29; gray stays gray; alpha ignored */
    CHECK(out.pixels[0] == 76 && out.pixels[1] == 150 && out.pixels[2] == 29 && out.pixels[3] == 100);
    fipsc_image_free(&out);
    CHECK_OK(fipsc_image_convert(&rgba, 3, &out, &err), &err);
    CHECK(out.channels == 3 && memcmp(out.pixels, "\xff\x00\x00\x00\xff\x00", 6) == 0 && out.pixels[9] == 100);
    fipsc_image_free(&out);
    fipsc_image_free(&rgba);
    fipsc_image ga;
    CHECK_OK(fipsc_image_alloc(&ga, 2, 1, 2, &err), &err);
    memcpy(ga.pixels, "\x11\x80\x22\x00", 4);
    CHECK_OK(fipsc_image_convert(&ga, 3, &out, &err), &err);
    CHECK(memcmp(out.pixels, "\x11\x11\x11\x22\x22\x22", 6) == 0);
    fipsc_image_free(&out);
    CHECK_FAILS(fipsc_image_convert(&ga, 2, &out, &err), FIPSC_ERR_ARG, "2 channels", &err);
    fipsc_image_free(&ga);
}

/* An independent reference for PIL's resampling: double weights, no fixed point, the same
 * window and rounding per pass. */
static double ref_kernel(fipsc_resample f, double x)
{
    if (f == FIPSC_RESAMPLE_BOX) return x > -0.5 && x <= 0.5 ? 1 : 0;
    x = fabs(x);
    switch (f) {
    case FIPSC_RESAMPLE_BILINEAR: return x < 1 ? 1 - x : 0;
    case FIPSC_RESAMPLE_BICUBIC:
        return x < 1 ? (1.5 * x - 2.5) * x * x + 1 : x < 2 ? ((-0.5 * x + 2.5) * x - 4) * x + 2 : 0;
    case FIPSC_RESAMPLE_HAMMING: return x == 0 ? 1 : x >= 1 ? 0 : sin(M_PI * x) / (M_PI * x) * (0.54 + 0.46 * cos(M_PI * x));
    case FIPSC_RESAMPLE_LANCZOS: {
        if (x >= 3) return 0;
        if (x == 0) return 1;
        return sin(M_PI * x) / (M_PI * x) * sin(M_PI * x / 3) / (M_PI * x / 3);
    }
    default: return 0;
    }
}

static double ref_support(fipsc_resample f)
{
    return f == FIPSC_RESAMPLE_BOX ? 0.5 : f == FIPSC_RESAMPLE_BICUBIC ? 2 : f == FIPSC_RESAMPLE_LANCZOS ? 3 : 1;
}

/* Resamples a line of `in` samples (stride `step`) to `out` samples. */
static void ref_line(const double *src, int in, double *dst, int out, fipsc_resample f)
{
    double scale = (double)in / out, fs = scale > 1 ? scale : 1, support = ref_support(f) * fs;
    for (int x = 0; x < out; x++) {
        double c = (x + 0.5) * scale, total = 0, acc = 0;
        int lo = (int)floor(c - support + 0.5), hi = (int)floor(c + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        for (int i = lo; i < hi; i++) {
            double w = ref_kernel(f, (i - c + 0.5) / fs);
            total += w;
            acc += w * src[i];
        }
        double v = floor(acc / total + 0.5);
        dst[x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
}

static void check_resize(void)
{
    fipsc_error err = {0};
    fipsc_image a, out;
    /* hand-computed: [0, 255] -> 4 bilinear = [0, 64, 191, 255] (PIL gives the same) */
    CHECK_OK(fipsc_image_alloc(&a, 2, 1, 1, &err), &err);
    a.pixels[1] = 255;
    CHECK_OK(fipsc_image_resize(&a, 4, 1, FIPSC_RESAMPLE_BILINEAR, &out, &err), &err);
    CHECK(out.width == 4 && memcmp(out.pixels, "\x00\x40\xbf\xff", 4) == 0);
    fipsc_image_free(&out);
    fipsc_image_free(&a);
    /* [0, 100, 200, 255] -> 2 bilinear: the triangle widens to 2 pixels:
     *   (0·.75 + 100·.75 + 200·.25) / 1.75 = 71.4, (100·.25 + 200·.75 + 255·.75) / 1.75 = 209.3 */
    CHECK_OK(fipsc_image_alloc(&a, 1, 4, 1, &err), &err);
    memcpy(a.pixels, "\x00\x64\xc8\xff", 4);
    CHECK_OK(fipsc_image_resize(&a, 1, 2, FIPSC_RESAMPLE_BILINEAR, &out, &err), &err);
    CHECK(out.height == 2 && out.pixels[0] == 71 && out.pixels[1] == 209);
    fipsc_image_free(&out);
    fipsc_image_free(&a);

    /* random images against the reference, every filter, up and down, non-square, RGB */
    unsigned seed = 12345;
    const int sizes[][4] = {{7, 5, 13, 9}, {20, 11, 6, 4}, {9, 9, 9, 4}, {10, 3, 10, 8}, {28, 28, 28, 28}, {5, 8, 17, 3}};
    const fipsc_resample filters[] = {FIPSC_RESAMPLE_BILINEAR, FIPSC_RESAMPLE_BICUBIC, FIPSC_RESAMPLE_BOX,
                                      FIPSC_RESAMPLE_HAMMING, FIPSC_RESAMPLE_LANCZOS};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (size_t fi = 0; fi < sizeof filters / sizeof filters[0]; fi++) {
            int w = sizes[s][0], h = sizes[s][1], ow = sizes[s][2], oh = sizes[s][3], C = 3;
            CHECK_OK(fipsc_image_alloc(&a, w, h, C, &err), &err);
            for (int i = 0; i < w * h * C; i++) a.pixels[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 24);
            CHECK_OK(fipsc_image_resize(&a, ow, oh, filters[fi], &out, &err), &err);
            /* reference: horizontal pass (when the width changes), then vertical */
            double *mid = malloc(sizeof(double) * (size_t)ow * h * C), *line = malloc(sizeof(double) * 64);
            double *res = malloc(sizeof(double) * 64);
            for (int c = 0; c < C; c++)
                for (int y = 0; y < h; y++) {
                    for (int x = 0; x < w; x++) line[x] = a.pixels[(y * w + x) * C + c];
                    if (ow != w) ref_line(line, w, res, ow, filters[fi]);
                    else memcpy(res, line, sizeof(double) * (size_t)w);
                    for (int x = 0; x < ow; x++) mid[(y * ow + x) * C + c] = res[x];
                }
            int worst = 0, exact = 1;
            for (int c = 0; c < C; c++)
                for (int x = 0; x < ow; x++) {
                    for (int y = 0; y < h; y++) line[y] = mid[(y * ow + x) * C + c];
                    if (oh != h) ref_line(line, h, res, oh, filters[fi]);
                    else memcpy(res, line, sizeof(double) * (size_t)h);
                    for (int y = 0; y < oh; y++) {
                        int diff = abs((int)res[y] - out.pixels[(y * ow + x) * C + c]);
                        if (diff > worst) worst = diff;
                        exact &= diff == 0;
                    }
                }
            /* 22-bit weights against double weights can flip a rounding at .5: at most 1 */
            CHECK_MSG(worst <= 1, "%s %dx%d -> %dx%d off by %d", fipsc_resample_name(filters[fi]), w, h, ow, oh, worst);
            if (w == ow && h == oh) CHECK(exact && memcmp(out.pixels, a.pixels, (size_t)w * h * C) == 0);
            free(mid), free(line), free(res);
            fipsc_image_free(&out);
            fipsc_image_free(&a);
        }

    /* nearest: source pixel floor((x + 0.5)·in/out) */
    CHECK_OK(fipsc_image_alloc(&a, 5, 1, 1, &err), &err);
    memcpy(a.pixels, "\x0a\x14\x1e\x28\x32", 5);
    CHECK_OK(fipsc_image_resize(&a, 2, 1, FIPSC_RESAMPLE_NEAREST, &out, &err), &err);
    CHECK(out.pixels[0] == 0x14 && out.pixels[1] == 0x28); /* x = 1.25 -> 1, 3.75 -> 3 */
    fipsc_image_free(&out);
    CHECK_OK(fipsc_image_resize(&a, 7, 2, FIPSC_RESAMPLE_NEAREST, &out, &err), &err);
    const unsigned char want7[7] = {0x0a, 0x14, 0x14, 0x1e, 0x28, 0x28, 0x32}; /* floor((x+.5)·5/7) */
    CHECK(memcmp(out.pixels, want7, 7) == 0 && memcmp(out.pixels + 7, want7, 7) == 0);
    fipsc_image_free(&out);
    CHECK_FAILS(fipsc_image_resize(&a, 0, 3, FIPSC_RESAMPLE_BILINEAR, &out, &err), FIPSC_ERR_ARG, "resize", &err);
    CHECK_FAILS(fipsc_image_resize(&a, 3, 3, (fipsc_resample)9, &out, &err), FIPSC_ERR_ARG, "filter", &err);
    fipsc_image_free(&a);
}

static void check_crop(void)
{
    fipsc_error err = {0};
    fipsc_image a, out;
    CHECK_OK(fipsc_image_alloc(&a, 5, 4, 1, &err), &err);
    for (int i = 0; i < 20; i++) a.pixels[i] = (unsigned char)(i + 1);
    /* 5 x 4 -> 3 x 2: top = (4 - 2) // 2 = 1, left = (5 - 3) // 2 = 1 */
    CHECK_OK(fipsc_image_center_crop(&a, 3, 2, &out, &err), &err);
    CHECK(memcmp(out.pixels, "\x07\x08\x09\x0c\x0d\x0e", 6) == 0);
    fipsc_image_free(&out);
    /* odd margins round down: 5 x 4 -> 2 x 1: top = 3 // 2 = 1, left = 3 // 2 = 1 */
    CHECK_OK(fipsc_image_center_crop(&a, 2, 1, &out, &err), &err);
    CHECK(out.pixels[0] == 7 && out.pixels[1] == 8);
    fipsc_image_free(&out);
    fipsc_image_free(&a);
    /* larger than the image: 2 x 2 -> 4 x 5 (w x h) pads with zeros, ceil((5 - 2) / 2) = 2 rows
     * above and ceil((4 - 2) / 2) = 1 column left */
    CHECK_OK(fipsc_image_alloc(&a, 2, 2, 1, &err), &err);
    memcpy(a.pixels, "\x01\x02\x03\x04", 4);
    CHECK_OK(fipsc_image_center_crop(&a, 4, 5, &out, &err), &err);
    const unsigned char want[20] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0};
    CHECK(out.width == 4 && out.height == 5 && memcmp(out.pixels, want, 20) == 0);
    fipsc_image_free(&out);
    /* larger in one direction only: 2 x 2 -> 1 x 3 */
    CHECK_OK(fipsc_image_center_crop(&a, 1, 3, &out, &err), &err);
    CHECK(out.pixels[0] == 0 && out.pixels[1] == 1 && out.pixels[2] == 3); /* top = -1, left = 0 */
    fipsc_image_free(&out);
    fipsc_image_free(&a);
}

/* ------------------------------------------------------------------ preprocessing */

static void check_preproc(void)
{
    fipsc_error err = {0};
    fipsc_image_preproc pp;
    char path[4200];
    /* the shipped DeiT-MNIST file: resize to 28 x 28 bilinear, no crop, 1/255, mean = std = 0.5 */
    char *text;
    CHECK_OK(fipsc_read_file(test_path(path, sizeof path, "FIPSC_SHARED_DIR", "models/deit-mnist/preprocessor_config.json"),
                             &text, NULL, &err), &err);
    CHECK_OK(fipsc_image_preproc_parse(text, "deit-mnist", 1, 28, 28, &pp, &err), &err);
    free(text);
    CHECK(pp.do_resize && pp.resize_mode == FIPSC_RESIZE_EXACT && pp.resize_height == 28 && pp.resize_width == 28);
    CHECK(pp.resample == FIPSC_RESAMPLE_BILINEAR && !pp.do_center_crop);
    CHECK(pp.do_rescale && fabs(pp.rescale_factor - 1.0 / 255) < 1e-12);
    CHECK(pp.do_normalize && pp.mean[0] == 0.5f && pp.std[0] == 0.5f);

    /* a 28 x 28 gray PNG through it: identity resize, (p/255 - 0.5)/0.5 */
    uint16_t s[28 * 28];
    for (int i = 0; i < 28 * 28; i++) s[i] = (uint16_t)((i * 7) % 256);
    write_png(path_of("digit.png"), 28, 28, PNG_COLOR_TYPE_GRAY, 8, s, 0, NULL, 0, NULL, 0);
    fipsc_image img;
    CHECK_OK(fipsc_image_read(path_of("digit.png"), &img, &err), &err);
    float out[3 * 28 * 28];
    CHECK_OK(fipsc_image_preprocess(&img, &pp, 28, 28, out, "digit.png", &err), &err);
    double worst = 0;
    for (int i = 0; i < 28 * 28; i++) worst = fmax(worst, fabs(out[i] - (s[i] / 255.0 - 0.5) / 0.5));
    CHECK_MSG(worst < 1e-6, "normalised pixels off by %g", worst);
    /* an RGB model sees the gray image replicated in three planes */
    fipsc_image_preproc pp3 = pp;
    pp3.channels = 3;
    pp3.mean[1] = pp3.mean[2] = 0.5f;
    pp3.std[1] = pp3.std[2] = 0.5f;
    CHECK_OK(fipsc_image_preprocess(&img, &pp3, 28, 28, out, "digit.png", &err), &err);
    CHECK(memcmp(out, out + 784, 784 * sizeof *out) == 0 && memcmp(out, out + 1568, 784 * sizeof *out) == 0);
    CHECK_FAILS(fipsc_image_preprocess(&img, &pp, 32, 28, out, "digit.png", &err), FIPSC_ERR_SHAPE, "digit.png", &err);
    fipsc_image_free(&img);

    /* a DeiT hub file: resize 256 bicubic, crop 224, ImageNet statistics */
    const char *deit = "{\"crop_size\": {\"height\": 224, \"width\": 224}, \"do_center_crop\": true,"
                       " \"do_normalize\": true, \"do_rescale\": true, \"do_resize\": true,"
                       " \"image_mean\": [0.485, 0.456, 0.406], \"image_processor_type\": \"DeiTImageProcessor\","
                       " \"image_std\": [0.229, 0.224, 0.225], \"resample\": 3, \"rescale_factor\": 0.00392156862745098,"
                       " \"size\": {\"height\": 256, \"width\": 256}}";
    CHECK_OK(fipsc_image_preproc_parse(deit, "deit", 3, 224, 224, &pp, &err), &err);
    CHECK(pp.resize_height == 256 && pp.resize_width == 256 && pp.resample == FIPSC_RESAMPLE_BICUBIC);
    CHECK(pp.do_center_crop && pp.crop_height == 224 && pp.crop_width == 224);
    CHECK(pp.mean[2] == 0.406f && pp.std[0] == 0.229f);
    int oh, ow;
    fipsc_image_preproc_output_size(&pp, 480, 640, &oh, &ow);
    CHECK(oh == 224 && ow == 224);
    /* legacy integer sizes; processor defaults when a step is on without parameters */
    CHECK_OK(fipsc_image_preproc_parse("{\"size\": 40, \"crop_size\": 32, \"do_normalize\": true,"
                                       " \"image_processor_type\": \"DeiTImageProcessor\"}",
                                       "legacy", 3, 32, 32, &pp, &err), &err);
    CHECK(pp.do_resize && pp.resize_height == 40 && pp.resize_width == 40 && pp.do_center_crop && pp.crop_height == 32);
    CHECK(pp.resample == FIPSC_RESAMPLE_BICUBIC && pp.mean[0] == 0.485f);
    CHECK_OK(fipsc_image_preproc_parse("{\"do_resize\": true, \"do_normalize\": true,"
                                       " \"image_processor_type\": \"ViTImageProcessor\"}",
                                       "vit", 3, 24, 16, &pp, &err), &err);
    CHECK(pp.resize_height == 24 && pp.resize_width == 16 && pp.resample == FIPSC_RESAMPLE_BILINEAR);
    CHECK(!pp.do_center_crop && pp.mean[1] == 0.5f && pp.std[1] == 0.5f);
    /* shortest edge keeps the aspect ratio, the long side truncated: 20 x 30 -> 10 x int(15) */
    CHECK_OK(fipsc_image_preproc_parse("{\"size\": {\"shortest_edge\": 10}, \"do_rescale\": false}",
                                       "short", 3, 10, 15, &pp, &err), &err);
    CHECK(pp.resize_mode == FIPSC_RESIZE_SHORTEST_EDGE && !pp.do_rescale && !pp.do_normalize);
    fipsc_image_preproc_output_size(&pp, 20, 30, &oh, &ow);
    CHECK(oh == 10 && ow == 15);
    fipsc_image_preproc_output_size(&pp, 33, 7, &oh, &ow);
    CHECK(ow == 10 && oh == 47); /* int(10·33/7) = int(47.1) */
    /* bad values name their key */
    CHECK_FAILS(fipsc_image_preproc_parse("{\"size\": {\"height\": 4}}", "f", 3, 4, 4, &pp, &err), FIPSC_ERR_FORMAT, "'size'", &err);
    CHECK_FAILS(fipsc_image_preproc_parse("{\"do_resize\": 1}", "f", 3, 4, 4, &pp, &err), FIPSC_ERR_FORMAT, "'do_resize'", &err);
    CHECK_FAILS(fipsc_image_preproc_parse("{\"image_std\": [0.5, 0, 0.5]}", "f", 3, 4, 4, &pp, &err), FIPSC_ERR_FORMAT, "'image_std'", &err);
    CHECK_FAILS(fipsc_image_preproc_parse("{\"rescale_factor\": -1}", "f", 3, 4, 4, &pp, &err), FIPSC_ERR_FORMAT, "'rescale_factor'", &err);
    CHECK_FAILS(fipsc_image_preproc_parse("[1]", "f.json", 3, 4, 4, &pp, &err), FIPSC_ERR_FORMAT, "f.json: not a JSON object", &err);

    /* no preprocessor_config.json: DeiT's defaults scaled to the model size */
    fipsc_image_preproc_default(&pp, 3, 224, 224);
    CHECK(pp.resize_height == 256 && pp.resize_width == 256 && pp.crop_height == 224 && pp.resample == FIPSC_RESAMPLE_BICUBIC);
    fipsc_image_preproc_default(&pp, 1, 28, 42);
    CHECK(pp.resize_height == 32 && pp.resize_width == 48 && pp.crop_height == 28 && pp.crop_width == 42);

    /* the whole pipeline on an RGB image: convert -> resize -> crop -> rescale -> normalise,
     * planar output; checked against the pieces */
    fipsc_image rgb, resized, cropped;
    CHECK_OK(fipsc_image_alloc(&rgb, 9, 7, 3, &err), &err);
    for (int i = 0; i < 9 * 7 * 3; i++) rgb.pixels[i] = (unsigned char)(i * 11);
    CHECK_OK(fipsc_image_preproc_parse("{\"size\": {\"height\": 6, \"width\": 8}, \"resample\": 3,"
                                       " \"crop_size\": {\"height\": 4, \"width\": 5},"
                                       " \"image_mean\": [0.1, 0.2, 0.3], \"image_std\": [0.5, 0.25, 2]}",
                                       "pipe", 3, 4, 5, &pp, &err), &err);
    float px[3 * 4 * 5];
    CHECK_OK(fipsc_image_preprocess(&rgb, &pp, 4, 5, px, "rgb", &err), &err);
    CHECK_OK(fipsc_image_resize(&rgb, 8, 6, FIPSC_RESAMPLE_BICUBIC, &resized, &err), &err);
    CHECK_OK(fipsc_image_center_crop(&resized, 5, 4, &cropped, &err), &err);
    const double mean[3] = {0.1, 0.2, 0.3}, sd[3] = {0.5, 0.25, 2};
    worst = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 20; i++)
            worst = fmax(worst, fabs(px[c * 20 + i] - (cropped.pixels[i * 3 + c] / 255.0 - mean[c]) / sd[c]));
    CHECK_MSG(worst < 1e-5, "pipeline off by %g", worst);
    fipsc_image_free(&rgb), fipsc_image_free(&resized), fipsc_image_free(&cropped);
}

int main(void)
{
    tmp = test_tmpdir("test_vit_image");
    check_png();
    check_jpeg();
    check_pnm();
    check_convert();
    check_resize();
    check_crop();
    check_preproc();
    return test_summary("test_vit_image");
}
