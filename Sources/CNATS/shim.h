#ifndef CUSTODY_CNATS_SHIM_H
#define CUSTODY_CNATS_SHIM_H
#include <nats/nats.h>
#endif
