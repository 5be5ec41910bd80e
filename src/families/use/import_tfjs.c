/* Importing the Universal Sentence Encoder Lite from its TF.js graph model (see
 * src/families/use/use.h for the network and src/formats/tfjs.h for the files).
 *
 * The forward in families/use/encoder.c is hand-written, so before translating any weight the
 * importer checks that the graph computes what that code computes: the doubled embedding, the
 * timing signal, layer 0's projected residual, the pre-LN residual wiring of every layer, ReLU
 * MLPs, mean pooling, tanh and L2 normalisation; and it reads the constants the graph uses (head
 * count and width, attention scale, LayerNorm epsilon, token limit, L2 epsilon) instead of
 * assuming them. A graph that differs anywhere fails with a message naming the node. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "formats/tfjs.h"
#include "families/use/use.h"
#include "core/path.h"
#include "ops/transpose.h"

#define K_ "module_apply_default/Encoder_en/KonaTransformer/"
#define TS_ K_ "Encode/TransformerStack/"
#define VARS_ "module/Encoder_en/KonaTransformer/Encode/"
#define MAX_LAYERS 16

typedef struct importer {
    const fipsc_tfjs_model *t;
    const char *path; /* model.json, for messages */
} importer;

/* ------------------------------------------------------------------ graph checks */

static fipsc_status not_use(const importer *im, const char *what, const char *node, fipsc_error *err)
{
    return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                      "%s: not the Universal Sentence Encoder Lite graph fipsc implements: %s (node "
                      "'%s')",
                      im->path, what, node);
}

/* Node `name` exists, is an `op`, and its first inputs are `inputs` (NULL entries: any). */
static fipsc_status expect_node(const importer *im, const char *name, const char *op, int n,
                                const char *const *inputs, fipsc_error *err)
{
    const fipsc_tfjs_node *node = fipsc_tfjs_find_node(im->t, name);
    char what[1200];
    if (!node) return not_use(im, "a node is missing", name, err);
    if (strcmp(node->op, op) != 0) {
        snprintf(what, sizeof what, "the node is a %s, expected a %s", node->op, op);
        return not_use(im, what, name, err);
    }
    if (node->n_inputs < n) {
        snprintf(what, sizeof what, "the node has %d inputs, expected at least %d", node->n_inputs, n);
        return not_use(im, what, name, err);
    }
    for (int i = 0; i < n; i++)
        if (inputs[i] && strcmp(node->inputs[i], inputs[i]) != 0) {
            snprintf(what, sizeof what, "input %d is '%s', expected '%s'", i, node->inputs[i], inputs[i]);
            return not_use(im, what, name, err);
        }
    return FIPSC_OK;
}
#define EXPECT(im, name, op, ...)                                                                 \
    expect_node(im, name, op, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)), \
                (const char *[]){__VA_ARGS__}, err)

/* The weight `name` with dtype and element count, or an error naming it. */
static fipsc_status need_weight(const importer *im, const char *name, fipsc_dtype dtype, int64_t numel,
                                const fipsc_tfjs_weight **out, fipsc_error *err)
{
    const fipsc_tfjs_weight *w = fipsc_tfjs_find(im->t, name);
    if (!w) return fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "%s: missing weight '%s'", im->path, name);
    int64_t have = fipsc_shape_numel(w->ndim, w->shape);
    if (w->dtype != dtype || (numel >= 0 && have != numel)) {
        char shape[128];
        fipsc_shape_format(w->ndim, w->shape, shape, sizeof shape);
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s: weight '%s' is %s %s, expected %s with %lld elements",
                          im->path, name, fipsc_dtype_name(w->dtype), shape, fipsc_dtype_name(dtype),
                          (long long)numel);
    }
    *out = w;
    return FIPSC_OK;
}

/* The weight's 2-D shape [rows, cols] (leading 1s ignored: conv kernels are [1, 1, in, out]). */
static fipsc_status need_matrix(const importer *im, const char *name, int64_t rows, int64_t cols,
                                const fipsc_tfjs_weight **out, fipsc_error *err)
{
    const fipsc_tfjs_weight *w = NULL;
    fipsc_status st = need_weight(im, name, FIPSC_F32, -1, &w, err);
    if (st) return st;
    bool ok = w->ndim >= 2 && w->shape[w->ndim - 2] == rows && w->shape[w->ndim - 1] == cols;
    for (int i = 0; ok && i < w->ndim - 2; i++) ok = w->shape[i] == 1;
    if (!ok) {
        char shape[128];
        fipsc_shape_format(w->ndim, w->shape, shape, sizeof shape);
        return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s: weight '%s' has shape %s, expected [%lld, %lld]",
                          im->path, name, shape, (long long)rows, (long long)cols);
    }
    *out = w;
    return FIPSC_OK;
}

/* The constant fed as input `k` of node `name`: a scalar float or int. */
static fipsc_status const_input(const importer *im, const char *name, int k, fipsc_dtype dtype,
                                double *value, fipsc_error *err)
{
    const fipsc_tfjs_node *node = fipsc_tfjs_find_node(im->t, name);
    if (!node || node->n_inputs <= k) return not_use(im, "a node or its constant input is missing", name, err);
    const fipsc_tfjs_weight *w = NULL;
    fipsc_status st = need_weight(im, node->inputs[k], dtype, 1, &w, err);
    if (st) return st;
    if (dtype == FIPSC_F32) {
        float v;
        memcpy(&v, w->data, sizeof v);
        *value = v;
    } else {
        int32_t v;
        memcpy(&v, w->data, sizeof v);
        *value = v;
    }
    return FIPSC_OK;
}

/* The LayerNorm at `prefix` ("…/layer_prepostprocess/layer_norm/") normalises node `input` and
 * uses the scale and bias `vars` ("…/layer_norm/layer_norm_{scale,bias}/ConcatPartitions/concat");
 * returns its epsilon. The graph: sub_1 = x - Mean(x); rsqrt(Mean(sub_1²) + eps)·scale·sub_1 + bias. */
static fipsc_status check_layer_norm(const importer *im, const char *prefix, const char *input,
                                     const char *vars, double *eps, fipsc_error *err)
{
    char n_mean[600], n_sub[600], n_sq[600], n_mean1[600], n_add[600], n_rsqrt[600], n_mul[600],
        n_mul1[600], n_out[600], v_scale[600], v_bias[600];
    snprintf(n_mean, sizeof n_mean, "%sMean", prefix);
    snprintf(n_sub, sizeof n_sub, "%ssub_1", prefix);
    snprintf(n_sq, sizeof n_sq, "%sSquare", prefix);
    snprintf(n_mean1, sizeof n_mean1, "%sMean_1", prefix);
    snprintf(n_add, sizeof n_add, "%sadd", prefix);
    snprintf(n_rsqrt, sizeof n_rsqrt, "%sRsqrt", prefix);
    snprintf(n_mul, sizeof n_mul, "%smul", prefix);
    snprintf(n_mul1, sizeof n_mul1, "%smul_1", prefix);
    snprintf(n_out, sizeof n_out, "%sadd_1", prefix);
    snprintf(v_scale, sizeof v_scale, "%slayer_norm_scale/ConcatPartitions/concat", vars);
    snprintf(v_bias, sizeof v_bias, "%slayer_norm_bias/ConcatPartitions/concat", vars);
    fipsc_status st;
    if ((st = EXPECT(im, n_mean, "Mean", input)) || (st = EXPECT(im, n_sub, "Sub", input, n_mean)) ||
        (st = EXPECT(im, n_sq, "Square", n_sub)) || (st = EXPECT(im, n_mean1, "Mean", n_sq)) ||
        (st = EXPECT(im, n_add, "Add", n_mean1)) || (st = EXPECT(im, n_rsqrt, "Rsqrt", n_add)) ||
        (st = EXPECT(im, n_mul, "Mul", v_scale, n_rsqrt)) || (st = EXPECT(im, n_mul1, "Mul", n_mul, n_sub)) ||
        (st = EXPECT(im, n_out, "Add", n_mul1, v_bias)))
        return st;
    return const_input(im, n_add, 1, FIPSC_F32, eps, err);
}

/* Everything the forward relies on in layer l; fills heads and head_dim, checks the scale. */
static fipsc_status check_layer(const importer *im, int l, int d_in, int *heads,
                                int *head_dim, double *eps, fipsc_error *err)
{
    char L[256], V[256], in[300], a[600], b[600], c[600], vars[600];
    snprintf(L, sizeof L, TS_ "Layer_%d/TransformerLayer/", l);
    snprintf(V, sizeof V, K_ "Encode/Layer_%d/TransformerLayer/", l);
    if (l == 0) snprintf(in, sizeof in, TS_ "Layer_0/add");
    else snprintf(in, sizeof in, TS_ "Layer_%d/TransformerLayer/FFN/layer_postprocess/add", l - 1);
    fipsc_status st;
    double e1, e2;

    /* attention block: LN, fused qkv projection split in thirds, heads, scaled dot products */
    snprintf(a, sizeof a, "%slayer_prepostprocess/layer_norm/", L);
    snprintf(vars, sizeof vars, "%slayer_prepostprocess/layer_norm/", V);
    if ((st = check_layer_norm(im, a, in, vars, &e1, err))) return st;
    snprintf(a, sizeof a, "%sMultiheadAttention/split", L);
    const fipsc_tfjs_node *split = fipsc_tfjs_find_node(im->t, a);
    if ((st = EXPECT(im, a, "SplitV", NULL, NULL))) return st;
    const fipsc_tfjs_weight *sizes = NULL;
    if ((st = need_weight(im, split->inputs[1], FIPSC_I32, 3, &sizes, err))) return st;
    const int32_t *sz = sizes->data;
    if (sz[0] != d_in || sz[1] != d_in || sz[2] != d_in)
        return not_use(im, "q, k and v are not equal thirds of the qkv projection", a, err);
    double h = 0, hd = 0;
    snprintf(a, sizeof a, "%sMultiheadAttention/split_heads/split_last_dimension/Reshape/shape", L);
    if ((st = EXPECT(im, a, "Pack", NULL, NULL, NULL, NULL)) || (st = const_input(im, a, 2, FIPSC_I32, &h, err)) ||
        (st = const_input(im, a, 3, FIPSC_I32, &hd, err)))
        return st;
    if (h < 1 || hd < 1 || h * hd != d_in)
        return not_use(im, "heads times head width is not the attention width", a, err);
    *heads = (int)h;
    *head_dim = (int)hd;
    double scale;
    snprintf(a, sizeof a, "%sMultiheadAttention/mul", L);
    snprintf(b, sizeof b, "%sMultiheadAttention/split_heads/transpose", L);
    if ((st = EXPECT(im, a, "Mul", b)) || (st = const_input(im, a, 1, FIPSC_F32, &scale, err))) return st;
    if ((float)scale != (float)(1.0 / sqrt(hd)))
        return not_use(im, "the attention scale is not 1/sqrt(head width)", a, err);
    snprintf(a, sizeof a, "%sMultiheadAttention/DotProductAttention/BaseDotProductAttention/Softmax", L);
    if ((st = EXPECT(im, a, "Softmax", NULL))) return st;

    /* attention residual: layer 0 adds a projection of its input, later layers the input itself */
    snprintf(a, sizeof a, "%slayer_postprocess/add", L);
    snprintf(b, sizeof b, "%sMultiheadAttention/Squeeze_1", L);
    if (l == 0) {
        snprintf(c, sizeof c, "%sAdjustResidualInput/Scatter/ScatterNd", L);
        if ((st = EXPECT(im, a, "Add", b, c))) return st;
        snprintf(a, sizeof a, "%sAdjustResidualInput/Gather/GatherNd", L);
        snprintf(b, sizeof b, "%sAdjustResidualInput/dense/MatMul", L);
        if ((st = EXPECT(im, a, "GatherNd", in)) || (st = EXPECT(im, b, "MatMul", a))) return st;
    } else if ((st = EXPECT(im, a, "Add", b, in))) {
        return st;
    }

    /* MLP block: LN, fc1, ReLU, fc2, residual */
    snprintf(in, sizeof in, "%slayer_postprocess/add", L);
    snprintf(a, sizeof a, "%sFFN/layer_prepostprocess/layer_norm/", L);
    snprintf(vars, sizeof vars, "%sFFN/layer_prepostprocess/layer_norm/", V);
    if ((st = check_layer_norm(im, a, in, vars, &e2, err))) return st;
    snprintf(a, sizeof a, "%sFFN/conv1/Relu", L);
    snprintf(b, sizeof b, "%sFFN/conv1/BiasAdd", L);
    if ((st = EXPECT(im, a, "Relu", b))) return st;
    snprintf(a, sizeof a, "%sFFN/conv2/Tensordot/Reshape", L);
    snprintf(b, sizeof b, "%sFFN/conv1/Relu", L);
    if ((st = EXPECT(im, a, "Reshape", b))) return st;
    snprintf(a, sizeof a, "%sFFN/layer_postprocess/add", L);
    snprintf(b, sizeof b, "%sFFN/Scatter/ScatterNd", L);
    if ((st = EXPECT(im, a, "Add", b, in))) return st;
    if (e1 != e2 || (l > 0 && e1 != *eps))
        return not_use(im, "the LayerNorms use different epsilons", a, err);
    *eps = e1;
    return FIPSC_OK;
}

/* The embedding, the pooling and the output, and the graph's constants for them. */
static fipsc_status check_ends(const importer *im, int n_layers, double *max_tokens, double *l2_eps,
                               fipsc_error *err)
{
    fipsc_status st;
    char last[300];
    snprintf(last, sizeof last, TS_ "Layer_%d/TransformerLayer/FFN/layer_postprocess/add", n_layers - 1);
    const char *H = "module_apply_default/Encoder_en/hidden_layers/";
    char tanh_[300], bias[300], matmul[300], sq[300], sum[300], mx[300], rs[300], out[300];
    snprintf(matmul, sizeof matmul, "%stanh_layer_0/MatMul", H);
    snprintf(bias, sizeof bias, "%stanh_layer_0/BiasAdd", H);
    snprintf(tanh_, sizeof tanh_, "%stanh_layer_0/Tanh", H);
    snprintf(sq, sizeof sq, "%sl2_normalize/Square", H);
    snprintf(sum, sizeof sum, "%sl2_normalize/Sum", H);
    snprintf(mx, sizeof mx, "%sl2_normalize/Maximum", H);
    snprintf(rs, sizeof rs, "%sl2_normalize/Rsqrt", H);
    snprintf(out, sizeof out, "%sl2_normalize", H);
    double one;
    if (/* the embedding enters twice: alone and with the timing signal (sin first, then cos) */
        (st = EXPECT(im, K_ "Encode/embedding_lookup", "GatherV2", "module/Embeddings_en")) ||
        (st = EXPECT(im, TS_ "Layer_0/add", "Add", K_ "Encode/Scatter/ScatterNd",
                     TS_ "Layer_0/AddTimingSignal/Scatter/ScatterNd")) ||
        (st = EXPECT(im, K_ "Encode/Scatter/ScatterNd", "ScatterNd", NULL, K_ "Encode/embedding_lookup")) ||
        (st = EXPECT(im, TS_ "Layer_0/AddTimingSignal/Scatter/ScatterNd", "ScatterNd", NULL,
                     TS_ "Layer_0/AddTimingSignal/add")) ||
        (st = EXPECT(im, TS_ "Layer_0/AddTimingSignal/add", "Add", TS_ "Layer_0/AddTimingSignal/Gather/GatherNd",
                     TS_ "Layer_0/AddTimingSignal/TimingSignal/concat")) ||
        (st = EXPECT(im, TS_ "Layer_0/AddTimingSignal/Gather/GatherNd", "GatherNd", K_ "Encode/Scatter/ScatterNd")) ||
        (st = EXPECT(im, TS_ "Layer_0/AddTimingSignal/TimingSignal/concat", "ConcatV2",
                     TS_ "Layer_0/AddTimingSignal/TimingSignal/Sin", TS_ "Layer_0/AddTimingSignal/TimingSignal/Cos")) ||
        (st = EXPECT(im, TS_ "Layer_0/AddTimingSignal/TimingSignal/Sin", "Sin", TS_ "Layer_0/AddTimingSignal/TimingSignal/mul_2")) ||
        (st = EXPECT(im, TS_ "Layer_0/AddTimingSignal/TimingSignal/Cos", "Cos", TS_ "Layer_0/AddTimingSignal/TimingSignal/mul_2")) ||
        (st = EXPECT(im, TS_ "Layer_0/AddTimingSignal/TimingSignal/mul_2", "Mul",
                     TS_ "Layer_0/AddTimingSignal/TimingSignal/ExpandDims",
                     TS_ "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1")) ||
        /* tokens beyond the limit are dropped */
        (st = EXPECT(im, K_ "ClipToMaxLength/Less", "Less", K_ "ClipToMaxLength/strided_slice")) ||
        (st = const_input(im, K_ "ClipToMaxLength/Less", 1, FIPSC_I32, max_tokens, err)) ||
        /* mean pooling over the tokens, divided by max(count, 1) */
        (st = EXPECT(im, K_ "mul", "Mul", last, K_ "ExpandDims")) ||
        (st = EXPECT(im, K_ "Sum", "Sum", K_ "mul")) ||
        (st = EXPECT(im, K_ "div", "RealDiv", K_ "Sum", K_ "ExpandDims_1")) ||
        (st = EXPECT(im, K_ "Maximum", "Maximum", K_ "Encode/TransformerStack/MaskLength/Sum")) ||
        (st = const_input(im, K_ "Maximum", 1, FIPSC_I32, &one, err)) ||
        /* tanh dense layer and L2 normalisation */
        (st = EXPECT(im, matmul, "MatMul", K_ "div", "module/Encoder_en/hidden_layers/tanh_layer_0/weights")) ||
        (st = EXPECT(im, bias, "BiasAdd", matmul, "module/Encoder_en/hidden_layers/tanh_layer_0/bias")) ||
        (st = EXPECT(im, tanh_, "Tanh", bias)) || (st = EXPECT(im, sq, "Square", tanh_)) ||
        (st = EXPECT(im, sum, "Sum", sq)) || (st = EXPECT(im, mx, "Maximum", sum)) ||
        (st = EXPECT(im, rs, "Rsqrt", mx)) || (st = EXPECT(im, out, "Mul", tanh_, rs)) ||
        (st = const_input(im, mx, 1, FIPSC_F32, l2_eps, err)))
        return st;
    if (one != 1) return not_use(im, "the pooling divisor is not max(token count, 1)", K_ "Maximum", err);
    if (*max_tokens < 1 || *max_tokens > 1 << 20)
        return not_use(im, "an implausible token limit", K_ "ClipToMaxLength/Less", err);
    return FIPSC_OK;
}

/* ------------------------------------------------------------------ weights */

/* Adds tensor `name` [out, in] = columns [c0, c0 + out) of the TF kernel [in, ld], transposed. */
static fipsc_status add_transposed(fipsc_model *m, const char *name, const fipsc_tfjs_weight *w,
                                   int64_t in, int64_t ld, int64_t c0, int64_t out, fipsc_error *err)
{
    float *data = malloc((size_t)(in * out) * sizeof *data);
    if (!data) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for '%s'", name);
    fipsc_transpose((const float *)w->data + c0, ld, data, in, in, out);
    int64_t shape[2] = {out, in};
    return fipsc_model_add_tensor(m, name, 2, shape, data, true, FIPSC_F32, err);
}

/* Adds tensor `name` = elements [off, off + n) of a TF weight, as a vector (or with shape). */
static fipsc_status add_copy(fipsc_model *m, const char *name, const fipsc_tfjs_weight *w, int64_t off,
                             int ndim, const int64_t *shape, fipsc_error *err)
{
    int64_t n = fipsc_shape_numel(ndim, shape);
    float *data = malloc((size_t)(n > 0 ? n : 1) * sizeof *data);
    if (!data) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for '%s'", name);
    memcpy(data, (const float *)w->data + off, (size_t)n * sizeof *data);
    return fipsc_model_add_tensor(m, name, ndim, shape, data, true, FIPSC_F32, err);
}

static fipsc_status add_vector(fipsc_model *m, const importer *im, const char *name, const char *tf,
                               int64_t n, int64_t off, int64_t total, fipsc_error *err)
{
    const fipsc_tfjs_weight *w = NULL;
    fipsc_status st = need_weight(im, tf, FIPSC_F32, total, &w, err);
    return st ? st : add_copy(m, name, w, off, 1, &n, err);
}

static fipsc_status import_layer(fipsc_model *m, const importer *im, int l, int din, int d, int f,
                                 fipsc_error *err)
{
    char p[64], name[128], tf[512];
    snprintf(p, sizeof p, "encoder.layer.%d.", l);
    const char *V = K_ "Encode/";
    fipsc_status st;
    const fipsc_tfjs_weight *w = NULL;
#define OURS(suffix) (snprintf(name, sizeof name, "%s%s", p, suffix), name)
#define THEIRS(prefix, fmt) (snprintf(tf, sizeof tf, "%sLayer_%d/TransformerLayer/" fmt, prefix, l), tf)
    if ((st = add_vector(m, im, OURS("attention_norm.weight"),
                         THEIRS(V, "layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat"),
                         din, 0, din, err)) ||
        (st = add_vector(m, im, OURS("attention_norm.bias"),
                         THEIRS(V, "layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat"),
                         din, 0, din, err)))
        return st;
    /* qkv: one [1, 1, din, 3·din] kernel, q | k | v along the output axis */
    if ((st = need_matrix(im, THEIRS(VARS_, "MultiheadAttention/qkv_transform_single/kernel/part_0"), din,
                          3 * din, &w, err)) ||
        (st = add_transposed(m, OURS("attention.query.weight"), w, din, 3 * din, 0, din, err)) ||
        (st = add_transposed(m, OURS("attention.key.weight"), w, din, 3 * din, din, din, err)) ||
        (st = add_transposed(m, OURS("attention.value.weight"), w, din, 3 * din, 2 * din, din, err)))
        return st;
    THEIRS(V, "MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat");
    if ((st = add_vector(m, im, OURS("attention.query.bias"), tf, din, 0, 3 * din, err)) ||
        (st = add_vector(m, im, OURS("attention.key.bias"), tf, din, din, 3 * din, err)) ||
        (st = add_vector(m, im, OURS("attention.value.bias"), tf, din, 2 * din, 3 * din, err)))
        return st;
    if ((st = need_matrix(im, THEIRS(VARS_, "MultiheadAttention/output_transform_single/kernel/part_0"), din, d,
                          &w, err)) ||
        (st = add_transposed(m, OURS("attention.output.weight"), w, din, d, 0, d, err)) ||
        (st = add_vector(m, im, OURS("attention.output.bias"),
                         THEIRS(V, "MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat"), d,
                         0, d, err)))
        return st;
    if (din != d &&
        ((st = need_matrix(im, THEIRS(V, "dense/kernel/ConcatPartitions/concat"), din, d, &w, err)) ||
         (st = add_transposed(m, OURS("residual_projection.weight"), w, din, d, 0, d, err)) ||
         (st = add_vector(m, im, OURS("residual_projection.bias"), THEIRS(V, "dense/bias/ConcatPartitions/concat"),
                          d, 0, d, err))))
        return st;
    if ((st = add_vector(m, im, OURS("mlp_norm.weight"),
                         THEIRS(V, "FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat"),
                         d, 0, d, err)) ||
        (st = add_vector(m, im, OURS("mlp_norm.bias"),
                         THEIRS(V, "FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat"),
                         d, 0, d, err)) ||
        (st = need_matrix(im, THEIRS(TS_, "FFN/conv1/Tensordot/Reshape_1"), d, f, &w, err)) ||
        (st = add_transposed(m, OURS("mlp.fc1.weight"), w, d, f, 0, f, err)) ||
        (st = add_vector(m, im, OURS("mlp.fc1.bias"), THEIRS(V, "FFN/conv1/bias/ConcatPartitions/concat"), f, 0,
                         f, err)) ||
        (st = need_matrix(im, THEIRS(TS_, "FFN/conv2/Tensordot/Reshape_1"), f, d, &w, err)) ||
        (st = add_transposed(m, OURS("mlp.fc2.weight"), w, f, d, 0, d, err)) ||
        (st = add_vector(m, im, OURS("mlp.fc2.bias"), THEIRS(V, "FFN/conv2/bias/ConcatPartitions/concat"), d, 0,
                         d, err)))
        return st;
#undef OURS
#undef THEIRS
    return FIPSC_OK;
}

/* Number of transformer layers: consecutive Layer_<l> FFN kernels. */
static int count_layers(const importer *im)
{
    int n = 0;
    char name[256];
    while (n < MAX_LAYERS) {
        snprintf(name, sizeof name, TS_ "Layer_%d/TransformerLayer/FFN/conv1/Tensordot/Reshape_1", n);
        if (!fipsc_tfjs_find(im->t, name)) break;
        n++;
    }
    return n;
}

static fipsc_status import(fipsc_model *m, const importer *im, const char *dir, fipsc_error *err)
{
    fipsc_use u;
    memset(&u, 0, sizeof u);
    fipsc_status st;
    const fipsc_tfjs_weight *emb = NULL, *fc1 = NULL, *pool = NULL;
    if ((st = need_weight(im, "module/Embeddings_en", FIPSC_F32, -1, &emb, err))) return st;
    if (emb->ndim != 2) return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s: 'module/Embeddings_en' is not a matrix", im->path);
    u.vocab_size = (int)emb->shape[0];
    u.embed_dim = (int)emb->shape[1];
    u.n_layers = count_layers(im);
    if (u.n_layers == 0) return not_use(im, "no transformer layers", TS_ "Layer_0", err);
    if ((st = need_weight(im, TS_ "Layer_0/TransformerLayer/FFN/conv1/Tensordot/Reshape_1", FIPSC_F32, -1, &fc1, err)))
        return st;
    if (fc1->ndim != 2) return fipsc_fail(err, FIPSC_ERR_SHAPE, "%s: '%s' is not a matrix", im->path, fc1->name);
    u.dim = (int)fc1->shape[0];
    u.hidden = (int)fc1->shape[1];

    /* the graph */
    double eps = 0, max_tokens = 0, l2_eps = 0;
    for (int l = 0; l < u.n_layers; l++) {
        int heads = 0, head_dim = 0;
        if ((st = check_layer(im, l, l == 0 ? u.embed_dim : u.dim, &heads, &head_dim, &eps, err)))
            return st;
        if (l > 0 && heads != u.n_heads)
            return not_use(im, "the layers have different head counts", TS_ "Layer_1", err);
        u.n_heads = heads;
    }
    if ((st = check_ends(im, u.n_layers, &max_tokens, &l2_eps, err))) return st;
    u.ln_eps = (float)eps;
    u.l2_eps = (float)l2_eps;
    u.max_tokens = (int)max_tokens;
    u.tokenizer_reserved = FIPSC_SP_RESERVED_DEFAULT;

    /* the weights, renamed and turned [out, in] */
    int64_t emb_shape[2] = {u.vocab_size, u.embed_dim};
    if ((st = add_copy(m, "embeddings.word_embeddings.weight", emb, 0, 2, emb_shape, err)) ||
        (st = add_vector(m, im, "embeddings.timing_inv_timescales",
                         TS_ "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", u.embed_dim / 2, 0,
                         u.embed_dim / 2, err)))
        return st;
    for (int l = 0; l < u.n_layers; l++)
        if ((st = import_layer(m, im, l, l == 0 ? u.embed_dim : u.dim, u.dim, u.hidden, err))) return st;
    if ((st = need_matrix(im, "module/Encoder_en/hidden_layers/tanh_layer_0/weights", u.dim, u.dim, &pool, err)) ||
        (st = add_transposed(m, "pooler.dense.weight", pool, u.dim, u.dim, 0, u.dim, err)) ||
        (st = add_vector(m, im, "pooler.dense.bias", "module/Encoder_en/hidden_layers/tanh_layer_0/bias", u.dim, 0,
                         u.dim, err)))
        return st;

    /* the vocabulary */
    char vocab_path[4200];
    if ((st = fipsc_path_join(vocab_path, sizeof vocab_path, dir, "vocab.json", err))) return st;
    if ((st = fipsc_read_file(vocab_path, &u.vocab_json, &u.vocab_json_len, err))) return st;
    if ((st = fipsc_sp_load_vocab(u.vocab_json, u.vocab_json_len, vocab_path, u.tokenizer_reserved,
                                  &u.tokenizer, err))) {
        free(u.vocab_json);
        return st;
    }
    return fipsc_model_bind_use(m, &u, err);
}

fipsc_status fipsc_use_load_tfjs(const char *path, fipsc_model **out, fipsc_error *err)
{
    *out = NULL;
    /* path is the directory or its model.json; vocab.json is beside model.json */
    char dir[4096];
    struct stat sb;
    const char *slash = strrchr(path, '/');
    fipsc_status st;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        st = fipsc_path_format(dir, sizeof dir, err, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    else
        st = fipsc_path_format(dir, sizeof dir, err, "%s", path);
    if (st) return st;
    fipsc_tfjs_model *t = NULL;
    if ((st = fipsc_tfjs_open(path, &t, err))) return st;
    fipsc_model *m = fipsc_model_new();
    if (!m) {
        fipsc_tfjs_close(t);
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory loading %s", dir);
    }
    importer im = {.t = t, .path = fipsc_tfjs_path(t)};
    st = import(m, &im, dir, err);
    fipsc_tfjs_close(t);
    if (!st) st = fipsc_model_check_finite(m, err);
    if (st) {
        fipsc_model_free(m);
        return st;
    }
    fipsc_path_format(m->source_path, sizeof m->source_path, NULL, "%s", dir); /* same size as dir */
    *out = m;
    return FIPSC_OK;
}
