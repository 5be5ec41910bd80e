/* Image sets for ViT calibration (src/formats/image_list.h): directories (name order, non-image
 * files skipped), IDX files plain and gzip, exact-pixel exclusion, limits, and errors; then the
 * real case: the MNIST test set minus the DeiT-MNIST hold-out PNGs drawn from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "formats/image_list.h"
#include "testutil.h"

static const char *tmp;

/* A w × h gray image whose pixels are a function of id. */
static void pattern(unsigned char *px, int w, int h, int id)
{
    for (int i = 0; i < w * h; i++) px[i] = (unsigned char)((i * 7 + id * 31 + (i / w) * id) & 255);
}

static void write_pgm(const char *dir, const char *name, int w, int h, int id)
{
    char path[4300];
    test_pathf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    unsigned char *px = malloc((size_t)w * h);
    pattern(px, w, h, id);
    fprintf(fp, "P5\n%d %d\n255\n", w, h);
    fwrite(px, 1, (size_t)w * h, fp);
    fclose(fp);
    free(px);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[4300];
    test_pathf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    fputs(text, fp);
    fclose(fp);
}

/* An IDX file of n w × h images with ids ids[0..n) (gzip when gz); `truncate` bytes cut off. */
static void write_idx(const char *path, int n, int w, int h, const int *ids, bool gz, int truncate)
{
    size_t size = 16 + (size_t)n * w * h;
    unsigned char *b = malloc(size);
    unsigned char head[16] = {0, 0, 8, 3};
    unsigned v[3] = {(unsigned)n, (unsigned)h, (unsigned)w};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4; j++) head[4 + 4 * k + j] = (unsigned char)(v[k] >> (24 - 8 * j));
    memcpy(b, head, 16);
    for (int i = 0; i < n; i++) pattern(b + 16 + (size_t)i * w * h, w, h, ids[i]);
    size -= (size_t)truncate;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, b, (unsigned)size);
        gzclose(f);
    } else {
        FILE *fp = fopen(path, "wb");
        fwrite(b, 1, size, fp);
        fclose(fp);
    }
    free(b);
}

static bool has_pattern(const fipsc_image *img, int w, int h, int id)
{
    unsigned char *px = malloc((size_t)w * h);
    pattern(px, w, h, id);
    bool ok = img->width == w && img->height == h && img->channels == 1 && memcmp(img->pixels, px, (size_t)w * h) == 0;
    free(px);
    return ok;
}

static void check_dir_and_idx(void)
{
    fipsc_error err = {0};
    char dir[4200], ex[4200], sub[4300];
    test_pathf(dir, sizeof dir, "%s/images", tmp);
    test_pathf(ex, sizeof ex, "%s/exclude", tmp);
    mkdir(dir, 0755);
    mkdir(ex, 0755);
    /* written out of order; b.pgm is a different size; labels.tsv, .hidden and a subdirectory
     * are not images */
    write_pgm(dir, "c.pgm", 6, 4, 3);
    write_pgm(dir, "a.pgm", 6, 4, 1);
    write_pgm(dir, "b.pgm", 5, 5, 2);
    write_pgm(dir, "d.pgm", 6, 4, 4);
    write_file(dir, "labels.tsv", "a.pgm\t0\n");
    write_pgm(dir, ".hidden.pgm", 6, 4, 9);
    test_pathf(sub, sizeof sub, "%s/sub", dir);
    mkdir(sub, 0755);
    write_pgm(sub, "e.pgm", 6, 4, 5);
    /* the exclusion set: image 3 (same pixels, other name), image 2 at another size (no match) */
    write_pgm(ex, "x.pgm", 6, 4, 3);
    write_pgm(ex, "y.pgm", 4, 5, 2);

    fipsc_image_list l, excl;
    int excluded = -1;
    CHECK_OK(fipsc_image_list_read_dir(dir, NULL, 0, &l, &excluded, &err), &err);
    CHECK(l.n == 4 && excluded == 0);
    if (l.n == 4) {
        CHECK(strcmp(l.names[0], "a.pgm") == 0 && strcmp(l.names[3], "d.pgm") == 0);
        CHECK(has_pattern(&l.images[0], 6, 4, 1) && has_pattern(&l.images[1], 5, 5, 2) &&
              has_pattern(&l.images[2], 6, 4, 3) && has_pattern(&l.images[3], 6, 4, 4));
    }
    fipsc_image_list_free(&l);
    CHECK(l.n == 0 && !l.images);

    CHECK_OK(fipsc_image_list_read_dir(ex, NULL, 0, &excl, NULL, &err), &err);
    CHECK(excl.n == 2);
    CHECK_OK(fipsc_image_list_read_dir(dir, &excl, 0, &l, &excluded, &err), &err);
    CHECK(l.n == 3 && excluded == 1);
    if (l.n == 3) CHECK(strcmp(l.names[2], "d.pgm") == 0 && strcmp(l.names[1], "b.pgm") == 0);
    fipsc_image_list_free(&l);
    /* max counts kept images: the first 2 kept are a and b, c is never reached */
    CHECK_OK(fipsc_image_list_read_dir(dir, &excl, 2, &l, &excluded, &err), &err);
    CHECK(l.n == 2 && excluded == 0);
    fipsc_image_list_free(&l);
    CHECK_OK(fipsc_image_list_read_dir(dir, &excl, 3, &l, &excluded, &err), &err);
    CHECK(l.n == 3 && excluded == 1);
    fipsc_image_list_free(&l);

    /* IDX, gzip and plain: ids 1, 3, 7, 3, 8 of 6 x 4; image 3 (twice) excluded */
    const int ids[5] = {1, 3, 7, 3, 8};
    char gz[4300], plain[4300], bad[4300], shorter[4300];
    test_pathf(gz, sizeof gz, "%s/set.idx.gz", tmp);
    test_pathf(plain, sizeof plain, "%s/set.idx", tmp);
    write_idx(gz, 5, 6, 4, ids, true, 0);
    write_idx(plain, 5, 6, 4, ids, false, 0);
    for (int k = 0; k < 2; k++) {
        const char *path = k ? plain : gz;
        CHECK_OK(fipsc_image_list_read_idx(path, NULL, 0, &l, &excluded, &err), &err);
        CHECK(l.n == 5 && excluded == 0);
        if (l.n == 5) {
            CHECK(has_pattern(&l.images[4], 6, 4, 8) && has_pattern(&l.images[1], 6, 4, 3));
            char want[4400];
            snprintf(want, sizeof want, "%s#4", path);
            CHECK(strcmp(l.names[4], want) == 0);
        }
        fipsc_image_list_free(&l);
        CHECK_OK(fipsc_image_list_read_idx(path, &excl, 0, &l, &excluded, &err), &err);
        CHECK(l.n == 3 && excluded == 2);
        if (l.n == 3) CHECK(has_pattern(&l.images[1], 6, 4, 7) && has_pattern(&l.images[2], 6, 4, 8));
        fipsc_image_list_free(&l);
        CHECK_OK(fipsc_image_list_read_idx(path, &excl, 2, &l, &excluded, &err), &err);
        CHECK(l.n == 2 && excluded == 1);
        fipsc_image_list_free(&l);
    }

    /* errors */
    test_pathf(shorter, sizeof shorter, "%s/short.idx.gz", tmp);
    write_idx(shorter, 5, 6, 4, ids, true, 10);
    CHECK_FAILS(fipsc_image_list_read_idx(shorter, NULL, 0, &l, NULL, &err), FIPSC_ERR_FORMAT,
                "ends before image 4 of 5", &err);
    CHECK(l.n == 0);
    /* a short file is fine while the images asked for are complete */
    CHECK_OK(fipsc_image_list_read_idx(shorter, NULL, 4, &l, NULL, &err), &err);
    CHECK(l.n == 4);
    fipsc_image_list_free(&l);
    test_pathf(bad, sizeof bad, "%s/labels.idx", tmp);
    FILE *fp = fopen(bad, "wb");
    fwrite("\0\0\x08\x01\0\0\0\x05", 1, 8, fp); /* an IDX label file (1 dimension) */
    fclose(fp);
    CHECK_FAILS(fipsc_image_list_read_idx(bad, NULL, 0, &l, NULL, &err), FIPSC_ERR_FORMAT,
                "not an IDX image file", &err);
    fp = fopen(bad, "wb");
    fwrite("\0\0\x08\x03\0\0\0\x05\0\0\0\0\0\0\0\x1c", 1, 16, fp); /* 0 rows */
    fclose(fp);
    CHECK_FAILS(fipsc_image_list_read_idx(bad, NULL, 0, &l, NULL, &err), FIPSC_ERR_FORMAT, "out of range", &err);
    fp = fopen(bad, "wb");
    fwrite("\0\0", 1, 2, fp);
    fclose(fp);
    CHECK_FAILS(fipsc_image_list_read_idx(bad, NULL, 0, &l, NULL, &err), FIPSC_ERR_FORMAT, "IDX header", &err);
    char missing[4300];
    test_pathf(missing, sizeof missing, "%s/none.idx", tmp);
    CHECK_FAILS(fipsc_image_list_read_idx(missing, NULL, 0, &l, NULL, &err), FIPSC_ERR_NOT_FOUND, "none.idx", &err);
    CHECK_FAILS(fipsc_image_list_read_dir(missing, NULL, 0, &l, NULL, &err), FIPSC_ERR_NOT_FOUND, "none.idx", &err);
    /* a file that starts like a PNG but is not one is an error, not skipped */
    write_file(dir, "z.png", "\x89PNG\r\n\x1a\nnot really");
    CHECK(fipsc_image_list_read_dir(dir, NULL, 0, &l, NULL, &err) != FIPSC_OK);
    CHECK(strstr(err.message, "z.png") != NULL);
    fipsc_image_list_free(&excl);
}

/* The DeiT-MNIST hold-out PNGs are 2,000 of the MNIST test set's 10,000 images: excluding them by
 * pixels leaves exactly 8,000, and none of the kept images equals a hold-out image. */
static void check_mnist(void)
{
    char holdout[4200], idx[4200];
    test_path(holdout, sizeof holdout, "FIPSC_SHARED_DIR", "data/deit-mnist-holdout");
    test_path(idx, sizeof idx, "FIPSC_SHARED_DIR", "data/mnist/t10k-images-idx3-ubyte.gz");
    fipsc_error err = {0};
    fipsc_image_list ho, all, kept;
    int excluded = -1;
    CHECK_OK(fipsc_image_list_read_dir(holdout, NULL, 0, &ho, NULL, &err), &err);
    CHECK(ho.n == 2000);
    CHECK_OK(fipsc_image_list_read_idx(idx, NULL, 0, &all, NULL, &err), &err);
    CHECK(all.n == 10000 && all.images[0].width == 28 && all.images[0].height == 28);
    CHECK_OK(fipsc_image_list_read_idx(idx, &ho, 0, &kept, &excluded, &err), &err);
    CHECK(kept.n == 8000 && excluded == 2000);
    printf("MNIST test set %d images, hold-out %d, kept %d (%d excluded)\n", all.n, ho.n, kept.n, excluded);
    fipsc_image_list_free(&ho);
    fipsc_image_list_free(&all);
    fipsc_image_list_free(&kept);
}

int main(void)
{
    tmp = test_tmpdir("test_image_list");
    check_dir_and_idx();
    check_mnist();
    return test_summary("test_image_list");
}
