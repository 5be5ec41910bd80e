/* An application of libfipsc: compress a model's MLPs through the public API (include/fipsc.h)
 * and compare the compressed model with the original.
 *
 *   cc compress_model.c $(pkg-config --cflags --libs fipsc) -o compress_model
 *   ./compress_model models/stories260K.bin stories260K-fips.safetensors budget=0.5 steps=400
 *
 * Settings are `fipsc compress` option names without the dashes (NAME=VALUE); the file written
 * is byte for byte what `fipsc compress MODEL -o OUT --NAME VALUE ...` writes. For a language
 * model the example then generates a few tokens greedily with the original and the compressed
 * model and prints both. */
#include <fipsc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line per finished group (the library calls back from this thread). */
static void on_progress(void *user, const fipsc_progress *p)
{
    (void)user;
    if (strcmp(p->stage, "group-done") == 0)
        fprintf(stderr, "group %d/%d done after %.1f s\n", p->group + 1, p->n_groups, p->elapsed);
    else if (strcmp(p->stage, "retry") == 0)
        fprintf(stderr, "group %d/%d diverged (%s), retrying\n", p->group + 1, p->n_groups, p->message);
}

/* Greedy continuation of the BOS token, printed as ids. */
static int print_greedy(const char *what, const fipsc_model *m, fipsc_error *err)
{
    int32_t out[16];
    int n = 0;
    if (fipsc_generate(m, NULL, 0, 16, 0.0f, 1.0f, 1, out, &n, err)) return 1;
    printf("%-10s", what);
    for (int i = 0; i < n; i++) printf(" %d", (int)out[i]);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL OUT.safetensors [NAME=VALUE ...]   (libfipsc %s)\n", argv[0],
                fipsc_version());
        return 2;
    }
    fipsc_error err = {0};
    fipsc_model *m = NULL, *reloaded = NULL;
    fipsc_options *o = fipsc_options_new();
    fipsc_report *r = NULL;
    char *table = NULL;
    int rc = 1;
    if (!o) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "expected NAME=VALUE, got '%s'\n", argv[i]);
            fipsc_options_free(o);
            return 2;
        }
        *eq = '\0';
        if (fipsc_options_set(o, argv[i], eq + 1, &err)) {
            fprintf(stderr, "%s\n", err.message);
            fipsc_options_free(o);
            return 2;
        }
    }
    if (fipsc_load(argv[1], &m, &err)) goto fail;
    printf("%s: family %s, architecture %s\n", argv[1], fipsc_family_name(m), fipsc_architecture(m));
    if (fipsc_compress(m, o, on_progress, NULL, &r, &err) || fipsc_save(m, r, argv[2], &err) ||
        fipsc_report_table(r, &table, &err))
        goto fail;
    fipsc_totals t;
    fipsc_report_totals(r, &t);
    printf("%s", table);
    printf("MLP parameters %lld -> %lld (%.1f%%), bytes %lld -> %lld, in %d groups\n", (long long)t.dense_params,
           (long long)t.kept_params, 100.0 * (double)t.kept_params / (double)t.dense_params,
           (long long)t.dense_bytes, (long long)t.stored_bytes, t.groups);

    /* The file reads back as a compressed model of the same family. */
    if (fipsc_load(argv[2], &reloaded, &err)) goto fail;
    if (!fipsc_is_compressed(reloaded) || strcmp(fipsc_family_name(reloaded), fipsc_family_name(m)) != 0) {
        fprintf(stderr, "%s does not read back as a compressed %s model\n", argv[2], fipsc_family_name(m));
        goto done;
    }
    if (fipsc_capabilities(m) & FIPSC_CAN_GENERATE) {
        fipsc_model *original = NULL;
        if (fipsc_load(argv[1], &original, &err)) goto fail;
        int bad = print_greedy("original", original, &err) || print_greedy("compressed", reloaded, &err);
        fipsc_free(original);
        if (bad) goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "%s: %s\n", fipsc_status_name(err.code), err.message);
done:
    fipsc_string_free(table);
    fipsc_report_free(r);
    fipsc_options_free(o);
    fipsc_free(reloaded);
    fipsc_free(m);
    return rc;
}
