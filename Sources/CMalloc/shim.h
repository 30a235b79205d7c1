#ifndef CUSTODY_CMALLOC_SHIM_H
#define CUSTODY_CMALLOC_SHIM_H
// glibc's malloc statistics (mallinfo2), which Swift's Glibc module does not export.
#if defined(__linux__)
#include <malloc.h>
#endif
#endif
