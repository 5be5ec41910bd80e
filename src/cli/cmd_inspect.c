/* fipsc inspect: what a checkpoint or a safetensors file holds.
 *
 * The report is built once as a JSON document (cJSON) and then either printed as JSON (--json)
 * or rendered as text, so both forms always carry the same content:
 *   path, format, architecture (the configuration, or null with a note), parameter counts split
 *   MLP / attention / embeddings / other, metadata of every safetensors file, and every tensor
 *   with its stored dtype, shape and byte size.
 * A .safetensors file or a directory without a supported configuration (Llama family, ViT/DeiT)
 * is still listed (tensors, metadata, counts by tensor name); a checkpoint with a supported
 * configuration must load. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "model/compressed.h"
#include "ops/factored.h"
#include "families/registry.h"
#include "model/model.h"
#include "formats/safetensors.h"
#include "model/family.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc inspect PATH [--json]\n\n"
            "Shows what PATH holds: the architecture (configuration), parameter counts split into\n"
            "MLP / attention / embeddings / other, the safetensors metadata, and every tensor with\n"
            "its dtype, shape and size in bytes.\n\n"
            "PATH is a model (a llama2.c .bin; a Hugging Face Llama/Mistral/Qwen2 or ViT/DeiT\n"
            "directory with config.json and safetensors weights; a .safetensors file with its\n"
            "configuration in __metadata__ or beside it) or any .safetensors file (listed even\n"
            "when it is not a model fipsc can load). A fipsc compressed file also shows its\n"
            "groups, ranks, every compressed matrix (nnz, sparsity, bytes) and the MLP\n"
            "parameters and bytes kept against the dense original.\n\n"
            "  --json   the same report as one JSON object\n"
            "  --help   this text\n\n"
            "Exit status: 0 ok, 1 unreadable or invalid input, 2 usage error.\n");
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* cJSON numbers are doubles: exact for every count below 2^53. */
static cJSON *tensor_entry(const char *name, fipsc_dtype dtype, int ndim, const int64_t *shape)
{
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", name);
    cJSON_AddStringToObject(t, "dtype", fipsc_dtype_name(dtype));
    cJSON *dims = cJSON_AddArrayToObject(t, "shape");
    for (int i = 0; i < ndim; i++) cJSON_AddItemToArray(dims, cJSON_CreateNumber((double)shape[i]));
    cJSON_AddNumberToObject(t, "bytes", (double)fipsc_shape_numel(ndim, shape) * (double)fipsc_dtype_size(dtype));
    return t;
}

static cJSON *params_entry(const fipsc_param_counts *pc)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "mlp", (double)pc->mlp);
    cJSON_AddNumberToObject(p, "attention", (double)pc->attention);
    cJSON_AddNumberToObject(p, "embeddings", (double)pc->embeddings);
    cJSON_AddNumberToObject(p, "other", (double)pc->other);
    cJSON_AddNumberToObject(p, "total", (double)pc->total);
    return p;
}

static cJSON *pair(int a, int b)
{
    int v[2] = {a, b};
    return cJSON_CreateIntArray(v, 2);
}

/* A FiPS-compressed model: its groups, every compressed matrix, and the MLP parameters and bytes
 * against the dense original (src/model/compressed.h). NULL when nothing is compressed. */
static cJSON *compression_entry(const fipsc_model *m)
{
    if (fipsc_model_group_count(m) == 0) return NULL;
    cJSON *c = cJSON_CreateObject();
    fipsc_mlp_footprint fp = fipsc_model_mlp_footprint(m);
    cJSON *f = cJSON_AddObjectToObject(c, "footprint");
    cJSON_AddNumberToObject(f, "dense_params", (double)fp.dense_params);
    cJSON_AddNumberToObject(f, "kept_params", (double)fp.kept_params);
    cJSON_AddNumberToObject(f, "dense_bytes", (double)fp.dense_bytes);
    cJSON_AddNumberToObject(f, "stored_bytes", (double)fp.stored_bytes);
    cJSON *groups = cJSON_AddArrayToObject(c, "groups");
    for (int gi = 0; gi < fipsc_model_group_count(m); gi++) {
        const fipsc_compressed_group *g = fipsc_model_group(m, gi);
        cJSON *go = cJSON_CreateObject();
        cJSON_AddNumberToObject(go, "first_layer", g->first_layer);
        cJSON_AddNumberToObject(go, "last_layer", g->last_layer);
        cJSON_AddNumberToObject(go, "d", g->d);
        cJSON_AddNumberToObject(go, "rank", g->r);
        cJSON_AddStringToObject(go, "basis", g->U ? fipsc_dtype_name(g->u_dtype) : "identity");
        cJSON_AddStringToObject(go, "method", g->method);
        cJSON_AddStringToObject(go, "storage", fipsc_v_storage_name(g->storage));
        if (g->storage == FIPSC_V_NM) cJSON_AddItemToObject(go, "nm", pair(g->nm_n, g->nm_m));
        cJSON *mats = cJSON_AddArrayToObject(go, "matrices");
        for (int i = 0; i < fipsc_model_factored_count(m); i++) {
            const fipsc_factored_linear *fl = fipsc_model_factored_at(m, i);
            if (fl->group != g) continue;
            cJSON *mo = cJSON_CreateObject();
            cJSON_AddStringToObject(mo, "weight", fl->weight_name);
            cJSON_AddNumberToObject(mo, "layer", fl->layer);
            cJSON_AddStringToObject(mo, "role", fipsc_mlp_role_name(fl->role));
            cJSON_AddStringToObject(mo, "orientation", fl->expanding ? "expanding" : "contracting");
            cJSON_AddNumberToObject(mo, "f", fl->f);
            cJSON_AddNumberToObject(mo, "nnz", (double)fl->nnz);
            cJSON_AddNumberToObject(mo, "sparsity", 1.0 - (double)fl->nnz / ((double)fl->r * fl->f));
            cJSON_AddNumberToObject(mo, "bytes", (double)fipsc_factored_v_bytes(fl));
            cJSON_AddItemToArray(mats, mo);
        }
        cJSON_AddItemToArray(groups, go);
    }
    return c;
}

/* metadata: { "<file>": { key: value, ... }, ... } for every file of the set. */
static cJSON *metadata_entry(const fipsc_st_set *set)
{
    cJSON *md = cJSON_CreateObject();
    for (int s = 0; set && s < fipsc_st_set_shard_count(set); s++) {
        const fipsc_st_file *f = fipsc_st_set_shard(set, s);
        cJSON *entries = cJSON_AddObjectToObject(md, fipsc_st_path(f));
        for (int i = 0; i < fipsc_st_meta_count(f); i++)
            cJSON_AddStringToObject(entries, fipsc_st_meta_key(f, i), fipsc_st_meta_value(f, i));
    }
    return md;
}

/* Builds the report. Returns an exit code; *doc (and *arch_text, the architecture in words, or
 * NULL) are set on success. */
static int build_report(const char *path, cJSON **doc_out, char **arch_text)
{
    fipsc_error err = {0};
    *arch_text = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fipsc_model *m;
        fipsc_model_load(path, &m, &err); /* the loader words the error ("PATH: No such file ...") */
        return cli_report("inspect", &err);
    }
    bool is_dir = S_ISDIR(sb.st_mode), is_st = !is_dir && ends_with(path, ".safetensors");
    bool compressed = is_st && fipsc_compressed_is_file(path);
    const char *format = is_dir ? "huggingface-directory" : compressed ? "fipsc-compressed" : is_st ? "safetensors" : "llama2.c";

    /* safetensors sources: the files themselves, for metadata (and the listing when not a model) */
    fipsc_st_set *set = NULL;
    bool is_model = true;
    char note[FIPSC_ERROR_MESSAGE_MAX] = "";
    if (is_dir || is_st) {
        /* a compressed file is a model; otherwise a family must claim it. One that only might (a
         * configuration of an unknown architecture, or none) leaves a listing of the tensors. */
        fipsc_probe probe = FIPSC_PROBE_YES;
        fipsc_error why = {0};
        if (!compressed) fipsc_family_probe(path, &probe, &why);
        /* a model that is no safetensors set (a TF.js directory) has no metadata to show */
        if (fipsc_st_set_open(path, &set, &err) && (probe != FIPSC_PROBE_YES || !is_dir))
            return cli_report("inspect", &err);
        if (is_dir && !set) format = "directory";
        if (probe != FIPSC_PROBE_YES) {
            if (probe == FIPSC_PROBE_MAYBE && why.code != FIPSC_ERR_NOT_FOUND && why.code != FIPSC_ERR_UNSUPPORTED) {
                fipsc_st_set_close(set);
                return cli_report("inspect", &why);
            }
            is_model = false;
            snprintf(note, sizeof note, "%s", why.message[0] ? why.message : "no model configuration");
        }
    }
    fipsc_model *m = NULL;
    if (is_model && fipsc_model_load(path, &m, &err)) {
        fipsc_st_set_close(set);
        return cli_report("inspect", &err);
    }

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "path", path);
    cJSON_AddStringToObject(doc, "format", format);
    cJSON *tensors = cJSON_CreateArray();
    fipsc_param_counts pc;
    if (m) {
        cJSON *arch = NULL;
        if (m->family->describe(m, &arch, arch_text, &err)) {
            fipsc_model_free(m);
            fipsc_st_set_close(set);
            cJSON_Delete(doc);
            cJSON_Delete(tensors);
            return cli_report("inspect", &err);
        }
        cJSON_AddItemToObject(doc, "architecture", arch);
        pc = fipsc_model_count_params(m);
        for (int i = 0; !compressed && i < m->n_tensors; i++) {
            const fipsc_tensor *t = &m->tensors[i];
            cJSON_AddItemToArray(tensors, tensor_entry(t->name, t->source_dtype, t->ndim, t->shape));
        }
        /* a compressed file: the tensors as stored, U and the sparse V arrays included */
        for (int i = 0; compressed && i < fipsc_st_set_count(set); i++) {
            const fipsc_st_tensor *t = fipsc_st_set_at(set, i);
            cJSON_AddItemToArray(tensors, tensor_entry(t->name, t->dtype, t->ndim, t->shape));
        }
        cJSON *compression = compression_entry(m);
        if (compression) cJSON_AddItemToObject(doc, "compression", compression);
        fipsc_model_free(m);
    } else {
        cJSON_AddNullToObject(doc, "architecture");
        cJSON_AddStringToObject(doc, "note", note);
        /* Counts by tensor name: a model holding only the shapes (no data is ever read). */
        fipsc_model *shapes = fipsc_model_new();
        for (int i = 0; shapes && i < fipsc_st_set_count(set); i++) {
            const fipsc_st_tensor *t = fipsc_st_set_at(set, i);
            fipsc_model_add_tensor(shapes, t->name, t->ndim, t->shape, NULL, false, t->dtype, &err);
            cJSON_AddItemToArray(tensors, tensor_entry(t->name, t->dtype, t->ndim, t->shape));
        }
        pc = shapes ? fipsc_model_count_params(shapes) : (fipsc_param_counts){0};
        fipsc_model_free(shapes);
    }
    cJSON_AddItemToObject(doc, "params", params_entry(&pc));
    cJSON_AddItemToObject(doc, "metadata", metadata_entry(set));
    cJSON_AddItemToObject(doc, "tensors", tensors);
    fipsc_st_set_close(set);
    *doc_out = doc;
    return CLI_OK;
}

static long long num(const cJSON *obj, const char *key)
{
    return (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

/* One line: whitespace runs collapsed, long values cut. */
static void print_value(const char *v)
{
    size_t shown = 0, len = strlen(v);
    bool space = false;
    for (const char *p = v; *p && shown < 100; p++) {
        if (isspace((unsigned char)*p)) {
            space = true;
            continue;
        }
        if (space && shown) putchar(' '), shown++;
        space = false;
        putchar(*p);
        shown++;
    }
    if (shown >= 100) printf(" ... (%zu bytes)", len);
    putchar('\n');
}

static void print_compression(const cJSON *c)
{
    const cJSON *fp = cJSON_GetObjectItem(c, "footprint"), *groups = cJSON_GetObjectItem(c, "groups");
    long long dp = num(fp, "dense_params"), kp = num(fp, "kept_params");
    long long db = num(fp, "dense_bytes"), sb = num(fp, "stored_bytes");
    printf("compression: %d groups; MLP parameters %lld dense -> %lld kept (%.1f%%); MLP bytes %lld "
           "dense -> %lld stored (%.1f%%)\n",
           cJSON_GetArraySize(groups), dp, kp, dp ? 100.0 * (double)kp / (double)dp : 0.0, db, sb,
           db ? 100.0 * (double)sb / (double)db : 0.0);
    const cJSON *g, *mt;
    int gi = 0;
    cJSON_ArrayForEach(g, groups)
    {
        const cJSON *nm = cJSON_GetObjectItem(g, "nm");
        char storage[48];
        snprintf(storage, sizeof storage, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(g, "storage")));
        if (nm)
            snprintf(storage, sizeof storage, "nm %g:%g", cJSON_GetNumberValue(cJSON_GetArrayItem(nm, 0)),
                     cJSON_GetNumberValue(cJSON_GetArrayItem(nm, 1)));
        printf("  group %d: layers %lld-%lld, d %lld, rank %lld, U %s, method %s, V %s\n", gi++,
               num(g, "first_layer"), num(g, "last_layer"), num(g, "d"), num(g, "rank"),
               cJSON_GetStringValue(cJSON_GetObjectItem(g, "basis")),
               cJSON_GetStringValue(cJSON_GetObjectItem(g, "method")), storage);
        cJSON_ArrayForEach(mt, cJSON_GetObjectItem(g, "matrices"))
            printf("    %-40s %-4s %-11s f %lld, nnz %lld, sparsity %.4f, %lld bytes\n",
                   cJSON_GetStringValue(cJSON_GetObjectItem(mt, "weight")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(mt, "role")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(mt, "orientation")), num(mt, "f"), num(mt, "nnz"),
                   cJSON_GetNumberValue(cJSON_GetObjectItem(mt, "sparsity")), num(mt, "bytes"));
    }
}

static void print_text(const cJSON *doc, const char *arch_text)
{
    printf("path: %s\nformat: %s\n", cJSON_GetStringValue(cJSON_GetObjectItem(doc, "path")),
           cJSON_GetStringValue(cJSON_GetObjectItem(doc, "format")));
    if (arch_text)
        fputs(arch_text, stdout);
    else
        printf("architecture: none (%s)\n", cJSON_GetStringValue(cJSON_GetObjectItem(doc, "note")));
    const cJSON *p = cJSON_GetObjectItem(doc, "params");
    printf("parameters: mlp %lld, attention %lld, embeddings %lld, other %lld, total %lld\n",
           num(p, "mlp"), num(p, "attention"), num(p, "embeddings"), num(p, "other"), num(p, "total"));
    const cJSON *comp = cJSON_GetObjectItem(doc, "compression");
    if (comp) print_compression(comp);
    const cJSON *md = cJSON_GetObjectItem(doc, "metadata");
    printf("metadata:%s\n", cJSON_GetArraySize(md) ? "" : " none");
    const cJSON *file;
    cJSON_ArrayForEach(file, md)
    {
        printf("  %s:%s\n", file->string, cJSON_GetArraySize(file) ? "" : " (none)");
        const cJSON *e;
        cJSON_ArrayForEach(e, file)
        {
            printf("    %s = ", e->string);
            print_value(cJSON_GetStringValue(e));
        }
    }
    const cJSON *tensors = cJSON_GetObjectItem(doc, "tensors");
    printf("tensors: %d\n", cJSON_GetArraySize(tensors));
    int width = 4;
    const cJSON *t;
    cJSON_ArrayForEach(t, tensors)
    {
        int n = (int)strlen(cJSON_GetStringValue(cJSON_GetObjectItem(t, "name")));
        if (n > width) width = n;
    }
    printf("  %-*s  %-5s  %-16s  %s\n", width, "name", "dtype", "shape", "bytes");
    cJSON_ArrayForEach(t, tensors)
    {
        int64_t dims[FIPSC_MAX_DIMS];
        int ndim = 0;
        const cJSON *d;
        cJSON_ArrayForEach(d, cJSON_GetObjectItem(t, "shape"))
            if (ndim < FIPSC_MAX_DIMS) dims[ndim++] = (int64_t)cJSON_GetNumberValue(d);
        char shape[160];
        fipsc_shape_format(ndim, dims, shape, sizeof shape);
        printf("  %-*s  %-5s  %-16s  %lld\n", width, cJSON_GetStringValue(cJSON_GetObjectItem(t, "name")),
               cJSON_GetStringValue(cJSON_GetObjectItem(t, "dtype")), shape, num(t, "bytes"));
    }
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json = 0, c;
    optind = 1;
    opterr = 0; /* we word the errors ourselves */
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'h') {
            usage(stdout);
            return CLI_OK;
        } else return cli_usage_error("inspect", "unknown option '%s'", argv[optind - 1]);
    }
    if (optind == argc) return cli_usage_error("inspect", "missing PATH (a model or a .safetensors file)");
    if (optind != argc - 1) return cli_usage_error("inspect", "expects exactly one PATH, got %d", argc - optind);

    cJSON *doc = NULL;
    char *arch_text = NULL;
    int rc = build_report(argv[optind], &doc, &arch_text);
    if (rc != CLI_OK) return rc;
    if (json) {
        char *text = cJSON_Print(doc);
        if (text) {
            puts(text);
            free(text);
        }
        if (!text) rc = CLI_FAILURE, fprintf(stderr, "fipsc inspect: out of memory\n");
    } else {
        print_text(doc, arch_text);
    }
    free(arch_text);
    cJSON_Delete(doc);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "fipsc inspect: cannot write the report to standard output\n");
        rc = CLI_FAILURE;
    }
    return rc;
}
