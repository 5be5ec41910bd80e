/* Creating and freeing a language-model distiller (src/families/llama/distill.h): the checks
 * (a plain Llama block structure, float32 weights, the original the model was compressed from),
 * the trained parameters (src/model/distill.h), the sequences with their fixed rows — the stream
 * entering the first compressed MLP block, computed once by the original layers below it — and
 * the batch buffers, sized by the longest sequences. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "families/llama/distill_state.h"
#include "families/llama/internal.h"
#include "ops/linear.h"

static void cache_free(lm_layer_cache *c)
{
    float *bufs[] = {c->x_a, c->qkv, c->probs, c->x_m, c->n_m, c->gate, c->up, c->act};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

void lm_distiller_free(lm_distiller *D)
{
    if (!D) return;
    fipsc_distill_params_free(&D->P);
    if (D->cache)
        for (int l = 0; l <= D->last; l++) cache_free(&D->cache[l]);
    float *bufs[] = {D->stream, D->rope_cos, D->rope_sin, D->x, D->dx, D->tmp_d, D->tmp_w, D->tmp_f, D->tmp_f2,
                     D->logits, D->teacher, D->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(D->cache);
    free(D->tokens);
    free(D->row_kl);
    free(D->mlps);
    free(D->len);
    free(D->ids);
    free(D->row0);
    free(D->offset);
    free(D->poff);
    free(D);
}

/* Everything the distiller's forward and backward handle, or why not. */
static fipsc_status check_models(const lm_distiller *D, const fipsc_llama *o, fipsc_error *err)
{
    const fipsc_llama *v = D->v;
    const fipsc_config *c = &v->cfg, *oc = &o->cfg;
    if (c->gemma || c->attn_softcap > 0 || c->final_softcap > 0 || c->query_pre_attn_scalar > 0)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation of %s: Gemma's norms, softcaps and attention "
                          "scaling have no backward in fipsc's distiller (Llama, Mistral, Qwen2 blocks only)",
                          D->m->arch_name);
    if (oc->dim != c->dim || oc->n_layers != c->n_layers || oc->vocab_size != c->vocab_size ||
        oc->n_heads != c->n_heads || oc->n_kv_heads != c->n_kv_heads || oc->head_dim != c->head_dim)
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "distillation: the original (d %d, %d layers, vocabulary %d) is not "
                          "the shape of the compressed model (d %d, %d layers, vocabulary %d)", oc->dim, oc->n_layers,
                          oc->vocab_size, c->dim, c->n_layers, c->vocab_size);
    const size_t d = (size_t)D->d, qd = (size_t)D->q_dim, kvd = (size_t)D->kv_dim;
    if (!v->lm_head.w || !v->final_norm || v->lm_head.factored)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation needs a float32 output head (convert a 16-bit "
                          "checkpoint to float32 first)");
    bool ok = fipsc_distill_same_weights(v->lm_head.w, o->lm_head.w, (size_t)D->vocab * d) &&
              fipsc_distill_same_weights(v->final_norm, o->final_norm, d);
    for (int l = 0; l <= D->last; l++) {
        const fipsc_llama_layer *L = &v->layers[l], *O = &o->layers[l];
        if (L->post_attn_norm || L->post_ffn_norm || L->window > 0)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: layer %d has post-norms or a sliding "
                              "window (Gemma-2), which fipsc's distiller has no backward for", l);
        const fipsc_linear *parts[4] = {&L->q, &L->k, &L->v, &L->o};
        for (int k = 0; k < 4; k++)
            if (!parts[k]->w)
                return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation needs float32 attention weights (%s is "
                                  "not): convert a 16-bit checkpoint to float32 first", parts[k]->weight_name);
        const fipsc_mlp *mlp = &L->mlp;
        if (mlp->kind != FIPSC_MLP_GATED || mlp->d != D->d || mlp->f != D->f || mlp->gate.bias || mlp->up.bias ||
            mlp->down.bias)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation: layer %d's MLP is not a gated %d → %d MLP "
                              "without biases", l, D->d, D->f);
        const fipsc_linear *slots[3] = {&mlp->gate, &mlp->up, &mlp->down};
        const fipsc_linear *oslots[3] = {&O->mlp.gate, &O->mlp.up, &O->mlp.down};
        for (int k = 0; k < 3; k++) {
            if (!slots[k]->factored && !slots[k]->w)
                return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation needs float32 MLP weights (%s is not)",
                                  slots[k]->weight_name);
            if (oslots[k]->factored)
                return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the original's %s is compressed: give the "
                                  "uncompressed model the compressed one was made from", oslots[k]->weight_name);
        }
        ok = ok && fipsc_distill_same_weights(L->q.w, O->q.w, qd * d) &&
             fipsc_distill_same_weights(L->k.w, O->k.w, kvd * d) && fipsc_distill_same_weights(L->v.w, O->v.w, kvd * d) &&
             fipsc_distill_same_weights(L->o.w, O->o.w, d * qd) &&
             fipsc_distill_same_weights(L->attn_norm, O->attn_norm, d) &&
             fipsc_distill_same_weights(L->ffn_norm, O->ffn_norm, d) &&
             (!L->q.bias || fipsc_distill_same_weights(L->q.bias, O->q.bias, qd));
        if (!ok)
            return fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the original differs from the compressed model "
                              "outside its MLP matrices (layer %d or the head): not the model it was compressed from", l);
    }
    return FIPSC_OK;
}

static int descending(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

static fipsc_status alloc_buffers(lm_distiller *D, fipsc_error *err)
{
    int *sorted = malloc((size_t)D->n * sizeof *sorted);
    if (!sorted) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    memcpy(sorted, D->len, (size_t)D->n * sizeof *sorted);
    qsort(sorted, (size_t)D->n, sizeof *sorted, descending);
    D->max_len = sorted[0];
    for (int i = 0; i < D->batch_cap; i++) {
        D->rows_cap += sorted[i];
        D->probs_cap += (int64_t)sorted[i] * sorted[i];
    }
    free(sorted);
    const size_t R = (size_t)D->rows_cap, d = (size_t)D->d, f = (size_t)(D->f > D->q_dim ? D->f : D->q_dim);
    const size_t half = (size_t)D->hd / 2, L = (size_t)D->max_len;
    D->scratch_per_thread = (int64_t)(L * L + L * D->W);
    D->offset = malloc(((size_t)D->batch_cap + 1) * sizeof *D->offset);
    D->poff = malloc(((size_t)D->batch_cap + 1) * sizeof *D->poff);
    D->cache = calloc((size_t)D->last + 1, sizeof *D->cache);
    D->rope_cos = malloc(L * half * sizeof(float));
    D->rope_sin = malloc(L * half * sizeof(float));
    D->x = malloc(R * d * sizeof(float));
    D->dx = malloc(R * d * sizeof(float));
    D->tmp_d = malloc(R * d * sizeof(float));
    D->tmp_w = malloc(R * D->W * sizeof(float));
    D->tmp_f = malloc(R * f * sizeof(float));
    D->tmp_f2 = malloc(R * f * sizeof(float));
    D->logits = malloc(R * D->vocab * sizeof(float));
    D->teacher = malloc(R * D->vocab * sizeof(float));
    D->tokens = malloc(R * sizeof *D->tokens);
    D->row_kl = malloc(R * sizeof *D->row_kl);
    D->scratch = malloc((size_t)omp_get_max_threads() * D->scratch_per_thread * sizeof(float));
    bool ok = D->offset && D->poff && D->cache && D->rope_cos && D->rope_sin && D->x && D->dx && D->tmp_d &&
              D->tmp_w && D->tmp_f && D->tmp_f2 && D->logits && D->teacher && D->tokens && D->row_kl && D->scratch;
    for (int l = D->first; ok && l <= D->last; l++) {
        lm_layer_cache *c = &D->cache[l];
        c->x_a = malloc(R * d * sizeof(float));
        c->qkv = malloc(R * D->W * sizeof(float));
        c->probs = malloc((size_t)D->probs_cap * D->heads * sizeof(float));
        c->x_m = malloc(R * d * sizeof(float));
        c->n_m = malloc(R * d * sizeof(float));
        c->gate = malloc(R * D->f * sizeof(float));
        c->up = malloc(R * D->f * sizeof(float));
        c->act = malloc(R * D->f * sizeof(float));
        ok = c->x_a && c->qkv && c->probs && c->x_m && c->n_m && c->gate && c->up && c->act;
    }
    if (!ok)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for distillation batches of %d sequences (%lld rows)",
                          D->batch_cap, (long long)D->rows_cap);
    llama_fill_rope(&D->v->cfg, D->rope_cos, D->rope_sin, 0, D->max_len);
    return FIPSC_OK;
}

/* The stream entering layer first's MLP block for sequences [s0, s0 + cnt), by the layers below:
 * their attention and (dense) MLP blocks, then the first layer's attention. */
static void fixed_rows(lm_distiller *D, int s0, int cnt)
{
    const int d = D->d;
    D->offset[0] = 0;
    D->poff[0] = 0;
    for (int b = 0; b < cnt; b++) {
        const int i = s0 + b;
        D->offset[b + 1] = D->offset[b] + D->len[i];
        D->poff[b + 1] = D->poff[b] + (int64_t)D->len[i] * D->len[i];
        for (int t = 0; t < D->len[i]; t++)
            fipsc_linear_weight_row(&D->v->tok_embeddings, D->ids[i][t], D->x + (size_t)(D->offset[b] + t) * d);
    }
    const int rows = D->offset[cnt];
    lm_layer_cache *c = &D->cache[D->first]; /* scratch here: overwritten by every batch */
    for (int l = 0; l < D->first; l++) {
        lm_attention_fwd(D, l, cnt, rows, D->x, c);
        lm_mlp_fwd(D, l, rows, D->x, c);
    }
    lm_attention_fwd(D, D->first, cnt, rows, D->x, c);
    memcpy(D->stream + D->row0[s0] * d, D->x, (size_t)rows * d * sizeof(float));
}

fipsc_status lm_distiller_new(fipsc_model *m, const fipsc_model *original, const fipsc_corpus *corpus, int batch_cap,
                              lm_distiller **out, fipsc_error *err)
{
    *out = NULL;
    const fipsc_llama *v = fipsc_model_llama(m), *o = original ? fipsc_model_llama(original) : NULL;
    if (!v || !o)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "distillation of a language model needs the compressed model "
                          "and its original, both of the Llama family (%s, %s)", m->arch_name,
                          original ? original->arch_name : "none");
    if (batch_cap < 1) return fipsc_fail(err, FIPSC_ERR_ARG, "distillation batch of %d sequences", batch_cap);
    lm_distiller *D = calloc(1, sizeof *D);
    if (!D) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    const fipsc_config *cfg = &v->cfg;
    D->m = m;
    D->v = v;
    D->orig = original;
    D->d = cfg->dim;
    D->f = v->layers[0].mlp.f;
    D->vocab = cfg->vocab_size;
    D->heads = cfg->n_heads;
    D->kv_heads = cfg->n_kv_heads;
    D->hd = cfg->head_dim;
    D->q_dim = D->heads * D->hd;
    D->kv_dim = D->kv_heads * D->hd;
    D->W = D->q_dim + 2 * D->kv_dim;
    D->last = cfg->n_layers - 1;
    D->eps = cfg->norm_eps;
    D->scale = 1.0f / sqrtf((float)D->hd);
    D->first = -1;
    fipsc_status st = check_models(D, o, err);
    if (!st) st = fipsc_distill_params_init(&D->P, 3 * cfg->n_layers, err);
    if (!st && !(D->mlps = calloc((size_t)cfg->n_layers, sizeof *D->mlps)))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    for (int l = 0; l <= D->last && !st; l++) {
        const fipsc_mlp *mlp = &v->layers[l].mlp;
        lm_mlp_view *mv = &D->mlps[l];
        if ((st = fipsc_distill_params_add(&D->P, &mlp->gate, D->d, &mv->p_gate, err)) ||
            (st = fipsc_distill_params_add(&D->P, &mlp->up, D->d, &mv->p_up, err)) ||
            (st = fipsc_distill_params_add(&D->P, &mlp->down, D->d, &mv->p_down, err)))
            break;
        mv->gate = mv->p_gate ? mv->p_gate->dense : mlp->gate.w;
        mv->up = mv->p_up ? mv->p_up->dense : mlp->up.w;
        mv->down = mv->p_down ? mv->p_down->dense : mlp->down.w;
        if ((mv->p_gate || mv->p_up || mv->p_down) && D->first < 0) D->first = l;
    }
    if (!st && D->first < 0)
        st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: the model has no compressed MLP (compress it first)");
    /* the sequences of two tokens or more */
    if (!st) st = fipsc_corpus_check_vocab(corpus, D->vocab, "the model", err);
    if (!st) {
        const int n = corpus->n_seqs > 0 ? corpus->n_seqs : 1;
        D->len = malloc((size_t)n * sizeof *D->len);
        D->ids = malloc((size_t)n * sizeof *D->ids);
        D->row0 = malloc(((size_t)n + 1) * sizeof *D->row0);
        if (!D->len || !D->ids || !D->row0) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    }
    for (int s = 0; !st && s < corpus->n_seqs; s++) {
        const int len = fipsc_corpus_length(corpus, s);
        if (cfg->max_seq_len > 0 && len > cfg->max_seq_len)
            st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: sequence %d has %d tokens, more than the model's "
                            "context of %d", s + 1, len, cfg->max_seq_len);
        if (st || len < 2) continue;
        if (D->n == 0) D->row0[0] = 0;
        D->len[D->n] = len;
        D->ids[D->n] = fipsc_corpus_seq(corpus, s);
        D->row0[D->n + 1] = D->row0[D->n] + len;
        D->scored += len - 1;
        D->n++;
    }
    if (!st && D->n == 0) st = fipsc_fail(err, FIPSC_ERR_ARG, "distillation: no sequence has two tokens or more");
    if (!st) {
        D->batch_cap = batch_cap < D->n ? batch_cap : D->n;
        st = alloc_buffers(D, err);
    }
    if (!st && !(D->stream = malloc((size_t)D->row0[D->n] * D->d * sizeof(float))))
        st = fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the %lld rows of the distillation set",
                        (long long)D->row0[D->n]);
    for (int s0 = 0; !st && s0 < D->n; s0 += D->batch_cap)
        fixed_rows(D, s0, D->n - s0 < D->batch_cap ? D->n - s0 : D->batch_cap);
    if (st) {
        lm_distiller_free(D);
        return st;
    }
    D->objective = (fipsc_distill_objective){D, D->n, D->batch_cap, lm_distill_batch, lm_distill_score};
    *out = D;
    return FIPSC_OK;
}

int lm_distiller_sequences(const lm_distiller *D) { return D->n; }
int lm_distiller_first_layer(const lm_distiller *D) { return D->first; }
int lm_distiller_block_count(const lm_distiller *D) { return fipsc_distill_params_blocks(&D->P); }
float *lm_distiller_block(lm_distiller *D, int k, int64_t *len, const float **grad)
{
    return fipsc_distill_params_block(&D->P, k, len, grad);
}
void lm_distiller_changed(lm_distiller *D) { fipsc_distill_params_changed(&D->P); }
