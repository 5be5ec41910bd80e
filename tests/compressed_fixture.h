/* Test fixture: synthetic compressed groups on a loaded Llama model, built from its real weights
 * with the FiPS core (SVD, then magnitude or n:m pruning) or as an identity-basis magnitude
 * baseline, attached with fipsc_model_attach_group. */
#ifndef FIPSC_TEST_COMPRESSED_FIXTURE_H
#define FIPSC_TEST_COMPRESSED_FIXTURE_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/compressed.h"
#include "fips/fips.h"

static inline fipsc_mlp_role role_of(fipsc_mlp_role r)
{
    return r == FIPSC_ROLE_GATE ? FIPSC_ROLE_GATE : r == FIPSC_ROLE_UP ? FIPSC_ROLE_UP : FIPSC_ROLE_DOWN;
}

/* A group over blocks first..last: SVD at rank r, then global magnitude pruning to `sparsity`
 * (> 0) or else n:m pruning (nm_m > 0), attached with `storage` (and nm_n:nm_m) and U and the V
 * values held in u_dtype and v_dtype. */
static inline fipsc_status attach_svd_group_as(fipsc_model *m, int first, int last, int r, double sparsity,
                                               int nm_n, int nm_m, fipsc_v_storage storage, fipsc_dtype u_dtype,
                                               fipsc_dtype v_dtype, const char *method, fipsc_error *err)
{
    int n = last - first + 1;
    fipsc_mlp *mlps = malloc((size_t)n * sizeof *mlps);
    for (int i = 0; i < n; i++) mlps[i] = *m->mlps[first + i];
    fipsc_fips_group g;
    fipsc_fips_factors F = {0};
    fipsc_status st = fipsc_fips_group_init(&g, mlps, n, err);
    if (st) {
        free(mlps);
        return st;
    }
    if (!(st = fipsc_fips_init_group(&g, r, FIPSC_FIPS_SVD_AUTO, NULL, 0.0, &F, err))) {
        if (sparsity > 0)
            st = fipsc_fips_prune_magnitude(&g, &F, NULL, 0, fipsc_fips_keep_count((int64_t)r * g.P, sparsity), err);
        else if (nm_m)
            st = fipsc_fips_prune_nm(&g, &F, NULL, 0, nm_n, nm_m, err);
    }
    const int n_mats = g.n_matrices;
    fipsc_group_matrix *mats = calloc((size_t)g.n_matrices, sizeof *mats);
    float **vs = calloc((size_t)g.n_matrices, sizeof *vs);
    for (int i = 0; !st && i < g.n_matrices; i++) {
        const fipsc_fips_matrix *mx = &g.matrices[i];
        vs[i] = malloc((size_t)r * mx->cols * sizeof(float));
        for (int k = 0; k < r; k++)
            memcpy(vs[i] + (size_t)k * mx->cols, F.V + (size_t)k * g.P + mx->col_offset, (size_t)mx->cols * sizeof(float));
        mats[i] = (fipsc_group_matrix){first + mx->mlp, role_of(mx->role), vs[i]};
    }
    if (!st) {
        fipsc_group_spec spec = {.first_layer = first, .last_layer = last, .d = g.d, .r = r, .U = F.U,
                                 .n_matrices = g.n_matrices, .matrices = mats, .storage = storage,
                                 .nm_n = nm_n, .nm_m = nm_m, .method = method, .u_dtype = u_dtype,
                                 .v_dtype = v_dtype};
        fipsc_fips_group_free(&g); /* borrows the dense weights attach is about to drop */
        st = fipsc_model_attach_group(m, &spec, err);
    } else {
        fipsc_fips_group_free(&g);
    }
    for (int i = 0; vs && i < n_mats; i++) free(vs[i]);
    free(vs);
    free(mats);
    fipsc_fips_factors_free(&F);
    free(mlps);
    return st;
}

/* attach_svd_group_as with U and V in float32. */
static inline fipsc_status attach_svd_group(fipsc_model *m, int first, int last, int r, double sparsity,
                                            int nm_n, int nm_m, fipsc_v_storage storage, const char *method,
                                            fipsc_error *err)
{
    return attach_svd_group_as(m, first, last, r, sparsity, nm_n, nm_m, storage, FIPSC_F32, FIPSC_F32, method, err);
}

/* Magnitude baseline on one block: identity basis, V = the oriented weight with its smallest
 * `sparsity` fraction (per matrix) set to zero. */
static inline int cmp_abs(const void *a, const void *b)
{
    float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
    return (x > y) - (x < y);
}

static inline fipsc_status attach_magnitude(fipsc_model *m, int layer, double sparsity, fipsc_error *err)
{
    const fipsc_mlp *mlp = m->mlps[layer];
    int d = mlp->d, f = mlp->f;
    const fipsc_linear *lins[3] = {&mlp->gate, &mlp->up, &mlp->down};
    fipsc_group_matrix mats[3];
    float *vs[3];
    for (int i = 0; i < 3; i++) {
        float *V = vs[i] = malloc((size_t)d * f * sizeof *V), *sorted = malloc((size_t)d * f * sizeof *V);
        for (int a = 0; a < d; a++)
            for (int j = 0; j < f; j++) /* oriented d × f */
                V[(size_t)a * f + j] = i < 2 ? lins[i]->w[(size_t)j * d + a] : lins[i]->w[(size_t)a * f + j];
        memcpy(sorted, V, (size_t)d * f * sizeof *V);
        qsort(sorted, (size_t)d * f, sizeof *sorted, cmp_abs);
        float threshold = fabsf(sorted[(size_t)(sparsity * d * f)]);
        for (size_t k = 0; k < (size_t)d * f; k++)
            if (fabsf(V[k]) < threshold) V[k] = 0.0f;
        free(sorted);
        mats[i] = (fipsc_group_matrix){layer, (fipsc_mlp_role)i, V};
    }
    fipsc_group_spec spec = {.first_layer = layer, .last_layer = layer, .d = d, .r = d, .U = NULL, .n_matrices = 3,
                             .matrices = mats, .storage = FIPSC_V_CSC, .method = "magnitude"};
    fipsc_status st = fipsc_model_attach_group(m, &spec, err);
    for (int i = 0; i < 3; i++) free(vs[i]);
    return st;
}

#endif
