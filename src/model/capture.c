/* Calibration capture buffers (see src/model/capture.h). */
#include "model/capture.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

void fipsc_capture_block_range(const fipsc_capture *cap, int *first, int *last)
{
    if (cap && cap->stream) {
        *first = cap->stream->from;
        *last = cap->stream->to;
        return;
    }
    *first = 0;
    *last = -1;
    for (int i = 0; cap && i < cap->n_layers; i++)
        if (cap->layers[i].layer > *last) *last = cap->layers[i].layer;
}

fipsc_status fipsc_capture_forward_span(const fipsc_capture *cap, bool whole, int n_blocks, int64_t rows, int d,
                                        fipsc_forward_span *out, fipsc_error *err)
{
    *out = (fipsc_forward_span){0, n_blocks - 1, NULL, 0};
    if (whole) return FIPSC_OK;
    fipsc_capture_block_range(cap, &out->first, &out->last);
    out->stream = cap ? cap->stream : NULL;
    return out->stream ? fipsc_residual_stream_claim(out->stream, rows, d, &out->at, err) : FIPSC_OK;
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
    if (cl->rows + take > cl->cap_rows && cap->map)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "capture of layer %d: %lld rows exceed the %lld the spill file holds",
                          cl->layer, (long long)(cl->rows + take), (long long)cl->cap_rows);
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
    if (cap->map) { /* written: to the file, not kept in memory */
        fipsc_file_pages_release(cl->x + off, len * sizeof(float));
        fipsc_file_pages_release(cl->y + off, len * sizeof(float));
    }
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
    if (cap->map) munmap(cap->map, cap->map_bytes);
    for (int i = 0; i < cap->n_layers && !cap->map; i++) {
        free(cap->layers[i].x);
        free(cap->layers[i].y);
    }
    free(cap->layers);
    memset(cap, 0, sizeof *cap);
}

fipsc_status fipsc_capture_spill(fipsc_capture *cap, const char *dir, int64_t rows, fipsc_error *err)
{
    if (cap->map || rows < 1)
        return fipsc_fail(err, FIPSC_ERR_INTERNAL, "capture spill: already spilled or no rows (%lld)", (long long)rows);
    size_t bytes = 0;
    for (int i = 0; i < cap->n_layers; i++) {
        if (cap->layers[i].x || cap->layers[i].rows)
            return fipsc_fail(err, FIPSC_ERR_INTERNAL, "capture spill: layer %d already holds rows", cap->layers[i].layer);
        bytes += 2 * (size_t)rows * (size_t)cap->layers[i].d * sizeof(float);
    }
    char path[4200];
    if (snprintf(path, sizeof path, "%s/fipsc-calibration-XXXXXX", dir) >= (int)sizeof path)
        return fipsc_fail(err, FIPSC_ERR_ARG, "scratch directory path too long: %s", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return fipsc_fail(err, FIPSC_ERR_IO, "cannot create a scratch file in %s for the calibration rows: %s", dir,
                          strerror(errno));
    unlink(path); /* nameless: gone with the process, whatever happens */
    int rc = posix_fallocate(fd, 0, (off_t)bytes);
    if (rc != 0) {
        close(fd);
        return fipsc_fail(err, FIPSC_ERR_IO, "cannot reserve %.2f GB in %s for the calibration rows: %s", (double)bytes / 1e9, dir,
                          strerror(rc));
    }
    void *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "cannot map %.2f GB of calibration rows: %s", (double)bytes / 1e9,
                          strerror(errno));
    cap->map = map;
    cap->map_bytes = bytes;
    char *next = map;
    for (int i = 0; i < cap->n_layers; i++) {
        fipsc_capture_layer *cl = &cap->layers[i];
        const size_t each = (size_t)rows * (size_t)cl->d * sizeof(float);
        cl->x = (float *)(void *)next;
        cl->y = (float *)(void *)(next + each);
        next += 2 * each;
        cl->cap_rows = rows;
    }
    return FIPSC_OK;
}

