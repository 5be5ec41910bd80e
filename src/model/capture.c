/* Calibration capture buffers (see src/model/capture.h). */
#include "model/capture.h"

#include <stdlib.h>
#include <string.h>

fipsc_status fipsc_capture_init(fipsc_capture *cap, const fipsc_model *m, const int *layers,
                                int n_layers, int64_t max_rows, fipsc_error *err)
{
    memset(cap, 0, sizeof *cap);
    if (n_layers <= 0 || max_rows < 0)
        return fipsc_fail(err, FIPSC_ERR_ARG, "capture needs at least one layer and max_rows >= 0 "
                          "(got %d layers, max_rows %lld)", n_layers, (long long)max_rows);
    for (int i = 0; i < n_layers; i++) {
        if (layers[i] < 0 || layers[i] >= m->n_mlps)
            return fipsc_fail(err, FIPSC_ERR_ARG, "capture: layer %d does not exist (the model has %d MLP blocks)",
                              layers[i], m->n_mlps);
        for (int j = 0; j < i; j++)
            if (layers[j] == layers[i])
                return fipsc_fail(err, FIPSC_ERR_ARG, "capture: layer %d is listed twice", layers[i]);
    }
    cap->layers = calloc((size_t)n_layers, sizeof *cap->layers);
    if (!cap->layers) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for capture");
    cap->n_layers = n_layers;
    cap->max_rows = max_rows;
    for (int i = 0; i < n_layers; i++) {
        cap->layers[i].layer = layers[i];
        cap->layers[i].d = m->mlps[layers[i]]->d;
    }
    return FIPSC_OK;
}

fipsc_capture_layer *fipsc_capture_find(fipsc_capture *cap, int layer)
{
    if (!cap) return NULL;
    for (int i = 0; i < cap->n_layers; i++)
        if (cap->layers[i].layer == layer) return &cap->layers[i];
    return NULL;
}

fipsc_status fipsc_capture_append(fipsc_capture *cap, fipsc_capture_layer *cl, const float *x,
                                  const float *y, int64_t n, fipsc_error *err)
{
    int64_t take = n;
    if (cap->max_rows > 0 && cl->rows + take > cap->max_rows) take = cap->max_rows - cl->rows;
    if (take < 0) take = 0;
    cl->dropped += n - take;
    if (take == 0) return FIPSC_OK;
    if (cl->rows + take > cl->cap_rows) {
        int64_t want = cl->cap_rows ? 2 * cl->cap_rows : 1024;
        while (want < cl->rows + take) want *= 2;
        if (cap->max_rows > 0 && want > cap->max_rows) want = cap->max_rows;
        size_t bytes = (size_t)want * (size_t)cl->d * sizeof(float);
        float *nx = realloc(cl->x, bytes);
        if (!nx) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory capturing %lld rows of layer %d",
                                   (long long)want, cl->layer);
        cl->x = nx;
        float *ny = realloc(cl->y, bytes);
        if (!ny) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory capturing %lld rows of layer %d",
                                   (long long)want, cl->layer);
        cl->y = ny;
        cl->cap_rows = want;
    }
    size_t off = (size_t)cl->rows * (size_t)cl->d, len = (size_t)take * (size_t)cl->d;
    memcpy(cl->x + off, x, len * sizeof(float));
    memcpy(cl->y + off, y, len * sizeof(float));
    cl->rows += take;
    return FIPSC_OK;
}

void fipsc_capture_clear(fipsc_capture *cap)
{
    for (int i = 0; i < cap->n_layers; i++) {
        cap->layers[i].rows = 0;
        cap->layers[i].dropped = 0;
    }
}

void fipsc_capture_free(fipsc_capture *cap)
{
    if (!cap) return;
    for (int i = 0; i < cap->n_layers; i++) {
        free(cap->layers[i].x);
        free(cap->layers[i].y);
    }
    free(cap->layers);
    memset(cap, 0, sizeof *cap);
}
