/* fipsc inspect: what a checkpoint or a safetensors file holds.
 *
 * The report is built once as a JSON document by the library (src/api/describe.c) and then
 * either printed as JSON (--json) or rendered as text here, so both forms always carry the same
 * content. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/describe.h"
#include "cli/cli.h"
#include "core/tensor.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc inspect PATH [--json]\n\n"
            "Shows what PATH holds: the architecture (configuration), parameter counts split into\n"
            "MLP / attention / embeddings / other, the safetensors or GGUF metadata, and every tensor\n"
            "with its dtype, shape and size in bytes, as the file stores it.\n\n"
            "PATH is a model (a llama2.c .bin; a GGUF file; a Hugging Face Llama/Mistral/Qwen2/\n"
            "Gemma/Gemma-2, GPT-2 or ViT/DeiT directory with config.json and safetensors weights; a\n"
            ".safetensors file with its configuration in __metadata__ or beside it) or any\n"
            ".safetensors file (listed even when it is not a model fipsc can load). A fipsc\n"
            "compressed file also shows its groups, ranks, every compressed matrix (nnz, sparsity,\n"
            "bytes) and the MLP parameters and bytes kept against the dense original.\n\n"
            "  --json   the same report as one JSON object\n"
            "  --help   this text\n\n"
            "Exit status: 0 ok, 1 unreadable or invalid input, 2 usage error.\n");
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
        printf("  group %d: layers %lld-%lld, d %lld, rank %lld, U %s, method %s, V %s %s\n", gi++,
               num(g, "first_layer"), num(g, "last_layer"), num(g, "d"), num(g, "rank"),
               cJSON_GetStringValue(cJSON_GetObjectItem(g, "basis")),
               cJSON_GetStringValue(cJSON_GetObjectItem(g, "method")), storage,
               cJSON_GetStringValue(cJSON_GetObjectItem(g, "v_dtype")));
        cJSON_ArrayForEach(mt, cJSON_GetObjectItem(g, "matrices"))
            printf("    %-40s %-4s %-11s f %lld, nnz %lld, sparsity %.4f, %lld bytes (%.2f per kept entry; "
                   "dense %s)\n",
                   cJSON_GetStringValue(cJSON_GetObjectItem(mt, "weight")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(mt, "role")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(mt, "orientation")), num(mt, "f"), num(mt, "nnz"),
                   cJSON_GetNumberValue(cJSON_GetObjectItem(mt, "sparsity")), num(mt, "bytes"),
                   cJSON_GetNumberValue(cJSON_GetObjectItem(mt, "bytes_per_kept_entry")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(mt, "source_dtype")));
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
    fipsc_error err = {0};
    if (fipsc_describe_doc(argv[optind], &doc, &arch_text, &err)) return cli_report("inspect", &err);
    int rc = CLI_OK;
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
