/* Several calibration files with weights (src/compress/calibration_list.c): parsing
 * "FILE[:WEIGHT],...", the largest-remainder shares, the even interleaving, and the errors. */
#include <string.h>

#include "compress/calibration_list.h"
#include "testutil.h"

static void test_parse(void)
{
    fipsc_error err = {0};
    calib_list l;
    CHECK_OK(calib_list_parse("--calib-text", "a.txt", &l, &err), &err);
    CHECK(l.n == 1 && strcmp(l.items[0].path, "a.txt") == 0 && l.items[0].weight == 1.0 && !l.items[0].weighted);
    calib_list_free(&l);
    CHECK_OK(calib_list_parse("--calib-text", "dir/a.txt:3,b:0.5,c:d.txt,e:", &l, &err), &err);
    CHECK(l.n == 4);
    CHECK(strcmp(l.items[0].path, "dir/a.txt") == 0 && l.items[0].weight == 3.0 && l.items[0].weighted);
    CHECK(strcmp(l.items[1].path, "b") == 0 && l.items[1].weight == 0.5);
    CHECK(strcmp(l.items[2].path, "c:d.txt") == 0 && !l.items[2].weighted); /* not a number: part of the name */
    CHECK(strcmp(l.items[3].path, "e:") == 0 && !l.items[3].weighted);
    calib_list_free(&l);
    CHECK_FAILS(calib_list_parse("--calib-text", "a:0", &l, &err), FIPSC_ERR_ARG, "must be a positive number", &err);
    CHECK_FAILS(calib_list_parse("--calib-text", "a:-2", &l, &err), FIPSC_ERR_ARG, "must be a positive number", &err);
    CHECK_FAILS(calib_list_parse("--calib-text", "a:nan", &l, &err), FIPSC_ERR_ARG, "must be a positive number", &err);
    CHECK_FAILS(calib_list_parse("--calib-sentences", "a,,b", &l, &err), FIPSC_ERR_ARG, "an empty file name", &err);
    CHECK_FAILS(calib_list_parse("--calib-sentences", ":2", &l, &err), FIPSC_ERR_ARG, "an empty file name", &err);
    CHECK_FAILS(calib_list_parse("--calib-sentences", "", &l, &err), FIPSC_ERR_ARG, "no file given", &err);
    char many[400] = "";
    for (int i = 0; i <= CALIB_LIST_MAX; i++) strcat(many, i ? ",f" : "f");
    CHECK_FAILS(calib_list_parse("--calib-text", many, &l, &err), FIPSC_ERR_ARG, "more than 64 files", &err);
}

static void test_shares(void)
{
    fipsc_error err = {0};
    calib_list l;
    int64_t s[CALIB_LIST_MAX];
    CHECK_OK(calib_list_parse("x", "a:1,b:2", &l, &err), &err);
    calib_list_shares(&l, 45000, s);
    CHECK(s[0] == 15000 && s[1] == 30000);
    calib_list_shares(&l, 64, s); /* 21.33, 42.67: the larger remainder gets the last one */
    CHECK(s[0] == 21 && s[1] == 43);
    calib_list_free(&l);
    CHECK_OK(calib_list_parse("x", "a,b,c", &l, &err), &err);
    calib_list_shares(&l, 8, s); /* equal remainders: earlier files first */
    CHECK(s[0] == 3 && s[1] == 3 && s[2] == 2);
    calib_list_free(&l);
}

static void test_interleave(void)
{
    int source[16];
    const int one[1] = {5};
    calib_interleave(one, 1, source);
    for (int i = 0; i < 5; i++) CHECK(source[i] == 0);
    const int two[2] = {2, 4}; /* ranks: a 1/4, 3/4; b 1/8, 3/8, 5/8, 7/8 */
    calib_interleave(two, 2, source);
    const int want[6] = {1, 0, 1, 1, 0, 1};
    CHECK(memcmp(source, want, sizeof want) == 0);
    const int three[3] = {3, 3, 0}; /* an empty source never appears; ties to the earlier */
    calib_interleave(three, 3, source);
    const int want3[6] = {0, 1, 0, 1, 0, 1};
    CHECK(memcmp(source, want3, sizeof want3) == 0);
}

int main(void)
{
    test_parse();
    test_shares();
    test_interleave();
    return test_summary("test_calibration_list");
}
