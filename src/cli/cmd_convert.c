/* fipsc convert: write a model in its family's standard form (a Hugging Face checkpoint directory
 * for the Llama and ViT families).
 *
 * The llama2.c loader has already renamed the weights and permuted the q/k rows into the Hugging
 * Face rotary convention, so converting is loading plus the family's export_dense. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "model/family.h"
#include "model/model.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc convert MODEL -o DIR [--force]\n\n"
            "Writes MODEL (a llama2.c .bin, or any model fipsc loads) in its family's standard\n"
            "form: for language models and ViT/DeiT a Hugging Face checkpoint, DIR/config.json\n"
            "(a llama2.c model becomes LlamaForCausalLM) and DIR/model.safetensors (F32 weights\n"
            "under the standard names; q/k rows in the Hugging Face RoPE order).\n"
            "DIR is created whole or not at all: the files are assembled in a temporary directory\n"
            "beside DIR that is renamed onto it.\n\n"
            "  -o, --output DIR   the checkpoint directory to create (must not exist or be empty)\n"
            "      --force        replace config.json and model.safetensors in a non-empty DIR\n"
            "                     (each file atomically)\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable input or failed write, 2 usage error.\n");
}

int cmd_convert(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"force", no_argument, 0, 'f'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *output = NULL;
    int force = 0, c;
    optind = 1;
    opterr = 0; /* we word the errors ourselves */
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'f': force = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("convert", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("convert", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("convert", "missing MODEL");
    if (optind != argc - 1) return cli_usage_error("convert", "expects exactly one MODEL, got %d", argc - optind);
    if (!output) return cli_usage_error("convert", "missing -o DIR (the output directory)");

    fipsc_error err = {0};
    fipsc_model *m;
    if (fipsc_model_load(argv[optind], &m, &err)) return cli_report("convert", &err);
    fipsc_status st = fipsc_export(m, output, force, &err);
    if (st) {
        fipsc_model_free(m);
        int rc = cli_report("convert", &err);
        if (!force && strstr(err.message, "refusing to overwrite"))
            fprintf(stderr, "Use --force to replace its config.json and model.safetensors.\n");
        return rc;
    }
    if (m->family->export_is_directory)
        printf("wrote %s: config.json and model.safetensors (%d tensors, F32)\n", output, m->n_tensors);
    else
        printf("wrote %s: %s (%d tensors, F32)\n", output, m->family->export_form, m->n_tensors);
    fipsc_model_free(m);
    return CLI_OK;
}
