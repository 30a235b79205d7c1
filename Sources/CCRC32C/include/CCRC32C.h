#ifndef CUSTODY_CCRC32C_H
#define CUSTODY_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78).
///
/// `crc` is a finished CRC value: start with 0, and pass the result of one call into the next
/// to checksum data that arrives in pieces. The check value of "123456789" is 0xE3069283.
/// Uses the SSE4.2 (x86-64) or ARMv8 CRC (AArch64) instructions when the CPU has them, and a
/// table-driven (slicing-by-8) implementation otherwise.
uint32_t custody_crc32c_update(uint32_t crc, const void *data, size_t length);

/// The portable implementation, always available; used by tests to cross-check the hardware path.
uint32_t custody_crc32c_update_portable(uint32_t crc, const void *data, size_t length);

/// 1 when `custody_crc32c_update` uses CPU CRC instructions on this machine, 0 otherwise.
int custody_crc32c_hardware_available(void);

#endif
