/* Writing a model as a Hugging Face checkpoint directory (see src/model/hf_write.h).
 *
 * DIR/config.json       the configuration, as the model's family writes it (and an image model's
 *                       preprocessor_config.json beside it when it had one)
 * DIR/model.safetensors every tensor as F32 (a weight the model keeps in its checkpoint's F16/BF16:
 *                       as it is) under its Hugging Face name, in the model's order,
 *                       __metadata__ {"format": "pt", "config": <the config.json text>}
 *
 * A new directory is assembled beside DIR under a temporary name and renamed onto DIR once both
 * files are complete and fsynced, so DIR appears whole or not at all. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "core/file.h"
#include "model/hf_write.h"
#include "formats/safetensors.h"
#include "core/path.h"

/* Writes text and a final newline to dir/name, atomically. */
static fipsc_status write_text(const char *dir, const char *name, const char *text, fipsc_error *err)
{
    char path[4400];
    fipsc_atomic_file af;
    fipsc_status st = fipsc_path_join(path, sizeof path, dir, name, err);
    if (!st) st = fipsc_atomic_open(path, &af, err);
    if (st) return st;
    if ((st = fipsc_atomic_write(&af, text, strlen(text), err)) ||
        (st = fipsc_atomic_write(&af, "\n", 1, err))) {
        fipsc_atomic_abort(&af);
        return st;
    }
    return fipsc_atomic_commit(&af, err);
}

/* Writes model.safetensors, preprocessor_config.json (image classifiers that have one) and
 * config.json into dir (each file atomically). */
static fipsc_status write_files(const fipsc_st_writer *w, const char *config_text,
                                const char *preproc_text, const char *dir, fipsc_error *err)
{
    char path[4400];
    fipsc_status st = fipsc_path_join(path, sizeof path, dir, "model.safetensors", err);
    if (!st) st = fipsc_st_writer_write(w, path, err);
    if (!st && preproc_text) st = write_text(dir, "preprocessor_config.json", preproc_text, err);
    return st ? st : write_text(dir, "config.json", config_text, err);
}

/* fsync on a directory makes the renames inside it durable. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* 1 when dir is an empty directory, 0 when it has entries, -1 when it cannot be read. */
static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int empty = 1;
    struct dirent *e;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
    closedir(d);
    return empty;
}

/* Refuses what cannot be written as a dense checkpoint. */
static fipsc_status check_writable(const fipsc_model *m, fipsc_error *err)
{
    for (int i = 0; i < m->n_mlps; i++) {
        const fipsc_mlp *mlp = m->mlps[i];
        if (mlp->gate.factored || mlp->up.factored || mlp->down.factored)
            return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED,
                              "MLP %d is FiPS-compressed: a Hugging Face checkpoint needs dense weights", i);
    }
    return FIPSC_OK;
}

/* Builds the safetensors writer (tensors borrowed from m). */
static fipsc_status make_writer(const fipsc_model *m, const char *config_text, fipsc_st_writer **out,
                                fipsc_error *err)
{
    fipsc_st_writer *w = fipsc_st_writer_new();
    if (!w) return fipsc_fail(err, FIPSC_ERR_NOMEM, "out of memory");
    fipsc_status st = fipsc_st_writer_set_meta(w, "format", "pt", err);
    if (!st) st = fipsc_st_writer_set_meta(w, FIPSC_HF_METADATA_CONFIG_KEY, config_text, err);
    for (int i = 0; !st && i < m->n_tensors; i++) {
        const fipsc_tensor *t = &m->tensors[i];
        st = t->half ? fipsc_st_writer_add(w, t->name, t->source_dtype, t->ndim, t->shape, t->half, err)
                     : fipsc_st_writer_add(w, t->name, FIPSC_F32, t->ndim, t->shape, t->data, err);
    }
    if (st) {
        fipsc_st_writer_free(w);
        return st;
    }
    *out = w;
    return FIPSC_OK;
}

/* Writes into a fresh temporary directory beside `dir`, then renames it onto `dir` (which does not
 * exist or is an empty directory: rename(2) replaces an empty directory atomically). */
static fipsc_status write_via_temp_dir(const fipsc_st_writer *w, const char *config_text,
                                       const char *preproc_text, const char *dir, fipsc_error *err)
{
    char temp[4200];
    /* mkdir (not mkdtemp) so that the directory gets the usual permissions under the umask. */
    static _Atomic unsigned counter; /* two exports at once on two threads get different names */
    int made = -1;
    for (int attempt = 0; attempt < 100 && made != 0; attempt++) {
        fipsc_status st = fipsc_path_format(temp, sizeof temp, err, "%s.tmp-%ld-%u-%ld", dir, (long)getpid(),
                                            counter++, (long)time(NULL));
        if (st) return st;
        made = mkdir(temp, 0777);
        if (made != 0 && errno != EEXIST) break;
    }
    if (made != 0) {
        char parent[4200];
        fipsc_path_format(parent, sizeof parent, NULL, "%s", dir); /* shorter than temp */
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot create a temporary directory in '%s': %s",
                          dir, dirname(parent), strerror(errno));
    }
    fipsc_status st = write_files(w, config_text, preproc_text, temp, err);
    if (!st) {
        sync_dir(temp);
        if (rename(temp, dir) != 0)
            st = fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot rename the finished checkpoint into place: %s",
                            dir, strerror(errno));
    }
    if (st) {
        /* the names write_files used, which fitted */
        static const char *const written[] = {"model.safetensors", "config.json", "preprocessor_config.json"};
        char path[4400];
        for (int i = 0; i < 3; i++)
            if (!fipsc_path_join(path, sizeof path, temp, written[i], NULL)) unlink(path);
        rmdir(temp);
        return st;
    }
    char parent[4200];
    fipsc_path_format(parent, sizeof parent, NULL, "%s", dir); /* shorter than temp */
    sync_dir(dirname(parent));
    return FIPSC_OK;
}

fipsc_status fipsc_hf_write_dir(const fipsc_model *m, const char *dir_in, bool overwrite, const char *config_text,
                                const char *preproc_text, fipsc_error *err)
{
    fipsc_status st = check_writable(m, err);
    if (st) return st;
    /* "out/" and "out" name the same directory; the temporary one is "out.tmp-...". */
    char dir[4096];
    if ((st = fipsc_path_format(dir, sizeof dir, err, "%s", dir_in))) return st;
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--) dir[n - 1] = '\0';
    if (!dir[0]) return fipsc_fail(err, FIPSC_ERR_ARG, "empty output directory name");

    struct stat sb;
    bool fresh;
    if (stat(dir, &sb) != 0) {
        if (errno != ENOENT) return fipsc_fail(err, FIPSC_ERR_IO, "%s: %s", dir, strerror(errno));
        fresh = true;
    } else if (!S_ISDIR(sb.st_mode)) {
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: exists and is not a directory", dir);
    } else {
        int empty = dir_is_empty(dir);
        if (empty < 0) return fipsc_fail(err, FIPSC_ERR_IO, "%s: cannot read directory: %s", dir, strerror(errno));
        fresh = empty == 1;
    }
    char index[4200];
    if ((st = fipsc_path_join(index, sizeof index, dir, "model.safetensors.index.json", err))) return st;
    if (!fresh && !overwrite)
        return fipsc_fail(err, FIPSC_ERR_IO, "%s: exists and is not empty; refusing to overwrite it", dir);
    if (!fresh && stat(index, &sb) == 0)
        return fipsc_fail(err, FIPSC_ERR_IO,
                          "%s: holds a sharded checkpoint (model.safetensors.index.json); refusing "
                          "to write beside its shards",
                          dir);

    fipsc_st_writer *w = NULL;
    if ((st = make_writer(m, config_text, &w, err))) return st;
    st = fresh ? write_via_temp_dir(w, config_text, preproc_text, dir, err)
               : write_files(w, config_text, preproc_text, dir, err);
    fipsc_st_writer_free(w);
    return st;
}
