/* fipsc classify: the most likely classes of each image under a ViT/DeiT model. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "eval/classify.h"
#include "core/threads.h"
#include "model/family.h"

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: fipsc classify MODEL IMAGE... [--top K] [--json]\n\n"
            "Prints the K most likely classes (default 5) of each image: rank, label, class index,\n"
            "softmax probability and logit. MODEL is a Hugging Face ViTForImageClassification,\n"
            "DeiTForImageClassification or DeiTForImageClassificationWithTeacher checkpoint\n"
            "(directory or .safetensors file). IMAGE is a PNG, JPEG, PGM or PPM file; it is\n"
            "preprocessed as the model's preprocessor_config.json says (resize, centre crop,\n"
            "normalise), or with DeiT's defaults when there is none.\n\n"
            "  -k, --top K        classes per image (default 5)\n"
            "      --batch N      images per forward pass (default %d)\n"
            "      --threads N    threads (default: OMP_NUM_THREADS or all cores)\n"
            "      --json         one JSON object: {\"images\": [{\"image\", \"top\": [{\"rank\",\n"
            "                     \"class\", \"label\", \"probability\", \"logit\"}]}]}\n"
            "      --help         this text\n\n"
            "Exit status: 0 ok, 1 unreadable model or image, 2 usage error.\n",
            FIPSC_CLASSIFY_BATCH);
}

static int print_json(const fipsc_image_info *v, char **images, int n, const float *logits, int k)
{
    cJSON *root = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(root, "images");
    int *top = malloc((size_t)k * sizeof *top);
    float *probs = malloc((size_t)v->n_labels * sizeof *probs);
    if (!root || !list || !top || !probs) goto oom;
    for (int i = 0; i < n; i++) {
        const float *li = logits + (size_t)i * v->n_labels;
        int kk = fipsc_top_k(li, v->n_labels, k, top);
        fipsc_softmax(li, v->n_labels, probs);
        cJSON *entry = cJSON_CreateObject(), *ranks;
        if (!entry || !cJSON_AddItemToArray(list, entry) || !cJSON_AddStringToObject(entry, "image", images[i]) ||
            !(ranks = cJSON_AddArrayToObject(entry, "top")))
            goto oom;
        for (int r = 0; r < kk; r++) {
            cJSON *e = cJSON_CreateObject();
            if (!e || !cJSON_AddItemToArray(ranks, e) || !cJSON_AddNumberToObject(e, "rank", r + 1) ||
                !cJSON_AddNumberToObject(e, "class", top[r]) ||
                !cJSON_AddStringToObject(e, "label", v->labels[top[r]]) ||
                !cJSON_AddNumberToObject(e, "probability", probs[top[r]]) ||
                !cJSON_AddNumberToObject(e, "logit", li[top[r]]))
                goto oom;
        }
    }
    char *text = cJSON_Print(root);
    if (!text) goto oom;
    printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
    free(top);
    free(probs);
    return CLI_OK;
oom:
    cJSON_Delete(root);
    free(top);
    free(probs);
    fprintf(stderr, "fipsc classify: out of memory\n");
    return CLI_FAILURE;
}

static int print_text(const fipsc_image_info *v, char **images, int n, const float *logits, int k)
{
    int *top = malloc((size_t)k * sizeof *top);
    float *probs = malloc((size_t)v->n_labels * sizeof *probs);
    if (!top || !probs) {
        free(top);
        free(probs);
        fprintf(stderr, "fipsc classify: out of memory\n");
        return CLI_FAILURE;
    }
    for (int i = 0; i < n; i++) {
        const float *li = logits + (size_t)i * v->n_labels;
        int kk = fipsc_top_k(li, v->n_labels, k, top);
        fipsc_softmax(li, v->n_labels, probs);
        printf("%s\n", images[i]);
        for (int r = 0; r < kk; r++)
            printf("  %d. %-20s class %-5d p %.4f  logit %.4f\n", r + 1, v->labels[top[r]], top[r],
                   probs[top[r]], li[top[r]]);
    }
    free(top);
    free(probs);
    return CLI_OK;
}

int cmd_classify(int argc, char **argv)
{
    static const struct option opts[] = {{"top", required_argument, 0, 'k'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"threads", required_argument, 0, 't'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    long long k = 5, batch = FIPSC_CLASSIFY_BATCH, threads = 0;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (!cli_parse_int("classify", "--top", optarg, 1, 1000000, &k)) return CLI_USAGE;
            break;
        case 'b':
            if (!cli_parse_int("classify", "--batch", optarg, 1, 1 << 16, &batch)) return CLI_USAGE;
            break;
        case 't':
            if (!cli_parse_int("classify", "--threads", optarg, 1, 1024, &threads)) return CLI_USAGE;
            break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_usage_error("classify", "option '%s' needs an argument", argv[optind - 1]);
        default: return cli_usage_error("classify", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind == argc) return cli_usage_error("classify", "missing MODEL");
    if (optind == argc - 1) return cli_usage_error("classify", "missing IMAGE (at least one)");
    if (threads) fipsc_threads_set((int)threads);

    fipsc_error err = {0};
    fipsc_model *m;
    if (fipsc_model_load(argv[optind], &m, &err)) return cli_report("classify", &err);
    const fipsc_image_ops *ops;
    if (fipsc_model_need_image(m, &ops, &err)) {
        fipsc_model_free(m);
        return cli_report("classify", &err);
    }
    fipsc_image_info info;
    ops->info(m, &info);
    const fipsc_image_info *v = &info;
    char **images = argv + optind + 1;
    int n = argc - optind - 1;
    float *logits = malloc((size_t)n * v->n_labels * sizeof *logits);
    int rc;
    if (!logits) {
        fprintf(stderr, "fipsc classify: out of memory\n");
        rc = CLI_FAILURE;
    } else if (fipsc_classify_files(m, (const char *const *)images, n, (int)batch, logits, &err)) {
        rc = cli_report("classify", &err);
    } else {
        rc = json ? print_json(v, images, n, logits, (int)k) : print_text(v, images, n, logits, (int)k);
    }
    free(logits);
    fipsc_model_free(m);
    return rc;
}
