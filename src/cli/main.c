/* fipsc: entry point and subcommand dispatch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/isa.h"
#include "core/threads.h"
#include "families/registry.h"

static const cli_command commands[] = {
    {"inspect", "show tensors, configuration and parameter counts of a model", cmd_inspect},
    {"generate", "continue a prompt of token ids (language models)", cmd_generate},
    {"sample", "sample token sequences from a model into a token corpus file", cmd_sample},
    {"eval", "perplexity on a token corpus or a text; KL divergence and top-1 agreement vs a reference", cmd_eval},
    {"tokenize", "text to token ids (and back) with a Hugging Face tokenizer.json", cmd_tokenize},
    {"classify", "print the most likely classes of images (image classifiers)", cmd_classify},
    {"eval-images", "top-1/top-5 accuracy of an image classifier on labelled images", cmd_eval_images},
    {"convert", "write a model in its family's standard form (a Hugging Face directory)", cmd_convert},
    {"compress", "compress the MLPs with FiPS (or a baseline) into a compressed safetensors file", cmd_compress},
    {"distill", "fine-tune a compressed model end to end against the original (KL, cosine)", cmd_distill},
    {"export", "write a compressed model as a dense standard checkpoint (--dense)", cmd_export},
    {"import-tfjs", "convert a TF.js graph model (Universal Sentence Encoder Lite) to safetensors", cmd_import_tfjs},
    {"embed", "sentence embeddings from a sentence encoder", cmd_embed},
    {"eval-sts", "Spearman/Pearson correlation of a sentence encoder on an STS file", cmd_eval_sts},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void print_help(FILE *out)
{
    fprintf(out,
            "fipsc %s: compress the MLPs of pretrained transformers with FiPS\n"
            "(Fine-grained Parameter Sharing: a shared dense basis U and sparse factors V_i).\n\n"
            "Usage: fipsc <command> [options]\n\nCommands:\n",
            fipsc_version());
    for (int i = 0; i < n_commands; i++) fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nModel families (what `fipsc inspect` recognises):\n");
    for (int i = 0; i < fipsc_family_count(); i++) {
        const fipsc_family *f = fipsc_family_at(i);
        fprintf(out, "  %-12s %s: %s%s%s\n", f->name, f->title, f->lm ? "language model" : "",
                f->image ? "image classifier" : "", f->encoder ? "sentence encoder" : "");
    }
    fprintf(out, "\n'fipsc <command> --help' describes a command. Exit codes: 0 ok, 1 failure, 2 usage error.\n"
                 "Environment: FIPSC_ISA=portable|avx2|avx512|avx512bf16 lowers the instruction set of fipsc's own kernels\n"
                 "(default: the best this CPU runs; 'fipsc --version' shows it).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return CLI_OK;
    }
    /* FIPSC_ISA lowers the instruction set of fipsc's own kernels (src/core/isa.h): tests force
     * each level, and byte-identity checks pin the portable one. */
    const char *isa_name = getenv("FIPSC_ISA");
    if (isa_name && *isa_name) {
        fipsc_error err = {0};
        fipsc_isa isa;
        if (fipsc_isa_parse(isa_name, &isa, &err) || fipsc_isa_set(isa, &err)) {
            fprintf(stderr, "fipsc: FIPSC_ISA: %s\n", err.message);
            return CLI_USAGE;
        }
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("fipsc %s\n", fipsc_version());
        printf("%s\n", fipsc_blas_describe());
        printf("fipsc kernels: %s (best on this CPU: %s; FIPSC_ISA=portable|avx2|avx512|avx512bf16 lowers it)\n",
               fipsc_isa_name(fipsc_isa_active()), fipsc_isa_name(fipsc_isa_best()));
        return CLI_OK;
    }
    for (int i = 0; i < n_commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            int rc = commands[i].run(argc - 1, argv + 1);
            /* Results lost on a full disk (or a closed pipe) must not pass for success. */
            errno = 0;
            if (rc == CLI_OK && (fflush(stdout) != 0 || ferror(stdout))) {
                fprintf(stderr, "fipsc %s: cannot write to standard output%s%s\n", commands[i].name,
                        errno ? ": " : "", errno ? strerror(errno) : "");
                rc = CLI_FAILURE;
            }
            return rc;
        }
    fprintf(stderr, "fipsc: unknown command '%s'\nTry 'fipsc --help'.\n", argv[1]);
    return CLI_USAGE;
}
