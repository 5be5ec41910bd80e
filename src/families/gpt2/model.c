/* The GPT-2 view of a model: binding it to the tensors under GPT2LMHeadModel's names, checking
 * every shape against the configuration (see src/families/gpt2/gpt2.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/path.h"
#include "families/gpt2/gpt2.h"

static void view_free(void *p)
{
    fipsc_gpt2 *v = p;
    fipsc_gpt2_config_free(&v->cfg);
    free(v->blocks);
    free(v);
}

fipsc_gpt2 *fipsc_model_gpt2(const fipsc_model *m)
{
    return m && m->family == &fipsc_family_gpt2 ? m->view : NULL;
}

fipsc_status fipsc_gpt2_configure(fipsc_model *m, fipsc_gpt2_config *c, fipsc_error *err)
{
    fipsc_gpt2 *v = fipsc_model_gpt2(m);
    if (!v) {
        if (m->view) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "the model has another family's view already");
        if (!(v = calloc(1, sizeof *v))) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for the model view");
        fipsc_model_set_view(m, &fipsc_family_gpt2, v, view_free);
    }
    fipsc_gpt2_config_free(&v->cfg);
    v->cfg = *c;
    memset(c, 0, sizeof *c);
    return fipsc_path_format(m->arch_name, sizeof m->arch_name, err, "GPT2LMHeadModel");
}

fipsc_status fipsc_gpt2_configure_text(fipsc_model *m, const char *text, const char *origin, fipsc_error *err)
{
    fipsc_gpt2_config c;
    fipsc_status st = fipsc_gpt2_parse_config(text, origin, &c, err);
    if (!st) st = fipsc_gpt2_configure(m, &c, err);
    fipsc_gpt2_config_free(&c);
    return st;
}

/* "transformer.<name>" of n floats. */
static fipsc_status need_vector(const fipsc_model *m, const char *name, int64_t n, const float **data, fipsc_error *err)
{
    char full[160];
    snprintf(full, sizeof full, "transformer.%s", name);
    return fipsc_model_require(m, full, 1, &n, data, err);
}

/* "transformer.h.<l>.<name>.weight" [out, in] (a dense tensor or, for an MLP matrix of a compressed
 * model, its factored form) and its bias [out]. */
static fipsc_status need_linear(const fipsc_model *m, int l, const char *name, int out, int in, fipsc_linear *lin,
                                fipsc_error *err)
{
    char full[128];
    memset(lin, 0, sizeof *lin);
    snprintf(full, sizeof full, "transformer.h.%d.%s.weight", l, name);
    fipsc_status st = fipsc_model_bind_weight(m, full, out, in, lin, err);
    if (st) return st;
    snprintf(full, sizeof full, "h.%d.%s.bias", l, name);
    return need_vector(m, full, out, &lin->bias, err);
}

static fipsc_status bind_block(const fipsc_model *m, const fipsc_gpt2_config *c, int l, fipsc_gpt2_block *b,
                               fipsc_error *err)
{
    char name[64];
    const int E = c->dim, F = c->hidden;
    fipsc_status st;
#define VEC(field, what) (snprintf(name, sizeof name, "h.%d.%s", l, what), need_vector(m, name, E, &b->field, err))
    if ((st = VEC(ln_1_w, "ln_1.weight")) || (st = VEC(ln_1_b, "ln_1.bias")) ||
        (st = need_linear(m, l, "attn.c_attn", 3 * E, E, &b->c_attn, err)) ||
        (st = need_linear(m, l, "attn.c_proj", E, E, &b->attn_proj, err)) || (st = VEC(ln_2_w, "ln_2.weight")) ||
        (st = VEC(ln_2_b, "ln_2.bias")))
        return st;
#undef VEC
    fipsc_mlp *mlp = &b->mlp;
    *mlp = (fipsc_mlp){.kind = FIPSC_MLP_PLAIN, .act = c->act, .d = E, .f = F};
    if ((st = need_linear(m, l, "mlp.c_fc", F, E, &mlp->up, err)) ||
        (st = need_linear(m, l, "mlp.c_proj", E, F, &mlp->down, err)))
        return st;
    return FIPSC_OK;
}

fipsc_status fipsc_gpt2_bind(fipsc_model *m, fipsc_error *err)
{
    fipsc_gpt2 *v = fipsc_model_gpt2(m);
    if (!v) return fipsc_fail(err, FIPSC_ERR_INTERNAL, "fipsc_gpt2_bind: not a GPT-2 model");
    const fipsc_gpt2_config *c = &v->cfg;
    fipsc_gpt2_block *blocks = calloc((size_t)c->n_layers, sizeof *blocks);
    fipsc_mlp **mlps = calloc((size_t)c->n_layers, sizeof *mlps);
    if (!blocks || !mlps) {
        free(blocks);
        free(mlps);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory binding %d blocks", c->n_layers);
    }
    free(v->blocks);
    v->blocks = blocks;
    fipsc_model_set_mlps(m, mlps, c->n_layers);
    for (int l = 0; l < c->n_layers; l++) mlps[l] = &blocks[l].mlp;

    const int64_t E = c->dim, wte_shape[2] = {c->vocab_size, E}, wpe_shape[2] = {c->n_positions, E};
    fipsc_status st;
    if ((st = fipsc_model_require(m, "transformer.wte.weight", 2, wte_shape, &v->wte, err)) ||
        (st = fipsc_model_require(m, "transformer.wpe.weight", 2, wpe_shape, &v->wpe, err)))
        return st;
    for (int l = 0; l < c->n_layers; l++)
        if ((st = bind_block(m, c, l, &blocks[l], err))) return st;
    if ((st = need_vector(m, "ln_f.weight", E, &v->ln_f_w, err)) || (st = need_vector(m, "ln_f.bias", E, &v->ln_f_b, err)))
        return st;
    v->lm_head = v->wte;
    if (!c->tie_embeddings) return fipsc_model_require(m, "lm_head.weight", 2, wte_shape, &v->lm_head, err);
    return FIPSC_OK;
}

fipsc_tensor_role fipsc_gpt2_tensor_role(const fipsc_model *m, const char *name)
{
    (void)m;
    if (strcmp(name, "transformer.wte.weight") == 0 || strcmp(name, "transformer.wpe.weight") == 0 ||
        strcmp(name, "lm_head.weight") == 0)
        return FIPSC_ROLE_OF_EMBEDDINGS;
    if (strstr(name, ".mlp.") && strstr(name, ".weight")) return FIPSC_ROLE_OF_MLP;
    if (strstr(name, ".attn.")) return FIPSC_ROLE_OF_ATTENTION;
    return FIPSC_ROLE_OF_OTHER; /* norms and MLP biases, as the paper counts */
}
