/* What a checkpoint file records and how (src/compress/checkpoint.c has the design): the hashes
 * of a group's original weights, of its calibration rows and of a file's contents, and the
 * group's inputs (every option that changes the result, the group, the hashes) as the strings a
 * resume compares; also the file's name and the group's matrix shapes.
 *
 * The hashes detect accidental change; they are not cryptographic. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/checkpoint_file.h"
#include "core/path.h"

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t hash_mix(uint64_t h, uint64_t w)
{
    h ^= w;
    h *= 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 32);
}

/* Eight bytes at a time, then the tail and the length. */
uint64_t compress_checkpoint_hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = hash_mix(h, w);
    }
    uint64_t tail = 0;
    if (n > i) memcpy(&tail, p + i, n - i);
    h = hash_mix(h, tail);
    return hash_mix(h, (uint64_t)n);
}

/* The group's original weights, [out, in] each, with their shapes: the bytes of each as float32
 * (a 16-bit weight widened a piece at a time), hashed as compress_checkpoint_hash_bytes hashes
 * one buffer — pieces of a whole number of 8-byte words, the tail and the length at the end. */
static uint64_t hash_weights(const fipsc_fips_group *g)
{
    enum { PIECE = 4096 }; /* floats: 16 KiB, a multiple of 8 bytes */
    float piece[PIECE];
    uint64_t h = hash_mix(CKPT_HASH_SEED, (uint64_t)g->d);
    for (int i = 0; i < g->n_matrices; i++) {
        h = hash_mix(h, ((uint64_t)g->matrices[i].role << 32) | (uint64_t)g->matrices[i].cols);
        const int64_t n = (int64_t)g->d * g->matrices[i].cols;
        for (int64_t at = 0; at < n; at += PIECE) {
            const int64_t count = n - at < PIECE ? n - at : PIECE;
            fipsc_fips_matrix_weight_span(g, i, at, count, piece);
            const size_t bytes = (size_t)count * sizeof(float);
            if (at + count < n) { /* whole words, no tail or length yet */
                for (size_t b = 0; b < bytes; b += 8) {
                    uint64_t w;
                    memcpy(&w, (const unsigned char *)piece + b, 8);
                    h = hash_mix(h, w);
                }
                continue;
            }
            /* the last piece: words, tail and the whole length, as the one-buffer hash ends */
            const size_t words = bytes / 8 * 8;
            for (size_t b = 0; b < words; b += 8) {
                uint64_t w;
                memcpy(&w, (const unsigned char *)piece + b, 8);
                h = hash_mix(h, w);
            }
            uint64_t tail = 0;
            if (bytes > words) memcpy(&tail, (const unsigned char *)piece + words, bytes - words);
            h = hash_mix(hash_mix(h, tail), (uint64_t)n * sizeof(float));
        }
    }
    return h;
}

/* The group's calibration rows: inputs and outputs of each of its MLPs, [n, d] each. */
static uint64_t hash_calibration(const fipsc_fips_group *g, const fipsc_fips_calib *calib)
{
    uint64_t h = CKPT_HASH_SEED;
    for (int j = 0; j < g->n_mlps; j++) {
        size_t bytes = (size_t)calib[j].n * (size_t)g->d * sizeof(float);
        h = hash_mix(h, (uint64_t)calib[j].n);
        h = compress_checkpoint_hash_bytes(h, calib[j].x, bytes);
        h = compress_checkpoint_hash_bytes(h, calib[j].y, bytes);
    }
    return h;
}

/* The integrity hash covers the metadata texts after the tensors' bytes. */
uint64_t compress_checkpoint_hash_metadata(uint64_t h, const char *inputs, const char *parts, const char *report)
{
    h = compress_checkpoint_hash_bytes(h, inputs, strlen(inputs));
    h = compress_checkpoint_hash_bytes(h, parts, strlen(parts));
    return compress_checkpoint_hash_bytes(h, report, strlen(report));
}

/* ---- what a group is made from ------------------------------------------------------------ */

static void put_str(cJSON *o, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_str(cJSON *o, const char *key, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(o, key, buf);
}

/* The shortest decimal that reads back as exactly x (as a double, or as a float when is_float),
 * so that 0.4 shows as 0.4 and two values compare equal exactly when their bits do. */
static void exact_decimal(char *buf, size_t cap, double x, bool is_float)
{
    for (int digits = is_float ? 6 : 15; digits <= 17; digits++) {
        snprintf(buf, cap, "%.*g", digits, x);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)x : back == x) return;
    }
}

static void put_decimal(cJSON *o, const char *key, double x, bool is_float)
{
    char buf[48];
    exact_decimal(buf, sizeof buf, x, is_float);
    cJSON_AddStringToObject(o, key, buf);
}

/* The inputs of group k as name → value strings, named as the command line spells them so that
 * a mismatch reads naturally. calib NULL leaves out the calibration (not known yet). */
cJSON *compress_checkpoint_inputs_json(const fipsc_fips_group *g, const fipsc_fips_calib *calib,
                                       const fipsc_compress_options *o, const fipsc_group_plan *plan, int k)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    put_str(j, "--method", "%s", fipsc_compress_method_name(o->method));
    put_decimal(j, "--budget", o->budget, false);
    put_decimal(j, "--sparsity", o->sparsity, false);
    if (o->nm_m > 0) put_str(j, "--nm", "%d:%d", o->nm_n, o->nm_m);
    else put_str(j, "--nm", "none");
    if (o->rank > 0) put_str(j, "--rank", "%d", o->rank);
    else put_str(j, "--rank", "from the budget");
    put_str(j, "--groups", "%s", o->groups ? o->groups : "");
    put_str(j, "--schedule", "%s", fipsc_compress_schedule_name(o->schedule));
    put_str(j, "--mode", "%s", o->mode == FIPSC_FIPS_JOINT ? "joint" : "local");
    put_str(j, "--steps", "%d", o->steps);
    put_str(j, "--batch", "%d", o->batch_rows);
    put_decimal(j, "--lr", o->lr, true);
    put_decimal(j, "--lr-min", o->lr_min, true);
    put_decimal(j, "--weight-decay", o->weight_decay, true);
    put_str(j, "--seed", "%llu", (unsigned long long)o->seed);
    put_str(j, "--u-dtype", "%s", fipsc_dtype_name(plan->u_dtype));
    put_str(j, "--v-dtype", "%s", fipsc_dtype_name(plan->v_dtype));
    put_str(j, "--storage", "%s", o->storage == FIPSC_COMPRESS_STORAGE_AUTO ? "auto" : fipsc_v_storage_name(o->storage));
    put_str(j, "--divergence-retries", "%d", o->divergence_retries);
    put_decimal(j, "--holdout", o->holdout, false);
    if (o->sequential) put_str(j, "--sequential", "true"); /* absent for teacher forcing: older files match */
    put_str(j, "--init", "%s", o->init == FIPSC_INIT_WHITENED ? "whitened" : "svd"); /* older files: svd */
    if (o->init == FIPSC_INIT_WHITENED) put_decimal(j, "--whiten-alpha", o->whiten_alpha, false);
    put_str(j, "--adam-moments", "%s", o->bf16_moments ? "bf16" : "f32"); /* older files: f32 */
    put_str(j, "--v-products", "%s", fipsc_compress_v_products_name(o->v_products)); /* older files: dense */
    put_str(j, "group", "%d (blocks %d-%d)", k, plan->blocks.first, plan->blocks.last);
    put_str(j, "model weights", "hash %016llx", (unsigned long long)hash_weights(g));
    if (calib) {
        put_str(j, "calibration rows", "%lld rows per block, hash %016llx", (long long)calib[0].n,
                (unsigned long long)hash_calibration(g, calib));
    }
    return j;
}

fipsc_status compress_checkpoint_path(const char *dir, int k, char *buf, size_t cap, fipsc_error *err)
{
    return fipsc_path_format(buf, cap, err, "%s/" CKPT_PREFIX "%03d" CKPT_SUFFIX, dir, k);
}

/* Columns of matrix (layer, role) of g, or -1. */
int compress_checkpoint_matrix_cols(const fipsc_fips_group *g, int first_block, int layer, fipsc_mlp_role role)
{
    for (int i = 0; i < g->n_matrices; i++)
        if (first_block + g->matrices[i].mlp == layer && g->matrices[i].role == role)
            return g->matrices[i].cols;
    return -1;
}
