/* Seeds of the data parsers (fuzz/make_seeds.h): token corpora (binary and text), images (PNG of
 * every colour type, JPEG, PNM), SentencePiece vocabularies with text, IDX image files (plain and
 * gzip), and STS Benchmark files. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
/* after stdio.h: jpeglib.h uses FILE and size_t without including their headers */
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/file.h"
#include "formats/corpus.h"
#include "make_seeds.h"

/* ------------------------------------------------------------------ token corpora */

void seed_corpus(void)
{
    int32_t ids[12];
    for (int i = 0; i < 12; i++) ids[i] = (i * 5) % 11;
    fipsc_corpus *c;
    fipsc_error err;
    seed_check(fipsc_corpus_from_ids(ids, 3, 4, 11, &c, &err), &err);
    char path[8192];
    seed_path(path, sizeof path, "%s/tokens.bin", seed_temp_dir);
    seed_check(fipsc_corpus_write(c, path, &err), &err);
    fipsc_corpus_free(c);
    buf b = {0};
    seed_take_temp("tokens.bin", &b);
    seed_write("fuzz_corpus", "binary.tok", b.p, b.n);
    free(b.p);
    seed_write_text("fuzz_corpus", "text.txt", "1 2 3 4\n5\t6 7\r\n\n   \n8 9 10 11 12 2147483647\n");
    seed_write_text("fuzz_corpus", "text_no_newline.txt", "0 1 0 1");
}

/* ------------------------------------------------------------------ images */

static void png_to_buf(png_structp png, png_bytep data, png_size_t n) { seed_put(png_get_io_ptr(png), data, n); }

static void png_flush_nothing(png_structp png) { (void)png; }

/* A PNG of the given IHDR (bit depth, colour type, interlace), pixels from a pattern; palette
 * images get a 4-entry palette and a tRNS chunk. */
static void png_seed(const char *name, int w, int h, int depth, int color, int interlace)
{
    buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info || setjmp(png_jmpbuf(png))) seed_die("libpng failed");
    png_set_write_fn(png, &b, png_to_buf, png_flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {10, 20, 30}};
        png_set_PLTE(png, info, palette, 4);
        png_byte alpha[2] = {0, 128};
        png_set_tRNS(png, info, alpha, 2, NULL);
    }
    png_write_info(png, info);
    int samples = color == PNG_COLOR_TYPE_RGB ? 3 : color == PNG_COLOR_TYPE_RGBA ? 4
                  : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t row_bytes = ((size_t)w * samples * depth + 7) / 8;
    unsigned char *rows = calloc((size_t)h, row_bytes);
    png_bytep *row_ptrs = malloc((size_t)h * sizeof *row_ptrs);
    for (int y = 0; y < h; y++) {
        row_ptrs[y] = rows + (size_t)y * row_bytes;
        for (size_t x = 0; x < row_bytes; x++) row_ptrs[y][x] = (unsigned char)(x * 29 + (size_t)y * 71);
        if (color == PNG_COLOR_TYPE_PALETTE) /* indices must stay inside the palette */
            for (size_t x = 0; x < row_bytes; x++) row_ptrs[y][x] &= depth == 8 ? 3 : depth == 4 ? 0x33 : 0x55;
    }
    png_write_image(png, row_ptrs);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    seed_write("fuzz_image", name, b.p, b.n);
    free(rows);
    free(row_ptrs);
    free(b.p);
}

static void jpeg_seed(const char *name, int w, int h, int components, bool progressive)
{
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    unsigned char *out = NULL;
    unsigned long out_size = 0;
    jpeg_mem_dest(&cinfo, &out, &out_size);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 75, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    unsigned char *row = malloc((size_t)w * components);
    while (cinfo.next_scanline < cinfo.image_height) {
        for (int x = 0; x < w * components; x++) row[x] = (unsigned char)(x * 13 + (int)cinfo.next_scanline * 31);
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    seed_write("fuzz_image", name, out, out_size);
    free(row);
    free(out);
}

void seed_image(void)
{
    png_seed("gray8.png", 5, 4, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE);
    png_seed("gray1.png", 9, 3, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE);
    png_seed("gray16.png", 3, 3, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE);
    png_seed("gray_alpha.png", 4, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE);
    png_seed("rgb.png", 6, 5, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE);
    png_seed("rgba16.png", 3, 2, 16, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE);
    png_seed("palette2_trns.png", 7, 3, 2, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE);
    png_seed("rgb_adam7.png", 9, 9, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7);
    jpeg_seed("gray.jpg", 8, 8, 1, false);
    jpeg_seed("rgb.jpg", 17, 9, 3, false);
    jpeg_seed("rgb_progressive.jpg", 16, 16, 3, true);
    seed_write_text("fuzz_image", "ascii.pgm", "P2\n# a comment\n3 2\n255\n0 128 255\n1 2 3\n");
    seed_write_text("fuzz_image", "ascii.ppm", "P3 2 1 1000 0 500 1000 1000 0 1\n");
    static const unsigned char p5[] = "P5\n2 2\n255\n\x00\x7f\x80\xff";
    seed_write("fuzz_image", "binary.pgm", p5, sizeof p5 - 1);
    static const unsigned char p6[] = "P6 2 1 65535\n\x00\x01\x7f\xff\xff\xff\x12\x34\x56\x78\x9a\xbc";
    seed_write("fuzz_image", "binary16.ppm", p6, sizeof p6 - 1);
}

/* ------------------------------------------------------------------ SentencePiece vocabulary */

void seed_sp_vocab(void)
{
    static const char vocab[] =
        "[[\"\xef\xbf\xbd\", 0], [\"<s>\", 0], [\"</s>\", 0], [\"<extra_1>\", 0], [\"<extra_2>\", 0],"
        " [\"<extra_3>\", 0], [\"\xe2\x96\x81\", -2.5], [\"\xe2\x96\x81the\", -3.1], [\"\xe2\x96\x81" "a\", -3.4],"
        " [\"s\", -4.0], [\"\xe2\x96\x81man\", -7.25], [\"\xe2\x96\x81is\", -5], [\"ing\", -6.5],"
        " [\"\xe2\x96\x81play\", -8], [\"e\", -5.5], [\"t\", -5.6], [\"h\", -5.7], [\".\", -3.0],"
        " [\":\", null], [\"\xe2\x96\x81:)\", null], [\"fi\", -9], [\"\xf0\x9f\x98\x80\", -10],"
        " [\"\xe2\x96\x81the\", -2.0]]";
    buf b = {0};
    seed_puts(&b, vocab);
    seed_put_part(&b, "text");
    seed_puts(&b, "A man is playing the guitar :) \xef\xac\x81ne caf\xc3\xa9 \xf0\x9f\x98\x80.");
    seed_write("fuzz_sp_vocab", "vocab_and_text", b.p, b.n);
    free(b.p);
    seed_write_text("fuzz_sp_vocab", "vocab_only", vocab);
    seed_write_text("fuzz_sp_vocab", "too_small", "[[\"a\", 0], [\"b\", 1]]");
}

/* ------------------------------------------------------------------ IDX images */

/* An IDX image file (MNIST's format): magic 00 00 08 03, n, rows, cols big-endian, pixels. */
static void idx_file(buf *b, unsigned n, unsigned rows, unsigned cols)
{
    unsigned char head[16] = {0, 0, 8, 3};
    unsigned v[3] = {n, rows, cols};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 4; i++) head[4 + 4 * k + i] = (unsigned char)(v[k] >> (24 - 8 * i));
    seed_put(b, head, sizeof head);
    for (unsigned i = 0; i < n * rows * cols; i++) {
        unsigned char px = (unsigned char)(i * 37 % 251);
        if (i >= 2 * rows * cols && i < 3 * rows * cols) px = (unsigned char)((i - 2 * rows * cols) * 37 % 251);
        seed_put(b, &px, 1); /* image 2 repeats image 0: exclusion must drop both */
    }
}

/* gzip (not zlib) framing, as MNIST's .gz files. */
static void gzip_buf(const buf *in, buf *out)
{
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) seed_die("zlib failed");
    unsigned char chunk[4096];
    z.next_in = in->p;
    z.avail_in = (uInt)in->n;
    int rc;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = deflate(&z, Z_FINISH);
        seed_put(out, chunk, sizeof chunk - z.avail_out);
    } while (rc == Z_OK);
    if (rc != Z_STREAM_END) seed_die("zlib failed");
    deflateEnd(&z);
}

void seed_idx(void)
{
    buf b = {0}, gz = {0};
    idx_file(&b, 4, 5, 3);
    seed_write("fuzz_idx", "four_5x3.idx", b.p, b.n);
    gzip_buf(&b, &gz);
    seed_write("fuzz_idx", "four_5x3.idx.gz", gz.p, gz.n);
    seed_write("fuzz_idx", "truncated.idx", b.p, b.n - 7);
    free(b.p);
    free(gz.p);
    b = (buf){0};
    idx_file(&b, 0, 28, 28);
    seed_write("fuzz_idx", "empty_28x28.idx", b.p, b.n);
    free(b.p);
}

/* ------------------------------------------------------------------ STS Benchmark files */

void seed_sts(void)
{
    seed_write_text("fuzz_sts", "three_pairs.tsv",
                    "main-captions\tMSRvid\t2012test\t0001\t5.000\tA man is playing a guitar.\t"
                    "A man plays the guitar.\n"
                    "main-news\theadlines\t2013\t0042\t0.5\tStocks fell.\tThe cat sat on the mat.\r\n"
                    "\n"
                    "main-forums\tdeft-forum\t2014\t0007\t2.75e0\t\tAn empty first sentence.\textra\tcolumns\n");
    seed_write_text("fuzz_sts", "one_pair.tsv", "g\tf\ty\t1\t3\ta\tb\n");
}

/* ------------------------------------------------------------------ tokenizer.json */

/* The two hand-made tokenizers of tests/data/tokenizers/ (make_seeds runs from the repository's
 * root), each with its tokenizer_config.json and a text that reaches added tokens, byte fallback
 * and the regex; and each alone. */
void seed_tokenizer(void)
{
    static const char *const names[] = {"spm-tiny", "bytelevel-tiny"};
    static const char text[] = "Hello <s>the thing<think>  abc \xc3\xa9\xe2\x96\x81 It's \xce\xa3 1234 \xff<|endoftext|>";
    for (int i = 0; i < 2; i++) {
        char path[256];
        char *json, *config;
        size_t json_size, config_size;
        fipsc_error err;
        snprintf(path, sizeof path, "tests/data/tokenizers/%s/tokenizer.json", names[i]);
        seed_check(fipsc_read_file(path, &json, &json_size, &err), &err);
        snprintf(path, sizeof path, "tests/data/tokenizers/%s/tokenizer_config.json", names[i]);
        seed_check(fipsc_read_file(path, &config, &config_size, &err), &err);
        buf b = {0};
        seed_put(&b, json, json_size);
        seed_put_part(&b, "config");
        seed_put(&b, config, config_size);
        seed_put_part(&b, "text");
        seed_puts(&b, text);
        char name[64];
        snprintf(name, sizeof name, "%s_bundle", names[i]);
        seed_write("fuzz_tokenizer", name, b.p, b.n);
        snprintf(name, sizeof name, "%s_alone", names[i]);
        seed_write("fuzz_tokenizer", name, json, json_size);
        free(b.p);
        free(json);
        free(config);
    }
}
