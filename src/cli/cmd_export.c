/* fipsc export: write a compressed model as a standard checkpoint other runtimes load.
 *
 * --dense reconstructs every compressed MLP matrix as U·V_i in its original [out, in]
 * orientation (fipsc_model_densify) and writes the model in its family's standard form (a
 * Hugging Face checkpoint directory: config.json + model.safetensors, every tensor F32 under its
 * standard name; the sentence encoder: one .safetensors file). Any model fipsc loads is accepted
 * (an uncompressed one is written as it is). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "model/compressed.h"
#include "model/family.h"
#include "model/model.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc export COMPRESSED --dense -o DIR [--force]\n\n"
            "Writes COMPRESSED (a fipsc compressed .safetensors, or any model fipsc loads) as a\n"
            "standard Hugging Face checkpoint: every compressed MLP matrix is reconstructed as\n"
            "U·V_i in its original [out, in] orientation, then DIR/config.json and\n"
            "DIR/model.safetensors (F32, standard tensor names) are written. DIR is created whole\n"
            "or not at all (assembled in a temporary directory beside it, then renamed).\n"
            "Each family has its own standard form (listed below); a family that writes one\n"
            ".safetensors file takes OUT instead of DIR.\n\n"
            "  --dense            reconstruct dense MLP weights (required: the only export form)\n"
            "  -o, --output DIR   the checkpoint directory to create (must not exist or be empty)\n"
            "      --force        replace config.json and model.safetensors in a non-empty DIR\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable input or failed write, 2 usage error.\n\n"
            "What each model family writes:\n");
    for (int i = 0; i < fipsc_family_count(); i++)
        if (fipsc_family_at(i)->export_dense)
            fprintf(out, "  %-9s %s\n", fipsc_family_at(i)->name, fipsc_family_at(i)->export_form);
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"dense", no_argument, 0, 'd'},
                                         {"output", required_argument, 0, 'o'},
                                         {"force", no_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *output = NULL;
    int dense = 0, force = 0, c;
    optind = 1;
    opterr = 0; /* we word the errors ourselves */
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dense = 1; break;
        case 'o': output = optarg; break;
        case 'f': force = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("export", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("export", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("export", "missing COMPRESSED (the model to export)");
    if (optind != argc - 1) return cli_usage_error("export", "expects exactly one model, got %d", argc - optind);
    if (!dense) return cli_usage_error("export", "missing --dense (the only export form: dense MLP weights)");
    if (!output) return cli_usage_error("export", "missing -o DIR (the output directory)");

    fipsc_error err = {0};
    fipsc_model *m;
    if (fipsc_model_load(argv[optind], &m, &err)) return cli_report("export", &err);
    int matrices = fipsc_model_factored_count(m), groups = fipsc_model_group_count(m);
    fipsc_status st = fipsc_export(m, output, force, &err); /* reconstructs the compressed MLPs first */
    if (st) {
        fipsc_model_free(m);
        int rc = cli_report("export", &err);
        if (!force && strstr(err.message, "refusing to overwrite"))
            fprintf(stderr, "Use --force to replace its config.json and model.safetensors.\n");
        return rc;
    }
    printf("wrote %s: %s (%d tensors, F32; %d compressed matrices of %d group%s reconstructed)\n", output,
           m->family->export_is_directory ? "config.json and model.safetensors" : m->family->export_form,
           m->n_tensors, matrices, groups, groups == 1 ? "" : "s");
    fipsc_model_free(m);
    return CLI_OK;
}
