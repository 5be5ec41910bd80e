/* MLP descriptions: activation and role names, parameter counts (see src/ops/mlp.h). */
#include "ops/mlp.h"

#include <string.h>

static const char *const activation_names[] = {
    [FIPSC_ACT_SILU] = "silu",
    [FIPSC_ACT_GELU_TANH] = "gelu_pytorch_tanh",
    [FIPSC_ACT_GELU] = "gelu",
    [FIPSC_ACT_RELU] = "relu",
};

static const char *const role_names[] = {[FIPSC_ROLE_GATE] = "gate", [FIPSC_ROLE_UP] = "up", [FIPSC_ROLE_DOWN] = "down"};

const char *fipsc_mlp_role_name(fipsc_mlp_role role)
{
    return (unsigned)role <= FIPSC_ROLE_DOWN ? role_names[role] : "?";
}

bool fipsc_mlp_role_parse(const char *name, fipsc_mlp_role *out)
{
    for (int i = 0; i <= FIPSC_ROLE_DOWN; i++)
        if (strcmp(name, role_names[i]) == 0) {
            *out = (fipsc_mlp_role)i;
            return true;
        }
    return false;
}

fipsc_linear *fipsc_mlp_slot(const fipsc_mlp *mlp, fipsc_mlp_role role)
{
    fipsc_mlp *m = (fipsc_mlp *)mlp;
    switch (role) {
    case FIPSC_ROLE_GATE: return m->kind == FIPSC_MLP_GATED ? &m->gate : NULL;
    case FIPSC_ROLE_UP: return &m->up;
    case FIPSC_ROLE_DOWN: return &m->down;
    }
    return NULL;
}

const char *fipsc_activation_name(fipsc_activation act)
{
    return (unsigned)act <= FIPSC_ACT_RELU ? activation_names[act] : "?";
}

bool fipsc_activation_parse(const char *name, fipsc_activation *out)
{
    /* Hugging Face spells the tanh approximation several ways. */
    static const struct { const char *name; fipsc_activation act; } aliases[] = {
        {"silu", FIPSC_ACT_SILU},           {"swish", FIPSC_ACT_SILU},
        {"gelu", FIPSC_ACT_GELU},           {"gelu_pytorch_tanh", FIPSC_ACT_GELU_TANH},
        {"gelu_new", FIPSC_ACT_GELU_TANH},  {"gelu_tanh", FIPSC_ACT_GELU_TANH},
        {"relu", FIPSC_ACT_RELU},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(name, aliases[i].name) == 0) {
            *out = aliases[i].act;
            return true;
        }
    }
    return false;
}

long long fipsc_mlp_dense_params(const fipsc_mlp *mlp)
{
    long long per = (long long)mlp->d * mlp->f;
    return mlp->kind == FIPSC_MLP_GATED ? 3 * per : 2 * per;
}
