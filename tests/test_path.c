/* Checked path building (src/core/path.h): joins, the exact capacity boundary, and the
 * library's writers refusing a path that does not fit instead of writing to a cut-off name. */
#include <dirent.h>
#include <string.h>

#include "core/file.h"
#include "core/path.h"
#include "testutil.h"

/* Number of entries in dir other than "." and "..". */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_join(void)
{
    fipsc_error err;
    char buf[16];
    CHECK_OK(fipsc_path_join(buf, sizeof buf, "a/b", "c.json", &err), &err);
    CHECK(strcmp(buf, "a/b/c.json") == 0);
    CHECK_OK(fipsc_path_join(buf, sizeof buf, "a/", "c", &err), &err);
    CHECK(strcmp(buf, "a/c") == 0); /* no double slash */
    CHECK_OK(fipsc_path_join(buf, sizeof buf, "/", "c", &err), &err);
    CHECK(strcmp(buf, "/c") == 0);
    CHECK_OK(fipsc_path_join(buf, sizeof buf, "", "c", &err), &err);
    CHECK(strcmp(buf, "c") == 0);

    /* capacity 16: 15 characters fit, 16 do not */
    CHECK_OK(fipsc_path_join(buf, sizeof buf, "0123456", "89abcde", &err), &err);
    CHECK(strlen(buf) == 15);
    CHECK_FAILS(fipsc_path_join(buf, sizeof buf, "0123456", "89abcdef", &err), FIPSC_ERR_ARG,
                "path too long (16 bytes, at most 15)", &err);
    CHECK(buf[0] == '\0'); /* never a cut-off path */
    CHECK(strstr(err.message, "'0123456/89abcde...'") != NULL);

    CHECK_OK(fipsc_path_format(buf, sizeof buf, &err, "%s/case%d", "t", 12), &err);
    CHECK(strcmp(buf, "t/case12") == 0);
    CHECK_FAILS(fipsc_path_format(buf, sizeof buf, &err, "%s/case%d", "tmp/dir", 123456789), FIPSC_ERR_ARG,
                "path too long", &err);
    CHECK(fipsc_path_join(buf, sizeof buf, "0123456789", "0123456789", NULL) == FIPSC_ERR_ARG); /* err may be NULL */
}

/* The atomic writer and the checkpoint-directory writer refuse an output path longer than their
 * buffers and leave nothing behind. */
static void test_writers_refuse(const char *tmp)
{
    fipsc_error err;
    char longname[5000];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char path[6000];
    test_pathf(path, sizeof path, "%s/%s", tmp, longname);
    fipsc_atomic_file af;
    CHECK_FAILS(fipsc_atomic_open(path, &af, &err), FIPSC_ERR_ARG, "output file: path too long", &err);

    /* 4095 bytes fit final_path[4096] and, with ".tmp-XXXXXX", temp_path[4200]: the helper lets it
     * through and the file system refuses it (a component longer than NAME_MAX), as an I/O error;
     * no shorter, truncated name is created instead */
    size_t room = 4095 - strlen(tmp) - 1;
    char edge[4096];
    test_pathf(edge, sizeof edge, "%s/%.*s", tmp, (int)room, longname);
    CHECK(strlen(edge) == 4095);
    fipsc_status st = fipsc_atomic_open(edge, &af, &err);
    CHECK(st == FIPSC_ERR_IO); /* ENAMETOOLONG from the file system, not a truncated name */
    CHECK(count_entries(tmp) == 0);
}

int main(void)
{
    const char *tmp = test_tmpdir("test_path");
    test_join();
    test_writers_refuse(tmp);
    return test_summary("test_path");
}
