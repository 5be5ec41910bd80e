/* fipsc compress: calibrate on the original model, compress the MLPs group by group with FiPS (or
 * a baseline at the same parameter budget) and write the compressed safetensors file. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "families/registry.h"
#include "cli/cli.h"
#include "cli/mpi_ranks.h"
#include "compress/compress_model.h"
#include "core/file.h"
#include "core/threads.h"

#define CMD "compress"


/* One line per family: the training defaults its models get (fipsc_family.defaults). */
static void print_family_defaults(FILE *out)
{
    for (int i = 0; i < fipsc_family_count(); i++) {
        fipsc_compress_options o;
        const fipsc_family *f = fipsc_family_at(i);
        fipsc_compress_defaults_for(&o, f);
        fprintf(out, "  %-9s --groups %s --schedule %s --mode %s --sparsity %g --steps %d --batch %d --lr %g",
                f->name, o.groups, fipsc_compress_schedule_name(o.schedule),
                o.mode == FIPSC_FIPS_LOCAL ? "local" : "joint", o.sparsity, o.steps, o.batch_rows, (double)o.lr);
        const int w = f->defaults ? f->defaults->lr_width : 0;
        if (w > 0) fprintf(out, " (× %d/d when d > %d)", w, w);
        fprintf(out, " --adam-moments %s", o.bf16_moments ? "bf16" : "f32");
        fprintf(out, "\n");
    }
}

static void usage(FILE *out)
{
    fipsc_compress_options d;
    fipsc_compress_defaults(&d);
    fprintf(out,
            "Usage: fipsc compress MODEL -o OUT.safetensors [options]\n\n"
            "Compresses the MLPs of MODEL (any model fipsc loads: a language model, an image\n"
            "classifier or a sentence encoder) with FiPS: the MLP matrices of each group of\n"
            "consecutive blocks share one dense basis U and keep one sparse factor V_i each,\n"
            "initialised by SVD and trained to reproduce the original MLP outputs on calibration\n"
            "data (the original model's MLP inputs and outputs: teacher forcing). Baselines run\n"
            "through the same accounting with --method. OUT is written\n"
            "atomically in fipsc's compressed safetensors format (docs/FORMAT.md); `fipsc eval`,\n"
            "`generate`, `inspect`, `export`, `embed` and `eval-sts` read it.\n\n"
            "  -o, --output FILE       the compressed model to write (required)\n"
            "      --method M          fips (default): shared basis, sparse V, trained;\n"
            "                          fips-init: the same SVD initialisation and pruning, untrained;\n"
            "                          shared-svd: shared basis, dense V (s = 0), untrained;\n"
            "                          svd: per-matrix truncated SVD;\n"
            "                          magnitude: per-matrix magnitude pruning (or --nm)\n"
            "      --budget P          fraction of each group's MLP parameters kept, in (0, 1]\n"
            "                          (default %g): Σ d·r + nnz(V) ≤ P·(dense parameters)\n"
            "      --sparsity S        final sparsity of V, in [0, 1) (default %g)\n"
            "      --nm N:M            N:M sparsity of V along the rank (e.g. 2:4) instead of S;\n"
            "                          the rank is rounded down to a multiple of M\n"
            "      --rank R            use rank R for every group instead of deriving it from P\n"
            "      --groups SPEC       K = consecutive groups of K blocks, the last one taking\n"
            "                          the rest; or explicit ranges like 0-1,2-4 (default %s)\n"
            "      --schedule S        gmp (gradual magnitude pruning), rigl or static (default gmp)\n"
            "      --mode M            joint: all MLPs of a group trained together (default);\n"
            "                          local: one MLP after the other, as the reference code\n"
            "      --steps T           optimiser steps per group, or per MLP in local mode (default %d)\n"
            "      --lr LR             AdamW learning rate, cosine-decayed (default: the family's,\n"
            "                          below, scaled down for models wider than it was tuned at;\n"
            "                          for a few hundred steps a lower one works better)\n"
            "      --lr-min LR         final learning rate (default LR/100)\n"
            "      --weight-decay W    AdamW weight decay (default %g)\n"
            "      --batch B           calibration rows per MLP per step (default %d)\n"
            "      --holdout F         hold out this fraction of the calibration rows (the last\n"
            "                          inputs: whole sequences or images) from training, and keep\n"
            "                          the iterate, once the mask is final, that reproduces them\n"
            "                          best, or the SVD initialisation when no iterate beats it\n"
            "                          (default %g; 0: train on every row and judge on them)\n"
            "      --strict            fail, writing nothing, when training does not beat the\n"
            "                          SVD initialisation (default: warn and keep the initialisation)\n"
            "      --max-memory SIZE   refuse, before any work, a run whose memory plan (model,\n"
            "                          calibration rows, the largest group: in the report) exceeds\n"
            "                          SIZE, e.g. 20G (K/M/G/T: powers of 1024; KB/MB/GB: of 1000);\n"
            "                          default: the machine's memory less 10 %%; none: no check\n"
            "      --dry-run           print the groups and the memory plan, then stop (no -o needed)\n"
            "      --spill MODE        where the calibration rows live: auto (default: in memory,\n"
            "                          unless only a scratch file makes the plan fit), always, never\n"
            "      --scratch-dir DIR   the scratch file's directory (default $TMPDIR, else /tmp);\n"
            "                          the file is unnamed and vanishes with the process\n"
            "      --calib-corpus FILE language model: calibrate on this token corpus (binary or text)\n"
            "      --calib-text FILE   ... or on a UTF-8 text: the model's BOS, then the text's tokens\n"
            "                          cut into N sequences of L tokens spread evenly over it;\n"
            "                          several texts: A.txt:3,B.txt:1 share the N sequences 3:1\n"
            "                          (weight 1 when not given), interleaved\n"
            "      --tokenizer PATH    the tokenizer.json for --calib-text (default: beside MODEL)\n"
            "      --calib-samples N   or on N sequences sampled from MODEL (default 64) ...\n"
            "      --calib-len L       ... of L tokens each (default 256), with a seed derived\n"
            "                          from S (so they differ from `fipsc sample --seed S`)\n"
            "      --calib-images DIR  image classifier: calibrate on the image files in DIR (name order)\n"
            "      --calib-idx FILE    ... or on the images of an IDX file (MNIST's format, gzip ok)\n"
            "      --calib-count N     the first N images that are not excluded (default %d)\n"
            "      --calib-exclude DIR leave out images whose pixels equal an image in DIR (e.g.\n"
            "                          the model's hold-out images)\n"
            "      --calib-sentences F sentence encoder: calibrate on F.tsv (both sentences of every\n"
            "                          pair of an STS file) or on a text file, one sentence a line\n"
            "      --calib-rows N      ... at most N token rows: whole sentences drawn with a seed\n"
            "                          derived from S (default %d; 0 = every sentence);\n"
            "                          several files: A.tsv:1,B.txt:2 share the N rows 1:2\n"
            "      --seed S            random seed for sampling and training (default %llu)\n"
            "      --u-dtype T         store every U as auto (default: the dtype the group's\n"
            "                          weights came in, e.g. bf16 for a BF16 checkpoint), f32,\n"
            "                          f16 or bf16\n"
            "      --v-dtype T         store the values of every V the same way (default auto)\n"
            "      --storage S         how V is stored: auto (default: per group the cheapest in\n"
            "                          bytes for the entries training kept), csc (a row index per\n"
            "                          entry), bitmap (a bit per entry of V) or dense; --nm packs n:m\n"
            "      --threads K         threads to use (default: all cores)\n"
            "      --report FILE       write the JSON report (errors, nnz, parameters, bytes, time)\n"
            "      --checkpoint-dir DIR\n"
            "                          save every finished group to DIR (created if missing) as\n"
            "                          soon as it is done, atomically; DIR must hold no checkpoints\n"
            "                          unless --resume is given\n"
            "      --resume            continue a run killed at any moment: reuse DIR's saved groups\n"
            "                          and compute the others; the output is byte-identical to an\n"
            "                          uninterrupted run. Needs the same model, calibration and\n"
            "                          options (a difference is refused, naming it); a damaged\n"
            "                          checkpoint is an error naming the file (delete it to\n"
            "                          recompute its group)\n"
            "      --sequential        sequential calibration (beyond the paper): capture each\n"
            "                          group's rows just before it, on the model with the earlier\n"
            "                          groups already compressed (default: all from the original\n"
            "                          model, teacher forcing). One group's rows in memory at a\n"
            "                          time; needs a corpus or text for a language model; one process\n"
            "      --capture-all       capture every group's calibration rows in one forward before\n"
            "                          the first group (default: streamed, each group's rows when\n"
            "                          its turn comes, from the residual stream the earlier blocks\n"
            "                          left: the same rows and output bits, one group's rows in memory)\n"
            "      --init I            how the shared basis starts: svd (the paper's, default) or\n"
            "                          whitened (beyond it: the SVD of W_cat whitened by the\n"
            "                          calibration inputs' second moments, so U favours the\n"
            "                          directions the inputs use); fips, fips-init, shared-svd\n"
            "      --whiten-alpha A    whitened: its strength in (0, 1], C^(A/2) (default 0.5;\n"
            "                          1: the full whitening)\n"
            "      --adam-moments T    V's Adam moments as f32 or bf16 (stochastic rounding: half\n"
            "                          the optimiser state, the largest part of training's\n"
            "                          memory); default: the family's (below)\n"
            "      --v-products P      the training step's products with V: sparse (over its kept\n"
            "                          entries only), dense (GEMMs over the masked V) or auto:\n"
            "                          sparse once V keeps at most 35%% of its entries (default)\n"
            "      --divergence-retries N\n"
            "                          when a group's training diverges (loss NaN, Inf or above\n"
            "                          1e4 times the outputs' mean square), train it again from\n"
            "                          the same start with the learning rate halved,\n"
            "                          up to N times (default 0: stop with an error naming it)\n"
            "      --quiet             no progress, summaries or table\n"
            "      --help              this text\n\n"
            "%s"
            "Prints a table of the result on stdout. Progress goes to stderr when it is a terminal,\n"
            "else one summary line per group. The same seed gives the same file, whatever --threads.\n"
            "Exit status: 0 ok, 1 failure (unreadable input, unwritable output, diverged training,\n"
            "training that lost to its initialisation under --strict),\n"
            "2 usage error (including impossible budgets, groups or n:m, and a calibration corpus\n"
            "from another vocabulary).\n\n"
            "The training options default by model family (any option given wins; --lr-min then\n"
            "defaults to --lr / 100):\n",
            d.budget, d.sparsity, d.groups, d.steps, (double)d.weight_decay,
            d.batch_rows, d.holdout, FIPSC_CALIB_IMAGES, FIPSC_CALIB_ROWS, (unsigned long long)d.seed,
            cli_mpi_available()
                ? "Several processes (MPI): `mpirun -np K fipsc compress ...` shares the groups among K\n"
                  "processes, on one machine or several: each computes consecutive groups (group 0 on\n"
                  "rank 0), streaming the calibration up to its own blocks, and rank 0 writes OUT (and\n"
                  "--report); the file is byte-identical to one process's, whatever K. A rank that\n"
                  "fails or dies stops the job with no output. With --checkpoint-dir each rank saves\n"
                  "its own groups there and --resume reuses those it finds (DIR on a shared file\n"
                  "system gives every rank every saved group, for any K).\n\n"
                : "Several processes (MPI): not in this build (fipsc was built without an MPI\n"
                  "library; with Debian's libopenmpi-dev, `mpirun -np K fipsc compress` shares the\n"
                  "groups among K processes).\n\n");
    print_family_defaults(out);
}

typedef struct progress_state {
    bool live;    /* stderr is a terminal: a live status line */
    bool summary; /* one line per finished group */
    bool line_open;
    char rank[32]; /* "rank R/K: " before every line when several processes share the run */
    int my_rank;
} progress_state;

/* A calibration progress line on stderr (a terminal); NULL text ends it. */
static void show_note(void *user, const char *text)
{
    (void)user;
    if (text) fprintf(stderr, "\r\033[K%s", text);
    else fprintf(stderr, "\r\033[K");
}

static void on_progress(void *user, const fipsc_compress_progress *p)
{
    progress_state *ps = user;
    char el[32], eta[32];
    cli_format_seconds(el, sizeof el, p->elapsed);
    cli_format_seconds(eta, sizeof eta, p->eta);
    if (p->event == FIPSC_COMPRESS_STEP && ps->live) {
        char who[48] = "";
        if (p->block >= 0) snprintf(who, sizeof who, " block %d", p->block);
        fprintf(stderr, "\r\033[K%sgroup %d/%d (blocks %d-%d)%s step %d/%d loss %.5f sparsity %.3f "
                        "elapsed %s ETA %s", ps->rank,
                p->group + 1, p->n_groups, p->blocks.first, p->blocks.last, who, p->step, p->steps,
                p->loss, p->sparsity, el, eta);
        ps->line_open = true;
    } else if (p->event == FIPSC_COMPRESS_RETRY && (ps->live || ps->summary)) {
        if (ps->line_open) fprintf(stderr, "\r\033[K");
        ps->line_open = false;
        fprintf(stderr, "%sgroup %d/%d (blocks %d-%d): training diverged (%s); retry %d from the same "
                        "start with the learning rate halved to %g\n", ps->rank,
                p->group + 1, p->n_groups, p->blocks.first, p->blocks.last, p->message, p->retry, p->lr);
    } else if (p->event == FIPSC_COMPRESS_GROUP_START && ps->live) {
        fprintf(stderr, "\r\033[K%sgroup %d/%d (blocks %d-%d): initialising, elapsed %s", ps->rank, p->group + 1,
                p->n_groups, p->blocks.first, p->blocks.last, el);
        ps->line_open = true;
    } else if (p->event == FIPSC_COMPRESS_GROUP_DONE && p->from_rank != ps->my_rank) {
        /* rank 0: another rank's group arrived (that rank said how it went) */
        if (ps->live || ps->summary) {
            if (ps->line_open) fprintf(stderr, "\r\033[K");
            ps->line_open = false;
            fprintf(stderr, "%sgroup %d/%d (blocks %d-%d): received from rank %d, elapsed %s\n", ps->rank,
                    p->group + 1, p->n_groups, p->blocks.first, p->blocks.last, p->from_rank, el);
        }
        return;
    } else if (p->event == FIPSC_COMPRESS_GROUP_DONE && (ps->live || ps->summary)) {
        const fipsc_group_report *g = p->report;
        double worst_before = -1, worst_after = 0;
        for (int j = 0; j < g->n_mlps; j++) {
            if (g->mlps[j].out_err_before > worst_before) worst_before = g->mlps[j].out_err_before;
            if (g->mlps[j].out_err_after > worst_after) worst_after = g->mlps[j].out_err_after;
        }
        if (ps->line_open) fprintf(stderr, "\r\033[K");
        ps->line_open = false;
        fprintf(stderr, "%sgroup %d/%d (blocks %d-%d): rank %d, sparsity %.3f, params %lld/%lld (%.1f%%), "
                        "bytes %lld/%lld (%.1f%%), worst MLP output error ", ps->rank,
                p->group + 1, p->n_groups, p->blocks.first, p->blocks.last, g->plan.r, g->sparsity,
                (long long)g->kept_params, (long long)g->plan.dense_params,
                100.0 * (double)g->kept_params / (double)g->plan.dense_params,
                (long long)g->stored_bytes, (long long)g->plan.dense_bytes,
                100.0 * (double)g->stored_bytes / (double)g->plan.dense_bytes);
        if (worst_before >= 0) fprintf(stderr, "%.4f -> ", worst_before);
        cli_format_seconds(el, sizeof el, g->seconds);
        fprintf(stderr, "%.4f, %s", worst_after, el);
        if (g->peak_rss > 0) fprintf(stderr, ", peak RSS %.2f GB", (double)g->peak_rss / 1e9);
        fprintf(stderr, "%s\n", p->restored ? " (from its checkpoint)" : "");
    }
    /* Said even with --quiet: the file will hold an untrained group. */
    if (p->event == FIPSC_COMPRESS_GROUP_DONE && p->report->kept_step == 0 && isfinite(p->report->score_init) &&
        p->from_rank == ps->my_rank) {
        if (ps->line_open) fprintf(stderr, "\r\033[K");
        ps->line_open = false;
        fprintf(stderr, "fipsc compress: %swarning: group %d (blocks %d-%d): training did not improve on "
                        "the SVD initialisation (score %.6g; best trained iterate %.6g), so the "
                        "initialisation was kept; try a lower --lr or more --steps (--strict makes "
                        "this an error)\n", ps->rank, p->group, p->blocks.first, p->blocks.last,
                p->report->score_init, p->report->score_trained);
    }
}

/* Fails early (before minutes of work) when path cannot be created: opens and discards the
 * temporary file an atomic write would use. */
static bool check_writable(const char *path, fipsc_error *err)
{
    fipsc_atomic_file af;
    if (fipsc_atomic_open(path, &af, err)) return false;
    fipsc_atomic_abort(&af);
    return true;
}





int cmd_compress(int argc, char **argv)
{
    enum { OPT_SETTING = 256, OPT_THREADS, OPT_REPORT, OPT_QUIET, OPT_CHECKPOINT_DIR, OPT_RESUME, OPT_STRICT, OPT_DRY_RUN,
           OPT_SEQUENTIAL, OPT_CAPTURE_ALL };
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},
        {"method", required_argument, 0, OPT_SETTING},
        {"budget", required_argument, 0, OPT_SETTING},
        {"sparsity", required_argument, 0, OPT_SETTING},
        {"nm", required_argument, 0, OPT_SETTING},
        {"rank", required_argument, 0, OPT_SETTING},
        {"groups", required_argument, 0, OPT_SETTING},
        {"schedule", required_argument, 0, OPT_SETTING},
        {"mode", required_argument, 0, OPT_SETTING},
        {"steps", required_argument, 0, OPT_SETTING},
        {"lr", required_argument, 0, OPT_SETTING},
        {"lr-min", required_argument, 0, OPT_SETTING},
        {"weight-decay", required_argument, 0, OPT_SETTING},
        {"batch", required_argument, 0, OPT_SETTING},
        {"calib-corpus", required_argument, 0, OPT_SETTING},
        {"calib-samples", required_argument, 0, OPT_SETTING},
        {"calib-len", required_argument, 0, OPT_SETTING},
        {"seed", required_argument, 0, OPT_SETTING},
        {"threads", required_argument, 0, OPT_THREADS},
        {"report", required_argument, 0, OPT_REPORT},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"u-dtype", required_argument, 0, OPT_SETTING},
        {"v-dtype", required_argument, 0, OPT_SETTING},
        {"storage", required_argument, 0, OPT_SETTING},
        {"calib-images", required_argument, 0, OPT_SETTING},
        {"calib-idx", required_argument, 0, OPT_SETTING},
        {"calib-count", required_argument, 0, OPT_SETTING},
        {"calib-exclude", required_argument, 0, OPT_SETTING},
        {"calib-sentences", required_argument, 0, OPT_SETTING},
        {"calib-rows", required_argument, 0, OPT_SETTING},
        {"calib-text", required_argument, 0, OPT_SETTING},
        {"tokenizer", required_argument, 0, OPT_SETTING},
        {"checkpoint-dir", required_argument, 0, OPT_CHECKPOINT_DIR},
        {"resume", no_argument, 0, OPT_RESUME},
        {"divergence-retries", required_argument, 0, OPT_SETTING},
        {"holdout", required_argument, 0, OPT_SETTING},
        {"strict", no_argument, 0, OPT_STRICT},
        {"sequential", no_argument, 0, OPT_SEQUENTIAL},
        {"capture-all", no_argument, 0, OPT_CAPTURE_ALL},
        {"init", required_argument, 0, OPT_SETTING},
        {"whiten-alpha", required_argument, 0, OPT_SETTING},
        {"adam-moments", required_argument, 0, OPT_SETTING},
        {"v-products", required_argument, 0, OPT_SETTING},
        {"max-memory", required_argument, 0, OPT_SETTING},
        {"dry-run", no_argument, 0, OPT_DRY_RUN},
        {"spill", required_argument, 0, OPT_SETTING},
        {"scratch-dir", required_argument, 0, OPT_SETTING},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    fipsc_compress_settings set;
    fipsc_settings_init(&set);
    const char *output = NULL, *report_path = NULL;
    fipsc_compress_checkpoint ck = {.dir = NULL, .resume = false};
    long long threads = 0;
    bool quiet = false, dry_run = false;
    fipsc_error err = {0};
    int c, at = 0, rc = CLI_OK;
    optind = 1;
    opterr = 0;
    while (rc == CLI_OK && (c = getopt_long(argc, argv, ":o:h", opts, &at)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case OPT_SETTING: /* the compression settings: src/compress/settings.c parses them */
            if (fipsc_settings_set(&set, opts[at].name, optarg, &err)) rc = cli_usage_error(CMD, "%s", err.message);
            break;
        case OPT_THREADS:
            if (!cli_parse_int(CMD, "--threads", optarg, 1, 1024, &threads)) rc = CLI_USAGE;
            break;
        case OPT_REPORT: report_path = optarg; break;
        case OPT_QUIET: quiet = true; break;
        case OPT_CHECKPOINT_DIR: ck.dir = optarg; break;
        case OPT_RESUME: ck.resume = true; break;
        case OPT_STRICT: fipsc_settings_set(&set, "strict", "true", &err); break;
        case OPT_SEQUENTIAL: fipsc_settings_set(&set, "sequential", "true", &err); break;
        case OPT_CAPTURE_ALL: fipsc_settings_set(&set, "capture-all", "true", &err); break;
        case OPT_DRY_RUN: dry_run = true; break;
        case 'h': usage(stdout); fipsc_settings_free(&set); return CLI_OK;
        case ':': rc = cli_usage_error(CMD, "option '%s' needs an argument", argv[optind - 1]); break;
        default: rc = cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (rc == CLI_OK) {
        const char *calib_problem = fipsc_calib_source_problem(&set.calib, NULL);
        if (optind == argc) rc = cli_usage_error(CMD, "missing MODEL");
        else if (optind != argc - 1) rc = cli_usage_error(CMD, "expects exactly one MODEL, got %d", argc - optind);
        else if (!output && !dry_run) rc = cli_usage_error(CMD, "missing -o OUT.safetensors (the compressed model to write)");
        else if (ck.resume && !ck.dir)
            rc = cli_usage_error(CMD, "--resume needs --checkpoint-dir DIR (where the run saved its groups)");
        else if (calib_problem) rc = cli_usage_error(CMD, "%s", calib_problem);
    }
    if (rc != CLI_OK) {
        fipsc_settings_free(&set);
        return rc;
    }
    /* The options checked before loading: generic defaults (the family's come with the model). */
    fipsc_compress_options early;
    fipsc_settings_resolve(&set, NULL, &early);
    const char *model_path = argv[optind];
    /* Started by mpirun with several processes: share the groups (rank 0 writes the output). */
    fipsc_compress_ranks ranks = {.rank = 0, .size = 1};
    const bool mpi = cli_mpi_launched_size() > 1;
    if (mpi && cli_mpi_start(set.options.scratch_dir, &ranks, &err)) {
        fipsc_settings_free(&set);
        return cli_report(CMD, &err);
    }
    if (mpi) set.options.ranks = &ranks;
    const bool writer = ranks.rank == 0;

    if (fipsc_compress_options_check(&early, &err) || (writer && output && !check_writable(output, &err)) ||
        (writer && report_path && !check_writable(report_path, &err))) {
        fipsc_settings_free(&set);
        rc = cli_report(CMD, &err);
        if (mpi) cli_mpi_finish(rc);
        return rc;
    }
    if (threads > 0) fipsc_threads_set((int)threads);
    const bool tty = isatty(2);

    fipsc_model *m = NULL;
    fipsc_compress_report *rep = NULL;
    char *json = NULL, *table = NULL;
    char calib_desc[512];
    const char *calib_problem;
    fipsc_status st;
    if (fipsc_model_load(model_path, &m, &err)) {
        rc = cli_report(CMD, &err);
        goto done;
    }
    /* What the model can do decides what it calibrates on: images, sentences or a token corpus. */
    if ((calib_problem = fipsc_calib_source_problem(&set.calib, m))) {
        rc = cli_usage_error(CMD, "%s", calib_problem);
        goto done;
    }
    if (dry_run) { /* the plan alone: nothing calibrated, trained or written */
        char *plan = NULL;
        if ((st = fipsc_compress_dry_run(m, &set, &plan, &err))) rc = cli_report(CMD, &err);
        else if (writer) printf("%s: dry run, nothing done\n%s", model_path, plan);
        else if (strstr(plan, "memory plan")) /* each rank plans its own share */
            fprintf(stderr, "rank %d/%d: %s", ranks.rank, ranks.size, strstr(plan, "memory plan"));
        free(plan);
        goto done;
    }
    progress_state ps = {.live = tty && !quiet, .summary = !tty && !quiet, .my_rank = ranks.rank};
    if (mpi) snprintf(ps.rank, sizeof ps.rank, "rank %d/%d: ", ranks.rank, ranks.size);
    if ((st = fipsc_compress_model(m, &set, ck.dir ? &ck : NULL, tty && !quiet ? show_note : NULL, NULL,
                                   on_progress, &ps, &rep, calib_desc, sizeof calib_desc, &err))) {
        if (ps.line_open) fprintf(stderr, "\n");
        rc = cli_report(CMD, &err);
        goto done;
    }
    if (!writer) { /* its groups went to rank 0, which writes */
        if (!quiet)
            fprintf(stderr, "%sdone: this rank's groups went to rank 0 (its calibration captured in %.1f s)\n",
                    ps.rank, rep->calibration_seconds);
        goto done;
    }
    if ((st = fipsc_compress_write(m, rep, calib_desc, output, &err))) {
        rc = cli_report(CMD, &err);
        goto done;
    }
    if (report_path) {
        fipsc_atomic_file af;
        if ((st = fipsc_compress_report_json(rep, model_path, output, calib_desc, &json, &err)) ||
            (st = fipsc_atomic_open(report_path, &af, &err))) {
            rc = cli_report(CMD, &err);
            goto done;
        }
        fipsc_atomic_write(&af, json, strlen(json), &err);
        fipsc_atomic_write(&af, "\n", 1, &err);
        if ((st = fipsc_atomic_commit(&af, &err))) {
            rc = cli_report(CMD, &err);
            goto done;
        }
    }
    if (!quiet) {
        if ((st = fipsc_compress_report_table(rep, &table, &err))) {
            rc = cli_report(CMD, &err);
            goto done;
        }
        printf("%s -> %s\ncalibration: %s\n%s", model_path, output, calib_desc, table);
    }
done:
    free(table);
    free(json);
    fipsc_compress_report_free(rep);
    fipsc_model_free(m);
    fipsc_settings_free(&set);
    if (mpi) cli_mpi_finish(rc); /* a failure on any rank stops them all: nothing is written */
    return rc;
}
