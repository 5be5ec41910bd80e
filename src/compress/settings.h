/* A compression's settings by name: what the compress command's options and the public API's
 * fipsc_options_set take, parsed and checked in one place.
 *
 *   method budget sparsity nm rank groups schedule mode steps lr lr-min weight-decay batch seed
 *   u-dtype divergence-retries                                      (fipsc_compress_options)
 *   calib-corpus calib-samples calib-len calib-images calib-idx calib-exclude calib-count
 *   calib-sentences calib-rows                                      (fipsc_calib_source)
 *
 * Values are text, as on the command line ("0.5", "2:4", "0-1,2-4"); a bad value fails with
 * FIPSC_ERR_ARG and the command line's message ("--budget expects a number in (0, 1], got 'x'").
 * The training options a model's family tunes (groups, schedule, mode, sparsity, steps, batch,
 * lr, weight-decay) take the family's defaults unless set; lr-min is lr / 100 unless set. */
#ifndef FIPSC_COMPRESS_SETTINGS_H
#define FIPSC_COMPRESS_SETTINGS_H

#include <stdbool.h>

#include "compress/calibration_source.h"
#include "compress/compress.h"

enum { FIPSC_SETTINGS_MAX = 40 };

typedef struct fipsc_compress_settings {
    fipsc_compress_options options;
    fipsc_calib_source calib;
    bool given[FIPSC_SETTINGS_MAX]; /* by setting, in the order of the table in settings.c */
    char *text[FIPSC_SETTINGS_MAX]; /* owned copies of string values (groups, calibration paths) */
} fipsc_compress_settings;

/* fipsc_compress_defaults, no calibration source, nothing given. */
void fipsc_settings_init(fipsc_compress_settings *s);
void fipsc_settings_free(fipsc_compress_settings *s);

/* Whether name is a setting (without leading dashes). */
bool fipsc_settings_known(const char *name);

/* Sets name to the parsed value (copied). */
fipsc_status fipsc_settings_set(fipsc_compress_settings *s, const char *name, const char *value, fipsc_error *err);

/* The options a run with s uses on m: s's options, with m's family defaults (m NULL: the generic
 * defaults) for every tuned option not given, and lr-min = lr / 100 unless given. String options
 * point into s, which must outlive *o. s is not changed, so one s serves many runs. */
void fipsc_settings_resolve(const fipsc_compress_settings *s, const fipsc_model *m, fipsc_compress_options *o);

#endif
