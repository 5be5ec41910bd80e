/* The Vision Transformer's hooks for the compressed format (see families/vit/compressed.h). */
#include "families/vit/compressed.h"

#include "families/vit/vit.h"

fipsc_status vit_cf_config_to_json(const fipsc_model *m, char **out, fipsc_error *err)
{
    return fipsc_vit_config_json(m, true, out, err);
}

fipsc_status vit_cf_config_from_json(fipsc_model *m, const char *text, const char *origin,
                                     fipsc_error *err)
{
    return fipsc_vit_configure(m, text, origin, err);
}

bool vit_cf_is_tensor(const fipsc_model *m, const char *name)
{
    const fipsc_vit *v = fipsc_model_vit(m);
    return v && fipsc_vit_is_tensor(name, v);
}

fipsc_status vit_cf_bind(fipsc_model *m, fipsc_error *err) { return fipsc_vit_rebind(m, err); }
