/* Crash-safe, resumable compression: every finished group is saved to its own checkpoint file,
 * and a resumed run reuses the valid ones (src/compress/compress.h, docs/FORMAT.md
 * "Checkpoints").
 *
 * One group, one file DIR/group-KKK.safetensors (K = the group's index), written atomically
 * (temporary file, fsync, rename: src/core/file.h) as soon as the group is measured, before
 * it replaces the dense matrices. A kill at any moment therefore leaves every group either
 * complete or absent; at worst a temporary group-KKK.safetensors.tmp-XXXXXX, never under the
 * final name (a resume removes such leftovers).
 *
 * The file holds exactly what the pipeline would attach: per part (one per group, or one per
 * block for svd) U [d, r] and every V_i [r, f] as F32, dense with the pruned entries 0 (attach
 * converts them to the recorded storage, as for a freshly computed group), and the group's
 * report entry. A resumed group is attached from these bits, so the output file of a resumed run
 * is byte-identical to an uninterrupted one: every group's work depends only on the original
 * weights of its blocks, its calibration rows (captured from the original model) and
 * its own seed fipsc_seed_derive(seed, group index), never on other groups.
 *
 * What a checkpoint was made from is recorded next to it ("inputs"): every option that changes
 * the result (method, budget, sparsity, n:m, rank, groups, schedule, mode, steps, batch, lr,
 * lr-min, weight decay, seed, U dtype, divergence retries, held-out fraction; not the thread count: results do not
 * depend on it, so a run may resume on another), the
 * group's index and blocks, a 64-bit hash of the group's original weights and one of its
 * calibration rows (so another model file, another calibration corpus, sample count or length
 * is caught whatever its name). A resume whose inputs differ fails naming the first difference.
 *
 * A damaged file (truncated, bit-flipped, unparsable) is an error naming the file, not a silent
 * recomputation: the atomic rename means a kill cannot produce one, so damage points at the disk
 * or at outside edits, which the user should see; deleting the file recomputes that group. The
 * tensors' bytes carry a hash for this (the safetensors reader already validates the structure).
 *
 * The hashes detect accidental change; they are not cryptographic.
 *
 * This file holds the directory: preparing it, reading every saved group for a resume, attaching
 * one. The group files are checkpoint_format.c (what a file records: hashes, inputs),
 * checkpoint_save.c (writing one) and checkpoint_load.c (reading and validating one), sharing
 * src/compress/checkpoint_file.h. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compress/checkpoint_file.h"
#include "core/file.h"
#include "core/path.h"

/* ---- the directory ------------------------------------------------------------------------ */

/* The group index of a checkpoint file name "group-KKK.safetensors", or -1. */
static int checkpoint_index(const char *name)
{
    size_t np = strlen(CKPT_PREFIX), ns = strlen(CKPT_SUFFIX), len = strlen(name);
    if (len <= np + ns || strncmp(name, CKPT_PREFIX, np) != 0 || strcmp(name + len - ns, CKPT_SUFFIX) != 0)
        return -1;
    long k = 0;
    for (size_t i = np; i < len - ns; i++) {
        if (name[i] < '0' || name[i] > '9' || k > 100000000) return -1;
        k = 10 * k + (name[i] - '0');
    }
    return (int)k;
}

/* A temporary file a killed run left while writing a checkpoint ("group-KKK.safetensors.tmp-..."). */
static bool is_leftover(const char *name)
{
    const char *tmp = strstr(name, CKPT_SUFFIX ".tmp-");
    return strncmp(name, CKPT_PREFIX, strlen(CKPT_PREFIX)) == 0 && tmp != NULL;
}

/* Creates dir if needed and checks what it holds against a run of n groups: without resume no
 * group file at all; with resume, *beyond receives the index of a group file past the run's
 * groups (-1: none; the caller reports it after the group files' own checks, which name the
 * option that differs), and a killed run's temporary files are removed. Finally makes sure a
 * checkpoint can be created there. */
static fipsc_status open_dir(const fipsc_compress_checkpoint *ck, int n, const fipsc_compress_options *o,
                             int *beyond, fipsc_error *err)
{
    if (!ck->dir || !ck->dir[0]) return fipsc_fail(err, FIPSC_ERR_ARG, "the checkpoint directory is empty");
    if (o->dense_reconstruction)
        return fipsc_fail(err, FIPSC_ERR_ARG, "checkpoints hold the compressed form of each group; they "
                                              "do not apply to dense reconstruction");
    if (strlen(ck->dir) > 3000) return fipsc_fail(err, FIPSC_ERR_ARG, "checkpoint directory name too long");
    if (mkdir(ck->dir, 0777) != 0 && errno != EEXIST)
        return fipsc_fail(err, FIPSC_ERR_IO, "cannot create the checkpoint directory %s: %s", ck->dir,
                          strerror(errno));
    DIR *d = opendir(ck->dir);
    if (!d) return fipsc_fail(err, FIPSC_ERR_IO, "cannot read the checkpoint directory %s: %s", ck->dir,
                              strerror(errno));
    fipsc_status st = FIPSC_OK;
    char path[4096];
    *beyond = -1;
    for (struct dirent *e; !st && (e = readdir(d));) {
        int k = checkpoint_index(e->d_name);
        if ((st = fipsc_path_join(path, sizeof path, ck->dir, e->d_name, err))) break;
        if (k >= 0 && !ck->resume)
            st = fipsc_fail(err, FIPSC_ERR_ARG, "the checkpoint directory %s already holds checkpoints "
                            "(%s): add --resume to continue that run, or use an empty directory",
                            ck->dir, e->d_name);
        else if (k >= n)
            *beyond = k;
        else if (k < 0 && ck->resume && is_leftover(e->d_name) && unlink(path) != 0 && errno != ENOENT)
            st = fipsc_fail(err, FIPSC_ERR_IO, "cannot remove %s (left by a killed run): %s", path,
                            strerror(errno));
    }
    closedir(d);
    if (st) return st;
    fipsc_atomic_file af;
    if ((st = compress_checkpoint_path(ck->dir, 0, path, sizeof path, err)) || (st = fipsc_atomic_open(path, &af, err)))
        return st;
    fipsc_atomic_abort(&af);
    return FIPSC_OK;
}

static fipsc_status group_beyond(const fipsc_compress_checkpoint *ck, int k, int n, fipsc_error *err)
{
    if (k < 0) return FIPSC_OK;
    char path[4096];
    compress_checkpoint_path(ck->dir, k, path, sizeof path, NULL); /* fitted in open_dir */
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "checkpoint %s is for group %d, but this run has %d "
                      "groups (another --groups or model): resume with the same model, calibration "
                      "and options, or start again with an empty --checkpoint-dir", path, k, n);
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 || errno != ENOENT; /* unreadable counts: opening reports why */
}

fipsc_status fipsc_compress_checkpoint_prepare(const fipsc_compress_checkpoint *ck, const fipsc_model *m,
                                               const fipsc_compress_options *o, fipsc_error *err)
{
    fipsc_group_plan *plans;
    int n;
    fipsc_status st = fipsc_compress_plan(m, o, &plans, &n, err);
    if (st) return st;
    int beyond;
    st = open_dir(ck, n, o, &beyond, err);
    char path[4096];
    for (int k = 0; k < n && !st && ck->resume; k++) {
        if ((st = compress_checkpoint_path(ck->dir, k, path, sizeof path, err))) break;
        if (!file_exists(path)) continue;
        fipsc_fips_group g;
        fipsc_mlp *mlps;
        if ((st = compress_group_describe(m, plans[k].blocks, &g, &mlps, err))) break;
        st = compress_checkpoint_load_group(path, &g, NULL, o, &plans[k], k, NULL, err);
        fipsc_fips_group_free(&g);
        free(mlps);
    }
    if (!st) st = group_beyond(ck, beyond, n, err);
    free(plans);
    return st;
}

fipsc_status compress_checkpoint_load_all(const fipsc_compress_checkpoint *ck, const fipsc_model *m,
                                          const fipsc_calibration *cal, const fipsc_compress_options *o,
                                          const fipsc_group_plan *plans, int n, compress_saved **out,
                                          fipsc_error *err)
{
    *out = NULL;
    int beyond;
    fipsc_status st = open_dir(ck, n, o, &beyond, err);
    if (st) return st;
    compress_saved *saved = calloc((size_t)n, sizeof *saved);
    if (!saved) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    char path[4096];
    for (int k = 0; k < n && !st && ck->resume; k++) {
        /* With ranks, another rank's groups are its to resume (this one lacks their rows). */
        if (!compress_owns(o, k, n)) continue;
        if ((st = compress_checkpoint_path(ck->dir, k, path, sizeof path, err))) break;
        if (!file_exists(path)) continue;
        fipsc_fips_group g;
        fipsc_mlp *mlps;
        if ((st = compress_group_describe(m, plans[k].blocks, &g, &mlps, err))) break;
        /* Sequential calibration captures a group's rows only when it runs: the saved group's
           rows cannot be compared (the first group's can, which catches another corpus). */
        const fipsc_fips_calib *rows = &cal->blocks[plans[k].blocks.first];
        st = compress_checkpoint_load_group(path, &g, rows->n > 0 ? rows : NULL, o, &plans[k], k, &saved[k], err);
        fipsc_fips_group_free(&g);
        free(mlps);
    }
    if (!st) st = group_beyond(ck, beyond, n, err);
    if (st) {
        compress_saved_free(saved, n);
        return st;
    }
    *out = saved;
    return FIPSC_OK;
}

fipsc_status compress_checkpoint_check_rows(const fipsc_compress_checkpoint *ck, const fipsc_model *m,
                                           const fipsc_calibration *cal, const fipsc_compress_options *o,
                                           const fipsc_group_plan *plan, int k, fipsc_error *err)
{
    char path[4096];
    fipsc_status st = compress_checkpoint_path(ck->dir, k, path, sizeof path, err);
    fipsc_fips_group g;
    fipsc_mlp *mlps;
    if (st || (st = compress_group_describe(m, plan->blocks, &g, &mlps, err))) return st;
    st = compress_checkpoint_load_group(path, &g, &cal->blocks[plan->blocks.first], o, plan, k, NULL, err);
    fipsc_fips_group_free(&g);
    free(mlps);
    return st;
}

fipsc_status compress_checkpoint_apply(fipsc_model *m, compress_saved *s, fipsc_group_report *gr,
                                       fipsc_error *err)
{
    for (int q = 0; q < s->n_parts; q++) {
        fipsc_status st = fipsc_model_attach_group(m, &s->parts[q].spec, err);
        if (st) return st;
    }
    compress_saved_take_report(s, gr);
    return FIPSC_OK;
}

void compress_saved_take_report(compress_saved *s, fipsc_group_report *gr)
{
    *gr = s->report;
    s->report.mlps = NULL;
    s->report.matrices = NULL;
}

fipsc_status compress_checkpoint_from_bytes(const fipsc_model *m, const fipsc_compress_options *o,
                                            const fipsc_group_plan *plan, int k, const void *bytes, size_t size,
                                            int from_rank, compress_saved *out, fipsc_error *err)
{
    memset(out, 0, sizeof *out);
    char name[64];
    snprintf(name, sizeof name, "<group %d from rank %d>", k, from_rank);
    fipsc_fips_group g;
    fipsc_mlp *mlps;
    fipsc_status st = compress_group_describe(m, plan->blocks, &g, &mlps, err);
    if (st) return st;
    st = compress_checkpoint_load_bytes(bytes, size, name, &g, o, plan, k, out, err);
    fipsc_fips_group_free(&g);
    free(mlps);
    return st;
}

fipsc_status compress_checkpoint_read(const fipsc_compress_checkpoint *ck, int k, void **bytes, size_t *size,
                                      fipsc_error *err)
{
    char path[4096];
    char *text = NULL;
    fipsc_status st = compress_checkpoint_path(ck->dir, k, path, sizeof path, err);
    if (!st) st = fipsc_read_file(path, &text, size, err);
    *bytes = text;
    return st;
}
