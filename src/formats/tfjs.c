/* Reading TensorFlow.js graph models: model.json, its weights manifest and the shards (see
 * src/formats/tfjs.h for the format and every check made). */
#include "formats/tfjs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/path.h"

struct fipsc_tfjs_model {
    char path[4096]; /* model.json */
    char dir[4096];  /* its directory */
    fipsc_tfjs_weight *weights;
    int n_weights;
    unsigned char **group_data; /* each group's shards concatenated; weights point into them */
    int n_groups;
    fipsc_tfjs_node *nodes;
    int n_nodes;
    cJSON *json; /* the parsed model.json: names and inputs point into it */
};

void fipsc_tfjs_close(fipsc_tfjs_model *m)
{
    if (!m) return;
    /* n_groups counts the groups checked so far, also when group_data was never allocated */
    for (int g = 0; m->group_data && g < m->n_groups; g++) free(m->group_data[g]);
    free(m->group_data);
    free(m->weights);
    for (int i = 0; i < m->n_nodes; i++) free((void *)m->nodes[i].inputs);
    free(m->nodes);
    cJSON_Delete(m->json);
    free(m);
}

const char *fipsc_tfjs_path(const fipsc_tfjs_model *m) { return m->path; }
int fipsc_tfjs_weight_count(const fipsc_tfjs_model *m) { return m->n_weights; }
int fipsc_tfjs_node_count(const fipsc_tfjs_model *m) { return m->n_nodes; }

const fipsc_tfjs_weight *fipsc_tfjs_weight_at(const fipsc_tfjs_model *m, int i)
{
    return i >= 0 && i < m->n_weights ? &m->weights[i] : NULL;
}

const fipsc_tfjs_node *fipsc_tfjs_node_at(const fipsc_tfjs_model *m, int i)
{
    return i >= 0 && i < m->n_nodes ? &m->nodes[i] : NULL;
}

const fipsc_tfjs_weight *fipsc_tfjs_find(const fipsc_tfjs_model *m, const char *name)
{
    /* Linear: a few hundred weights, looked up once each when a model is imported. */
    for (int i = 0; i < m->n_weights; i++)
        if (strcmp(m->weights[i].name, name) == 0) return &m->weights[i];
    return NULL;
}

const fipsc_tfjs_node *fipsc_tfjs_find_node(const fipsc_tfjs_model *m, const char *name)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0) return &m->nodes[i];
    return NULL;
}

/* ------------------------------------------------------------------ manifest */

/* The element type of a manifest dtype string. */
static fipsc_status parse_dtype(const fipsc_tfjs_model *m, int g, const char *wname,
                                const cJSON *dtype, fipsc_dtype *out, fipsc_error *err)
{
    const char *s = cJSON_GetStringValue(dtype);
    if (!s)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: weight '%s' (group %d) has no \"dtype\" string",
                          m->path, wname, g);
    if (strcmp(s, "float32") == 0) *out = FIPSC_F32;
    else if (strcmp(s, "int32") == 0) *out = FIPSC_I32;
    else if (strcmp(s, "bool") == 0 || strcmp(s, "string") == 0 || strcmp(s, "complex64") == 0)
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                          "%s: weight '%s' (group %d) has dtype %s; only float32 and int32 weights "
                          "are supported",
                          m->path, wname, g, s);
    else
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: weight '%s' (group %d) has unknown dtype '%s'",
                          m->path, wname, g, s);
    return FIPSC_OK;
}

/* Shape and byte size of one weight entry. */
static fipsc_status parse_shape(const fipsc_tfjs_model *m, int g, const char *wname,
                                const cJSON *shape, fipsc_tfjs_weight *w, fipsc_error *err)
{
    if (!cJSON_IsArray(shape))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: weight '%s' (group %d) has no \"shape\" array",
                          m->path, wname, g);
    int nd = cJSON_GetArraySize(shape);
    if (nd > FIPSC_MAX_DIMS)
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: weight '%s' has %d dimensions (at most %d)",
                          m->path, wname, nd, FIPSC_MAX_DIMS);
    w->ndim = nd;
    uint64_t numel = 1;
    int k = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        double v = cJSON_IsNumber(dim) ? dim->valuedouble : -1;
        if (v < 0 || v > (double)(1ll << 40) || v != (double)(int64_t)v) /* range before the cast */
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: weight '%s' has an invalid dimension %d in its shape (not a "
                              "non-negative integer)",
                              m->path, wname, k);
        w->shape[k++] = (int64_t)v;
        /* checked before multiplying: 2^40 · 2^40 would wrap around 2^64 */
        if (v > 0 && numel > ((uint64_t)1 << 40) / (uint64_t)v)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: weight '%s' is impossibly large", m->path, wname);
        numel *= (uint64_t)v;
    }
    w->nbytes = (size_t)numel * fipsc_dtype_size(w->dtype);
    return FIPSC_OK;
}

/* A shard path must stay inside the model directory: relative, no ".." component. */
static bool shard_path_ok(const char *p)
{
    if (!*p || p[0] == '/') return false;
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.') return false;
        s += n;
        if (*s == '/') s++;
    }
    return true;
}

/* Reads a group's shards back to back into one buffer of exactly `need` bytes. */
static fipsc_status read_group(const fipsc_tfjs_model *m, int g, const cJSON *paths, size_t need,
                               unsigned char **out, fipsc_error *err)
{
    *out = NULL;
    int n_paths = cJSON_GetArraySize(paths);
    size_t total = 0;
    char file[8300];
    /* First the sizes, so a wrong byte count is reported before anything is read. */
    for (int i = 0; i < n_paths; i++) {
        const char *p = cJSON_GetStringValue(cJSON_GetArrayItem(paths, i));
        if (!p || !shard_path_ok(p))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: group %d, path %d is not a relative file name inside the model "
                              "directory",
                              m->path, g, i);
        fipsc_status ps = fipsc_path_join(file, sizeof file, m->dir, p, err);
        if (ps) return ps;
        struct stat st;
        if (stat(file, &st) != 0)
            return fipsc_fail(err, errno == ENOENT ? FIPSC_ERR_NOT_FOUND : FIPSC_ERR_IO,
                              "%s: weight shard %s of group %d: %s", m->path, file, g, strerror(errno));
        if (!S_ISREG(st.st_mode))
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: weight shard %s of group %d is not a file",
                              m->path, file, g);
        total += (size_t)st.st_size;
    }
    if (total != need)
        return fipsc_fail(err, FIPSC_ERR_FORMAT,
                          "%s: the %d shard(s) of group %d hold %zu bytes but its weights need %zu "
                          "(%s)",
                          m->path, n_paths, g, total, need,
                          total < need ? "truncated or missing data" : "unexpected extra bytes");
    unsigned char *buf = malloc(need ? need : 1);
    if (!buf) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory for %zu bytes of weights", need);
    size_t at = 0;
    for (int i = 0; i < n_paths; i++) {
        /* joined once already in the loop above */
        fipsc_path_join(file, sizeof file, m->dir, cJSON_GetStringValue(cJSON_GetArrayItem(paths, i)), NULL);
        FILE *fp = fopen(file, "rb");
        if (!fp) {
            free(buf);
            return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot open weight shard %s: %s", m->path, file,
                              strerror(errno));
        }
        size_t want = need - at, got = fread(buf + at, 1, want, fp);
        int extra = fgetc(fp) != EOF;
        fclose(fp);
        /* The size was checked above; a different count now means the file changed meanwhile. */
        if (extra || (i == n_paths - 1 && got != want)) {
            free(buf);
            return fipsc_fail(err, FIPSC_ERR_IO, "%s: weight shard %s changed while being read",
                              m->path, file);
        }
        at += got;
    }
    if (at != need) {
        free(buf);
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: the shards of group %d changed while being read", m->path, g);
    }
    *out = buf;
    return FIPSC_OK;
}

static fipsc_status parse_manifest(fipsc_tfjs_model *m, const cJSON *manifest, fipsc_error *err)
{
    if (!cJSON_IsArray(manifest))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: no \"weightsManifest\" array", m->path);
    m->n_groups = 0;
    int n_groups = cJSON_GetArraySize(manifest), total_weights = 0;
    const cJSON *group;
    cJSON_ArrayForEach(group, manifest) {
        const cJSON *weights = cJSON_GetObjectItemCaseSensitive(group, "weights");
        const cJSON *paths = cJSON_GetObjectItemCaseSensitive(group, "paths");
        if (!cJSON_IsObject(group) || !cJSON_IsArray(weights) || !cJSON_IsArray(paths))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: weightsManifest group %d is not an object with \"paths\" and "
                              "\"weights\" arrays",
                              m->path, m->n_groups);
        total_weights += cJSON_GetArraySize(weights);
        m->n_groups++;
    }
    m->group_data = calloc((size_t)n_groups + 1, sizeof *m->group_data);
    m->weights = calloc((size_t)total_weights + 1, sizeof *m->weights);
    if (!m->group_data || !m->weights) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %s", m->path);

    int g = 0;
    cJSON_ArrayForEach(group, manifest) {
        const cJSON *weights = cJSON_GetObjectItemCaseSensitive(group, "weights");
        int first = m->n_weights;
        size_t need = 0;
        const cJSON *entry;
        cJSON_ArrayForEach(entry, weights) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "name"));
            if (!name || !*name)
                return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: weight %d of group %d has no name",
                                  m->path, m->n_weights - first, g);
            if (fipsc_tfjs_find(m, name))
                return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: weight '%s' appears twice", m->path, name);
            if (cJSON_GetObjectItemCaseSensitive(entry, "quantization"))
                return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                                  "%s: weight '%s' is quantized; only float32 and int32 weights are "
                                  "supported",
                                  m->path, name);
            fipsc_tfjs_weight *w = &m->weights[m->n_weights];
            w->name = name;
            w->group = g;
            fipsc_status st;
            if ((st = parse_dtype(m, g, name, cJSON_GetObjectItemCaseSensitive(entry, "dtype"), &w->dtype, err)) ||
                (st = parse_shape(m, g, name, cJSON_GetObjectItemCaseSensitive(entry, "shape"), w, err)))
                return st;
            need += w->nbytes;
            m->n_weights++;
        }
        fipsc_status st = read_group(m, g, cJSON_GetObjectItemCaseSensitive(group, "paths"), need,
                                     &m->group_data[g], err);
        if (st) return st;
        size_t at = 0;
        for (int i = first; i < m->n_weights; i++) {
            m->weights[i].data = m->group_data[g] + at;
            at += m->weights[i].nbytes;
        }
        g++;
    }
    return FIPSC_OK;
}

static fipsc_status parse_topology(fipsc_tfjs_model *m, const cJSON *topology, fipsc_error *err)
{
    if (!topology) return FIPSC_OK;
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(topology, "node");
    if (!cJSON_IsObject(topology) || !cJSON_IsArray(nodes))
        return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: \"modelTopology\" has no \"node\" array", m->path);
    m->nodes = calloc((size_t)cJSON_GetArraySize(nodes) + 1, sizeof *m->nodes);
    if (!m->nodes) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %s", m->path);
    const cJSON *node;
    cJSON_ArrayForEach(node, nodes) {
        fipsc_tfjs_node *n = &m->nodes[m->n_nodes];
        n->name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(node, "name"));
        n->op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(node, "op"));
        if (!n->name || !n->op)
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: graph node %d has no \"name\" or \"op\" string",
                              m->path, m->n_nodes);
        const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(node, "input");
        if (inputs && !cJSON_IsArray(inputs))
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: graph node '%s' has a non-array \"input\"",
                              m->path, n->name);
        int k = inputs ? cJSON_GetArraySize(inputs) : 0;
        const char **in = calloc((size_t)k + 1, sizeof *in);
        if (!in) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory reading %s", m->path);
        n->inputs = in;
        m->n_nodes++;
        for (int i = 0; i < k; i++) {
            in[i] = cJSON_GetStringValue(cJSON_GetArrayItem(inputs, i));
            if (!in[i])
                return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: graph node '%s' has a non-string input %d",
                                  m->path, n->name, i);
        }
        n->n_inputs = k;
    }
    return FIPSC_OK;
}

fipsc_status fipsc_tfjs_open(const char *path, fipsc_tfjs_model **out, fipsc_error *err)
{
    *out = NULL;
    fipsc_tfjs_model *m = calloc(1, sizeof *m);
    if (!m) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory opening %s", path);
    struct stat st;
    fipsc_status fits;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fits = fipsc_path_format(m->dir, sizeof m->dir, err, "%s", path);
        if (!fits) fits = fipsc_path_join(m->path, sizeof m->path, path, "model.json", err);
    } else {
        const char *slash = strrchr(path, '/');
        fits = fipsc_path_format(m->path, sizeof m->path, err, "%s", path);
        if (!fits)
            fits = slash == path ? fipsc_path_format(m->dir, sizeof m->dir, err, "/")
                   : slash       ? fipsc_path_format(m->dir, sizeof m->dir, err, "%.*s", (int)(slash - path), path)
                                 : fipsc_path_format(m->dir, sizeof m->dir, err, ".");
    }
    if (fits) {
        fipsc_tfjs_close(m);
        return fits;
    }
    if (stat(m->path, &st) != 0 && errno == ENOENT) {
        fipsc_status nf = fipsc_fail(err, FIPSC_ERR_NOT_FOUND, "%s: no such file (not a TF.js model)", m->path);
        fipsc_tfjs_close(m);
        return nf;
    }
    char *text = NULL;
    size_t len = 0;
    fipsc_status s = fipsc_read_file(m->path, &text, &len, err);
    if (s) {
        fipsc_tfjs_close(m);
        return s;
    }
    m->json = cJSON_ParseWithLength(text, len);
    free(text);
    if (!m->json || !cJSON_IsObject(m->json)) {
        s = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a JSON object (bad JSON)", m->path);
    } else {
        s = parse_manifest(m, cJSON_GetObjectItemCaseSensitive(m->json, "weightsManifest"), err);
        if (!s) s = parse_topology(m, cJSON_GetObjectItemCaseSensitive(m->json, "modelTopology"), err);
    }
    if (s) {
        fipsc_tfjs_close(m);
        return s;
    }
    *out = m;
    return FIPSC_OK;
}
