/* FiPS-compressed linear layers in memory: the matrix a fipsc_linear's `factored` points at, its
 * kernels, and the model's registry of compressed groups (see src/model/compressed.h for the
 * contract with the compressor and docs/FORMAT.md for the file format).
 *
 * One MLP matrix M_i, oriented d × f (expanding gate/up/fc1 = the stored [f, d] weight
 * transposed, contracting down/fc2 = the stored [d, f] weight), is M_i ≈ U·V_i with the group's
 * dense basis U [d, r] and a sparse V_i [r, f]. With row-major batches (one token per row):
 *   expanding   x [n, d] -> h [n, f]:   t = x·U [n, r],   h = t·V_i          (h = V_iᵀ(Uᵀx))
 *   contracting h [n, f] -> y [n, d]:   z = h·V_iᵀ [n, r], y = z·Uᵀ          (y = U(V_i h))
 * An identity basis (U == NULL, r == d) skips the U step: the matrix is plain sparse.
 *
 * How V_i is held:
 *   - fipsc_v_stored: the file layout (docs/FORMAT.md): CSC (per column = neuron j, its nonzero
 *     rows and values), n:m packed (per column and run of m rows along r, n values and in-run
 *     offsets) or dense [r, f]. Attach, read and write go through it.
 *   - the kernel layout inside fipsc_factored_linear, chosen so that every output element is one
 *     gather over a contiguous list: expanding matrices keep CSC (output j gathers t over the
 *     rows of column j) or n:m (the same with implicit pointers); contracting matrices hold V_i
 *     row-compressed (CSR: output k of z gathers h over the columns of row k), converted from the
 *     stored CSC or n:m with every stored entry kept, so writing gives the same bytes back.
 *     Dense V stays dense [r, f] (BLAS). Where the AVX2 or AVX-512 kernels run (src/core/isa.h)
 *     a bitmap-stored V keeps its lists as bitmaps instead of positions (the same lists, columns
 *     or rows, one bit per input position): the kernel expands the bits into the lanes of a
 *     masked multiply-add with the input read in order (AVX-512: an expand instruction; AVX2: a
 *     permutation table per byte; one row at AVX-512 BF16, where few words keep more than 32
 *     positions: the other way round, the kept positions compressed and the input permuted to the
 *     values), and V takes in memory what it takes in the file.
 * Nothing is ever densified to run: the U step is a GEMM, the V step a sparse gather.
 *
 * Batched kernels (n > 1) transpose the gathered operand into tiles of FIPSC_FACTORED_TILE rows
 * so that each stored entry updates a whole tile with vector instructions. Every output element
 * is summed by one thread in the stored order, so results do not depend on the thread count. */
#ifndef FIPSC_FACTORED_H
#define FIPSC_FACTORED_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"
#include "ops/linear.h"
#include "ops/mlp.h"

/* How a V_i is stored, in memory and in the file. */
typedef enum fipsc_v_storage {
    FIPSC_V_CSC = 0, /* column-compressed: per column (neuron) its nonzero rows and values */
    FIPSC_V_NM,      /* n:m: in each column, every run of m consecutive rows keeps n slots */
    FIPSC_V_DENSE,   /* dense r × f (sparsity 0: the svd / shared-svd baselines) */
    FIPSC_V_BITMAP   /* per column a bitmap of its r rows and the kept values in row order:
                        r/8 bytes per column instead of a 16-bit index per entry: the cheaper
                        index while more than about 1 row in 16 is kept) */
} fipsc_v_storage;
#define FIPSC_V_STORAGE_COUNT (FIPSC_V_BITMAP + 1)

/* Rows of a batch processed together by the sparse kernels: each stored entry's position and
 * value are read once per tile and used on TILE rows. 32 measured 10-20 % faster than 16 with
 * the AVX2/AVX-512 kernels at r 3072, f 8192 (BENCHMARKS.md); a tile of the gathered operand is
 * then n_in·32 floats (1 MB at f 8192: the L2 of the machines measured). */
#define FIPSC_FACTORED_TILE 32

/* ------------------------------------------------------------------ stored (file) layout */

/* V_i [r, f] in the layout of the compressed file; every array malloc'ed and owned. Values are
 * float32 in memory whatever dtype the file stores them in (the group's v_dtype).
 *   CSC:   values [nnz] F32, row_idx [nnz] (< r, strictly increasing inside a column),
 *          col_ptr [f + 1] (col_ptr[0] = 0, non-decreasing, col_ptr[f] = nnz);
 *          column j holds entries col_ptr[j] .. col_ptr[j+1]-1.
 *   NM:    values [f, r/m, n] and nm_idx [f, r/m, n]: entry (j, q, s) is V[q·m + nm_idx, j];
 *          offsets < m, strictly increasing inside a run; unused slots hold value 0 at the
 *          lowest free offsets. nnz = f·(r/m)·n slots.
 *   DENSE: values [r, f]; nnz = r·f.
 *   BITMAP: bitmap [f, (r + 7) / 8]: bit k % 8 (least significant first) of byte k / 8 of
 *          column j's row is set when V[k, j] is stored; padding bits past r are 0. values [nnz]
 *          column by column, rows increasing inside a column (the CSC order); nnz = the set bits. */
typedef struct fipsc_v_stored {
    fipsc_v_storage storage;
    int r, f;
    int nm_n, nm_m;    /* NM only */
    int64_t nnz;       /* stored entries */
    float *values;
    uint32_t *col_ptr; /* CSC */
    uint32_t *row_idx; /* CSC; written to the file as U16 when r <= 65535 */
    uint8_t *nm_idx;   /* NM */
    uint8_t *bitmap;   /* BITMAP */
} fipsc_v_stored;

void fipsc_v_stored_free(fipsc_v_stored *s);

/* Packs a dense V [r, f] (row-major, leading dimension ld >= f; pruned entries exactly 0) into
 * `storage`. CSC keeps the nonzero entries; NM fails (FIPSC_ERR_ARG, naming `what` and the
 * column and run) when a run of m rows holds more than n nonzeros or r is not a multiple of m;
 * non-finite values fail with FIPSC_ERR_NUMERIC. */
fipsc_status fipsc_v_stored_from_dense(fipsc_v_storage storage, int r, int f, const float *V,
                                       int64_t ld, int nm_n, int nm_m, const char *what,
                                       fipsc_v_stored *out, fipsc_error *err);

/* Checks every invariant listed above (sizes, pointers, index ranges and order, finite values);
 * FIPSC_ERR_FORMAT naming `what` and the first offending column/entry. */
fipsc_status fipsc_v_stored_validate(const fipsc_v_stored *s, const char *what, fipsc_error *err);

/* V as dense [r, f] row-major (r·f floats). */
void fipsc_v_stored_to_dense(const fipsc_v_stored *s, float *V);

/* Bytes of V in the file with values of value_bytes (4: F32, 2: F16/BF16) each:
 *   CSC     nnz·(value_bytes + 2, or + 4 when r > 65535) + 4·(f + 1)
 *   NM      nnz·(value_bytes + 1)
 *   DENSE   r·f·value_bytes
 *   BITMAP  nnz·value_bytes + f·⌈r/8⌉ */
int64_t fipsc_v_stored_bytes(fipsc_v_storage storage, int r, int f, int64_t nnz, int value_bytes);

/* Bytes of one CSC row index: 2 while every row r - 1 fits 16 bits (r <= 65535), else 4. */
int fipsc_v_csc_index_bytes(int r);

/* The cheapest of CSC, BITMAP and DENSE in bytes for n matrices V_i of r rows, cols[i] columns
 * and nnz[i] stored entries (ties: CSC, then BITMAP). */
fipsc_v_storage fipsc_v_storage_cheapest(int r, int n, const int *cols, const int64_t *nnz, int value_bytes);

/* V stored in `to` (CSC or BITMAP) from `from` (the other one), in place: the same entries in
 * the same order. FIPSC_ERR_NOMEM or FIPSC_ERR_ARG (naming `what`) on failure; s unchanged. */
fipsc_status fipsc_v_stored_convert(fipsc_v_stored *s, fipsc_v_storage to, const char *what, fipsc_error *err);

/* Storage names used in the file and in messages: "csc", "nm", "dense", "bitmap". */
const char *fipsc_v_storage_name(fipsc_v_storage s);
bool fipsc_v_storage_parse(const char *name, fipsc_v_storage *out);

/* ------------------------------------------------------------------ in memory */

/* A group: consecutive blocks whose listed MLP matrices share U. */
typedef struct fipsc_compressed_group {
    int first_layer, last_layer;
    int d, r;
    float *U;                /* [d, r] row-major, owned, when U is float32 (u_dtype F32) */
    uint16_t *U16;           /* instead of U when u_dtype is F16 or BF16: the stored values
                                themselves, [d, r] (src/ops/factored_basis.c); both NULL =
                                identity basis (r == d) */
    fipsc_dtype u_dtype;     /* U's dtype in the file (as read, or as the attach spec asked) */
    fipsc_dtype v_dtype;     /* the V values' dtype in the file (F32, F16 or BF16); in memory
                                they are float32 holding values exactly representable in it */
    fipsc_v_storage storage; /* how its V_i are stored */
    int nm_n, nm_m;          /* NM only */
    char method[32];         /* "fips", "fips-init", "shared-svd", "svd", "magnitude", ... */
} fipsc_compressed_group;

/* The basis (src/ops/factored_basis.c). */
bool fipsc_group_has_basis(const fipsc_compressed_group *g); /* false: identity basis */
int64_t fipsc_group_basis_bytes(const fipsc_compressed_group *g); /* U as held in memory */
/* U as float32 into dst [d, r] (exact: widened when held in 16 bits). */
void fipsc_group_basis_f32(const fipsc_compressed_group *g, float *dst);
/* Sets g's basis (g has neither U nor U16 yet; d and r set) from float32 U [d, r], held as
 * `dtype` (F16/BF16: rounded to nearest even into U16; anything else: a float32 copy, u_dtype F32).
 * A value the dtype cannot hold (F16 beyond 65504) fails with FIPSC_ERR_NUMERIC and sets *beyond
 * to its flat index (else -1). */
fipsc_status fipsc_group_set_basis(fipsc_compressed_group *g, const float *U, fipsc_dtype dtype, int64_t *beyond,
                                   fipsc_error *err);
/* A 16-bit basis widened to float32 in place, for training it (u_dtype kept: the file rounds it
 * back). A no-op for a float32 or identity basis. */
fipsc_status fipsc_group_widen_basis(fipsc_compressed_group *g, fipsc_error *err);
/* t[n, r] = x[n, d]·U and y[n, d] = z[n, r]·Uᵀ + beta·y, whichever way U is held. */
fipsc_status fipsc_group_basis_in(const fipsc_compressed_group *g, int n, const float *x, float *t, fipsc_error *err);
fipsc_status fipsc_group_basis_out(const fipsc_compressed_group *g, int n, const float *z, float beta, float *y,
                                   fipsc_error *err);
/* Frees g, its U or U16 (NULL: nothing). */
void fipsc_group_free(fipsc_compressed_group *g);

typedef enum fipsc_v_layout {
    FIPSC_VK_CSC = 0, /* lists per column of V (expanding, stored CSC) */
    FIPSC_VK_CSR,     /* lists per row of V (contracting, stored CSC or NM) */
    FIPSC_VK_NM,      /* n:m packed along r (expanding, stored NM) */
    FIPSC_VK_DENSE,   /* dense [r, f] */
    FIPSC_VK_BITMAP   /* the lists of CSC (expanding) or CSR (contracting) as bitmaps over their
                         input: bit i of list o set when input position i is in the list */
} fipsc_v_layout;

typedef struct fipsc_factored_linear {
    char *weight_name;       /* the dense weight it stands for ("model.layers.0.mlp.up_proj.weight") */
    int layer;               /* block index (into fipsc_model.mlps) */
    fipsc_mlp_role role;
    bool expanding;          /* gate/up/fc1: W = (U·V)ᵀ [f, d]; down/fc2: W = U·V [d, f] */
    int out, in;             /* the dense weight's shape [out, in] */
    int d, r, f;
    const fipsc_compressed_group *group; /* U and the storage */
    int64_t nnz;             /* stored entries of V (see fipsc_v_stored) */
    fipsc_dtype source_dtype; /* how the dense weight it replaced was stored at its source (F32, F16
                                 or BF16): what its dense bytes count (F32 when unknown) */

    /* kernel layout */
    fipsc_v_layout layout;
    int n_lists;             /* CSC, BITMAP expanding: f; CSR, BITMAP contracting: r */
    uint32_t *ptr;           /* CSC/CSR/BITMAP: [n_lists + 1], list o's values ptr[o] .. ptr[o+1]-1 */
    uint64_t *bits;          /* BITMAP: [n_lists, words], bit i % 64 of word i / 64: position i */
    int words;               /* BITMAP: ⌈list input length / 64⌉ (r expanding, f contracting) */
    bool bits_gather;        /* BITMAP: at most one word in 64 keeps more than 32 positions, so the
                                AVX-512 BF16 one-row kernel gathers the input to the values rather
                                than expanding the values (ops/factored_bits16_row.c) */
    uint16_t *idx16;         /* CSC/CSR: positions (rows of V for CSC, columns for CSR) when */
    uint32_t *idx32;         /*   the indexed dimension is <= 65535 (idx16), else idx32 */
    float *val;              /* CSC/CSR/BITMAP: [nnz]; NM: [f, r/m, n]; DENSE: [r, f] */
    uint16_t *val16;         /* instead of val, for a group whose v_dtype is BF16 and whose V is
                                sparse: the same values as bfloat16, half the bytes to hold and
                                to read (the kernels widen them exactly, one at a time); 8
                                zeros follow the last, so 8 values from any p <= nnz can be read */
    uint8_t *nm_idx;         /* NM: [f, r/m, n] */
} fipsc_factored_linear;

/* CSC/CSR lists: the position of stored entry p (a row of V in a column list, a column in a row
 * list), whichever width the positions are held in. */
static inline uint32_t fipsc_factored_position(const fipsc_factored_linear *fl, int64_t p)
{
    return fl->idx16 ? fl->idx16[p] : fl->idx32[p];
}

/* CSC/CSR lists: the first entry of list o at a position >= q (a list's positions increase), or
 * the end of the list. */
static inline uint32_t fipsc_factored_list_from(const fipsc_factored_linear *fl, int o, int64_t q)
{
    uint32_t lo = fl->ptr[o], hi = fl->ptr[o + 1];
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if ((int64_t)fipsc_factored_position(fl, mid) < q) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Builds the linear for the MLP matrix `role` of block `layer` from its stored V (taken over:
 * freed or moved into the linear, also on failure; *v is left empty); f is v->f. A bitmap-stored
 * V gets the BITMAP kernel layout where the active instruction set has its kernels (AVX2, AVX-512),
 * CSC/CSR elsewhere; every kernel level runs either layout. */
fipsc_status fipsc_factored_new(const char *weight_name, int layer, fipsc_mlp_role role,
                                const fipsc_compressed_group *group, fipsc_v_stored *v,
                                fipsc_factored_linear **out, fipsc_error *err);

/* fipsc_factored_new with the choice made by the caller (tests): bitmap_lists asks for the BITMAP
 * kernel layout for a bitmap-stored V. */
fipsc_status fipsc_factored_new_as(const char *weight_name, int layer, fipsc_mlp_role role,
                                   const fipsc_compressed_group *group, fipsc_v_stored *v, bool bitmap_lists,
                                   fipsc_factored_linear **out, fipsc_error *err);
void fipsc_factored_free(fipsc_factored_linear *fl);

/* V in the file layout again (new arrays; exactly the entries it was built from). */
fipsc_status fipsc_factored_to_stored(const fipsc_factored_linear *fl, fipsc_v_stored *out,
                                      fipsc_error *err);

/* The dense weight U·V_i in model orientation [out, in] (out·in floats). */
fipsc_status fipsc_factored_densify(const fipsc_factored_linear *fl, float *w, fipsc_error *err);

/* Bytes of V_i in the file (fipsc_v_stored_bytes at the group's v_dtype). */
int64_t fipsc_factored_v_bytes(const fipsc_factored_linear *fl);

/* Bytes the kernel layout of V_i holds in memory (values, positions, list pointers). */
int64_t fipsc_factored_memory_bytes(const fipsc_factored_linear *fl);

/* For code that updates V's values in place by position (distillation): widens BF16-held values
 * (val16) to float32 (val) and turns BITMAP lists into CSC/CSR positions; a no-op when neither
 * applies. */
fipsc_status fipsc_factored_unpack(fipsc_factored_linear *fl, fipsc_error *err);

/* ------------------------------------------------------------------ kernels */

/* y[n, out] = x[n, in]·Wᵀ + bias (accumulate: y += ...), W = the factored matrix [out, in].
 * x and y are row-major and must not overlap; bias [out] or NULL. Scratch is allocated inside. */
fipsc_status fipsc_factored_apply(const fipsc_factored_linear *fl, const float *bias, int n,
                                  const float *x, float *y, bool accumulate, fipsc_error *err);

/* Whether a and b are expanding matrices of the same group (same U, same input width), so
 * fipsc_factored_apply_shared can compute x·U once for both (gate and up of a gated MLP). */
bool fipsc_factored_shares_input(const fipsc_factored_linear *a, const fipsc_factored_linear *b);

/* ya = x·Waᵀ + bias_a and yb = x·Wbᵀ + bias_b with t = x·U computed once. Requires
 * fipsc_factored_shares_input(a, b); results equal two fipsc_factored_apply calls bit for bit. */
fipsc_status fipsc_factored_apply_shared(const fipsc_factored_linear *a, const float *bias_a,
                                         const fipsc_factored_linear *b, const float *bias_b,
                                         int n, const float *x, float *ya, float *yb,
                                         fipsc_error *err);

#endif
