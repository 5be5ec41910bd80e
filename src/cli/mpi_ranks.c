/* The MPI transport of a compression shared by several processes (see cli/mpi_ranks.h). */
#include "cli/mpi_ranks.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int cli_mpi_launched_size(void)
{
    /* OpenMPI's launcher, then the PMI of MPICH's hydra and of Slurm. */
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        char *end;
        long n = v && *v ? strtol(v, &end, 10) : 0;
        if (v && *v && *end == '\0' && n >= 1 && n <= 1000000) return (int)n;
    }
    return 1;
}

#ifdef FIPSC_HAVE_MPI

#include <mpi.h>

/* A group image travels as its size (one uint64) and then pieces of at most CHUNK bytes, all with
 * the group's index as tag (MPI counts are ints; messages of one sender and tag arrive in
 * order). */
enum { CHUNK = 1 << 30 };

/* The sends not yet known to be complete, and their buffers. */
typedef struct pending {
    void *map;         /* the image, mapped from its staging file */
    size_t map_size;
    uint64_t *size;
    MPI_Request *req;
    int n_req;
} pending;

static struct {
    pending *p;
    int n, cap;
    char dir[4096]; /* where images are staged */
} sends;

/* Moves an image out of anonymous memory: into an unlinked file in sends.dir, mapped read-only.
 * Rank 0 takes a rank's groups only after its own, so a rank may finish several groups before
 * the first is taken; staged, they wait in page cache the kernel can write back and drop, not in
 * memory the rank holds (src/compress/memory_plan.c counts one image, the one being made). */
static fipsc_status stage(void *bytes, size_t size, void **map, fipsc_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fipsc-image-XXXXXX", sends.dir);
    int fd = mkstemp(path);
    if (fd < 0) return fipsc_fail(err, FIPSC_ERR_IO, "cannot stage a group image in %s: %s", sends.dir, strerror(errno));
    unlink(path);
    size_t at = 0;
    while (at < size) {
        ssize_t w = write(fd, (char *)bytes + at, size - at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            close(fd);
            return fipsc_fail(err, FIPSC_ERR_IO, "cannot stage a group image of %zu bytes in %s: %s", size,
                              sends.dir, strerror(e));
        }
        at += (size_t)w;
    }
    *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (*map == MAP_FAILED) {
        *map = NULL;
        return fipsc_fail(err, FIPSC_ERR_IO, "cannot map a staged group image: %s", strerror(e));
    }
    free(bytes);
    return FIPSC_OK;
}

static fipsc_status mpi_failed(fipsc_error *err, int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) len = 0;
    text[len] = '\0';
    return fipsc_fail(err, FIPSC_ERR_IO, "MPI %s failed: %s", what, len ? text : "(no message)");
}

static fipsc_status mpi_send(void *user, int k, void *bytes, size_t size, fipsc_error *err)
{
    (void)user;
    const int pieces = (int)((size + CHUNK - 1) / CHUNK);
    pending p = {NULL, size, malloc(sizeof(uint64_t)), malloc((size_t)(pieces + 1) * sizeof(MPI_Request)), 0};
    if (sends.n == sends.cap) {
        int cap = sends.cap ? 2 * sends.cap : 16;
        pending *grown = realloc(sends.p, (size_t)cap * sizeof *grown);
        if (grown) sends.p = grown, sends.cap = cap;
    }
    fipsc_status st = !p.size || !p.req || sends.n == sends.cap ? fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory")
                      : size > 0 ? stage(bytes, size, &p.map, err) : FIPSC_OK;
    if (st) {
        free(bytes);
        free(p.size);
        free(p.req);
        return st;
    }
    if (size == 0) free(bytes);
    bytes = p.map;
    *p.size = size;
    int rc = MPI_Isend(p.size, 1, MPI_UINT64_T, 0, k, MPI_COMM_WORLD, &p.req[p.n_req++]);
    for (size_t at = 0; rc == MPI_SUCCESS && at < size; at += CHUNK) {
        const int n = (int)(size - at < CHUNK ? size - at : CHUNK);
        rc = MPI_Isend((char *)bytes + at, n, MPI_BYTE, 0, k, MPI_COMM_WORLD, &p.req[p.n_req++]);
    }
    sends.p[sends.n++] = p; /* freed once complete, in cli_mpi_finish */
    return rc == MPI_SUCCESS ? FIPSC_OK : mpi_failed(err, rc, "send");
}

static fipsc_status mpi_receive(void *user, int k, int from, void **bytes, size_t *size, fipsc_error *err)
{
    (void)user;
    *bytes = NULL;
    *size = 0;
    uint64_t n = 0;
    int rc = MPI_Recv(&n, 1, MPI_UINT64_T, from, k, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_failed(err, rc, "receive");
    char *buf = malloc(n ? (size_t)n : 1);
    if (!buf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the %llu bytes of group %d",
                                (unsigned long long)n, k);
    for (uint64_t at = 0; rc == MPI_SUCCESS && at < n; at += CHUNK) {
        const int piece = (int)(n - at < CHUNK ? n - at : CHUNK);
        rc = MPI_Recv(buf + at, piece, MPI_BYTE, from, k, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    if (rc != MPI_SUCCESS) {
        free(buf);
        return mpi_failed(err, rc, "receive");
    }
    *bytes = buf;
    *size = (size_t)n;
    return FIPSC_OK;
}

static fipsc_status mpi_barrier(void *user, fipsc_error *err)
{
    (void)user;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? FIPSC_OK : mpi_failed(err, rc, "barrier");
}

bool cli_mpi_available(void) { return true; }

fipsc_status cli_mpi_start(const char *scratch_dir, fipsc_compress_ranks *r, fipsc_error *err)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(sends.dir, sizeof sends.dir, "%s", scratch_dir ? scratch_dir : tmp && *tmp ? tmp : "/tmp");
    int rc = MPI_Init(NULL, NULL);
    if (rc != MPI_SUCCESS) return mpi_failed(err, rc, "initialisation");
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    *r = (fipsc_compress_ranks){.rank = rank, .size = size, .send = mpi_send, .receive = mpi_receive,
                                .barrier = mpi_barrier};
    return FIPSC_OK;
}

void cli_mpi_finish(int rc)
{
    if (rc != 0) MPI_Abort(MPI_COMM_WORLD, rc); /* stops every rank: no output is written */
    for (int i = 0; i < sends.n; i++) {
        MPI_Waitall(sends.p[i].n_req, sends.p[i].req, MPI_STATUSES_IGNORE);
        if (sends.p[i].map) munmap(sends.p[i].map, sends.p[i].map_size);
        free(sends.p[i].size);
        free(sends.p[i].req);
    }
    free(sends.p);
    sends.p = NULL;
    sends.n = sends.cap = 0;
    MPI_Finalize();
}

#else /* built without MPI */

bool cli_mpi_available(void) { return false; }

fipsc_status cli_mpi_start(const char *scratch_dir, fipsc_compress_ranks *r, fipsc_error *err)
{
    (void)scratch_dir;
    *r = (fipsc_compress_ranks){.rank = 0, .size = 1};
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "started as one of %d processes by an MPI launcher, but this fipsc was built "
                      "without MPI: each process would compute the whole model on its own. Rebuild "
                      "with OpenMPI (Debian: libopenmpi-dev) or run a single process",
                      cli_mpi_launched_size());
}

void cli_mpi_finish(int rc) { (void)rc; }

#endif
