/* The trained parameters of a distillation (src/model/distill.h): every group's basis U and the
 * kept entries of every compressed V_i, with their AdamW moments and starting values, the dense
 * weights the objective reads, and the chain from dL/dW_i back to the factors. */
#include <stdlib.h>
#include <string.h>

#include "fips/fips.h"
#include "model/distill.h"

fipsc_status fipsc_distill_params_init(fipsc_distill_params *P, int max_matrices, fipsc_error *err)
{
    memset(P, 0, sizeof *P);
    P->cap = max_matrices > 0 ? max_matrices : 1;
    P->bases = calloc((size_t)P->cap, sizeof *P->bases);
    P->mats = calloc((size_t)P->cap, sizeof *P->mats);
    P->stale = true;
    if (!P->bases || !P->mats) {
        fipsc_distill_params_free(P);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    return FIPSC_OK;
}

void fipsc_distill_params_free(fipsc_distill_params *P)
{
    for (int k = 0; P->bases && k < P->n_bases; k++) {
        free(P->bases[k].dU);
        free(P->bases[k].m);
        free(P->bases[k].v);
        free(P->bases[k].saved);
    }
    for (int k = 0; P->mats && k < P->n_mats; k++) {
        fipsc_distill_matrix *p = &P->mats[k];
        float *bufs[] = {p->g, p->m, p->v, p->saved, p->dense, p->dw};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
        free(p->pos);
        free(p->keep);
    }
    free(P->bases);
    free(P->mats);
    free(P->vdense);
    free(P->vgrad);
    memset(P, 0, sizeof *P);
}

/* Positions k·f + j in V [r, f] of the stored entries, in the kernel layout's order. */
static fipsc_status positions(fipsc_distill_matrix *p, fipsc_error *err)
{
    const fipsc_factored_linear *fl = p->fl;
    p->nnz = fl->nnz;
    if (!(p->pos = malloc((size_t)(p->nnz > 0 ? p->nnz : 1) * sizeof *p->pos)))
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    switch (fl->layout) {
    case FIPSC_VK_CSC:
    case FIPSC_VK_CSR:
        for (int list = 0; list < fl->n_lists; list++)
            for (uint32_t e = fl->ptr[list]; e < fl->ptr[list + 1]; e++) {
                const int64_t at = fipsc_factored_position(fl, e);
                p->pos[e] = fl->layout == FIPSC_VK_CSC ? at * fl->f + list : (int64_t)list * fl->f + at;
            }
        return FIPSC_OK;
    case FIPSC_VK_DENSE:
        for (int64_t e = 0; e < p->nnz; e++) p->pos[e] = e;
        return FIPSC_OK;
    case FIPSC_VK_NM:
        break;
    case FIPSC_VK_BITMAP: /* fipsc_factored_unpack made positions of the bitmap */
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "%s: V not unpacked before distillation", fl->weight_name);
    }
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "%s: distillation of n:m-packed V is not supported (compress without --nm, or "
                      "distil before packing)", fl->weight_name);
}

/* The chain's scratch holds a V_i [r, f] densely. */
static fipsc_status grow_scratch(fipsc_distill_params *P, int64_t floats, fipsc_error *err)
{
    if (floats <= P->scratch) return FIPSC_OK;
    float *a = realloc(P->vdense, (size_t)floats * sizeof *a);
    if (a) P->vdense = a;
    float *b = a ? realloc(P->vgrad, (size_t)floats * sizeof *b) : NULL;
    if (b) P->vgrad = b;
    if (!a || !b) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    P->scratch = floats;
    return FIPSC_OK;
}

fipsc_status fipsc_distill_params_add(fipsc_distill_params *P, const fipsc_linear *lin, int d,
                                      fipsc_distill_matrix **out, fipsc_error *err)
{
    *out = NULL;
    if (!lin->factored) return FIPSC_OK;
    fipsc_factored_linear *fl = (fipsc_factored_linear *)lin->factored; /* owned by the model's registry */
    if (!fipsc_group_has_basis(fl->group) || fl->group->d != d)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "%s: distillation needs a dense basis U of width %d",
                          fl->weight_name, d);
    if (P->n_mats == P->cap)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "distillation: more than %d compressed matrices", P->cap);
    int b = 0;
    while (b < P->n_bases && P->bases[b].group != fl->group) b++;
    if (b == P->n_bases) {
        fipsc_distill_basis *B = &P->bases[P->n_bases++];
        B->group = (fipsc_compressed_group *)fl->group; /* owned by the model's registry */
        /* trained in float32 (written back in the group's u_dtype) */
        fipsc_status st = fipsc_group_widen_basis(B->group, err);
        if (st) return st;
        const size_t n = (size_t)B->group->d * B->group->r;
        B->dU = malloc(n * sizeof(float));
        B->m = calloc(n, sizeof(float));
        B->v = calloc(n, sizeof(float));
        B->saved = malloc(n * sizeof(float));
        if (!B->dU || !B->m || !B->v || !B->saved) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
        memcpy(B->saved, B->group->U, n * sizeof(float));
        P->params += (int64_t)n;
    }
    /* the values are updated in place, in float32 (written back in the group's v_dtype) */
    fipsc_status st = fipsc_factored_unpack(fl, err);
    if (st) return st;
    fipsc_distill_matrix *p = &P->mats[P->n_mats++];
    p->fl = fl;
    p->basis = b;
    if ((st = positions(p, err)) || (st = grow_scratch(P, (int64_t)fl->r * fl->f, err))) return st;
    const size_t nz = (size_t)(p->nnz > 0 ? p->nnz : 1), dense = (size_t)fl->out * fl->in;
    p->keep = calloc((nz + 63) / 64, sizeof *p->keep);
    p->g = malloc(nz * sizeof(float));
    p->m = calloc(nz, sizeof(float));
    p->v = calloc(nz, sizeof(float));
    p->saved = malloc(nz * sizeof(float));
    p->dense = malloc(dense * sizeof(float));
    p->dw = malloc(dense * sizeof(float));
    if (!p->keep || !p->g || !p->m || !p->v || !p->saved || !p->dense || !p->dw)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int64_t e = 0; e < p->nnz; e++)
        if (fl->val[e] != 0.0f) {
            p->keep[e >> 6] |= (uint64_t)1 << (e & 63);
            P->params++;
        }
    memcpy(p->saved, fl->val, (size_t)p->nnz * sizeof(float));
    P->stale = true;
    *out = p;
    return FIPSC_OK;
}

fipsc_status fipsc_distill_params_densify(fipsc_distill_params *P, fipsc_error *err)
{
    if (!P->stale) return FIPSC_OK;
    for (int k = 0; k < P->n_mats; k++) {
        fipsc_status st = fipsc_factored_densify(P->mats[k].fl, P->mats[k].dense, err);
        if (st) return st;
    }
    P->stale = false;
    return FIPSC_OK;
}

void fipsc_distill_params_changed(fipsc_distill_params *P) { P->stale = true; }

void fipsc_distill_params_chain(fipsc_distill_params *P)
{
    for (int k = 0; k < P->n_bases; k++) {
        const fipsc_compressed_group *g = P->bases[k].group;
        memset(P->bases[k].dU, 0, (size_t)g->d * g->r * sizeof(float));
    }
    for (int k = 0; k < P->n_mats; k++) {
        fipsc_distill_matrix *p = &P->mats[k];
        const fipsc_factored_linear *fl = p->fl;
        fipsc_distill_basis *b = &P->bases[p->basis];
        float *V = P->vdense, *G = P->vgrad;
        memset(V, 0, (size_t)fl->r * fl->f * sizeof *V);
        for (int64_t e = 0; e < p->nnz; e++) V[p->pos[e]] = fl->val[e];
        fipsc_fips_chain_dense_grad(fl->d, fl->r, fl->f, fl->expanding, b->group->U, V, p->dw, b->dU, G);
        for (int64_t e = 0; e < p->nnz; e++) p->g[e] = (p->keep[e >> 6] >> (e & 63)) & 1 ? G[p->pos[e]] : 0.0f;
    }
}

void fipsc_distill_params_step(fipsc_distill_params *P, const fipsc_adamw *o, int t, float lr)
{
    for (int k = 0; k < P->n_bases; k++) {
        fipsc_distill_basis *B = &P->bases[k];
        const int d = B->group->d, r = B->group->r;
        fipsc_adamw_step(o, t, lr, d, r, B->group->U, NULL, 0, r, B->m, B->v, r, B->dU, r);
    }
    for (int k = 0; k < P->n_mats; k++) {
        fipsc_distill_matrix *p = &P->mats[k];
        if (p->nnz > 0)
            fipsc_adamw_step(o, t, lr, 1, p->nnz, p->fl->val, p->keep, 0, p->nnz, p->m, p->v, p->nnz, p->g, p->nnz);
    }
    P->stale = true;
}

void fipsc_distill_params_restore(fipsc_distill_params *P)
{
    for (int k = 0; k < P->n_bases; k++)
        memcpy(P->bases[k].group->U, P->bases[k].saved,
               (size_t)P->bases[k].group->d * P->bases[k].group->r * sizeof(float));
    for (int k = 0; k < P->n_mats; k++)
        memcpy(P->mats[k].fl->val, P->mats[k].saved, (size_t)P->mats[k].nnz * sizeof(float));
    P->stale = true;
}

int fipsc_distill_params_blocks(const fipsc_distill_params *P) { return P->n_bases + P->n_mats; }

float *fipsc_distill_params_block(fipsc_distill_params *P, int k, int64_t *len, const float **grad)
{
    if (k < P->n_bases) {
        *len = (int64_t)P->bases[k].group->d * P->bases[k].group->r;
        *grad = P->bases[k].dU;
        return P->bases[k].group->U;
    }
    fipsc_distill_matrix *p = &P->mats[k - P->n_bases];
    *len = p->nnz;
    *grad = p->g;
    return p->fl->val;
}
