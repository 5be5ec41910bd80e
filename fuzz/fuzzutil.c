/* Shared helpers of the libFuzzer targets (see fuzzutil.h). */
#include "fuzzutil.h"

#include "core/path.h"
#include "core/status.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

void fuzz_note(const fipsc_error *err)
{
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FIPSC_FUZZ_VERBOSE") && strcmp(getenv("FIPSC_FUZZ_VERBOSE"), "1") == 0;
    if (verbose) fprintf(stderr, "fuzz: %s\n", err ? err->message : "accepted");
}

static char scratch[4096];
static char written[FUZZ_MAX_PARTS + 4][FUZZ_NAME_MAX + 1];
static int n_written;

/* Empties and removes the scratch directory (at exit; the fuzzer exits through exit()). */
static void remove_scratch(void)
{
    DIR *d = opendir(scratch);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char path[4096 + 256];
            if (!fipsc_path_join(path, sizeof path, scratch, e->d_name, NULL)) unlink(path);
        }
        closedir(d);
    }
    rmdir(scratch);
}

const char *fuzz_scratch_dir(void)
{
    if (scratch[0]) return scratch;
    struct stat st;
    const char *base = getenv("FIPSC_FUZZ_SCRATCH_BASE"); /* scripts/fuzz sets it */
    if (!base || !*base)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                   ? "/dev/shm"
               : getenv("TMPDIR") ? getenv("TMPDIR")
                                  : "/tmp";
    fipsc_error err;
    if (fipsc_path_format(scratch, sizeof scratch, &err, "%s/fipsc-fuzz-XXXXXX", base)) {
        fprintf(stderr, "fuzz: scratch directory: %s\n", err.message);
        abort();
    }
    if (!mkdtemp(scratch)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(remove_scratch);
    return scratch;
}

const char *fuzz_scratch_path(const char *name)
{
    static char path[4096 + FUZZ_NAME_MAX + 2];
    fipsc_error err;
    if (fipsc_path_join(path, sizeof path, fuzz_scratch_dir(), name, &err)) {
        fprintf(stderr, "fuzz: scratch path: %s\n", err.message);
        abort();
    }
    return path;
}

void fuzz_write_scratch(const char *name, const void *data, size_t size)
{
    const char *path = fuzz_scratch_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror(path);
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, (const char *)data + done, size - done);
        if (n <= 0) {
            perror(path);
            abort();
        }
        done += (size_t)n;
    }
    close(fd);
    if (n_written < (int)(sizeof written / sizeof written[0])) {
        fipsc_error err;
        if (fipsc_path_format(written[n_written++], sizeof written[0], &err, "%s", name)) {
            fprintf(stderr, "fuzz: scratch file name: %s\n", err.message);
            abort();
        }
    }
}

void fuzz_clear_scratch(void)
{
    for (int i = 0; i < n_written; i++) unlink(fuzz_scratch_path(written[i]));
    n_written = 0;
}

/* If a separator "\n@@ NAME\n" starts at p (p < end), copies NAME and returns the length of the
 * whole separator; 0 otherwise. */
static size_t separator_at(const uint8_t *p, const uint8_t *end, char *name)
{
    if (end - p < 5 || memcmp(p, "\n@@ ", 4) != 0) return 0;
    size_t n = 0;
    for (const uint8_t *c = p + 4; c < end; c++, n++) {
        if (*c == '\n') {
            if (n == 0 || (n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
                return 0;
            name[n] = '\0';
            return 4 + n + 1;
        }
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                  *c == '.' || *c == '_' || *c == '-';
        if (!ok || n == FUZZ_NAME_MAX) return 0;
        name[n] = (char)*c;
    }
    return 0;
}

int fuzz_split_bundle(const uint8_t *data, size_t size, const char *main_name, fuzz_part *parts)
{
    const uint8_t *end = data + size;
    int n = 1;
    if (fipsc_path_format(parts[0].name, sizeof parts[0].name, NULL, "%s", main_name)) abort(); /* a harness's own name */
    parts[0].data = data;
    for (const uint8_t *p = data; p < end && n < FUZZ_MAX_PARTS;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        size_t sep = separator_at(nl, end, parts[n].name);
        if (!sep) {
            p = nl + 1;
            continue;
        }
        parts[n - 1].size = (size_t)(nl - parts[n - 1].data);
        parts[n].data = nl + sep;
        n++;
        p = nl + sep;
    }
    parts[n - 1].size = (size_t)(end - parts[n - 1].data);
    return n;
}

void fuzz_write_bundle(const uint8_t *data, size_t size, const char *main_name)
{
    fuzz_part parts[FUZZ_MAX_PARTS];
    int n = fuzz_split_bundle(data, size, main_name, parts);
    for (int i = 0; i < n; i++) fuzz_write_scratch(parts[i].name, parts[i].data, parts[i].size);
}
