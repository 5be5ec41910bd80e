/* A whole compression of a loaded model, as `fipsc compress` and the public API (include/fipsc.h)
 * run it (docs/ARCHITECTURE.md, "How compress flows"):
 *
 *   settings → the family's defaults → checks → plan (groups, ranks: impossible budgets fail here,
 *   before any work) → checkpoints checked → calibration of the planned blocks on the ORIGINAL
 *   model → group by group: init, train, attach (fipsc_compress_run_checkpointed) → report
 *
 * and the compressed file it writes, with the run's options and calibration in its metadata. */
#ifndef FIPSC_COMPRESS_COMPRESS_MODEL_H
#define FIPSC_COMPRESS_COMPRESS_MODEL_H

#include <stddef.h>

#include "compress/calibration_source.h"
#include "compress/compress.h"
#include "compress/settings.h"

/* Compresses m in place with settings s (their unset training options take m's family defaults:
 * fipsc_settings_resolve; s itself is not changed). ck (NULL: none) saves and resumes groups. note hears calibration's
 * progress, progress the run's (either may be NULL). On success *report describes the run and
 * calib_desc the calibration source (file names only). On failure m must not be written. */
fipsc_status fipsc_compress_model(fipsc_model *m, const fipsc_compress_settings *s, const fipsc_compress_checkpoint *ck,
                                  fipsc_calib_note_fn note, void *note_user, fipsc_compress_progress_fn progress,
                                  void *progress_user, fipsc_compress_report **report, char *calib_desc,
                                  size_t calib_desc_cap, fipsc_error *err);

/* What compressing m with settings s would do, without doing it: the groups (blocks, rank,
 * parameters and bytes) and the memory plan (and whether the calibration rows would be spilled),
 * as text (malloc'ed). Fails as fipsc_compress_model would before any work. */
fipsc_status fipsc_compress_dry_run(const fipsc_model *m, const fipsc_compress_settings *s, char **text,
                                    fipsc_error *err);

/* Writes the compressed m to path atomically (docs/FORMAT.md), U in the run's u_dtype, with the
 * report's options and calibration_source as the "fipsc.compress" metadata entry. */
fipsc_status fipsc_compress_write(const fipsc_model *m, const fipsc_compress_report *report,
                                  const char *calibration_source, const char *path, fipsc_error *err);

#endif
