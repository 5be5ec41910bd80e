/* fipsc eval-images: top-1 and top-5 accuracy of a ViT/DeiT model over labelled images. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "eval/classify.h"
#include "core/threads.h"
#include "model/family.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc eval-images MODEL --dir DIR --labels FILE [--limit N] [--json]\n\n"
            "Classifies every image listed in FILE and prints the top-1 and top-5 accuracy.\n"
            "FILE has one image per line, 'relative/path<TAB>class' (path relative to DIR; class a\n"
            "class index or a label name of the model). MODEL is a ViT/DeiT checkpoint; images are\n"
            "preprocessed as for 'fipsc classify'.\n\n"
            "  -d, --dir DIR      directory the listed paths are relative to (required)\n"
            "  -l, --labels FILE  the labels file (required)\n"
            "      --limit N      evaluate only the first N listed images\n"
            "      --batch N      images per forward pass (default %d)\n"
            "      --threads N    threads (default: OMP_NUM_THREADS or all cores)\n"
            "      --json         {\"model\", \"images\", \"top1\", \"top5\", \"top1_correct\",\n"
            "                     \"top5_correct\"}\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable model, labels or image, 2 usage error.\n",
            FIPSC_CLASSIFY_BATCH);
}

int cmd_eval_images(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, 0, 'd'},
                                         {"labels", required_argument, 0, 'l'},
                                         {"limit", required_argument, 0, 'n'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"threads", required_argument, 0, 't'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *labels = NULL;
    long long limit = 0, batch = FIPSC_CLASSIFY_BATCH, threads = 0;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'l': labels = optarg; break;
        case 'n':
            if (!cli_parse_int("eval-images", "--limit", optarg, 1, 1 << 30, &limit)) return CLI_USAGE;
            break;
        case 'b':
            if (!cli_parse_int("eval-images", "--batch", optarg, 1, 1 << 16, &batch)) return CLI_USAGE;
            break;
        case 't':
            if (!cli_parse_int("eval-images", "--threads", optarg, 1, 1024, &threads)) return CLI_USAGE;
            break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("eval-images", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("eval-images", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("eval-images", "missing MODEL");
    if (optind != argc - 1)
        return cli_usage_error("eval-images", "expects exactly one MODEL, got %d arguments", argc - optind);
    if (!dir) return cli_usage_error("eval-images", "missing --dir DIR");
    if (!labels) return cli_usage_error("eval-images", "missing --labels FILE");
    if (threads) fipsc_threads_set((int)threads);

    fipsc_error err = {0};
    fipsc_model *m;
    const char *model_path = argv[optind];
    if (fipsc_model_load(model_path, &m, &err)) return cli_report("eval-images", &err);
    const fipsc_image_ops *ops;
    if (fipsc_model_need_image(m, &ops, &err)) {
        fipsc_model_free(m);
        return cli_report("eval-images", &err);
    }
    fipsc_labelled_image *items;
    int n;
    fipsc_image_eval res;
    int rc = CLI_OK;
    if (fipsc_read_image_labels(m, labels, dir, &items, &n, &err)) {
        rc = cli_report("eval-images", &err);
        fipsc_model_free(m);
        return rc;
    }
    if (fipsc_eval_images(m, items, n, (int)batch, (int)limit, &res, &err)) {
        rc = cli_report("eval-images", &err);
    } else if (json) {
        cJSON *root = cJSON_CreateObject();
        char *text = NULL;
        if (root && cJSON_AddStringToObject(root, "model", model_path) &&
            cJSON_AddNumberToObject(root, "images", res.n) &&
            cJSON_AddNumberToObject(root, "top1", res.top1_accuracy) &&
            cJSON_AddNumberToObject(root, "top5", res.top5_accuracy) &&
            cJSON_AddNumberToObject(root, "top1_correct", res.top1) &&
            cJSON_AddNumberToObject(root, "top5_correct", res.top5))
            text = cJSON_Print(root);
        if (text) printf("%s\n", text);
        else {
            fprintf(stderr, "fipsc eval-images: out of memory\n");
            rc = CLI_FAILURE;
        }
        free(text);
        cJSON_Delete(root);
    } else {
        printf("images %d  top-1 %.4f (%d)  top-5 %.4f (%d)\n", res.n, res.top1_accuracy, res.top1,
               res.top5_accuracy, res.top5);
    }
    fipsc_labelled_images_free(items, n);
    fipsc_model_free(m);
    return rc;
}
