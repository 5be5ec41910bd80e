/* Memory-mapped inputs and atomic outputs (see src/core/file.h). */
#include "core/file.h"
#include "core/path.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens path read-only with O_NONBLOCK — opening a FIFO must never wait for a writer — and stats
 * it; the caller decides what kinds of file it takes. */
static fipsc_status open_and_stat(const char *path, int *fd_out, struct stat *st, fipsc_error *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    *fd_out = fd;
    return FIPSC_OK;
}

fipsc_status fipsc_map_file(const char *path, fipsc_mapped_file **out, fipsc_error *err)
{
    *out = NULL;
    /* a FIFO is refused below */
    int fd = -1;
    struct stat st;
    fipsc_status status = open_and_stat(path, &fd, &st, err);
    if (status) return status;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: not a regular file (%s)", path,
                          S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket");
    }
    fipsc_mapped_file *mf = calloc(1, sizeof *mf);
    if (!mf) {
        close(fd);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    }
    if ((status = fipsc_path_format(mf->path, sizeof mf->path, err, "%s", path))) {
        close(fd);
        free(mf);
        return status;
    }
    mf->size = (size_t)st.st_size;
    if (mf->size > 0) {
        void *p = mmap(NULL, mf->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(mf);
            return fipsc_fail(err, e == ENOMEM ? FIPSC_ERR_NOMEM : FIPSC_ERR_IO, "%s: %scannot map %zu bytes: %s",
                              path, e == ENOMEM ? "out of memory: " : "", (size_t)st.st_size, strerror(e));
        }
        mf->data = p;
    }
    close(fd);
    *out = mf;
    return FIPSC_OK;
}

void fipsc_unmap_file(fipsc_mapped_file *mf)
{
    if (!mf) return;
    if (mf->data) munmap((void *)mf->data, mf->size);
    free(mf);
}

void fipsc_unmap_file_release(void *mf) { fipsc_unmap_file(mf); }

void fipsc_file_pages_release(const void *p, size_t bytes)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) / page * page, hi = ((uintptr_t)p + bytes) / page * page;
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice: failure is harmless */
}

fipsc_status fipsc_atomic_open(const char *path, fipsc_atomic_file *af, fipsc_error *err)
{
    memset(af, 0, sizeof *af);
    /* The temporary name is the final one plus ".tmp-XXXXXX": both must fit. */
    fipsc_status st = fipsc_path_format(af->final_path, sizeof af->final_path, err, "%s", path);
    if (!st) st = fipsc_path_format(af->temp_path, sizeof af->temp_path, err, "%s.tmp-XXXXXX", path);
    if (st) {
        fipsc_fail_context(err, "output file: ");
        return st;
    }
    /* The rename on commit could not replace a directory: say so now, before any work. */
    struct stat existing;
    if (stat(path, &existing) == 0 && S_ISDIR(existing.st_mode))
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: is a directory (the output must be a file name)", path);
    /* The temporary file lives in the destination's directory so that rename is atomic. */
    int fd = mkostemp(af->temp_path, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        char dir[sizeof af->final_path];
        fipsc_path_format(dir, sizeof dir, NULL, "%s", af->final_path); /* fits: checked above */
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot create a file in directory '%s': %s",
                          path, dirname(dir), strerror(e));
    }
    /* mkostemp creates mode 0600; outputs should get the usual 0666 & ~umask. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        int e = errno;
        close(fd);
        unlink(af->temp_path);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot set permissions: %s", path, strerror(e));
    }
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        int e = errno;
        close(fd);
        unlink(af->temp_path);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: %s", path, strerror(e));
    }
    return FIPSC_OK;
}

fipsc_status fipsc_atomic_write(fipsc_atomic_file *af, const void *data, size_t n, fipsc_error *err)
{
    if (af->failed)
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: %s", af->final_path, af->first_error);
    if (n && fwrite(data, 1, n, af->fp) != n) {
        af->failed = 1;
        snprintf(af->first_error, sizeof af->first_error, "write failed: %s", strerror(errno));
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: %s", af->final_path, af->first_error);
    }
    return FIPSC_OK;
}

fipsc_status fipsc_atomic_commit(fipsc_atomic_file *af, fipsc_error *err)
{
    if (!af->fp) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: commit without open", af->final_path);
    if (!af->failed && fflush(af->fp) != 0) {
        af->failed = 1;
        snprintf(af->first_error, sizeof af->first_error, "write failed: %s", strerror(errno));
    }
    if (!af->failed && fsync(fileno(af->fp)) != 0) {
        af->failed = 1;
        snprintf(af->first_error, sizeof af->first_error, "fsync failed: %s", strerror(errno));
    }
    if (fclose(af->fp) != 0 && !af->failed) {
        af->failed = 1;
        snprintf(af->first_error, sizeof af->first_error, "close failed: %s", strerror(errno));
    }
    af->fp = NULL;
    if (af->failed) {
        unlink(af->temp_path);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: %s (nothing written)", af->final_path,
                          af->first_error);
    }
    if (rename(af->temp_path, af->final_path) != 0) {
        int e = errno;
        unlink(af->temp_path);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot rename into place: %s", af->final_path,
                          strerror(e));
    }
    af->temp_path[0] = '\0'; /* nothing left to clean up */
    /* Make the rename itself durable. */
    char dir[sizeof af->final_path];
    fipsc_path_format(dir, sizeof dir, NULL, "%s", af->final_path); /* same size: fits */
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return FIPSC_OK;
}

void fipsc_atomic_abort(fipsc_atomic_file *af)
{
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
    }
    if (af->temp_path[0]) unlink(af->temp_path);
    af->temp_path[0] = '\0';
}

fipsc_status fipsc_read_file(const char *path, char **out, size_t *size, fipsc_error *err)
{
    *out = NULL;
    /* a FIFO without a writer reads as empty; pipes with a writer (process substitution) are then
     * read normally, blocking */
    int fd = -1;
    struct stat st;
    fipsc_status status = open_and_stat(path, &fd, &st, err);
    if (status) return status;
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: is a directory, not a file", path);
    }
    int flags = fcntl(fd, F_GETFL);
    FILE *fp = flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ? NULL : fdopen(fd, "rb");
    if (!fp) {
        int e = errno;
        close(fd);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0) break;
    }
    int read_error = ferror(fp);
    fclose(fp);
    if (!buf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory reading file", path);
    if (read_error) {
        free(buf);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (size) *size = n;
    return FIPSC_OK;
}
