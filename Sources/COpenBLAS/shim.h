// OpenBLAS's CBLAS interface and its extensions (openblas_get_corename, openblas_set_num_threads, ...).
// Debian: libopenblas-dev installs cblas.h under /usr/include/<multiarch>/ through alternatives.
#include <cblas.h>
