/* The memory a compression will hold, predicted before any work (see compress.h,
 * fipsc_compress_memory_plan), and the scratch space of spilled calibration rows.
 *
 * Phases and what each holds, in bytes, for a group of width d, P = Σ f over its matrices (the
 * columns of W_cat), shared rank r, final V sparsity s, k = min(d, P):
 *   factors F    U 4·d·r, V 4·r·P, its bit mask r·P/8
 *   SVD init     F + W_cat 4·d·P + the SVD's work: gesdd (d·P ≤ 2²²) copies W_cat and holds
 *                U_k 4·d·k and V_kᵀ 4·k·P; the Gram route holds G = W_cat·W_catᵀ and its
 *                eigenvectors in double (≈ 3·8·d²) and a 64 MB column chunk; --init whitened
 *                adds, beside it, the inputs' moments C (8·d², double), S and S⁻¹ (8·d²) and a
 *                64 MB slab of W_cat (before the SVD, its eigendecomposition holds ≈ 32·d²)
 *   fips-init    (fips) the pruned initialisation: a second F and its reconstruction 4·d·P
 *   training     (fips) F + Adam moments 8·r·P (4·r·P with --adam-moments bf16) (+ 4·r·P of
 *                dense gradient and r·P/8 of grown marks under RigL) + U's
 *                gradient and moments 12·d·r + the best iterate (U, mask bits, kept values:
 *                4·d·r + r·P/8 + 4·(1 − s)·r·P) + one batch's activations (+ with the V-sparse
 *                step, --v-products: V's kept entries as lists, (8 + 4)·(1 − s)·r·P, and the
 *                batch's row tiles)
 *   result       F + the reconstruction 4·d·P + the stored V (≤ 6·(1 − s)·r·P) + measuring the
 *                output errors: one MLP forward over EVAL_CHUNK_ROWS rows (its output 4·rows·d
 *                and scratch, 8·rows·f for a gated MLP)
 * The per-matrix methods (svd, magnitude) hold about three copies of the group's matrices.
 * Weights the model keeps in 16 bits are never copied whole to float32 (W_cat is filled from them
 * a few hundred rows at a time), so no phase holds the group's weights beside W_cat.
 * Every compressed group stays in memory (attached: U and its V_i's kernel layout, held_bytes)
 * until the file is written: group k's phase also holds the groups before it.
 * Shared among ranks (o->ranks): a rank plans the rows and the work of its own groups only. Rank 0
 * holds every group, its own and the received ones, and while it reads a received group its
 * checkpoint image (4·d·r + 4·r·P) and the parts read from it (as much again); another rank holds
 * no group, only the image of the one it is sending while it makes it (the sent images wait in
 * file-backed pages, src/cli/mpi_ranks.c).
 * Measured against the peaks of real runs in BENCHMARKS.md ("memory plan"). The calibration
 * rows' bound is fipsc_calibration_rows_bound (calibration_source.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "compress/compress_internal.h"
#include "core/isa.h"
#include "core/memory.h"
#include "ops/mlp_forward.h"

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The block a tensor belongs to by its name ("model.layers.3." / "encoder.layer.3."), or -1. */
static int tensor_block(const char *name)
{
    const char *p = strstr(name, "layers.");
    if (!p) p = strstr(name, "layer.");
    return p ? atoi(strchr(p, '.') + 1) : -1;
}

/* Bytes a tensor holds in memory: 16-bit or float32 (none when loaded for its shape alone). */
static int64_t tensor_bytes(const fipsc_tensor *t)
{
    const int64_t n = fipsc_shape_numel(t->ndim, t->shape);
    return t->half ? 2 * n : t->data ? 4 * n : 0;
}

/* Bytes of the tensors the model owns (converted at load: anonymous memory) and of the largest
 * block's weights that stay mapped from the file (paged in while the forward is in that block). */
static void model_bytes(const fipsc_model *m, int64_t *owned, int64_t *mapped_block)
{
    *owned = *mapped_block = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].owned) *owned += tensor_bytes(&m->tensors[i]);
    for (int b = 0; b < m->n_mlps; b++) {
        int64_t mapped = 0;
        for (int i = 0; i < m->n_tensors; i++)
            if (!m->tensors[i].owned && tensor_block(m->tensors[i].name) == b) mapped += tensor_bytes(&m->tensors[i]);
        *mapped_block = max64(*mapped_block, mapped);
    }
}

/* What a compressed group holds in memory once attached, until the file is written: U in its
 * u_dtype (float32, or its 16 bits: src/ops/factored_basis.c) and every V_i in its kernel layout
 * (fipsc_factored_memory_bytes: values as float32, or bfloat16 when the group stores them so and
 * V is sparse; 16-bit positions, or for a bitmap-stored V where the AVX2/AVX-512 kernels run the
 * bitmaps of its lists; a list pointer per column or row), from the plan's predicted sparsity. */
static int64_t held_bytes(const fipsc_compress_options *o, const fipsc_group_plan *g)
{
    const int64_t d = g->d, r = g->r, P = g->P;
    /* magnitude: no basis; svd: a basis of rank r per matrix (stacked per block) */
    const int64_t u_entry = g->u_dtype == FIPSC_F16 || g->u_dtype == FIPSC_BF16 ? 2 : 4;
    const int64_t u = o->method == FIPSC_METHOD_MAGNITUDE ? 0
                      : o->method == FIPSC_METHOD_SVD      ? u_entry * d * r * g->n_matrices
                                                           : u_entry * d * r;
    const int64_t value = g->v_dtype == FIPSC_BF16 && g->storage != FIPSC_V_DENSE ? 2 : 4;
    const int64_t entries = (int64_t)((1.0 - g->sparsity) * (double)(r * P));
    switch (g->storage) {
    case FIPSC_V_DENSE: return u + value * r * P;
    case FIPSC_V_NM: return u + (value + 1) * entries;
    default: { /* positions index rows (r) of expanding and columns (f) of contracting matrices */
        const int64_t f = P / (g->n_matrices > 0 ? g->n_matrices : 1);
        const int n_mlps = g->blocks.last - g->blocks.first + 1;
        if (g->storage == FIPSC_V_BITMAP && fipsc_isa_active() >= FIPSC_ISA_AVX2) {
            /* lists as bitmaps over their inputs: f columns of r bits per expanding matrix, r rows of
             * f bits per contracting one (one per MLP) */
            const int64_t n_con = n_mlps, n_exp = g->n_matrices - n_con;
            const int64_t bits = 8 * (n_exp * f * ((r + 63) / 64) + n_con * r * ((f + 63) / 64));
            return u + entries * value + bits + 4 * (n_exp * (f + 1) + n_con * (r + 1));
        }
        return u + entries * (value + fipsc_v_csc_index_bytes((int)(r > f ? r : f))) + 4 * (P + r * g->n_matrices);
    }
    }
}

/* Whether training will run the V-sparse step (--v-products; auto: at V's final density). */
static bool plans_sparse_step(const fipsc_compress_options *o)
{
    if (o->method != FIPSC_METHOD_FIPS || o->v_products == FIPSC_FIPS_V_DENSE) return false;
    const double keep = o->nm_m > 0 ? (double)o->nm_n / o->nm_m : 1.0 - o->sparsity;
    return o->v_products == FIPSC_FIPS_V_SPARSE || keep <= FIPSC_FIPS_SPARSE_STEP_DENSITY;
}

/* The working set of one group (see the top of the file). */
static int64_t group_bytes(const fipsc_model *m, const fipsc_compress_options *o, const fipsc_group_plan *g,
                           int64_t rows_per_block)
{
    const int64_t d = g->d, P = g->P, r = g->r, k = d < P ? d : P;
    const int n_mlps = g->blocks.last - g->blocks.first + 1;
    const int64_t wcat = 4 * d * P;
    if (o->method == FIPSC_METHOD_SVD || o->method == FIPSC_METHOD_MAGNITUDE) return 3 * wcat;
    const int64_t mask = (r * P + 63) / 64 * 8, F = 4 * d * r + 4 * r * P + mask;
    int64_t svd = (double)d * (double)P <= 4194304.0 ? wcat + 4 * d * k + 4 * k * P
                                                           : 3 * 8 * d * d + ((int64_t)64 << 20);
    if (o->init == FIPSC_INIT_WHITENED) svd += 16 * d * d + ((int64_t)64 << 20);
    int64_t peak = F + wcat + svd;
    const double keep = 1.0 - (o->nm_m > 0 ? 1.0 - (double)o->nm_n / o->nm_m : o->sparsity);
    const int64_t stored = (int64_t)(6.0 * keep * (double)(r * P));
    /* measuring the output errors: the reconstructions (W_cat's size) and the stored form, and one
     * MLP forward over up to EVAL_CHUNK_ROWS rows: its output and scratch */
    const int chunk = (int)(rows_per_block < EVAL_CHUNK_ROWS ? rows_per_block : EVAL_CHUNK_ROWS);
    const int64_t eval = 4 * ((int64_t)chunk * d + (int64_t)fipsc_mlp_scratch_floats(m->mlps[g->blocks.first], chunk));
    peak = max64(peak, F + wcat + stored + eval);
    if (o->method == FIPSC_METHOD_FIPS) {
        peak = max64(peak, 2 * F + wcat);
        int f_max = 0;
        for (int l = g->blocks.first; l <= g->blocks.last; l++) f_max = m->mlps[l]->f > f_max ? m->mlps[l]->f : f_max;
        const int64_t rows = (int64_t)o->batch_rows * n_mlps;
        const int64_t batch = 4 * rows * (3 * r + 5 * (int64_t)f_max + 3 * d) + 4 * r * f_max;
        const int64_t best = 4 * d * r + r * P / 8 + (int64_t)(4.0 * keep * (double)(r * P));
        int64_t train = F + (o->bf16_moments ? 4 : 8) * r * P + 12 * d * r + best + batch;
        if (o->schedule == FIPSC_FIPS_MASK_RIGL && o->nm_m == 0) train += 4 * r * P + mask;
        if (o->divergence_retries > 0) train += F; /* the initialisation kept for a restart */
        if (plans_sparse_step(o))
            train += fipsc_fips_sparse_step_bytes((int64_t)(keep * (double)(r * P)), (int)r, f_max,
                                                  o->batch_rows < rows_per_block ? o->batch_rows : rows_per_block);
        peak = max64(peak, train);
    }
    return peak;
}

void fipsc_compress_memory_plan(const fipsc_model *m, const fipsc_compress_options *o, const fipsc_group_plan *plans,
                                int n, int64_t rows_per_block, int64_t sampling_bytes, bool spill,
                                fipsc_memory_plan *out)
{
    memset(out, 0, sizeof *out);
    out->rows_per_block = rows_per_block;
    out->spilled = spill;
    out->group_index = -1;
    int64_t mapped_block;
    model_bytes(m, &out->model, &mapped_block);
    out->model += mapped_block;
    int last = 0, d_max = 0, f_max = 0;
    int64_t done = 0; /* the compressed groups before group k, held until the file is written */
    const fipsc_compress_ranks *ranks = compress_shared_ranks(o);
    const bool writer = !ranks || ranks->rank == 0;
    for (int k = 0; k < n; k++) {
        const bool own = compress_owns(o, k, n);
        const int64_t image = 4 * (int64_t)plans[k].d * plans[k].r + 4 * (int64_t)plans[k].r * plans[k].P;
        const int64_t g = own ? done + group_bytes(m, o, &plans[k], rows_per_block) + (writer ? 0 : image)
                        : writer ? done + 2 * image : 0;
        if (writer) done += held_bytes(o, &plans[k]);
        if (g > out->group) out->group = g, out->group_index = k;
        if (!own) continue;
        const int64_t rows = 8 * rows_per_block * plans[k].d * (plans[k].blocks.last - plans[k].blocks.first + 1);
        /* the scratch file holds every group's rows, or (captured group by group) one group's */
        out->spill_bytes = o->capture_all ? out->spill_bytes + rows : max64(out->spill_bytes, rows);
        /* spilled, or captured group by group (streamed or sequential): one group's rows in memory
         * at a time */
        out->calibration = spill || !o->capture_all ? max64(out->calibration, rows) : out->calibration + rows;
        last = plans[k].blocks.last > last ? plans[k].blocks.last : last;
    }
    if (!spill) out->spill_bytes = 0;
    for (int l = 0; l <= last && l < m->n_mlps; l++) {
        d_max = m->mlps[l]->d > d_max ? m->mlps[l]->d : d_max;
        f_max = m->mlps[l]->f > f_max ? m->mlps[l]->f : f_max;
    }
    /* streamed: the residual stream of every calibration row (an MLP's input width) beside the rows */
    out->streamed = compress_streams(o);
    out->moments_halvable = o->method == FIPSC_METHOD_FIPS && !o->bf16_moments;
    out->sparse_step = plans_sparse_step(o);
    if (out->streamed) out->calibration += 4 * rows_per_block * (int64_t)d_max;
    /* the calibration forward: a pass of rows through one block (residual, norm, q/k/v, attention
     * output, MLP activations), before any group is allocated */
    const int64_t pass = rows_per_block < CALIB_ROWS_PER_PASS ? rows_per_block : CALIB_ROWS_PER_PASS;
    out->forward = max64(4 * pass * (8 * (int64_t)d_max + 3 * (int64_t)f_max), sampling_bytes);
    out->total = out->model + out->calibration + max64(out->forward, out->group);
}

int64_t fipsc_compress_memory_budget(const fipsc_compress_options *o)
{
    if (o->max_memory != 0) return o->max_memory;
    const int64_t machine = fipsc_physical_memory_bytes();
    return machine > 0 ? machine / 10 * 9 : -1;
}



fipsc_status fipsc_compress_memory_check(const fipsc_memory_plan *p, int64_t budget, fipsc_error *err)
{
    if (budget < 0 || p->total <= budget) return FIPSC_OK;
    char total[32], limit[32], model[32], cal[32], group[32], fwd[32], disk[32], spilled[96] = "";
    if (p->spilled)
        snprintf(spilled, sizeof spilled, ", spilled to a %s scratch file: the largest group's in memory",
                 fipsc_bytes_text(p->spill_bytes, disk, sizeof disk));
    else if (p->streamed)
        snprintf(spilled, sizeof spilled, ", streamed: the largest group's and the residual stream");
    return fipsc_fail(err, FIPSC_ERR_NOMEM,
                      "this run needs about %s but may use %s (--max-memory; default: the machine's memory "
                      "less 10 %%): model %s, calibration rows %s (at most %lld per block%s), then the largest "
                      "group (group %d) %s or the calibration forward or sampling %s; nothing was done. Compress fewer "
                      "blocks per group (--groups), capture fewer rows (--calib-samples/--calib-len, "
                      "--calib-count, --calib-rows), %sraise --max-memory",
                      fipsc_bytes_text(p->total, total, sizeof total), fipsc_bytes_text(budget, limit, sizeof limit),
                      fipsc_bytes_text(p->model, model, sizeof model), fipsc_bytes_text(p->calibration, cal, sizeof cal),
                      (long long)p->rows_per_block, spilled, p->group_index, fipsc_bytes_text(p->group, group, sizeof group),
                      fipsc_bytes_text(p->forward, fwd, sizeof fwd),
                      p->moments_halvable ? "halve the optimiser state (--adam-moments bf16) or " : "");
}

fipsc_status fipsc_scratch_check(const char *dir, int64_t bytes, fipsc_error *err)
{
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0)
        return fipsc_fail(err, FIPSC_ERR_IO, "scratch directory %s (for the calibration rows): %s", dir, strerror(errno));
    const double free_bytes = (double)fs.f_bavail * (double)fs.f_frsize;
    if (free_bytes < (double)bytes) {
        char need[32], have[32];
        return fipsc_fail(err, FIPSC_ERR_IO, "the calibration rows need %s of scratch space in %s, which has %s free: "
                          "give another directory (--scratch-dir) or capture fewer rows; nothing was done",
                          fipsc_bytes_text(bytes, need, sizeof need), dir, fipsc_bytes_text((int64_t)free_bytes, have, sizeof have));
    }
    return FIPSC_OK;
}
