/* `mpirun -np K fipsc compress ...`: the K processes share the groups of one compression
 * (src/compress/compress.h, fipsc_compress_ranks, has what each rank does and why the output is
 * byte-identical to one process's). This is the transport, over MPI (OpenMPI from Debian): each
 * group's checkpoint image goes from the rank that computed it to rank 0 with non-blocking sends,
 * so a rank goes on with its next group while rank 0 is still busy with its own; the images
 * waiting to be taken are staged in file-backed pages, not held in the rank's memory.
 *
 * MPI is used only when the process was started by an MPI launcher with more than one process
 * (its environment says so); a plain `fipsc compress` never initialises MPI. fipsc built without
 * MPI (FIPSC_HAVE_MPI undefined) refuses such a launch instead of letting K copies each compute
 * everything. */
#ifndef FIPSC_CLI_MPI_RANKS_H
#define FIPSC_CLI_MPI_RANKS_H

#include <stdbool.h>

#include "compress/compress.h"
#include "core/status.h"

/* Whether this fipsc was built with MPI (the feature exists). */
bool cli_mpi_available(void);

/* The number of processes an MPI launcher started this one among (1 when not launched by one). */
int cli_mpi_launched_size(void);

/* Initialises MPI and fills *r (rank, size, transport); only for cli_mpi_launched_size() > 1.
 * The images a rank sends wait for rank 0 in unlinked files in scratch_dir (NULL: $TMPDIR, else
 * /tmp). Fails (nothing initialised) when fipsc was built without MPI. */
fipsc_status cli_mpi_start(const char *scratch_dir, fipsc_compress_ranks *r, fipsc_error *err);

/* Ends the MPI part of the run. rc 0: waits until rank 0 has taken every group this rank sent,
 * then finalises. rc != 0 (this rank failed, its error already printed): aborts the whole job
 * (every rank stops; rank 0 never writes the output) with exit code rc; does not return.
 * Without MPI in the build: nothing. */
void cli_mpi_finish(int rc);

#endif
