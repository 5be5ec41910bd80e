/* Sets of safetensors files: sharded Hugging Face checkpoints (model.safetensors.index.json)
 * and single files behind the same interface (see src/formats/safetensors.h).
 *
 * An index is only trusted after it has been checked against the shards: the weight_map and the
 * shards' own headers must describe the same set of tensors, each in exactly one shard. */
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/path.h"
#include "core/name_table.h"
#include "formats/safetensors_internal.h"

struct fipsc_st_set {
    fipsc_st_file **shards; /* in file-name order */
    int n_shards;
    const fipsc_st_tensor **all;
    int n_all;
    fipsc_name_table by_name; /* keys owned by the shards */
    char *index_path;         /* NULL for a single file */
};

bool fipsc_st_shard_path_ok(const char *path, const char **why)
{
    if (!*path) {
        *why = "is empty";
        return false;
    }
    if (path[0] == '/') {
        *why = "is absolute: shards must be inside the index's directory";
        return false;
    }
    for (const char *c = path; *c;) {
        size_t len = strcspn(c, "/");
        if (len == 2 && c[0] == '.' && c[1] == '.') {
            *why = "contains '..': shards must stay inside the index's directory";
            return false;
        }
        c += len;
        if (*c == '/') c++;
    }
    return true;
}

void fipsc_st_set_close(fipsc_st_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->n_shards; i++) fipsc_st_close(s->shards[i]);
    free(s->shards);
    free(s->all);
    fipsc_name_table_free(&s->by_name);
    free(s->index_path);
    free(s);
}

int fipsc_st_set_count(const fipsc_st_set *s) { return s->n_all; }

const fipsc_st_tensor *fipsc_st_set_at(const fipsc_st_set *s, int i)
{
    return i >= 0 && i < s->n_all ? s->all[i] : NULL;
}

const fipsc_st_tensor *fipsc_st_set_find(const fipsc_st_set *s, const char *name)
{
    int i = fipsc_name_table_get(&s->by_name, name);
    return i >= 0 ? s->all[i] : NULL;
}

int fipsc_st_set_shard_count(const fipsc_st_set *s) { return s->n_shards; }

const fipsc_st_file *fipsc_st_set_shard(const fipsc_st_set *s, int i)
{
    return i >= 0 && i < s->n_shards ? s->shards[i] : NULL;
}

const char *fipsc_st_set_index_path(const fipsc_st_set *s) { return s->index_path; }

/* Lists every tensor of every shard in s->all and the name table. A name in two shards fails,
 * naming both (labels are the shard names used in messages). */
static fipsc_status collect_tensors(fipsc_st_set *s, const char *where, const char *const *labels,
                                    fipsc_error *err)
{
    int total = 0;
    for (int i = 0; i < s->n_shards; i++) total += fipsc_st_count(s->shards[i]);
    s->all = malloc(((size_t)total + 1) * sizeof *s->all);
    if (!s->all) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", where);
    int *shard_of = malloc(((size_t)total + 1) * sizeof *shard_of);
    if (!shard_of) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", where);
    fipsc_status st = FIPSC_OK;
    for (int i = 0; i < s->n_shards && st == FIPSC_OK; i++)
        for (int k = 0; k < fipsc_st_count(s->shards[i]) && st == FIPSC_OK; k++) {
            const fipsc_st_tensor *t = fipsc_st_at(s->shards[i], k);
            int existing;
            if (fipsc_name_table_insert(&s->by_name, t->name, s->n_all, &existing)) {
                shard_of[s->n_all] = i;
                s->all[s->n_all++] = t;
            } else if (existing < 0) {
                st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", where);
            } else {
                st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: tensor '%s' is in two shards: '%s' and '%s'",
                                where, t->name, labels[shard_of[existing]], labels[i]);
            }
        }
    free(shard_of);
    return st;
}

static fipsc_status open_single(const char *path, fipsc_st_set *s, fipsc_error *err)
{
    s->shards = calloc(1, sizeof *s->shards);
    if (!s->shards) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    fipsc_status st = fipsc_st_open(path, &s->shards[0], err);
    if (st != FIPSC_OK) return st;
    s->n_shards = 1;
    return collect_tensors(s, path, &path, err);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The weight_map, checked on its own. Shard paths are normalised lexically ("./a//b" -> "a/b")
 * so that two spellings of one file name one shard. */
typedef struct {
    const cJSON *map;          /* the "weight_map" object */
    int n_entries;
    char **entry_shard;        /* [n_entries] normalised shard path of each entry, owned */
    const char **shard_names;  /* [n_shards] distinct, sorted, borrowed from entry_shard */
    int n_shards;
    fipsc_name_table listed;   /* tensor name -> entry */
} weight_map;

static void weight_map_free(weight_map *wm)
{
    for (int i = 0; wm->entry_shard && i < wm->n_entries; i++) free(wm->entry_shard[i]);
    free(wm->entry_shard);
    free(wm->shard_names);
    fipsc_name_table_free(&wm->listed);
}

/* Drops empty and "." components. The caller has checked fipsc_st_shard_path_ok. */
static char *normalize_shard_path(const char *path)
{
    char *out = malloc(strlen(path) + 1);
    if (!out) return NULL;
    size_t n = 0;
    for (const char *c = path; *c;) {
        size_t len = strcspn(c, "/");
        if (len > 0 && !(len == 1 && c[0] == '.')) {
            if (n) out[n++] = '/';
            memcpy(out + n, c, len);
            n += len;
        }
        c += len;
        if (*c == '/') c++;
    }
    out[n] = '\0';
    return out;
}

static fipsc_status read_weight_map(const char *index, const cJSON *map, weight_map *wm,
                                    fipsc_error *err)
{
    wm->map = map;
    int n = cJSON_GetArraySize(map);
    wm->entry_shard = calloc((size_t)n + 1, sizeof *wm->entry_shard);
    wm->shard_names = malloc(((size_t)n + 1) * sizeof *wm->shard_names);
    if (!wm->entry_shard || !wm->shard_names)
        return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", index);
    for (const cJSON *e = map->child; e; e = e->next) {
        int i = wm->n_entries;
        if (!cJSON_IsString(e))
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: weight_map entry for tensor '%s' is not a file name", index,
                              e->string);
        const char *why;
        if (!fipsc_st_shard_path_ok(e->valuestring, &why))
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: shard path '%s' of tensor '%s' %s", index,
                              e->valuestring, e->string, why);
        wm->entry_shard[i] = normalize_shard_path(e->valuestring);
        if (!wm->entry_shard[i]) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", index);
        wm->n_entries++;
        if (!wm->entry_shard[i][0])
            return fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: shard path '%s' of tensor '%s' names no file",
                              index, e->valuestring, e->string);
        int existing;
        if (!fipsc_name_table_insert(&wm->listed, e->string, i, &existing))
            return existing < 0 ? fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", index)
                                : fipsc_fail(err, FIPSC_ERR_FORMAT,
                                             "%s: tensor '%s' appears twice in the weight_map",
                                             index, e->string);
        wm->shard_names[i] = wm->entry_shard[i];
    }
    qsort(wm->shard_names, (size_t)wm->n_entries, sizeof *wm->shard_names, compare_strings);
    for (int k = 0; k < wm->n_entries; k++)
        if (wm->n_shards == 0 || strcmp(wm->shard_names[wm->n_shards - 1], wm->shard_names[k]) != 0)
            wm->shard_names[wm->n_shards++] = wm->shard_names[k];
    return FIPSC_OK;
}

/* The weight_map and the shards' headers must agree tensor by tensor. Shard i of s is
 * wm->shard_names[i]. */
static fipsc_status check_against_shards(const char *index, const fipsc_st_set *s,
                                         const weight_map *wm, fipsc_error *err)
{
    int i = 0;
    for (const cJSON *e = wm->map->child; e; e = e->next, i++) {
        const fipsc_st_tensor *t = fipsc_st_set_find(s, e->string);
        const char *want = wm->entry_shard[i];
        if (!t)
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: tensor '%s' of the weight_map is missing from its shard '%s'",
                              index, e->string, want);
        for (int k = 0; k < s->n_shards; k++)
            if (t->file == fipsc_st_path(s->shards[k]) && strcmp(wm->shard_names[k], want) != 0)
                return fipsc_fail(err, FIPSC_ERR_FORMAT,
                                  "%s: tensor '%s' of the weight_map is missing from its shard "
                                  "'%s' (it is in shard '%s')",
                                  index, e->string, want, wm->shard_names[k]);
    }
    for (int k = 0; k < s->n_all; k++)
        if (fipsc_name_table_get(&wm->listed, s->all[k]->name) < 0)
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: tensor '%s' of shard file %s is not in the weight_map", index,
                              s->all[k]->name, s->all[k]->file);
    return FIPSC_OK;
}

static fipsc_status open_index(const char *index, fipsc_st_set *s, fipsc_error *err)
{
    s->index_path = strdup(index);
    if (!s->index_path) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", index);
    char *text;
    size_t size;
    fipsc_status st = fipsc_read_file(index, &text, &size, err);
    if (st != FIPSC_OK) return st;
    cJSON *root = cJSON_ParseWithLength(text, size);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    weight_map wm = {0};
    if (!root || !cJSON_IsObject(root))
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: not a JSON object (a safetensors index)", index);
    else if (!cJSON_IsObject(map))
        st = fipsc_fail(err, FIPSC_ERR_FORMAT, "%s: no \"weight_map\" object", index);
    else
        st = read_weight_map(index, map, &wm, err);
    /* Shards resolve against the index's directory. */
    size_t dir_len = 0;
    const char *slash = strrchr(index, '/');
    if (slash) dir_len = (size_t)(slash - index) + 1;
    if (st == FIPSC_OK) {
        s->shards = calloc((size_t)wm.n_shards + 1, sizeof *s->shards);
        if (!s->shards) st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", index);
        else s->n_shards = wm.n_shards; /* shards not opened stay NULL, which close skips */
    }
    for (int i = 0; i < s->n_shards && st == FIPSC_OK; i++) {
        size_t n = dir_len + strlen(wm.shard_names[i]) + 1;
        char *path = malloc(n);
        if (!path) {
            st = fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", index);
            break;
        }
        fipsc_path_format(path, n, NULL, "%.*s%s", (int)dir_len, index, wm.shard_names[i]); /* sized to fit */
        st = fipsc_st_open(path, &s->shards[i], err);
        free(path);
        if (st != FIPSC_OK) fipsc_fail_context(err, "%s: shard '%s': ", index, wm.shard_names[i]);
    }
    if (st == FIPSC_OK) st = collect_tensors(s, index, wm.shard_names, err);
    if (st == FIPSC_OK) st = check_against_shards(index, s, &wm, err);
    weight_map_free(&wm);
    cJSON_Delete(root);
    return st;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Picks the file a directory stands for (see fipsc_st_set_open) into out. */
static fipsc_status resolve_directory(const char *dir, char *out, size_t cap, fipsc_error *err)
{
    static const char *const preferred[] = {"model.safetensors.index.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        fipsc_status st = fipsc_path_join(out, cap, dir, preferred[i], err);
        if (st) return st;
        if (is_regular(out)) return FIPSC_OK;
    }
    DIR *d = opendir(dir);
    if (!d) return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot list directory: %s", dir, strerror(errno));
    /* kind 0: *.safetensors.index.json, kind 1: *.safetensors; the first two names of each */
    char found[2][2][256] = {{{0}}};
    int count[2] = {0, 0};
    for (struct dirent *e; (e = readdir(d));) {
        int kind = ends_with(e->d_name, ".safetensors.index.json") ? 0
                   : ends_with(e->d_name, ".safetensors")          ? 1
                                                                   : -1;
        if (kind < 0) continue;
        if (fipsc_path_join(out, cap, dir, e->d_name, NULL) || !is_regular(out)) continue;
        if (count[kind] < 2 &&
            fipsc_path_format(found[kind][count[kind]], sizeof found[kind][0], NULL, "%s", e->d_name))
            continue; /* d_name is at most 255 bytes: never */
        count[kind]++;
    }
    closedir(d);
    for (int kind = 0; kind < 2; kind++) {
        if (count[kind] == 1) {
            return fipsc_path_join(out, cap, dir, found[kind][0], err);
        }
        if (count[kind] > 1)
            return fipsc_fail(err, FIPSC_ERR_FORMAT,
                              "%s: %d %s files ('%s', '%s', ...) and no model.safetensors%s: which "
                              "one is meant?",
                              dir, count[kind], kind ? ".safetensors" : ".safetensors.index.json",
                              found[kind][0], found[kind][1], kind ? ".index.json" : "");
    }
    return fipsc_fail(err, FIPSC_ERR_NOT_FOUND,
                      "%s: no model.safetensors.index.json and no .safetensors file in the directory",
                      dir);
}

fipsc_status fipsc_st_set_open(const char *path, fipsc_st_set **out, fipsc_error *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char resolved[4400];
    const char *file = path;
    if (S_ISDIR(sb.st_mode)) {
        fipsc_status st = resolve_directory(path, resolved, sizeof resolved, err);
        if (st != FIPSC_OK) return st;
        file = resolved;
    }
    fipsc_st_set *s = calloc(1, sizeof *s);
    if (!s) return fipsc_fail(err, FIPSC_ERR_NOMEM, "%s: out of memory", path);
    fipsc_status st = ends_with(file, ".json") ? open_index(file, s, err) : open_single(file, s, err);
    if (st != FIPSC_OK) {
        fipsc_st_set_close(s);
        return st;
    }
    *out = s;
    return FIPSC_OK;
}
