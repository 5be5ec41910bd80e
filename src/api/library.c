/* The public API's library-wide calls (include/fipsc.h); fipsc_status_name is in core/status.c,
 * fipsc_threads_set in core/threads.c. */
#include <stdlib.h>

#include "fipsc.h"

const char *fipsc_version(void) { return FIPSC_VERSION; }

void fipsc_string_free(char *s) { free(s); }
